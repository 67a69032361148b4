"""Training examples from an export, tokenised for a speech-LLM with Qwen2-Audio's processor API.

An export is read as `cpqa export` writes it: a folder holding `train.jsonl` (and `dev.jsonl`), or
one JSONL file, in the `ms-swift` format (`messages` with `<audio>` tags, `audios`) or the
`qwen2-audio` format (`conversation` with audio_url parts). Relative audio paths are relative to the
file's folder. Each line becomes a chat in Qwen2-Audio's format whose audio parts name absolute
paths.

What the model hears follows `cpqa.evaluate.heard`, the rule `cpqa export` and `cpqa evaluate`
follow: a chat names no evidence, so a chat whose audio is longer than `max_audio_s` is left out
(counted by reason) unless `long_audio` is `chunk` (the model then hears every piece). `cpqa export`
has already cut long clips into heard windows, so its exports lose nothing here.

Encoding renders the chat with the processor's own chat template, loads each audio file at 16 kHz
and lets the processor expand the audio placeholders. The loss is masked to the assistant
turns: the tokens after each generation prompt (`<|im_start|>assistant\\n` for ChatML templates) up
to and including the token that closes the turn. Both markers are read from the template itself.
"""

from __future__ import annotations

import copy
import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..audio.decode import load_16k_mono, probe
from ..audio.io import SAMPLE_RATE
from ..errors import CPQAError
from ..evaluate.audio import hear
from ..evaluate.heard import LongAudio, place
from ..export.formats import AUDIO_TAG
from ..manifest import iter_jsonl

logger = logging.getLogger(__name__)

IGNORE_INDEX = -100


@dataclass
class Chat:
    id: str
    messages: list[dict[str, Any]]
    """Qwen2-Audio chat messages; audio parts carry absolute paths in `audio_url`."""

    def audio_paths(self) -> list[str]:
        return [p["audio_url"] for m in self.messages if isinstance(m["content"], list)
                for p in m["content"] if p["type"] == "audio"]


def split_file(export: str | Path, split: str) -> Path | None:
    """The JSONL of `split` in an export folder (None when the export has no such split); a file
    given directly is the training split itself."""
    export = Path(export)
    if export.is_file():
        return export if split == "train" else None
    if not export.is_dir():
        raise CPQAError(f"{export} is neither an export folder nor a JSONL file")
    path = export / f"{split}.jsonl"
    return path if path.is_file() else None


def read_chats(path: str | Path) -> list[Chat]:
    path = Path(path)
    chats = []
    try:
        for n, obj in enumerate(iter_jsonl(path), 1):
            chats.append(_chat(obj, f"{path}:{n}", path.parent.resolve()))
    except ValueError as exc:  # json.JSONDecodeError
        raise CPQAError(f"{path}: not JSONL ({exc})") from None
    if not chats:
        raise CPQAError(f"{path} holds no training examples")
    return chats


def _chat(obj: dict[str, Any], where: str, base: Path) -> Chat:
    if "conversation" in obj:
        messages = copy.deepcopy(obj["conversation"])
        for m in messages:
            for part in m["content"] if isinstance(m["content"], list) else []:
                if part.get("type") == "audio":
                    part["audio_url"] = str((base / part["audio_url"]).resolve())
        return Chat(str(obj.get("id", where)), messages)
    if "messages" in obj and "audios" in obj:
        audios = [str((base / a).resolve()) for a in obj["audios"]]
        messages = [_swift_message(m, audios) for m in obj["messages"]]
        if audios:
            raise CPQAError(f"{where}: {len(obj['audios'])} audios but fewer {AUDIO_TAG} tags")
        return Chat(where, messages)
    raise CPQAError(f"{where}: neither the ms-swift format (messages, audios) nor the qwen2-audio format "
                    f"(conversation); export with: cpqa export RUN --format ms-swift -o OUT")


def _swift_message(m: dict[str, str], audios: list[str]) -> dict[str, Any]:
    """An ms-swift message; each `<audio>` in a user turn takes the next path of `audios`."""
    if m["role"] != "user":
        return {"role": m["role"], "content": m["content"]}
    pieces = m["content"].split(AUDIO_TAG)
    parts: list[dict[str, str]] = []
    for i, text in enumerate(pieces):
        if i:
            if not audios:
                raise CPQAError(f"more {AUDIO_TAG} tags than audio files in '{m['content'][:60]}…'")
            parts.append({"type": "audio", "audio_url": audios.pop(0)})
        if text.strip():
            parts.append({"type": "text", "text": text})
    return {"role": "user", "content": parts}


def heard_chats(chats: list[Chat], long_audio: LongAudio, max_audio_s: float) -> tuple[list[Chat], Counter]:
    """The chats whose every audio the model hears, and the count of those left out by reason.
    Raises DecodeError (naming the file) on audio that cannot be read."""
    kept, dropped = [], Counter()
    for chat in chats:
        reasons = [place(probe(path).duration_s, None, max_audio_s, long_audio).dropped for path in chat.audio_paths()]
        reason = next((r for r in reasons if r), None)
        if reason:
            dropped[reason] += 1
        else:
            kept.append(chat)
    if dropped:
        logger.warning("%d of %d chat(s) left out: their audio is longer than the %g s the model hears at once and "
                       "they name no evidence to place them (%s); export with --long-audio split, or train with "
                       "long_audio=chunk", sum(dropped.values()), len(chats), max_audio_s,
                       ", ".join(f"{r}: {n}" for r, n in sorted(dropped.items())))
    return kept, dropped


