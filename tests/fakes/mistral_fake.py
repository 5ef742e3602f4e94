"""A loopback fake of Mistral's API (shared/specs/mistral-openapi.yaml): chat completions.

Same paths, JSON shapes and error bodies as the public reference; every request is recorded.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from typing import Any

from ._server import FakeServer, Faults, Reply

PREFIX = "/v1"


def mistral_error(status: int, message: str, kind: str = "invalid_request_error") -> Reply:
    """An error body as Mistral sends it."""
    return Reply(
        status, {"object": "error", "message": message, "type": kind, "param": None, "code": None}
    )


def _echo(model: str, messages: list[dict[str, Any]]) -> str:
    return f"echo: {messages[-1].get('content')}"


class MistralFake(FakeServer):
    """The fake; ``chat_responder(model, messages)`` writes the answers."""

    api_key = "mistral-test-key-0123456789"

    def __init__(self, faults: Faults | None = None) -> None:
        super().__init__(faults)
        self.counter = itertools.count(1)
        self.chat_delay = 0.0
        self.chat_responder: Callable[[str, list[dict[str, Any]]], str] = _echo

    @property
    def base_url(self) -> str:
        return self.url

    def unauthorized(self) -> Any:
        return {"detail": "Unauthorized"}

    def route(
        self, method: str, path: str, query: dict[str, str], body: Any, raw: bytes, headers: Any
    ) -> Any:
        if method == "POST" and path == f"{PREFIX}/chat/completions":
            return self._chat(body)
        raise mistral_error(404, f"Not found: {method} {path}")

    def _chat(self, body: dict[str, Any]) -> Any:
        if not body or not body.get("model") or not body.get("messages"):
            raise Reply(422, {"detail": [{"loc": ["body", "messages"], "msg": "Field required"}]})
        if self.chat_delay:
            time.sleep(self.chat_delay)
        text = self.chat_responder(body["model"], body["messages"])
        return {
            "id": f"cmpl-{next(self.counter):08d}",
            "object": "chat.completion",
            "model": body["model"],
            "created": int(time.time()),
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text, "tool_calls": None},
                    "finish_reason": "stop",
                }
            ],
        }
