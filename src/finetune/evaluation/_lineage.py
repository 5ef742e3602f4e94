"""What the job registry says of the job that made a candidate model, when it ran here: the
rows it was trained on (to note a model scored on its own training rows) and their kind (to
ask a hosted model as it was trained)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from finetune._errors import (
    FinetuneError,
    InvalidRequestError,
    PermissionDeniedError,
    RegistryError,
    ServerError,
    add_note,
)
from finetune.types import Job, ModelRef

if TYPE_CHECKING:
    from finetune.registry import JobRecord, JobRegistry

__all__ = [
    "api_trained_on",
    "job_without_model",
    "model_of_job",
    "note_how_served",
    "rows_kept_for",
]

log = logging.getLogger("finetune")
T = TypeVar("T")


def rows_kept_for(candidate: Any) -> set[bytes] | None:
    """The digests of the rows a candidate's job was trained on, as the job registry kept
    them when the fit ran here, found by the ref's job id, else by the model's name (``None``:
    no registry, or no record)."""
    from finetune.dataset._formats import TURNS_DIGEST_SIZE as SIZE
    from finetune.registry import JobRegistry

    kept = _recorded(candidate, JobRegistry.training_rows)
    if kept is None:
        return None
    return {kept[i : i + SIZE] for i in range(0, len(kept), SIZE)}


def api_trained_on(model: ModelRef) -> dict[str, str]:
    """``{"api": "completions"}`` for a hosted model whose job trained on prompt/completion
    rows (it learnt each prompt as its plain text, which the chat API would wrap in a chat
    template), as the registry kept them; else nothing, and the chat API stays."""
    from finetune.registry import JobRegistry

    if _recorded(model, JobRegistry.training_kind) != "completion":
        return {}
    log.info(
        "%s:%s trained on prompt/completion rows: asked through the completions API "
        "(predictor_options api='chat' asks it through chat)",
        model.backend,
        model.name,
    )
    return {"api": "completions"}


def model_of_job(name: str, candidate: Any, *, named: bool = True) -> Any:
    """A ``ModelRef`` that names a job this machine's registry knows (``"hf:hfjob-..."``,
    ``"openai:ftjob-..."``, as a job is written on the command line) as the model the job
    made; a job the registry saw with no model yet is refused, naming the candidate (the
    job alone where ``named`` is false: a model asked, not evaluated); any other candidate
    as it is. A local job's folder (``"hf:./jobs/hfjob-..."``, as ``finetune status`` takes
    it) is read from its files."""
    if not isinstance(candidate, ModelRef) or candidate.job_id or candidate.endpoint:
        return candidate
    who = name if named else None
    called = f"candidate {name!r}" if named else repr(name)
    if candidate.backend == "hf" and Path(candidate.name).expanduser().is_dir():
        return _model_in_job_folder(who, candidate)
    record = _asked(candidate, lambda registry: registry.get(candidate.backend, candidate.name))
    if record is None and candidate.backend == "hf" and candidate.name.startswith("hfjob-"):
        raise FinetuneError(
            f"{called} names local job {candidate.name}, which this machine's job registry "
            "does not hold (deleted, or started elsewhere): give the job's folder, "
            f"hf:/path/to/{candidate.name}, or the model it made"
        )
    if record is None:
        return candidate
    if not record.fine_tuned_model:
        job = f"{record.backend}:{record.job_id}"
        raise _job_refused(who, job, _no_model_yet(record, "evaluate" if named else "ask"))
    log.info("%s: the model job %s made, %s", called, record.job_id, record.fine_tuned_model)
    update = {"name": record.fine_tuned_model, "job_id": record.job_id}
    served = {"base_model": record.base_model, "note": candidate.note or _serving(record.backend)}
    return candidate.model_copy(update={**update, **served})


def _serving(backend: str) -> str | None:
    """How ``backend``'s provider serves the models its jobs make, as ``job.model.note``
    says it (``HostedBackend.serving_note``)."""
    from finetune.backends import backend_class

    note = getattr(backend_class(backend), "serving_note", None)
    return note if isinstance(note, str) else None


def note_how_served(error: BaseException, who: str, serving: str | None) -> None:
    """Add how its provider serves a tuned model (``ModelRef.note``) to an error asking it,
    where the error may come of that: a Together LoRA model not served serverless answers
    503 ("Overloaded"), a Fireworks one not deployed 404."""
    if serving and isinstance(error, (InvalidRequestError, PermissionDeniedError, ServerError)):
        add_note(error, f"{who}: {serving}")


def _model_in_job_folder(name: str | None, candidate: ModelRef) -> ModelRef:
    """The model of the local job whose folder ``candidate`` names; any other folder (a
    model's) as it is."""
    from finetune.backends.hf._jobdir import local_job_at

    job = local_job_at(candidate.name)
    if job is None:
        return candidate
    if not job.fine_tuned_model:
        raise job_without_model(name, job)
    update = {"name": job.fine_tuned_model, "job_id": job.id, "base_model": job.base_model}
    return candidate.model_copy(update=update)


def job_without_model(name: str | None, job: Job) -> FinetuneError:
    """The refusal of candidate ``name`` (``None``: a model asked), a job that has made no
    model: what to do, by its status (wait for it, resume it, or evaluate a checkpoint)."""
    from finetune._handle import why_no_model

    return _job_refused(name, job.id, why_no_model(job))


def _job_refused(name: str | None, job: str, why: str) -> FinetuneError:
    """``candidate 'tuned' is job J, which`` WHY, or ``job J`` WHY for a model asked."""
    said = f"candidate {name!r} is job {job}, which" if name is not None else f"job {job}"
    return FinetuneError(f"{said} {why}")


def _no_model_yet(record: JobRecord, use: str) -> str:
    """Why a job has no model, and what to do: wait for one still going; a job that ended
    without one (failed, cancelled) will make none: ``use`` (evaluate, ask) another's."""
    job = f"{record.backend}:{record.job_id}"
    if record.status in ("failed", "cancelled"):
        return (
            f"ended {record.status} and made no model (`finetune status {job}` shows it): "
            f"{use} the model of another job"
        )
    return (
        f"had made no model when this machine last saw it ({record.status}): "
        f"`finetune wait {job}` waits for it and reads it again"
    )


def _recorded(candidate: Any, read: Callable[[JobRegistry, str, str], T | None]) -> T | None:
    """What ``read`` (``JobRegistry.training_rows``, ``training_kind``) finds in the registry
    for the job that made ``candidate``: its Tuner's registry for a job's model (the default
    one for a ref named by hand, or a Tuner that keeps none), by the ref's job id, else the
    job that made a model of its name; ``None`` with no registry file (evaluating never
    creates one) or no job."""
    if not isinstance(candidate, ModelRef):
        return None

    def of_its_job(registry: JobRegistry) -> T | None:
        from finetune.export._gguf import job_behind

        backend, job_id = candidate.backend, candidate.job_id
        if job_id is None and (job_id := job_behind(candidate.name)) is not None:
            backend = "hf"
        if job_id is None:
            record = registry.lineage(candidate.name)
            if record is None or record.backend != candidate.backend:
                return None
            job_id = record.job_id
        return read(registry, backend, job_id)

    return _asked(candidate, of_its_job)


def _asked(candidate: ModelRef, ask: Callable[[JobRegistry], T | None]) -> T | None:
    """What ``ask`` finds in the registry a candidate's job was recorded in (its Tuner's, else
    the default one); ``None`` with no registry file (evaluating never creates one) or one
    that cannot be read."""
    from finetune.registry import JobRegistry, default_registry_path

    path = Path(candidate._registry_file or default_registry_path())
    if not path.is_file():
        return None
    try:
        return ask(JobRegistry(path))
    except RegistryError as exc:
        log.debug("nothing from the registry on %s: %s", candidate.name, exc)
        return None
