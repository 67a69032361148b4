"""Importing this module registers every built-in stage and backend."""

from . import evaluate, llm  # noqa: F401  (register the speech-LLM adapters and LLM backends)
from .audio import diarize, ingest, segment, transcribe  # noqa: F401
from .condense import clips, condense, scorers  # noqa: F401
from .labels import annotate  # noqa: F401
from .qa import dataset, generate  # noqa: F401
from .testing import dummy  # noqa: F401
