"""The one model interface every backend implements, its capabilities, and the plugin registry."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from finetune._errors import BackendNotFound, FinetuneError
from finetune.types import Checkpoint, FileRef, Hyperparameters, Job, JobEvent, MetricPoint

if TYPE_CHECKING:
    from finetune.dataset import Dataset
    from finetune.validation import TokenCounter

__all__ = [
    "ENTRY_POINT_GROUP",
    "AsyncBackend",
    "Backend",
    "Capabilities",
    "JobRequest",
    "ThreadedAsyncBackend",
    "available_backends",
    "backend_class",
    "load_async_backend",
    "load_backend",
    "register_backend",
]

ENTRY_POINT_GROUP = "finetune.backends"
Method = Literal["sft", "dpo"]


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do; the Tuner checks a request against it before sending anything."""

    methods: frozenset[str] = frozenset({"sft"})
    example_kinds: frozenset[str] = frozenset({"chat"})
    tools: bool = False
    validation_file: bool = True
    pause_resume: bool = False
    hosted: bool = True
    validation_target: str = "openai"
    max_suffix_length: int | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)


class JobRequest(BaseModel):
    """Everything a backend needs to create one fine-tuning job."""

    model_config = ConfigDict(frozen=True)
    base_model: str
    training_file: FileRef
    validation_file: FileRef | None = None
    method: Method = "sft"
    hyperparameters: Hyperparameters = Field(default_factory=Hyperparameters)
    suffix: str | None = None
    idempotency_key: str
    metadata: dict[str, str] = Field(default_factory=dict)
    integrations: list[dict[str, Any]] = Field(default_factory=list, repr=False)
    options: dict[str, Any] = Field(default_factory=dict)


@runtime_checkable
class Backend(Protocol):
    """A synchronous fine-tuning backend. Implementations convert provider payloads at the edge."""

    name: str
    capabilities: Capabilities

    def upload(self, dataset: Dataset, *, purpose: str = "train") -> FileRef:
        """Write ``dataset`` in the provider's format and upload it (reusing an identical file)."""
        ...

    def create_job(self, request: JobRequest) -> Job:
        """Create a job; ``request.idempotency_key`` must be stored where ``find_job`` sees it."""
        ...

    def find_job(self, idempotency_key: str) -> Job | None:
        """The job created with this key, if the provider can tell; else ``None``."""
        ...

    def get_job(self, job_id: str) -> Job:
        """The job as it is now."""
        ...

    def list_jobs(self, *, limit: int = 20) -> list[Job]:
        """The most recent jobs, newest first."""
        ...

    def cancel_job(self, job_id: str) -> Job:
        """Ask the provider to cancel; returns the job as it is after asking."""
        ...

    def pause_job(self, job_id: str) -> Job:
        """Pause a running job (only where ``capabilities.pause_resume``)."""
        ...

    def resume_job(self, job_id: str) -> Job:
        """Resume a paused job (only where ``capabilities.pause_resume``)."""
        ...

    def list_events(self, job_id: str) -> list[JobEvent]:
        """The job's log, oldest first."""
        ...

    def get_metrics(self, job_id: str) -> list[MetricPoint]:
        """Training metrics per step, in step order."""
        ...

    def list_checkpoints(self, job_id: str) -> list[Checkpoint]:
        """Intermediate checkpoints, in step order."""
        ...

    def token_counter(self, model: str) -> TokenCounter:
        """The exact token counter for ``model`` (or an approximate one, marked as such)."""
        ...

    def close(self) -> None:
        """Release connections and processes."""
        ...


@runtime_checkable
class AsyncBackend(Protocol):
    """The asynchronous twin of ``Backend``: the same methods, awaitable."""

    name: str
    capabilities: Capabilities

    async def upload(self, dataset: Dataset, *, purpose: str = "train") -> FileRef: ...
    async def create_job(self, request: JobRequest) -> Job: ...
    async def find_job(self, idempotency_key: str) -> Job | None: ...
    async def get_job(self, job_id: str) -> Job: ...
    async def list_jobs(self, *, limit: int = 20) -> list[Job]: ...
    async def cancel_job(self, job_id: str) -> Job: ...
    async def pause_job(self, job_id: str) -> Job: ...
    async def resume_job(self, job_id: str) -> Job: ...
    async def list_events(self, job_id: str) -> list[JobEvent]: ...
    async def get_metrics(self, job_id: str) -> list[MetricPoint]: ...
    async def list_checkpoints(self, job_id: str) -> list[Checkpoint]: ...
    def token_counter(self, model: str) -> TokenCounter: ...
    async def aclose(self) -> None: ...


class ThreadedAsyncBackend:
    """Runs a sync backend's calls in a worker thread, for backends with no async twin."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend
        self.name = backend.name
        self.capabilities = backend.capabilities

    def token_counter(self, model: str) -> TokenCounter:
        return self._backend.token_counter(model)

    def context_limit(self, model: str) -> int | None:
        """The wrapped backend's own context limit, if it has one (a plain call, not async)."""
        limit_of = getattr(self._backend, "context_limit", None)
        limit: int | None = limit_of(model) if limit_of is not None else None
        return limit

    def __getattr__(self, attribute: str) -> Any:
        target = getattr(self._backend, attribute)
        if not callable(target):
            return target

        @functools.wraps(target)
        async def call(*args: Any, **kwargs: Any) -> Any:
            return await asyncio.to_thread(target, *args, **kwargs)

        return call

    async def aclose(self) -> None:
        await asyncio.to_thread(self._backend.close)


_registered: dict[str, Callable[..., Any]] = {}


def register_backend(name: str, factory: Callable[..., Any]) -> None:
    """Register a backend class in-process (entry points are the way for installed plugins)."""
    _registered[name] = factory


def _entry_points() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def available_backends() -> list[str]:
    """Names of every backend installed (entry points) or registered in-process."""
    return sorted(set(_entry_points()) | set(_registered))


def _factory(name: str) -> Callable[..., Any]:
    if name in _registered:
        return _registered[name]
    found = _entry_points().get(name)
    if found is None:
        raise BackendNotFound(name, available_backends())
    try:
        factory: Callable[..., Any] = found.load()
    except ImportError as exc:
        raise FinetuneError(
            f"backend {name!r} is registered by {found.value!r} but could not be imported "
            f"({exc}); reinstall the package that provides it"
        ) from exc
    return factory


def backend_class(name: str) -> Callable[..., Any]:
    """The class (factory) registered as ``name``, without building it."""
    return _factory(name)


def load_backend(name: str, **options: Any) -> Backend:
    """Build the backend registered as ``name`` with its options (api_key, base_url, ...)."""
    backend: Backend = _factory(name)(**options)
    return backend


def load_async_backend(name: str, **options: Any) -> AsyncBackend:
    """The async backend for ``name``: its own async twin, or the sync one run in threads."""
    factory = _factory(name)
    twin = getattr(factory, "async_variant", None)
    if twin is not None:
        backend: AsyncBackend = twin(**options)
        return backend
    return ThreadedAsyncBackend(factory(**options))
