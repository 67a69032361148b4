"""The one core abstraction: a Stage turns a batch of input records into output records or skips.

The executor (`cpqa.executors`) owns reading, batching, writing, progress, stats and resume; a stage
only declares what it takes and gives, loads its models once in `setup()`, and implements
`process_batch()`. Backends are configured inside a stage's config as `{name: ..., **options}`
and validated against the registered backend's own config model.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .errors import CPQAError
from .manifest import iter_jsonl
from .records import Drop, Record, Recording, Skip
from .registry import backend_registry
from .requirements import Requirement
from .rundir import RECORDS, SUCCESS

In = TypeVar("In", bound=BaseModel)
Out = TypeVar("Out", bound=Record)


class Config(BaseModel):
    """Base of stage and backend configs: unknown keys are errors, and fields listed in
    `non_semantic` (how to compute, not what) do not enter the stage signature."""

    model_config = ConfigDict(extra="forbid", validate_default=True)
    non_semantic: ClassVar[frozenset[str]] = frozenset()

    def semantic_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, value in self:
            if name in self.non_semantic:
                continue
            if isinstance(value, (Config, BackendSpec)):
                out[name] = value.semantic_dict()
            elif isinstance(value, BaseModel):
                out[name] = value.model_dump(mode="json")
            else:
                out[name] = value
        return out

    def requirements(self) -> list[Requirement]:
        """What running with this config needs (`cpqa.requirements`), checked for a whole build
        before its first stage: those of the backends and sub-configs it holds. A config that needs
        more (a backend's package, a token) overrides this and adds to `super().requirements()`."""
        needs: list[Requirement] = []
        for _, value in self:
            items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else [value]
            for item in items:
                if isinstance(item, (Config, BackendSpec)):
                    needs += item.requirements()
        return needs


class StageConfig(Config):
    non_semantic: ClassVar[frozenset[str]] = frozenset({"batch_size", "num_cpus", "num_gpus", "workers"})
    batch_size: int = Field(16, ge=1, description="Inputs per process_batch call (and per durable write).")
    num_cpus: float = Field(1.0, gt=0, description="CPUs one worker of this stage holds (Ray executor).")
    num_gpus: float = Field(0.0, ge=0, description="GPUs one worker of this stage holds (Ray executor).")
    workers: int = Field(0, ge=0, description="Ray actor-pool size; 0 sizes it to the cluster, leaving a CPU "
                                                 "free for reading so a small machine cannot deadlock.")


class BackendSpec(BaseModel):
    """A backend chosen by registered name (or dotted path) with its validated options.
    Written flat in recipes: `{name: faster-whisper, model: base, device: cpu}`."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    capability: str
    name: str
    options: Config

    @classmethod
    def parse(cls, capability: str, value: Any) -> BackendSpec:
        if isinstance(value, BackendSpec):
            return value
        if isinstance(value, str):
            value = {"name": value}
        if not isinstance(value, dict) or "name" not in value:
            raise ValueError(f"a {capability} backend is written as {{name: ..., option: value}}")
        options = dict(value)
        name = options.pop("name")
        backend_cls = backend_registry(capability).get(name)
        config_cls: type[Config] = getattr(backend_cls, "Config", Config)
        return cls(capability=capability, name=name, options=config_cls.model_validate(options))

    def semantic_dict(self) -> dict[str, Any]:
        return {"name": self.name, **self.options.semantic_dict()}

    def requirements(self) -> list[Requirement]:
        return self.options.requirements()

    def build(self):
        """Instantiate the backend with its options."""
        return backend_registry(self.capability).get(self.name)(self.options)

    def model_dump_flat(self) -> dict[str, Any]:
        return {"name": self.name, **self.options.model_dump(mode="json")}


def backend_field(capability: str, field_name: str = "backend", optional: bool = False):
    """A validator turning a flat `{name: ..., **options}` into a BackendSpec of `capability`;
    with `optional`, null, false or 'none' mean no backend (None)."""

    def check(cls, value):
        if optional and value in (None, False, "none"):
            return None
        try:
            return BackendSpec.parse(capability, value)
        except CPQAError as exc:
            raise ValueError(str(exc)) from exc

    return field_validator(field_name, mode="before")(check)


class ProgressHook:
    """Called by the executor; the CLI renders it. The library itself never prints."""

    def stage_started(self, name: str, total: int | None, done: int) -> None: ...

    def advance(self, name: str, n: int) -> None: ...

    def stage_finished(self, name: str, stats: dict[str, Any], already_done: bool) -> None: ...


@dataclass
class StageContext:
    """What a running stage may know about its run."""

    run_dir: Path
    stage_dir: Path
    name: str
    input_path: Path | None = None
    recording_lookup: Callable[[str], Recording] | None = None
    earlier_stages: dict[str, Path] = field(default_factory=dict)
    """Directories of the stages before this one in the build, by name (see `records_of`)."""
    counters: Counter = field(default_factory=Counter)
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("cpqa.stage"))

    def recording(self, recording_id: str) -> Recording:
        if self.recording_lookup is None:
            raise CPQAError(f"stage '{self.name}' needs recordings but the recipe has no ingest stage")
        return self.recording_lookup(recording_id)

    def records_of(self, stage: str) -> Iterator[dict[str, Any]]:
        """Stream the records of an earlier, finished stage of this build (e.g. every transcribed
        segment, for a stage whose direct input is a filtered subset). The executor owns the files."""
        if stage not in self.earlier_stages:
            raise CPQAError(f"stage '{self.name}' reads the records of '{stage}', which does not run before it. "
                            f"Earlier stages: {', '.join(self.earlier_stages) or 'none'}")
        path = self.earlier_stages[stage]
        if not (path / SUCCESS).exists():
            raise CPQAError(f"stage '{stage}' has not finished ({path})")
        return iter_jsonl(path / RECORDS)


class Stage(Generic[In, Out]):
    """Base of every stage. Subclass, set the class attributes, add a row to `cpqa.catalog`."""

    name: ClassVar[str]
    version: ClassVar[str] = "1"
    """Bump when the stage's output for the same config changes (enters the signature)."""
    Config: ClassVar[type[StageConfig]] = StageConfig

    @classmethod
    def data_digest(cls, config: StageConfig) -> str | None:
        """A digest of the data files the stage reads for `config` (prompts, word lists), which
        enters the signature: editing one reruns the stage. None: the stage reads none."""
        return None

    input_type: ClassVar[type[BaseModel]]
    output_type: ClassVar[type[Record]]

    def __init__(self, config: StageConfig, context: StageContext):
        self.config = config
        self.context = context
        self.log = context.logger

    batch_by: ClassVar[str | None] = None
    """A field of the input records (e.g. 'recording_id'): the executors never split a run of
    inputs sharing its value across batches, so the stage sees, say, all of a recording's segments
    at once (a batch then holds at least one whole run)."""

    needs_fit: ClassVar[bool] = False
    """True for stages that must see every input before processing any (e.g. balancing):
    the executor then calls `fit()` over the whole input, after `setup()` and before the batches,
    on every (re)start, so `fit` must be deterministic."""

    def setup(self) -> None:
        """Load models once. Called lazily, only when there is work to do."""

    def fit(self, items: Iterator[In]) -> None:
        """See `needs_fit`. Keep only small per-item summaries: the input may be large."""

    def process_batch(self, items: list[In]) -> Iterable[Out | Drop | Skip]:
        """Outputs (any number per input), `Drop`s (inputs left out by design) and `Skip`s (inputs
        the stage failed on); the executor writes each kind to its own file."""
        raise NotImplementedError

    def teardown(self) -> None:
        """Release models."""

    def count(self, key: str, n: float = 1) -> None:
        """Add to a stage counter saved in stats.json. Counted in `fit()`, it is a whole-input
        figure (replaced on a restart); counted in `process_batch()`, it sums over batches."""
        self.context.counters[key] += n


class Filter(Stage[Out, Out]):
    """A stage that decides, per input, keep or drop with a reason (datatrove's filter role).
    `keep` returns the record to write (the input, possibly updated), a `Drop`, or a `Skip` when it
    cannot decide."""

    def keep(self, item: Out) -> Out | Drop | Skip:
        raise NotImplementedError

    def process_batch(self, items: list[Out]) -> Iterable[Out | Drop | Skip]:
        return [self.keep(item) for item in items]


class SourceStage(Stage[In, Out]):
    """A first stage: its inputs are discovered from the INPUT path instead of a previous stage."""

    def discover(self, input_path: Path) -> Iterator[In]:
        raise NotImplementedError
