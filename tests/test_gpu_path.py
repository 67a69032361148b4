"""The GPU path: extras resolution check, requirements checked before any stage, version floors,
and `make gpu-check` on tiny shapes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import types
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cpqa import errors
from cpqa.cli import app
from cpqa.errors import MissingExtraError, require
from cpqa.requirements import EnvVar, Package, unmet

ROOT = Path(__file__).resolve().parents[1]
AUDIO = ROOT / "examples" / "ami_excerpt"


# --- the extras resolution step -------------------------------------------------------------------

def _wheel(folder: Path, name: str, version: str, requires: tuple[str, ...] = ()) -> None:
    info = f"{name}-{version}.dist-info"
    with zipfile.ZipFile(folder / f"{name}-{version}-py3-none-any.whl", "w") as whl:
        whl.writestr(f"{info}/METADATA", "\n".join(["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}",
                                                   *(f"Requires-Dist: {r}" for r in requires)]) + "\n")
        whl.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        whl.writestr(f"{info}/RECORD", "")


@pytest.fixture
def index(tmp_path):
    """A local wheel index: alpha 2.0 needs beta<2, alpha 1.0 does not; and a project whose extras
    `a` + `b` resolve only by backtracking alpha to 1.0, and `b` + `pin` conflict outright."""
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    _wheel(wheels, "alpha", "1.0")
    _wheel(wheels, "alpha", "2.0", ("beta<2",))
    _wheel(wheels, "beta", "1.0")
    _wheel(wheels, "beta", "2.0")
    (tmp_path / "pyproject.toml").write_text('''
[project]
name = "demo"
version = "0"
requires-python = ">=3.11"
[project.optional-dependencies]
a = ["alpha>=1"]
b = ["beta>=2"]
pin = ["beta<2"]
[tool.cpqa]
install-combinations = ["a", "b"]
resolution-floors = {alpha = "2"}
''')
    return tmp_path


def _check(index: Path, *combinations: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / ".ci" / "check_extras.py"), "--pyproject",
                           str(index / "pyproject.toml"), "--offline", "--find-links", str(index / "wheels"),
                           *combinations], capture_output=True, text=True, timeout=120)


def test_extras_check_passes_fails_on_a_conflicting_pin_and_on_a_backtrack(index):
    pytest.importorskip("uv")
    ok = _check(index)  # the combinations the project documents
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "ok   cpqa[a]" in ok.stdout and "ok   cpqa[b]" in ok.stdout

    conflict = _check(index, "b,pin")
    assert conflict.returncode == 1
    assert "FAIL cpqa[b,pin] has no solution" in conflict.stdout and "beta" in conflict.stdout

    backtrack = _check(index, "a,b")  # resolvable, but only with alpha 1.0, below the stated floor 2
    assert backtrack.returncode == 1
    assert "FAIL cpqa[a,b] backtracks below the stated floors: alpha 1.0 (floor 2)" in backtrack.stdout


def test_extras_check_rejects_an_unknown_extra(index):
    assert _check(index, "a,nope").returncode == 2


# --- requirements before any stage ----------------------------------------------------------------

def _stand_in(monkeypatch, *modules: str) -> None:
    """Make these modules look installed (a stub in sys.modules; no distribution metadata)."""
    for name in modules:
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))


@pytest.fixture
def paper_env(monkeypatch):
    """Everything the paper recipe needs, faked, so each test can take one thing away."""
    _stand_in(monkeypatch, "pyannote", "pyannote.audio", "funasr")
    monkeypatch.setenv("HF_TOKEN", "hf_x")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-x")
    return monkeypatch


def _build_paper(tmp_path):
    run = tmp_path / "run"
    result = CliRunner().invoke(app, ["build", str(AUDIO), "-o", str(run), "--recipe", "paper"])
    return result, run


def test_paper_build_without_funasr_stops_before_any_stage_naming_the_extra(tmp_path, paper_env):
    paper_env.setitem(sys.modules, "funasr", None)  # as if not installed
    result, run = _build_paper(tmp_path)
    assert result.exit_code == 2
    assert "stage 'annotate': 'funasr' is not installed. Install it with: pip install 'cpqa[gpu]'" in result.output
    assert "no stage was started" in result.output
    assert not run.exists()


def test_paper_build_without_hf_token_stops_before_any_stage_naming_the_variable(tmp_path, paper_env):
    paper_env.delenv("HF_TOKEN")
    result, run = _build_paper(tmp_path)
    assert result.exit_code == 2
    assert "stage 'diarize': set HF_TOKEN: the pyannote model 'pyannote/speaker-diarization-community-1' is gated" \
        in result.output
    assert "funasr" not in result.output and not run.exists()


def test_several_missing_extras_get_one_install_command(tmp_path, paper_env):
    paper_env.setitem(sys.modules, "funasr", None)
    paper_env.setitem(sys.modules, "httpx", None)
    result, _ = _build_paper(tmp_path)
    assert "Install every missing extra with: pip install -U 'cpqa[gpu,llm]'" in result.output


def test_local_build_without_llama_cpp_fails_in_seconds_with_the_install_command(tmp_path):
    blocker = tmp_path / "site"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text("import sys\nsys.modules['llama_cpp'] = None\n")
    env = {**os.environ, "PYTHONPATH": str(blocker)}
    started = time.perf_counter()
    proc = subprocess.run([str(Path(sys.executable).parent / "cpqa"), "build", str(AUDIO), "-o", str(tmp_path / "run")],
                          capture_output=True, text=True, env=env, timeout=60)
    elapsed = time.perf_counter() - started
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "stage 'qa': 'llama-cpp-python' is not installed. Install it with: pip install 'cpqa[llm]'" in proc.stderr
    assert elapsed < 5, f"{elapsed:.1f} s"
    assert not (tmp_path / "run").exists()


def test_requirements_of_finished_stages_are_not_asked_again(tmp_path, paper_env, monkeypatch):
    from cpqa.executors.base import plan
    from cpqa.recipe import load_recipe
    from cpqa.requirements import check_stages

    monkeypatch.delenv("HF_TOKEN")
    plans = plan(tmp_path, load_recipe("paper"), AUDIO)
    diarize = next(p for p in plans if p.spec.name == "diarize")
    with pytest.raises(errors.CPQAError, match="HF_TOKEN"):
        check_stages(p.spec for p in plans if not p.done)
    diarize.dir.mkdir(parents=True)
    (diarize.dir / "_SUCCESS").write_text("")
    check_stages(p.spec for p in plans if not p.done)  # resuming after diarize needs no token


def test_env_var_and_package_problems(monkeypatch):
    monkeypatch.delenv("CPQA_TEST_TOKEN", raising=False)
    missing = unmet([EnvVar("CPQA_TEST_TOKEN", "a test needs it"), Package("cpqa_no_such_module", "gpu"),
                     Package("pytest", "test"), EnvVar("CPQA_TEST_TOKEN", "a test needs it")])
    assert [str(p) for p in missing] == [
        "set CPQA_TEST_TOKEN: a test needs it",
        "'cpqa_no_such_module' is not installed. Install it with: pip install 'cpqa[gpu]'"]


# --- version floors -------------------------------------------------------------------------------

@pytest.fixture
def stated(monkeypatch):
    """cpqa's metadata as if its gpu extra stated pytest>=999 (a floor the installed one misses)."""
    errors.stated_versions.cache_clear()
    errors._installed_outside.cache_clear()
    monkeypatch.setattr(errors.metadata, "requires", lambda name: ['pytest>=999; extra == "gpu"', "numpy>=1"])
    yield
    errors.stated_versions.cache_clear()
    errors._installed_outside.cache_clear()


