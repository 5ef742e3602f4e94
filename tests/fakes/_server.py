"""A tiny threaded HTTP server with fault injection, shared by the provider fakes."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit


@dataclass
class Faults:
    """What fraction of requests fail, and how."""

    rate: float = 0.0
    kinds: tuple[str, ...] = ("429", "500", "503", "reset_before", "reset_after", "slow")
    slow_seconds: float = 0.3
    retry_after: str = "0.02"
    seed: int = 0
    only: str | None = None
    rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self._lock = threading.Lock()

    def draw(self, path: str = "") -> str | None:
        if self.only is not None and self.only not in path:
            return None
        with self._lock:
            if self.rate and self.rng.random() < self.rate:
                return self.rng.choice(self.kinds)
        return None


@dataclass
class Recorded:
    """One request as the server saw it."""

    method: str
    path: str
    query: list[tuple[str, str]]
    body: Any
    content_type: str
    fault: str | None
    raw: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)  # by lowercase name


class Reply(Exception):
    """Raised by a route to answer with a status and a JSON body."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        self.status = status
        self.body = body
        self.headers = headers or {}


@dataclass
class Raw:
    """An answer sent as it is: any bytes, any content type (a truncated JSON body, HTML)."""

    body: bytes
    content_type: str = "application/json"


Rewrite = Callable[[str, str, int, Any], "tuple[int, Any] | None"]


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # a listen backlog for many concurrent clients

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that drops its connection (as clients do after an injected fault or a
        timeout) is expected here; anything else is printed as usual."""
        if isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            return
        super().handle_error(request, client_address)


class FakeServer:
    """Routes requests to ``self.route(method, path, query, body, headers)``; subclass it."""

    api_key = "sk-test-0123456789abcdefghij"

    def __init__(self, faults: Faults | None = None, port: int = 0) -> None:
        self.faults = faults or Faults()
        self.requests: list[Recorded] = []
        self.lock = threading.RLock()
        self.hold: dict[tuple[str, str], float] = {}
        # (method, path, status, payload) -> a replacement (status, payload), or None
        self.rewrite: Rewrite | None = None
        # a request -> seconds to hold its answer back (or None), beside ``hold``
        self.hold_if: Callable[[Recorded], float | None] | None = None
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out in two writes

            def log_message(self, *args: Any) -> None:
                return None

            def do_GET(self) -> None:
                server._handle(self, "GET")

            def do_POST(self) -> None:
                server._handle(self, "POST")

            def do_DELETE(self) -> None:
                server._handle(self, "DELETE")

            def do_PATCH(self) -> None:
                server._handle(self, "PATCH")

            def do_PUT(self) -> None:
                server._handle(self, "PUT")

        _Server.allow_reuse_address = True
        self._httpd = _Server(("127.0.0.1", port), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> FakeServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def route(
        self, method: str, path: str, query: dict[str, str], body: Any, raw: bytes, headers: Any
    ) -> Any:
        raise NotImplementedError

    def authorized(self, headers: Any) -> bool:
        return headers.get("Authorization") == f"Bearer {self.api_key}"

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        split = urlsplit(handler.path)
        query_pairs = parse_qsl(split.query, keep_blank_values=True)
        content_type = handler.headers.get("Content-Type", "")
        body: Any = None
        if raw and content_type.startswith("application/json"):
            body = json.loads(raw)
        fault = self.faults.draw(split.path)
        headers = {name.lower(): value for name, value in handler.headers.items()}
        recorded = Recorded(
            method, split.path, query_pairs, body, content_type, fault, raw[:65536], headers
        )
        with self.lock:
            self.requests.append(recorded)
        if fault == "reset_before":
            self._reset(handler)
            return
        if fault in ("429", "500", "503"):
            headers = {"Retry-After": self.faults.retry_after} if fault != "500" else {}
            self._send(handler, int(fault), self.fault_body(fault), headers)
            return
        if fault == "slow":
            time.sleep(self.faults.slow_seconds)
        try:
            if not self.authorized(handler.headers):
                raise Reply(401, self.unauthorized())
            result = self.route(method, split.path, dict(query_pairs), body, raw, handler.headers)
            status, payload, headers = 200, result, {}
        except Reply as reply:
            status, payload, headers = reply.status, reply.body, reply.headers
        if self.rewrite is not None:
            replaced = self.rewrite(method, split.path, status, payload)
            if replaced is not None:
                status, payload = replaced
        delay = self.hold.get((method, split.path))
        if self.hold_if is not None:
            delay = self.hold_if(recorded) or delay
        if delay:
            time.sleep(delay)
        if fault == "reset_after":
            self._reset(handler)
            return
        self._send(handler, status, payload, headers)

    def fault_body(self, fault: str) -> Any:
        """The error body of an injected 429/500/503 (OpenAI's shape; override per provider)."""
        message = {"429": "Rate limit reached", "500": "Internal error", "503": "Overloaded"}
        error = {"message": message[fault], "type": "server_error", "param": None, "code": None}
        return {"error": error}

    def unauthorized(self) -> Any:
        return {
            "error": {
                "message": "Incorrect API key provided: sk-wr***ng.",
                "type": "invalid_request_error",
                "param": None,
                "code": "invalid_api_key",
            }
        }

    def _send(
        self, handler: BaseHTTPRequestHandler, status: int, payload: Any, headers: dict[str, str]
    ) -> None:
        if isinstance(payload, Raw):
            data, kind = payload.body, payload.content_type
        elif isinstance(payload, bytes):
            data, kind = payload, "application/octet-stream"
        elif isinstance(payload, str):
            data, kind = payload.encode(), "text/plain"
        else:
            data, kind = json.dumps(payload).encode(), "application/json"
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", kind)
            handler.send_header("Content-Length", str(len(data)))
            for key, value in headers.items():
                handler.send_header(key, value)
            handler.end_headers()
            handler.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _reset(self, handler: BaseHTTPRequestHandler) -> None:
        handler.close_connection = True
        try:
            handler.connection.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
            )
            handler.connection.close()
        except OSError:
            pass


