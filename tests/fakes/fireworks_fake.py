"""A stateful loopback fake of Fireworks AI's datasets, supervised fine-tuning jobs and DPO jobs.

Written from Fireworks' API reference (docs.fireworks.ai) and the ``fireworks-ai`` SDK's types
(no spec may be copied here): account-scoped routes, ``{resource}:{verb}`` custom methods, the
client choosing resource ids, Google-style errors (``ALREADY_EXISTS`` as a 409), page tokens.
Jobs move CREATING -> VALIDATING -> RUNNING (jobProgress) -> COMPLETED. A DPO job
(``dpoJobs``, the SDK's ``DpoJob``) nests its settings in ``trainingConfig`` and ``lossConfig``,
has no jobProgress, gives its metrics file through ``:getMetricsFileEndpoint``, and, as the API
gateway does for any message, refuses a field its resource does not have.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ._server import FakeServer, Faults, Raw, Reply, multipart_fields

ACCOUNT = "fake-account"
BASE_MODELS = {
    "accounts/fireworks/models/llama-v3p1-8b-instruct",
    "accounts/fireworks/models/qwen3-8b",
}
SERVED_ONLY = {"accounts/fireworks/models/deepseek-v3"}  # a model it serves, never tunes


SIGNATURE = "5e1f0a9b7c3d2e4f6a8b0c1d3e5f7a9b"
# the DpoJob fields a client may send (fireworks-ai's DpoJobCreateParams)
DPO_FIELDS = {
    "dataset",
    "displayName",
    "trainingConfig",
    "lossConfig",
    "wandbConfig",
    "awsS3Config",
    "azureBlobStorageConfig",
    "rendererHuggingFaceRepoId",
    "reservationTarget",
    "useReservation",
}
LOSS_METHODS = {"METHOD_UNSPECIFIED", "GRPO", "DAPO", "DPO", "ORPO", "GSPO_TOKEN"}


def _error(status: int, message: str, code: str) -> Reply:
    return Reply(status, {"error": {"code": status, "message": message, "status": code}})


@dataclass
class Phases:
    """Seconds spent creating, validating and running."""

    creating: float = 0.03
    validating: float = 0.03
    running: float = 0.2


class FireworksFake(FakeServer):
    """The fake. ``displayName == "fail"`` makes a job fail."""

    api_key = "fw-test-key-0123456789abcdef"

    def __init__(self, faults: Faults | None = None, phases: Phases | None = None) -> None:
        super().__init__(faults)
        self.phases = phases or Phases()
        self.datasets: dict[str, dict[str, Any]] = {}
        self.contents: dict[str, bytes] = {}
        self.signed_puts: dict[str, bytes] = {}
        self.jobs: dict[str, dict[str, Any]] = {}
        self.dpo_jobs: dict[str, dict[str, Any]] = {}

    def unauthorized(self) -> Any:
        return {"error": {"code": 401, "message": "invalid API key", "status": "UNAUTHENTICATED"}}

    def route(
        self, method: str, path: str, query: dict[str, str], body: Any, raw: bytes, headers: Any
    ) -> Any:
        if path.startswith("/metrics/"):
            return self._metrics_file(path.rsplit("/", 1)[1].removesuffix(".jsonl"))
        if method == "PUT" and path.startswith("/signed/"):
            with self.lock:  # a signed URL carries no key
                self.signed_puts[path.split("/")[2]] = raw
            return {}
        if headers.get("Authorization") != f"Bearer {self.api_key}":
            raise Reply(401, self.unauthorized())
        if method == "GET" and path.startswith("/v1/accounts/") and "/models/" in path:
            return self._model(path.removeprefix("/v1/"))
        prefix = f"/v1/accounts/{ACCOUNT}/"
        if not path.startswith(prefix):
            raise _error(404, f"no route {method} {path}", "NOT_FOUND")
        collection, _, rest = path[len(prefix) :].partition("/")
        name, _, verb = rest.partition(":")
        if ":" in collection:
            collection, verb = collection.split(":", 1)
        with self.lock:
            if collection == "datasets":
                return self._datasets(method, name, verb, query, body, raw, headers)
            if collection == "supervisedFineTuningJobs":
                return self._jobs(method, name, verb, query, body)
            if collection == "dpoJobs":
                return self._dpo(method, name, verb, query, body)
        raise _error(404, f"no route {method} {path}", "NOT_FOUND")

    def _model(self, name: str) -> Any:
        """A ``Model`` resource, as ``GET /v1/accounts/{account}/models/{model}`` gives it
        (the fields a client reads: ``tunable``, ``supportsLora``, ``contextLength``)."""
        if name not in BASE_MODELS | SERVED_ONLY:
            raise _error(404, f"model {name} not found", "NOT_FOUND")
        tunable = name in BASE_MODELS
        return {
            "name": name,
            "state": "READY",
            "kind": "HF_BASE_MODEL",
            "tunable": tunable,
            "supportsLora": tunable,
            "contextLength": 131072,
            "baseModelDetails": {"tunable": tunable, "parameterCount": "8030261248"},
        }

    # -- datasets --

    def _datasets(
        self,
        method: str,
        name: str,
        verb: str,
        query: dict[str, str],
        body: Any,
        raw: bytes,
        headers: Any,
    ) -> Any:
        if method == "POST" and not name:
            dataset_id = body["datasetId"]
            if dataset_id[:1].isdigit():
                raise _error(400, "datasetId must not start with a digit", "INVALID_ARGUMENT")
            if dataset_id in self.datasets:
                raise _error(409, f"dataset {dataset_id} already exists", "ALREADY_EXISTS")
            count = body["dataset"].get("exampleCount")
            if not isinstance(count, str):
                raise _error(400, "exampleCount must be a string (int64)", "INVALID_ARGUMENT")
            self.datasets[dataset_id] = {
                "name": f"accounts/{ACCOUNT}/datasets/{dataset_id}",
                "displayName": body["dataset"].get("displayName"),
                "exampleCount": count,
                "state": "UPLOADING",
                "createTime": _iso(time.time()),
            }
            return self.datasets[dataset_id]
        dataset = self.datasets.get(name)
        if dataset is None:
            raise _error(404, f"dataset {name} not found", "NOT_FOUND")
        if method == "GET" and not verb:
            return dataset
        if method == "POST" and verb == "upload":
            _, data = multipart_fields(raw, headers.get("Content-Type", ""))["file"]
            return self._take(name, dataset, data)
        if method == "POST" and verb == "getUploadEndpoint":
            sizes = body.get("filenameToSize") or {}
            signed = f"?X-Amz-Expires=900&X-Amz-Signature={SIGNATURE}"
            urls = {f: f"{self.url}/signed/{name}/{f}{signed}" for f in sizes}
            return {"filenameToSignedUrls": urls}
        if method == "POST" and verb == "validateUpload":
            if name not in self.signed_puts:
                raise _error(400, f"nothing was uploaded for dataset {name}", "FAILED_PRECONDITION")
            self._take(name, dataset, self.signed_puts[name])
            return {}
        raise _error(404, f"no route {method} datasets/{name}:{verb}", "NOT_FOUND")

    def _take(self, name: str, dataset: dict[str, Any], data: bytes) -> Any:
        lines = [line for line in data.splitlines() if line.strip()]
        if len(lines) < 3:
            raise _error(400, "a dataset needs at least 3 examples", "INVALID_ARGUMENT")
        self.contents[name] = data
        dataset["state"] = "READY"
        return {"filenameToSignedUrls": {}}

    # -- jobs --

    def _jobs(self, method: str, name: str, verb: str, query: dict[str, str], body: Any) -> Any:
        if method == "POST" and not name and verb == "estimateCost":
            dataset = self.datasets.get(str(body.get("dataset", "")).rsplit("/", 1)[-1])
            tokens = (
                len(self.contents.get(dataset["name"].rsplit("/", 1)[-1], b"")) // 4
                if dataset
                else 0
            )
            price = tokens * int(body.get("epochs") or 1) / 1e6 * 0.5
            return {
                "estimatedCost": {
                    "currencyCode": "USD",
                    "units": str(int(price)),
                    "nanos": int(price % 1 * 1e9),
                }
            }
        args = (method, name, verb, query, body)
        return self._collection(*args, self.jobs, "supervisedFineTuningJob", self._create)

    def _collection(
        self,
        method: str,
        name: str,
        verb: str,
        query: dict[str, str],
        body: Any,
        jobs: dict[str, dict[str, Any]],
        resource: str,
        create: Callable[[str, dict[str, Any]], Any],
    ) -> Any:
        """One job collection's routes (``resource`` + "s"): create under ``?{resource}Id=``,
        list, get, ``:cancel`` and ``:resume``."""
        if method == "POST" and not name:
            return create(query.get(f"{resource}Id", ""), body)
        if method == "GET" and not name:
            return self._list(query, jobs, f"{resource}s")
        job = jobs.get(name)
        if job is None:
            raise _error(404, f"{resource} {name} not found", "NOT_FOUND")
        if method == "GET" and not verb:
            return self._view(job)
        if method == "POST" and verb in ("cancel", "resume"):
            return self._act(job, verb)
        raise _error(404, f"no route {method} {resource}s/{name}:{verb}", "NOT_FOUND")

    def _refuse_to_create(
        self, job_id: str, jobs: dict[str, Any], resource: str, base_model: Any, dataset: Any
    ) -> str:
        """What both kinds of job refuse: a taken id, a base model that cannot be tuned, a
        dataset that is not READY; the dataset's id."""
        if job_id in jobs:
            raise _error(409, f"{resource} {job_id} already exists", "ALREADY_EXISTS")
        if base_model not in BASE_MODELS:
            raise _error(400, f"base model {base_model} cannot be tuned", "INVALID_ARGUMENT")
        dataset_id = str(dataset or "").rsplit("/", 1)[-1]
        if self.datasets.get(dataset_id, {}).get("state") != "READY":
            raise _error(400, f"dataset {dataset} is not READY", "FAILED_PRECONDITION")
        return dataset_id

    def _create(self, job_id: str, body: dict[str, Any]) -> Any:
        if not job_id or job_id[:1].isdigit():
            raise _error(400, "supervisedFineTuningJobId is required", "INVALID_ARGUMENT")
        resource = "supervisedFineTuningJob"
        self._refuse_to_create(
            job_id, self.jobs, resource, body.get("baseModel"), body.get("dataset")
        )
        self.jobs[job_id] = {
            **body,
            "_id": job_id,
            "_created": time.monotonic(),
            "_at": time.time(),
        }
        return self._view(self.jobs[job_id])

    # -- DPO jobs --

    def _dpo(self, method: str, name: str, verb: str, query: dict[str, str], body: Any) -> Any:
        if method == "GET" and verb == "getMetricsFileEndpoint" and name in self.dpo_jobs:
            return {"signedUrl": f"{self.url}/metrics/{name}.jsonl"}
        args = (method, name, verb, query, body)
        return self._collection(*args, self.dpo_jobs, "dpoJob", self._create_dpo)

    def _act(self, job: dict[str, Any], verb: str) -> Any:
        """``:cancel`` (stops the job where it is) or ``:resume`` (nothing to do here)."""
        if verb == "cancel":
            job["_cancelled"] = job.get("_cancelled") or time.monotonic()
        return {}

    def _create_dpo(self, job_id: str, body: dict[str, Any]) -> Any:
        unknown = sorted(set(body) - DPO_FIELDS)
        if unknown:
            raise _error(400, f'unknown field "{unknown[0]}" in DpoJob', "INVALID_ARGUMENT")
        config = body.get("trainingConfig") or {}
        dataset = self._refuse_to_create(
            job_id, self.dpo_jobs, "dpoJob", config.get("baseModel"), body.get("dataset")
        )
        loss = body.get("lossConfig") or {}
        beta = (loss.get("dpo") or {}).get("beta", 0.1)
        if loss.get("method", "DPO") not in LOSS_METHODS or not 0 < beta < 0.5:
            raise _error(400, f"invalid lossConfig {loss}", "INVALID_ARGUMENT")
        for line in self.contents[dataset].splitlines():
            row = json.loads(line)
            if len(row.get("preferred_output") or []) != 1 or "input" not in row:
                raise _error(400, "DPO rows are one-turn preference pairs", "INVALID_ARGUMENT")
        created = {"_id": job_id or f"dpo{len(self.dpo_jobs)}", "_created": time.monotonic()}
        self.dpo_jobs[created["_id"]] = {**body, **created, "_at": time.time(), "_dpo": True}
        return self._view(self.dpo_jobs[created["_id"]])

    def _state(self, job: dict[str, Any]) -> tuple[str, int]:
        p = self.phases
        now = job.get("_cancelled") or time.monotonic()
        elapsed = now - job["_created"]
        running = elapsed - p.creating - p.validating
        percent = max(0, min(100, int(running / p.running * 100)))
        if job.get("_cancelled"):
            return "JOB_STATE_CANCELLED", percent
        if running >= p.running:
            return (
                "JOB_STATE_FAILED" if job.get("displayName") == "fail" else "JOB_STATE_COMPLETED"
            ), 100
        if running >= 0:
            return "JOB_STATE_RUNNING", percent
        return ("JOB_STATE_VALIDATING" if elapsed >= p.creating else "JOB_STATE_CREATING"), 0

    def _view(self, job: dict[str, Any]) -> dict[str, Any]:
        state, percent = self._state(job)
        view = {k: v for k, v in job.items() if not k.startswith("_") and k != "wandbConfig"}
        collection = "dpoJobs" if job.get("_dpo") else "supervisedFineTuningJobs"
        view |= {
            "name": f"accounts/{ACCOUNT}/{collection}/{job['_id']}",
            "state": state,
            "createTime": _iso(job["_at"]),
        }
        if not job.get("_dpo"):
            view["jobProgress"] = {"percent": percent, "epoch": 1}
            view["metricsFileSignedUrl"] = f"{self.url}/metrics/{job['_id']}.jsonl"
        if state == "JOB_STATE_FAILED":
            view["status"] = {
                "code": "INVALID_ARGUMENT",
                "message": "the dataset has no assistant turns",
            }
        if "wandbConfig" in job:  # the API reference's job resource shows its apiKey too
            view["wandbConfig"] = dict(job["wandbConfig"])
        return view

    def _list(self, query: dict[str, str], jobs: dict[str, dict[str, Any]], key: str) -> Any:
        views = [self._view(j) for j in sorted(jobs.values(), key=lambda j: j["_at"], reverse=True)]
        size = int(query.get("pageSize", 50))
        start = int(query.get("pageToken") or 0)
        page = views[start : start + size]
        token = str(start + size) if start + size < len(views) else ""
        return {key: page, "nextPageToken": token, "totalSize": len(views)}

    def _metrics_file(self, job_id: str) -> Any:
        job = self.jobs.get(job_id) or self.dpo_jobs.get(job_id)
        if job is None:
            raise Reply(404, {"error": "no such metrics file"})
        steps = self._state(job)[1] // 20
        lines = [
            json.dumps({"step": s, "loss": 2.0 / s, "eval_loss": 2.1 / s})
            for s in range(1, steps + 1)
        ]
        return Raw("\n".join(lines).encode(), "application/jsonl")

    def authorized(self, headers: Any) -> bool:
        return True  # checked in route() for API paths; the signed metrics URL carries no key

    def summary(self) -> dict[str, int]:
        return {"datasets": len(self.datasets), "jobs": len(self.jobs) + len(self.dpo_jobs)}


def _iso(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))
