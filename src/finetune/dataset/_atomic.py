"""Files and folders written whole or not at all: a temp beside the target, renamed into
place on success."""

from __future__ import annotations

import contextlib
import errno
import glob
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["atomic_folder", "atomic_write", "readable_weights", "temp_beside"]


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


def readable_weights(folder: Path) -> None:
    """Give the ``.safetensors`` files under ``folder`` the permissions ``open()`` would:
    safetensors 0.8 writes each through a temporary file of mode 0600 (its issue #782), so
    a model saved here was unreadable to any other user, a vLLM or Ollama server's."""
    mode = 0o666 & ~_umask()
    for weights in folder.rglob("*.safetensors"):
        os.chmod(weights, mode)


def temp_beside(target: Path, *, mode: int | None = None) -> Path:
    """A new empty file of this writer's own beside ``target`` (``.NAME.<random>.tmp``),
    with ``mode``, by default the permissions ``open()`` would give ``target``: to be
    renamed onto ``target`` once whole."""
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(handle)
    os.chmod(name, _mode_for(target) if mode is None else mode)  # not mkstemp's 0600
    return Path(name)


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
        self._temp = str(temp_beside(self._target, mode=self._mode()))
        try:
            self._handle = open(self._temp, "wb")
        except BaseException:
            os.unlink(self._temp)
            raise
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
    """A folder written whole or not at all: fill the yielded staging path (not yet created,
    in a folder of this writer's own beside ``target``: ``.NAME.<random>.tmp``) and it
    replaces ``target`` on success; on an error it is removed and ``target`` is left as it
    was. The old ``target`` is set aside in that folder until the new one is in place, and
    put back if that fails. Two writers of one target never share a staging folder (one
    emptied the other's half-written one); a staging folder a killed writer left is removed
    by the next writer a day later."""
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_abandoned(target)
    own = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    staging, retired = own / target.name, own / "replaced"
    try:
        yield staging
        if staging.is_dir():
            readable_weights(staging)
        if target.exists():
            target.rename(retired)
        try:
            staging.rename(target)
        except OSError:
            if retired.exists() and not target.exists():
                retired.rename(target)
            raise
    finally:
        shutil.rmtree(own, ignore_errors=True)


_ABANDONED_AFTER = 24 * 3600.0


def _remove_abandoned(target: Path) -> None:
    """The staging folders of ``target`` a killed writer left, a day old or more."""
    now = time.time()
    for folder in target.parent.glob(f".{glob.escape(target.name)}.*.tmp"):
        with contextlib.suppress(OSError):
            if folder.is_dir() and now - folder.stat().st_mtime > _ABANDONED_AFTER:
                shutil.rmtree(folder, ignore_errors=True)
