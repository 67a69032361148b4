"""`cpqa report RUN`: one self-contained HTML file describing what a run did.

Yield per stage, skip reasons, label distributions before/after condensation, QA per type and per
drop reason (from the stages' counters), the share of items a text-only model answers per type,
a sample of kept and dropped QA items per type to read and listen to (`qa_section`: the clip audio
is linked relative to the report, not embedded), evaluation scores (for the evaluation folders given) and
correlations with their scatter plots (for the `cpqa compare` reports given), and a cost ledger (audio hours, wall time per stage, LLM calls, tokens and cache hits). Plots are
matplotlib PNGs embedded as data URIs; every text is HTML-escaped.
"""

from __future__ import annotations

import base64
import html
import io
import json
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from ..errors import CPQAError, require
from ..io_atomic import write_atomic
from ..labels.trust import run_trust, validation_rows
from ..rundir import iter_stage_records
from ..status import run_status
from .qa_section import STYLE as QA_STYLE
from .qa_section import qa_samples_section

BEFORE, AFTER = "_before", "_after"
TABLED = ("text_only/", "speech_llm/")
"""Counter groups the report shows as a table rather than as bar charts."""


def _plot_png(draw) -> str:
    """Run `draw(ax)` on a fresh figure and return it as a base64 PNG data URI."""
    figure = require("matplotlib.figure", extra="report", package="matplotlib")
    fig = figure.Figure(figsize=(7, 3.2), dpi=100)  # not pyplot: no global figure registry to leak into
    draw(fig.add_subplot())
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _bars(ax, series: dict[str, dict[str, float]], title: str) -> None:
    """Grouped bars: one group per key, one bar per series."""
    keys = list(dict.fromkeys(k for values in series.values() for k in values))  # pipeline order
    width = 0.8 / max(1, len(series))
    for i, (name, values) in enumerate(series.items()):
        ax.bar([x + i * width for x in range(len(keys))], [values.get(k, 0) for k in keys], width, label=name)
    ax.set_xticks([x + width * (len(series) - 1) / 2 for x in range(len(keys))], keys, rotation=30, ha="right",
                  fontsize=8)
    ax.set_title(title, fontsize=10)
    if len(series) > 1:
        ax.legend(fontsize=8)


def counter_groups(counters: dict[str, float]) -> dict[str, dict[str, float]]:
    """`"emotion_before/happy": 3` → `{"emotion_before": {"happy": 3}}` (ungrouped keys dropped)."""
    groups: dict[str, dict[str, float]] = defaultdict(dict)
    for key, value in counters.items():
        prefix, sep, name = key.rpartition("/")
        if sep:
            groups[prefix][name] = value
    return dict(groups)


def _distribution_figures(stage: str, counters: dict[str, float]) -> list[tuple[str, str]]:
    """One figure per counter group; `X_before` and `X_after` share a figure."""
    groups = counter_groups(counters)
    figures, done = [], set()
    for prefix in sorted(groups):
        paired = prefix.endswith((BEFORE, AFTER))
        if prefix in done or prefix.startswith(TABLED) or (len(groups[prefix]) < 2 and not paired):
            continue
        if paired:
            base = prefix.rsplit("_", 1)[0]
            pair = {s: groups[base + s] for s in (BEFORE, AFTER) if base + s in groups}
            done.update(base + s for s in pair)
            title = f"{stage}: {base} before / after"
            series = {s.strip("_"): v for s, v in pair.items()}
        else:
            done.add(prefix)
            title = f"{stage}: {prefix}"
            series = {prefix: groups[prefix]}
        figures.append((title, _plot_png(lambda ax, s=series, t=title: _bars(ax, s, t))))
    return figures


