"""Contract tests: the OpenAI backend's requests against Prism serving the official spec."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import finetune as ft
from finetune.backends.openai import OpenAIBackend

from .conftest import chat, needs_tiktoken
from .fakes.openai_fake import OpenAIFake, Phases
from .prism import prism_server, refused_by_prism

pytestmark = [pytest.mark.prism, needs_tiktoken]
MODEL = "gpt-4.1-mini-2025-04-14"


@pytest.fixture(scope="module")
def prism() -> Iterator[str]:
    with prism_server("openai-openapi.yaml") as url:
        yield url


def recorded_requests() -> list[Any]:
    """Every request the backend makes in a full run, captured by the loopback fake."""
    with OpenAIFake(phases=Phases(0.01, 0.01, 0.05)) as server:
        options = {
            "api_key": server.api_key,
            "base_url": server.base_url,
            "file_poll_interval": 0.01,
        }
        data = ft.Dataset.from_records([chat(i) for i in range(12)])
        tuner = ft.Tuner("openai", model=MODEL, registry=False, **options)
        job = tuner.fit(
            data,
            validation=ft.Dataset.from_records([chat(99)]),
            suffix="contract",
            hyperparameters=ft.Hyperparameters(
                epochs=2, batch_size=1, learning_rate_multiplier=0.1, seed=1
            ),
            integrations=[{"type": "wandb", "wandb": {"project": "p"}}],
        )
        job.wait(poll_interval=0.02, timeout=10)
        job.metrics()
        job.events()
        job.checkpoints()
        tuner.remote_jobs()
        pairs = [{"prompt": f"q{i}", "chosen": "a", "rejected": "b"} for i in range(12)]
        dpo = tuner.fit(
            ft.Dataset.from_records(pairs),
            method="dpo",
            hyperparameters=ft.Hyperparameters(beta=0.1),
        )
        dpo.cancel()
        big = ft.Tuner(
            "openai", model=MODEL, registry=False, upload_threshold=1, part_size=2048, **options
        )
        big.fit(ft.Dataset.from_records([chat(i) for i in range(40)]), suffix="parts")
        return list(server.requests)


def test_no_request_is_refused_by_the_spec(prism: str) -> None:
    requests = recorded_requests()
    paths = {(r.method, r.path.split("/")[2]) for r in requests}
    assert {("POST", "files"), ("POST", "uploads"), ("POST", "fine_tuning")} <= paths
    assert refused_by_prism(prism, requests, strip_prefix="/v1") == []


async def test_spec_examples_parse_into_our_models(prism: str) -> None:
    backend = OpenAIBackend(api_key="sk-test", base_url=prism, max_retries=0)
    job = await backend.get_job("ftjob-abc123")
    assert isinstance(job, ft.Job) and job.backend == "openai"
    assert all(isinstance(j, ft.Job) for j in await backend.list_jobs(limit=3))
    assert all(isinstance(e, ft.JobEvent) for e in await backend.list_events("ftjob-abc123"))
    checkpoints = await backend.list_checkpoints("ftjob-abc123")
    assert all(isinstance(c, ft.Checkpoint) for c in checkpoints)
    for action in (backend.cancel_job, backend.pause_job, backend.resume_job):
        assert isinstance(await action("ftjob-abc123"), ft.Job)
    request = ft.backends.JobRequest(
        base_model=MODEL,
        training_file=ft.FileRef(backend="openai", id="file-abc"),
        idempotency_key="ft-key",
        metadata={"finetune_key": "ft-key"},
    )
    assert isinstance(await backend.create_job(request), ft.Job)
    await backend.find_job(request)
    await backend.aclose()
