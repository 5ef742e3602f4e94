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
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["LoopThread", "exiting", "watch_for_exit"]

T = TypeVar("T")
_CANCEL_GRACE = 5.0
_EXITING = threading.Event()
_LOOP_THREADS: weakref.WeakSet[LoopThread] = weakref.WeakSet()


def _forget_the_parents_loops() -> None:
    """In a forked child: every loop thread is the parent's (the child has none), and its
    lock may have been held by a thread that is gone; each starts afresh on its next call."""
    for loop_thread in list(_LOOP_THREADS):
        loop_thread._lock = threading.Lock()
        loop_thread._loop = loop_thread._thread = None


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
        _LOOP_THREADS.add(self)

    def __repr__(self) -> str:
        state = "running" if self._thread is not None and self._thread.is_alive() else "idle"
        return f"<LoopThread {self._name} {state}>"

    @property
    def started(self) -> bool:
        """Whether the thread has been started (and not closed)."""
        return self._loop is not None

    def _ensure(self) -> asyncio.AbstractEventLoop:
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
                self._loop = loop
            return self._loop

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run ``coroutine`` on the loop and return its result (or raise its error).

        Ctrl-C while waiting cancels the coroutine (its ``finally`` blocks run) and re-raises.
        """
        loop = self._ensure()
        if threading.current_thread() is self._thread:
            coroutine.close()
            raise RuntimeError("a sync call was made from inside the finetune loop thread")
        future = asyncio.run_coroutine_threadsafe(coroutine, loop)
        try:
            return future.result()
        except KeyboardInterrupt:
            future.cancel()
            with contextlib.suppress(concurrent.futures.CancelledError, Exception):
                future.result(timeout=_CANCEL_GRACE)
            raise

    def close(self, last: Coroutine[Any, Any, Any] | None = None, *, wait: bool = True) -> None:
        """Run ``last`` (closing connections, say), then stop the loop and its thread; a later
        ``run`` starts a new one. Safe to call from any thread.

        ``wait=False``, the garbage collector's way, returns at once and lets the loop stop
        itself once ``last`` is done. A finalizer runs in whatever thread the collector
        interrupts, which may hold a lock the loop needs to finish ``last`` (the executor
        lock ``asyncio.to_thread`` takes): waiting there could only time out.
        """
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None:
            if last is not None:
                last.close()
            return
        if not wait or threading.current_thread() is thread:
            _stop_after(loop, last)
            return
        if last is not None:
            finishing = asyncio.run_coroutine_threadsafe(last, loop)
            # closing is best effort; the loop stops regardless
            with contextlib.suppress(Exception):
                finishing.result(timeout=_CANCEL_GRACE)
        loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join(timeout=10)  # the thread closes its loop once it has stopped


def _stop_after(loop: asyncio.AbstractEventLoop, last: Coroutine[Any, Any, Any] | None) -> None:
    """Stop ``loop`` once ``last`` has run, without waiting for either."""
    if last is None:
        loop.call_soon_threadsafe(loop.stop)
        return
    finishing = asyncio.run_coroutine_threadsafe(last, loop)
    finishing.add_done_callback(lambda _: loop.call_soon_threadsafe(loop.stop))


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_forget_the_parents_loops)
