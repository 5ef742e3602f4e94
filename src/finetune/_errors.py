"""The one exception tree of finetune: every error says what to do next."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from finetune.types import Job
    from finetune.validation import ValidationReport

__all__ = [
    "AuthenticationError",
    "BackendError",
    "BackendNotFound",
    "DatasetError",
    "FinetuneError",
    "InvalidRequestError",
    "JobFailed",
    "JobNotFound",
    "MissingDependency",
    "PermissionDeniedError",
    "RateLimitError",
    "ServerError",
    "UnsupportedFeature",
    "ValidationFailed",
    "WaitTimeout",
]


class FinetuneError(Exception):
    """Base class of every error raised by finetune."""


class DatasetError(FinetuneError, ValueError):
    """A dataset row or file is malformed.

    Carries the ``file``, 1-based ``line`` and JSON ``field`` path when known.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.file = file
        self.line = line
        self.field = field
        self.reason = message
        where = _location(file, line, field)
        super().__init__(f"{where}: {message}" if where else message)


def _location(file: str | None, line: int | None, field: str | None) -> str:
    parts = []
    if file is not None or line is not None:
        parts.append(f"{file or '<records>'}:{line}" if line is not None else str(file))
    if field:
        parts.append(field)
    return ": ".join(parts)


class ValidationFailed(FinetuneError):
    """Validation found errors; nothing was uploaded. Fix the rows listed in ``report``."""

    def __init__(self, report: ValidationReport) -> None:
        self.report = report
        super().__init__(
            f"{len(report.errors)} validation error(s), nothing was uploaded:\n"
            f"{report.summary(limit=10)}\n"
            "Fix the rows above, or pass skip_validation=True to send the data anyway."
        )


class UnsupportedFeature(FinetuneError, ValueError):
    """The backend or output format cannot express what was asked (e.g. DPO data to Mistral)."""


class MissingDependency(FinetuneError, ImportError):
    """An optional dependency is missing; the message names the pip command that installs it."""

    def __init__(self, package: str, extra: str | None = None, *, purpose: str = "") -> None:
        self.package = package
        self.extra = extra
        install = f'pip install "finetune[{extra}]"' if extra else f"pip install {package}"
        why = f" {purpose}" if purpose else ""
        super().__init__(f"{package} is not installed{why}. Install it with: {install}")


class BackendNotFound(FinetuneError, LookupError):
    """No backend is registered under that name; the message lists those that are."""

    def __init__(self, name: str, available: list[str]) -> None:
        self.name = name
        self.available = available
        names = ", ".join(sorted(available)) or "none"
        super().__init__(
            f"no backend named {name!r}. Installed backends: {names}. A plugin adds one by "
            "declaring an entry point in the 'finetune.backends' group."
        )


class BackendError(FinetuneError):
    """A backend (provider API or local trainer) refused or failed a request."""

    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        backend: str | None = None,
        status_code: int | None = None,
        code: str | None = None,
        param: str | None = None,
    ) -> None:
        self.backend = backend
        self.status_code = status_code
        self.code = code
        self.param = param
        prefix = f"[{backend}] " if backend else ""
        detail = f" (param: {param})" if param else ""
        super().__init__(f"{prefix}{message}{detail}")


class AuthenticationError(BackendError):
    """The credentials were missing or refused: set the provider's API key and try again."""


class PermissionDeniedError(BackendError):
    """The credentials are valid but not allowed to do this (model access, project, org)."""


class InvalidRequestError(BackendError):
    """The provider rejected the request; ``param`` names the offending field when it says so."""


class JobNotFound(BackendError, LookupError):
    """No job with that id exists on this backend (check the id and the backend name)."""


class RateLimitError(BackendError):
    """Too many requests; ``retry_after`` says how many seconds the provider asked to wait."""

    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kw)


class ServerError(BackendError):
    """The provider failed (5xx or connection problem); safe to retry later."""

    retryable = True


class JobFailed(FinetuneError):
    """A fine-tuning job ended in failure; ``job.error`` holds the provider's code and message."""

    def __init__(self, job: Job) -> None:
        self.job = job
        err = job.error
        detail = f"{err.code}: {err.message}" if err else "no error detail was given"
        super().__init__(
            f"job {job.id} on {job.backend} ended {job.status.value}: {detail}. "
            "Inspect job.events() for the provider's log, fix the cause, then fit again."
        )


class WaitTimeout(FinetuneError, TimeoutError):
    """``JobHandle.wait`` ran out of time; the job itself goes on. Call ``wait`` again later."""

    def __init__(self, job: Job, timeout: float) -> None:
        self.job = job
        self.timeout = timeout
        super().__init__(
            f"job {job.id} is still {job.status.value} after {timeout:g}s; it keeps running. "
            f"Re-attach later with Tuner({job.backend!r}).job({job.id!r}).wait()."
        )
