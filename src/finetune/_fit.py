"""The local half of a fit: request checks, the idempotency key, the plan handed to the loop."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import inspect
import json
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypedDict, TypeVar, cast

from pydantic import ValidationError

from finetune._errors import (
    DatasetError,
    InvalidRequestError,
    RateLimitError,
    ServerError,
    UnsupportedFeature,
    did_you_mean,
    settings_problem,
)
from finetune._json_values import json_settings
from finetune._numbers import is_amount
from finetune._synonyms import HYPERPARAMETER_SYNONYMS
from finetune._tuner_inputs import check_method_fits, first_kind
from finetune._words import cost_figure, counted
from finetune.backends.base import (
    METADATA_KEY,
    PLACEHOLDER_FILE,
    JobRequest,
    lacking,
    missing_members,
    planned_job,
)
from finetune.dataset._role_columns import completion_as_chat
from finetune.types import (
    CostEstimate,
    FileRef,
    Hyperparameters,
    Job,
    JobStatus,
    LoRA,
)

if TYPE_CHECKING:
    from finetune.backends import BaseBackend
    from finetune.dataset import Dataset
    from finetune.registry import JobRecord, JobRegistry
    from finetune.tuner import TunerView
    from finetune.validation import ValidationReport

__all__ = [
    "FitOptions",
    "FitPlan",
    "as_hyperparameters",
    "attempt_key",
    "check_budget",
    "check_estimated_job",
    "check_fit",
    "check_fit_options",
    "check_quote",
    "check_reported_context",
    "check_validated_job",
    "derive_idempotency_key",
    "hyperparameter_meant",
    "json_options",
    "keep_training_rows",
    "keywords_explained",
    "named_as_hyperparameters",
    "over_budget",
    "refuse_other_data",
    "reusable",
    "warnings_note",
    "with_reported_context",
]

Method = TypeVar("Method", bound=Callable[..., Any])
_log = logging.getLogger("finetune")


class FitOptions(TypedDict, total=False):
    """The keyword arguments of ``fit``, every one optional.

    ``hyperparameters`` (``Hyperparameters``, or a dict of its fields), ``method`` (``"sft"``
    or ``"dpo"``), ``suffix`` (added to the tuned model's name), ``metadata`` (kept on the job
    where the provider has metadata), ``integrations`` (e.g. W&B), ``idempotency_key`` (default:
    derived from the fit), ``skip_validation`` (send data with validation errors), ``options``
    (the backend's own settings, e.g. ``max_length`` for ``hf``), ``max_cost`` (USD: a fit
    whose estimate is above it is refused before anything is uploaded).
    """

    hyperparameters: Hyperparameters | Mapping[str, Any] | None
    method: Literal["sft", "dpo"]
    suffix: str | None
    metadata: dict[str, str] | None
    integrations: list[dict[str, Any]] | None
    idempotency_key: str | None
    skip_validation: bool
    options: dict[str, Any] | None
    max_cost: float | None


def as_hyperparameters(given: Hyperparameters | Mapping[str, Any] | None) -> Hyperparameters:
    """``Hyperparameters`` as given, or built from a dict of its fields (``{"epochs": 3}``); a
    field that is unknown or out of range is an ``InvalidRequestError`` naming it."""
    if given is None or isinstance(given, Hyperparameters):
        return given or Hyperparameters()
    if not isinstance(given, Mapping):
        raise TypeError(
            "hyperparameters is ft.Hyperparameters(...) or a dict of its fields, not "
            f"{type(given).__name__}"
        )
    try:
        return Hyperparameters.model_validate(dict(given))
    except ValidationError as error:
        message, where = hyperparameters_problem(error)
        raise InvalidRequestError(message, param=f"hyperparameters.{where}") from None


def hyperparameter_meant(name: str) -> str | None:
    """Our hyperparameter that ``name`` is, or that another tool names so (``lr``:
    ``learning_rate``), if any."""
    ours = name if name in Hyperparameters.model_fields else HYPERPARAMETER_SYNONYMS.get(name)
    return ours if ours in Hyperparameters.model_fields and ours != "extra" else None


def named_as_hyperparameters(names: Iterable[str]) -> str:
    """`` ('lr' is ft.Hyperparameters(learning_rate=...))`` for those of ``names`` that are
    hyperparameters, found where they do not belong (a backend's options); else nothing."""
    found = [(name, hyperparameter_meant(name)) for name in names]
    said = [f"{name!r} is ft.Hyperparameters({ours}=...)" for name, ours in found if ours]
    return f" ({'; '.join(said)})" if said else ""


def hyperparameters_problem(error: ValidationError) -> tuple[str, str]:
    """What is wrong with hyperparameters given as a dict, in one line, and the dotted name
    of the field (``epochs``, ``lora.r``)."""
    models = {
        "": ("Hyperparameters", list(Hyperparameters.model_fields)),
        "lora": ("LoRA", list(LoRA.model_fields)),
    }
    return settings_problem(error, models, synonyms=HYPERPARAMETER_SYNONYMS)


def _unexpected_keywords(method: str, unknown: list[str], takes: list[str]) -> TypeError:
    """``method() got unexpected keyword argument(s) [...]``, with the keyword meant: a
    hyperparameter given alone (``epochs=3``) where ``method`` takes ``hyperparameters``."""
    hyperparameter = named_as_hyperparameters(unknown) if "hyperparameters" in takes else ""
    hint = hyperparameter or did_you_mean(unknown[0], takes)
    return TypeError(
        f"{method}() got unexpected keyword argument(s) {unknown}{hint}; it takes {takes}"
    )


def keywords_explained(method: Method) -> Method:
    """``method`` (a coroutine function stays one), but a keyword it does not take is told
    the one meant, as ``fit`` tells it: Python's own error names the bad keyword only."""
    parameters = inspect.signature(method).parameters
    takes = sorted(
        name
        for name, parameter in parameters.items()
        if parameter.kind is parameter.KEYWORD_ONLY or name in ("validation", "hyperparameters")
    )

    def check(kwargs: dict[str, Any]) -> None:
        unknown = sorted(set(kwargs) - set(parameters))
        if unknown:
            raise _unexpected_keywords(method.__name__, unknown, takes)

    @functools.wraps(method)
    def checked(*args: Any, **kwargs: Any) -> Any:
        check(kwargs)
        return method(*args, **kwargs)

    @functools.wraps(method)
    async def checked_async(*args: Any, **kwargs: Any) -> Any:
        check(kwargs)
        return await method(*args, **kwargs)

    return cast(Method, checked_async if inspect.iscoroutinefunction(method) else checked)


_KEYWORD_TYPES: dict[str, tuple[type | tuple[type, ...], str]] = {
    "method": (str, "'sft' or 'dpo'"),
    "suffix": (str, "text"),
    "metadata": (Mapping, "a dict of text to text"),
    "options": (Mapping, "a dict of the backend's options"),
    "skip_validation": (bool, "True or False"),  # "no" would have skipped validation
    "integrations": ((list, tuple), "a list of dicts, as [{'type': 'wandb', 'wandb': {...}}]"),
}


def check_fit_options(given: Mapping[str, Any]) -> None:
    """A misspelled keyword is a ``TypeError`` naming the ones ``fit`` takes."""
    unknown = sorted(set(given) - set(FitOptions.__annotations__))
    if unknown:
        takes = sorted([*FitOptions.__annotations__, "validation"])
        raise _unexpected_keywords("fit", unknown, takes)
    for name, (kind, meaning) in _KEYWORD_TYPES.items():
        value = given.get(name)
        if value is not None and not isinstance(value, kind):
            raise TypeError(f"{name} is {meaning}, not {type(value).__name__} {value!r:.60}")
    if not all(isinstance(item, Mapping) for item in given.get("integrations") or ()):
        raise TypeError(f"integrations is {_KEYWORD_TYPES['integrations'][1]}")
    budget = given.get("max_cost")
    if budget is not None and not is_amount(budget):
        raise ValueError(f"max_cost is the most the job may cost in USD, 0 or more, not {budget!r}")
    key = given.get("idempotency_key")
    if key is not None and (not isinstance(key, str) or not key.strip()):
        raise ValueError(
            f"idempotency_key is a name for this fit, not {key!r}: give one, or leave it out "
            "to have it derived from the fit"
        )
    metadata = given.get("metadata") or {}
    wrong = [
        k for k, v in dict(metadata).items() if not (isinstance(k, str) and isinstance(v, str))
    ]
    if wrong:
        raise TypeError(
            f"metadata maps text to text; {wrong[0]!r} is {type(metadata[wrong[0]]).__name__}: "
            "write it as a string"
        )


def json_options(options: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A fit's backend ``options`` as JSON, as they are sent and keyed: NumPy's numbers as
    Python's, tuples as lists; NaN, a set or a date is a ``ValueError`` naming where it
    stands (``options['x']``), before anything is uploaded."""
    if options is None:
        return None
    return cast("dict[str, Any]", json_settings(dict(options), "options"))


@dataclass(frozen=True)
class FitPlan:
    """A checked, validated fit, ready to be started (``AsyncTuner.start``)."""

    train: Dataset
    validation: Dataset | None
    model: str
    method: str
    hyperparameters: Hyperparameters
    suffix: str | None
    key: str
    train_fingerprint: str
    validation_fingerprint: str | None
    metadata: dict[str, str] = field(default_factory=dict)
    integrations: list[dict[str, Any]] = field(default_factory=list, repr=False)
    options: dict[str, Any] = field(default_factory=dict)
    context_checked: bool = True  # False: validated with no context limit known
    max_cost: float | None = None

    def request(
        self,
        backend: str,
        key: str,
        train: FileRef | None = None,
        validation: FileRef | None = None,
    ) -> JobRequest:
        """The create request under ``key``; before the upload (``preflight``), with
        placeholder file references."""
        placeholder = FileRef(backend=backend, id=PLACEHOLDER_FILE)
        if self.validation is not None and validation is None:
            validation = placeholder
        return JobRequest(
            base_model=self.model,
            training_file=train or placeholder,
            validation_file=validation,
            method=self.method,
            hyperparameters=self.hyperparameters,
            suffix=self.suffix,
            idempotency_key=key,
            metadata={**self.metadata, METADATA_KEY: key},
            integrations=self.integrations,
            options=self.options,
        )


def check_reported_context(tuner: TunerView, plan: FitPlan) -> None:
    """After ``preflight``, for a fit validated with no context limit known (a model off our
    table): its data validated again when the backend now knows the limit its provider
    reported (Together's model limits), so that examples over it are a ``ValidationFailed``
    naming their lines before anything is uploaded."""
    from finetune.backends._hooks import context_for

    if context_for(tuner.backend, plan.model, plan.options) is None:
        return
    report = tuner.validate(plan.train, plan.validation, model=plan.model, options=plan.options)
    report.raise_for_errors()


def check_budget(
    tuner: TunerView,
    max_cost: float | None,
    plan: tuple[Dataset, Dataset | None, Hyperparameters, Mapping[str, Any] | None],
) -> None:
    """A fit's ``max_cost``: its estimate above it (see ``over_budget``) is an
    ``InvalidRequestError`` before anything is uploaded."""
    if max_cost is None or not tuner.backend.capabilities.hosted:  # no bill: nothing to count
        return
    train, validation, hyperparameters, options = plan
    figures = tuner.estimate_locally(train, hyperparameters, validation=validation, options=options)
    if figures.cost is None and tuner.backend.supports("refine_estimate"):
        return  # a model off our table: the provider's quote checks it (check_quote)
    problem = over_budget(figures, max_cost)
    if problem is not None:
        raise InvalidRequestError(
            f"{problem}; nothing was uploaded", backend=tuner.backend_name, param="max_cost"
        )


async def check_quote(tuner: TunerView, plan: FitPlan) -> None:
    """A fit's ``max_cost`` against the provider's own quote, where it gives one (Together's
    ``estimate-price``, Fireworks' ``estimateCost``), before a job is created: our price table
    is dated, and the quote is what the provider means to bill. The data it prices is
    uploaded, and the fit goes on with that upload."""
    budget = plan.max_cost
    if budget is None or not tuner.backend.supports("refine_estimate"):
        return
    from finetune.backends._hooks import quote_for

    params, validation = plan.hyperparameters, plan.validation
    ours = await asyncio.to_thread(
        functools.partial(
            tuner.estimate_locally, plan.train, params, validation=validation, options=plan.options
        )
    )
    try:
        quoted = await quote_for(tuner.backend, plan.train, ours, params, validation, plan.options)
    except (ServerError, RateLimitError) as failed:  # after its retries: our figures stand
        _log.warning("max_cost was checked against our estimate alone: %s", failed)
        return
    problem = over_budget(quoted, budget)
    if problem is None:
        return
    priced = "estimated_total_price" in (quoted.provider_figures or {})
    after = (
        "no job was started (the data it priced is uploaded, and a fit of it uses that upload)"
        if priced
        else "nothing was uploaded"
    )
    raise InvalidRequestError(f"{problem}; {after}", backend=tuner.backend_name, param="max_cost")


def over_budget(figures: CostEstimate, max_cost: float) -> str | None:
    """Why a job of these figures (ours: the upper end of a price range, a floor where
    examples show images; then the provider's own quote, where they hold one) may not start
    under ``max_cost`` USD, and the cure: its cost above it, or a hosted model whose price is
    unknown; ``None`` when it fits, or has no bill (local training)."""
    if not figures.hosted:
        return None
    cost = figures.cost_high if figures.cost_high is not None else figures.cost
    quote = (figures.provider_figures or {}).get("estimated_total_price")
    quote = quote if isinstance(quote, (int, float)) and is_amount(quote) else None
    said = f"max_cost={max_cost:g} USD"
    if cost is None and quote is None:
        return (
            f"{said} cannot be checked: no price is known for {figures.model} (give it in a "
            "table of your own, $FINETUNE_MODELS_FILE, or no max_cost)"
        )
    if cost is not None and cost > max_cost:
        return (
            f"the estimate, {cost_figure(figures)}, is above {said} (fewer epochs or examples, "
            "or a cheaper model, cost less)"
        )
    if quote is not None and quote > max_cost:
        ours = (
            f"{cost_figure(figures)} at prices of {figures.pricing_date}"
            if cost is not None
            else "none, the model is not in our price table"
        )
        return (
            f"the provider's own quote for this job, {quote:.4g} USD, is above {said} (our "
            f"estimate: {ours})"
        )
    return None


def with_reported_context(
    tuner: TunerView,
    estimate: CostEstimate,
    dataset: Dataset,
    validation: Dataset | None,
    options: Mapping[str, Any] | None,
) -> CostEstimate:
    """An estimate made with no context limit known (a model off our table), checked against
    the limit the provider reported while it quoted (Together's model limits): the note that
    nothing was checked gives way to the figures, and examples over it are said."""
    from finetune.backends._hooks import context_for
    from finetune.validation._catalog import unchecked_context_message

    if context_for(tuner.backend, estimate.model, options) is None:
        return estimate
    again = tuner.estimate_locally(
        dataset, model=estimate.model, validation=validation, options=options
    )
    unchecked = unchecked_context_message(tuner.backend.validation_rules().name, estimate.model)
    notes = [note for note in estimate.notes if note != unchecked]
    if again.examples_over_limit:
        notes.append(
            f"{counted(again.examples_over_limit, 'example')} over the {again.context_limit}-token "
            f"limit {tuner.backend_name} reports for {estimate.model}: a fit refuses them "
            "(tuner.validate, or finetune validate, names them)"
        )
    context = {
        "context_limit": again.context_limit,
        "examples_over_limit": again.examples_over_limit,
    }
    return estimate.model_copy(update={**context, "notes": notes})


def derive_idempotency_key(
    backend: str,
    model: str,
    method: str,
    train_fingerprint: str,
    validation_fingerprint: str | None,
    hyperparameters: Hyperparameters,
    suffix: str | None,
    options: dict[str, Any] | None = None,
) -> str:
    """A key that is the same for the same fit, so a re-run finds the job a crash left.

    Backend ``options`` change what is trained (packing, max_length ...), so they are part of
    the key; a fit without options keeps the key it always had.
    """
    parts: list[Any] = [
        backend,
        model,
        method,
        train_fingerprint,
        validation_fingerprint,
        hyperparameters.model_dump(mode="json"),
        suffix,
    ]
    if options:
        parts.append(options)
    payload = json.dumps(parts, sort_keys=True, default=str)
    return "ft-" + hashlib.sha256(payload.encode()).hexdigest()[:32]


def attempt_key(key: str, attempt: int) -> str:
    """The key of the ``attempt``-th try of one fit: a failed or cancelled job moves it on."""
    return key if attempt == 0 else f"{key}.{attempt}"


def reusable(job: Job | None) -> bool:
    """Whether a job found for a key is the one to re-attach to (not failed or cancelled)."""
    return job is not None and job.status not in (JobStatus.FAILED, JobStatus.CANCELLED)


def warnings_note(report: ValidationReport) -> str | None:
    """One line on what validation warned of, for a fit that goes ahead anyway (``None``
    when it warned of nothing): each code, its count and its first place."""
    codes = sorted(
        code
        for code, severity in report.severities.items()
        if severity == "warning" and report.counts[code] and code not in _ABOUT_OUR_FIGURES
    )
    if not codes:
        return None
    found = sum(report.counts[code] for code in codes)
    named = "; ".join(
        f"{code} x{report.counts[code]} (first at {report.kept[code][0].location})"
        for code in codes
    )
    do, them = ("does", "it") if found == 1 else ("do", "them")
    return (
        f"validation found {counted(found, 'warning')}, which {do} not stop the fit: {named}; "
        f"validate lists {them} (tuner.validate, or finetune validate on the command line)"
    )


# of what we know (our counts, the model's context), not of the data
_ABOUT_OUR_FIGURES = frozenset({"approximate_token_counts", "unchecked_context"})


def check_fit(
    backend: BaseBackend,
    train: Dataset,
    validation: Dataset | None,
    method: str,
    suffix: str | None,
    hyperparameters: Hyperparameters,
) -> None:
    """Refuse what the backend cannot train, before anything is read or sent."""
    caps, name = backend.capabilities, backend.name
    if missing := missing_members(backend, ("upload", "create_job", "get_job")):
        raise TypeError(f"backend {name!r} cannot start a job: it {lacking(missing)}")
    if method not in caps.methods:
        raise UnsupportedFeature(
            f"backend {name!r} does not train with method={method!r}; "
            f"it supports {sorted(caps.methods)}"
        )
    kind = first_kind(train)
    if kind is not None and kind not in caps.example_kinds:
        cure = completion_as_chat(kind, caps.example_kinds)
        raise UnsupportedFeature(
            f"backend {name!r} cannot train on {kind} examples; "
            f"it takes {sorted(caps.example_kinds)}{cure}"
        )
    check_method_fits(method, kind)
    if method != "dpo" and hyperparameters.beta is not None:
        raise InvalidRequestError(
            f"beta is the DPO beta; a {method} fit has no use for it: drop it, or train "
            "preference examples with method='dpo'",
            backend=name,
            param="hyperparameters.beta",
        )
    if validation is not None and not caps.validation_file:
        raise UnsupportedFeature(f"backend {name!r} takes no validation file")
    if suffix is not None and not suffix.strip():  # an unset variable, say
        raise InvalidRequestError(
            "suffix is empty: give a name, or leave it out", backend=name, param="suffix"
        )
    limit = caps.max_suffix_length
    if suffix is not None and limit is not None and len(suffix) > limit:
        raise InvalidRequestError(
            f"suffix {suffix!r} is {len(suffix)} characters; {name} allows at most {limit}",
            backend=name,
            param="suffix",
        )


def check_estimated_job(
    tuner: TunerView,
    model: str,
    dataset: Dataset,
    hyperparameters: Hyperparameters,
    plan: tuple[Dataset | None, Mapping[str, Any] | None],
) -> JobRequest:
    """The job an estimate prices (``plan``: its validation set and options), refused as
    ``fit`` refuses it before anything is uploaded: what the backend cannot train, and what
    its ``check_request`` refuses. No figures are given for a job that would not start."""
    validation, options = plan
    request = planned_job(tuner.backend_name, model, dataset, hyperparameters, validation, options)
    check_fit(tuner.backend, dataset, validation, request.method, None, hyperparameters)
    tuner.backend.check_request(request)
    return request


def check_validated_job(
    backend: BaseBackend, model: str, data: tuple[Dataset, Dataset | None], options: Any
) -> None:
    """The fit a validation is given ``options`` or a validation set of, refused as ``fit``
    refuses it before any upload (``check_request``): ``finetune validate --option`` fails
    where ``train`` would, and so does preference data with a validation set on Fireworks,
    whose DPO jobs take none."""
    if not options and data[1] is None:
        return
    try:
        request = planned_job(backend.name, model, data[0], Hyperparameters(), data[1], options)
    except (DatasetError, ValueError):  # data of no kind to tell: the report says why
        return
    backend.check_request(request)


def refuse_other_data(record: JobRecord, plan: FitPlan) -> None:
    """An ``idempotency_key`` given again for other data is an error: re-attaching would hand
    back a job trained on something else (a derived key names the data, so only a key of the
    caller's own can collide)."""
    made = (record.train_fingerprint, record.validation_fingerprint)
    asked = (plan.train_fingerprint, plan.validation_fingerprint)
    if record.train_fingerprint and made != asked:
        raise InvalidRequestError(
            f"idempotency_key {plan.key!r} made job {record.job_id} from other data; give this "
            "fit a key of its own, or leave it out to have it derived from the fit",
            backend=record.backend,
            param="idempotency_key",
        )


def keep_training_rows(registry: JobRegistry, plan: FitPlan) -> None:
    """Keep a digest of each row the fit trains on, and the rows' kind, once per training
    set, so that ``ft.evaluate`` can tell when the model is scored on its own training rows,
    and ask it as it was trained."""
    from finetune.dataset._formats import split_turns, turns_digest

    if not registry.has_training_rows(plan.train_fingerprint):
        digests = b"".join(turns_digest(split_turns(example)) for example in plan.train)
        registry.record_training_rows(plan.train_fingerprint, digests, plan.train.kind)
