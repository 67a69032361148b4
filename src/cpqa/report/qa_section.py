"""The report's QA section: the data itself, so a user judges the output by reading and listening.

Per QA type, a sample of kept and of dropped items (the final QA stage's records, `qa_dataset` else
`qa`, and the items every QA stage dropped: `cpqa.qa_source.run_qa_records`) with
its question(s) and answer(s), verdicts (drop reasons, flags and their details, the text-only
answer and rating, a re-typing), its generation attempts where the stage recorded any, the clip's
tagged transcript (an excerpt) and an HTML5 audio player for the clip.

The audio is linked, not embedded: each player's `src` is the clip file's path relative to the
folder the report is written to (clip paths in records are relative to the run directory, see
`cpqa.rundir.resolve_path`), so the report stays small and plays as long as it sits where it was
written relative to the run (the default, `RUN/report.html`, moves with the run). A URI
(`s3://`, `https://`) is linked as is. Which items are shown is a stable choice (a hash of the id),
so reruns of the report show the same sample. Every text is HTML-escaped.
"""

from __future__ import annotations

import heapq
import html
import json
import os
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ..errors import CPQAError
from ..ordering import stable_hash
from ..qa.direct import WRITER
from ..qa.types import QA_TYPES
from ..qa_source import CLIPS_STAGE, qa_stage, run_qa_records
from ..rundir import iter_stage_records, resolve_path

TRANSCRIPT_CHARS = 700

STYLE = """
.qa{border:1px solid #ccc;border-left:6px solid #2e7d32;border-radius:4px;margin:.6rem 0;padding:.5rem .8rem}
.qa.dropped{border-left-color:#c62828}.qa .head{font-size:.85rem;color:#444}.qa .badge{font-weight:bold;padding:0 .3rem}
.qa.kept .badge{color:#2e7d32}.qa.dropped .badge{color:#c62828}.qa dl{margin:.3rem 0}
.qa dt{font-weight:bold;margin-top:.2rem}.qa dd{margin:0 0 0 1rem}
.qa pre{white-space:pre-wrap;background:#f7f7f7;padding:.4rem;font-size:.8rem;margin:.2rem 0}
.qa audio{width:100%;max-width:520px;display:block;margin:.3rem 0}.qa .missing{color:#c62828}
.qa ul{margin:.2rem 0;padding-left:1.2rem;font-size:.85rem}.qa .attempts{font-size:.85rem;margin-top:.3rem}"""


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def sample_items(run_dir: Path, per_group: int) -> tuple[dict[tuple[str, bool], list[dict]], Counter]:
    """Up to `per_group` items per (type, kept), the same ones on every call, and how many there
    are per (type, kept). Reads the records once, holding only the sample."""
    heaps: dict[tuple[str, bool], list] = {}
    totals: Counter = Counter()
    for obj in run_qa_records(run_dir, include_dropped=True):
        key = (obj.get("type", "?"), bool(obj.get("filters", {}).get("passed", True)))
        totals[key] += 1
        heap = heaps.setdefault(key, [])
        entry = (-stable_hash(obj["id"]), obj["id"], obj)  # a max-heap of the smallest ranks
        if len(heap) < per_group:
            heapq.heappush(heap, entry)
        elif entry > heap[0]:
            heapq.heapreplace(heap, entry)
    return {key: [obj for *_, obj in sorted(heap, reverse=True)] for key, heap in heaps.items()}, totals


def _clips(run_dir: Path, wanted: set[str]) -> dict[str, dict]:
    try:
        return {obj["id"]: obj for obj in iter_stage_records(run_dir, CLIPS_STAGE) if obj["id"] in wanted}
    except CPQAError:  # no clips stage (a run of QA on given clips): items still carry their audio
        return {}


def audio_src(audio: str, run_dir: Path, report_dir: Path) -> tuple[str, bool]:
    """The player's `src` for a clip's audio path or URI, and whether the file exists (URIs: True)."""
    if "://" in audio:
        return audio, True
    path = resolve_path(audio, run_dir)
    relative = os.path.relpath(path, report_dir.resolve())
    return quote(Path(relative).as_posix()), path.is_file()


def _turns(turns: list[dict]) -> str:
    return "".join(f"<dt>Q{n}: {_esc(t.get('question', ''))}</dt><dd>A{n}: {_esc(t.get('answer', ''))}</dd>"
                   for n, t in enumerate(turns, 1))


def _verdicts(filters: dict) -> str:
    rows = [f"<li><strong>dropped:</strong> {_esc(r)}: {_esc(filters.get('details', {}).get(r, ''))}</li>"
            for r in filters.get("reasons", [])]
    rows += [f"<li><strong>flagged:</strong> {_esc(r)}: {_esc(filters.get('details', {}).get(r, ''))}</li>"
             for r in filters.get("flags", [])]
    if filters.get("retyped_from"):
        rows.append(f"<li><strong>re-typed</strong> from {_esc(filters['retyped_from'])}</li>")
    text_only = filters.get("text_only")
    if isinstance(text_only, dict):
        said = text_only.get("answer", text_only.get("error", ""))
        judged = " by rule" if text_only.get("judge") == "rules" else ""
        rows.append(f"<li><strong>text-only answer</strong> (rating {_esc(text_only.get('rating', '-'))}/5{judged}): "
                    f"{_esc(said)}</li>")
    for key, value in filters.items():
        if key not in {"passed", "reasons", "flags", "details", "retyped_from", "text_only"}:
            rows.append(f"<li><strong>{_esc(key)}:</strong> {_esc(_compact(value))}</li>")
    return f"<ul class='verdicts'>{''.join(rows) or '<li>no check objected</li>'}</ul>"