class AssistantMask:
    """Finds the assistant turns in token ids, from markers read off the processor's chat template."""

    def __init__(self, processor):
        probe = [{"role": "user", "content": [{"type": "text", "text": "x"}]}]
        render = processor.apply_chat_template
        bare = render(probe, tokenize=False, add_generation_prompt=False)
        prompted = render(probe, tokenize=False, add_generation_prompt=True)
        answered = render([*probe, {"role": "assistant", "content": "y"}], tokenize=False)
        if not prompted.startswith(bare) or not answered.startswith(prompted + "y"):
            raise CPQAError("the model's chat template does not render a conversation as a prefix of its "
                            "continuation, so the assistant turns cannot be found for the loss mask")
        tokenizer = processor.tokenizer
        self.header = tokenizer.encode(prompted[len(bare):], add_special_tokens=False)
        self.end = tokenizer.encode(answered[len(prompted) + 1:], add_special_tokens=False)[0]

    def labels(self, ids: list[int]) -> tuple[list[int], int]:
        """Labels (IGNORE_INDEX outside assistant turns) and the number of assistant turns found."""
        labels = [IGNORE_INDEX] * len(ids)
        n, i, h = 0, 0, len(self.header)
        while i <= len(ids) - h:
            if ids[i:i + h] != self.header:
                i += 1
                continue
            n += 1
            i += h
            while i < len(ids):
                labels[i] = ids[i]
                i += 1
                if ids[i - 1] == self.end:
                    break
        return labels, n


class ChatDataset:
    """A map-style dataset of encoded chats (a torch Dataset by duck typing: len and getitem)."""

    def __init__(self, chats: list[Chat], processor, long_audio: LongAudio = "split", max_audio_s: float = 30.0,
                 max_length: int = 2048):
        self.chats, self.processor = chats, processor
        self.long_audio, self.max_audio_s, self.max_length = long_audio, max_audio_s, max_length
        self.mask = AssistantMask(processor)
        self.audio_token_id = processor.tokenizer.convert_tokens_to_ids(getattr(processor, "audio_token", "<|AUDIO|>"))

    def __len__(self) -> int:
        return len(self.chats)

    def __getitem__(self, index: int) -> dict[str, Any]:
        chat = self.chats[index]
        messages, audio = self._heard(chat)
        text = self.processor.apply_chat_template(messages, tokenize=False)
        enc = self.processor(text=[text], audio=audio, sampling_rate=SAMPLE_RATE, return_tensors="pt")
        ids = enc["input_ids"][0].tolist()
        labels, found = self.mask.labels(ids)
        expected = sum(m["role"] == "assistant" for m in messages)
        if found != expected:
            raise CPQAError(f"{chat.id}: found {found} of {expected} assistant turns in the encoded chat; "
                            "the chat template's markers are split differently in context")
        if len(ids) > self.max_length:
            last_audio = max((i for i, t in enumerate(ids) if t == self.audio_token_id), default=-1)
            if last_audio >= self.max_length:
                raise CPQAError(f"{chat.id}: its audio alone takes {last_audio + 1} tokens, over max_length="
                                f"{self.max_length}; raise max_length or lower max_audio_s")
            ids, labels = ids[:self.max_length], labels[:self.max_length]
        return {"input_ids": ids, "labels": labels, "input_features": enc["input_features"],
                "feature_attention_mask": enc["feature_attention_mask"]}

    def _heard(self, chat: Chat) -> tuple[list[dict[str, Any]], list]:
        """The chat with each audio part expanded into the pieces the model hears, and those pieces."""
        messages, audio = [], []
        for m in chat.messages:
            if not isinstance(m["content"], list):
                messages.append(m)
                continue
            parts = []
            for part in m["content"]:
                if part["type"] != "audio":
                    parts.append(part)
                    continue
                samples = load_16k_mono(part["audio_url"])
                placement = place(len(samples) / SAMPLE_RATE, None, self.max_audio_s, self.long_audio)
                if placement.dropped:
                    raise CPQAError(f"{chat.id}: {part['audio_url']} is longer than max_audio_s={self.max_audio_s:g}; "
                                    "select the chats with heard_chats first")
                heard = hear(samples, placement, self.max_audio_s)
                audio += heard.pieces
                parts += [{"type": "audio", "audio_url": f"{part['audio_url']}#{i}"} for i in range(len(heard.pieces))]
            messages.append({"role": m["role"], "content": parts})
        return messages, audio


def collate(pad_token_id: int):
    """Right-pads token ids (labels with IGNORE_INDEX) and stacks every audio piece of the batch in order."""
    import torch

    def collate_fn(batch: list[dict[str, Any]]) -> dict[str, Any]:
        width = max(len(b["input_ids"]) for b in batch)
        ids = torch.full((len(batch), width), pad_token_id, dtype=torch.long)
        labels = torch.full((len(batch), width), IGNORE_INDEX, dtype=torch.long)
        attention = torch.zeros((len(batch), width), dtype=torch.long)
        for row, b in enumerate(batch):
            n = len(b["input_ids"])
            ids[row, :n] = torch.tensor(b["input_ids"])
            labels[row, :n] = torch.tensor(b["labels"])
            attention[row, :n] = 1
        return {"input_ids": ids, "attention_mask": attention, "labels": labels,
                "input_features": torch.cat([b["input_features"] for b in batch]),
                "feature_attention_mask": torch.cat([b["feature_attention_mask"] for b in batch])}

    return collate_fn
