"""Resolve every documented extra combination of cpqa against the package index, installing nothing.

    python .ci/check_extras.py                  # the combinations of [tool.cpqa] install-combinations
    python .ci/check_extras.py gpu,finetune     # just these

Each combination is resolved by `uv pip compile` (metadata only, for Linux x86_64 and the lowest
Python cpqa supports). It fails when

- a combination has no solution (a conflict: uv's explanation is printed), or
- a combination backtracks below the stated floors of [tool.cpqa] resolution-floors: a version the
  resolver may pick but no documented install should get (`cpqa[vllm,finetune]` quietly gets
  vLLM 0.30, whose metadata accepts the transformers releases it breaks on).

PyPI hiccups: uv retries every request itself (UV_HTTP_RETRIES, default 3); a compile that fails
without a resolution error is retried once after RETRY_WAIT_S. An index still unreachable ends the
check with exit code 3 and says so, never with a pass. Exit codes: 0 all resolve, 1 a conflict or a
backtrack, 3 the index could not be read.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
import tomllib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
NO_SOLUTION = "No solution found"
RETRY_WAIT_S = 10.0
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)")


class IndexUnreachable(Exception):
    """uv failed for a reason other than an unsatisfiable resolution."""


def compile_extras(uv: list[str], pyproject_path: Path, extras: tuple[str, ...], args) -> dict[str, Version]:
    """Resolved versions by canonical name; ValueError (uv's explanation) when nothing satisfies
    the extras, IndexUnreachable when uv failed otherwise, twice."""
    cmd = [*uv, "pip", "compile", str(pyproject_path), "--quiet", "--no-header", "--no-annotate",
           "--python-version", args.python, "--python-platform", args.platform]
    for extra in extras:
        cmd += ["--extra", extra]
    for link in args.find_links:
        cmd += ["--find-links", link]
    if args.offline:
        cmd += ["--offline", "--no-index"]
    for attempt in (1, 2):
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode == 0:
            return {canonicalize_name(m[1]): Version(m[2]) for line in proc.stdout.splitlines()
                    if (m := PIN.match(line.strip()))}
        if NO_SOLUTION in proc.stderr:
            raise ValueError(proc.stderr.strip())
        if attempt == 1 and not args.offline:
            time.sleep(RETRY_WAIT_S)
    raise IndexUnreachable(proc.stderr.strip())


def check(combinations: list[tuple[str, ...]], pyproject_path: Path, args) -> int:
    settings = tomllib.loads(pyproject_path.read_text()).get("tool", {}).get("cpqa", {})
    floors = {canonicalize_name(k): Version(v) for k, v in settings.get("resolution-floors", {}).items()}
    uv = [args.uv] if args.uv else [sys.executable, "-m", "uv"]
    started = time.perf_counter()

    def run(extras):
        try:
            return extras, compile_extras(uv, pyproject_path, extras, args)
        except (ValueError, IndexUnreachable) as exc:
            return extras, exc

    with ThreadPoolExecutor(args.jobs) as pool:
        results = list(pool.map(run, combinations))
    failures, unreachable = [], []
    for combo, got in results:
        label = f"cpqa[{','.join(combo)}]"
        if isinstance(got, IndexUnreachable):
            unreachable.append(f"{label}: {got}")
        elif isinstance(got, ValueError):
            failures.append(f"{label} has no solution:\n{got}")
        else:
            low = [f"{name} {got[name]} (floor {floor})" for name, floor in floors.items()
                   if name in got and got[name] < floor]
            if low:
                failures.append(f"{label} backtracks below the stated floors: {', '.join(low)}")
            else:
                print(f"ok   {label}: {len(got)} packages", flush=True)
    for line in failures:
        print(f"FAIL {line}", flush=True)
    for line in unreachable:
        print(f"INDEX UNREACHABLE {line}", flush=True)
    print(f"{len(combinations)} resolutions in {time.perf_counter() - started:.1f} s", flush=True)
    return 1 if failures else 3 if unreachable else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("combinations", nargs="*", help="e.g. gpu,llm (default: [tool.cpqa] install-combinations)")
    parser.add_argument("--pyproject", type=Path, default=ROOT / "pyproject.toml")
    parser.add_argument("--python", default=None, help="Python version (default: the lowest requires-python allows)")
    parser.add_argument("--platform", default="x86_64-manylinux_2_35", help="uv --python-platform")
    parser.add_argument("--uv", default=os.environ.get("UV"), help="uv executable (default: python -m uv)")
    parser.add_argument("--find-links", action="append", default=[], help="extra wheel folders (tests)")
    parser.add_argument("--offline", action="store_true", help="use only --find-links folders (tests)")
    parser.add_argument("--jobs", type=int, default=4, help="resolutions at once")
    args = parser.parse_args(argv)
    pyproject = tomllib.loads(args.pyproject.read_text())
    if args.python is None:
        args.python = re.search(r"\d+\.\d+", pyproject["project"]["requires-python"])[0]
    names = args.combinations or pyproject["tool"]["cpqa"]["install-combinations"]
    combinations = [tuple(n.strip() for n in name.split(",")) for name in names]
    unknown = {e for c in combinations for e in c} - set(pyproject["project"]["optional-dependencies"])
    if unknown:
        parser.error(f"no such extra: {', '.join(sorted(unknown))}")
    return check(combinations, args.pyproject, args)


if __name__ == "__main__":
    sys.exit(main())
