"""Files and folders written whole or not at all: a temp beside the target, renamed into
place on success."""

from __future__ import annotations

import errno
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["atomic_folder", "atomic_write"]


def _mode_for(target: Path) -> int:
    """The permissions ``open()`` would leave: the replaced file's own, else 0666 less the
    process's umask (a file written for others to read is readable by them)."""
    try:
        return stat.S_IMODE(target.stat().st_mode)
    except FileNotFoundError:
        return 0o666 & ~_umask()


def _umask() -> int:
    try:  # Linux says it without changing it; elsewhere it is set and put back at once
        status = Path("/proc/self/status").read_text(encoding="ascii", errors="replace")
        return next(int(line.split()[1], 8) for line in status.splitlines() if "Umask" in line)
    except (OSError, StopIteration, ValueError, IndexError):
        mask = os.umask(0o022)
        os.umask(mask)
        return mask


class atomic_write:  # noqa: N801 - used as a context manager, reads like open()
    """Write a file through a temp file in the same folder, renamed into place on success,
    with the permissions ``open()`` would leave (a new file made ``like`` another: no more
    than that one's)."""

    def __init__(self, target: Path, *, like: str | None = None) -> None:
        self._target = target
        self._like = like  # a new file is no more readable than this one
        self._temp: str | None = None

    def __enter__(self) -> Any:
        if self._target.is_dir():  # else found only at the rename, after all the work
            raise IsADirectoryError(errno.EISDIR, "is a folder: name a file", str(self._target))
        self._target.parent.mkdir(parents=True, exist_ok=True)
        fd, self._temp = tempfile.mkstemp(
            prefix=f".{self._target.name}.", suffix=".tmp", dir=self._target.parent
        )
        self._handle = os.fdopen(fd, "wb")
        os.chmod(self._temp, self._mode())  # mkstemp's 0600 would stay on it
        return self._handle

    def _mode(self) -> int:
        mode = _mode_for(self._target)
        if self._like is None or self._target.exists():
            return mode
        try:  # a copy of a private file stays private (0600 data, 0644 copy: no)
            return mode & stat.S_IMODE(os.stat(self._like).st_mode)
        except OSError:
            return mode

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        assert self._temp is not None
        try:
            if exc_type is None:
                self._handle.flush()
                os.fsync(self._handle.fileno())
            self._handle.close()
            if exc_type is None:
                os.replace(self._temp, self._target)
        finally:
            if os.path.exists(self._temp):
                os.unlink(self._temp)


@contextmanager
def atomic_folder(target: Path) -> Iterator[Path]:
    """A folder written whole or not at all: fill the yielded staging path (``.NAME.tmp``
    beside ``target``, not yet created) and it replaces ``target`` on success; on an error it
    is removed and ``target`` is left as it was. The old ``target`` is set aside
    (``.NAME.old``) until the new one is in place, and put back if that fails."""
    staging = target.with_name(f".{target.name}.tmp")
    retired = target.with_name(f".{target.name}.old")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        yield staging
        shutil.rmtree(retired, ignore_errors=True)
        if target.exists():
            target.rename(retired)
        try:
            staging.rename(target)
        except OSError:
            if retired.exists():
                retired.rename(target)
            raise
        shutil.rmtree(retired, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
