"""The review web app: a JSON API under `/api/`, clip audio under `/audio/`, static HTML/JS/CSS.

Security: every page forbids inline script (CSP) and the client builds its DOM from text only;
audio is served only for files of the run's clips; with a token every request must carry it
(header `X-CPQA-Token`, or the cookie set by opening any page once with `?token=`); without one
the app answers only to loopback host names, so a web page cannot reach it by DNS rebinding.
"""

# No `from __future__ import annotations`: FastAPI must see the closures' real annotation objects.
import hmac
import logging
from collections import Counter
from pathlib import Path
from typing import Annotated, Any, Literal, get_args
from urllib.parse import quote, unquote

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..errors import require
from ..records import QAType
from .consensus import item_states, review_stats
from .data import RunData, load_run
from .db import REJECT_REASONS, ReviewDB

logger = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
TOKEN_HEADER = "x-cpqa-token"
TOKEN_COOKIE = "cpqa_token"
REVIEWER_COOKIE = "cpqa_reviewer"
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
QA_TYPES = get_args(QAType)
STATES = ("unreviewed", "in progress", "reviewed")
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

Text = Annotated[str, Field(min_length=1, max_length=10_000)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class TurnIn(_In):
    question: Text
    answer: Text


class ReviewerIn(_In):
    name: Annotated[str, Field(min_length=1, max_length=64)]


class DecisionIn(_In):
    action: Literal["accept", "reject", "edit"]
    reason: str | None = None
    type: QAType | None = None
    turns: Annotated[list[TurnIn], Field(min_length=1, max_length=20)] | None = None

    @model_validator(mode="after")
    def _complete(self):
        if self.action == "reject" and self.reason not in REJECT_REASONS:
            raise ValueError(f"a reject needs a reason, one of: {', '.join(REJECT_REASONS)}")
        if self.action == "edit" and (self.type is None or self.turns is None):
            raise ValueError("an edit needs the corrected type and turns")
        if self.action != "reject" and self.reason is not None:
            raise ValueError("only a reject takes a reason")
        if self.action != "edit" and (self.type is not None or self.turns is not None):
            raise ValueError("only an edit takes a type and turns")
        return self


class HumanIn(_In):
    clip_id: str
    type: QAType
    turns: Annotated[list[TurnIn], Field(min_length=1, max_length=20)]


def _labels(words: list, attr: str) -> list[str]:
    return sorted({getattr(w, attr) for w in words if getattr(w, attr)})


def _clip_summary(data: RunData, clip_id: str, mine: dict[str, Any], humans: Counter) -> dict[str, Any]:
    clip = data.clips[clip_id]
    qa_ids = data.qa_by_clip.get(clip_id, [])
    decided = sum(1 for q in qa_ids if q in mine)
    if qa_ids:
        state = STATES[0] if decided == 0 else STATES[2] if decided == len(qa_ids) else STATES[1]
    else:
        state = STATES[2] if humans[clip_id] else STATES[0]
    return {
        "id": clip.id, "recording_id": clip.recording_id, "start": clip.start, "end": clip.end,
        "emotions": _labels(clip.words, "emotion"), "genders": _labels(clip.words, "gender"),
        "speakers": _labels(clip.words, "speaker"), "types": sorted({data.qa[q].type for q in qa_ids}),
        "qa": len(qa_ids), "decided": decided, "human": humans[clip_id], "state": state,
    }


def create_app(run_dir: str | Path, token: str | None = None, allowed_hosts: tuple[str, ...] = LOOPBACK_NAMES):
    """The ASGI app for one run. `allowed_hosts=("*",)` accepts any Host header (for non-loopback
    binds, where the token is the guard)."""
    fastapi = require("fastapi", "review")
    from fastapi import Depends, HTTPException, Request
    from fastapi.responses import FileResponse, JSONResponse, RedirectResponse
    from fastapi.staticfiles import StaticFiles
    from starlette.middleware.trustedhost import TrustedHostMiddleware

    run_dir = Path(run_dir)
    data = load_run(run_dir)
    db = ReviewDB(run_dir)
    app = fastapi.FastAPI(title="cpqa review", docs_url=None, redoc_url=None, openapi_url=None)

    @app.middleware("http")
    async def guard(request: Request, call_next):
        if token is not None:
            given = request.query_params.get("token")
            if given is not None:
                if not hmac.compare_digest(given.encode(), token.encode()):
                    return JSONResponse({"detail": "wrong token"}, status_code=401, headers=HEADERS)
                # Trade the URL token for a cookie so it leaves the address bar and history.
                rest = request.url.remove_query_params("token")
                response = RedirectResponse(rest.path + (f"?{rest.query}" if rest.query else ""), status_code=303)
                response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="strict")
                return response
            sent = request.headers.get(TOKEN_HEADER) or request.cookies.get(TOKEN_COOKIE) or ""
            if not hmac.compare_digest(sent.encode(), token.encode()):
                return JSONResponse({"detail": "token required: open the URL printed by `cpqa review`"},
                                    status_code=401, headers=HEADERS)
        response = await call_next(request)
        response.headers.update(HEADERS)
        return response

    app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts))

    def reviewer(request: Request) -> str:
        name = unquote(request.cookies.get(REVIEWER_COOKIE, "")).strip()
        if not name:
            raise HTTPException(400, "enter your reviewer name first")
        return name

    Reviewer = Annotated[str, Depends(reviewer)]

    @app.get("/", include_in_schema=False)
    def index():
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/api/me")
    def me(request: Request):
        name = unquote(request.cookies.get(REVIEWER_COOKIE, "")).strip()
        return {"reviewer": name or None, "run": run_dir.resolve().name, "types": QA_TYPES,
                "reasons": REJECT_REASONS, "states": STATES}

    @app.post("/api/reviewer")
    def set_reviewer(body: ReviewerIn):
        response = JSONResponse({"reviewer": body.name})
        response.set_cookie(REVIEWER_COOKIE, quote(body.name), max_age=365 * 86400, httponly=True, samesite="strict")
        return response

    @app.get("/api/clips")
    def clips(me: Reviewer, type: str | None = None, emotion: str | None = None, state: str | None = None):
        mine = db.latest_verdicts().get(me, {})
        humans = Counter(h["clip_id"] for h in db.human())
        summaries = [_clip_summary(data, c, mine, humans) for c in data.clips]
        shown = [s for s in summaries if (not type or type in s["types"]) and
                 (not emotion or emotion in s["emotions"]) and (not state or s["state"] == state)]
        return {
            "clips": shown,
            "emotions": sorted({e for s in summaries for e in s["emotions"]}),
            "progress": {"clips": len(summaries), "clips_reviewed": sum(s["state"] == STATES[2] for s in summaries),
                         "qa": len(data.qa), "qa_decided": len(mine.keys() & data.qa.keys()),
                         "human": sum(humans.values())},
        }

    @app.get("/api/clips/{clip_id}")
    def clip(clip_id: str, me: Reviewer):
        if clip_id not in data.clips:
            raise HTTPException(404, f"no clip {clip_id}")
        c = data.clips[clip_id]
        states = item_states(data, db)
        qa = []
        for qa_id in data.qa_by_clip.get(clip_id, []):
            s = states[qa_id]
            mine = s.verdicts.get(me)
            qa.append({
                "id": qa_id, "type": s.current.type, "generated_type": s.generated.type,
                "turns": [t.model_dump() for t in s.current.turns],
                "generator": s.generated.generator.model_dump(mode="json", exclude={"raw_output"}),
                "filters": s.generated.filters.model_dump(mode="json"),
                "edited": {"by": s.edit["reviewer"], "at": s.edit["created"]} if s.edit else None,
                "mine": {k: mine[k] for k in ("action", "reason", "created")} if mine else None,
                "reviewers": len(s.verdicts),
            })
        rel = data.audio_paths.get(clip_id)
        return {
            "clip": c.model_dump(mode="json"),
            "audio_url": "/audio/" + quote(rel) if rel else None,
            "qa": qa,
            "human": db.human(clip_id),
        }

    @app.post("/api/qa/{qa_id}/decision")
    def decide(qa_id: str, body: DecisionIn, me: Reviewer):
        if qa_id not in data.qa:
            raise HTTPException(404, f"no QA {qa_id}")
        turns = [t.model_dump() for t in body.turns] if body.turns else None
        row = db.add_decision(qa_id, me, body.action, body.reason, body.type, turns)
        logger.info("%s: %s %s", me, body.action, qa_id)
        return row

    @app.get("/api/human")
    def human(clip_id: str | None = None):
        return db.human(clip_id)

    @app.post("/api/human")
    def add_human(body: HumanIn, me: Reviewer):
        if body.clip_id not in data.clips:
            raise HTTPException(404, f"no clip {body.clip_id}")
        return db.add_human(body.clip_id, me, body.type, [t.model_dump() for t in body.turns])

    @app.delete("/api/human/{qa_id}")
    def delete_human(qa_id: str, me: Reviewer):
        if not db.delete_human(qa_id):
            raise HTTPException(404, f"no human QA {qa_id}")
        logger.info("%s: deleted %s", me, qa_id)
        return {"deleted": qa_id}

    @app.get("/api/stats")
    def stats():
        return review_stats(data, db)

    @app.get("/audio/{path:path}", include_in_schema=False)
    def audio(path: str):
        file = data.audio_file(path)
        if file is None:
            raise HTTPException(404, "no such audio in this run")
        return FileResponse(file)

    return app
