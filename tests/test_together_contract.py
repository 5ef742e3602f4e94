"""Contract tests: the Together backend's requests against Prism serving Together's official
spec, with the spec's known deviations (shared/specs/README.md) allow-listed by name."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

import finetune as ft
from finetune.backends.together import TogetherBackend

from .conftest import chat
from .fakes.together_fake import Phases, TogetherFake
from .prism import prism_server, refused_by_prism

pytest.importorskip("together")
pytestmark = pytest.mark.prism
MODEL = "meta-llama/Meta-Llama-3.1-8B-Instruct-Reference"
JOB_ID = "ft-00000000-0000-0000-0000-000000000001"


def _only_train_on_inputs(method: str, path: str, body: Any, reason: str) -> bool:
    """The 422 names nothing but ``training_method`` (the boolean type of train_on_inputs,
    and the oneOf that then fails), for a body that sends the documented ``"auto"``."""
    if path not in ("/fine-tunes", "/fine-tunes/estimate-price"):
        return False
    if (body or {}).get("training_method", {}).get("train_on_inputs") != "auto":
        return False
    problems = json.loads(reason).get("validation") or []
    named = [p["location"][:2] for p in problems]
    return "train_on_inputs must be boolean" in reason and all(
        where == ["body", "training_method"] for where in named
    )


def _upload_flow(method: str, path: str, body: Any, reason: str) -> bool:
    return (method, path) == ("POST", "/files") or path.endswith("/preprocess")


# Known bugs of together-openapi.yaml, each named; anything else Prism refuses fails the test.
KNOWN_SPEC_BUGS = {
    "train_on_inputs 'auto' is declared boolean": _only_train_on_inputs,
    "the SDK's upload flow is not in the spec": _upload_flow,
}


@pytest.fixture(scope="module")
def prism() -> Iterator[str]:
    with prism_server("together-openapi.yaml") as url:
        yield url


def recorded_requests() -> list[Any]:
    """Every request the backend makes in a full run, captured by the loopback fake."""
    with TogetherFake(phases=Phases(0.01, 0.01, 0.05)) as server:
        options = {"api_key": server.api_key, "base_url": server.url, "registry": False}
        tuner = ft.Tuner("together", model=MODEL, **options)
        data = ft.Dataset.from_records([chat(i) for i in range(12)])
        lora = ft.Hyperparameters(epochs=2, batch_size=8, learning_rate=1e-5, lora=ft.LoRA(r=8))
        holdout = ft.Dataset.from_records([chat(99)])
        tuner.estimate(data, lora, validation=holdout)  # the quote's body names both files
        job = tuner.fit(data, validation=holdout, hyperparameters=lora)
        job.wait(poll_interval=0.02, timeout=10)
        job.metrics()
        job.events()
        job.checkpoints()
        tuner.remote_jobs()
        pairs = [{"prompt": f"q{i}", "chosen": "a", "rejected": "b"} for i in range(12)]
        dpo = {"rpo_alpha": 0.5, "simpo_gamma": 0.1}  # in training_method, as the spec has them
        full = ft.Hyperparameters(beta=0.2, batch_size=8, extra=dpo)
        ft.Tuner("together", model=MODEL, **options).fit(
            ft.Dataset.from_records(pairs), method="dpo", hyperparameters=full
        ).cancel()
        return [r for r in server.requests if r.method != "PUT"]  # the signed URL is not the API


def test_no_request_is_refused_but_for_known_spec_bugs(prism: str) -> None:
    requests = recorded_requests()
    paths = {(r.method, r.path) for r in requests}
    assert {("POST", "/v1/fine-tunes"), ("GET", "/v1/fine-tunes/models/limits")} <= paths
    refused = refused_by_prism(prism, requests, strip_prefix="/v1")
    unexplained = [
        (method, path, body, reason)
        for method, path, body, reason in refused
        if not any(
            bug(method, path.removeprefix("/v1"), body, reason) for bug in KNOWN_SPEC_BUGS.values()
        )
    ]
    assert unexplained == []
    seen = {
        name
        for name, bug in KNOWN_SPEC_BUGS.items()
        if any(bug(m, p.removeprefix("/v1"), b, r) for m, p, b, r in refused)
    }
    assert seen == set(KNOWN_SPEC_BUGS)  # the allow-list names what the spec really refuses


def test_prism_refuses_what_the_spec_forbids(prism: str) -> None:
    import httpx

    body = {"model": MODEL}  # training_file is required
    response = httpx.post(prism + "/fine-tunes", json=body, headers={"Authorization": "Bearer t"})
    assert response.status_code == 422


class Unprefixed(TogetherBackend):
    """The backend with its ``/v1`` paths as the spec writes them (Prism serves them so)."""

    async def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        return await super()._request(method, path.removeprefix("/v1"), **kwargs)


async def test_spec_examples_parse_into_our_models(prism: str) -> None:
    backend = Unprefixed(api_key="test", base_url=prism, attempts=1)
    job = await backend.get_job(JOB_ID)
    assert isinstance(job, ft.Job) and job.backend == "together"
    assert all(isinstance(j, ft.Job) for j in await backend.list_jobs())
    assert all(isinstance(e, ft.JobEvent) for e in await backend.list_events(JOB_ID))
    assert all(isinstance(c, ft.Checkpoint) for c in await backend.list_checkpoints(JOB_ID))
    await backend.aclose()
