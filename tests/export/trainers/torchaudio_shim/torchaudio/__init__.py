"""A stand-in for torchaudio in the LLaMA-Factory test venv (see tests/export/trainers/venvs.py).

PyPI ships only CUDA builds of torchaudio for Linux, and they do not load next to CPU torch 2.13
(`_torchaudio.so` fails), while LLaMA-Factory's `mm_plugin` imports torchaudio at module level and
calls `torchaudio.load` and `torchaudio.functional.resample` on audio it is given as a path. This
shim gives those two calls, with soundfile and torch, and nothing else."""

import soundfile as _sf
import torch as _torch

from . import functional  # noqa: F401

__version__ = "0.0+cpqa-shim"


def load(path, *args, **kwargs):
    """(channels × frames float32 tensor, sample rate), as torchaudio.load returns."""
    samples, rate = _sf.read(str(path), dtype="float32", always_2d=True)
    return _torch.from_numpy(samples.T.copy()), rate
