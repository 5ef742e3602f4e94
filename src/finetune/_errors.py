"""The one exception tree of finetune: every error says what to do next."""

from __future__ import annotations

import copy
import importlib.util
import re
import sys
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from finetune._secret_fields import names_a_credential, without_credentials
from finetune._setting_words import setting_wanted
from finetune._words import counted

if TYPE_CHECKING:
    from importlib.metadata import Distribution

    from typing_extensions import Self

    from finetune.types import Job

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
    "ProviderUnavailable",
    "RateLimitError",
    "RegistryError",
    "ServerError",
    "StorageError",
    "UnsupportedFeature",
    "ValidationFailed",
    "WaitTimeout",
]


class FinetuneError(Exception):
    """Base class of every error raised by finetune."""

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuilt from its message and attributes, not by calling ``__init__`` again: the
        # arguments of ``JobFailed(job)`` or ``ValidationFailed(report)`` are not its message,
        # and a worker's error that cannot be unpickled breaks a whole ProcessPoolExecutor.
        return (_unpickled, (type(self), self.args, self.__dict__))


def _unpickled(kind: type[FinetuneError], args: tuple[Any, ...], state: dict[str, Any]) -> Any:
    """A pickled ``FinetuneError`` as it was: its class, message and attributes."""
    error = kind.__new__(kind, *args)
    error.args = args
    error.__dict__.update(state)
    return error


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


class Report(Protocol):
    """What ``ValidationFailed`` needs of a validation report (``ValidationReport`` has it)."""

    @property
    def error_count(self) -> int:
        """How many errors in all."""
        ...

    def summary(self, limit: int = 5) -> str:
        """A few lines naming the findings."""
        ...


class ValidationFailed(FinetuneError):
    """Validation found errors; nothing was uploaded. Fix the rows listed in ``report``."""

    def __init__(self, report: Report) -> None:
        self.report = report
        super().__init__(
            f"{counted(report.error_count, 'validation error')}, nothing was uploaded:\n"
            f"{report.summary(limit=10)}\n"
            "Fix the rows above, or pass skip_validation=True (finetune train --skip-validation) "
            "to send the data anyway."
        )


class UnsupportedFeature(FinetuneError, ValueError):
    """The backend or output format cannot express what was asked (e.g. DPO data to Mistral)."""


class MissingDependency(FinetuneError, ImportError):
    """An optional dependency is missing; the message names the pip command that installs it.
    Raised while an ``ImportError`` is handled, it tells a package that is installed but fails
    to import (a module it needs is absent, or its version does not fit another's) from one
    that is absent, and names that error."""

    def __init__(self, package: str, extra: str | None = None, *, purpose: str = "") -> None:
        self.package = package
        self.extra = extra
        why = f" {purpose}" if purpose else ""
        cause = _import_failure_of(package)
        if cause is None:
            install = f'pip install "finetune[{extra}]"' if extra else f"pip install {package}"
            super().__init__(f"{package} is not installed{why}. Install it with: {install}")
            return
        upgrade = f'"finetune[{extra}]"' if extra else package
        super().__init__(
            f"{package} is installed but cannot be imported{why}: {cause}. Install what it "
            f"lacks, or versions that fit together: pip install --upgrade {upgrade}"
        )


def _import_failure_of(package: str) -> ImportError | None:
    """The ``ImportError`` being handled, where ``package`` is installed and what failed is
    not the absence of a module the package itself provides: a module it needs, or a
    submodule or a name its version lacks."""
    cause = sys.exc_info()[1]
    if not isinstance(cause, ImportError):
        return None
    from importlib import metadata

    try:
        distribution = metadata.distribution(package.split("[")[0])
    except metadata.PackageNotFoundError:
        return None
    absent = isinstance(cause, ModuleNotFoundError) and cause.name in _modules_of(distribution)
    return None if absent else cause