def within_token_limit(text: str, body: dict[str, Any]) -> tuple[str, str]:
    """A chat reply as an API gives it under the request's ``max_tokens`` (a word counting as
    a token here): cut there with ``finish_reason`` "length", else whole with "stop"."""
    limit = body.get("max_tokens") or body.get("max_completion_tokens")
    words = text.split(" ")
    if isinstance(limit, int) and len(words) > limit:
        return " ".join(words[:limit]), "length"
    return text, "stop"


@dataclass(frozen=True)
class Refusal:
    """A chat reply that refuses, as OpenAI answers one under structured outputs: no content,
    the words in ``refusal``."""

    text: str


ChatReply = str | list[tuple[str, str]] | Refusal
"""A fake model's reply: text, or tool calls as ``(name, JSON arguments)``."""


def chat_reply(reply: ChatReply, body: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The assistant message and ``finish_reason`` a chat API answers ``reply`` with."""
    if isinstance(reply, str):
        text, finish = within_token_limit(reply, body)
        return {"role": "assistant", "content": text}, finish
    if isinstance(reply, Refusal):
        return {"role": "assistant", "content": None, "refusal": reply.text}, "stop"
    calls = [
        {"id": f"call_{index}", "type": "function", "function": {"name": name, "arguments": args}}
        for index, (name, args) in enumerate(reply)
    ]
    return {"role": "assistant", "content": None, "tool_calls": calls}, "tool_calls"


def tool_turn_problem(messages: list[dict[str, Any]]) -> str | None:
    """What a chat API says of a tool result that answers no call of the turn before it."""
    open_calls: set[str] = set()
    for index, message in enumerate(messages):
        if message.get("role") == "assistant":
            open_calls = {call["id"] for call in message.get("tool_calls") or []}
        elif message.get("role") == "tool" and message.get("tool_call_id") not in open_calls:
            return f"messages[{index}]: a tool message must answer a tool call of the turn before"
    return None


def multipart_fields(raw: bytes, content_type: str) -> dict[str, tuple[str | None, bytes]]:
    """name -> (filename, bytes) of a multipart/form-data body."""
    boundary = content_type.split("boundary=", 1)[1].strip().strip('"').encode()
    fields: dict[str, tuple[str | None, bytes]] = {}
    for part in raw.split(b"--" + boundary):
        if not part or part in (b"--", b"--\r\n", b"\r\n"):
            continue
        head, _, data = part.lstrip(b"\r\n").partition(b"\r\n\r\n")
        if data.endswith(b"\r\n"):
            data = data[:-2]
        disposition = next(
            (
                line
                for line in head.decode("latin-1").split("\r\n")
                if line.lower().startswith("content-disposition")
            ),
            "",
        )
        attributes = dict(
            item.strip().split("=", 1) for item in disposition.split(";")[1:] if "=" in item
        )
        name = attributes.get("name", "").strip('"')
        filename = attributes.get("filename")
        fields[name] = (filename.strip('"') if filename else None, data)
    return fields


def child_env(tmp_path: Path, **variables: str) -> dict[str, str]:
    """The environment of a test's child process: this one's, with ``variables`` and a
    ``TMPDIR`` inside ``tmp_path`` (what a killed child leaves there goes with the test)."""
    temp = tmp_path / "tmp"
    temp.mkdir(exist_ok=True)
    return {**os.environ, "TMPDIR": str(temp), **variables}


def sigkill_while_held(
    server: FakeServer,
    command: list[str],
    env: dict[str, str],
    path: str,
    before_rerun: Callable[[], None] | None = None,
    is_target: Callable[[Recorded], bool] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``command``, SIGKILL it while the server holds its ``POST path`` (the requests
    ``is_target`` picks, when given), then run it again.

    Returns the re-run. ``before_rerun`` runs between the two (to delete a registry, say).
    ``env`` must name the children's ``TMPDIR``: a process killed mid-upload leaves its
    upload folder there, and the suite leaves nothing in the machine's temporary folder.
    """
    assert Path(env["TMPDIR"]).is_dir(), "give the children a TMPDIR of the test's own"

    def target(request: Recorded) -> bool:
        hit = request.method == "POST" and request.path == path
        return hit and (is_target is None or is_target(request))

    def sent() -> bool:
        return any(target(r) for r in server.requests)

    server.hold_if = lambda request: 30.0 if target(request) else None
    child = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not sent() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sent(), child.communicate(timeout=5)
    time.sleep(0.2)
    os.kill(child.pid, signal.SIGKILL)
    child.communicate(timeout=10)  # reaped, and its pipes closed
    server.hold_if = None
    if before_rerun is not None:
        before_rerun()
    return subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=120, check=False
    )
