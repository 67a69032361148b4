"""What a stage or backend needs before it runs (optional packages, environment variables), checked
for a whole build before its first stage, so a missing extra or token stops the build at once
instead of hours in.

A config declares its own needs by overriding `Config.requirements()` (see `cpqa.stage`); the
default collects those of the backends and sub-configs it holds, so a stage's config reports every
backend a recipe names in it. Checks are cheap: modules are looked up, not imported.

    class Config(HubConfig):
        def requirements(self):
            return [*super().requirements(), Package("funasr", "gpu")]
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterable
from dataclasses import dataclass

from .errors import CPQAError, MissingExtraError, version_error


@dataclass(frozen=True)
class Package:
    """An importable module that a cpqa extra installs."""

    module: str
    extra: str
    package: str | None = None
    """The distribution's name where it differs from the module's top level (llama-cpp-python)."""

    def problem(self) -> MissingExtraError | None:
        name = self.package or self.module.split(".")[0]
        try:
            found = importlib.util.find_spec(self.module) is not None
        except ImportError:  # a parent package of a dotted module is missing
            found = False
        except ValueError:  # imported already, without a spec (a stand-in in sys.modules)
            found = True
        return version_error(name, self.extra) if found else MissingExtraError(name, self.extra)


@dataclass(frozen=True)
class EnvVar:
    """An environment variable that must be set and non-empty (a token, an API key)."""

    name: str
    why: str

    def problem(self) -> CPQAError | None:
        return None if os.environ.get(self.name) else CPQAError(f"set {self.name}: {self.why}")


Requirement = Package | EnvVar


def unmet(requirements: Iterable[Requirement]) -> list[CPQAError]:
    """The problems of the requirements not met, each once, in order."""
    return [p for r in dict.fromkeys(requirements) if (p := r.problem()) is not None]


def check_stages(stages: Iterable) -> None:
    """Raise one CPQAError listing every unmet requirement of these stage specs (`.name`,
    `.config`), with one install command covering every missing extra; nothing runs before it."""
    lines, extras = [], {}
    for spec in stages:
        for problem in unmet(spec.config.requirements()):
            lines.append(f"stage '{spec.name}': {problem}")
            if isinstance(problem, MissingExtraError):
                extras[problem.extra] = None
    if not lines:
        return
    if len(extras) > 1:
        lines.append(f"Install every missing extra with: pip install -U 'cpqa[{','.join(extras)}]'")
    raise CPQAError("this build cannot run here; no stage was started:\n  " + "\n  ".join(lines))
