"""Speaker embeddings from Resemblyzer's GE2E encoder (3-layer LSTM over 40-band mel frames, 256-d
unit vectors; Wan et al. 2018), whose weights ship inside the `resemblyzer` wheel, so they work
offline. Diarization clusters them; the `ge2e-probe` speaker backend reads gender from them.

The `resemblyzer` package itself is never imported: its __init__ imports webrtcvad, whose module
needs pkg_resources, gone from recent setuptools. Only its weights file is read.
"""

from __future__ import annotations

import importlib.util
from functools import cached_property
from pathlib import Path

import numpy as np

from ..audio.io import SAMPLE_RATE
from ..errors import CPQAError, MissingExtraError, require

GE2E_MODEL = "resemblyzer-ge2e"
GE2E_TARGET_DBFS = -30.0
"""Quiet audio is raised to this RMS level before embedding (as Resemblyzer's preprocessing does)."""
PARTIAL_FRAMES = 160
"""GE2E was trained on 1.6-s partial utterances: longer audio is embedded as the mean of partials."""
PARTIAL_HOP_FRAMES = 80
EMBED_BATCH = 64


class GE2EEncoder:
    """The GE2E speaker encoder on `device`; loads on first use."""

    def __init__(self, device: str = "cpu"):
        self.device = device

    @cached_property
    def _model(self):
        return load_ge2e(self.device)

    def encode_mels(self, mels: list[np.ndarray]) -> np.ndarray:
        """L2-normalised embeddings of mel spectrograms of one length each batch, (len(mels), 256)."""
        torch = require("torch", "labels")
        lstm, linear, device = self._model
        out = []
        with torch.inference_mode():
            for first in range(0, len(mels), EMBED_BATCH):
                _, (hidden, _) = lstm(torch.from_numpy(np.stack(mels[first:first + EMBED_BATCH])).to(device))
                raw = torch.relu(linear(hidden[-1]))
                out.append(torch.nn.functional.normalize(raw, dim=1).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, 256), dtype=np.float32)

    def embed(self, clips: list[np.ndarray]) -> np.ndarray:
        """One unit embedding per clip of 16 kHz audio: the normalised mean of its 1.6-s partials
        (hop 0.8 s; a clip shorter than one partial is zero-padded to it), (len(clips), 256)."""
        partials, owner = [], []
        for i, clip in enumerate(clips):
            mel = ge2e_mel(louder(np.asarray(clip, dtype=np.float32)))
            if len(mel) < PARTIAL_FRAMES:
                mel = np.pad(mel, ((0, PARTIAL_FRAMES - len(mel)), (0, 0)))
            starts = range(0, len(mel) - PARTIAL_FRAMES + 1, PARTIAL_HOP_FRAMES)
            partials += [mel[s:s + PARTIAL_FRAMES] for s in starts]
            owner += [i] * len(starts)
        if not partials:
            return np.zeros((0, 256), dtype=np.float32)
        sums = np.zeros((len(clips), 256))
        np.add.at(sums, np.asarray(owner), self.encode_mels(partials))
        return (sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)).astype(np.float32)


def ge2e_mel(samples: np.ndarray) -> np.ndarray:
    """GE2E's input: a 40-band mel power spectrogram (not log), 25 ms frames every 10 ms, (frames, 40)."""
    librosa = require("librosa", "labels")
    mel = librosa.feature.melspectrogram(y=samples, sr=SAMPLE_RATE, n_fft=400, hop_length=160, n_mels=40)
    return mel.astype(np.float32).T


def louder(samples: np.ndarray) -> np.ndarray:
    """Quiet audio raised to GE2E_TARGET_DBFS (loud audio left alone)."""
    rms = float(np.sqrt(np.mean(samples.astype(np.float64) ** 2))) if len(samples) else 0.0
    if rms == 0:
        return samples
    gain = 10 ** (GE2E_TARGET_DBFS / 20) / rms
    return samples * gain if gain > 1 else samples


def load_ge2e(device: str):
    """The LSTM, the projection and the torch device, from the weights file in the resemblyzer wheel."""
    torch = require("torch", "labels")
    spec = importlib.util.find_spec("resemblyzer")
    if spec is None or spec.origin is None:
        raise MissingExtraError("resemblyzer", "labels")
    weights = Path(spec.origin).parent / "pretrained.pt"
    if not weights.exists():
        raise CPQAError(f"the resemblyzer package has no weights at {weights}: reinstall it (pip install "
                        "--force-reinstall resemblyzer)")
    state = torch.load(weights, map_location="cpu")["model_state"]
    lstm = torch.nn.LSTM(40, 256, num_layers=3, batch_first=True)
    linear = torch.nn.Linear(256, 256)
    for module, prefix in ((lstm, "lstm."), (linear, "linear.")):
        module.load_state_dict({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)})
        module.to(device).eval()
    return lstm, linear, torch.device(device)
