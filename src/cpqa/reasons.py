"""Every reason a stage gives for leaving an input out, in one snake_case vocabulary.

A **failure** is a `Skip`: something is wrong with the input or a service (a file that does not
decode, an LLM that never answered); the CLI warns about them. A **drop** is a `Drop`: a `Filter`
decided, by design, that the input does not belong in the output (no speech, an unclear emotion,
a QA item that fails a check); it goes to excluded.jsonl and counts as `dropped/<reason>`.
`tests/test_reasons.py` fails on a reason literal written anywhere else.
"""

# Failures: ingest and decoding.
EMPTY_FILE = "empty_file"
UNDECODABLE = "undecodable"
ZERO_LENGTH = "zero_length"
MISSING_FILE = "missing_file"
AUDIO_UNREADABLE = "audio_unreadable"
TOO_LONG = "too_long"
BAD_RTTM = "bad_rttm"
BAD_MANIFEST_ROW = "bad_manifest_row"
DUPLICATE_ID = "duplicate_id"
BAD_GIVEN_SEGMENTS = "bad_given_segments"
EMPTY_SEGMENT = "empty_segment"
"""A segment holding no samples of its recording (it lies past the end)."""

# Failures of a backend request (an LLM, a speech-LLM), carried as `Outcome.skip_reason` and
# written as the Skip of the item that needed it.
UNPARSEABLE = "unparseable"
"""A reply that does not hold the items asked for."""
INVALID_OUTPUT = "invalid_output"
"""A reply that breaks its JSON schema (after one correction round)."""
TIMEOUT = "timeout"
CONNECTION = "connection"
BAD_RESPONSE = "bad_response"
BAD_REQUEST = "bad_request"
CONTEXT_LENGTH = "context_length"
REFUSED = "refused"
EMPTY_REPLY = "empty"
GENERATION_ERROR = "generation_error"
MODEL_ERROR = "model_error"
"""A model's runtime failed on the input (its message goes to the log)."""
ALL_MEMBERS_SKIPPED = "all_members_skipped"
"""No member of an ensemble gave a prediction."""
NO_LABELS = "no_labels"
"""A cascade baseline asked about a clip without its labels."""
BACKEND_FAILED = "failed"
"""A backend failure that gave no reason of its own."""

# Drops: nothing to work on.
NO_SPEECH = "no_speech"
"""VAD found no speech (a silent file), or a manifest gives no segments."""
NO_WORDS = "no_words"
"""The ASR heard no words in a segment."""
NO_TRANSCRIPT = "no_transcript"
NO_QA_TYPES = "no_qa_types"
"""A clip whose reliable labels support no QA type."""

# Drops: condensation, per segment (`condense.analysis`) and over the whole input (`condense.selection`).
TOO_SHORT = "too_short"
LOW_SNR = "low_snr"
LOW_DNSMOS = "low_dnsmos"
NO_WINDOWS = "no_windows"
ALL_WINDOWS_ABSTAINED = "all_windows_abstained"
NO_CONSISTENT_WINDOW = "no_consistent_window"
NO_DOMINANT_EMOTION = "no_dominant_emotion"
SPEAKER_CAP = "speaker_cap"
RECORDING_CAP = "recording_cap"
BALANCE = "balance"
NEUTRAL_DROPPED = "neutral_dropped"
BUDGET = "budget"
CLIP_BUDGET = "clip_budget"

# Drops of a window inside a kept segment (`condense.rules`; written in `dropped_windows`).
EMOTION_ABSTAINED = "emotion_abstained"
NO_EMOTION = "no_emotion"
UNMAPPED_EMOTION = "unmapped_emotion"
NO_VALENCE = "no_valence"
VALENCE_BELOW_X = "valence_below_x"
VALENCE_ABOVE_Y = "valence_above_y"
VALENCE_OUTSIDE_NEUTRAL_BAND = "valence_outside_neutral_band"
LOW_CONFIDENCE_AMBIGUOUS = "low_confidence_ambiguous"

# Drops of a QA item (`qa.filters`, `qa.claims`, `qa.speech_check`, `qa.dataset`).
SCHEMA = "schema"
LEAKAGE = "leakage"
EVIDENCE_LEAKAGE = "evidence_leakage"
"""A flag, not a drop: the evidence phrase gave the labels away and was cut; the item stands."""
LABEL_MISMATCH = "label_mismatch"
LABEL_UNVERIFIABLE = "label_unverifiable"
ANSWER_IN_QUESTION = "answer_in_question"
DUPLICATE_IN_CLIP = "duplicate_in_clip"
DUPLICATE_IN_DATASET = "duplicate_in_dataset"
TEXT_ANSWERABLE = "text_answerable"
TYPE_CAP = "type_cap"
UNSUPPORTED_CLAIM = "unsupported_claim"
WRONG_TYPE = "wrong_type"
SPEECH_LLM_DISAGREES = "speech_llm_disagrees"


def http_error(status: int) -> str:
    """The reason of a request an HTTP server refused: `http_<status>`."""
    return f"http_{status}"


def audio_error(decode_reason: str) -> str:
    """The reason of a request whose audio could not be read: `audio_<decode reason>`."""
    return f"audio_{decode_reason}"


ALL = frozenset(value for name, value in dict(globals()).items() if name.isupper() and isinstance(value, str))
"""Every fixed reason above (`http_error` and `audio_error` make the two families)."""
