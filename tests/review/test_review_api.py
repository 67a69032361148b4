"""The review API: listing, decisions that persist, concurrent reviewers, agreement, export, CLI."""

from __future__ import annotations

import json
import sqlite3
import sys
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing

import pytest
import typer
from typer.testing import CliRunner

from cpqa.cli.review import app as review_app
from cpqa.manifest import iter_jsonl
from cpqa.records import QAItem
from cpqa.review.db import ReviewDB
from cpqa.review.export import export
from cpqa.review.kappa import cohen_kappa

pytestmark = pytest.mark.timeout(60)


def history(run):
    """Every stored decision, oldest first."""
    con = sqlite3.connect(ReviewDB(run).path)
    con.row_factory = sqlite3.Row
    with closing(con):
        return [dict(r) for r in con.execute("SELECT * FROM decisions ORDER BY seq")]


def decide(client, qa_id, action, **body):
    r = client.post(f"/api/qa/{qa_id}/decision", json={"action": action, **body})
    assert r.status_code == 200, r.text
    return r.json()


def test_a_reviewer_name_comes_first(review_run, client_for):
    client = client_for(review_run, reviewer=None)
    assert client.get("/api/me").json()["reviewer"] is None
    r = client.get("/api/clips")
    assert r.status_code == 400 and "name" in r.json()["detail"]
    assert client.post("/api/reviewer", json={"name": "   "}).status_code == 422
    assert client.post("/api/reviewer", json={"name": "Zoë M"}).status_code == 200
    assert client.get("/api/me").json()["reviewer"] == "Zoë M"


def test_clip_list_filters_and_progress(review_run, client_for):
    client = client_for(review_run)
    data = client.get("/api/clips").json()
    assert [c["id"] for c in data["clips"]] == ["trn00-c000", "trn01-c005", "ravdess-angry"]
    assert data["emotions"] == ["angry", "happy", "neutral", "sad"]
    assert data["progress"] == {"clips": 3, "clips_reviewed": 0, "qa": 6, "qa_decided": 0, "human": 0}
    ids = lambda **q: [c["id"] for c in client.get("/api/clips", params=q).json()["clips"]]
    assert ids(type="DE") == ["trn00-c000", "trn01-c005"]
    assert ids(type="EMP", emotion="angry") == ["ravdess-angry"]
    assert ids(emotion="sad") == ["trn01-c005"]
    decide(client, "ravdess-angry-qa0", "accept")
    decide(client, "trn00-c000-qa0", "accept")
    assert ids(state="reviewed") == ["ravdess-angry"]
    assert ids(state="in progress") == ["trn00-c000"]
    assert ids(state="unreviewed") == ["trn01-c005"]
    assert client.get("/api/clips").json()["progress"]["qa_decided"] == 2


def test_clip_detail(review_run, client_for):
    client = client_for(review_run)
    d = client.get("/api/clips/trn01-c005").json()
    assert d["audio_url"] == "/audio/05-clips-abc/audio/trn01-c005.flac"  # absolute in the record, served relative
    assert d["clip"]["words"][0] == {"word": "w0", "start": 5.0, "end": 5.4, "prob": None, "emotion": "sad",
                                     "gender": "male", "speaker": "SPK_C"}
    assert [q["id"] for q in d["qa"]] == ["trn01-c005-qa0", "trn01-c005-qa1"]
    assert "raw_output" not in d["qa"][0]["generator"]
    assert client.get(d["audio_url"]).headers["content-type"] == "audio/flac"
    assert client.get("/api/clips/nope").status_code == 404


