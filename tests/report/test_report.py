"""`cpqa report`: a self-contained HTML file whose embedded plots are real PNGs."""

import base64
import json
from html.parser import HTMLParser

from typer.testing import CliRunner

from cpqa.cli import app
from cpqa.report.html import build_report, counter_groups
from cpqa.run import build
from cpqa.testing.audio import write_bursts


class Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.images, self.cells, self.tags = [], [], []
        self._in_cell = False

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "img":
            self.images.append(dict(attrs)["src"])
        self._in_cell = tag == "td"

    def handle_data(self, data):
        if self._in_cell:
            self.cells.append(data)


def test_report_of_a_run_embeds_plots_and_tables(tmp_path):
    audio = tmp_path / "in<script>alert(1)</script>"
    for i in range(2):
        write_bursts(audio / f"a{i}.wav", duration_s=6, seed=i)
    run = tmp_path / "run"
    build(audio, run, recipe="dummy")
    # a stage with before/after distributions, as condense writes them
    stats_path = next(run.glob("01-segment-*")) / "stats.json"
    stats = json.loads(stats_path.read_text())
    stats["counters"].update({"emotion_before/happy": 5, "emotion_before/sad": 1, "emotion_after/happy": 2,
                              "emotion_after/sad": 1, "qa/type/C": 3, "qa/type/DE": 2})
    stats_path.write_text(json.dumps(stats))

    result = CliRunner().invoke(app, ["report", str(run)])
    assert result.exit_code == 0, result.output
    page = Page()
    page.feed((run / "report.html").read_text())
    assert "script" not in page.tags  # the input path's markup is escaped, not executed
    assert len(page.images) == 3  # yield, emotion before/after, qa/type
    for src in page.images:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1]).startswith(b"\x89PNG\r\n\x1a\n")
    assert {"ingest", "segment", "transcribe"} <= set(page.cells)
    assert "audio hours ingested" in page.cells


def test_counter_groups_split_on_the_last_slash():
    assert counter_groups({"qa/type/C": 2, "qa/type/DE": 1, "plain": 3}) == {"qa/type": {"C": 2, "DE": 1}}


def test_report_includes_an_evaluation(tmp_path):
    write_bursts(tmp_path / "in" / "a.wav", duration_s=5)
    run = tmp_path / "run"
    build(tmp_path / "in", run, recipe="dummy")
    ev = tmp_path / "eval"
    ev.mkdir()
    (ev / "results.json").write_text(json.dumps({"score": 61.5, "uas": 58.0, "success_rate": 0.98, "n_items": 4,
                                                 "per_type": {"C": {"score": 70.0}, "DE": {"score": 46.0}}}))
    out = build_report(run, tmp_path / "r.html", evaluations=[ev])
    page = Page()
    page.feed(out.read_text())
    assert "61.500" in page.cells and "58.000" in page.cells
    assert len(page.images) == 2


def test_report_includes_a_comparison_with_its_correlations(tmp_path):
    from cpqa.evaluate import compare
    from cpqa.manifest import write_jsonl

    write_bursts(tmp_path / "in" / "a.wav", duration_s=5)
    run = tmp_path / "run"
    build(tmp_path / "in", run, recipe="dummy")
    for name, scores in (("a", [10, 40, 60, 90]), ("b", [20, 30, 70, 80])):
        (tmp_path / name).mkdir()
        write_jsonl(tmp_path / name / "items.jsonl", [{"qa_id": f"q{i}", "clip_id": f"c{i}", "type": "C",
                                                       "emotion": "sad", "score": s} for i, s in enumerate(scores)])
        (tmp_path / name / "results.json").write_text(json.dumps({"score": sum(scores) / 4}))
    report = compare(tmp_path / "a", tmp_path / "b", by="item", out_dir=tmp_path / "cmp", n_boot=200)
    out = build_report(run, tmp_path / "r.html", comparisons=[tmp_path / "cmp" / "compare-item.json"])
    page = Page()
    page.feed(out.read_text())
    assert len(page.images) == 2  # yield, the comparison's scatter plot
    assert "pearson r" in page.cells and "spearman r" in page.cells
    assert any(c.startswith(f"{report['pearson']['r']:.3f} [") for c in page.cells)
