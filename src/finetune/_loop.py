"""An event loop in a background thread, owned by a sync face (``Tuner``, ``evaluate``).

Each sync call hands its coroutine to this loop and waits for the answer, so it works where a
loop already runs (Jupyter), where ``asyncio.run`` cannot. The thread starts on first use, and
again in a process forked from this one (a ``multiprocessing`` worker, a pre-forked web
server), which inherits no threads: its first call would otherwise wait forever.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import functools
import os
import threading
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable, Sequence
from typing import Any, ParamSpec, TypeVar

__all__ = [
    "LoopThread",
    "cancelled_on_failure",
    "exiting",
    "gather_or_cancel",
    "returned",
    "run_to_the_end",
    "watch_for_exit",
    "without_waiting",
]

T = TypeVar("T")
P = ParamSpec("P")
_CANCEL_GRACE = 5.0
_EXITING = threading.Event()
_LOOP_THREADS: weakref.WeakSet[LoopThread] = weakref.WeakSet()


def _forget_the_parents_loops() -> None:
    """In a forked child: every loop thread is the parent's (the child has none), and its
    lock may have been held by a thread that is gone; each starts afresh on its next call."""
    for loop_thread in list(_LOOP_THREADS):
        loop_thread._lock = threading.Lock()
        loop_thread._loop = loop_thread._thread = None


@contextlib.asynccontextmanager
async def cancelled_on_failure(running: Sequence[asyncio.Future[Any]]) -> AsyncIterator[None]:
    """On an error in the block, cancel the tasks in ``running`` (those made so far), and let
    them end before it is raised: none is left working against a closed client or file."""
    try:
        yield
    except BaseException:
        for future in running:
            future.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        raise


async def gather_or_cancel(jobs: Iterable[Awaitable[T]]) -> list[T]:
    """Await the jobs together, their results in order; the first to fail cancels the
    others."""
    running = [asyncio.ensure_future(job) for job in jobs]
    async with cancelled_on_failure(running):
        return list(await asyncio.gather(*running))


def run_to_the_end(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """``asyncio.run(make())`` for a sync face without a loop thread of its own: in a worker
    thread where this thread already runs a loop (Jupyter), where ``asyncio.run`` fails."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        inside_a_loop = False  # run outside this block: its error is no context of theirs
    else:
        inside_a_loop = True
    if not inside_a_loop:
        return asyncio.run(make())
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(make())).result()


def returned(call: Callable[P, T]) -> Callable[P, Awaitable[T]]:
    """A blocking call made awaitable: awaited, it runs at once and never waits, so that an
    ``async`` implementation given it can be run by ``without_waiting``."""

    async def at_once(*args: P.args, **kwargs: P.kwargs) -> T:
        return call(*args, **kwargs)

    return at_once


def without_waiting(coroutine: Coroutine[Any, Any, T]) -> T:
    """The result of a coroutine that never waits (each of its awaits is of a ``returned``
    call), run to its end in this thread with no event loop: the blocking face of an
    ``async`` implementation, written once, that works where a loop already runs."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        result: T = done.value
        return result
    coroutine.close()
    raise RuntimeError("a coroutine run without waiting waited on an event loop")


@functools.cache
def watch_for_exit() -> None:
    """Note the interpreter's exit in ``exiting()``; call it after making a
    ``weakref.finalize``: registered after weakref's own exit hook, it runs before it."""
    atexit.register(_EXITING.set)


def exiting() -> bool:
    """Whether the interpreter is exiting (the finalizers of live objects run then; worker
    threads can no longer be started)."""
    return _EXITING.is_set()


