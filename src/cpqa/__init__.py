"""cpqa: turn in-the-wild speech into Contextual Paralinguistic QA data and evaluate speech-LLMs on it."""

__version__ = "0.1.0"