def _ledger(status: dict[str, Any], run_dir: Path) -> list[tuple[str, str]]:
    rows = []
    try:
        audio_s = sum(r.get("duration", 0.0) for r in iter_stage_records(run_dir, status["stages"][0]["name"]))
        rows.append(("audio hours ingested", f"{audio_s / 3600:.3f}"))
    except CPQAError:  # the first stage has not run yet: no audio to count
        pass
    rows.append(("wall time, all stages (s)", f"{sum(s['wall_s'] or 0 for s in status['stages']):.1f}"))
    for stage in status["stages"]:
        rows.append((f"wall time: {stage['name']} (s)", f"{stage['wall_s'] or 0:.1f}"))
        for key, value in sorted(stage["counters"].items()):
            if "llm_" in key and any(w in key for w in ("calls", "cache_hits", "tokens", "requests", "failed")):
                rows.append((f"{stage['name']}: {key}", str(value)))
    return rows


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    esc = html.escape
    head = "".join(f"<th>{esc(str(h))}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{esc(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _figure(title: str, uri: str) -> str:
    return f'<figure><img alt="{html.escape(title)}" src="{uri}"><figcaption>{html.escape(title)}</figcaption></figure>'


def _evaluation_section(eval_dir: Path) -> str:
    results = json.loads((eval_dir / "results.json").read_text())
    per_type = results.get("per_type", {})
    parts = [f"<h3>{html.escape(str(eval_dir))}</h3>",
             _table(["score", "UAS", "success rate", "items"],
                    [[_fmt(results.get("score")), _fmt(results.get("uas")), _fmt(results.get("success_rate")),
                      results.get("n_items", "")]])]
    if per_type:
        series = {"score": {t: b["score"] or 0 for t, b in per_type.items()}}
        parts.append(_figure("score per type", _plot_png(lambda ax: _bars(ax, series, "score per type"))))
    return "\n".join(parts)


def _comparison_section(report_path: Path) -> str:
    report = json.loads(report_path.read_text())
    rows = [[k, _fmt(v)] for k, v in report.items() if isinstance(v, (int, float, str)) and k != "plot"]
    for name in ("pearson", "spearman"):
        stat = report.get(name) or {}
        ci = stat.get("ci95")
        if stat.get("r") is not None:
            rows.append([f"{name} r", _fmt(stat["r"]) + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")])
        elif stat:
            rows.append([f"{name} r", f"n/a ({stat.get('note', '')})"])
    parts = [f"<h3>{html.escape(report_path.name)}</h3>", _table(["measure", "value"], rows)]
    plot = report.get("plot")
    if plot and Path(plot).exists():
        uri = "data:image/png;base64," + base64.b64encode(Path(plot).read_bytes()).decode()
        parts.append(_figure("scatter", uri))
    return "\n".join(parts)


def _label_trust_section(stages: list[dict[str, Any]]) -> list[str]:
    """What each shipped label model was validated on, and how this run's audio sat against the
    emotion model's training data (labels.trust)."""
    trust = next((run_trust(s["counters"]) for s in stages if s["name"] == "annotate"), None)
    out = ["<h2>How far the labels can be trusted</h2>",
           _table(["label", "model", "validated on (held-out speakers)"], validation_rows())]
    if trust:
        out.append(_table(["this run", "value"], [[k, _fmt(v)] for k, v in trust.items() if k != "warning"]))
        if trust["warning"]:
            out.append(f"<p class='warning'><strong>Warning:</strong> {html.escape(trust['warning'])}</p>")
    return out


def _text_only_section(rows: list[dict[str, Any]]) -> list[str]:
    """Per QA type, the share of items a text-only model answered, before and after the filter."""
    from ..qa.answerability import ANSWERABILITY_HEADERS, ANSWERABILITY_NOTE, answerability_table

    if not rows:
        return []
    return ["<h3>Text-only answerability</h3>", f"<p>{html.escape(ANSWERABILITY_NOTE)}</p>",
            _table(ANSWERABILITY_HEADERS, answerability_table(rows))]


def _speech_llm_section(rows: list[dict[str, Any]]) -> list[str]:
    """Per direct QA type, how often the configured speech-LLM, hearing the audio alone, agreed
    with the reference (qa.speech_check)."""
    from ..qa.speech_check import AGREEMENT_HEADERS, agreement_table

    if not rows:
        return []
    return ["<h3>Independent check by a speech-LLM</h3>", _table(AGREEMENT_HEADERS, agreement_table(rows))]


def _fmt(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


STYLE = """body{font-family:system-ui,sans-serif;margin:2rem;max-width:1100px}table{border-collapse:collapse;
margin:.5rem 0}td,th{border:1px solid #ccc;padding:.2rem .5rem;font-size:.9rem}th{background:#f3f3f3}
figure{display:inline-block;margin:.5rem}img{max-width:100%}h2{border-bottom:1px solid #ddd}
.warning{background:#fff3cd;padding:.5rem}""" + QA_STYLE


def build_report(run_dir: str | Path, out: str | Path | None = None, evaluations: list[Path] = (),
                 comparisons: list[Path] = (), per_type_sample: int = 3) -> Path:
    """Write the report of RUN (default `RUN/report.html`) and return its path. `per_type_sample`:
    kept and dropped QA items shown per type (see `cpqa.report.qa_section`)."""
    run_dir = Path(run_dir)
    status = run_status(run_dir)
    out = Path(out) if out else run_dir / "report.html"
    stages = status["stages"]
    yield_series = {
        "in": {s["name"]: s["items_in"] for s in stages},
        "out": {s["name"]: s["items_out"] for s in stages},
        "skipped": {s["name"]: sum(s["skipped"].values()) for s in stages},
    }
    sections = [
        f"<h1>cpqa run report</h1><p>run <code>{html.escape(str(run_dir))}</code> · recipe "
        f"<code>{html.escape(status['recipe'])}</code> · input <code>{html.escape(status['input'])}</code> · "
        f"{html.escape(time.strftime('%Y-%m-%d %H:%M'))}</p>",
        "<h2>Yield per stage</h2>",
        _table(["stage", "state", "in", "out", "skipped", "wall s"],
               [[s["name"], s["state"], s["items_in"], s["items_out"],
                 ", ".join(f"{k}: {v}" for k, v in s["skipped"].items()) or "-", _fmt(s["wall_s"] or 0.0)]
                for s in stages]),
        _figure("yield per stage", _plot_png(lambda ax: _bars(ax, yield_series, "items per stage"))),
        "<h2>Distributions and QA</h2>",
    ]
    for stage in stages:
        for title, uri in _distribution_figures(stage["name"], stage["counters"]):
            sections.append(_figure(title, uri))
    sections += _text_only_section(status["text_only"])
    sections += _speech_llm_section(status["speech_llm"])
    sections += _label_trust_section(stages)
    sections += qa_samples_section(run_dir, out.parent, per_type_sample)
    if evaluations or comparisons:
        sections.append("<h2>Evaluation</h2>")
        sections.extend(_evaluation_section(Path(e)) for e in evaluations)
        sections.extend(_comparison_section(Path(c)) for c in comparisons)
    sections += ["<h2>Cost ledger</h2>", _table(["item", "value"], [list(r) for r in _ledger(status, run_dir)])]
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>cpqa report</title><style>{STYLE}</style>"
            f"</head><body>{''.join(sections)}</body></html>")
    return write_atomic(out, page)