def _modules_of(distribution: Distribution) -> set[str]:
    """The modules an installed distribution provides, dotted (``openai``, ``openai.types``,
    ``backports.zstd``), as its files hold them, and the top-level ones its ``top_level.txt``
    declares. (``packages_distributions`` of Python 3.10 reads the declaration alone, which
    most wheels built today lack.)"""
    declared = set((distribution.read_text("top_level.txt") or "").split())
    paths = (
        file.with_suffix("").parts for file in distribution.files or [] if file.suffix == ".py"
    )
    return declared | {".".join(path[:-1] if path[-1] == "__init__" else path) for path in paths}


def require_installed(packages: Iterable[str], extra: str | None, *, purpose: str) -> None:
    """Raise ``MissingDependency`` for the first of ``packages`` (import names) that is not
    installed, found without importing any: before work that would need it later."""
    for package in packages:
        if importlib.util.find_spec(package) is None:
            raise MissingDependency(package, extra, purpose=purpose)


class BackendNotFound(FinetuneError, LookupError):
    """No backend is registered under that name; the message lists those that are."""

    def __init__(self, name: str, available: list[str]) -> None:
        self.name = name
        self.available = available
        self.suggestion: str | None = closest_name(name, available)
        names = ", ".join(sorted(available)) or "none"
        guess = f" Did you mean {self.suggestion!r}?" if self.suggestion else ""
        super().__init__(
            f"no backend named {name!r}.{guess} Installed backends: {names}. A plugin adds one "
            "by declaring an entry point in the 'finetune.backends' group."
        )


def closest_name(
    name: str,
    choices: list[str],
    *,
    cutoff: float = 0.6,
    synonyms: Mapping[str, str] | None = None,
) -> str | None:
    """The choice ``name`` most likely meant (case aside, the choice ``synonyms`` gives for
    it, or a spelling at least ``cutoff`` alike, difflib's ratio), if any."""
    import difflib

    by_lower = {choice.lower(): choice for choice in choices}
    if name.lower() in by_lower:
        return by_lower[name.lower()]
    if synonyms and synonyms.get(name.lower()) in choices:
        return synonyms[name.lower()]
    found = difflib.get_close_matches(name.lower(), list(by_lower), n=1, cutoff=cutoff)
    return by_lower[found[0]] if found else None


def add_note(error: BaseException, note: str) -> None:
    """Say where an error happened, keeping the error's own type: in ``__notes__``, which
    Python 3.11+ shows under the traceback and the CLI prints (on 3.10 too, where the list
    is kept as 3.11 keeps it)."""
    if not isinstance(error, Exception):
        return
    if sys.version_info >= (3, 11):
        error.add_note(note)
    else:
        setattr(error, "__notes__", [*getattr(error, "__notes__", ()), note])  # noqa: B010


def did_you_mean(name: str, choices: list[str], synonyms: Mapping[str, str] | None = None) -> str:
    """`` (did you mean 'x'?)`` with the choice ``name`` most likely meant, or nothing."""
    close = closest_name(name, choices, synonyms=synonyms)
    return f" (did you mean {close!r}?)" if close else ""


def settings_problem(
    error: Any,
    models: Mapping[str, tuple[str, Sequence[str]]],
    noun: str = "field",
    synonyms: Mapping[str, str] | None = None,
) -> tuple[str, str]:
    """The first problem of a pydantic ``ValidationError`` on settings given as a dict, in one
    line, and the dotted name it is about. ``models`` names what holds the settings, by the
    first part of their path (``""``: the top level; ``"lora"``: a nested model) as an owner
    and its names: an unknown name comes with the closest known one; a bad value says what
    was given and, for a field of several types, what each of them refused."""
    first = error.errors()[0]
    path, nested, field = _setting_of(first, models)
    where = ".".join(field)
    others = _other_fields(error, models, where, synonyms)
    if first["type"] == "extra_forbidden":
        owner, known = models[nested]
        guess = did_you_mean(path[-1], list(known), synonyms)
        return (
            f"{owner} has no {noun} {path[-1]!r}{guess}; its {noun}s are {', '.join(known)}"
            f"{others}",
            where,
        )
    about_it = [
        problem
        for problem in error.errors()
        if tuple(str(part) for part in problem["loc"])[: len(field)] == field
    ]
    why = setting_wanted(about_it) or "; or ".join(
        str(problem["msg"]).removeprefix("Value error, ") for problem in about_it
    )
    if not where:  # a check of the settings together, not of one of them
        return why, where
    return f"{where}: not {first['input']!r} ({why}){others}", where


