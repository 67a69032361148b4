"""Registers the label backends: the offline defaults by import, the hub backends by dotted path so
that their heavy imports (transformers, funasr) wait until a recipe names them."""

from ..registry import backend_registry
from . import probes  # noqa: F401  (whisper-probe emotion/speaker, circumplex dimensions)
