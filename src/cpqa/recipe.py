"""Recipes: ordered stages with typed configs, loaded from packaged or user YAML.

```yaml
documentation: What this recipe is for.
stages:
  ingest: {}
  segment: {backend: {name: silero}}
  transcribe: {backend: {name: faster-whisper, model: embedded:base}}
```
A key is the stage's name in the run; `type:` picks the registered stage when the name differs.
`--set stage.param=value` overrides are applied before validation, and everything is validated
before any model loads.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from .errors import CPQAError
from .registry import STAGES
from .stage import Stage, StageConfig


@dataclass
class StageSpec:
    name: str
    type: str
    cls: type[Stage]
    config: StageConfig


@dataclass
class Recipe:
    name: str
    documentation: str
    stages: list[StageSpec]
    source: str

    def stage_names(self) -> list[str]:
        return [s.name for s in self.stages]

    def until(self, stage: str | None) -> list[StageSpec]:
        if stage is None:
            return self.stages
        if stage not in self.stage_names():
            raise CPQAError(f"--until '{stage}': the recipe has no such stage. Stages: {', '.join(self.stage_names())}")
        return self.stages[: self.stage_names().index(stage) + 1]


def packaged_recipes() -> dict[str, Path]:
    folder = resources.files("cpqa") / "recipes"
    return {Path(p.name).stem: Path(str(p)) for p in folder.iterdir() if p.name.endswith(".yaml")}


def _parse_value(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def apply_override(data: dict[str, Any], override: str) -> None:
    """Apply one `stage.param[.sub]=value` override to raw recipe data."""
    if "=" not in override:
        raise CPQAError(f"--set '{override}': write it as stage.param=value")
    key, value = override.split("=", 1)
    parts = key.strip().split(".")
    if len(parts) < 2:
        raise CPQAError(f"--set '{override}': name a stage and a parameter, e.g. transcribe.beam_size=5")
    stages = data.setdefault("stages", {})
    if parts[0] not in stages:
        raise CPQAError(f"--set '{override}': the recipe has no stage '{parts[0]}'. Stages: {', '.join(stages)}")
    node = stages[parts[0]]
    if node is None:
        node = stages[parts[0]] = {}
    for part in parts[1:-1]:
        child = node.get(part)
        if isinstance(child, str):  # `backend: silero` shorthand
            child = {"name": child}
        node[part] = child if isinstance(child, dict) else {}
        node = node[part]
    node[parts[-1]] = _parse_value(value)


def load_recipe(name_or_path: str, overrides: list[str] | None = None) -> Recipe:
    path = Path(name_or_path)
    packaged = packaged_recipes()
    if name_or_path in packaged:
        path = packaged[name_or_path]
    elif not path.exists():
        raise CPQAError(
            f"recipe '{name_or_path}' is neither a packaged recipe ({', '.join(sorted(packaged))}) nor a file"
        )
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise CPQAError(f"recipe {path} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("stages"), dict) or not data["stages"]:
        raise CPQAError(f"recipe {path} needs a non-empty 'stages:' mapping")
    for override in overrides or []:
        apply_override(data, override)
    unknown = set(data) - {"documentation", "stages", "name"}
    if unknown:
        raise CPQAError(f"recipe {path}: unknown top-level keys {sorted(unknown)}")
    stages = []
    for stage_name, raw in data["stages"].items():
        raw = dict(raw or {})
        stage_type = raw.pop("type", stage_name)
        cls = STAGES.get(stage_type)
        try:
            config = cls.Config.model_validate(raw)
        except ValidationError as exc:
            raise CPQAError(f"recipe {path}, stage '{stage_name}':\n{_format_validation(exc)}") from None
        stages.append(StageSpec(stage_name, stage_type, cls, config))
    _check_chain(stages, path)
    return Recipe(
        name=data.get("name", path.stem),
        documentation=str(data.get("documentation", "")).strip(),
        stages=stages,
        source=str(path),
    )


def _format_validation(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(stage)"
        lines.append(f"  {loc}: {err['msg']}")
    return "\n".join(lines)


def _check_chain(stages: list[StageSpec], path: Path) -> None:
    from .stage import SourceStage

    if not issubclass(stages[0].cls, SourceStage):
        raise CPQAError(f"recipe {path}: the first stage must read the input (e.g. ingest), not '{stages[0].name}'")
    for prev, cur in zip(stages, stages[1:]):
        if not issubclass(prev.cls.output_type, cur.cls.input_type):
            raise CPQAError(
                f"recipe {path}: stage '{cur.name}' takes {cur.cls.input_type.__name__} records "
                f"but '{prev.name}' gives {prev.cls.output_type.__name__}"
            )
