"""A complete third-party backend for a made-up provider, "Acme Tune", in one small file.

Its API: ``POST /v1/files`` (JSONL in the body, ``?name=``), ``GET /v1/files?name=``,
``POST /v1/tunes``, ``GET /v1/tunes/{id}``, ``GET /v1/tunes?client_key=``,
``POST /v1/tunes/{id}/cancel``; bearer-key auth. A package makes it ``Tuner("acme")`` with
one entry point: ``[project.entry-points."finetune.backends"] acme = "acme_backend:AcmeBackend"``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx

from finetune.backends import Capabilities, HostedBackend, JobRequest
from finetune.backends.http import (
    connection_error,
    error_for_status,
    json_answer,
    parses,
    path_segment,
)
from finetune.backends.payloads import status_from, status_table, unix_time
from finetune.types import FileRef, Job

NAME = "acme"
STATUS = status_table(
    queued=("pending",),
    running=("training",),
    succeeded=("done",),
    failed=("error",),
    cancelled=("stopped",),
)


@parses(NAME, "tune")
def job_from_payload(data: dict[str, Any]) -> Job:
    """An Acme tune as a finetune ``Job`` (an odd payload becomes a ``ServerError``)."""
    return Job(
        id=data["id"],
        backend=NAME,
        base_model=data["model"],
        status=status_from("Acme", data["state"], STATUS),
        created_at=unix_time(data.get("created")),
        fine_tuned_model=data.get("output_model"),
        training_file=data.get("file"),
        metadata={"finetune_key": data.get("client_key") or ""},
        raw=data,
    )


class AcmeBackend(HostedBackend):
    """Fine-tuning on Acme Tune: ``Tuner("acme", model="acme-small", api_key=...)``.

    ``HostedBackend`` gives it the ``api_key``/``base_url``/``attempts``... keywords (from
    ``ACME_API_KEY`` and ``ACME_BASE_URL`` when omitted), ``identity``, retries, the upload
    of a dataset as a content-named file, and closing the client.
    """

    name = NAME
    capabilities = Capabilities(example_kinds=frozenset({"chat"}), max_suffix_length=32)
    title = "Acme"
    key_variable, url_variable = "ACME_API_KEY", "ACME_BASE_URL"
    default_url = "https://api.acme.test"

    def _new_client(self, key: str) -> httpx.AsyncClient:
        auth = {"Authorization": f"Bearer {key}"}
        timeout = self._timeout or 30.0
        return httpx.AsyncClient(base_url=self._base_url, timeout=timeout, headers=auth)

    async def _request(self, method: str, path: str, *, job_call: bool = False, **kw: Any) -> Any:
        """One request: its JSON, or finetune's error for the status (key never shown)."""
        client = await self._ready_client()  # made off the event loop the first time
        try:
            answer = await client.request(method, path, **kw)
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
                    job_call=job_call,
                )
            return json_answer(NAME, answer.status_code, answer.text)
        raise error

    async def upload_file(
        self, path: str | os.PathLike[str], *, filename: str | None = None
    ) -> FileRef:
        """Upload once per content: a retry first looks for the fingerprinted name, so a
        lost answer never leaves two files."""
        name = filename or Path(path).name

        async def find() -> dict[str, Any] | None:
            found = (await self._get("/v1/files", params={"name": name}))["data"]
            return found[0] if found else None

        async def send() -> dict[str, Any]:
            data = Path(path).read_bytes()
            sent: dict[str, Any] = await self._request(
                "POST", "/v1/files", params={"name": name}, content=data
            )
            return sent

        file = await find()
        if file is None:
            file = await self._retried(send, done=find)
        return FileRef(backend=NAME, id=file["id"], filename=name)

    async def create_job(self, request: JobRequest) -> Job:
        """One create; the key rides along, so ``find_job`` can find it after a crash."""
        body = {
            "model": request.base_model,
            "file": request.training_file.id,
            "epochs": request.hyperparameters.epochs,
            "suffix": request.suffix,
            "client_key": request.idempotency_key,
        }
        return job_from_payload(await self._request("POST", "/v1/tunes", json=body))

    async def find_job(self, request: JobRequest) -> Job | None:
        """The tune created under this request's key, if any."""
        listed = await self._get("/v1/tunes", params={"client_key": request.idempotency_key})
        return job_from_payload(listed["data"][0]) if listed["data"] else None

    async def get_job(self, job_id: str) -> Job:
        """The tune as it is now."""
        path = f"/v1/tunes/{path_segment(NAME, job_id)}"
        return job_from_payload(await self._get(path, job_call=True))  # a 404: JobNotFound

    async def cancel_job(self, job_id: str) -> Job:
        """Stop a tune."""
        path = f"/v1/tunes/{path_segment(NAME, job_id)}/cancel"  # an id never reaches another path
        return job_from_payload(await self._request("POST", path, job_call=True))
