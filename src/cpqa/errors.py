"""The one exception type users see, and the error for a missing optional dependency."""


class CPQAError(Exception):
    """A user error: bad input, bad recipe, missing extra. The message says what to do."""


class MissingExtraError(CPQAError):
    """An optional dependency is not installed."""

    def __init__(self, package: str, extra: str):
        super().__init__(
            f"'{package}' is not installed. Install it with: pip install 'cpqa[{extra}]'"
        )
        self.package = package
        self.extra = extra


def require(module: str, extra: str, package: str | None = None):
    """Import an optional module lazily, or raise MissingExtraError naming the extra."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:  # the package, or one of its own dependencies, is missing
        missing = exc.name or module
        if missing.split(".")[0] != module.split(".")[0]:
            raise CPQAError(
                f"'{package or module}' is installed but its dependency '{missing}' is missing. "
                f"Reinstall with: pip install 'cpqa[{extra}]'"
            ) from exc
        raise MissingExtraError(package or module, extra) from exc
