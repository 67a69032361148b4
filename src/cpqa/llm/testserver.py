"""A test tool: an OpenAI-compatible chat-completions server on 127.0.0.1 whose behaviour is
scripted per request, to exercise clients against 429s, 5xx, stalls, dropped connections and
malformed bodies, or to benchmark them against a fixed latency. Not used by the pipeline.

    def script(body, attempt):          # attempt: 1 for the first time this body is seen
        return Fail(429, retry_after=0.1) if attempt == 1 else Reply()

    with OpenAITestServer(script, latency_s=0.05) as server:
        OpenAIBackend(OpenAIConfig(model="m", base_url=server.url, api_key_env=None))
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

logger = logging.getLogger(__name__)


@dataclass
class Reply:
    """A valid completion; `content` None asks the server's responder."""

    content: str | None = None
    finish_reason: str = "stop"


@dataclass
class Fail:
    """An HTTP error, with a Retry-After header when `retry_after` (seconds) is given."""

    status: int = 500
    retry_after: float | None = None
    body: str = '{"error": {"message": "injected failure", "type": "server_error"}}'


@dataclass
class Stall:
    """Say nothing for `seconds` (longer than the client's timeout), then close."""

    seconds: float = 5.0


@dataclass
class Drop:
    """Close the connection without a response."""


@dataclass
class Garble:
    """HTTP 200 with a body that is not valid JSON."""


Action = Reply | Fail | Stall | Drop | Garble
Script = Callable[[dict[str, Any], int], Action]


@dataclass
class Received:
    body: dict[str, Any]
    headers: dict[str, str]
    attempt: int
    action: Action
    at: float
    """time.monotonic() when the request arrived."""


def echo(body: dict[str, Any]) -> str:
    """The default responder: the last user message."""
    return next((m["content"] for m in reversed(body["messages"]) if m.get("role") == "user"), "")


@dataclass
class OpenAITestServer:
    """Start with `with` (or `start()` / `stop()`); `url` is the base URL for a client."""

    script: Script | None = None
    latency_s: float = 0.0
    """Added before every Reply, to model a server's generation time."""
    responder: Callable[[dict[str, Any]], str] = echo
    received: list[Received] = field(default_factory=list)
    max_in_flight: int = 0
    """The most requests the server was handling at once."""

    def __post_init__(self):
        self._in_flight = 0
        self._lock = threading.Lock()
        self._seen: Counter = Counter()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the test server is not started")
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def actions(self) -> Counter:
        """How many times each action was played, by class name."""
        with self._lock:
            return Counter(type(r.action).__name__ for r in self.received)

    def start(self) -> "OpenAITestServer":
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self), bind_and_activate=False)
        server.daemon_threads = True
        server.request_queue_size = 512  # the default 5 drops SYNs when many clients connect at once
        server.server_bind()
        server.server_activate()
        self._server = server
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True,
                         name="openai-test-server").start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes stalled and sleeping handlers
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> "OpenAITestServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _decide(self, body: dict[str, Any], headers: dict[str, str]) -> Action:
        key = hashlib.sha256(json.dumps(body.get("messages"), sort_keys=True).encode()).hexdigest()
        with self._lock:
            self._seen[key] += 1
            attempt = self._seen[key]
        action = self.script(body, attempt) if self.script else Reply()
        with self._lock:
            self.received.append(Received(body, headers, attempt, action, time.monotonic()))
        return action

    def _track(self, delta: int) -> None:
        with self._lock:
            self._in_flight += delta
            self.max_in_flight = max(self.max_in_flight, self._in_flight)

    def _completion(self, body: dict[str, Any], reply: Reply) -> dict[str, Any]:
        content = self.responder(body) if reply.content is None else reply.content
        prompt_chars = sum(len(m.get("content") or "") for m in body.get("messages", []))
        return {
            "id": f"chatcmpl-{len(self.received)}", "object": "chat.completion", "created": int(time.time()),
            "model": body.get("model", "test"),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                         "finish_reason": reply.finish_reason}],
            "usage": {"prompt_tokens": prompt_chars // 4 + 1, "completion_tokens": len(content) // 4 + 1,
                      "total_tokens": (prompt_chars + len(content)) // 4 + 2},
        }


def _handler(server: OpenAITestServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as real servers do
        wbufsize = 1 << 16  # headers and body leave in one write, flushed after each request
        disable_nagle_algorithm = True  # else Nagle + delayed ACK add ~40 ms per reply

        def log_message(self, format, *args):  # the library never prints
            logger.debug("test server: " + format, *args)

        def _send(self, status: int, payload: bytes, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

        def do_POST(self):
            server._track(+1)
            try:
                self._respond()
            finally:
                server._track(-1)

        def _respond(self):
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if not self.path.split("?")[0].endswith("/chat/completions"):
                self._send(404, b'{"error": {"message": "not found"}}')
                return
            try:
                body = json.loads(raw)
            except json.JSONDecodeError:
                self._send(400, b'{"error": {"message": "request body is not JSON"}}')
                return
            action = server._decide(body, dict(self.headers))
            if isinstance(action, Reply):
                server._stopping.wait(server.latency_s)
                self._send(200, json.dumps(server._completion(body, action)).encode())
            elif isinstance(action, Fail):
                headers = {} if action.retry_after is None else {"Retry-After": f"{action.retry_after:g}"}
                self._send(action.status, action.body.encode(), headers)
            elif isinstance(action, Garble):
                self._send(200, b'{"choices": [{"message": {"content": "trunc')
            else:  # Stall or Drop: no response at all
                if isinstance(action, Stall):
                    server._stopping.wait(action.seconds)
                self.close_connection = True

    return Handler