def test_a_too_old_package_names_the_version_needed(stated):
    installed = errors.metadata.version("pytest")
    with pytest.raises(MissingExtraError) as error:
        require("pytest", "gpu")
    assert str(error.value) == (f"'pytest' {installed} is installed but cpqa[gpu] needs pytest>=999. "
                                "Upgrade it with: pip install -U 'cpqa[gpu]'")
    assert require("pytest", "test") is sys.modules["pytest"]  # the test extra states no such floor
    assert str(unmet([Package("pytest", "gpu")])[0]) == str(error.value)


def test_the_installed_metadata_states_the_gpu_floors():
    """pyproject's floors reach the run-time checks (cpqa installed, editable or not)."""
    floors = errors.stated_versions("gpu")
    assert floors["pyannote-audio"].contains("4.0") and not floors["pyannote-audio"].contains("3.3.2")
    assert not errors.stated_versions("vllm")["vllm"].contains("0.6.2")


# --- make gpu-check -------------------------------------------------------------------------------

def test_gpu_check_runs_on_tiny_shapes(tmp_path, capsys):
    pytest.importorskip("transformers")
    sys.path.insert(0, str(ROOT))
    try:
        from benchmarks.gpu_check import main
    finally:
        sys.path.remove(str(ROOT))
    report = main(["--tiny", "--audio-s", "12", "--clips", "2", "--max-new-tokens", "3", "--json", str(tmp_path / "r.json")])
    assert report["tiny"] and (tmp_path / "r.json").exists()
    assert [r["backend"] for r in report["annotate"]][:2] == ["audeering-msp-dim", "audeering-age-gender"]
    for r in report["annotate"]:
        assert r["audio_hours_per_gpu_hour"] > 0 and r["batch_seconds"] in (16.0, 32.0)
    qwen = report["evaluate"][0]
    assert qwen["backend"] == "qwen2-audio (transformers)" and qwen["answered"] == qwen["answers"] == 2
    assert qwen["answers_per_s"] > 0 and qwen["batch_size"] in (1, 2)
    printed = capsys.readouterr().out
    assert "audio-h per GPU-h" in printed and "answers/s" in printed
