"""A stateful loopback fake of Together AI's files and fine-tuning endpoints.

Written from Together's OpenAPI spec (shared/specs/together-openapi.yaml) and the upload flow
of the ``together`` SDK, which the spec does not describe yet: ``POST /v1/files`` with a
checksum answers a 302 to a signed URL (or a 409 naming the file when that content is there),
the SDK PUTs the bytes there, then ``POST /v1/files/{id}/preprocess`` validates them. Jobs move
pending -> queued -> running -> completed as time passes. Every request is recorded.
"""

from __future__ import annotations

import itertools
import json
import math
import time
import uuid
from dataclasses import dataclass
from typing import Any

from ._server import FakeServer, Faults, Reply, multipart_fields

PREFIX = "/v1"
MODELS = {
    "meta-llama/Meta-Llama-3.1-8B-Instruct-Reference": 131072,
    "Qwen/Qwen3-8B": 32768,
}


def _error(status: int, message: str, kind: str = "invalid_request_error") -> Reply:
    return Reply(status, {"error": {"message": message, "type": kind, "code": None}})


@dataclass
class Phases:
    """Seconds spent pending, queued and running."""

    pending: float = 0.03
    queued: float = 0.03
    running: float = 0.2


class TogetherFake(FakeServer):
    """The fake; ``user_error_suffix`` makes jobs with that suffix end in ``user_error``."""

    api_key = "together-test-key-0123456789"

    def __init__(self, faults: Faults | None = None, phases: Phases | None = None) -> None:
        super().__init__(faults)
        self.phases = phases or Phases()
        self.counter = itertools.count(1)
        self.files: dict[str, dict[str, Any]] = {}
        self.pending_files: dict[str, dict[str, Any]] = {}
        self.contents: dict[str, bytes] = {}
        self.jobs: dict[str, dict[str, Any]] = {}
        self.user_error_suffix = "bad"
        self.trained_only_as: dict[str, str] = {}  # model -> "lora_training" or "full_training"

    def authorized(self, headers: Any) -> bool:
        return True  # checked per route: the signed upload URL carries no key

    def route(
        self, method: str, path: str, query: dict[str, str], body: Any, raw: bytes, headers: Any
    ) -> Any:
        if method == "PUT" and path.startswith("/upload/"):
            return self._receive(path.rsplit("/", 1)[1], raw)
        if headers.get("Authorization") != f"Bearer {self.api_key}":
            raise _error(401, "Invalid API key provided", "authentication_error")
        if not path.startswith(PREFIX):
            raise _error(404, f"no route {method} {path}")
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
                return self._start_upload(raw, headers.get("Content-Type", ""))
            case "POST", ["files", file_id, "preprocess"]:
                return self._preprocess(file_id)
            case "GET", ["files"]:
                return {"data": list(self.files.values()), "object": "list"}
            case "GET", ["files", file_id]:
                return self._file(file_id)
            case "GET", ["fine-tunes", "models", "limits"]:
                return self._limits(query.get("model_name", ""))
            case "POST", ["fine-tunes", "estimate-price"]:
                return self._quote(body)
            case "POST", ["fine-tunes"]:
                return self._create(body)
            case "GET", ["fine-tunes"]:
                return {"data": [self._view(j) for j in self.jobs.values()]}
            case "GET", ["fine-tunes", job_id]:
                return self._view(self._job(job_id))
            case "POST", ["fine-tunes", job_id, "cancel"]:
                job = self._job(job_id)
                job["_cancelled"] = job.get("_cancelled") or time.monotonic()
                return self._view(job)
            case "GET", ["fine-tunes", job_id, "events"]:
                return {"data": self._events(self._job(job_id))}
            case "GET", ["fine-tunes", job_id, "checkpoints"]:
                return {"data": self._checkpoints(self._job(job_id))}
            case "GET", ["fine-tunes", job_id, "metrics"]:
                return {"metrics": self._metrics(self._job(job_id))}
        raise _error(404, f"no route {method} /v1/{'/'.join(parts)}")

    # -- files: checksum, 302 to a signed URL, PUT, preprocess --

    def _start_upload(self, raw: bytes, content_type: str) -> Any:
        fields = {k: v[1].decode() for k, v in multipart_fields(raw, content_type).items()}
        for known in self.files.values():
            if known["_checksum"] == fields.get("checksum"):
                raise Reply(409, {"file_id": known["id"], "message": "file already exists"})
        file_id = f"file-{uuid.uuid4()}"
        self.pending_files[file_id] = {"name": fields.get("file_name"), **fields}
        headers = {"Location": f"{self.url}/upload/{file_id}", "X-Together-File-Id": file_id}
        raise Reply(302, {}, headers)

    def _receive(self, file_id: str, raw: bytes) -> Any:
        if file_id not in self.pending_files:
            raise _error(404, "unknown upload")
        self.contents[file_id] = raw
        return {"ok": True}

    def _preprocess(self, file_id: str) -> Any:
        pending = self.pending_files.pop(file_id, None)
        if pending is None or file_id not in self.contents:
            raise _error(404, f"no uploaded content for {file_id}")
        data = self.contents[file_id]
        lines = [line for line in data.splitlines() if line.strip()]
        bad = next((i for i, line in enumerate(lines) if not _is_object(line)), None)
        report: dict[str, Any] = {"valid": bad is None, "nlines": len(lines), "file_id": file_id}
        if bad is not None:
            report |= {
                "error": f"line {bad + 1} is not a JSON object",
                "error_type": "INVALID_FORMAT",
            }
        self.files[file_id] = {
            "id": file_id,
            "object": "file",
            "created_at": int(time.time()),
            "filename": pending["name"],
            "bytes": len(data),
            "purpose": pending.get("purpose", "fine-tune"),
            "FileType": "jsonl",
            "Processed": True,
            "processing_status": "COMPLETED" if bad is None else "INVALID_FORMAT",
            "validation_report": report,
            "_checksum": pending.get("checksum"),
        }
        return self._file(file_id)

    def _file(self, file_id: str) -> Any:
        if file_id not in self.files:
            raise _error(404, f"file {file_id} not found")
        return {k: v for k, v in self.files[file_id].items() if not k.startswith("_")}

    # -- jobs --

    def _limits(self, model: str) -> Any:
        if model not in MODELS:
            raise _error(404, f"model {model} is not available for fine-tuning")
        limits: dict[str, Any] = {
            "model_name": model,
            "max_num_epochs": 20,
            "max_num_evals": 100,
            "max_learning_rate": 1.0,
            "min_learning_rate": 1e-8,
            "max_seq_length_sft": MODELS[model],
            "max_seq_length_dpo": MODELS[model] // 2,
            "lora_training": {
                "max_batch_size": 64,
                "max_batch_size_dpo": 32,
                "min_batch_size": 8,
                "max_rank": 64,
                "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"],
            },
            "full_training": {"max_batch_size": 32, "max_batch_size_dpo": 16, "min_batch_size": 8},
            "supports_vision": False,
            "supports_tools": True,
            "supports_reasoning": False,
            "merge_output_lora": True,
        }
        only = self.trained_only_as.get(model)
        if only is not None:  # a model trained one way only has no limits for the other
            del limits[({"lora_training", "full_training"} - {only}).pop()]
        return limits

    def _quote(self, body: dict[str, Any]) -> Any:
        training = self.files.get(body.get("training_file", ""))
        if training is None:
            return {"estimation_available": False, "unavailable_reason": "train_file_not_validated"}
        tokens = training["bytes"] // 4 * int(body.get("n_epochs") or 1)
        evaluated = 0
        if body.get("validation_file"):
            validation = self.files.get(body["validation_file"])
            if validation is None:
                raise _error(400, f"validation_file {body['validation_file']} not found")
            evaluated = validation["bytes"] // 4 * int(body.get("n_evals") or 0)
        return {
            "estimation_available": True,
            "estimated_total_price": round((tokens + evaluated) / 1e6 * 0.48, 6),
            "allowed_to_proceed": True,
            "user_limit": 100.0,
            "estimated_train_token_count": tokens,
            "estimated_eval_token_count": evaluated,
        }

    def _create(self, body: dict[str, Any]) -> Any:
        if body.get("model") not in MODELS:
            raise _error(400, f"model {body.get('model')} is not available for fine-tuning")
        if body.get("training_file") not in self.files:
            raise _error(400, f"training_file {body.get('training_file')} not found")
        suffix = body.get("suffix")
        if suffix is not None and len(suffix) > 40:
            raise _error(400, "suffix must be at most 40 characters")
        job_id = f"ft-{uuid.uuid4()}"
        now = time.monotonic()
        self.jobs[job_id] = {**body, "id": job_id, "_created": now, "_at": time.time()}
        return self._view(self.jobs[job_id])

    def _job(self, job_id: str) -> dict[str, Any]:
        if job_id not in self.jobs:
            raise _error(404, f"fine-tune job {job_id} not found")
        return self.jobs[job_id]

    def _status(self, job: dict[str, Any]) -> str:
        p = self.phases
        now = job.get("_cancelled") or time.monotonic()
        elapsed = now - job["_created"]
        if job.get("_cancelled"):
            return "cancelled"
        if elapsed >= p.pending + p.queued + p.running:
            return "user_error" if job.get("suffix") == self.user_error_suffix else "completed"
        if elapsed >= p.pending + p.queued:
            return "running"
        return "queued" if elapsed >= p.pending else "pending"

    def _view(self, job: dict[str, Any]) -> dict[str, Any]:
        status = self._status(job)
        suffix = job.get("suffix") or ""
        output = f"fakeuser/{job['model'].split('/')[-1]}-{suffix}-{job['id'][3:11]}"
        view = {k: v for k, v in job.items() if not k.startswith("_") and not k.startswith("wandb")}
        view.pop("suffix", None)  # the API's job has no suffix field: it is in the output name
        view.pop("random_seed", None)  # nor a seed (FinetuneResponse in the spec)
        return {
            **view,
            "status": status,
            "user_id": "fake-user",
            "created_at": _iso(job["_at"]),
            "updated_at": _iso(time.time()),
            "model_output_name": output,
            "token_count": 4321 if status == "completed" else None,
            "events": self._events(job),
            "progress": self._progress(job),
        }

    def _progress(self, job: dict[str, Any]) -> dict[str, Any]:
        """``FineTuneProgress``: the seconds to the end of the phase the job is in."""
        p = self.phases
        if job.get("_cancelled"):
            return {"estimate_available": False, "seconds_remaining": 0}
        elapsed = time.monotonic() - job["_created"]
        for end in itertools.accumulate((p.pending, p.queued, p.running)):
            if elapsed < end:
                return {"estimate_available": True, "seconds_remaining": math.ceil(end - elapsed)}
        return {"estimate_available": False, "seconds_remaining": 0}

    def _events(self, job: dict[str, Any]) -> list[dict[str, Any]]:
        status = self._status(job)
        rows = [("job_pending", "info", "Fine-tune job created")]
        if status in ("running", "completed", "user_error"):
            rows.append(("job_start", "info", "Training started"))
        if status == "completed":
            rows.append(("job_complete", "info", "Training completed"))
        if status == "user_error":
            rows.append(("job_error", "error", "Your dataset has no assistant messages"))
        if status == "cancelled":
            rows.append(("job_cancelled", "info", "Job cancelled"))
        return [
            {
                "object": "fine-tune-event",
                "created_at": _iso(job["_at"] + i),
                "level": level if i % 2 == 0 else f"legacy_i{level}",
                "message": message,
                "type": kind,
                "step": i,
            }
            for i, (kind, level, message) in enumerate(rows)
        ]

    def _checkpoints(self, job: dict[str, Any]) -> list[dict[str, Any]]:
        if self._status(job) != "completed":
            return []
        return [
            {
                "step": step,
                "path": f"s3://fake/{job['id']}/step-{step}",
                "created_at": _iso(job["_at"]),
                "checkpoint_type": "intermediate",
            }
            for step in (10, 20)
        ]

    def _metrics(self, job: dict[str, Any]) -> list[dict[str, float]]:
        steps = 5 if self._status(job) == "completed" else 0
        return [
            {"step": s, "train_loss": 2.0 / s, "eval_loss": 2.2 / s, "lr": 1e-5}
            for s in range(1, steps + 1)
        ]


def _is_object(line: bytes) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


def _iso(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))
