"""The one model interface every backend implements, and what a backend can do.

A backend is asynchronous. Three calls are required (``upload``, ``create_job``, ``get_job``);
``BaseBackend`` gives every other call a documented default, and the Tuner asks
``supports()`` before it makes an optional call, so an unsupported one fails before any
network traffic with ``UnsupportedFeature`` naming the backend and the operation.

Backends that are naturally synchronous (the local trainer, the fake) implement the same
methods without ``async`` and run in worker threads behind ``BackendAdapter``.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol, runtime_checkable

from pydantic import ConfigDict, Field

from finetune._errors import UnsupportedFeature
from finetune._loop import exiting
from finetune._namespace import PublicNames, public_names
from finetune._values import CredentialsMasked
from finetune.types import (
    EXAMPLE_KINDS,
    Checkpoint,
    FileRef,
    Hyperparameters,
    Job,
    JobEvent,
    MetricPoint,
)

if TYPE_CHECKING:
    from finetune.dataset import Dataset
    from finetune.evaluation import Predictor
    from finetune.types import CostEstimate, Example
    from finetune.validation import Target, TokenCounter

__all__ = [
    "EVERY_KIND",
    "METADATA_KEY",
    "OPTIONAL_OPERATIONS",
    "PLACEHOLDER_FILE",
    "SFT_AND_DPO",
    "Backend",
    "BackendAdapter",
    "BaseBackend",
    "Capabilities",
    "JobRequest",
    "SyncBackend",
    "as_async",
    "no_predictor",
    "planned_job",
]
__dir__: PublicNames = public_names(__name__)

METADATA_KEY = "finetune_key"
Method = Literal["sft", "dpo"]
OPTIONAL_OPERATIONS = {
    "find_job": "find a job by what it trains (re-attach after a crash)",
    "list_jobs": "list jobs",
    "cancel_job": "cancel a job",
    "pause_job": "pause a job",
    "resume_job": "resume a job",
    "list_events": "list a job's events",
    "get_metrics": "read training metrics",
    "list_checkpoints": "list checkpoints",
    "delete_job": "delete a job's files",
}
"""A backend's optional calls, each with what it does (as ``UnsupportedFeature`` names it)."""


SFT_AND_DPO = frozenset({"sft", "dpo"})
"""``Capabilities.methods`` of a backend that trains both supervised and DPO."""
PLACEHOLDER_FILE = "file-not-uploaded-yet"
"""The file id of a job request built before its data is uploaded (a dry run, a quote)."""
EVERY_KIND = frozenset(EXAMPLE_KINDS)
"""``Capabilities.example_kinds`` of a backend that trains every kind of example."""


@dataclass(frozen=True)
class Capabilities:
    """What a backend can train; the Tuner checks a request against it before sending anything.

    ``output_format`` names the JSONL shape ``upload`` writes (``openai``, ``mistral``, ``hf``
    or ``native``); ``validation_target`` names the rule set ``validate`` applies, unless the
    backend's ``validation_rules()`` returns its own.
    """

    methods: frozenset[str] = frozenset({"sft"})
    example_kinds: frozenset[str] = frozenset({"chat"})
    tools: bool = False
    validation_file: bool = True
    pause_resume: bool = False
    hosted: bool = True
    validation_target: str = "openai"
    output_format: str = "openai"
    max_suffix_length: int | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)


class JobRequest(CredentialsMasked):
    """Everything a backend needs to create one fine-tuning job."""

    model_config: ClassVar[ConfigDict] = ConfigDict(frozen=True, defer_build=True)
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
    """The required core of a backend: upload data, create a job, read a job. Async."""

    name: str
    capabilities: Capabilities

    async def upload(self, dataset: Dataset, *, purpose: str = "train") -> FileRef:
        """Write ``dataset`` in the provider's format and upload it, reusing an identical file
        (name the file by ``dataset.fingerprint()``), so a re-run uploads nothing."""
        ...

    async def create_job(self, request: JobRequest) -> Job:
        """Send ONE create request (no retries: the Tuner decides when a retry is safe)."""
        ...

    async def get_job(self, job_id: str) -> Job:
        """The job as it is now; ``JobNotFound`` when the provider does not know the id."""
        ...