def test_decisions_persist_across_restarts(review_run, client_for):
    client = client_for(review_run)
    decide(client, "trn00-c000-qa0", "accept")
    decide(client, "trn00-c000-qa1", "reject", reason="duplicate")
    edited = [{"question": "Is the first speaker cheerful?", "answer": "Yes."}, {"question": "Why?", "answer": "Tone."}]
    decide(client, "trn00-c000-qa2", "edit", type="DG", turns=edited)
    decide(client, "trn00-c000-qa2", "edit", type="DG", turns=edited[:1])  # the latest edit wins
    human = client.post("/api/human", json={"clip_id": "trn00-c000", "type": "CS",
                                            "turns": [{"question": "How many people talk?", "answer": "Two."}]})
    assert human.status_code == 200 and human.json()["id"] == "trn00-c000-human-001"

    again = client_for(review_run)  # a new app on the same run: a restarted server
    qa = {q["id"]: q for q in again.get("/api/clips/trn00-c000").json()["qa"]}
    assert qa["trn00-c000-qa0"]["mine"]["action"] == "accept"
    assert qa["trn00-c000-qa1"]["mine"] == {"action": "reject", "reason": "duplicate",
                                            "created": qa["trn00-c000-qa1"]["mine"]["created"]}
    assert qa["trn00-c000-qa2"]["type"] == "DG" and qa["trn00-c000-qa2"]["generated_type"] == "C"
    assert qa["trn00-c000-qa2"]["turns"] == edited[:1]
    assert qa["trn00-c000-qa2"]["edited"]["by"] == "alice"
    assert [h["id"] for h in again.get("/api/human", params={"clip_id": "trn00-c000"}).json()] == ["trn00-c000-human-001"]
    assert len(history(review_run)) == 4  # every decision kept, with reviewer and time
    assert all(d["reviewer"] == "alice" and d["created"] for d in history(review_run))


def test_bad_requests_are_refused(review_run, client_for):
    client = client_for(review_run)
    post = lambda qa, body: client.post(f"/api/qa/{qa}/decision", json=body).status_code
    assert post("trn00-c000-qa0", {"action": "reject"}) == 422  # no reason
    assert post("trn00-c000-qa0", {"action": "reject", "reason": "I just don't like it"}) == 422
    assert post("trn00-c000-qa0", {"action": "edit", "type": "C"}) == 422  # no turns
    assert post("trn00-c000-qa0", {"action": "edit", "type": "XX", "turns": [{"question": "q", "answer": "a"}]}) == 422
    assert post("trn00-c000-qa0", {"action": "edit", "type": "C", "turns": [{"question": " ", "answer": "a"}]}) == 422
    assert post("trn00-c000-qa0", {"action": "accept", "reason": "duplicate"}) == 422
    assert post("nope", {"action": "accept"}) == 404
    human = lambda body: client.post("/api/human", json=body).status_code
    assert human({"clip_id": "nope", "type": "C", "turns": [{"question": "q", "answer": "a"}]}) == 404
    assert human({"clip_id": "trn00-c000", "type": "C", "turns": []}) == 422
    assert client.delete("/api/human/nope").status_code == 404
    assert history(review_run) == []


def test_human_qa_delete_keeps_numbering(review_run, client_for):
    client = client_for(review_run)
    body = {"clip_id": "ravdess-angry", "type": "DE", "turns": [{"question": "Mood?", "answer": "Angry."}]}
    first = client.post("/api/human", json=body).json()["id"]
    assert client.delete(f"/api/human/{first}").status_code == 200
    assert client.post("/api/human", json=body).json()["id"] == "ravdess-angry-human-002"
    assert [h["id"] for h in client.get("/api/human").json()] == ["ravdess-angry-human-002"]


def test_concurrent_reviewers_lose_nothing(review_run, client_for):
    reviewers = [f"r{i}" for i in range(4)]
    clients = {r: client_for(review_run, reviewer=r) for r in reviewers}
    qa_ids = [q["id"] for c in ("trn00-c000", "trn01-c005", "ravdess-angry")
              for q in clients["r0"].get(f"/api/clips/{c}").json()["qa"]]
    rounds = 3

    def work(name):
        for n in range(rounds):
            for qa_id in qa_ids:
                decide(clients[name], qa_id, "accept" if n % 2 == 0 else "reject", **(
                    {} if n % 2 == 0 else {"reason": "other"}))
            r = clients[name].post("/api/human", json={"clip_id": "trn00-c000", "type": "C",
                                                      "turns": [{"question": f"{name} {n}?", "answer": "a"}]})
            assert r.status_code == 200, r.text

    with ThreadPoolExecutor(len(reviewers)) as pool:
        for future in [pool.submit(work, r) for r in reviewers]:
            future.result()  # re-raises a worker's failure here
    db = ReviewDB(review_run)
    assert len(history(review_run)) == len(reviewers) * rounds * len(qa_ids)
    humans = db.human()
    assert len(humans) == len(reviewers) * rounds
    assert len({h["id"] for h in humans}) == len(humans)  # ids unique under concurrent writes
    latest = db.latest_verdicts()
    assert set(latest) == set(reviewers)
    assert all(d["action"] == "accept" for r in reviewers for d in latest[r].values())  # round 2 is the last
    with sqlite3.connect(db.path) as con:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_cohen_kappa_by_hand():
    # 50 items: both accept 20, A accept/B reject 5, A reject/B accept 10, both reject 15.
    # p_o = 35/50 = 0.7; P(A accept) = 0.5, P(B accept) = 0.6; p_e = 0.5*0.6 + 0.5*0.4 = 0.5;
    # kappa = (0.7 - 0.5) / (1 - 0.5) = 0.4
    pairs = [("a", "a")] * 20 + [("a", "r")] * 5 + [("r", "a")] * 10 + [("r", "r")] * 15
    k = cohen_kappa(pairs)
    assert k["n"] == 50 and k["agreement"] == pytest.approx(0.7) and k["kappa"] == pytest.approx(0.4)
    assert cohen_kappa([("a", "a"), ("a", "a")]) == {"n": 2, "agreement": 1.0, "kappa": None}
    assert cohen_kappa([]) == {"n": 0, "agreement": None, "kappa": None}


