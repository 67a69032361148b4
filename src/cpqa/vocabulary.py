"""The words cpqa writes where a label is missing or could not be decided. None of them is a class:
every consumer (condensation, tagging, QA, export, evaluation) reads them as "no label".

An abstained categorical prediction is `{"label": None, "abstained": True, "reason": <ABSTAIN_*>,
"score", "probs", "model"}`; a word (`Word.emotion`, `ClipWord.emotion`) under an abstained emotion
carries NO_CLEAR_EMOTION, a speaker whose gender abstained UNKNOWN_GENDER."""

UNKNOWN = "unknown"
NO_CLEAR_EMOTION = "no clear emotion"
UNKNOWN_GENDER = "unknown gender"
ABSTAIN_LOW_CONFIDENCE = "low-confidence"
ABSTAIN_OUT_OF_DISTRIBUTION = "out-of-distribution"
NOT_A_LABEL = frozenset({"", UNKNOWN, "other", "none", NO_CLEAR_EMOTION, UNKNOWN_GENDER})
"""Tag values that name no class."""