class LoopThread:
    """One event loop in one daemon thread; ``run(coro)`` from any other thread."""

    def __init__(self, name: str = "finetune-loop") -> None:
        self._name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._calls: set[asyncio.Task[Any]] = set()  # what run() waits on, on this loop
        _LOOP_THREADS.add(self)

    def __repr__(self) -> str:
        state = "running" if self._thread is not None and self._thread.is_alive() else "idle"
        return f"<LoopThread {self._name} {state}>"

    @property
    def started(self) -> bool:
        """Whether the thread has been started (and not closed)."""
        return self._loop is not None

    def _ensure(
        self,
    ) -> tuple[asyncio.AbstractEventLoop, threading.Thread | None, set[asyncio.Task[Any]]]:
        """The loop (started if need be), its thread and its calls, read together: a
        ``close`` from another thread swaps all three at once."""
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                ready = threading.Event()

                def serve() -> None:
                    asyncio.set_event_loop(loop)
                    loop.call_soon(ready.set)
                    loop.run_forever()
                    loop.close()

                self._thread = threading.Thread(target=serve, name=self._name, daemon=True)
                self._thread.start()
                ready.wait()
                self._loop, self._calls = loop, set()
            return self._loop, self._thread, self._calls

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run ``coroutine`` on the loop and return its result (or raise its error).

        Ctrl-C while waiting cancels the coroutine (its ``finally`` blocks run) and re-raises.
        ``close`` from another thread meanwhile cancels it too: a ``RuntimeError`` says so.
        """
        loop, thread, calls = self._ensure()
        if threading.current_thread() is thread:
            coroutine.close()
            raise RuntimeError("a sync call was made from inside the finetune loop thread")
        started, ended = threading.Event(), threading.Event()
        call = _as_call(coroutine, calls, started, ended)
        try:
            future = asyncio.run_coroutine_threadsafe(call, loop)
        except RuntimeError:  # the loop closed since _ensure: as if it were cancelled
            call.close()
            coroutine.close()
            raise self._closed_meanwhile() from None
        try:
            return _result(future, thread)
        except concurrent.futures.CancelledError:
            if self._loop is loop:  # cancelled by the coroutine's own doing, not by close
                raise
            raise self._closed_meanwhile() from None
        except KeyboardInterrupt:
            future.cancel()  # done at once: it does not wait for the coroutine to end
            if started.is_set():  # its finally blocks (a bar's last line) end before we go on
                ended.wait(_CANCEL_GRACE)
            raise

    def _closed_meanwhile(self) -> RuntimeError:
        return RuntimeError(
            f"its Tuner was closed by another thread while this call ran ({self._name}): the "
            "call was cancelled; a job it started goes on (re-attach with tuner.job(id))"
        )

    def close(self, last: Coroutine[Any, Any, Any] | None = None, *, wait: bool = True) -> None:
        """Cancel the calls still running (their callers get a ``RuntimeError``), run ``last``
        (closing connections, say) and raise its error, then stop the loop and its thread; a
        later ``run`` starts a new one. Safe to call from any thread.

        ``wait=False``, the garbage collector's way, returns at once and lets the loop stop
        itself once ``last`` is done. A finalizer runs in whatever thread the collector
        interrupts, which may hold a lock the loop needs to finish ``last`` (the executor
        lock ``asyncio.to_thread`` takes): waiting there could only time out.
        """
        with self._lock:
            loop, thread, calls = self._loop, self._thread, self._calls
            self._loop = self._thread = None
        if loop is None:
            if last is not None:
                last.close()
            return
        # the calls other threads still wait on are cancelled first: their callers wake
        finishing = asyncio.run_coroutine_threadsafe(_cancel_calls_then(calls, last), loop)
        if not wait or threading.current_thread() is thread:
            finishing.add_done_callback(lambda _: loop.call_soon_threadsafe(loop.stop))
            return
        try:
            finishing.result(timeout=2 * _CANCEL_GRACE)  # ``last``'s error is the caller's
        except concurrent.futures.TimeoutError:
            if finishing.done():
                raise
            # ``last`` is too slow to close (a server that does not answer): stop regardless
        finally:
            loop.call_soon_threadsafe(loop.stop)
            if thread is not None:
                thread.join(timeout=10)  # the thread closes its loop once it has stopped


async def _as_call(
    coroutine: Coroutine[Any, Any, T],
    calls: set[asyncio.Task[Any]],
    started: threading.Event,
    ended: threading.Event,
) -> T:
    """``coroutine``, known in ``calls`` as one a thread waits on: ``close`` cancels those (and
    not the tasks a library runs on the loop for itself); ``started`` and ``ended`` tell the
    waiting thread when it began and when its ``finally`` blocks were done."""
    task = asyncio.current_task()
    assert task is not None
    calls.add(task)
    started.set()
    try:
        return await coroutine
    finally:
        calls.discard(task)
        ended.set()


async def _cancel_calls_then(
    calls: set[asyncio.Task[Any]], last: Coroutine[Any, Any, Any] | None
) -> None:
    """Cancel the ``calls`` running on this loop, give them ``_CANCEL_GRACE`` seconds to run
    their ``finally`` blocks, then run ``last``."""
    running = calls - {asyncio.current_task()}
    for task in running:
        task.cancel()
    if running:
        await asyncio.wait(running, timeout=_CANCEL_GRACE)
    if last is not None:
        await last


def _result(future: concurrent.futures.Future[T], thread: threading.Thread | None) -> T:
    """The future's result, once it has one; a ``RuntimeError`` if the loop's thread ends
    first (its coroutine, then, will never run to the end)."""
    while not future.done():
        concurrent.futures.wait([future], timeout=1.0)
        if not future.done() and (thread is None or not thread.is_alive()):
            future.cancel()
            raise RuntimeError("the finetune loop thread stopped before this call ended")
    return future.result()


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_forget_the_parents_loops)
