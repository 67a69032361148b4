"""A test tool: an OpenAI-compatible chat-completions server on 127.0.0.1 whose behaviour is
scripted per request, to exercise clients against 429s, 5xx, stalls, dropped connections and
malformed bodies, or to benchmark them against a fixed latency. Not used by the pipeline.

    def script(body, attempt):          # attempt: 1 for the first time this body is seen
        return Fail(429, retry_after=0.1) if attempt == 1 else Reply()

    with OpenAITestServer(script, latency_s=0.05) as server:
        OpenAIBackend(OpenAIConfig(model="m", base_url=server.url, api_key_env=None))
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import multiprocessing
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Self


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
    """Names in lower case."""
    attempt: int
    action: Action
    at: float
    """time.monotonic() when the request arrived."""


def echo(body: dict[str, Any]) -> str:
    """The default responder: the last user message."""
    return next((m["content"] for m in reversed(body["messages"]) if m.get("role") == "user"), "")


@dataclass
class OpenAITestServer:
    """Start with `with` (or `start()` / `stop()`); `url` is the base URL for a client. One asyncio
    loop in a background thread serves every connection (threads per connection would queue on
    the interpreter lock and inflate latency under load)."""

    script: Script | None = None
    latency_s: float = 0.0
    """Added before every Reply, to model a server's generation time."""
    responder: Callable[[dict[str, Any]], str] = echo
    received: list[Received] = field(default_factory=list)
    max_in_flight: int = 0
    """The most requests the server was handling at once."""

    def __post_init__(self):
        self._in_flight = 0
        self._seen: Counter = Counter()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._port: int | None = None

    @property
    def url(self) -> str:
        if self._port is None:
            raise RuntimeError("the test server is not started")
        return f"http://127.0.0.1:{self._port}/v1"

    def actions(self) -> Counter:
        """How many times each action was played, by class name."""
        return Counter(type(r.action).__name__ for r in list(self.received))

    def start(self) -> Self:
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, args=(ready,), daemon=True, name="openai-test-server")
        self._thread.start()
        ready.wait(30)
        if self._port is None:
            raise RuntimeError("the test server did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _run(self, ready: threading.Event) -> None:
        loop = self._loop
        asyncio.set_event_loop(loop)
        try:
            server = loop.run_until_complete(asyncio.start_server(self._connection, "127.0.0.1", 0, backlog=512))
            self._port = server.sockets[0].getsockname()[1]
        finally:
            ready.set()
        loop.run_forever()
        server.close()
        tasks = asyncio.all_tasks(loop)  # stalled and sleeping handlers
        for task in tasks:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        loop.close()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while request_line := await reader.readline():  # keep-alive: requests until the client closes
                headers = {}
                while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
                    name, _, value = line.decode("latin-1").partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length") or 0))
                if not await self._respond(request_line.decode("latin-1").split(), headers, body, writer):
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        except asyncio.CancelledError:  # stop(): end quietly (3.11's stream callback chokes on a cancelled task)
            pass
        finally:
            writer.close()

    async def _respond(self, request_line: list[str], headers: dict[str, str], raw: bytes,
                       writer: asyncio.StreamWriter) -> bool:
        """Play one request; False closes the connection."""
        if len(request_line) < 2 or request_line[0] != "POST" or not request_line[1].split("?")[0].endswith(
                "/chat/completions"):
            return await _write(writer, 404, b'{"error": {"message": "not found"}}')
        try:
            body = json.loads(raw)
        except json.JSONDecodeError:
            return await _write(writer, 400, b'{"error": {"message": "request body is not JSON"}}')
        self._in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self._in_flight)
        try:
            action = self._decide(body, headers)
            if isinstance(action, Reply):
                await asyncio.sleep(self.latency_s)
                return await _write(writer, 200, json.dumps(self._completion(body, action)).encode())
            if isinstance(action, Fail):
                extra = {} if action.retry_after is None else {"Retry-After": f"{action.retry_after:g}"}
                return await _write(writer, action.status, action.body.encode(), extra)
            if isinstance(action, Garble):
                return await _write(writer, 200, b'{"choices": [{"message": {"content": "trunc')
            if isinstance(action, Stall):
                await asyncio.sleep(action.seconds)
            return False  # Stall or Drop: no response at all
        finally:
            self._in_flight -= 1

    def _decide(self, body: dict[str, Any], headers: dict[str, str]) -> Action:
        key = hashlib.sha256(json.dumps(body.get("messages"), sort_keys=True).encode()).hexdigest()
        self._seen[key] += 1
        attempt = self._seen[key]
        action = self.script(body, attempt) if self.script else Reply()
        self.received.append(Received(body, headers, attempt, action, time.monotonic()))
        return action

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


async def _write(writer: asyncio.StreamWriter, status: int, payload: bytes, headers: dict[str, str] | None = None) -> bool:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = ""
    head = [f"HTTP/1.1 {status} {phrase}", "Content-Type: application/json", f"Content-Length: {len(payload)}"]
    head += [f"{name}: {value}" for name, value in (headers or {}).items()]
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + payload)
    await writer.drain()
    return True


@contextmanager
def server_process(latency_s: float = 0.0) -> Iterator[str]:
    """An `OpenAITestServer` with default replies in a child process, so that a benchmarked
    client does not share its interpreter lock with the server; yields the base URL."""
    ctx = multiprocessing.get_context("spawn")
    ours, theirs = ctx.Pipe()
    process = ctx.Process(target=_serve, args=(theirs, latency_s), daemon=True, name="openai-test-server")
    process.start()
    try:
        if not ours.poll(60):
            raise RuntimeError("the test server process did not start within 60 s")
        yield ours.recv()
    finally:
        ours.close()  # the child's recv() ends, and it stops its server
        process.join(10)
        if process.is_alive():
            process.kill()


def _serve(conn, latency_s: float) -> None:
    with OpenAITestServer(latency_s=latency_s) as server:
        conn.send(server.url)
        try:
            conn.recv()
        except EOFError:
            pass