class BaseBackend:
    """Defaults for every optional part of the backend interface; subclass it.

    Override what the provider offers. An operation counts as supported when the subclass
    overrides it (``supports``); ``find_job`` is what makes a retried create safe.
    """

    name: ClassVar[str] = "backend"
    capabilities: ClassVar[Capabilities] = Capabilities()
    attempts: int = 6
    """Tries per call for transient failures; the Tuner tries a create as many times, looking
    for the job (``find_job``) between tries."""
    environment: ClassVar[Mapping[str, str]] = {}
    """The variable each setting of the backend's own is read from when it is not given
    (``{"account_id": "FIREWORKS_ACCOUNT_ID"}``): the ``finetune`` command, which builds the
    backend with none, names it where such a setting is given as a job's option."""

    @property
    def identity(self) -> str:
        """Which endpoint and account this instance talks to (no secret in it): the job
        registry keeps its hints per identity, so another account never reuses them."""
        return self.name

    def supports(self, operation: str) -> bool:
        """Whether ``operation`` (one of ``OPTIONAL_OPERATIONS``) is implemented."""
        mine = getattr(type(self), operation, None)
        return mine is not None and mine is not getattr(BaseBackend, operation, None)

    async def upload(self, dataset: Dataset, *, purpose: str = "train") -> FileRef:
        """Required: see ``Backend.upload``."""
        raise NotImplementedError(f"{type(self).__name__} must implement upload()")

    async def create_job(self, request: JobRequest) -> Job:
        """Required: see ``Backend.create_job``."""
        raise NotImplementedError(f"{type(self).__name__} must implement create_job()")

    async def get_job(self, job_id: str) -> Job:
        """Required: see ``Backend.get_job``."""
        raise NotImplementedError(f"{type(self).__name__} must implement get_job()")

    async def find_job(self, request: JobRequest) -> Job | None:
        """The job this request already created (by ``request.idempotency_key`` in the
        provider's metadata, or by what it trains), else ``None``."""
        return None

    def owns(self, job: Job, request_key: str) -> bool:
        """Whether ``job`` was created under ``request_key`` (checked before a remembered job
        id is trusted): by the key in its metadata when the provider keeps metadata."""
        recorded = job.metadata.get(METADATA_KEY)
        return recorded is None or recorded == request_key

    async def list_jobs(self, *, limit: int = 20) -> list[Job]:
        """The most recent jobs, newest first."""
        raise self.unsupported("list_jobs")

    async def cancel_job(self, job_id: str) -> Job:
        """Ask the provider to cancel; the job as it is after asking."""
        raise self.unsupported("cancel_job")

    async def pause_job(self, job_id: str) -> Job:
        """Pause a running job."""
        raise self.unsupported("pause_job")

    async def resume_job(self, job_id: str) -> Job:
        """Resume a paused job."""
        raise self.unsupported("resume_job")

    async def list_events(self, job_id: str) -> list[JobEvent]:
        """The job's log, oldest first."""
        raise self.unsupported("list_events")

    async def get_metrics(self, job_id: str) -> list[MetricPoint]:
        """Training metrics per step, in step order."""
        raise self.unsupported("get_metrics")

    async def list_checkpoints(self, job_id: str) -> list[Checkpoint]:
        """Intermediate checkpoints, in step order."""
        raise self.unsupported("list_checkpoints")

    async def delete_job(self, job_id: str, *, checkpoints_only: bool = False) -> int:
        """Remove an ended job's files (or its checkpoints alone); the bytes freed."""
        raise self.unsupported("delete_job")

    def token_counter(self, model: str) -> TokenCounter:
        """The exact token counter for ``model`` (or an approximate one, marked as such). A
        backend whose fit ``options`` change the counts (the local backend's
        ``chat_template``) adds a keyword ``options: Mapping[str, Any] | None = None``: it is
        then given them."""
        from finetune.validation import counter_for

        return counter_for(self.capabilities.validation_target, model)

    def context_limit(self, model: str) -> int | None:
        """Tokens per example the provider keeps, when it is not in the model catalog. A
        backend whose fit ``options`` set it (the local backend's ``max_length``) adds a
        keyword ``options: Mapping[str, Any] | None = None``: it is then given them."""
        return None

    def estimate_notes(self, request: JobRequest, estimate: CostEstimate) -> list[str]:
        """Lines of the backend's own that ``estimate`` carries, for the job it is about
        (``request``: its files are placeholders): the local backend says how long training
        takes at the pace of its earlier jobs. No network call. By default: none."""
        return []

    def job_options(self, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The options a job of this fit trains with: the fit's ``options`` over those this
        backend was built with, where those change what is trained (the local backend's
        ``max_length``, ``chat_template``). The idempotency key is derived from them, so a
        re-run with other settings starts a job of its own. By default: the fit's, as given.
        """
        return dict(options or {})

    def predictor_options(self) -> dict[str, Any]:
        """The options ``ft.evaluate`` asks this backend's untuned base model with
        (``tuner.base_model`` carries them), from the settings this backend was built with
        that change how the model is asked (the local backend's ``chat_template``). By
        default: none."""
        return {}

    def connection_options(self) -> dict[str, Any]:
        """The ``predictor`` options that reach this backend's models as the backend reaches
        its provider (its ``api_key`` and API root, a fake's namespace): ``tuner.base_model``
        and ``job.model`` carry them, so a Tuner built with a key or a URL of its own has its
        models asked there, not where the environment points. An ``api_key`` among them is
        kept out of a ``ModelRef``'s repr, dump and pickle. By default: none."""
        return {}

    def validation_rules(
        self, model: str | None = None, options: Mapping[str, Any] | None = None
    ) -> Target:
        """The rule set ``validate`` applies (a plugin may return its own ``Target``).

        ``model`` and the fit's ``options`` let a backend check what depends on them (the local
        backend renders every example with the model's chat template); both may be ``None``.
        """
        from finetune.validation import target_rules

        rules = target_rules(self.capabilities.validation_target)
        if rules.lists_models and rules.name != self.name:  # another's models: not in the table
            rules = replace(rules, lists_models=False)
        return rules

    def format_example(self, example: Example) -> dict[str, Any]:
        """One example as a line of the JSONL file ``upload`` sends."""
        from finetune.dataset import to_format

        return to_format(example, self.capabilities.output_format)  # type: ignore[arg-type]

    async def refine_estimate(
        self, dataset: Dataset, estimate: CostEstimate, hyperparameters: Hyperparameters
    ) -> CostEstimate:
        """Our estimate, with the provider's own figures beside it where it offers a quote.
        A provider whose quote covers its evaluations adds a keyword ``validation: Dataset |
        None = None``: it is then given the validation set the fit would send (checked as
        the training data is). One whose options change the price (Together's
        ``full_finetune``) adds ``options: Mapping[str, Any] | None = None``: it is then given
        the fit's ``options``, when there are any."""
        return estimate

    def check_request(self, request: JobRequest) -> None:
        """Refuse, with no network call, a request the provider cannot take (a setting it has
        no field for, an option it does not know): ``UnsupportedFeature`` or
        ``InvalidRequestError``. ``estimate`` checks the job it prices with it, so that no
        figures are given for a job ``fit`` would refuse, and ``preflight`` by default. The
        request's files are placeholders (``PLACEHOLDER_FILE``). By default: nothing
        refused."""
        return

    async def preflight(self, request: JobRequest) -> None:
        """Called before anything is uploaded: raise ``ProviderUnavailable`` when the provider
        will not train (closed, or not for this account), or ``UnsupportedFeature`` /
        ``InvalidRequestError`` for a request it cannot take. ``request.training_file`` (and
        ``validation_file``) are placeholders here, with the id ``PLACEHOLDER_FILE``. By
        default: ``check_request``."""
        self.check_request(request)

    async def aclose(self) -> None:
        """Release connections and processes."""
        return

    @classmethod
    def predictor(cls, model: str, **options: Any) -> Predictor:
        """What ``ft.evaluate`` asks ``model`` through: a base model or a model this backend
        tuned, named as in ``ModelRef(backend=name, name=model)``; ``options`` are the
        candidate's ``predictor_options``. A class method: evaluating builds no backend.
        By default there is none (``UnsupportedFeature`` saying what to pass instead)."""
        raise no_predictor(cls.name)

    @classmethod
    def trained_on(cls, model: str, **options: Any) -> Iterable[Example] | None:
        """The examples ``model`` was fine-tuned on, when this backend can tell without a
        request (the local trainer keeps them beside the job); ``options`` are the
        candidate's ``predictor_options``. ``ft.evaluate`` notes, on its result, a model
        scored on examples it was trained on. By default: ``None``, not known."""
        return None

    def unsupported(self, operation: str) -> UnsupportedFeature:
        """The error for an operation this backend does not offer."""
        what = OPTIONAL_OPERATIONS.get(operation, operation)
        return UnsupportedFeature(f"backend {self.name!r} cannot {what} ({operation})")


def no_predictor(backend: str) -> UnsupportedFeature:
    """The error for a model whose backend cannot be asked by ``ft.evaluate``."""
    return UnsupportedFeature(
        f"backend {backend!r} has no predictor for its models; pass a Predictor, a function "
        "messages -> str, or ModelRef.openai_compatible(base_url, model) as the candidate"
    )


@runtime_checkable
class SyncBackend(Protocol):
    """A backend whose calls are plain (blocking) methods; ``as_async`` runs it in threads."""

    name: str
    capabilities: Capabilities

    def upload(self, dataset: Dataset, *, purpose: str = "train") -> FileRef:
        """As ``Backend.upload``."""
        ...

    def create_job(self, request: JobRequest) -> Job:
        """As ``Backend.create_job``."""
        ...

    def get_job(self, job_id: str) -> Job:
        """As ``Backend.get_job``."""
        ...


_ASYNC_CALLS = (
    "upload",
    "create_job",
    "get_job",
    *OPTIONAL_OPERATIONS,
    "refine_estimate",
    "preflight",
)
_PLAIN_CALLS = (
    "owns",
    "check_request",
    "token_counter",
    "context_limit",
    "estimate_notes",
    "job_options",
    "predictor_options",
    "connection_options",
    "validation_rules",
    "format_example",
)


class BackendAdapter(BaseBackend):
    """A backend that does not subclass ``BaseBackend`` behind the full async interface: its
    own methods where it has them, ``BaseBackend``'s defaults elsewhere.

    A synchronous backend (``threaded=True``) has each call run in a worker thread, one call at
    a time (a lock), so it needs no thread safety of its own.
    """

    def __init__(self, backend: Any, *, threaded: bool) -> None:
        self.wrapped = backend
        self.threaded = threaded
        self.name: str = backend.name  # type: ignore[misc]
        self.capabilities: Capabilities = backend.capabilities  # type: ignore[misc]
        self.attempts: int = int(getattr(backend, "attempts", BaseBackend.attempts))
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return repr(self.wrapped)

    @property
    def identity(self) -> str:
        """The wrapped backend's identity, else its name."""
        return str(getattr(self.wrapped, "identity", self.name))

    def supports(self, operation: str) -> bool:
        """Whether the wrapped backend has the method."""
        return callable(getattr(self.wrapped, operation, None))

    async def call(self, operation: str, *args: Any, **kwargs: Any) -> Any:
        """Call the wrapped backend's ``operation`` (in a thread when it is synchronous)."""
        target: Callable[..., Any] | None = getattr(self.wrapped, operation, None)
        if target is None:
            return await getattr(BaseBackend, operation)(self, *args, **kwargs)
        if not self.threaded:
            return await target(*args, **kwargs)

        def locked() -> Any:
            with self._lock:
                return target(*args, **kwargs)

        return await asyncio.to_thread(locked)

    async def aclose(self) -> None:
        """The wrapped ``aclose`` (or ``close``, in a thread; in place at interpreter exit,
        when no thread can be started and nothing else runs)."""
        closer = getattr(self.wrapped, "aclose", None)
        if closer is not None:
            await closer()
        elif callable(getattr(self.wrapped, "close", None)):
            if exiting():
                self.wrapped.close()
            else:
                await asyncio.to_thread(self.wrapped.close)

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self.wrapped, attribute)


def _forward_async(operation: str) -> Any:
    async def forward(self: BackendAdapter, *args: Any, **kwargs: Any) -> Any:
        return await self.call(operation, *args, **kwargs)

    forward.__name__ = operation
    forward.__doc__ = f"The wrapped backend's ``{operation}`` (or the default)."
    return forward


def _forward_plain(operation: str) -> Any:
    def forward(self: BackendAdapter, *args: Any, **kwargs: Any) -> Any:
        mine = getattr(self.wrapped, operation, None)
        return (
            mine(*args, **kwargs)
            if mine
            else getattr(BaseBackend, operation)(self, *args, **kwargs)
        )

    forward.__name__ = operation
    forward.__doc__ = f"The wrapped backend's ``{operation}`` (or the default)."
    return forward


def planned_job(
    backend: str,
    model: str,
    dataset: Dataset,
    hyperparameters: Hyperparameters,
    validation: Dataset | None = None,
    options: Mapping[str, Any] | None = None,
) -> JobRequest:
    """The job an estimate (or a price quote) is about, its files placeholders: a fit of
    ``model`` on ``dataset`` with these hyperparameters and ``options``, with the method the
    data trains with (preference pairs: DPO)."""
    placeholder = FileRef(backend=backend, id=PLACEHOLDER_FILE)
    return JobRequest(
        base_model=model,
        training_file=placeholder,
        validation_file=placeholder if validation is not None else None,
        method="dpo" if dataset.kind == "preference" else "sft",  # as a fit must train it
        hyperparameters=hyperparameters,
        options=dict(options or {}),
        idempotency_key="quote",
    )


for _operation in _ASYNC_CALLS:
    setattr(BackendAdapter, _operation, _forward_async(_operation))
for _operation in _PLAIN_CALLS:
    setattr(BackendAdapter, _operation, _forward_plain(_operation))


def as_async(backend: Any, *, registered_as: str | None = None) -> BaseBackend:
    """``backend`` behind the async interface: a ``BaseBackend`` as it is, any other async
    backend with the defaults filled in, a synchronous one run in worker threads; one that
    lacks a part of the ``Backend`` protocol is a ``TypeError`` naming what it lacks (and the
    name it was ``registered_as``), before any call."""
    missing = missing_members(backend)
    if not callable(getattr(backend, "get_job", None)):
        missing.append("get_job")
    if missing:
        made = f"backend {registered_as!r} made " if registered_as else ""
        raise TypeError(
            f"{made}{type(backend).__name__}, which is no backend: it {lacking(missing)}"
        )
    if isinstance(backend, BaseBackend):
        return backend
    threaded = not inspect.iscoroutinefunction(getattr(backend, "get_job", None))
    return BackendAdapter(backend, threaded=threaded)


def missing_members(backend: Any, calls: Sequence[str] = ()) -> list[str]:
    """What ``backend`` lacks of the ``Backend`` protocol: its name, its capabilities, and
    each of ``calls`` it does not write itself (``BaseBackend``'s defaults of the required
    calls only raise; an adapted backend is looked at as written)."""
    written = backend.wrapped if isinstance(backend, BackendAdapter) else backend
    missing = [member for member in ("name", "capabilities") if not hasattr(written, member)]
    for call in calls:
        own = getattr(type(written), call, None)
        if not callable(getattr(written, call, None)) or own is getattr(BaseBackend, call, None):
            missing.append(call)
    return missing


def lacking(missing: Sequence[str]) -> str:
    """The end of a sentence on a backend that lacks ``missing``, with what one has."""
    return (
        f"lacks {', '.join(missing)} (a backend has a name, capabilities "
        "and async upload, create_job and get_job; docs/plugins.md)"
    )
