"""The `pyannote` diarizer (GPU + Hugging Face token): a pretrained pyannote.audio pipeline."""

from __future__ import annotations

import os
from pathlib import Path
from typing import ClassVar

from pydantic import Field

from ..errors import CPQAError, require
from ..requirements import EnvVar, Package, Requirement, unmet
from .diarizer import SpeakerBounds, named_by_first_appearance
from .io import SAMPLE_RATE, read_range
from .speakers import Turn


class PyannoteDiarizer:
    """A pretrained pyannote.audio pipeline (gated on the Hugging Face hub: needs a token)."""

    class Config(SpeakerBounds):
        non_semantic: ClassVar[frozenset[str]] = frozenset({"device", "token_env"})

        model: str = Field("pyannote/speaker-diarization-community-1",
                           description="A hub id (e.g. pyannote/speaker-diarization-3.1) or a local config.")
        token_env: str = Field("HF_TOKEN", description="Environment variable holding the Hugging Face token.")
        device: str = Field("cuda", description="torch device: cpu, cuda, cuda:N.")

        def requirements(self) -> list[Requirement]:
            # pyannote.audio >= 4.0 (the gpu extra's floor, checked from cpqa's metadata) loads
            # speaker-diarization-community-1; 3.x cannot
            needs: list[Requirement] = [Package("pyannote.audio", "gpu", "pyannote.audio"), Package("torch", "gpu")]
            if not Path(self.model).exists():
                needs.append(EnvVar(self.token_env, f"the pyannote model '{self.model}' is gated: a Hugging Face "
                                                    f"token of an account that accepted its conditions at "
                                                    f"{_model_page(self.model)}"))
            return needs

    def __init__(self, config: Config | None = None):
        self.config = cfg = config or self.Config()
        self.model_name = cfg.model
        problems = unmet(cfg.requirements())
        if problems:
            raise problems[0]
        Pipeline = require("pyannote.audio", "gpu", "pyannote.audio").Pipeline
        torch = require("torch", "gpu")
        local = Path(cfg.model).exists()
        try:
            pipeline = Pipeline.from_pretrained(cfg.model, **({} if local else {"token": os.environ[cfg.token_env]}))
        except Exception as exc:  # hub errors (401, gated, not found) have no common base class
            raise CPQAError(_load_error(cfg.model, cfg.token_env, str(exc))) from exc
        if pipeline is None:  # pyannote.audio logs a failed gated download and returns None
            raise CPQAError(_load_error(cfg.model, cfg.token_env, "from_pretrained returned nothing"))
        self.pipeline = pipeline.to(torch.device(cfg.device))
        self._torch = torch

    def diarize(self, path: str, duration: float) -> list[Turn]:
        cfg = self.config
        # a waveform, not a path: pyannote would decode files with torchaudio/torchcodec
        waveform = self._torch.from_numpy(read_range(path)).unsqueeze(0)
        bounds = {k: v for k, v in (("num_speakers", cfg.num_speakers), ("min_speakers", cfg.min_speakers),
                                    ("max_speakers", cfg.max_speakers)) if v is not None}
        output = self.pipeline({"waveform": waveform, "sample_rate": SAMPLE_RATE}, **bounds)
        annotation = getattr(output, "speaker_diarization", output)  # 4.x wraps the Annotation
        return named_by_first_appearance([Turn(start=round(seg.start, 3), end=round(seg.end, 3), speaker=str(label))
                                          for seg, _, label in annotation.itertracks(yield_label=True)])


def _model_page(model: str) -> str:
    return f"https://huggingface.co/{model}"


def _load_error(model: str, token_env: str, detail: str) -> str:
    return (f"cannot load the pyannote pipeline '{model}': {detail}. It is gated: accept its conditions at "
            f"{_model_page(model)} (and those of the models it uses, e.g. pyannote/segmentation-3.0) with the "
            f"account whose token is in {token_env}")

