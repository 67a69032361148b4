"""Importing this module registers every built-in stage and backend."""

from .audio import ingest, segment, transcribe  # noqa: F401
from .condense import clips, condense, scorers  # noqa: F401
from .testing import dummy  # noqa: F401
