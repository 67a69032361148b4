"""Speaker embeddings from Resemblyzer's GE2E encoder (3-layer LSTM over 40-band mel frames, 256-d
unit vectors; Wan et al. 2018), whose weights ship inside the `resemblyzer` wheel, so they work
offline. Diarization clusters them; the `ge2e-probe` speaker backend reads gender from them.

The `resemblyzer` package itself is never imported: its __init__ imports webrtcvad, whose module
needs pkg_resources, gone from recent setuptools. Only its weights file is read.
"""

from __future__ import annotations

import importlib.util
from functools import cache, cached_property, lru_cache
from pathlib import Path

import numpy as np

from ..audio.io import SAMPLE_RATE
from ..errors import CPQAError, MissingExtraError, require
from ..io_atomic import atomic_path

GE2E_MODEL = "resemblyzer-ge2e"
GE2E_TARGET_DBFS = -30.0
"""Quiet audio is raised to this RMS level before embedding (as Resemblyzer's preprocessing does)."""
PARTIAL_FRAMES = 160
"""GE2E was trained on 1.6-s partial utterances: longer audio is embedded as the mean of partials."""
PARTIAL_HOP_FRAMES = 80
EMBED_BATCH = 64


class GE2EEncoder:
    """The GE2E speaker encoder; loads on first use. On CPU it runs in numpy from a copy of the
    weights cached as .npz (importing torch costs seconds per process, more than embedding a
    minute of audio); on another `device` (cuda, cuda:N) it runs in torch."""

    def __init__(self, device: str = "cpu"):
        self.device = device

    @cached_property
    def _weights(self) -> dict[str, np.ndarray]:
        return ge2e_weights()

    @cached_property
    def _torch_model(self):
        return load_ge2e(self.device)

    def load(self) -> None:
        """Load the weights now, so a missing extra fails before any audio is read."""
        _ = self._weights if self.device == "cpu" else self._torch_model

    def encode_mels(self, mels: list[np.ndarray]) -> np.ndarray:
        """L2-normalised embeddings of mel spectrograms of one length each batch, (len(mels), 256)."""
        encode = self._encode_numpy if self.device == "cpu" else self._encode_torch
        out = [encode(np.stack(mels[first:first + EMBED_BATCH])) for first in range(0, len(mels), EMBED_BATCH)]
        return np.concatenate(out) if out else np.zeros((0, 256), dtype=np.float32)

    def _encode_numpy(self, batch: np.ndarray) -> np.ndarray:
        from threadpoolctl import threadpool_limits

        w = self._weights
        with threadpool_limits(1):  # small matrices: BLAS threads only contend on a shared CPU
            hidden = _lstm_last_hidden(batch, w)
        raw = np.maximum(hidden @ w["linear.weight"].T + w["linear.bias"], 0.0)
        return (raw / np.maximum(np.linalg.norm(raw, axis=1, keepdims=True), 1e-12)).astype(np.float32)

    def _encode_torch(self, batch: np.ndarray) -> np.ndarray:
        torch = require("torch", "labels")
        lstm, linear, device = self._torch_model
        with torch.inference_mode():
            _, (hidden, _) = lstm(torch.from_numpy(batch).to(device))
            raw = torch.relu(linear(hidden[-1]))
            return torch.nn.functional.normalize(raw, dim=1).cpu().numpy()

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


@cache
def shared_encoder(device: str = "cpu") -> GE2EEncoder:
    """The GE2E encoder on `device`, loaded once per process for every backend that embeds with it
    (diarization, the gender and dimensions heads); loaded here, in a stage's setup, so a missing
    extra fails before any audio is read."""
    encoder = GE2EEncoder(device)
    encoder.load()
    return encoder


N_FFT = 400
HOP = 160
N_MELS = 40


def ge2e_mel(samples: np.ndarray) -> np.ndarray:
    """GE2E's input: a 40-band mel power spectrogram (not log), 25 ms frames every 10 ms, (frames, 40).
    The same numbers as librosa's `melspectrogram(sr=16000, n_fft=400, hop_length=160, n_mels=40)`
    (centred frames, zero padding, periodic Hann, Slaney mel filters), in numpy: librosa's first
    call compiles for seconds, which a short recording would pay for every process."""
    x = np.pad(np.asarray(samples, dtype=np.float32), N_FFT // 2)
    n_frames = 1 + (len(x) - N_FFT) // HOP
    frames = x[np.arange(N_FFT)[None, :] + HOP * np.arange(n_frames)[:, None]] * _hann()
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    return (power @ _mel_filters().T).astype(np.float32)


@lru_cache(maxsize=1)
def _hann() -> np.ndarray:
    return (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)).astype(np.float32)


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney's mel scale: linear to 1 kHz, logarithmic above."""
    hz = np.asarray(hz, dtype=np.float64)
    return np.where(hz < 1000.0, hz / (200.0 / 3), 15.0 + np.log(np.maximum(hz, 1e-10) / 1000.0) / (np.log(6.4) / 27))


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    return np.where(mel < 15.0, mel * (200.0 / 3), 1000.0 * np.exp((np.log(6.4) / 27) * (mel - 15.0)))


