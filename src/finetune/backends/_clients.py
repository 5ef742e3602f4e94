"""A backend's connection client, made on first use and used only where its connections live."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

__all__ = ["OwnedClient", "close_client"]

ClientT = TypeVar("ClientT")


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


async def close_client(client: Any) -> None:
    """An async client closed: its ``aclose()`` (httpx's), or else its coroutine ``close()``
    (an SDK's)."""
    await (getattr(client, "aclose", None) or client.close)()


class OwnedClient(Generic[ClientT]):
    """A client (an SDK's, an httpx one) made by ``make`` when first asked for, closed by
    ``close`` (``close_client`` unless told another way).

    A client given to the backend is its owner's: used as it is, never closed or replaced.
    One made here is made again where its connections cannot be used: in a forked child
    (they are the parent's, left alone) and once the event loop it was first used in has
    ended (a script's earlier ``asyncio.run``, a test's loop): the old one is then marked
    closed, so that nothing tries to close it again on a loop it does not belong to.
    """

    def __init__(
        self,
        make: Callable[[], ClientT],
        given: ClientT | None = None,
        close: Callable[[ClientT], Awaitable[object]] = close_client,
    ) -> None:
        self._make, self._close = make, close
        self._client = given
        self._owned = given is None
        self._pid = os.getpid()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing: set[asyncio.Task[None]] = set()

    def get(self) -> ClientT:
        """The client, made (again) in the calling thread when there is none usable here."""
        if self._needs_making():
            self._install(self._make())
        return self._bound()

    async def aget(self) -> ClientT:
        """The client, as ``get`` gives it, but one that must be made is made in a worker
        thread: making the first imports its SDK (a few tenths of a second), which would hold
        up every other task of the event loop."""
        if self._needs_making():
            made = await asyncio.to_thread(self._make)
            if self._needs_making():
                self._install(made)
            else:  # another task of the loop made one meanwhile: this one was never used
                await self._close(made)
        return self._bound()

    def _needs_making(self) -> bool:
        return self._client is None or (self._owned and self._left_behind())

    def _install(self, made: ClientT) -> None:
        if self._client is not None:
            self._let_go_soon(self._client)
        self._client = made
        self._pid, self._loop = os.getpid(), None

    def _bound(self) -> ClientT:
        client = self._client
        assert client is not None  # made by get or aget just before
        if self._loop is None:  # the loop of its first use in one (a sync call's is none)
            self._loop = _running_loop()
        return client

    def _left_behind(self) -> bool:
        return self._pid != os.getpid() or (self._loop is not None and self._loop.is_closed())

    def _let_go_soon(self, client: ClientT) -> None:
        loop = _running_loop()
        if loop is not None and self._pid == os.getpid():
            closing = loop.create_task(self._let_go(client))
            self._closing.add(closing)  # a task nothing refers to may be collected unfinished
            closing.add_done_callback(self._closing.discard)

    async def _let_go(self, client: ClientT) -> None:
        """Mark a client whose connections are out of reach as closed (they cannot be: a
        forked child's are the parent's, an ended loop's are gone with it)."""
        if self._pid == os.getpid():
            with contextlib.suppress(Exception):  # "Event loop is closed", as it must be
                await self._close(client)

    async def aclose(self) -> None:
        """Close a client made here; a later ``get`` makes a fresh one."""
        client = self._client
        if client is None or not self._owned:
            return
        self._client = None
        if self._left_behind():
            await self._let_go(client)
        else:
            await self._close(client)