def _setting_of(
    problem: Any, models: Mapping[str, Any]
) -> tuple[tuple[str, ...], str, tuple[str, ...]]:
    """A pydantic problem's path, the nested model it is in (``"lora"``; ``""``: the top
    level) and the path of the setting it is about (``("lora", "r")``)."""
    path = tuple(str(part) for part in problem["loc"])
    nested = path[0] if len(path) > 1 and path[0] in models else ""
    return path, nested, path[: 2 if nested else 1]


def _other_fields(
    error: Any,
    models: Mapping[str, tuple[str, Sequence[str]]],
    first: str,
    synonyms: Mapping[str, str] | None,
) -> str:
    """``" (batch_size is refused too)"``: the other settings the error refuses (an unknown
    name with the one meant), so that all are mended at once, not found one run at a time."""
    named: dict[str, str] = {}
    for problem in error.errors():
        path, nested, field = _setting_of(problem, models)
        name = ".".join(field)
        if name and name != first and name not in named:
            unknown = problem["type"] == "extra_forbidden"
            guess = did_you_mean(path[-1], list(models[nested][1]), synonyms) if unknown else ""
            named[name] = name + guess
    if not named:
        return ""
    return f" ({', '.join(named.values())} {'is' if len(named) == 1 else 'are'} refused too)"


def with_name_meant(model: Any, problem: Any, synonyms: Mapping[str, str]) -> Any:
    """A pydantic problem of ``model`` (a dict of ``ValidationError.errors()``) that is an
    unknown field, its message naming the field meant (``lr``: ``learning_rate``) and the
    fields there are, as ``ValidationError.from_exception_data`` takes it; any other as it is."""
    if problem["type"] != "extra_forbidden":
        return problem
    from pydantic_core import PydanticCustomError

    owner = _owner_of(model, problem["loc"])
    known = list(owner.model_fields)
    meant = did_you_mean(str(problem["loc"][-1]), known, synonyms)
    message = f"{owner.__name__} has no such field{meant}; its fields are {', '.join(known)}"
    kind = PydanticCustomError("extra_forbidden", message)
    return {"type": kind, "loc": problem["loc"], "input": problem["input"]}


def in_plain_words(model: Any, problems: list[Any], synonyms: Mapping[str, str]) -> list[Any]:
    """The problems of a ``ValidationError`` of ``model``'s settings, one per setting, each
    saying what the setting must be (``epochs``: ``must be a whole number or 'auto'``, where
    pydantic said a line for each type it may take), an unknown one naming the one meant; as
    ``ValidationError.from_exception_data`` takes them."""
    from pydantic_core import PydanticCustomError

    by_setting: dict[tuple[Any, ...], list[Any]] = {}
    for problem in problems:
        if problem["type"] == "extra_forbidden":
            by_setting[(id(problem),)] = [with_name_meant(model, problem, synonyms)]
        else:
            by_setting.setdefault(_setting_loc(model, problem["loc"]), []).append(problem)
    plain = []
    for loc, same in by_setting.items():
        wanted = setting_wanted(same)
        if wanted is None:
            plain.extend(same)
            continue
        kind = PydanticCustomError("invalid_setting", "{wanted}", {"wanted": wanted})
        plain.append({"type": kind, "loc": loc, "input": same[0]["input"]})
    return [_input_masked(problem) for problem in plain]


def _input_masked(problem: Any) -> Any:
    """A problem whose input is a credential by its name (``wandb_api_key="..."`` given as
    a setting), or holds one, with that shown as ``***``: pydantic quotes the input."""
    named = any(isinstance(part, str) and names_a_credential(part) for part in problem["loc"])
    return {**problem, "input": "***" if named else without_credentials(problem["input"])}


