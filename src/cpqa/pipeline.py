"""Importing this module registers every built-in stage and backend."""

from .audio import ingest, segment, transcribe  # noqa: F401
from .condense import clips, condense, scorers  # noqa: F401
from . import evaluate  # noqa: F401  (registers the speech-LLM adapters)
from .testing import dummy  # noqa: F401