def _attempts(obj: dict) -> str:
    """The generation attempts (`generator.attempts`, see `cpqa.qa.regenerate`): each with its
    turns and verdict, or the error of a failed request."""
    attempts = obj.get("generator", {}).get("attempts")
    if not attempts:
        return ""
    generator = obj.get("generator", {})
    writer = f"written by {generator.get('model') or generator.get('backend') or '?'}"
    if generator.get("backend") == WRITER:
        writer = "phrased by cpqa from the labels (no LLM)"
    rows = []
    for attempt in attempts:
        said = " / ".join(f"Q: {t.get('question', '')} A: {t.get('answer', '')}" for t in attempt.get("turns", []))
        details = attempt.get("details") or {}
        if attempt.get("error"):
            verdict = f"request failed: {attempt['error']} {attempt.get('detail', '')}"
        elif attempt.get("reasons"):
            verdict = "dropped: " + "; ".join(f"{r} ({details[r]})" if details.get(r) else str(r)
                                             for r in attempt["reasons"])
        else:
            verdict = "passed"
        rows.append(f"<li>{_esc(attempt['attempt'])}. {_esc(said)} <strong>→ {_esc(verdict)}</strong></li>")
    evidence = f"; evidence: “{_esc(obj['evidence'])}”" if obj.get("evidence") else ""
    return (f"<div class='attempts'><strong>attempts ({len(attempts)}, {_esc(writer)}{evidence}):</strong>"
            f"<ul>{''.join(rows)}</ul></div>")


def _compact(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


def _card(obj: dict, clip: dict | None, run_dir: Path, report_dir: Path) -> str:
    filters = obj.get("filters", {})
    kept = bool(filters.get("passed", True))
    meta = obj.get("metadata", {})
    audio = (clip or {}).get("audio") or meta.get("audio")
    start, end = (clip or meta).get("start"), (clip or meta).get("end")
    span = f" · {start:.1f}–{end:.1f} s" if isinstance(start, (int, float)) and isinstance(end, (int, float)) else ""
    parts = [f"<div class='qa {'kept' if kept else 'dropped'}' data-id='{_esc(obj['id'])}'>",
             f"<div class='head'><span class='badge'>{'kept' if kept else 'dropped'}</span> {_esc(obj.get('type'))} · "
             f"<code>{_esc(obj['id'])}</code> · clip <code>{_esc(obj.get('clip_id'))}</code>{_esc(span)}</div>",
             f"<dl>{_turns(obj.get('turns', []))}</dl>", _verdicts(filters), _attempts(obj)]
    if audio:
        src, exists = audio_src(str(audio), run_dir, report_dir)
        parts.append(f"<audio controls preload='metadata' src='{_esc(src)}'></audio>")
        if not exists:
            parts.append(f"<p class='missing'>audio file not found: {_esc(resolve_path(audio, run_dir))}</p>")
    else:
        parts.append("<p class='missing'>the record names no audio</p>")
    transcript = (clip or {}).get("tagged_transcript", "")
    if transcript:
        cut = transcript[:TRANSCRIPT_CHARS] + (" …" if len(transcript) > TRANSCRIPT_CHARS else "")
        parts.append(f"<pre class='transcript'>{_esc(cut)}</pre>")
    parts.append("</div>")
    return "".join(parts)


def qa_samples_section(run_dir: Path, report_dir: Path, per_group: int = 3) -> list[str]:
    """HTML blocks of the QA samples (empty when the run has no QA stage with records)."""
    try:
        stage = qa_stage(run_dir)
        samples, totals = sample_items(run_dir, per_group)
    except CPQAError:  # no QA stage, or it has not run yet
        return []
    clips = _clips(run_dir, {obj.get("clip_id") for group in samples.values() for obj in group})
    out = ["<h2>QA items: a sample to read and listen to</h2>",
           f"<p>From the <code>{_esc(stage)}</code> stage, up to {per_group} kept and {per_group} dropped items per "
           "type, the same ones on every report. The players link the clip files relative to this report "
           "(nothing is embedded): keep the report where it was written relative to the run.</p>"]
    order = {code: n for n, code in enumerate(QA_TYPES)}
    for code in sorted({t for t, _ in totals}, key=lambda t: order.get(t, len(order))):
        kept, dropped = totals[(code, True)], totals[(code, False)]
        out.append(f"<h3 id='qa-{_esc(code)}'>{_esc(code)}: {kept} kept, {dropped} dropped</h3>")
        for is_kept in (True, False):
            for obj in samples.get((code, is_kept), []):
                out.append(_card(obj, clips.get(obj.get("clip_id")), run_dir, report_dir))
    return out