def _setting_loc(model: Any, loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """The part of a problem's ``loc`` that names a setting (``("lora", "r")``), without the
    type of a union pydantic adds (``("epochs", "int")``: ``("epochs",)``)."""
    for length in range(len(loc), 0, -1):
        owner = _owner_of(model, loc[:length])
        if str(loc[length - 1]) in getattr(owner, "model_fields", {}):
            return loc[:length]
    return loc


def _owner_of(model: Any, loc: tuple[Any, ...]) -> Any:
    """The pydantic model whose field ``loc`` names (``("lora", "rank")``: ``LoRA``)."""
    from typing import get_args

    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        kinds = get_args(field.annotation) or (field.annotation,) if field else ()
        nested = [kind for kind in kinds if hasattr(kind, "model_fields")]
        if not nested:
            break
        model = nested[0]
    return model


def unexpected_keyword(error: TypeError, given: Collection[str]) -> str | None:
    """The option among ``given`` that ``error`` (a call's ``TypeError``) says the callee does
    not take; ``None`` when the error is about something else."""
    found = re.search(r"unexpected keyword argument '(\w+)'", str(error))
    return found.group(1) if found and found.group(1) in given else None


class BackendError(FinetuneError):
    """A backend (provider API or local trainer) refused or failed a request.

    ``retry_after`` is the wait in seconds the provider asked for, when it said one.
    """

    retryable: bool = False
    retry_after: float | None = None

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
        self.message = message
        super().__init__(self._said())

    def _said(self) -> str:
        prefix = f"[{self.backend}] " if self.backend else ""
        detail = f" (param: {self.param})" if self.param else ""
        return f"{prefix}{self.message}{detail}"

    def with_note(self, note: str, *, param: str | None = None) -> Self:
        """This error with ``note`` after its message: the same type, backend, status and
        code (what a caller knows besides, without rewording the provider), and ``param``
        where the caller knows the field it is about."""
        more = copy.copy(self)
        more.message = f"{self.message}{note}"
        more.param = param or self.param
        more.args = (more._said(),)
        return more


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


class ProviderUnavailable(BackendError):
    """The provider does not train (any more, or not for this account): nothing was uploaded.

    ``alternatives`` names what to use instead, such as the same Dataset on
    ``Tuner("hf", model=...)`` with the open-weights equivalent, or another hosted provider.
    """

    def __init__(self, message: str, *, alternatives: Sequence[str] = (), **kw: Any) -> None:
        self.alternatives: list[str] = list(alternatives)
        text = message.rstrip(".") + "."
        if self.alternatives:
            text += " Alternatives: " + "; ".join(self.alternatives) + "."
        super().__init__(text, **kw)


class RegistryError(FinetuneError):
    """The local job registry (a SQLite file) cannot be read or written.

    The message names the file; set ``FINETUNE_REGISTRY`` to another path, fix its
    permissions, or pass ``registry=False`` to the Tuner.
    """


class StorageError(FinetuneError):
    """A local file or folder could not be read or written (disk full, read-only, permissions).

    The message names the path and what to do.
    """


class JobFailed(FinetuneError):
    """A fine-tuning job ended in failure; ``job.error`` holds the provider's code and message."""

    def __init__(self, job: Job) -> None:
        self.job = job
        detail = str(job.error) if job.error else "no error detail was given"
        resumable = "resume()" in detail  # a lost worker: the job goes on from its checkpoint
        then = "" if resumable else ", fix the cause, then fit again"
        super().__init__(
            f"job {job.id} on {job.backend} ended {job.status.value}: {detail}. "
            f"Inspect job.events() for the provider's log{then}."
        )


class WaitTimeout(FinetuneError, TimeoutError):
    """``JobHandle.wait`` ran out of time; the job itself goes on. Call ``wait`` again later.

    ``tuner`` is the call that makes a Tuner reaching the job (``Tuner('hf', jobs_dir=...)``
    for a local job outside the default folder; ``Tuner('<backend>')`` when not given)."""

    def __init__(self, job: Job, timeout: float, *, tuner: str | None = None) -> None:
        self.job = job
        self.timeout = timeout
        super().__init__(
            f"job {job.id} is still {job.status.value} after {timeout:g}s; it keeps running. "
            f"Re-attach later with {tuner or f'Tuner({job.backend!r})'}.job({job.id!r}).wait()."
        )
