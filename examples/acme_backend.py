"""A complete third-party backend for a made-up provider, "Acme Tune", in one small file.

Its API: ``POST /v1/files`` (JSONL in the body, ``?name=``), ``GET /v1/files?name=``,
``POST /v1/tunes``, ``GET /v1/tunes/{id}``, ``GET /v1/tunes?client_key=``,
``POST /v1/tunes/{id}/cancel``; bearer-key auth. A package makes it ``Tuner("acme")`` with
one entry point: ``[project.entry-points."finetune.backends"] acme = "acme_backend:AcmeBackend"``.
"""

from __future__ import annotations

import os
from typing import Any

import httpx

from finetune.backends import BaseBackend, Capabilities, JobRequest
from finetune.backends.http import (
    account_identity,
    call_with_retries,
    connection_error,
    error_for_status,
    file_name,
    json_answer,
    parses,
    retrying,
    unix_time,
    written,
)
from finetune.types import FileRef, Job, JobStatus

NAME = "acme"
STATUS = {"pending": JobStatus.QUEUED, "training": JobStatus.RUNNING, "done": JobStatus.SUCCEEDED}
STATUS |= {"error": JobStatus.FAILED, "stopped": JobStatus.CANCELLED}


@parses(NAME, "tune")
def job_from_payload(data: dict[str, Any]) -> Job:
    """An Acme tune as a finetune ``Job`` (an odd payload becomes a ``ServerError``)."""
    return Job(
        id=data["id"],
        backend=NAME,
        base_model=data["model"],
        status=STATUS.get(data["state"], JobStatus.RUNNING),
        created_at=unix_time(data.get("created")),
        fine_tuned_model=data.get("output_model"),
        training_file=data.get("file"),
        metadata={"finetune_key": data.get("client_key") or ""},
        raw=data,
    )


class AcmeBackend(BaseBackend):
    """Fine-tuning on Acme Tune: ``Tuner("acme", model="acme-small", api_key=...)``."""

    name = NAME
    capabilities = Capabilities(example_kinds=frozenset({"chat"}), max_suffix_length=32)

    def __init__(self, *, api_key: str | None = None, base_url: str | None = None) -> None:
        self._key = api_key or os.environ.get("ACME_API_KEY")
        self._url = base_url or os.environ.get("ACME_BASE_URL") or "https://api.acme.test"
        self._http: httpx.AsyncClient | None = None

    @property
    def identity(self) -> str:
        """Base URL and a digest of the key: the registry's hints stay per account."""
        return account_identity(self._url, key=self._key)

    async def _send(self, method: str, path: str, **kwargs: Any) -> Any:
        """One request: its JSON, or finetune's error for the status (key never shown)."""
        self._http = self._http or httpx.AsyncClient(base_url=self._url, timeout=30)
        headers = {"Authorization": f"Bearer {self._key}"}
        try:
            answer = await self._http.request(method, path, headers=headers, **kwargs)
        except httpx.HTTPError as exc:
            error = connection_error(NAME, exc, self._key)
        else:
            if answer.status_code >= 400:
                raise error_for_status(
                    NAME,
                    answer.status_code,
                    answer.text,
                    answer.headers,
                    self._key,
                    job_call="/tunes/" in path,
                )
            return json_answer(NAME, answer.status_code, answer.text)
        raise error

    async def _get(self, path: str, **kwargs: Any) -> Any:
        return await call_with_retries(lambda: self._send("GET", path, **kwargs))

    async def upload(self, dataset: Any, *, purpose: str = "train") -> FileRef:
        """Upload once per content: each try first looks for the fingerprinted name, so a
        lost answer never leaves two files."""
        name = file_name(dataset, purpose)
        async for attempt in retrying():
            with attempt:
                found = (await self._get("/v1/files", params={"name": name}))["data"]
                if not found:
                    async with written(dataset, self.format_example) as path:
                        data = path.read_bytes()
                    found = [
                        await self._send("POST", "/v1/files", params={"name": name}, content=data)
                    ]
        return FileRef(backend=NAME, id=found[0]["id"], filename=name)

    async def create_job(self, request: JobRequest) -> Job:
        """One create; the key rides along, so ``find_job`` can find it after a crash."""
        body = {
            "model": request.base_model,
            "file": request.training_file.id,
            "epochs": request.hyperparameters.epochs,
            "suffix": request.suffix,
            "client_key": request.idempotency_key,
        }
        return job_from_payload(await self._send("POST", "/v1/tunes", json=body))

    async def find_job(self, request: JobRequest) -> Job | None:
        """The tune created under this request's key, if any."""
        listed = await self._get("/v1/tunes", params={"client_key": request.idempotency_key})
        return job_from_payload(listed["data"][0]) if listed["data"] else None

    async def get_job(self, job_id: str) -> Job:
        """The tune as it is now."""
        return job_from_payload(await self._get(f"/v1/tunes/{job_id}"))

    async def cancel_job(self, job_id: str) -> Job:
        """Stop a tune."""
        return job_from_payload(await self._send("POST", f"/v1/tunes/{job_id}/cancel"))

    async def aclose(self) -> None:
        """Close the connections."""
        if self._http is not None:
            await self._http.aclose()
