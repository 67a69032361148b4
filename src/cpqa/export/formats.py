"""Export formats: each writes one file per split (`train.jsonl`, `dev.jsonl`, `test.jsonl`) in the
layout its consumer documents, plus whatever side file that consumer needs.

| name | one line | documented by |
|---|---|---|
| `jsonl` | a QAItem (docs/design.md §2) with `metadata.audio`, `split`, `recording_id`, `speakers`, `labels` (what `cpqa evaluate` reads) | cpqa |
| `ms-swift` | `{"messages": [{"role": "system"/"user"/"assistant", "content"}], "audios": [path]}`, `<audio>` where the audio goes | ms-swift, Custom dataset → Multimodal |
| `llamafactory` | sharegpt: `{"conversations": [{"from": "human"/"gpt", "value"}], "system", "audios": [path]}`, `<audio>` tag; `dataset_info.json` names each split | LLaMA-Factory, data/README → Multimodal Audio Dataset |
| `qwen2-audio` | `{"id", "conversation": [...]}` in Qwen2-Audio's chat format: user content parts `{"type": "audio", "audio_url"}` and `{"type": "text", "text"}` | Qwen2-Audio-7B-Instruct model card |
| `hf` | a Hugging Face `DatasetDict` (`save_to_disk`) and Parquet shards, audio bytes embedded | `datasets` |

Each format knows the audio window of the model it trains (`audio_window_s`, what
`cpqa.evaluate.heard` cuts long clips to) and how its consumer resolves a relative audio path
(`relative_paths`, written to the export's README).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from ..evaluate.heard import QWEN2_AUDIO_WINDOW_S
from ..io_atomic import write_atomic
from ..manifest import write_jsonl
from ..records import Turn
from .conversation import Message
from .source import Example

AUDIO_TAG = "<audio>"


@dataclass
class Prepared:
    """An example ready to write: its split, its messages and how the files name its audio."""

    example: Example
    split: str
    messages: list[Message]
    audio_ref: str
    """The audio path as written: absolute, relative to the output folder, or of the copy."""

    @property
    def system(self) -> str | None:
        return next((m.text for m in self.messages if m.role == "system"), None)

    @property
    def dialogue(self) -> list[Message]:
        return [m for m in self.messages if m.role != "system"]

    def turns(self) -> list[Turn]:
        d = self.dialogue
        return [Turn(question=q.text, answer=a.text) for q, a in zip(d[::2], d[1::2])]


class Format:
    """Writes the prepared examples of every split under `out`; returns the files written."""

    name: ClassVar[str]
    description: ClassVar[str]
    extra: ClassVar[str | None] = None
    embeds_audio: ClassVar[bool] = False
    """True: the audio goes into the files, so no audio path option applies."""
    audio_window_s: ClassVar[float | None] = QWEN2_AUDIO_WINDOW_S
    """Seconds the model trained on this format hears at once (None: any length)."""
    relative_paths: ClassVar[str] = ""
    """How the consumer resolves a relative audio path (for the export's README)."""

    def write(self, out: Path, splits: dict[str, list[Prepared]], dataset_name: str) -> list[Path]:
        raise NotImplementedError


class JsonlFormat(Format):
    def row(self, p: Prepared) -> dict[str, Any]:
        raise NotImplementedError

    def write(self, out: Path, splits: dict[str, list[Prepared]], dataset_name: str) -> list[Path]:
        files = []
        for split, items in splits.items():
            path = out / f"{split}.jsonl"
            write_jsonl(path, (self.row(p) for p in items))
            files.append(path)
        return files


class PlainRecords(JsonlFormat):
    name = "jsonl"
    description = "QAItem records with metadata.audio, split, recording_id, speakers, labels (cpqa evaluate reads it)"
    audio_window_s = None  # QA records for `cpqa evaluate`, which applies its model's window
    relative_paths = "`cpqa evaluate` resolves `metadata.audio` against the folder of the JSONL file."

    def row(self, p: Prepared) -> dict[str, Any]:
        e = p.example
        metadata = {**e.qa.metadata, "audio": p.audio_ref, "split": p.split, "recording_id": e.recording_id,
                    "speakers": list(e.speakers), "labels": e.labels, "duration_s": e.duration_s}
        if p.system:
            metadata["system"] = p.system
        return e.qa.model_copy(update={"turns": p.turns(), "metadata": metadata}).model_dump(mode="json")


class MsSwift(JsonlFormat):
    name = "ms-swift"
    description = "ms-swift messages JSONL with <audio> and audios"
    relative_paths = ("ms-swift opens a relative path against the current directory, else against the "
                      "`ROOT_IMAGE_DIR` environment variable: run `swift sft` from this folder, or set "
                      "`ROOT_IMAGE_DIR` to it. `cpqa finetune` resolves it against the JSONL file's folder.")

    def row(self, p: Prepared) -> dict[str, Any]:
        messages = [{"role": m.role, "content": m.text} for m in p.messages]
        first_user = next(m for m in messages if m["role"] == "user")
        first_user["content"] = AUDIO_TAG + first_user["content"]
        return {"messages": messages, "audios": [p.audio_ref]}


class LlamaFactory(JsonlFormat):
    name = "llamafactory"
    description = "LLaMA-Factory sharegpt JSONL with <audio> and audios, plus dataset_info.json"
    ROLES: ClassVar[dict[str, str]] = {"user": "human", "assistant": "gpt"}
    relative_paths = ("LLaMA-Factory joins a relative path to `media_dir`, which defaults to `dataset_dir`: "
                      "train with `dataset_dir` (or `media_dir`) set to this folder.")

    def row(self, p: Prepared) -> dict[str, Any]:
        conversations = [{"from": self.ROLES[m.role], "value": m.text} for m in p.dialogue]
        conversations[0]["value"] = AUDIO_TAG + conversations[0]["value"]
        row: dict[str, Any] = {"conversations": conversations, "audios": [p.audio_ref]}
        if p.system:
            row["system"] = p.system
        return row

    def write(self, out: Path, splits: dict[str, list[Prepared]], dataset_name: str) -> list[Path]:
        files = super().write(out, splits, dataset_name)
        # map `system` only where rows carry it: LLaMA-Factory fails (KeyError) on a mapped column no row has
        columns = {"messages": "conversations", "audios": "audios"}
        if any(p.system for items in splits.values() for p in items):
            columns["system"] = "system"
        info = {f"{dataset_name}_{split}": {"file_name": f"{split}.jsonl", "formatting": "sharegpt", "columns": columns}
                for split in splits}
        return [*files, write_atomic(out / "dataset_info.json", json.dumps(info, indent=2) + "\n")]


class Qwen2Audio(JsonlFormat):
    name = "qwen2-audio"
    description = "Qwen2-Audio chat-format conversations (audio_url + text content parts), one JSON per line"
    relative_paths = "`cpqa finetune` resolves `audio_url` against the folder of the JSONL file."

    def row(self, p: Prepared) -> dict[str, Any]:
        conversation: list[dict[str, Any]] = []
        audio_given = False
        for m in p.messages:
            if m.role != "user":
                conversation.append({"role": m.role, "content": m.text})
                continue
            parts: list[dict[str, str]] = [] if audio_given else [{"type": "audio", "audio_url": p.audio_ref}]
            audio_given = True
            conversation.append({"role": "user", "content": [*parts, {"type": "text", "text": m.text}]})
        return {"id": p.example.qa.id, "conversation": conversation}
