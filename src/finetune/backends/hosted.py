"""``HostedBackend``: what every backend on a provider's HTTP API shares, written once.

A hosted backend subclasses it, names its key and URL variables, builds its SDK client in
``_new_client`` and maps that SDK's exceptions in ``_map_error``; it then writes only what its
provider does differently. The built-in OpenAI, Mistral, Together and Fireworks backends do.
"""

from __future__ import annotations

import asyncio
import math
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from typing import TYPE_CHECKING, Any, ClassVar, TypedDict, TypeVar

from finetune._errors import AuthenticationError, ServerError, StorageError
from finetune._namespace import PublicNames, public_names
from finetune._numbers import is_real, is_whole
from finetune.backends._clients import OwnedClient, close_client
from finetune.backends._masked_logs import HTTP_LOGGERS, mask_secrets_in_logs
from finetune.backends.base import BaseBackend, JobRequest
from finetune.backends.http import (
    DEFAULT_RETRY_AFTER_CAP,
    account_identity,
    call_with_retries,
    file_name,
    key_and_url,
    put_file,
    sdk_request,
    written,
)
from finetune.registry import key_lock
from finetune.types import FileRef

if TYPE_CHECKING:
    from pathlib import Path

    from finetune.dataset import Dataset
    from finetune.evaluation import Predictor
    from finetune.types import Job

__all__ = ["Connection", "HostedBackend"]
__dir__: PublicNames = public_names(__name__)

T = TypeVar("T")


class Connection(TypedDict, total=False):
    """The settings every hosted backend takes, as keyword arguments.

    ``api_key`` (else the backend's environment variable), ``base_url`` (else its variable,
    else the provider's), ``client`` (an SDK client to use instead of building one; closing
    the backend leaves it open), ``attempts`` (tries per call for transient failures),
    ``timeout`` (seconds per request), ``retry_after_cap`` (the longest Retry-After waited
    for; a longer one raises at once) and ``first_wait`` (the first backoff, doubling).
    """

    api_key: str | None
    base_url: str | None
    client: Any
    attempts: int
    timeout: float | None
    retry_after_cap: float
    first_wait: float


