"""The report shows the data: a sample of kept and dropped QA items per type with their verdicts,
attempts, transcript excerpt and an audio player for the clip, rendered in headless Chromium (the
system's, driven by playwright) with players that load their files; and the text-only
answerability per type in the report and in `cpqa status`.

The run is exportgen's (RAVDESS speech as FLAC clips, a clips and a qa stage), with a few records
changed: rec-e's DE item (the one dropped item) gets attempts, a text-only verdict and markup in
its answer, and its clip's audio moves into the run with a path relative to the run directory."""

from __future__ import annotations

import json
import shutil
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import pytest
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "export"))
from exportgen import build_run, read_jsonl  # noqa: E402

from cpqa.cli import app  # noqa: E402
from cpqa.manifest import write_jsonl  # noqa: E402
from cpqa.report.html import build_report  # noqa: E402
from cpqa.status import run_status  # noqa: E402

pytestmark = pytest.mark.timeout(300)

DROPPED = "rec-e-clip0000-de"
MARKUP = "<script>window.__pwned = 1</script><b>bold</b> & more"
COUNTERS = {"qa/type/C": 12, "qa/type/DE": 12, "qa/type/DG": 12, "qa/passed/DE": 11,
            "text_only/asked/DE": 12, "text_only/answered/DE": 3, "text_only/kept/DE": 9,
            "text_only/kept_answered/DE": 0, "text_only/asked/DG": 12, "text_only/answered/DG": 0,
            "text_only/kept/DG": 12, "text_only/kept_answered/DG": 0, "text_only/kept/C": 3,
            "text_only/kept_answered/C": 3}


@pytest.fixture(scope="module")
def qa_run(real_data, tmp_path_factory) -> Path:
    run = build_run(real_data, tmp_path_factory.mktemp("report-qa"))
    clips_dir, qa_dir = run / "05-clips-a", run / "06-qa-b"
    clips = read_jsonl(clips_dir / "records.jsonl")
    for clip in clips:
        if clip["id"] == "rec-e-clip0000":  # as the clips stage writes it now: relative to the run
            (run / "clips").mkdir()
            shutil.move(clip["audio"], run / "clips" / "rec-e clip#0.flac")
            clip["audio"] = "clips/rec-e clip#0.flac"
            clip["tagged_transcript"] = "[S1|male|sad] " + clip["tagged_transcript"]
    write_jsonl(clips_dir / "records.jsonl", clips)
    items = read_jsonl(qa_dir / "records.jsonl")
    phrased = next(item for item in items if item["type"] == "DE" and item["id"] != DROPPED)
    phrased["generator"].update(backend="template", model="template", attempts=[
        {"attempt": 1, "turns": phrased["turns"], "passed": True, "reasons": [], "details": {}}])
    phrased["evidence"] = "the first words of her longest turn"
    phrased["filters"]["text_only"] = {"answer": "I cannot tell.", "rating": 0, "judge": "rules"}
    for item in items:
        if item["id"] == DROPPED:
            item["turns"][0]["answer"] = f"The speaker sounds sad. {MARKUP}"
            item["filters"]["text_only"] = {"answer": "Sad, going by the words.", "rating": 2}
            item["generator"]["attempts"] = [  # as cpqa.qa.regenerate keeps them
                {"attempt": 1, "turns": [{"question": "How does he feel?", "answer": "He sounds confused."}],
                 "passed": False, "reasons": ["unsupported_claim"], "details": {"unsupported_claim": "'confused'"}},
                {"attempt": 2, "error": "timeout", "detail": "no reply in 60 s"},
                {"attempt": 3, "turns": item["turns"], "passed": False, "reasons": ["leakage"],
                 "details": {"leakage": "says 'transcript'"}}]
    write_jsonl(qa_dir / "records.jsonl", items)
    (qa_dir / "stats.json").write_text(json.dumps({"items_in": 12, "items_out": 36, "counters": COUNTERS}))
    return run


class Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.audio = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "audio":
            self.audio.append(dict(attrs)["src"])


