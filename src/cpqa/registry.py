"""Name → class registries for stages, backends, executors and export formats. Recipes and
commands name entries; no if/elif over names. The built-ins are `cpqa.catalog`'s rows, added here by
dotted path, so importing this module makes every built-in name resolvable and imports no stage."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from . import catalog
from .errors import CPQAError

T = TypeVar("T")


@dataclass
class Entry(Generic[T]):
    name: str
    target: type[T] | str
    """The class, or its dotted path 'module:Class' / 'module.Class' for lazy loading."""
    extra: str | None = None
    description: str = ""

    def load(self) -> type[T]:
        if isinstance(self.target, str):
            self.target = import_dotted(self.target)
        return self.target

    def summary(self) -> str:
        """The description, or the first line of the class docstring (which loads the class)."""
        return self.description or _first_line(self.load().__doc__)


def import_dotted(path: str):
    module_name, _, attr = path.replace(":", ".").rpartition(".")
    if not module_name:
        raise CPQAError(f"'{path}' is not a dotted path like 'package.module.ClassName'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise CPQAError(f"cannot import '{module_name}' for '{path}': {exc}") from exc
    try:
        return getattr(module, attr)
    except AttributeError as exc:
        raise CPQAError(f"'{module_name}' has no attribute '{attr}'") from exc


@dataclass
class Registry(Generic[T]):
    """A registry of one kind (e.g. 'vad' backends). Names are unique within it."""

    kind: str
    entries: dict[str, Entry[T]] = field(default_factory=dict)

    def register(self, name: str, *, extra: str | None = None, description: str = ""):
        def decorator(cls):
            self.add(name, cls, extra=extra, description=description)
            return cls

        return decorator

    def add(self, name: str, target, *, extra: str | None = None, description: str = "") -> None:
        if name in self.entries and self.entries[name].target is not target:
            raise ValueError(f"{self.kind} '{name}' is registered twice")
        self.entries[name] = Entry(name, target, extra, description)

    def get(self, name: str) -> type[T]:
        """The class registered as `name`; a dotted path is accepted as an escape hatch."""
        if name in self.entries:
            return self.entries[name].load()
        if "." in name or ":" in name:
            return import_dotted(name)
        known = ", ".join(sorted(self.entries)) or "none"
        raise CPQAError(f"unknown {self.kind} '{name}'. Known: {known}")

    def names(self) -> list[str]:
        return sorted(self.entries)


def _first_line(doc: str | None) -> str:
    return (doc or "").strip().splitlines()[0] if doc and doc.strip() else ""


def _filled(registry: Registry, rows: list[tuple]) -> Registry:
    for name, target, *more in rows:
        extra, description = more[0] if more else None, more[1] if len(more) > 1 else ""
        registry.add(name, target, extra=extra, description=description)
    return registry


STAGES: Registry = _filled(Registry("stage"), catalog.STAGES)
EXECUTORS: Registry = _filled(Registry("executor"), catalog.EXECUTORS)
EXPORT_FORMATS: Registry = _filled(Registry("export format"), catalog.EXPORT_FORMATS)
BACKENDS: dict[str, Registry] = {
    capability: _filled(Registry(f"{capability} backend"), rows) for capability, rows in catalog.BACKENDS.items()}


def backend_registry(capability: str) -> Registry:
    """The registry of backends for one capability ('vad', 'asr', 'emotion', 'llm', ...)."""
    return BACKENDS.setdefault(capability, Registry(f"{capability} backend"))