def _two_reviewers(review_run, client_for):
    """alice and bob judge the six items; returns bob's client.
    item (type):  qa0 (C)  qa1 (DE)  qa2 (C)  c005-qa0 (DE)  c005-qa1 (CE)  angry-qa0 (EMP)
    alice:        edit     accept    accept   reject         reject         accept
    bob:          accept   reject    accept   reject         accept         accept
    Overall: agree on 4 of 6, p_o = 4/6; both accept 4/6 of the time, p_e = (4/6)^2 + (2/6)^2 = 20/36;
    kappa = (24/36 - 20/36) / (16/36) = 0.25.  DE: p_o = 1/2, alice accepts 1/2, bob 0: p_e = 1/2, kappa = 0.
    C: both accept both, kappa undefined (agreement 1)."""
    alice, bob = client_for(review_run, "alice"), client_for(review_run, "bob")
    decide(alice, "trn00-c000-qa0", "edit", type="C", turns=[{"question": "What is planned?", "answer": "A design."}])
    for qa_id, a, b in [("trn00-c000-qa1", "accept", "reject"), ("trn00-c000-qa2", "accept", "accept"),
                        ("trn01-c005-qa0", "reject", "reject"), ("trn01-c005-qa1", "reject", "accept"),
                        ("ravdess-angry-qa0", "accept", "accept")]:
        decide(alice, qa_id, a, **({"reason": "wrong answer"} if a == "reject" else {}))
        decide(bob, qa_id, b, **({"reason": "wrong answer"} if b == "reject" else {}))
    decide(bob, "trn00-c000-qa0", "accept")
    bob.post("/api/human", json={"clip_id": "trn01-c005", "type": "CG",
                                 "turns": [{"question": "Who answers the man?", "answer": "A woman."}]})
    return bob


def test_kappa_in_the_api_matches_a_hand_computation(review_run, client_for):
    stats = _two_reviewers(review_run, client_for).get("/api/stats").json()
    (k,) = stats["kappa"]
    assert (k["a"], k["b"], k["n"]) == ("alice", "bob", 6)
    assert k["agreement"] == pytest.approx(4 / 6) and k["kappa"] == pytest.approx(0.25)
    assert k["per_type"]["DE"]["kappa"] == pytest.approx(0.0)
    assert k["per_type"]["C"] == {"n": 2, "agreement": 1.0, "kappa": None}
    assert k["per_type"]["EMP"]["n"] == 1
    assert stats["reviewers"] == [{"name": "alice", "accept": 3, "edit": 1, "reject": 2, "human": 0},
                                  {"name": "bob", "accept": 4, "edit": 0, "reject": 2, "human": 1}]
    # outcomes: qa0, qa2, angry accepted by both; qa1 and c005-qa1 tie 1-1, the latest verdict (bob's) wins
    assert (stats["qa_decided"], stats["qa_accepted"], stats["qa_rejected"], stats["qa_edited"]) == (6, 4, 2, 1)


