"""The run as the review app sees it: its clips and generated QA, read once at start-up.

Clip audio must lie inside the run directory; a clip's `audio` may be relative to the run or
absolute. `audio_file` is the only way the app turns a URL path into a file.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from ..errors import CPQAError
from ..qa_source import CLIPS_STAGE, run_qa_records
from ..records import Clip, QAItem
from ..rundir import iter_stage_records, resolve_path

logger = logging.getLogger(__name__)


@dataclass
class RunData:
    run_dir: Path
    clips: dict[str, Clip]
    """In the order the clips stage wrote them."""
    qa: dict[str, QAItem]
    qa_by_clip: dict[str, list[str]] = field(default_factory=dict, init=False)
    audio_paths: dict[str, str] = field(default_factory=dict, init=False)
    """clip id → its audio as a POSIX path relative to the run (absent when outside the run)."""
    _served: set[Path] = field(default_factory=set, init=False, repr=False)

    def __post_init__(self):
        for item in self.qa.values():
            self.qa_by_clip.setdefault(item.clip_id, []).append(item.id)
        root = self.run_dir.resolve()
        for clip in self.clips.values():
            resolved = resolve_path(clip.audio, self.run_dir)
            if resolved.is_relative_to(root) and resolved.is_file():
                self.audio_paths[clip.id] = resolved.relative_to(root).as_posix()
            else:
                logger.warning("clip %s: audio %s is missing or outside the run; it cannot be played",
                               clip.id, clip.audio)
        self._served.update(root / p for p in self.audio_paths.values())

    def audio_file(self, url_path: str) -> Path | None:
        """The file behind `/audio/<url_path>`, or None unless it is the audio of one of the run's
        clips. Absolute paths and `..` are refused before touching the disk; the resolved path
        (symlinks followed) must still lie in the run."""
        pure = PurePosixPath(url_path)
        if not url_path or pure.is_absolute() or "\\" in url_path or ".." in pure.parts:
            return None
        resolved = (self.run_dir / pure).resolve()
        return resolved if resolved in self._served else None

    def absolute_audio(self, clip_id: str) -> str | None:
        rel = self.audio_paths.get(clip_id)
        return str(self.run_dir.resolve() / rel) if rel else None


def load_run(run_dir: str | Path) -> RunData:
    """Read the clips (required) and QA (optional: a run may be reviewed before QA exists)."""
    run_dir = Path(run_dir)
    clips = {}
    for obj in iter_stage_records(run_dir, CLIPS_STAGE):
        clip = Clip.model_validate(obj)
        clips[clip.id] = clip
    if not clips:
        raise CPQAError(f"run {run_dir} has no clips to review yet; build it past the '{CLIPS_STAGE}' stage")
    qa = {}
    try:  # kept and dropped items: a reviewer judges the filters too
        records = list(run_qa_records(run_dir, include_dropped=True))
    except CPQAError as exc:
        records = []
        logger.warning("no generated QA to review (%s); only human QA can be written", exc)
    for obj in records:
        item = QAItem.model_validate(obj)
        if item.clip_id not in clips:
            logger.warning("QA %s refers to unknown clip %s; ignored", item.id, item.clip_id)
            continue
        qa[item.id] = item
    return RunData(run_dir, clips, qa)
