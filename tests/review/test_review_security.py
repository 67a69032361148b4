"""The review app's guards: escaped text, audio confined to the run, tokens, host and bind checks.
(That markup in QA text renders as text in a real browser is checked in test_review_browser.)"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from cpqa.errors import CPQAError
from cpqa.review.data import load_run
from cpqa.review.server import check_bind, serve

from .conftest import XSS_ANSWER, XSS_QUESTION

pytestmark = pytest.mark.timeout(60)
STATIC = Path(__file__).resolve().parents[2] / "src" / "cpqa" / "review" / "static"


def test_client_never_parses_data_as_html():
    js = (STATIC / "app.js").read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in js, sink
    html = (STATIC / "index.html").read_text()
    assert not re.search(r"<script(?![^>]*\bsrc=)", html), "no inline script (the CSP forbids it)"


def test_markup_in_qa_is_returned_as_json_data(review_run, client_for):
    client = client_for(review_run)
    r = client.get("/api/clips/trn01-c005")
    assert r.headers["content-type"] == "application/json"
    assert r.json()["qa"][0]["turns"][0] == {"question": XSS_QUESTION, "answer": XSS_ANSWER}
    page = client.get("/")
    assert page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "unsafe-inline" not in csp
    assert page.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("url", [
    "/audio/..%2F..%2F..%2Fetc%2Fpasswd",
    "/audio/%2e%2e/run.json",
    "/audio/05-clips-abc/audio/..%2F..%2Frun.json",
    "/audio/%2Fetc%2Fpasswd",
    "/audio//etc/passwd",
    "/audio/run.json",                     # inside the run but not a clip's audio
    "/audio/review/review.sqlite",
    "/audio/05-clips-abc/records.jsonl",
    "/audio/05-clips-abc%5Caudio%5Ctrn00-c000.flac",
])
def test_audio_outside_the_clips_is_refused(review_run, client_for, url):
    client = client_for(review_run)
    assert client.get(url).status_code in (403, 404)


def test_audio_path_checks_before_the_disk(review_run):
    data = load_run(review_run)
    ok = "05-clips-abc/audio/trn00-c000.flac"
    assert data.audio_file(ok) == (review_run / ok).resolve()
    for bad in ("../run/" + ok, "/" + ok, str((review_run / ok).resolve()), "05-clips-abc/audio/../audio/trn00-c000.flac",
                "05-clips-abc\\audio\\trn00-c000.flac", "", "."):
        assert data.audio_file(bad) is None, bad


def test_clip_audio_symlinked_out_of_the_run_is_not_served(review_run, client_for, tmp_path):
    outside = tmp_path / "outside.flac"
    outside.write_bytes((review_run / "05-clips-abc/audio/trn00-c000.flac").read_bytes())
    link = review_run / "05-clips-abc/audio/linked.flac"
    link.symlink_to(outside)
    records = review_run / "05-clips-abc/records.jsonl"
    clip = json.loads(records.read_text().splitlines()[0])
    clip.update(id="linked", audio="05-clips-abc/audio/linked.flac")
    with records.open("a") as f:
        f.write(json.dumps(clip) + "\n")
    client = client_for(review_run)
    assert client.get("/api/clips/linked").json()["audio_url"] is None
    assert client.get("/audio/05-clips-abc/audio/linked.flac").status_code == 404
    assert client.get("/audio/05-clips-abc/audio/trn00-c000.flac").status_code == 200


def test_audio_supports_range_requests(review_run, client_for):
    r = client_for(review_run).get("/audio/05-clips-abc/audio/trn00-c000.flac", headers={"Range": "bytes=0-99"})
    assert r.status_code == 206 and len(r.content) == 100  # browsers seek with ranges


def test_token_is_checked_on_every_request(review_run, client_for):
    client = client_for(review_run, reviewer=None, token="s3cret")
    for url in ("/", "/api/me", "/api/clips", "/static/app.js", "/audio/05-clips-abc/audio/trn00-c000.flac"):
        assert client.get(url).status_code == 401, url
    assert client.get("/api/me", headers={"X-CPQA-Token": "wrong"}).status_code == 401
    assert client.get("/api/me", headers={"X-CPQA-Token": "s3cret"}).status_code == 200
    assert client.get("/?token=wrong", follow_redirects=False).status_code == 401
    r = client.get("/?token=s3cret", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/" and "httponly" in r.headers["set-cookie"].lower()
    # the cookie now authenticates the browser, audio included
    assert client.get("/api/me").status_code == 200
    assert client.get("/audio/05-clips-abc/audio/trn00-c000.flac").status_code == 200


def test_loopback_app_refuses_foreign_host_names(review_run, client_for):
    """Without a token the app answers only to loopback names, so DNS rebinding cannot reach it."""
    client = client_for(review_run)
    assert client.get("/api/me", headers={"Host": "evil.example:8000"}).status_code == 400
    assert client.get("/api/me", headers={"Host": "localhost:8000"}).status_code == 200


def test_cross_site_form_posts_are_not_json(review_run, client_for):
    """A page elsewhere can only send 'simple' cross-site requests (form or text/plain bodies);
    the API takes JSON only."""
    client = client_for(review_run)
    r = client.post("/api/qa/trn00-c000-qa0/decision", content='{"action": "accept"}',
                    headers={"Content-Type": "text/plain"})
    assert r.status_code == 422


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "::", "review.example.org"])
def test_non_local_bind_needs_a_token(review_run, host):
    with pytest.raises(CPQAError, match="--token"):
        check_bind(host, None)
    with pytest.raises(CPQAError, match="exposes the review app"):
        serve(review_run, host=host, port=0)  # refused before anything listens
    check_bind(host, "a-token")


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "localhost", "::1"])
def test_loopback_bind_needs_no_token(host):
    check_bind(host, None)