class HostedBackend(BaseBackend):
    """Shared plumbing of a hosted backend: the key and endpoint (from arguments or the
    environment), one lazily built SDK client, every retry under one policy, requests through
    a Stainless-generated SDK (``_request``), uploads of a dataset in the provider's format,
    the serving note on a tuned model, and closing the client it built.

    Subclasses set ``title`` (the provider as shown in messages), ``key_variable``,
    ``url_variable`` and ``default_url``, and override ``_new_client`` and ``_map_error``.
    """

    logged_through: ClassVar[tuple[str, ...]] = ()
    """The SDK's own loggers whose lines may carry a secret (its base client logs request
    bodies, a W&B key in them, at DEBUG), masked once a backend is made, wherever the
    application sends them, as httpx's always are (they name each URL, signed ones too)."""

    title: ClassVar[str] = "the provider"
    key_variable: ClassVar[str] = ""
    url_variable: ClassVar[str] = ""
    default_url: ClassVar[str] = ""
    url_option: ClassVar[str] = "base_url"
    """The name the backend's ``predictor`` takes its API root under (Mistral's:
    ``server_url``), for ``connection_options``."""
    serving_note: ClassVar[str | None] = None
    chat_api: ClassVar[str | None] = None
    """Where the provider's OpenAI-compatible chat API sits below its API root (``/v1``), when
    it serves the models it trains: ``ft.evaluate`` asks them there, with this key."""

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        client: Any = None,
        attempts: int = 6,
        timeout: float | None = None,
        retry_after_cap: float = DEFAULT_RETRY_AFTER_CAP,
        first_wait: float = 0.5,
    ) -> None:
        if not is_whole(attempts) or attempts < 1:  # True would be 1 try, "3" a TypeError
            raise ValueError(f"attempts must be 1 or more (tries per call), not {attempts!r}")
        if timeout is not None and not _positive_seconds(timeout):
            raise ValueError(f"timeout must be more than 0 seconds, not {timeout!r}")
        check_wait(first_wait, name="first_wait")
        if not _seconds(retry_after_cap):  # inf: wait for whatever the provider asks
            raise ValueError(f"retry_after_cap must be 0 seconds or more, not {retry_after_cap!r}")
        self._key, self._base_url = key_and_url(
            api_key,
            base_url,
            key_variable=self.key_variable,
            url_variable=self.url_variable,
            default_url=self.default_url,
        )
        self._client = OwnedClient(self._client_with_key, client, self._close_client)
        mask_secrets_in_logs(*HTTP_LOGGERS, *self.logged_through)
        self.attempts: int = int(attempts)
        self._timeout = timeout
        self._retry_after_cap = retry_after_cap
        self._first_wait = first_wait

    def _scope(self) -> dict[str, str | None]:
        """Who the calls are made for besides the key (an organisation, an account): part of
        ``identity`` and of the ``repr``."""
        return {}

    def __repr__(self) -> str:
        shown = {"base_url": self._base_url, **self._scope()}
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in shown.items())})"

    @property
    def identity(self) -> str:
        """Base URL, ``_scope()`` and a digest of the key (never the key)."""
        return account_identity(self._base_url, *self._scope().values(), key=self._key)

    @property
    def key_hint(self) -> str:
        """How to give this backend its key, for error messages."""
        return f"Set {self.key_variable} or pass api_key=... to the Tuner"

    def _require_key(self) -> str:
        if not self._key:
            message = f"no {self.title} API key. {self.key_hint}"
            raise AuthenticationError(message, backend=self.name)
        return self._key

    def _sdk_client(self) -> Any:
        """The SDK client, made in the calling thread the first time (from a coroutine,
        ``await self._ready_client()`` keeps the event loop free)."""
        return self._client.get()

    async def _ready_client(self) -> Any:
        """The SDK client, made in a worker thread the first time: importing an SDK takes a
        few tenths of a second that the event loop's other tasks would wait."""
        return await self._client.aget()

    def _sdk_options(self, key: str, **more: Any) -> dict[str, Any]:
        """Options for a Stainless-generated SDK client (openai, together, fireworks): the key,
        the URL, no retries of its own (ours are the only ones), the timeout when set."""
        options = {"api_key": key, "base_url": self._base_url, "max_retries": 0, **more}
        return options if self._timeout is None else {**options, "timeout": self._timeout}

    def _new_client(self, key: str) -> Any:
        """The provider's SDK client (its own retries off: ours are the only ones)."""
        raise NotImplementedError(f"{type(self).__name__} must implement _new_client()")

    def _client_with_key(self) -> Any:
        return self._new_client(self._require_key())

    async def _close_client(self, client: Any) -> None:
        """Close a client ``_new_client`` made (its ``aclose``, or a coroutine ``close``)."""
        await close_client(client)

    def _map_error(self, error: BaseException, *, job_call: bool = False) -> Exception:
        """An exception of the SDK (or below it) as the matching error of ours."""
        raise NotImplementedError(f"{type(self).__name__} must implement _map_error()")

    async def _retried(
        self,
        call: Callable[[], Awaitable[T]],
        *,
        done: Callable[[], Awaitable[T | None]] | None = None,
    ) -> T:
        """``call()`` under the retry policy; see ``call_with_retries`` for ``done``."""
        return await call_with_retries(
            call,
            self.attempts,
            first=self._first_wait,
            retry_after_cap=self._retry_after_cap,
            done=done,
        )

    async def _request(self, method: str, path: str, *, job_call: bool = False, **kw: Any) -> Any:
        """One request through the SDK's generic ``get``/``post``/``delete``: its JSON answer,
        or our error (``job_call``: a 404 is ``JobNotFound``)."""
        return await sdk_request(
            await self._ready_client(),
            method,
            path,
            provider=self.name,
            on_error=lambda exc: self._map_error(exc, job_call=job_call),
            **kw,
        )

    async def _get(self, path: str, **kw: Any) -> Any:
        """A retried GET through ``_request``."""
        return await self._retried(lambda: self._request("get", path, **kw))

    async def _poll(
        self, read: Callable[[], Awaitable[T | None]], *, timeout: float, every: float, what: str
    ) -> T:
        """``read()`` every ``every`` seconds until it finds something (it raises to give up);
        a ``ServerError`` saying ``what`` is still pending after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while (found := await read()) is None:
            if time.monotonic() > deadline:
                raise ServerError(f"{what} after {timeout:g} s", backend=self.name)
            await asyncio.sleep(every)
        return found

    async def _put(self, url: str, path: Path, headers: dict[str, str] | None = None) -> None:
        """PUT a file to a signed upload URL (``put_file``: streamed, retried on its own, the
        key and the URL's signature kept out of errors)."""
        await put_file(
            self.name,
            url,
            path,
            secret=self._key,
            attempts=self.attempts,
            retry_after_cap=self._retry_after_cap,
            headers=headers,
            timeout=self._timeout,
        )

    async def upload(self, dataset: Dataset, *, purpose: str = "train") -> FileRef:
        """Write the dataset in the provider's format to a temporary file named by its content
        and purpose, and send it with ``upload_file`` (which reuses a file already there).
        Fits running at once (a sweep, in threads or processes) send the same data once: the
        others wait for that upload, then reuse its file."""
        name = await asyncio.to_thread(file_name, dataset, purpose)
        async with self._uploading(name), written(dataset, self.format_example) as path:
            return await self.upload_file(path, filename=name)

    @asynccontextmanager
    async def _uploading(self, name: str) -> AsyncIterator[None]:
        """The upload of file ``name`` for this account, one at a time: across threads, event
        loops and processes (a lock file in the cache folder; where that folder cannot hold
        one, each fit uploads on its own)."""
        lock = key_lock(None, self.name, self.identity, f"upload {name}")
        with suppress(StorageError):
            await lock.acquire_async()
        try:
            yield
        finally:
            lock.release()

    async def upload_file(
        self, path: str | os.PathLike[str], *, filename: str | None = None
    ) -> FileRef:
        """Upload a JSONL file already in the provider's format."""
        raise NotImplementedError(f"{type(self).__name__} must implement upload_file()")

    async def _with_data(
        self, job: JobRequest, dataset: Dataset, validation: Dataset | None = None
    ) -> JobRequest:
        """``job`` (a ``planned_job``) with its data uploaded (a later fit reuses the files).
        What ``preflight`` refuses (an unknown model, a setting out of range) is refused
        before any upload, as for a fit."""
        await self.preflight(job)
        files = {"training_file": await self.upload(dataset, purpose="train")}
        if validation is not None:
            files["validation_file"] = await self.upload(validation, purpose="validation")
        return job.model_copy(update=files)

    @classmethod
    def predictor(cls, model: str, **options: Any) -> Predictor:
        """With a ``chat_api`` (the provider serves what it trains: Together, Fireworks),
        ``model`` asked through that OpenAI-compatible API with this backend's key and API
        root (``api_key`` / ``base_url`` in ``options`` replace them: the same root the
        backend takes, or its chat API's), never another provider's; no key is an
        ``AuthenticationError`` before anything is asked."""
        if not cls.chat_api:
            return super().predictor(model, **options)
        from finetune.evaluation import OpenAIPredictor

        given = dict(options)
        key, url = cls._key_to_ask_with(given.pop("api_key", None), given.pop("base_url", None))
        chat = url if url.endswith(cls.chat_api) else url + cls.chat_api
        return OpenAIPredictor(model, api_key=key, base_url=chat, provider=cls.name, **given)

    @classmethod
    def _key_to_ask_with(
        cls, api_key: str | None, url: str | None, *, own_server: bool = False
    ) -> tuple[str | None, str]:
        """The key (given, else from ``key_variable``) and API root a ``predictor`` asks this
        provider's models with; no key is an ``AuthenticationError`` before anything is asked
        (with ``own_server``, only at the provider's own root: a server of one's own may
        take none)."""
        from finetune.evaluation._predictors import KEY_OPTION

        key, root = key_and_url(
            api_key,
            url,
            key_variable=cls.key_variable,
            url_variable=cls.url_variable,
            default_url=cls.default_url,
        )
        official = root.rstrip("/") == cls.default_url.rstrip("/")
        if not key and (official or not own_server):
            raise AuthenticationError(
                f"asking {cls.title}'s models needs a key: set {cls.key_variable}, or pass "
                + KEY_OPTION,
                backend=cls.name,
            )
        return key, root

    def connection_options(self) -> dict[str, Any]:
        """The key (where this backend has one) and API root its models are asked with,
        ``predictor``'s ``api_key`` and ``url_option``."""
        found: dict[str, Any] = {self.url_option: self._base_url}
        return {**found, "api_key": self._key} if self._key else found

    def _with_note(self, job: Job) -> Job:
        """A tuned job with ``serving_note`` (how the provider serves its model) in ``raw``."""
        if job.fine_tuned_model is None or self.serving_note is None:
            return job
        return job.model_copy(update={"raw": {**(job.raw or {}), "serving": self.serving_note}})

    async def aclose(self) -> None:
        """Close the client this backend built (an SDK's ``close``, or an httpx ``aclose``); a
        later call builds a fresh one. A client passed as ``client`` stays open for its owner."""
        await self._client.aclose()


def _positive_seconds(value: Any) -> bool:
    return _seconds(value) and value > 0


def check_wait(value: Any, *, name: str) -> None:
    """A first backoff: a finite number of seconds, 0 or more, or an error naming ``name``."""
    if not (_seconds(value) and math.isfinite(value)):
        raise ValueError(f"{name} must be 0 seconds or more, not {value!r}")


def _seconds(value: Any) -> bool:
    """A number of seconds, 0 or more (not a flag, a string or NaN)."""
    return is_real(value) and value >= 0
