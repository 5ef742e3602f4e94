"""Files a hosted backend sends: the dataset in the provider's format, and a signed-URL PUT.

Re-exported by ``finetune.backends.http``, where backend authors find them.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from finetune._errors import StorageError
from finetune._paths import no_room, why_not_written
from finetune._processes import process_alive, process_start_time

if TYPE_CHECKING:
    from finetune.dataset import Dataset

CHUNK_BYTES = 1 << 20
DEFAULT_PUT_TIMEOUT = 600.0


def file_name(dataset: Dataset, purpose: str) -> str:
    """The upload name: the dataset fingerprint makes identical content reusable by name."""
    return f"finetune-{dataset.fingerprint()[:24]}-{purpose}.jsonl"


def sha256_of(path: Path) -> str:
    """The file's SHA-256 as hex, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(CHUNK_BYTES), b""):
            digest.update(block)
    return digest.hexdigest()


@contextmanager
def provider_file(dataset: Dataset, fmt: Any) -> Iterator[Path]:
    """The dataset written in a provider's format (a format name, or a function from an
    example to its JSON line) to a temporary file, removed afterwards."""
    with _room_in_temp():
        folder = _new_folder()
    try:
        path = folder / "data.jsonl"
        with _room_in_temp():
            _write(dataset, path, fmt)
        yield path
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@asynccontextmanager
async def written(dataset: Dataset, fmt: Any) -> AsyncIterator[Path]:
    """``provider_file`` for async code: the file is written in a worker thread."""
    with _room_in_temp():
        folder = await asyncio.to_thread(_new_folder)
    try:
        path = folder / "data.jsonl"
        with _room_in_temp():
            await asyncio.to_thread(_write, dataset, path, fmt)
        yield path
    finally:
        await asyncio.to_thread(shutil.rmtree, folder, True)


def _write(dataset: Dataset, path: Path, fmt: Any) -> None:
    from finetune.dataset import write_jsonl

    write_jsonl(dataset, path, fmt)


@contextmanager
def _room_in_temp() -> Iterator[None]:
    """A full, read-only or missing temporary folder as a ``StorageError`` saying what to do
    (an error reading the dataset's own file is left as it is)."""
    temp = tempfile.gettempdir()
    try:
        yield
    except OSError as exc:
        if exc.filename is not None and not os.fspath(exc.filename).startswith(temp):
            raise
        raise StorageError(
            f"cannot write the data to upload under {temp} ({why_not_written(exc, Path(temp))}): "
            f"{'free space there, or ' if no_room(exc) else ''}set TMPDIR to a writable folder "
            "with room for a copy of the training data"
        ) from None


_FOLDER_PREFIX = "finetune-upload-"
ORPHAN_AGE_S = 3600.0


def _new_folder() -> Path:
    """A private temporary folder named after this process, once the orphans are gone."""
    remove_orphan_folders()
    start = process_start_time(os.getpid()) or 0
    return Path(tempfile.mkdtemp(prefix=f"{_FOLDER_PREFIX}{os.getpid()}-{start}-"))


def remove_orphan_folders(older_than: float = ORPHAN_AGE_S) -> list[Path]:
    """Remove the upload folders of processes killed while they uploaded (SIGKILL, the OOM
    killer: no ``finally`` ran), which would otherwise keep a copy of the training data in
    the temporary folder until the next reboot. A folder is an orphan when the process its
    name records has ended (a later process with its pid is told apart by its start time)
    and it is ``older_than`` seconds old: a process of another container that shares the
    folder is not seen, and the age spares its upload for that long. Returns the folders
    removed."""
    if sys.platform == "win32":  # pragma: no cover - no signal 0 there; Windows cleans %TEMP%
        return []
    removed = []
    for folder in Path(tempfile.gettempdir()).glob(f"{_FOLDER_PREFIX}*-*-*"):
        pid, start, _ = folder.name.removeprefix(_FOLDER_PREFIX).split("-", 2)
        if not (pid.isdigit() and start.isdigit()) or _young(folder, older_than):
            continue
        if not process_alive(int(pid), int(start) or None):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def _young(folder: Path, older_than: float) -> bool:
    try:
        return time.time() - folder.stat().st_mtime < older_than
    except OSError:  # removed meanwhile
        return True


async def put_file(
    provider: str,
    url: str,
    path: Path,
    *,
    secret: str | None = None,
    attempts: int = 6,
    retry_after_cap: float | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float | None = None,
) -> None:
    """PUT a file to a signed upload URL, streamed from disk (memory stays flat whatever the
    size) with its Content-Length, and retried on its own: the same bytes to the same URL is
    idempotent, so a lost answer or a 5xx never makes the caller start its upload again.

    A non-2xx answer raises the matching ``BackendError``; ``secret`` and the URL's signature
    (its long query values) are redacted from it. ``timeout`` bounds each network operation
    (600 s when omitted).
    """
    import httpx

    from finetune.backends.http import DEFAULT_RETRY_AFTER_CAP, retrying

    sent = {"Content-Length": str(path.stat().st_size), **(headers or {})}
    cap = DEFAULT_RETRY_AFTER_CAP if retry_after_cap is None else retry_after_cap
    limits = httpx.Timeout(timeout or DEFAULT_PUT_TIMEOUT, connect=min(timeout or 30.0, 30.0))
    async with httpx.AsyncClient(timeout=limits) as client:
        async for attempt in retrying(attempts, retry_after_cap=cap):
            with attempt:
                await _put_once(provider, client, url, path, sent, (secret, *signed_values(url)))


async def _put_once(
    provider: str,
    client: Any,
    url: str,
    path: Path,
    headers: dict[str, str],
    secrets: tuple[str | None, ...],
) -> None:
    from finetune.backends.http import connection_error, error_for_status, status_body

    try:
        answer = await client.put(url, content=_chunks(path), headers=headers)
    except Exception as exc:
        error: Exception = connection_error(provider, exc, *secrets)
    else:
        if 200 <= answer.status_code < 300:
            return
        body = status_body(answer)
        error = error_for_status(provider, answer.status_code, body, answer.headers, *secrets)
    raise error


_SIGNATURE_CHARS = 16  # a URL's query value this long is taken for a signature or a token
_SIGNED_QUERY = re.compile(rf"([?&][^=&\s'\"]+=)[^&\s'\"]{{{_SIGNATURE_CHARS},}}")


def signed_values(url: str) -> list[str]:
    """A signed URL's credentials: its query values long enough to be signatures or tokens."""
    from urllib.parse import parse_qsl, urlsplit

    return [v for _, v in parse_qsl(urlsplit(url).query) if len(v) >= _SIGNATURE_CHARS]


def mask_signed_values(text: str) -> str:
    """``text`` with every URL query value long enough to be a signature or a token (what
    ``signed_values`` finds in one URL) read ``***``, wherever URLs stand in it."""
    return _SIGNED_QUERY.sub(r"\1***", text)


async def _chunks(path: Path) -> AsyncIterator[bytes]:
    handle = await asyncio.to_thread(path.open, "rb")
    try:
        while chunk := await asyncio.to_thread(handle.read, CHUNK_BYTES):
            yield chunk
    finally:
        await asyncio.to_thread(handle.close)