def test_export_and_stats_cli(review_run, client_for, tmp_path):
    _two_reviewers(review_run, client_for)
    runner = CliRunner()
    out = tmp_path / "reviewed.jsonl"
    r = runner.invoke(review_app, ["export", str(review_run), "--what", "reviewed", "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert "Wrote 4 reviewed" in r.output
    items = {o["id"]: QAItem.model_validate(o) for o in iter_jsonl(out)}
    assert list(items) == ["trn00-c000-qa0", "trn00-c000-qa2", "trn01-c005-qa1", "ravdess-angry-qa0"]
    edited = items["trn00-c000-qa0"]
    assert edited.turns[0].question == "What is planned?"
    assert edited.generator.model == "test-llm"
    assert edited.metadata["review"]["status"] == "edited"
    assert edited.metadata["review"]["original"]["turns"][0]["question"] == "What are they planning?"
    for item in items.values():
        assert (review_run / "05-clips-abc" / "audio" / f"{item.clip_id}.flac").resolve().samefile(item.metadata["audio"])

    human_out = tmp_path / "human.jsonl.gz"
    assert export(review_run, "human", human_out) == 1
    (human,) = [QAItem.model_validate(o) for o in iter_jsonl(human_out)]
    assert human.generator.model_dump() == {"model": "human", "reviewer": "bob"}
    assert (human.clip_id, human.type, human.id) == ("trn01-c005", "CG", "trn01-c005-human-001")

    r = runner.invoke(review_app, ["export", str(review_run), "--what", "everything", "-o", str(out)])
    assert r.exit_code == 2 and "unknown export" in r.output

    r = runner.invoke(review_app, ["stats", str(review_run)])
    assert r.exit_code == 0, r.output
    assert "alice / bob" in r.output and "0.250" in r.output
    r = runner.invoke(review_app, ["stats", str(review_run), "--json"])
    assert json.loads(r.output)["kappa"][0]["kappa"] == pytest.approx(0.25)


def test_cli_mounts_as_a_sub_app_and_serves_by_default(review_run):
    parent = typer.Typer()
    parent.add_typer(review_app, name="review")
    runner = CliRunner()
    r = runner.invoke(parent, ["review", "stats", str(review_run)])
    assert r.exit_code == 0, r.output
    r = runner.invoke(parent, ["review", str(review_run), "--help"])  # `review RUN` is `review serve RUN`
    assert r.exit_code == 0 and "--token" in r.output
    r = runner.invoke(parent, ["review", "--help"])
    assert r.exit_code == 0 and all(c in r.output for c in ("serve", "export", "stats"))
    r = runner.invoke(parent, ["review", "stats", str(review_run / "missing")])
    assert r.exit_code == 2 and "not a cpqa run directory" in r.output


def test_cli_generates_a_token_for_a_network_bind(review_run, monkeypatch):
    served = {}
    monkeypatch.setattr("cpqa.review.server.serve", lambda run, host, port, token: served.update(
        run=run, host=host, port=port, token=token))
    r = CliRunner().invoke(review_app, [str(review_run), "--host", "0.0.0.0", "--port", "8123"])
    assert r.exit_code == 0, r.output
    assert served["host"] == "0.0.0.0" and served["port"] == 8123 and len(served["token"]) >= 24
    assert f"Generated an access token: {served['token']}" in r.output
    assert f"http://0.0.0.0:8123/?token={served['token']}" in r.output
    r = CliRunner().invoke(review_app, [str(review_run)])
    assert r.exit_code == 0 and served["host"] == "127.0.0.1" and served["token"] is None


@pytest.mark.parametrize("module", ["fastapi", "uvicorn"])
def test_missing_review_extra_is_named(review_run, monkeypatch, module):
    from cpqa.errors import MissingExtraError
    from cpqa.review.server import serve

    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` fail
    with pytest.raises(MissingExtraError, match=r"cpqa\[review\]"):
        serve(review_run, port=0)


def test_a_run_without_qa_can_still_be_reviewed(review_run, client_for):
    info = json.loads((review_run / "run.json").read_text())
    info["stages"] = info["stages"][:1]
    (review_run / "run.json").write_text(json.dumps(info))
    client = client_for(review_run)
    assert client.get("/api/clips").json()["progress"]["qa"] == 0
    assert client.post("/api/human", json={"clip_id": "trn00-c000", "type": "DS",
                                           "turns": [{"question": "How many speakers?", "answer": "Two."}]}).status_code == 200
