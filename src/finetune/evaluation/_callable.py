"""Any function ``messages -> str`` as a predictor: called on the loop when it is a coroutine
function, else in a worker thread, one plain function's call at a time."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import weakref
from collections.abc import Callable, Iterator
from typing import Any

from finetune._errors import add_note
from finetune._numbers import is_real
from finetune.evaluation._prompts import Messages
from finetune.evaluation._tools import Tools, format_tool_calls, is_tool_call

__all__ = ["CallablePredictor", "takes_tools"]


class CallablePredictor:
    """Any function ``messages -> str`` (sync or async) as a predictor.

    Its answers are cached only when it has a ``name``, which says what it is (``"rag-v2"``):
    a function's code, or the prompt or globals it reads, can change while its own name stays
    the same, so an unnamed one is asked every time rather than answered from another run.
    """

    def __init__(self, function: Callable[..., Any], name: str | None = None) -> None:
        self._function = function
        self.named: bool = name is not None
        self.name: str = name or f"callable:{getattr(function, '__qualname__', repr(function))}"
        self.supports_tools: bool = takes_tools(function)
        self.supports_images = True  # it is given the messages as they are

    def predict(self, messages: Messages, tools: Tools | None = None) -> str:
        """The function's reply to ``messages`` (``tools`` passed where it takes them)."""
        with _explained():
            result = self._call(messages, tools)
        if inspect.isawaitable(result):
            raise TypeError(f"{self.name} is async; use aevaluate() or apredict()")
        return self._text(result)

    async def apredict(self, messages: Messages, tools: Tools | None = None) -> str:
        """``predict``, awaited: a coroutine function's reply on the loop; a plain function's
        in a worker thread, never beside another call of a plain function in the same
        evaluation (none need be thread-safe), so that the event loop and the other
        candidates go on meanwhile."""
        with _explained():
            if _is_async(self._function):
                result = self._call(messages, tools)
            else:
                async with _plain_turn():
                    result = await asyncio.to_thread(self._call, messages, tools)
            if inspect.isawaitable(result):
                result = await result
        return self._text(result)

    def _call(self, messages: Messages, tools: Tools | None) -> Any:
        """The function's reply; one with a ``tools`` parameter is given the tools."""
        if self.supports_tools:
            return self._function(messages, tools=tools)
        return self._function(messages)

    def _text(self, result: Any) -> str:
        """The reply as text: a string, a number written as one, or a list of tool calls as
        their ``format_tool_calls`` text. Anything else (``None`` from a missing ``return``, a
        response object, ``True``) would be scored as its ``str()``, which is no answer, so
        it is refused."""
        if isinstance(result, str):
            return result
        if is_real(result):
            return str(result)
        if isinstance(result, list | tuple) and result and all(map(is_tool_call, result)):
            return format_tool_calls(result)
        raise TypeError(
            f"{self.name} returned {type(result).__name__} {result!r:.60}, not the reply's text: "
            "a candidate function returns a string (or a list of tool calls)"
        )


@contextlib.contextmanager
def _explained() -> Iterator[None]:
    """A function that read its argument as something else (``ex.messages``, ``ex["text"]``)
    fails with an ``AttributeError`` or ``TypeError`` that names only a list: say what it is
    given (Python 3.11+ shows the note under the traceback; the CLI prints it)."""
    try:
        yield
    except (AttributeError, TypeError) as error:
        add_note(error, WHAT_A_FUNCTION_IS_GIVEN)
        raise


WHAT_A_FUNCTION_IS_GIVEN = (
    "a candidate function is given the prompt, not the example: a list of message dicts "
    "({'role': ..., 'content': ...}, the example's turns before its answer), and tools= where "
    "it takes them; it returns the reply's text"
)

_PLAIN_TURNS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
    weakref.WeakKeyDictionary()
)


def _plain_turn() -> asyncio.Lock:
    """The lock that runs the plain candidate functions of the running loop's evaluation one
    call at a time, as they ran when they ran on the loop itself: none need be thread-safe."""
    loop = asyncio.get_running_loop()
    turn = _PLAIN_TURNS.get(loop)
    if turn is None:
        turn = _PLAIN_TURNS[loop] = asyncio.Lock()
    return turn


def _is_async(function: Callable[..., Any]) -> bool:
    """Whether calling ``function`` makes a coroutine (an ``async def``, or an object whose
    ``__call__`` is one)."""
    call = getattr(function, "__call__", None)  # noqa: B004 - the method, not callable()
    return inspect.iscoroutinefunction(function) or inspect.iscoroutinefunction(call)


def takes_tools(function: Callable[..., Any]) -> bool:
    """Whether a function (a candidate, a predictor's ``predict_batch``) takes the tools: a
    parameter named ``tools``."""
    try:
        parameters = inspect.signature(function).parameters
    except (TypeError, ValueError):
        return False
    return "tools" in parameters
