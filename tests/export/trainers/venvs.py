"""Virtual environments holding the trainers' own pinned releases, for the loader test
(test_trainer_loaders.py). Each lives outside the repository, in CPQA_TRAINER_VENVS (default
~/.cache/cpqa-trainers), is built once (minutes) and reused while its `.ready` stamp stands.

Every install is constrained to CPU torch 2.13.0, as cpqa's own. Where a trainer pulls a CUDA-only
wheel that cannot load beside it (PyPI has no CPU torchvision/torchaudio for Linux), the wheel is
removed, and LLaMA-Factory, which imports torchaudio at module level, gets the small shim in
torchaudio_shim/ (load + functional.resample with soundfile and torch)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
TORCH = "torch==2.13.0"
TRAINERS = {
    # ms-swift reads audio with librosa (its default backend), which it leaves to the user to install
    "ms-swift": {"packages": ["ms-swift==4.6.0", "librosa", "soundfile"], "remove": [], "shim": False},
    "llamafactory": {"packages": ["llamafactory==0.9.5", "soundfile"], "remove": ["torchvision", "torchaudio"],
                     "shim": True},
}


def venv_root() -> Path:
    return Path(os.environ.get("CPQA_TRAINER_VENVS", Path.home() / ".cache" / "cpqa-trainers"))


def trainer_python(name: str) -> Path:
    """The interpreter of the trainer's venv, built first when it is not ready."""
    spec = TRAINERS[name]
    venv = venv_root() / "-".join(p.replace("==", "-") for p in spec["packages"][:1])
    python = venv / "bin" / "python"
    if (venv / ".ready").exists():
        return python
    venv.mkdir(parents=True, exist_ok=True)
    constraints = venv / "constraints.txt"
    constraints.write_text(TORCH + "\n")
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(python), "-m", "pip", "install", "-q", "-c", str(constraints)]
    subprocess.run([*pip, TORCH], check=True)
    subprocess.run([*pip, *spec["packages"]], check=True)
    if spec["remove"]:
        subprocess.run([str(python), "-m", "pip", "uninstall", "-q", "-y", *spec["remove"]], check=True)
    if spec["shim"]:
        site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                              check=True, capture_output=True, text=True).stdout.strip()
        shutil.copytree(HERE / "torchaudio_shim" / "torchaudio", Path(site) / "torchaudio", dirs_exist_ok=True)
    (venv / ".ready").touch()
    return python
