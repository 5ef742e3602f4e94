"""The one folder for what finetune caches (prediction cache, fit locks, prepared encodings),
and what a write that failed says of the place it wrote to."""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from finetune._errors import StorageError
from finetune._words import size

__all__ = [
    "CACHE_DIR_ENV",
    "cache_dir",
    "check_writable",
    "folder_bytes",
    "no_room",
    "room_left",
    "unusable_database",
    "why_not_written",
    "writes_to",
]

CACHE_DIR_ENV = "FINETUNE_CACHE_DIR"
_NO_ROOM = {errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", errno.ENOSPC)}


def cache_dir() -> Path:
    """``$FINETUNE_CACHE_DIR``, else the platform's user cache folder for finetune."""
    chosen = os.environ.get(CACHE_DIR_ENV)
    if chosen:
        return Path(chosen).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("finetune"))


def folder_bytes(folder: Path) -> int:
    """The bytes of the files under ``folder``, a link counted as itself, never followed."""
    return sum(item.lstat().st_size for item in folder.rglob("*") if not item.is_dir())


def no_room(exc: OSError) -> bool:
    """Whether a write failed for want of room: a full disk, a quota, a file-size limit."""
    return exc.errno in _NO_ROOM


def room_left(path: Path) -> str:
    """``"; 12 MB free there"``: the free space of the disk that holds ``path`` (or its nearest
    existing parent), for a message about a write that failed; empty where none exists."""
    where = next((p for p in (path, *path.parents) if p.exists()), None)
    return f"; {size(shutil.disk_usage(where).free)} free there" if where is not None else ""


def unusable_database(error: Exception, path: Path) -> str:
    """Why a SQLite file (the job registry, the prediction cache) cannot be used, and what to
    do about it, told by its cause: ``(DatabaseError: file is not a database): it is not a
    SQLite database, or a damaged one: move it away``."""
    said = str(getattr(error, "strerror", None) or error)
    why, text = f"({type(error).__name__}: {said}", said.lower()
    if blocking := file_in_the_way(path):
        return f"{why}): {blocking} is a file, not a folder: move it away"
    if (isinstance(error, OSError) and no_room(error)) or "disk is full" in text:
        return f"{why}{room_left(path)}): free disk space"
    if "not a database" in text or "malformed" in text:
        return f"{why}): it is not a SQLite database, or a damaged one: move it away"
    if isinstance(error, PermissionError) or "readonly" in text or "unable to open" in text:
        return f"{why}): it cannot be written there: fix the permissions of the file and its folder"
    if "locked" in text:
        return f"{why}): another process kept it locked for 30 s: try again when that one is done"
    return f"{why}{room_left(path)}): free disk space or fix its permissions"


def file_in_the_way(path: Path) -> Path | None:
    """The file that stands where a folder of ``path`` must be (``FileExistsError`` or "Not a
    directory" when it is made), if any."""
    return next((p for p in reversed(path.parents) if p.exists() and not p.is_dir()), None)


def check_writable(target: Path) -> None:
    """Raise ``StorageError`` now where ``target`` cannot be written: a file stands where one
    of its folders must be, or the folder it goes in is not this process's to write. Called
    before work whose result would be lost at the write (an evaluation, a model's export); a
    full disk still shows only at the write."""
    if blocking := file_in_the_way(target):
        why = f"{blocking} is a file, not a folder"
    else:
        folder = next((p for p in (target, *target.parents) if p.is_dir()), None)
        if folder is None or os.access(folder, os.W_OK | os.X_OK):
            return
        why = f"the folder {folder} is not writable by this user"
    raise StorageError(f"cannot write {target}: {why}; nothing was done: choose another path")


def folder_given(path: Path, what: str, file_name: str, how: str) -> str | None:
    """Why ``path``, given where a file belongs, cannot be one: it names a folder (``.``,
    ``runs`` that exists). SQLite says only "unable to open database file"."""
    if path.name not in ("", ".", "..") and not path.is_dir():
        return None
    meant = path / file_name
    return f"{what} {path} is a folder: give the path of a file in it, as {meant} ({how})"


def why_not_written(exc: OSError, where: Path) -> str:
    """A failed write's reason for a message: ``"No space left on device; 12 MB free there"``
    (the room left only when it ran out of room)."""
    return f"{exc.strerror or exc}{room_left(where) if no_room(exc) else ''}"


@contextmanager
def writes_to(target: Path) -> Iterator[None]:
    """A failed write of ``target`` (a full disk, a quota, a read-only folder) as a
    ``StorageError`` naming it, the reason and, when it ran out of room, the room left. A
    folder given for the file stays the ``IsADirectoryError`` that ``atomic_write`` says it
    is, and an error about another file (the one being read) is left as it is."""
    try:
        yield
    except IsADirectoryError:
        raise
    except OSError as exc:
        named = exc.filename is not None and os.fspath(exc.filename) != os.fspath(target)
        if named and Path(os.fspath(exc.filename)).parent != target.parent:
            raise
        raise StorageError(
            f"cannot write {target} ({why_not_written(exc, target)}); nothing was written "
            f"there: {'free disk space, or ' if no_room(exc) else ''}choose another path"
        ) from None
