"""HFBackend: local fine-tuning with TRL + PEFT, each job a directory and a worker process."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from finetune._errors import InvalidRequestError, JobNotFound
from finetune._processes import process_alive, process_start_time, reap_when_it_ends
from finetune._series import MetricSeries
from finetune.backends.base import EVERY_KIND, SFT_AND_DPO, Capabilities, JobRequest
from finetune.backends.hf._config import (
    LocalOptions,
    TrainingConfig,
    check_early_stopping,
    check_trainer_names,
    continuing_adapter,
    parse_options,
    wanted_quantization,
)
from finetune.backends.hf._inputs import (
    check_method,
    check_model,
    check_packing,
    example_kind,
    load_tokenizer,
    local_path,
)
from finetune.backends.hf._jobdir import (
    ENVIRONMENT,
    JobDir,
    default_jobs_dir,
    how_to_resume,
    job_config_behind,
    job_view,
    jobs_dir_identity,
    log_tail,
    new_job_id,
    now_iso,
    process_tree,
    refuse_unless_ended,
    running_workers,
    storage_errors,
    training_file,
    why_not_a_job,
)
from finetune.backends.hf._launch import (
    check_launch,
    check_quantization,
    cuda_device_count,
    device_environment,
    launcher_log_dir,
    shared_cores_note,
    shares_cores,
    write_accelerate_config,
)
from finetune.backends.hf._launch import torchrun_arguments as _torchrun_arguments
from finetune.backends.hf._models import ModelSource, default_models_dir, resolve
from finetune.backends.hf._pace import pace_notes
from finetune.backends.hf._secrets import split_secrets
from finetune.backends.hf._targets import check_lora_targets
from finetune.types import Checkpoint, CostEstimate, FileRef, Job, JobEvent, MetricPoint

if TYPE_CHECKING:
    from finetune.dataset import Dataset
    from finetune.evaluation import HFPredictor
    from finetune.validation import Target, TokenCounter

__all__ = ["HFBackend"]

WORKER_MODULE = "finetune.backends.hf._worker"
_START_GRACE = 120.0
log = logging.getLogger("finetune")
_ACTIVE = ("queued", "validating", "running")


class HFBackend:
    """Trains on this machine: ``Tuner("hf", model="path/to/model")``.

    Options given here are defaults for every job (``launcher``, ``num_processes``,
    ``max_length``, ``packing``, ``merge`` ...; see ``LocalOptions``); ``fit(options=...)``
    overrides them per job.

    Args:
        jobs_dir: the folder of the job directories (``$FINETUNE_HF_JOBS_DIR``, else the user
            data folder's ``hf-jobs``).
        models_dir: the checkpoints converted from GGUF files (``$FINETUNE_MODELS_DIR``, else
            the user data folder's), shared by every jobs folder and by ``evaluate``.
        cancel_grace: seconds a cancelled or paused worker is given to stop before it is killed.
        python: the interpreter the worker runs on (this one's by default).
    """

    name = "hf"
    capabilities: Capabilities = Capabilities(
        methods=SFT_AND_DPO,
        example_kinds=EVERY_KIND,
        tools=True,  # SFT, where the model's chat template writes them
        pause_resume=True,
        hosted=False,
        validation_target="hf",
        output_format="hf",  # TRL's rows, as upload writes them under jobs_dir/files
        max_suffix_length=64,
        notes=(
            "runs TRL + PEFT in a worker process; resume continues from a checkpoint",
            "model= a Hub id, a model folder, or a .gguf file (converted once, cached)",
        ),
    )
    environment: ClassVar[Mapping[str, str]] = ENVIRONMENT

    def __init__(
        self,
        *,
        jobs_dir: str | os.PathLike[str] | None = None,
        models_dir: str | os.PathLike[str] | None = None,
        cancel_grace: float = 10.0,
        python: str | None = None,
        **options: Any,
    ) -> None:
        chosen = Path(jobs_dir) if jobs_dir is not None else default_jobs_dir()
        self.jobs_dir: Path = chosen.expanduser().resolve()
        made_in = Path(models_dir).expanduser() if models_dir else default_models_dir()
        self.models_dir: Path = made_in.absolute()
        self._sources: dict[str, ModelSource] = {}
        self._contexts: dict[tuple[str, bool], int | None] = {}
        self._options = parse_options(options, of_backend=True)
        self._cancel_grace = cancel_grace
        self._python = python or sys.executable
        self._processes: dict[str, subprocess.Popen[bytes]] = {}
        self._counters: dict[tuple[str, bool, str | None], TokenCounter] = {}
        self._tokenizers: dict[tuple[str, bool, str | None], Any] = {}
        self._cache_lock = threading.RLock()  # validation and the Tuner's threads share them
        self._folders: dict[str, Path] = {}  # jobs given by folder, then named by their id

    def __repr__(self) -> str:
        return f"HFBackend(jobs_dir={str(self.jobs_dir)!r})"

    @property
    def identity(self) -> str:
        """``hf`` for jobs in the user data dir, ``hf|FOLDER`` for any other jobs folder."""
        return jobs_dir_identity(self.jobs_dir)

    def token_counter(self, model: str, options: Mapping[str, Any] | None = None) -> TokenCounter:
        """Exact counts: each example rendered with the model's chat template (the
        ``chat_template`` option's, where one is given)."""
        chosen = self._fit_options(options)
        key = (model, chosen.trust_remote_code, chosen.chat_template)
        with self._cache_lock:
            if key not in self._counters:
                from finetune.validation import ChatTemplateCounter

                tokenizer = self._tokenizer(model, chosen)
                self._counters[key] = ChatTemplateCounter(tokenizer, name=model)
            return self._counters[key]

    def source(self, model: str) -> ModelSource:
        """Where ``model`` is loaded from; a GGUF file is converted here, once."""
        with self._cache_lock:
            if model not in self._sources:
                self._sources[model] = resolve(model, self.models_dir)
            return self._sources[model]

    def _tokenizer(self, model: str, options: LocalOptions) -> Any:
        """The model's tokenizer, loaded once for validation and the checks before a job,
        with the ``chat_template`` option's template where one is given."""
        key = (model, options.trust_remote_code, options.chat_template)
        with self._cache_lock:
            if key not in self._tokenizers:
                path = self.source(model).path
                tokenizer = load_tokenizer(path, options.trust_remote_code, model)
                if options.chat_template is not None:
                    tokenizer.chat_template = options.chat_template
                self._tokenizers[key] = tokenizer
            return self._tokenizers[key]

    def _context(self, model: str, options: LocalOptions) -> int | None:
        """The model's context, read once as the fit would read it: with its
        ``trust_remote_code``, without which a model whose config is code of its own is
        refused (the worker would fail on loading it)."""
        from finetune.backends.hf._checks import model_context

        key = (model, options.trust_remote_code)
        with self._cache_lock:
            if key not in self._contexts:
                path = self.source(model).path
                self._contexts[key] = model_context(path, options.trust_remote_code, model)
            return self._contexts[key]

    def context_limit(self, model: str, options: Mapping[str, Any] | None = None) -> int:
        """Tokens per example the trainer keeps: the ``max_length`` option, the fit's over the
        backend's (longer ones are truncated, and ``validate`` reports them as
        ``would_truncate``)."""
        return self._fit_options(options).max_length

    def estimate_notes(self, request: JobRequest, estimate: CostEstimate) -> list[str]:
        """How long training takes, at the pace of the latest job here alike (``_pace``)."""
        alike = (self.source(request.base_model).path, self._fit_options(request.options))
        return pace_notes(self._dirs(), request, alike, estimate.billed_tokens)

    def job_options(self, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The fit's ``options`` over this backend's, checked: what the job trains with, and
        what its idempotency key is derived from (``Tuner("hf", max_length=512)`` and
        ``max_length=128`` start jobs of their own; a default said aloud changes nothing).
        ``machine_rank`` is left out: every machine of one fit derives the job id from it."""
        chosen = self._fit_options(options)
        return chosen.model_dump(mode="json", exclude_defaults=True, exclude={"machine_rank"})

    def predictor_options(self) -> dict[str, Any]:
        """``tuner.base_model`` is asked with this backend's ``chat_template`` and
        ``trust_remote_code``, where set: as it trains."""
        chosen = self._options.model_dump(include={"chat_template", "trust_remote_code"})
        return {name: value for name, value in chosen.items() if value}

    def _fit_options(self, given: Mapping[str, Any] | None) -> LocalOptions:
        """A fit's ``options`` over the ones this backend was built with, checked (a fit
        without options: those, as checked when the backend was built)."""
        if not given:
            return self._options
        defaults = self._options.model_dump(exclude_unset=True)
        return parse_options({**defaults, **given})

    def validation_rules(
        self, model: str | None = None, options: Mapping[str, Any] | None = None
    ) -> Target:
        """The ``hf`` rules, and with a model the checks training would meet: every example
        rendered with its chat template and masked as training masks it (a model that
        ships its own code, without ``trust_remote_code``, is refused as ``fit`` refuses it)."""
        from dataclasses import replace

        from finetune.backends.hf._checks import ModelChecks
        from finetune.validation import target_rules

        rules = target_rules("hf")
        if model is None:
            return rules
        chosen = self._fit_options(options)
        checks = ModelChecks(
            self._tokenizer(model, chosen),
            assistant_only=chosen.assistant_only_loss,
            max_length=chosen.max_length,
            context=self._context(model, chosen),
        )
        return replace(rules, extra_checks=checks)

    def upload(self, dataset: Dataset, *, purpose: str = "train") -> FileRef:
        """Write the data (TRL's conversational shape) under ``jobs_dir/files``, named by its
        fingerprint, so a second fit of the same data writes nothing."""
        path = training_file(self.jobs_dir, dataset, purpose)
        return FileRef(
            backend=self.name,
            id=f"file-{path.stem}",
            filename=str(path),
            bytes=path.stat().st_size,
            status="processed",
        )

    def check_request(self, request: JobRequest) -> None:
        """Refuse, before anything is written, SFT packing into rows past the model's context."""
        options = self._fit_options(request.options)
        check_packing(options, request, lambda: self._context(request.base_model, options))

    def create_job(self, request: JobRequest) -> Job:
        """Make the job's folder and start its training worker (a process of its own, or the
        launcher ``options`` name); the job is ``queued`` until the worker runs."""
        options = self._fit_options(request.options)
        devices = check_launch(options)
        kind = example_kind(request.training_file)
        check_method(request.method, kind)
        tokenizer = self._tokenizer(request.base_model, options)
        self._context(request.base_model, options)  # refuses code it may not run
        check_model(tokenizer, request.base_model, kind, options)
        job_id = new_job_id(request.idempotency_key, shared=options.num_machines > 1)
        integrations, options, secrets = split_secrets(request, options)
        config = TrainingConfig(
            job_id=job_id,
            base_model=self.source(request.base_model).path,
            model_source=request.base_model,
            method=request.method,
            example_kind=kind,
            training_file=local_path(request.training_file),
            validation_file=local_path(request.validation_file)
            if request.validation_file
            else None,
            hyperparameters=request.hyperparameters,
            options=options,
            idempotency_key=request.idempotency_key,
            suffix=request.suffix,
            metadata=request.metadata,
            integrations=integrations,
        )
        config = continuing_adapter(config)
        check_lora_targets(config)  # a LoRA beside full_finetune=True, or on no layer: refused
        check_early_stopping(config)
        check_quantization(wanted_quantization(config), options, cuda_devices=devices)
        check_trainer_names(config)
        with storage_errors(self.jobs_dir, "create the job directory"):
            job = self._make_dir(config)
            self._launch(job, options, resume=False, env=secrets)
        return job_view(job, self.name)

    def find_job(self, request: JobRequest) -> Job | None:
        """The job directory created under ``request.idempotency_key``, if any."""
        for job in self._dirs():
            if job.read_config().get("idempotency_key") == request.idempotency_key:
                return self.get_job(job.id)
        return None

    def owns(self, job: Job, request_key: str) -> bool:
        """Whether the job directory was created under ``request_key``."""
        return (job.raw or {}).get("idempotency_key") in (None, request_key)

    def get_job(self, job_id: str) -> Job:
        """The job as its folder says, a worker that died without a word read as failed."""
        job = self._dir(job_id)
        self._notice_dead_worker(job)
        return job_view(job, self.name)

    def list_jobs(self, *, limit: int = 20) -> list[Job]:
        """The newest ``limit`` jobs in ``jobs_dir``."""
        return [self.get_job(job.id) for job in self._dirs()[:limit]]

    def cancel_job(self, job_id: str) -> Job:
        """Stop the worker (SIGTERM: it saves a checkpoint at the end of its step and exits;
        SIGKILL after ``cancel_grace`` seconds); ``resume_job`` can still go on from it."""
        return self._stop(job_id, "cancel")

    def pause_job(self, job_id: str) -> Job:
        """Stop the worker as ``cancel_job`` does and mark the job ``paused``."""
        return self._stop(job_id, "pause")

    def resume_job(self, job_id: str) -> Job:
        """Start the worker again from the job's last checkpoint (paused, failed or cancelled)."""
        job = self._dir(job_id)
        self._notice_dead_worker(job)
        state = job.read_status().get("status")
        if state in _ACTIVE or state == "succeeded":
            raise InvalidRequestError(
                f"job {job_id} is {state}; only a paused, failed or cancelled job can resume",
                backend=self.name,
                param="job_id",
            )
        checkpoints = job.checkpoints()
        where = f"step {checkpoints[-1][0]}" if checkpoints else "the start (no checkpoint yet)"
        job.clear_stop()
        job.update_status(status="queued", error=None, finished_at=None)
        job.append_event(f"Resume requested: continuing from {where}")
        options = TrainingConfig.model_validate(job.read_config()).options
        self._launch(job, options, resume=True)
        return job_view(job, self.name)

    def list_events(self, job_id: str) -> list[JobEvent]:
        """The job's log, oldest first, as its worker wrote it."""
        job = self._dir(job_id)
        self._notice_dead_worker(job)
        return [JobEvent.model_validate(row) for row in job.events()]

    def get_metrics(self, job_id: str) -> list[MetricPoint]:
        """One point per logged step: its training row and its evaluation row, merged."""
        rows = self._dir(job_id).metrics()
        merged: dict[int, dict[str, Any]] = {}
        # a step's training row, then its evaluation row; later logs of the same kind win
        for row in sorted(rows, key=lambda r: (r["step"], "valid_loss" in r)):
            merged.setdefault(row["step"], {}).update(row)
        return [MetricPoint.model_validate(row) for _, row in sorted(merged.items())]

    def delete_job(self, job_id: str, *, checkpoints_only: bool = False) -> int:
        """Remove an ended job's folder and its unused data (or its ``checkpoints/`` alone)."""
        folder = self._dir(job_id)
        refuse_unless_ended(self.get_job(job_id), folder.path)
        return folder.delete(checkpoints_only=checkpoints_only)

    def list_checkpoints(self, job_id: str) -> list[Checkpoint]:
        """The checkpoints in the job's folder, each a model ``ModelRef`` can load, with the
        metrics logged up to its step (``MetricSeries.at``)."""
        logged = MetricSeries(self.get_metrics(job_id))
        return [
            Checkpoint(
                id=path.name,
                step=step,
                model=str(path),
                created_at=datetime.fromtimestamp(path.stat().st_mtime, timezone.utc),
                metrics=logged.at(step),
            )
            for step, path in self._dir(job_id).checkpoints()
        ]

    @classmethod
    def predictor(cls, model: str, **options: Any) -> HFPredictor:
        """``model`` (a Hub id, a folder, a ``.gguf`` file or a tuned adapter's folder) run
        here with transformers (``HFPredictor``: batched, greedy, seeded; a local job's
        model with the ``trust_remote_code`` its job trained with, unless ``options`` say
        otherwise)."""
        from finetune.evaluation import HFPredictor

        return HFPredictor(model, **options)

    @classmethod
    def trained_on(cls, model: str, **options: Any) -> Dataset | None:
        """The training file of the local job that made ``model`` (its model, a checkpoint, a
        merged export of it), while it is still there; ``None`` for any other model."""
        from finetune.dataset import Dataset

        training = (job_config_behind(model) or {}).get("training_file")
        if isinstance(training, str) and Path(training).is_file():
            return Dataset.from_jsonl(training)
        return None

    def close(self) -> None:
        """Reap the workers that have ended; running ones go on (a job outlives its Tuner)."""
        for process in self._processes.values():
            process.poll()

    def worker_log(self, job_id: str) -> str:
        """The worker's stdout and stderr so far (for debugging a failed job)."""
        path = self._dir(job_id).log_path
        return path.read_text(errors="replace") if path.exists() else ""

    def _dir(self, job_id: str) -> JobDir:
        if os.sep in job_id:
            job = JobDir(job_id)
            self._folders[job.id] = job.path
        else:
            job = JobDir(self._folders.get(job_id, self.jobs_dir / job_id))
        problem = why_not_a_job(job, job_id, self.jobs_dir)
        if problem:
            raise JobNotFound(problem, backend=self.name, status_code=404)
        return job

    def _dirs(self) -> list[JobDir]:
        if not self.jobs_dir.is_dir():
            return []
        jobs = [JobDir(p) for p in self.jobs_dir.iterdir() if p.name.startswith("hfjob-")]
        found = [job for job in jobs if job.exists()]
        return sorted(found, key=lambda job: job.config_path.stat().st_mtime, reverse=True)

    def _make_dir(self, config: TrainingConfig) -> JobDir:
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        staging = JobDir(self.jobs_dir / f".{config.job_id}.tmp")
        staging.write_config(config.model_dump(mode="json"))
        staging.update_status(status="queued", created_at=now_iso())
        staging.append_event("Created local fine-tuning job")
        staging.path.rename(self.jobs_dir / config.job_id)
        return JobDir(self.jobs_dir / config.job_id)

    def _launch(
        self,
        job: JobDir,
        options: LocalOptions,
        *,
        resume: bool,
        env: dict[str, str] | None = None,
    ) -> None:
        sharing = shares_cores(options, cuda_devices=cuda_device_count(), environ=os.environ)
        if sharing and (training := self._others_training(job)):
            log.warning("job %s: %s", job.id, shared_cores_note(training))
        launcher = self._launcher(job, options)
        module = [] if options.launcher == "ray" else ["-m", WORKER_MODULE]
        command = [*launcher, *module, str(job.path)]
        if resume:
            command.append("--resume")
        env = {
            **os.environ,
            **device_environment(options, os.environ),
            **(env or {}),
            "PYTHONUNBUFFERED": "1",
            "TOKENIZERS_PARALLELISM": "false",
        }
        source_root = str(Path(__file__).resolve().parents[3])
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [source_root, env.get("PYTHONPATH")]))
        with job.log_path.open("ab") as log_file:
            process = subprocess.Popen(
                command,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=job.path,
                env=env,
                start_new_session=True,
            )
        reap_when_it_ends(process)
        self._processes[job.id] = process
        worker = {
            "pid": process.pid,
            "start_time": process_start_time(process.pid),
            "command": command,
            "launched_at": time.time(),
        }
        job.write_worker(worker)

    def _launcher(self, job: JobDir, options: LocalOptions) -> list[str]:
        python = self._python
        if options.launcher == "torchrun":
            return [python, "-m", "torch.distributed.run", *_torchrun_arguments(job.path, options)]
        if options.launcher == "accelerate":
            config = options.accelerate_config or str(write_accelerate_config(job.path, options))
            logs = ["--log_dir", str(launcher_log_dir(job.path))]
            return [python, "-m", "accelerate.commands.launch", "--config_file", config, *logs]
        if options.launcher == "ray":
            return [python, "-m", "finetune.backends.hf._ray"]
        return [python]

    def _worker_running(self, job: JobDir) -> tuple[bool, str]:
        process = self._processes.get(job.id)
        if process is not None:
            code = process.poll()
            if code is None:
                return True, ""
            if code < 0:
                return False, f"the worker was killed by {signal.Signals(-code).name}"
            return False, f"the worker exited with code {code}"
        worker = job.read_worker()
        if worker is None:
            created = job.config_path.stat().st_mtime
            return time.time() - created < _START_GRACE, "the worker was never started"
        if process_alive(worker["pid"], worker.get("start_time")):
            return True, ""
        return False, f"the worker process {worker['pid']} is gone"

    def _others_training(self, job: JobDir) -> list[str]:
        """Other jobs training now: this jobs folder's, and those of any other that ``/proc``
        shows a worker of."""
        found = {other.path: other for other in self._dirs()}
        found.update((path, JobDir(path)) for path in running_workers(WORKER_MODULE))
        others = [other for path, other in found.items() if path != job.path]
        return [other.id for other in others if self._training(other)]

    def _training(self, job: JobDir) -> bool:
        """Not ended (an ended job's worker may still be exiting), and its worker running."""
        active = job.read_status().get("status") in _ACTIVE and job.worker_path.exists()
        return active and self._worker_running(job)[0]

    def _notice_dead_worker(self, job: JobDir) -> None:
        if job.read_status().get("status") not in _ACTIVE:
            return
        running, why = self._worker_running(job)
        if running or job.read_status().get("status") not in _ACTIVE:
            return
        message = f"{why} before the job finished (killed, crashed, out of disk or a restart); "
        message += how_to_resume(job)
        tail = log_tail(job)
        if tail:
            message += f". Last lines of worker.log: {tail}"
        try:
            job.mark_failed("worker_lost", message)
        except OSError as exc:  # a full disk must not hide the failure: report it unsaved
            message += f" (the job directory cannot be written: {exc})"
            job.unsaved_status = {
                "status": "failed",
                "finished_at": now_iso(),
                "error": {"code": "worker_lost", "message": message},
            }

    def _stop(self, job_id: str, action: str) -> Job:
        job = self._dir(job_id)
        self._notice_dead_worker(job)
        state = job.read_status().get("status")
        if state not in _ACTIVE and not (action == "cancel" and state == "paused"):
            return job_view(job, self.name)
        job.request_stop(action)
        self._signal_worker(job, signal.SIGTERM)
        if not self._wait_for_exit(job, self._cancel_grace):
            self._signal_worker(job, signal.SIGKILL)
            self._wait_for_exit(job, None)
        if job.read_status().get("status") in (*_ACTIVE, "paused"):
            final = "paused" if action == "pause" else "cancelled"
            job.update_status(status=final, finished_at=now_iso())
            job.append_event(f"Job {final}")
        return job_view(job, self.name)

    def _wait_for_exit(self, job: JobDir, timeout: float | None) -> bool:
        """Whether the worker exited within ``timeout`` seconds (``None``: wait for it)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self._worker_running(job)[0]:
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(0.1)
        return True

    def _signal_worker(self, job: JobDir, which: signal.Signals) -> None:
        worker = job.read_worker()
        if worker is None or not process_alive(worker["pid"], worker.get("start_time")):
            return
        for pid in process_tree(worker["pid"]):  # torchrun's workers run in their own sessions
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, which) if pid == worker["pid"] else os.kill(pid, which)
