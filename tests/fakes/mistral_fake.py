"""A stateful loopback fake of Mistral's files, fine-tuning jobs and chat completions.

Written from the public API reference (shared/specs/mistral-openapi.yaml): the same paths, JSON
shapes (``CompletionJobOut``, ``CompletionDetailedJobOut``, ``LegacyJobMetadataOut``,
``ListFilesOut``), page-numbered lists and FastAPI-style 422 bodies. Jobs move through QUEUED ->
VALIDATING -> VALIDATED -> RUNNING -> SUCCESS as time passes; a job created with
``auto_start=false`` waits at VALIDATED for ``/start``. Every request is recorded.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ._server import (
    ChatReply,
    FakeServer,
    Faults,
    Reply,
    chat_reply,
    multipart_fields,
    tool_turn_problem,
)

PREFIX = "/v1"
STATUSES = (
    "QUEUED",
    "STARTED",
    "VALIDATING",
    "VALIDATED",
    "RUNNING",
    "FAILED_VALIDATION",
    "FAILED",
    "SUCCESS",
    "CANCELLED",
    "CANCELLATION_REQUESTED",
)
_HYPER = {"training_steps", "learning_rate", "weight_decay", "warmup_fraction", "epochs"}
_HYPER |= {"seq_len", "fim_ratio"}
_JOB_FIELDS = {"model", "training_files", "validation_files", "suffix", "integrations"}
_JOB_FIELDS |= {"auto_start", "invalid_sample_skip_percentage", "job_type", "hyperparameters"}
_JOB_FIELDS |= {"repositories", "classifier_targets"}


def mistral_error(status: int, message: str, kind: str = "invalid_request_error") -> Reply:
    """An error body as Mistral sends it."""
    return Reply(
        status, {"object": "error", "message": message, "type": kind, "param": None, "code": None}
    )


def unprocessable(location: list[str | int], message: str, given: Any = None) -> Reply:
    """A FastAPI validation error (422), echoing the input as the real API does."""
    item = {"loc": ["body", *location], "msg": message, "type": "value_error", "input": given}
    return Reply(422, {"detail": [item]})


def _echo(model: str, messages: list[dict[str, Any]]) -> str:
    return f"echo: {messages[-1].get('content')}"


@dataclass
class Phases:
    """Seconds spent queued, validating, waiting after validation, and running."""

    queued: float = 0.03
    validating: float = 0.03
    validated: float = 0.02
    running: float = 0.2


@dataclass
class _Job:
    body: dict[str, Any]
    id: str
    created: float
    created_at: int
    started: float | None
    cancelled: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class MistralFake(FakeServer):
    """The fake. Jobs with suffix ``fail`` fail in training; ``badval`` fail validation."""

    api_key = "mistral-test-key-0123456789"

    def __init__(
        self, faults: Faults | None = None, phases: Phases | None = None, *, retired: bool = False
    ) -> None:
        super().__init__(faults)
        # the job API as it answers since 2026-07: creating and listing jobs is 410 Gone
        self.retired = retired
        self.phases = phases or Phases()
        self.counter = itertools.count(1)
        self.chat_delay = 0.0
        self.chat_responder: Callable[[str, list[dict[str, Any]]], ChatReply] = _echo
        self.files: dict[str, dict[str, Any]] = {}
        self.jobs: dict[str, _Job] = {}

    @property
    def base_url(self) -> str:
        return self.url

    def unauthorized(self) -> Any:
        return {"detail": "Unauthorized"}

    def fault_body(self, fault: str) -> Any:
        messages = {"429": "Requests rate limit exceeded", "500": "Internal error"}
        message = messages.get(fault, "Service unavailable")
        kind = "rate_limited" if fault == "429" else "internal_server_error"
        return {"object": "error", "message": message, "type": kind, "param": None, "code": None}

    def summary(self) -> dict[str, int]:
        """Counts that must not grow on retries and re-runs."""
        with self.lock:
            fits = {
                json.dumps([j.body.get("training_files"), j.body.get("suffix")], sort_keys=True)
                for j in self.jobs.values()
            }
            names = {f["filename"] for f in self.files.values()}
            return {
                "files": len(self.files),
                "distinct_files": len(names),
                "jobs": len(self.jobs),
                "distinct_fits": len(fits),
            }

    def _id(self) -> str:
        return str(uuid.UUID(int=next(self.counter)))

    # -- routing --

    def route(
        self, method: str, path: str, query: dict[str, str], body: Any, raw: bytes, headers: Any
    ) -> Any:
        if method == "POST" and path == f"{PREFIX}/chat/completions":
            return self._chat(body)
        if not path.startswith(PREFIX):
            raise mistral_error(404, f"Not found: {method} {path}")
        parts = path[len(PREFIX) :].strip("/").split("/")
        with self.lock:
            return self._dispatch(method, parts, query, body, raw, headers)

    def _dispatch(
        self,
        method: str,
        parts: list[str],
        query: dict[str, str],
        body: Any,
        raw: bytes,
        headers: Any,
    ) -> Any:
        match method, parts:
            case "POST", ["files"]:
                return self._upload(raw, headers.get("Content-Type", ""))
            case "GET", ["files"]:
                return self._list_files(query)
            case "GET", ["files", file_id]:
                return {**self._file(file_id), "deleted": False}
            case "DELETE", ["files", file_id]:
                self._file(file_id)
                del self.files[file_id]
                return {"id": file_id, "object": "file", "deleted": True}
            case "POST" | "GET", ["fine_tuning", "jobs"] if self.retired:
                raise mistral_error(410, "The fine-tuning API has been retired.")
            case "POST", ["fine_tuning", "jobs"]:
                return self._create_job(body, dry_run=query.get("dry_run") == "true")
            case "GET", ["fine_tuning", "jobs"]:
                return self._list_jobs(query)
            case "GET", ["fine_tuning", "jobs", job_id]:
                return self._detail(self._job(job_id))
            case "POST", ["fine_tuning", "jobs", job_id, "cancel"]:
                return self._cancel(self._job(job_id))
            case "POST", ["fine_tuning", "jobs", job_id, "start"]:
                return self._start(self._job(job_id))
            case "POST" | "DELETE", ["fine_tuning", "models", model_id, "archive"]:
                record = self._model(model_id)
                record["archived"] = method == "POST"
                return {"id": model_id, "object": "model", "archived": record["archived"]}
            case "PATCH", ["fine_tuning", "models", model_id]:
                record = self._model(model_id)
                record.update(
                    {k: v for k, v in (body or {}).items() if k in ("name", "description")}
                )
                return record
        raise mistral_error(404, f"Not found: {method} /v1/{'/'.join(parts)}")

    # -- chat completions (for evaluation) --

    def _chat(self, body: dict[str, Any]) -> Any:
        if not body or not body.get("model") or not body.get("messages"):
            raise unprocessable(["messages"], "Field required")
        problem = tool_turn_problem(body["messages"])
        if problem:
            raise mistral_error(400, problem)
        if self.chat_delay:
            time.sleep(self.chat_delay)
        message, finish = chat_reply(self.chat_responder(body["model"], body["messages"]), body)
        return {
            "id": f"cmpl-{next(self.counter):08d}",
            "object": "chat.completion",
            "model": body["model"],
            "created": int(time.time()),
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
            "choices": [
                {
                    "index": 0,
                    "message": {"tool_calls": None, **message},
                    "finish_reason": finish,
                }
            ],
        }

    # -- files --

    def _upload(self, raw: bytes, content_type: str) -> Any:
        fields = multipart_fields(raw, content_type)
        if "file" not in fields:
            raise unprocessable(["file"], "Field required")
        name, data = fields["file"]
        purpose = fields.get("purpose", (None, b"fine-tune"))[1].decode()
        if purpose not in ("fine-tune", "batch", "ocr"):
            raise unprocessable(["purpose"], "Input should be 'fine-tune', 'batch' or 'ocr'")
        lines = [line for line in data.splitlines() if line.strip()]
        file_id = self._id()
        self.files[file_id] = {
            "id": file_id,
            "object": "file",
            "bytes": len(data),
            "created_at": int(time.time()),
            "filename": name or "upload.jsonl",
            "purpose": purpose,
            "sample_type": "instruct",
            "source": "upload",
            "num_lines": len(lines),
            "mimetype": "application/jsonl",
            "signature": hashlib.sha256(data).hexdigest()[:16],
        }
        return self.files[file_id]

    def _list_files(self, query: dict[str, str]) -> Any:
        items = [
            f
            for f in self.files.values()
            if (not query.get("purpose") or f["purpose"] == query["purpose"])
            and (not query.get("search") or query["search"] in f["filename"])
        ]
        items.sort(key=lambda f: f["id"], reverse=True)
        return {"data": self._page(items, query), "object": "list", "total": len(items)}

    def _page(self, items: list[Any], query: dict[str, str]) -> list[Any]:
        page, size = int(query.get("page", 0)), int(query.get("page_size", 100))
        return items[page * size : (page + 1) * size]

    def _file(self, file_id: str) -> dict[str, Any]:
        if file_id not in self.files:
            raise mistral_error(404, f"File {file_id} not found")
        return self.files[file_id]

    # -- jobs --

    def _check_job_body(self, body: Any) -> None:
        if not isinstance(body, dict):
            raise unprocessable([], "Input should be a valid dictionary")
        for key in ("model", "hyperparameters"):
            if key not in body:
                raise unprocessable([key], "Field required")
        unknown = sorted(set(body) - _JOB_FIELDS)
        if unknown:
            raise unprocessable([unknown[0]], "Extra inputs are not permitted")
        extra_hyper = sorted(set(body["hyperparameters"]) - _HYPER)
        if extra_hyper:
            raise unprocessable(["hyperparameters", extra_hyper[0]], "Extra inputs not permitted")
        suffix = body.get("suffix")
        if suffix is not None and len(suffix) > 18:
            raise unprocessable(["suffix"], "String should have at most 18 characters", suffix)
        for i, item in enumerate(body.get("integrations") or []):
            if len(item.get("api_key") or "") != 40:
                raise unprocessable(
                    ["integrations", i, "wandb", "api_key"],
                    "String should have 40 characters",
                    item,
                )
        for item in body.get("training_files") or []:
            if item.get("file_id") not in self.files:
                raise mistral_error(404, f"File {item.get('file_id')} not found")
        for file_id in body.get("validation_files") or []:
            if file_id not in self.files:
                raise mistral_error(404, f"File {file_id} not found")

    def _create_job(self, body: Any, *, dry_run: bool) -> Any:
        self._check_job_body(body)
        if dry_run:
            return self._dry_run(body)
        job_id = self._id()
        now = time.monotonic()
        started = now if body.get("auto_start", True) else None
        self.jobs[job_id] = _Job(body, job_id, now, int(time.time()), started)
        return self._summary(self.jobs[job_id])

    def _dry_run(self, body: dict[str, Any]) -> Any:
        lines = sum(self.files[t["file_id"]]["num_lines"] for t in body["training_files"])
        data_tokens = lines * 25
        epochs = body["hyperparameters"].get("epochs") or 1.0
        train_tokens = int(data_tokens * epochs)
        return {
            "object": "job.metadata",
            "expected_duration_seconds": 120,
            "cost": round(train_tokens / 1e6 * 1.0, 6),
            "cost_currency": "EUR",
            "train_tokens_per_step": 131072,
            "train_tokens": train_tokens,
            "data_tokens": data_tokens,
            "estimated_start_time": None,
            "deprecated": True,
            "details": "",
            "epochs": float(epochs),
            "training_steps": max(1, train_tokens // 131072),
        }

    def _job(self, job_id: str) -> _Job:
        if job_id not in self.jobs:
            raise mistral_error(404, f"Job {job_id} not found")
        return self.jobs[job_id]

    def _timeline(self, job: _Job) -> list[tuple[float, str]]:
        """(offset, status) pairs this job has gone through so far."""
        p, now = self.phases, time.monotonic()
        marks = [(0.0, "QUEUED"), (p.queued, "VALIDATING")]
        fail = job.body.get("suffix")
        if fail == "badval":
            marks.append((p.queued + p.validating, "FAILED_VALIDATION"))
        else:
            marks.append((p.queued + p.validating, "VALIDATED"))
            if job.started is not None:
                begin = max(job.started - job.created, p.queued + p.validating) + p.validated
                if job.body.get("auto_start") is False:
                    marks.append((job.started - job.created, "STARTED"))
                marks.append((begin, "RUNNING"))
                marks.append((begin + p.running, "FAILED" if fail == "fail" else "SUCCESS"))
        if job.cancelled is not None:
            cut = job.cancelled - job.created
            marks = [m for m in marks if m[0] < cut]
            marks += [(cut, "CANCELLATION_REQUESTED"), (cut + 0.02, "CANCELLED")]
        elapsed = now - job.created
        return [m for m in marks if m[0] <= elapsed]

    def _status(self, job: _Job) -> str:
        return self._timeline(job)[-1][1]

    def _summary(self, job: _Job) -> dict[str, Any]:
        body, status = job.body, self._status(job)
        hyper = {"learning_rate": 0.0001, "weight_decay": 0.1, "warmup_fraction": 0.05}
        hyper |= {"epochs": None, "training_steps": None, "seq_len": None, "fim_ratio": 0.9}
        hyper |= body["hyperparameters"]
        integrations = [
            {k: v for k, v in i.items() if k != "api_key"} for i in body.get("integrations") or []
        ]
        done = status == "SUCCESS"
        return {
            "id": job.id,
            "object": "job",
            "job_type": "completion",
            "auto_start": body.get("auto_start", True),
            "model": body["model"],
            "status": status,
            "created_at": job.created_at,
            "modified_at": job.created_at + 1,
            "training_files": [t["file_id"] for t in body.get("training_files") or []],
            "validation_files": body.get("validation_files") or [],
            "fine_tuned_model": self._model_name(job) if done else None,
            "suffix": body.get("suffix"),
            "integrations": integrations or None,
            "trained_tokens": 4321 if done else None,
            "metadata": {"expected_duration_seconds": 120, "cost": 0.5, "cost_currency": "EUR"},
            "hyperparameters": hyper,
            "repositories": [],
        }

    def _model_name(self, job: _Job) -> str:
        suffix = job.body.get("suffix")
        middle = f"{suffix}:" if suffix else ""
        return f"ft:{job.body['model']}:{middle}fake0123:20261124:{job.id[-8:]}"

    def _detail(self, job: _Job) -> dict[str, Any]:
        view = self._summary(job)
        timeline = self._timeline(job)
        events = []
        for offset, status in timeline:
            data: dict[str, Any] = {"status": status}
            if status == "FAILED":
                data["error"] = "Training diverged: loss became NaN at step 20."
            if status == "FAILED_VALIDATION":
                data["error"] = "Line 3: the last message must be from the assistant."
            events.append(
                {"name": "status-updated", "data": data, "created_at": job.created_at + offset}
            )
        view["events"] = events
        view["checkpoints"] = self._checkpoints(job, [s for _, s in timeline])
        return view

    def _checkpoints(self, job: _Job, seen: list[str]) -> list[dict[str, Any]]:
        if "RUNNING" not in seen:
            return []
        steps = [10, 20] if "SUCCESS" in seen or "FAILED" in seen else [10]
        return [
            {
                "step_number": step,
                "created_at": job.created_at + step,
                "metrics": {
                    "train_loss": 2.0 / (step / 10),
                    "valid_loss": 2.2 / (step / 10) if job.body.get("validation_files") else None,
                    "valid_mean_token_accuracy": 0.5 + step / 100,
                },
            }
            for step in steps
        ]

    def _list_jobs(self, query: dict[str, str]) -> Any:
        jobs = sorted(self.jobs.values(), key=lambda j: j.created, reverse=True)
        views = [self._summary(j) for j in jobs]
        for name in ("model", "suffix", "status"):
            if query.get(name):
                views = [v for v in views if v.get(name) == query[name]]
        if query.get("status") and query["status"] not in STATUSES:
            raise Reply(422, {"detail": [{"loc": ["query", "status"], "msg": "bad status"}]})
        return {"data": self._page(views, query), "object": "list", "total": len(views)}

    def _model(self, model_id: str) -> dict[str, Any]:
        for job in self.jobs.values():
            if self._status(job) == "SUCCESS" and self._model_name(job) == model_id:
                model: dict[str, Any] = job.extra.setdefault(
                    "model", self._model_record(job, model_id)
                )
                return model
        raise mistral_error(404, f"Model {model_id} not found")

    def _model_record(self, job: _Job, model_id: str) -> dict[str, Any]:
        return {
            "id": model_id,
            "object": "model",
            "created": job.created_at,
            "owned_by": "fake-org",
            "workspace_id": "fake-workspace",
            "root": job.body["model"],
            "root_version": "2407",
            "archived": False,
            "name": None,
            "description": None,
            "capabilities": {"completion_chat": True, "function_calling": True},
            "max_context_length": 32768,
            "aliases": [],
            "job": job.id,
            "model_type": "completion",
        }

    def _cancel(self, job: _Job) -> Any:
        if self._status(job) in ("SUCCESS", "FAILED", "FAILED_VALIDATION", "CANCELLED"):
            raise mistral_error(409, f"Job {job.id} has already ended")
        if job.cancelled is None:
            job.cancelled = time.monotonic()
        return self._detail(job)

    def _start(self, job: _Job) -> Any:
        if job.started is not None or self._status(job) != "VALIDATED":
            raise mistral_error(409, f"Job {job.id} is not waiting to be started")
        job.started = time.monotonic()
        return self._detail(job)
