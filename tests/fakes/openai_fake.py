"""A stateful loopback fake of OpenAI's files, uploads and fine-tuning endpoints.

Written from the public API reference (shared/specs/openai-openapi.yaml): the same paths, JSON
shapes, status codes, error bodies and cursor pagination. Jobs move through validating_files ->
queued -> running -> succeeded (or failed) as time passes. Every request is recorded.
"""

from __future__ import annotations

import itertools
import json
import re
import time
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
    within_token_limit,
)

PREFIX = "/v1"


def _error(
    status: int,
    message: str,
    *,
    param: str | None = None,
    code: str | None = None,
    kind: str = "invalid_request_error",
) -> Reply:
    return Reply(
        status, {"error": {"message": message, "type": kind, "param": param, "code": code}}
    )


@dataclass
class Phases:
    """Seconds spent validating, queued and running."""

    validating: float = 0.05
    queued: float = 0.05
    running: float = 0.2


@dataclass
class _Job:
    body: dict[str, Any]
    id: str
    created: float
    created_at: int
    cancelled: float | None = None
    paused: float | None = None
    paused_total: float = 0.0
    result_file: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _echo(model: str, messages: list[dict[str, Any]]) -> str:
    return f"echo: {messages[-1].get('content')}"


def _reasoning_model(model: str) -> bool:
    """o1 to o4 and gpt-5 (and their fine-tunes), which the API asks for a token limit as
    ``max_completion_tokens`` and samples at temperature 1 only."""
    base = model.split(":")[1] if model.startswith("ft:") else model
    return bool(re.match(r"o\d(-|$)|gpt-5(?!-chat)", base))


def _refuse_what_reasoning_models_refuse(body: dict[str, Any]) -> None:
    """The 400s the API answers a reasoning model's request with (their exact wording)."""
    if body.get("max_tokens") is not None:
        raise _error(
            400,
            "Unsupported parameter: 'max_tokens' is not supported with this model. "
            "Use 'max_completion_tokens' instead.",
            param="max_tokens",
            code="unsupported_parameter",
        )
    temperature = body.get("temperature")
    if temperature is not None and temperature != 1:
        raise _error(
            400,
            f"Unsupported value: 'temperature' does not support {temperature} with this "
            "model. Only the default (1) value is supported.",
            param="temperature",
            code="unsupported_value",
        )


def _completion_model(model: str) -> bool:
    """babbage-002, davinci-002 and their fine-tunes: OpenAI serves them on completions only."""
    return (model.split(":")[1] if model.startswith("ft:") else model) in (
        "babbage-002",
        "davinci-002",
    )


_CHOSEN = {"n_epochs": 3, "batch_size": 1, "learning_rate_multiplier": 1.8, "beta": 0.1}