@lru_cache(maxsize=1)
def _mel_filters() -> np.ndarray:
    """Slaney-normalised triangular filters from 0 Hz to Nyquist, (N_MELS, N_FFT // 2 + 1)."""
    edges = _mel_to_hz(np.linspace(0.0, _hz_to_mel(SAMPLE_RATE / 2), N_MELS + 2))
    bins = np.linspace(0.0, SAMPLE_RATE / 2, N_FFT // 2 + 1)
    widths = np.diff(edges)
    ramps = edges[:, None] - bins[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    return (weights * (2.0 / (edges[2:] - edges[:-2]))[:, None]).astype(np.float32)


def _lstm_last_hidden(x: np.ndarray, w: dict[str, np.ndarray]) -> np.ndarray:
    """The last layer's final hidden state of GE2E's 3-layer LSTM (torch's gate order i, f, g, o)
    for a batch (B, T, 40), (B, 256)."""
    seq = x.astype(np.float32)
    for layer in range(3):
        w_hh = w[f"lstm.weight_hh_l{layer}"].T
        gates_in = seq @ w[f"lstm.weight_ih_l{layer}"].T + (w[f"lstm.bias_ih_l{layer}"] + w[f"lstm.bias_hh_l{layer}"])
        batch, steps, _ = seq.shape
        size = w_hh.shape[0]
        h = np.zeros((batch, size), dtype=np.float32)
        c = np.zeros((batch, size), dtype=np.float32)
        outputs = np.empty((batch, steps, size), dtype=np.float32)
        for t in range(steps):
            g = gates_in[:, t] + h @ w_hh
            i, f, o = (_sigmoid(g[:, k * size:(k + 1) * size]) for k in (0, 1, 3))
            c = f * c + i * np.tanh(g[:, 2 * size:3 * size])
            h = o * np.tanh(c)
            outputs[:, t] = h
        seq = outputs
    return h


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (np.tanh(0.5 * x) + 1.0)


def louder(samples: np.ndarray) -> np.ndarray:
    """Quiet audio raised to GE2E_TARGET_DBFS (loud audio left alone)."""
    rms = float(np.sqrt(np.mean(samples.astype(np.float64) ** 2))) if len(samples) else 0.0
    if rms == 0:
        return samples
    gain = 10 ** (GE2E_TARGET_DBFS / 20) / rms
    return samples * gain if gain > 1 else samples


def _weights_file() -> Path:
    spec = importlib.util.find_spec("resemblyzer")
    if spec is None or spec.origin is None:
        raise MissingExtraError("resemblyzer", "labels")
    weights = Path(spec.origin).parent / "pretrained.pt"
    if not weights.exists():
        raise CPQAError(f"the resemblyzer package has no weights at {weights}: reinstall it (pip install "
                        "--force-reinstall resemblyzer)")
    return weights


def ge2e_weights() -> dict[str, np.ndarray]:
    """GE2E's weights as numpy arrays: read with torch once, then from an .npz in the cpqa cache."""
    from ..models import cache_dir

    source = _weights_file()
    stat = source.stat()
    cached = cache_dir() / "ge2e" / f"resemblyzer-{stat.st_size}-{stat.st_mtime_ns}.npz"
    if not cached.exists():
        torch = require("torch", "labels")
        state = torch.load(source, map_location="cpu")["model_state"]
        with atomic_path(cached, unique=True) as partial:
            np.savez(partial, **{k: v.float().numpy() for k, v in state.items() if k.startswith(("lstm.", "linear."))})
    with np.load(cached) as data:
        return {k: data[k].astype(np.float32) for k in data.files}


def load_ge2e(device: str):
    """The LSTM, the projection and the torch device, from the weights file in the resemblyzer wheel."""
    torch = require("torch", "labels")
    state = torch.load(_weights_file(), map_location="cpu")["model_state"]
    lstm = torch.nn.LSTM(40, 256, num_layers=3, batch_first=True)
    linear = torch.nn.Linear(256, 256)
    for module, prefix in ((lstm, "lstm."), (linear, "linear.")):
        module.load_state_dict({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)})
        module.to(device).eval()
    return lstm, linear, torch.device(device)
