"""A chat request's sampling parameters, as the server asked takes them.

OpenAI's own API is sent ``max_completion_tokens``: its ``max_tokens`` is deprecated, and its
reasoning models (o1 to o4, gpt-5) refuse it. Other OpenAI-compatible servers (vLLM,
llama.cpp, Ollama, Together, Fireworks, a proxy) are sent ``max_tokens``, which they all take.
A parameter a model then refuses by name (a reasoning model's ``temperature`` other than 1;
``max_tokens`` on a proxy in front of one) is renamed or dropped once, and the request sent
again, rather than failing every answer.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any

from finetune._errors import InvalidRequestError

__all__ = ["Sampling"]

log = logging.getLogger("finetune")

_REFUSALS = ("unsupported_parameter", "unsupported_value")  # OpenAI's codes for both
_RENAMED = {"max_tokens": "max_completion_tokens"}
_DROPPABLE = ("temperature", "seed")  # the model samples at its own default


class Sampling:
    """The sampling part of a request's body, changed once a model refuses a parameter of it
    (shared by the requests a predictor has in flight: the first refusal changes it for all)."""

    def __init__(
        self,
        max_tokens: int,
        temperature: float,
        seed: int | None,
        extra_body: Mapping[str, Any] | None,
        *,
        completion_tokens: bool,
    ) -> None:
        limit = "max_completion_tokens" if completion_tokens else "max_tokens"
        self._body: dict[str, Any] = {limit: max_tokens, "temperature": temperature, "seed": seed}
        if extra_body:
            self._body["extra_body"] = dict(extra_body)
        self._lock = threading.Lock()  # a blocking predict may run in several threads

    def body(self) -> dict[str, Any]:
        """The parameters to send now."""
        with self._lock:
            return dict(self._body)

    def adapt(self, error: BaseException, sent: Mapping[str, Any], model: str) -> bool:
        """Whether a request that ``error`` refused for one of the ``sent`` parameters may go
        again: ``max_tokens`` as ``max_completion_tokens``, or a value the model refuses
        (``temperature``, ``seed``) left to the model's default, with a warning."""
        param = _refused(error)
        if param is None or param not in sent:
            return False
        if param not in _RENAMED and param not in _DROPPABLE:
            return False
        with self._lock:
            if param not in self._body:  # another request in flight heard it first
                return True
            value = self._body.pop(param)
            if param in _RENAMED:
                self._body[_RENAMED[param]] = value
                return True
        log.warning(
            "%s refuses %s=%r: it is asked without it, at the model's default (%s)",
            model,
            param,
            value,
            error,
        )
        return True


def _refused(error: BaseException) -> str | None:
    """The parameter a provider refused by name, if ``error`` is such a refusal."""
    if isinstance(error, InvalidRequestError) and error.code in _REFUSALS:
        return error.param
    return None
