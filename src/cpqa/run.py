"""`build`, the library entry point behind `cpqa build`: check a recipe's requirements, then run
(or resume) it into a run directory with a registered executor (`cpqa.executors`). The run
directory's layout is `cpqa.rundir`'s."""

from __future__ import annotations

from pathlib import Path

from .executors.base import BuildResult, plan
from .recipe import load_recipe
from .registry import EXECUTORS
from .requirements import check_stages
from .stage import ProgressHook


def build(input_path: str | Path, run_dir: str | Path, recipe: str = "local", overrides: list[str] | None = None,
          until: str | None = None, progress: ProgressHook | None = None, executor: str = "local",
          address: str | None = None) -> BuildResult:
    """Run (or resume) a recipe on INPUT into RUN. `executor="ray"` runs model stages on Ray actor
    pools (`address` of a running cluster, or a local Ray started here)."""
    loaded = load_recipe(recipe, overrides)
    # every stage still to run must find its packages and variables, or nothing starts
    check_stages(p.spec for p in plan(Path(run_dir), loaded, Path(input_path), until) if not p.done)
    runner = EXECUTORS.get(executor)(progress, address=address)
    return runner.build(Path(input_path), Path(run_dir), loaded, until, overrides)