def test_status_and_report_show_text_only_answerability_per_type(qa_run):
    rows = {r["type"]: r for r in run_status(qa_run)["text_only"]}
    assert list(rows) == ["C", "DE", "DG"]
    assert rows["DE"]["answered_share"] == 0.25 and rows["DE"]["kept_answered_share"] == 0.0
    result = CliRunner().invoke(app, ["status", str(qa_run)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "text-only answerability" in result.output and "3 (25%)" in result.output
    result = CliRunner().invoke(app, ["report", str(qa_run), "-o", str(qa_run.parent / "elsewhere" / "r.html"),
                                      "--qa-sample", "1"])
    assert result.exit_code == 0, result.output
    page = (qa_run.parent / "elsewhere" / "r.html").read_text()
    assert "Text-only answerability" in page and "<td>3 (25%)</td>" in page
    assert page.count("<audio") == 4  # one kept item per type, and the dropped one


def test_qa_section_links_audio_relative_to_the_report_and_escapes_text(qa_run):
    out = build_report(qa_run, qa_run.parent / "elsewhere" / "r.html", per_type_sample=20)
    text = out.read_text()
    page = Page()
    page.feed(text)
    assert "script" not in page.tags  # the answer's markup is text
    assert html_escaped(MARKUP) in text
    assert len(page.audio) == 36  # every item of the three types, kept and dropped
    for src in page.audio:
        assert not src.startswith(("/", "data:")) and (out.parent / unquote(src)).is_file(), src
    assert "../run/clips/rec-e%20clip%230.flac" in page.audio  # a path relative to the run, quoted
    assert "DE: 11 kept, 1 dropped" in text
    assert "unsupported_claim (&#x27;confused&#x27;)" in text and "request failed: timeout" in text
    assert "rating 2/5" in text
    # who wrote an item, its evidence, and a text-only answer rated by rule
    assert "phrased by cpqa from the labels (no LLM); evidence: “the first words of her longest turn”" in text
    assert "rating 0/5 by rule" in text and "written by " in text


def test_a_missing_clip_file_is_said_next_to_its_player(qa_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(qa_run, run)
    (run / "clips" / "rec-e clip#0.flac").unlink()
    text = build_report(run, per_type_sample=20).read_text()
    assert text.count("audio file not found") == 3 and "rec-e clip#0.flac" in text


def html_escaped(text: str) -> str:
    import html

    return html.escape(text, quote=True)


def test_qa_section_renders_in_headless_chromium_with_working_players(qa_run):
    sync_api = pytest.importorskip("playwright.sync_api")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("no system chromium (make setup installs it)")
    out = build_report(qa_run)  # RUN/report.html, the default
    shot = qa_run.parent / "report-qa.png"
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            page.goto(out.as_uri())
            players = page.evaluate("""() => Promise.all([...document.querySelectorAll('.qa audio')].map(a =>
                new Promise(done => {
                    const report = () => done({src: a.currentSrc, duration: a.duration,
                                               error: a.error && a.error.code, card: a.closest('.qa').dataset.id});
                    if (a.readyState >= 1 || a.error) report();
                    a.addEventListener('loadedmetadata', report); a.addEventListener('error', report);
                    a.load();
                })))""")
            cards = page.eval_on_selector_all(".qa", """cards => cards.map(c => ({id: c.dataset.id,
                kept: c.classList.contains('kept'), text: c.innerText}))""")
            pwned = page.evaluate("() => window.__pwned")
            section = page.locator("h2", has_text="QA items")
            section.scroll_into_view_if_needed()
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert pwned is None
    assert len(cards) == len(players) == 3 * 3 + 1  # 3 kept per type (C, DE, DG) and the one dropped item
    clip_s = {c["id"]: c["end"] - c["start"] for c in read_jsonl(qa_run / "05-clips-a" / "records.jsonl")}
    for player in players:
        assert player["error"] is None and player["src"].startswith("file://"), player
        clip_id = player["card"].rsplit("-", 1)[0]
        assert player["duration"] == pytest.approx(clip_s[clip_id], abs=0.05), player
    dropped = next(c for c in cards if c["id"] == DROPPED)
    assert not dropped["kept"] and "dropped" in dropped["text"]
    assert "Q1: How does the speaker feel?" in dropped["text"] and MARKUP in dropped["text"]
    assert "leakage" in dropped["text"] and "attempts (3, written by " in dropped["text"] and "[S1|male|sad]" in dropped["text"]
    assert all("Q1: " in c["text"] and "A1: " in c["text"] for c in cards)
    assert shot.stat().st_size > 10_000