class OpenAIFake(FakeServer):
    """The fake. ``fail_suffix`` makes jobs with that suffix fail in training."""

    def __init__(
        self,
        faults: Faults | None = None,
        phases: Phases | None = None,
        fail_suffix: str = "fail",
        process_delay: float = 0.0,
        port: int = 0,
        prefix: str = PREFIX,
    ) -> None:
        super().__init__(faults, port)
        self.prefix = prefix  # where the API is mounted: Fireworks serves it at /inference/v1
        self.phases = phases or Phases()
        self.fail_suffix = fail_suffix
        self.process_delay = process_delay
        self.files: dict[str, dict[str, Any]] = {}
        self.contents: dict[str, bytes] = {}
        self.uploads: dict[str, dict[str, Any]] = {}
        self.parts: dict[str, bytes] = {}
        self.jobs: dict[str, _Job] = {}
        self.counter = itertools.count(1)
        self.bytes_received = 0
        self.chat_delay = 0.0
        self.context_tokens: int | None = None  # a chat model's context, a token per 4 bytes
        self.chat_responder: Callable[[str, list[dict[str, Any]]], ChatReply] = _echo
        self.list_lag = 0.0  # seconds before a new job shows in the list
        self.ambiguous_creates = 0  # creates that make the job, then answer 502
        self.busy_creates = 0  # creates answered 503 before any job is made
        self.refuse_fine_tuning = False  # the organisation may not fine-tune (403)
        # OpenAI serves completions for its completion models alone; Together, every model
        self.completions_for_every_model = False

    @property
    def base_url(self) -> str:
        return self.url + self.prefix

    def _id(self, prefix: str) -> str:
        return f"{prefix}-{next(self.counter):06d}abcdef"

    # -- routing --

    def route(
        self, method: str, path: str, query: dict[str, str], body: Any, raw: bytes, headers: Any
    ) -> Any:
        if not path.startswith(self.prefix):
            raise _error(404, f"Invalid URL ({method} {path})")
        parts = path[len(self.prefix) :].strip("/").split("/")
        if method == "POST" and parts == ["chat", "completions"]:
            return self._chat(body)  # outside the lock: answers overlap, as a real API's do
        if method == "POST" and parts == ["completions"]:
            return self._completion(body)
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
                return self._create_file(raw, headers.get("Content-Type", ""))
            case "GET", ["files"]:
                return self._list_files(query)
            case "GET", ["files", file_id]:
                return self._file(file_id)
            case "GET", ["files", file_id, "content"]:
                self._file(file_id)
                return self.contents[file_id]
            case "DELETE", ["files", file_id]:
                self._file(file_id)
                del self.files[file_id]
                return {"id": file_id, "object": "file", "deleted": True}
            case "POST", ["uploads"]:
                return self._create_upload(body)
            case "POST", ["uploads", upload_id, "parts"]:
                return self._add_part(upload_id, raw, headers.get("Content-Type", ""))
            case "POST", ["uploads", upload_id, "complete"]:
                return self._complete_upload(upload_id, body)
            case "POST", ["uploads", upload_id, "cancel"]:
                upload = self._upload(upload_id)
                upload["status"] = "cancelled"
                return upload
            case "POST", ["fine_tuning", "jobs"]:
                return self._create_job(body)
            case "GET", ["fine_tuning", "jobs"]:
                return self._list_jobs(query)
            case "GET", ["fine_tuning", "jobs", job_id]:
                return self._view(self._job(job_id))
            case "POST", ["fine_tuning", "jobs", job_id, action]:
                return self._act(self._job(job_id), action)
            case "GET", ["fine_tuning", "jobs", job_id, "events"]:
                return self._events(self._job(job_id), query)
            case "GET", ["fine_tuning", "jobs", job_id, "checkpoints"]:
                return self._checkpoints(self._job(job_id))
        raise _error(404, f"Invalid URL ({method} /v1/{'/'.join(parts)})")

    # -- chat completions (for evaluation) --

    def _chat(self, body: dict[str, Any]) -> Any:
        if not body.get("model") or not body.get("messages"):
            raise _error(400, "'model' and 'messages' are required", param="messages")
        if _completion_model(body["model"]):  # as OpenAI answers (404, no param)
            raise _error(
                404,
                "This is not a chat model and thus not supported in the v1/chat/completions "
                "endpoint. Did you mean to use v1/completions?",
            )
        problem = tool_turn_problem(body["messages"])
        if problem:
            raise _error(400, problem, param="messages")
        if _reasoning_model(body["model"]):
            _refuse_what_reasoning_models_refuse(body)
        tokens = len(json.dumps(body["messages"])) // 4
        if self.context_tokens is not None and tokens > self.context_tokens:
            raise _error(  # OpenAI's wording
                400,
                f"This model's maximum context length is {self.context_tokens} tokens. However, "
                f"your messages resulted in {tokens} tokens. Please reduce the length of the "
                "messages.",
                param="messages",
                code="context_length_exceeded",
            )
        if self.chat_delay:
            time.sleep(self.chat_delay)
        message, finish = chat_reply(self.chat_responder(body["model"], body["messages"]), body)
        return {
            "id": self._id("chatcmpl"),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body["model"],
            "choices": [
                {
                    "index": 0,
                    "message": {"refusal": None, **message},
                    "finish_reason": finish,
                    "logprobs": None,
                }
            ],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
        }

    def _completion(self, body: dict[str, Any]) -> Any:
        """The legacy completions endpoint: the prompt's text in, the model's text out."""
        if not body.get("model") or not isinstance(body.get("prompt"), str):
            raise _error(400, "'model' and 'prompt' are required", param="prompt")
        if not (self.completions_for_every_model or _completion_model(body["model"])):
            raise _error(
                404,
                "This is a chat model and not supported in the v1/completions endpoint. "
                "Did you mean to use v1/chat/completions?",
            )
        reply = self.chat_responder(body["model"], [{"role": "user", "content": body["prompt"]}])
        assert isinstance(reply, str), "a completion model answers text"
        text, finish = within_token_limit(reply, body)
        return {
            "id": self._id("cmpl"),
            "object": "text_completion",
            "created": int(time.time()),
            "model": body["model"],
            "choices": [{"index": 0, "text": text, "finish_reason": finish, "logprobs": None}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
        }

    # -- files and uploads --

    def _new_file(self, name: str, data: bytes, purpose: str) -> dict[str, Any]:
        file_id = self._id("file")
        record = {
            "id": file_id,
            "object": "file",
            "bytes": len(data),
            "created_at": int(time.time()),
            "filename": name,
            "purpose": purpose,
            "status": "uploaded",
            "status_details": None,
            "_ready": time.monotonic() + self.process_delay,
        }
        if purpose == "fine-tune" and not data.strip():
            record["status_details"] = "File is empty."
        self.files[file_id] = record
        self.contents[file_id] = data
        return record

    def _public(self, record: dict[str, Any]) -> dict[str, Any]:
        if record["status"] == "uploaded" and time.monotonic() >= record["_ready"]:
            record["status"] = "error" if record["status_details"] else "processed"
        return {k: v for k, v in record.items() if not k.startswith("_")}

    def _create_file(self, raw: bytes, content_type: str) -> Any:
        fields = multipart_fields(raw, content_type)
        if "file" not in fields or "purpose" not in fields:
            raise _error(400, "Missing required parameter: 'file'.", param="file")
        name, data = fields["file"]
        self.bytes_received += len(data)
        return self._public(self._new_file(name or "upload", data, fields["purpose"][1].decode()))

    def _list_files(self, query: dict[str, str]) -> Any:
        items = [
            self._public(f)
            for f in self.files.values()
            if not query.get("purpose") or f["purpose"] == query["purpose"]
        ]
        items.sort(key=lambda f: f["id"], reverse=query.get("order", "desc") == "desc")
        return self._page(items, query, default_limit=10000)

    def _file(self, file_id: str) -> Any:
        if file_id not in self.files:
            raise _error(404, f"No such File object: {file_id}", param="id")
        return self._public(self.files[file_id])

    def _create_upload(self, body: dict[str, Any]) -> Any:
        for key in ("bytes", "filename", "mime_type", "purpose"):
            if key not in body:
                raise _error(400, f"Missing required parameter: '{key}'.", param=key)
        upload_id = self._id("upload")
        self.uploads[upload_id] = {
            "id": upload_id,
            "object": "upload",
            "bytes": body["bytes"],
            "created_at": int(time.time()),
            "filename": body["filename"],
            "purpose": body["purpose"],
            "status": "pending",
            "expires_at": int(time.time()) + 3600,
            "file": None,
            "_parts": [],
        }
        return self._upload_view(upload_id)

    def _upload(self, upload_id: str) -> dict[str, Any]:
        if upload_id not in self.uploads:
            raise _error(404, f"No such Upload: {upload_id}")
        return self.uploads[upload_id]

    def _upload_view(self, upload_id: str) -> Any:
        return {k: v for k, v in self.uploads[upload_id].items() if not k.startswith("_")}

    def _add_part(self, upload_id: str, raw: bytes, content_type: str) -> Any:
        upload = self._upload(upload_id)
        if upload["status"] != "pending":
            raise _error(400, f"Upload {upload_id} is {upload['status']}")
        _, data = multipart_fields(raw, content_type)["data"]
        self.bytes_received += len(data)
        part_id = self._id("part")
        self.parts[part_id] = b"" if len(data) > 1024 else data
        upload["_parts"].append((part_id, len(data)))
        return {
            "id": part_id,
            "object": "upload.part",
            "created_at": int(time.time()),
            "upload_id": upload_id,
        }

    def _complete_upload(self, upload_id: str, body: dict[str, Any]) -> Any:
        upload = self._upload(upload_id)
        sizes = dict(upload["_parts"])
        total = sum(sizes[p] for p in body["part_ids"])
        if total != upload["bytes"]:
            raise _error(400, f"Upload {upload_id} expected {upload['bytes']} bytes, got {total}")
        record = self._new_file(upload["filename"], b"{}\n", upload["purpose"])
        record["bytes"] = total
        upload["status"] = "completed"
        upload["file"] = self._public(record)
        return self._upload_view(upload_id)

    # -- jobs --

    def _create_job(self, body: dict[str, Any]) -> Any:
        if self.refuse_fine_tuning:
            raise _error(
                403,
                "Fine-tuning is not available for your organization.",
                code="fine_tuning_not_available",
            )
        if not isinstance(body.get("model"), str):
            raise _error(400, "Missing required parameter: 'model'.", param="model")
        training = body.get("training_file")
        if training not in self.files:
            raise _error(
                400,
                f"invalid training_file: {training}",
                param="training_file",
                code="invalid_training_file",
            )
        suffix = body.get("suffix")
        if suffix is not None and len(suffix) > 64:
            raise _error(400, "suffix must be at most 64 characters", param="suffix")
        metadata = body.get("metadata") or {}  # the spec's Metadata: 16 pairs, 64 / 512 chars
        if len(metadata) > 16 or any(len(k) > 64 or len(v) > 512 for k, v in metadata.items()):
            raise _error(
                400, "Invalid 'metadata': too many keys, or one too long", param="metadata"
            )
        if self.busy_creates > 0:
            self.busy_creates -= 1
            raise _error(503, "Service unavailable", kind="server_error")
        job_id = self._id("ftjob")
        self.jobs[job_id] = _Job(
            body=body, id=job_id, created=time.monotonic(), created_at=int(time.time())
        )
        if self.ambiguous_creates > 0:
            self.ambiguous_creates -= 1
            raise _error(502, "Bad gateway", kind="server_error")
        return self._view(self.jobs[job_id])

    def _job(self, job_id: str) -> _Job:
        if job_id not in self.jobs:
            raise _error(
                404,
                f"Could not find fine tune: {job_id}",
                param="fine_tune_id",
                code="fine_tune_not_found",
            )
        return self.jobs[job_id]

    def _elapsed(self, job: _Job) -> float:
        now = job.paused if job.paused is not None else time.monotonic()
        if job.cancelled is not None:
            now = min(now, job.cancelled)
        return now - job.created - job.paused_total

    def _finish(self, job: _Job) -> int:
        """When the running job will end, as a UNIX time: ``estimated_finish``."""
        p = self.phases
        left = p.validating + p.queued + p.running - self._elapsed(job)
        return int(time.time() + max(left, 0.0))

    def _status(self, job: _Job) -> str:
        p = self.phases
        elapsed = self._elapsed(job)
        if job.cancelled is not None:
            return "cancelled"
        if elapsed >= p.validating + p.queued + p.running:
            return "failed" if job.body.get("suffix") == self.fail_suffix else "succeeded"
        if job.paused is not None:
            return "paused"
        if elapsed >= p.validating + p.queued:
            return "running"
        return "queued" if elapsed >= p.validating else "validating_files"

    def _view(self, job: _Job) -> dict[str, Any]:
        status = self._status(job)
        body = job.body
        method = body.get("method") or {"type": "supervised", "supervised": {}}
        kind = method["type"]
        hyper = {
            "n_epochs": "auto",
            "batch_size": "auto",
            "learning_rate_multiplier": "auto",
            **((method.get(kind) or {}).get("hyperparameters") or {}),
        }
        if status not in ("validating_files", "queued"):  # the API reports what "auto" chose
            hyper = {k: _CHOSEN.get(k, v) if v == "auto" else v for k, v in hyper.items()}
        done = status == "succeeded"
        suffix = body.get("suffix") or ""
        if done and job.result_file is None:
            csv_text = "step,train_loss,train_accuracy,valid_loss,valid_mean_token_accuracy\n"
            csv_text += "".join(
                f"{s},{2.0 / s:.4f},{0.5 + s / 20:.3f},{2.1 / s:.4f},{0.45 + s / 20:.3f}\n"
                for s in range(1, 6)
            )
            record = self._new_file("step_metrics.csv", csv_text.encode(), "fine-tune-results")
            record["_ready"] = 0
            job.result_file = record["id"]
        return {
            "object": "fine_tuning.job",
            "id": job.id,
            "model": body["model"],
            "created_at": job.created_at,
            "finished_at": job.created_at + 1
            if status in ("succeeded", "failed", "cancelled")
            else None,
            "fine_tuned_model": f"ft:{body['model']}:org-fake:{suffix}:{job.id[-8:]}"
            if done
            else None,
            "organization_id": "org-fake",
            "result_files": [job.result_file] if done else [],
            "status": status,
            "validation_file": body.get("validation_file"),
            "training_file": body["training_file"],
            "hyperparameters": hyper,
            "trained_tokens": 1234 if done else None,
            "error": {
                "code": "invalid_training_data",
                "message": "Training diverged.",
                "param": None,
            }
            if status == "failed"
            else None,
            "integrations": body.get("integrations"),
            "seed": body.get("seed", 42),
            "estimated_finish": self._finish(job) if status == "running" else None,
            "method": {"type": kind, kind: {"hyperparameters": hyper}},
            "metadata": body.get("metadata"),
        }

    def _list_jobs(self, query: dict[str, str]) -> Any:
        wanted = {
            k[len("metadata[") : -1]: v for k, v in query.items() if k.startswith("metadata[")
        }
        shown = time.monotonic() - self.list_lag
        listed = [j for j in self.jobs.values() if j.created <= shown]
        jobs = [self._view(j) for j in sorted(listed, key=lambda j: j.id, reverse=True)]
        if wanted:
            jobs = [
                j for j in jobs if all((j["metadata"] or {}).get(k) == v for k, v in wanted.items())
            ]
        return self._page(jobs, query, default_limit=20)

    def _act(self, job: _Job, action: str) -> Any:
        status = self._status(job)
        now = time.monotonic()
        if action == "cancel":
            if status in ("succeeded", "failed", "cancelled"):
                raise _error(400, f"Job {job.id} has already completed")
            job.cancelled = now
        elif action == "pause":
            if status != "running":
                raise _error(400, f"Job {job.id} is {status}, only running jobs can be paused")
            job.paused = now
        elif action == "resume":
            if job.paused is None:
                raise _error(400, f"Job {job.id} is not paused")
            job.paused_total += now - job.paused
            job.paused = None
        else:
            raise _error(404, f"Invalid URL (POST /v1/fine_tuning/jobs/{job.id}/{action})")
        return self._view(job)

    def _events(self, job: _Job, query: dict[str, str]) -> Any:
        status = self._status(job)
        p = self.phases
        elapsed = self._elapsed(job)
        lines: list[tuple[float, str, str, dict[str, Any] | None]] = [
            (0, "info", f"Created fine-tuning job: {job.id}", None),
            (0, "info", "Validating training file", None),
        ]
        if elapsed >= p.validating:
            lines.append(
                (p.validating, "info", "Files validated, moving job to queued state", None)
            )
        if elapsed >= p.validating + p.queued:
            lines.append((p.validating + p.queued, "info", "Fine-tuning job started", None))
            steps = min(5, int((elapsed - p.validating - p.queued) / p.running * 5))
            for step in range(1, steps + 1):
                lines.append(
                    (
                        p.validating + p.queued + step * p.running / 5,
                        "info",
                        f"Step {step}/5: training loss={2.0 / step:.2f}",
                        {"step": step, "train_loss": 2.0 / step},
                    )
                )
        final = {
            "succeeded": ("info", "The job has successfully completed"),
            "failed": ("error", "Training diverged."),
            "cancelled": ("info", "Fine-tuning job cancelled"),
        }
        if status in final:
            lines.append((elapsed, *final[status], None))
        events = [
            {
                "object": "fine_tuning.job.event",
                "id": f"ftevent-{job.id[-8:]}-{i:03d}",
                "created_at": job.created_at + int(at),
                "level": level,
                "message": message,
                "data": data,
                "type": "metrics" if data else "message",
            }
            for i, (at, level, message, data) in enumerate(lines)
        ]
        events.reverse()  # the API lists newest first
        return self._page(events, query, default_limit=20)

    def _checkpoints(self, job: _Job) -> Any:
        if self._status(job) != "succeeded":
            return {
                "object": "list",
                "data": [],
                "first_id": None,
                "last_id": None,
                "has_more": False,
            }
        model = self._view(job)["fine_tuned_model"]
        data = [
            {
                "object": "fine_tuning.job.checkpoint",
                "id": f"ftckpt-{job.id[-6:]}-{step}",
                "created_at": job.created_at,
                "fine_tuned_model_checkpoint": f"{model}:ckpt-step-{step}",
                "fine_tuning_job_id": job.id,
                "step_number": step,
                "metrics": {"step": step, "train_loss": 2.0 / step, "valid_loss": 2.1 / step},
            }
            for step in (5, 3)
        ]
        return {
            "object": "list",
            "data": data,
            "first_id": data[0]["id"],
            "last_id": data[-1]["id"],
            "has_more": False,
        }

    @staticmethod
    def _page(items: list[dict[str, Any]], query: dict[str, str], default_limit: int) -> Any:
        limit = int(query.get("limit", default_limit))
        after = query.get("after")
        if after:
            ids = [i["id"] for i in items]
            items = items[ids.index(after) + 1 :] if after in ids else []
        page = items[:limit]
        return {
            "object": "list",
            "data": page,
            "has_more": len(items) > limit,
            "first_id": page[0]["id"] if page else None,
            "last_id": page[-1]["id"] if page else None,
        }

    def summary(self) -> dict[str, Any]:
        names = [f["filename"] for f in self.files.values() if f["purpose"] == "fine-tune"]
        keys = [(j.body.get("metadata") or {}).get("finetune_key") for j in self.jobs.values()]
        return {
            "files": len(names),
            "distinct_files": len(set(names)),
            "jobs": len(keys),
            "distinct_keys": len(set(keys)),
        }


def dumps(value: Any) -> str:
    return json.dumps(value)
