"""A cross-process lock on a file (``flock`` on POSIX, ``msvcrt.locking`` on Windows).

The operating system releases it when the holder dies, so a killed process never leaves a
stale lock behind. On POSIX the holder removes the file as it lets go, so that a folder of
locks (one per fit, one per uploaded file) does not grow for ever; a waiter that took the lock
on a file removed meanwhile tries again on the file now at the path.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import TracebackType
from typing import Any

from finetune._errors import StorageError
from finetune._loop import returned, without_waiting
from finetune._paths import file_in_the_way

__all__ = ["FileLock"]


class FileLock:
    """An exclusive lock held through an open file; ``async with`` or ``acquire``/``release``."""

    def __init__(
        self, path: str | os.PathLike[str], *, poll: float = 0.05, elsewhere: str = ""
    ) -> None:
        """``elsewhere`` says how to put the lock in another folder, for the error raised
        when this one cannot hold it (``"point FINETUNE_CACHE_DIR at a writable folder"``)."""
        self.path: Path = Path(path)
        self._poll = poll
        self._elsewhere = elsewhere
        self._fd: int | None = None

    def __repr__(self) -> str:
        return f"FileLock({str(self.path)!r}, held={self._fd is not None})"

    def try_acquire(self) -> bool:
        """Take the lock if it is free; never waits."""
        if self._fd is not None:
            return True
        while True:
            fd = self._open()
            if not _lock(fd):
                os.close(fd)
                return False
            if _still_at(self.path, fd):
                self._fd = fd
                return True
            os.close(fd)  # its holder removed it as it let go: the lock is the path's file now

    def _open(self) -> int:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            return os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            elsewhere = f", or {self._elsewhere}" if self._elsewhere else ""
            blocking = file_in_the_way(self.path)
            cure = (
                f"{blocking} is a file, not a folder: move it away"
                if blocking
                else "make its folder writable"
            )
            raise StorageError(
                f"cannot create the lock file {self.path} ({exc.strerror}); {cure}{elsewhere}"
            ) from None

    def acquire(self, timeout: float | None = None) -> None:
        """Wait for the lock (``TimeoutError`` after ``timeout`` seconds)."""
        without_waiting(self._acquire(timeout, returned(time.sleep)))

    async def acquire_async(self, timeout: float | None = None) -> None:
        """Wait for the lock without blocking the event loop."""
        await self._acquire(timeout, asyncio.sleep)

    async def _acquire(
        self, timeout: float | None, sleep: Callable[[float], Awaitable[Any]]
    ) -> None:
        """The waiting, written once for both faces (``acquire`` runs it ``without_waiting``)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.try_acquire():
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"{self.path} is held by another process")
            await sleep(self._poll)

    def release(self) -> None:
        """Let the next waiter in."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            _remove(self.path)
            _unlock(fd)
            os.close(fd)

    async def __aenter__(self) -> FileLock:
        await self.acquire_async()
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _lock(fd: int) -> bool:
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _unlock(fd: int) -> None:
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

    def _still_at(path: Path, fd: int) -> bool:
        return True  # the file is never removed: Windows cannot remove an open file

    def _remove(path: Path) -> None:
        pass

else:
    import fcntl

    def _lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)

    def _still_at(path: Path, fd: int) -> bool:
        """Whether the file locked through ``fd`` is still the one at ``path``."""
        try:
            named = os.stat(path)
        except FileNotFoundError:
            return False
        held = os.fstat(fd)
        return (named.st_dev, named.st_ino) == (held.st_dev, held.st_ino)

    def _remove(path: Path) -> None:
        """Remove the lock's file while it is held: removed after, it could be a new holder's."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
