"""End to end in real headless Chromium (Debian's `chromium`, driven by Playwright): name, clip
list, playback and seeking, accept / edit / reject, a human QA, persistence over a reload, markup
shown as text, keyboard shortcuts, agreement page, export. Saves a screenshot of the clip page to
tests/artifacts/ (and to $CPQA_ARTIFACTS when set)."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

from cpqa.manifest import iter_jsonl
from cpqa.records import QAItem
from cpqa.review.export import export

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]

pytestmark = [
    pytest.mark.timeout(90),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian chromium is not installed (apt-get install chromium)"),
]


@pytest.fixture
def live_server(review_run):
    uvicorn = pytest.importorskip("uvicorn")
    from cpqa.review.app import create_app

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))  # bound before the server starts: no race for the port
    server = uvicorn.Server(uvicorn.Config(create_app(review_run), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "review server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    server.should_exit = True
    thread.join(10)
    sock.close()


@pytest.fixture
def page():
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(10_000)
        page.problems = []  # script errors and dialogs: any is a failure
        page.on("pageerror", lambda exc: page.problems.append(f"page error: {exc}"))
        page.on("dialog", lambda d: (page.problems.append(f"dialog: {d.message}"), d.dismiss()))
        yield page
        browser.close()


def save_screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=True)
    if os.environ.get("CPQA_ARTIFACTS"):
        Path(os.environ["CPQA_ARTIFACTS"]).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(os.environ["CPQA_ARTIFACTS"]) / name)
    return path


def qa(page, qa_id: str, sel: str = "") -> str:
    return f'.qa[data-qa="{qa_id}"] {sel}'.strip()


def test_review_in_a_real_browser(review_run, live_server, page, tmp_path):
    # a name first, kept in a cookie
    page.goto(live_server)
    page.fill("#reviewer-name", "alice")
    page.click("#reviewer-save")
    page.wait_for_selector("table#clips tbody tr")
    assert page.locator("table#clips tbody tr").count() == 3
    assert "You decided 0 of 6" in page.inner_text("#progress")
    assert page.inner_text("#who") == "reviewer: alice"

    # open a clip, seek by clicking a word, play
    page.click('tr[data-clip="trn00-c000"] a.clip-link')
    page.wait_for_selector(qa(page, "trn00-c000-qa2"))
    page.wait_for_function("() => document.getElementById('player').readyState >= 1")
    assert page.evaluate("document.getElementById('player').duration") == pytest.approx(6.0, abs=0.05)
    page.click(".word >> nth=4")  # w4 starts at 2.0 s; the click also starts playback
    page.wait_for_function("() => { const a = document.getElementById('player');"
                           " return !a.paused && a.currentTime > 2.25; }")
    assert page.evaluate("document.getElementById('player').error") is None
    page.evaluate("document.getElementById('player').pause()")
    assert page.inner_text(".run .tag >> nth=0") == "SPK_A · female · happy"
    labels = page.inner_text(".labels")
    assert "happy (4)" in labels and "SPK_B (4)" in labels and "[object" not in labels

    # accept the first QA with the keyboard, edit the second, reject the third
    page.keyboard.press("a")
    page.wait_for_selector(qa(page, "trn00-c000-qa0") + ".accept")
    page.click(qa(page, "trn00-c000-qa1", "button.edit"))
    page.select_option(qa(page, "trn00-c000-qa1", ".edit-form select.type"), "DG")
    page.fill(qa(page, "trn00-c000-qa1", ".edit-form textarea.q"), "Is the first speaker a woman?")
    page.fill(qa(page, "trn00-c000-qa1", ".edit-form textarea.a"), "Yes, and she sounds cheerful.")
    page.click(qa(page, "trn00-c000-qa1", ".edit-form button.save"))
    page.wait_for_selector(qa(page, "trn00-c000-qa1") + ".edit")
    page.click(qa(page, "trn00-c000-qa2", "button.reject"))
    page.click(qa(page, "trn00-c000-qa2", '.reasons button:has-text("duplicate")'))
    page.wait_for_selector(qa(page, "trn00-c000-qa2") + ".reject")

    # write a human QA
    page.select_option("#human-type", "CS")
    page.fill("#human-q", "How many people speak in this clip?")
    page.fill("#human-a", "Two: a woman, then a man.")
    page.click("#human-add")
    page.wait_for_selector('.human[data-qa="trn00-c000-human-001"]')

    # everything survives a reload
    page.reload()
    page.wait_for_selector(qa(page, "trn00-c000-qa2"))
    assert "accept" in page.get_attribute(qa(page, "trn00-c000-qa0"), "class")
    assert "reject" in page.get_attribute(qa(page, "trn00-c000-qa2"), "class")
    assert "duplicate" in page.inner_text(qa(page, "trn00-c000-qa2", ".mine"))
    assert page.inner_text(qa(page, "trn00-c000-qa1", ".type")) == "DG"
    assert page.inner_text(qa(page, "trn00-c000-qa1", ".q")) == "Q Is the first speaker a woman?"
    assert "Two: a woman, then a man." in page.inner_text('.human[data-qa="trn00-c000-human-001"]')
    shot = save_screenshot(page, "review-clip-page.png")
    assert shot.stat().st_size > 10_000

    # next clip by keyboard: its QA carries <script> and <img onerror>, shown as text, never run
    page.keyboard.press("n")
    page.wait_for_selector(qa(page, "trn01-c005-qa0"))
    assert "<script>window.__xss = 1</script>What is said first?" in page.inner_text(qa(page, "trn01-c005-qa0", ".q"))
    assert '<img src=x onerror="window.__xss = 2">' in page.inner_text(qa(page, "trn01-c005-qa0", ".a"))
    assert page.evaluate("document.querySelectorAll('main script, main img').length") == 0
    page.keyboard.press("r")
    page.keyboard.press("1")  # first reason
    page.wait_for_selector(qa(page, "trn01-c005-qa0") + ".reject")
    assert "wrong answer" in page.inner_text(qa(page, "trn01-c005-qa0", ".mine"))
    page.keyboard.press("n")
    page.wait_for_selector(qa(page, "ravdess-angry-qa0"))
    page.click("details summary")
    assert "<script>window.__xss = 3</script>" in page.inner_text("pre.tagged")
    assert page.evaluate("window.__xss") is None

    # the list filters by review state; the agreement page renders
    page.goto(live_server + "/#/")
    page.select_option("#f-state", "reviewed")
    page.wait_for_function("() => document.querySelectorAll('table#clips tbody tr').length === 1")
    assert page.get_attribute("table#clips tbody tr", "data-clip") == "trn00-c000"
    page.select_option("#f-state", "")
    page.wait_for_function("() => document.querySelectorAll('table#clips tbody tr').length === 3")
    page.goto(live_server + "/#/stats")
    page.wait_for_selector("table#reviewers")
    assert "alice" in page.inner_text("table#reviewers")
    assert page.problems == []

    # export what the browser produced
    n = export(review_run, "reviewed", tmp_path / "reviewed.jsonl")
    reviewed = {o["id"]: QAItem.model_validate(o) for o in iter_jsonl(tmp_path / "reviewed.jsonl")}
    assert n == 2 and set(reviewed) == {"trn00-c000-qa0", "trn00-c000-qa1"}
    assert reviewed["trn00-c000-qa1"].type == "DG"
    assert reviewed["trn00-c000-qa1"].turns[0].answer == "Yes, and she sounds cheerful."
    assert export(review_run, "human", tmp_path / "human.jsonl") == 1
    (human,) = [QAItem.model_validate(o) for o in iter_jsonl(tmp_path / "human.jsonl")]
    assert human.generator.model_dump() == {"model": "human", "reviewer": "alice"} and human.type == "CS"
    assert Path(human.metadata["audio"]).is_file()
