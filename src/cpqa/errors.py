"""The one exception type users see, and the error for a missing or too old optional dependency."""

from __future__ import annotations

import functools
from importlib import metadata


class CPQAError(Exception):
    """A user error: bad input, bad recipe, missing extra. The message says what to do."""


class MissingExtraError(CPQAError):
    """An optional dependency is not installed, or is older than the version its extra states."""

    def __init__(self, package: str, extra: str, installed: str | None = None, needed: str | None = None):
        if installed is None:
            message = f"'{package}' is not installed. Install it with: pip install 'cpqa[{extra}]'"
        else:
            message = (f"'{package}' {installed} is installed but cpqa[{extra}] needs {package}{needed}. "
                       f"Upgrade it with: pip install -U 'cpqa[{extra}]'")
        super().__init__(message)
        self.package = package
        self.extra = extra


def require(module: str, extra: str, package: str | None = None):
    """Import an optional module lazily, or raise MissingExtraError naming the extra (also when the
    installed distribution is outside the versions the extra states in cpqa's metadata)."""
    import importlib

    try:
        loaded = importlib.import_module(module)
    except ImportError as exc:  # the package, or one of its own dependencies, is missing
        missing = exc.name or module
        if missing.split(".")[0] != module.split(".")[0]:
            raise CPQAError(
                f"'{package or module}' is installed but its dependency '{missing}' is missing. "
                f"Reinstall with: pip install 'cpqa[{extra}]'"
            ) from exc
        raise MissingExtraError(package or module, extra) from exc
    outdated = version_error(package or module.split(".")[0], extra)
    if outdated is not None:
        raise outdated
    return loaded


def version_error(package: str, extra: str) -> MissingExtraError | None:
    """The error for an installed `package` outside the versions cpqa's `extra` states (e.g.
    pyannote.audio 3.3 where `gpu` says >=4.0); None when it fits, is not installed, or the extra
    states nothing for it."""
    outside = _installed_outside(package, extra)
    return None if outside is None else MissingExtraError(package, extra, *outside)


@functools.cache
def _installed_outside(package: str, extra: str) -> tuple[str, str] | None:
    """(installed version, stated specifier) when they disagree."""
    from packaging.utils import canonicalize_name

    needed = stated_versions(extra).get(canonicalize_name(package))
    if needed is None:
        return None
    try:
        installed = metadata.version(package)
    except metadata.PackageNotFoundError:  # a display name, or a module without distribution metadata
        return None
    return None if needed.contains(installed, prereleases=True) else (installed, str(needed))


@functools.cache
def stated_versions(extra: str) -> dict:
    """The version specifiers (packaging SpecifierSet) cpqa's installed metadata states for the
    packages of `extra` and the core dependencies, by canonical distribution name: pyproject.toml's
    floors are the one source. Empty when cpqa runs from a tree without installed metadata."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    try:
        lines = metadata.requires("cpqa") or []
    except metadata.PackageNotFoundError:
        return {}
    out = {}
    for line in lines:
        req = Requirement(line)
        if req.specifier and (req.marker is None or req.marker.evaluate({"extra": extra})):
            out[canonicalize_name(req.name)] = req.specifier
    return out
