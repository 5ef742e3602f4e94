"""Contract tests: the Mistral backend's requests against Prism serving the official spec."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

import finetune as ft
from finetune.backends.mistral import MistralBackend
from finetune.evaluation import MistralPredictor

from .conftest import chat, weather_data, weather_model
from .fakes.mistral_fake import MistralFake, Phases
from .prism import prism_server, refused_by_prism

pytestmark = pytest.mark.prism
MODEL = "open-mistral-nemo"
JOB_ID = "497f6eca-6276-4993-bfeb-53cbbbba6f09"


@pytest.fixture(scope="module")
def prism() -> Iterator[str]:
    with prism_server("mistral-openapi.yaml") as url:
        yield url


def recorded_requests() -> list[Any]:
    """Every request the backend makes in a full run, captured by the loopback fake."""
    with MistralFake(phases=Phases(0.01, 0.01, 0.01, 0.05)) as server:
        options = {"api_key": server.api_key, "server_url": server.url}
        data = ft.Dataset.from_records([chat(i) for i in range(12)])
        # the API as it worked: the dry run is asked too, so its body is checked
        tuner = ft.Tuner(
            "mistral", model=MODEL, registry=False, allow_closed_provider=True, **options
        )
        params = ft.Hyperparameters(
            epochs=2, learning_rate=1e-4, warmup=0.1, extra={"weight_decay": 0.1, "seq_len": 2048}
        )
        tuner.estimate(data, params)
        job = tuner.fit(
            data,
            validation=ft.Dataset.from_records([chat(99)]),
            suffix="contract",
            hyperparameters=params,
            integrations=[{"type": "wandb", "project": "p", "name": "run", "api_key": "k" * 40}],
            options={"invalid_sample_skip_percentage": 0.1},
        )
        model = job.wait(poll_interval=0.02, timeout=10).fine_tuned_model or ""
        job.metrics()
        job.events()
        tuner.remote_jobs()
        backend = tuner.backend
        assert isinstance(backend, MistralBackend)
        tuner.run(backend.archive_model(model))
        tuner.run(backend.unarchive_model(model))
        tuner.run(backend.update_model(model, name="n", description="d"))
        steps = ft.Hyperparameters(extra={"training_steps": 5, "fim_ratio": 0.5})
        waiting = tuner.fit(data, hyperparameters=steps, options={"auto_start": False})
        waiting.wait(poll_interval=0.02, timeout=10)
        waiting.resume()
        waiting.cancel()
        tuner.run(backend.delete_file(job.job.validation_file or ""))
        tuner.close()
        server.chat_responder = weather_model  # a tool-calling evaluation's chat requests
        tuned = MistralPredictor("ft:open-mistral-nemo:w", **options)
        ft.evaluate(weather_data(1), {"tuned": tuned}, "tool_calls_match", cache=False)
        return list(server.requests)


def test_no_request_is_refused_by_the_spec(prism: str) -> None:
    requests = recorded_requests()
    calls = {(r.method, r.path.rsplit("/", 1)[-1]) for r in requests}
    for call in ("POST files", "GET files", "POST jobs", "GET jobs", "POST start", "POST cancel"):
        assert tuple(call.split()) in calls, call
    assert {("POST", "archive"), ("DELETE", "archive")} <= calls
    assert {"PATCH", "DELETE"} <= {r.method for r in requests}
    assert ("POST", "completions") in calls
    assert refused_by_prism(prism, requests) == []


def test_prism_refuses_what_the_spec_forbids(prism: str) -> None:
    """The contract above means something: a body the spec forbids gets a 422."""
    body = {"model": MODEL, "hyperparameters": {"learning_rate": 5}, "suffix": "x" * 19}
    response = httpx.post(
        prism + "/v1/fine_tuning/jobs", json=body, headers={"Authorization": "Bearer t"}
    )
    assert response.status_code == 422


async def test_spec_examples_parse_into_our_models(prism: str) -> None:
    backend = MistralBackend(api_key="test", server_url=prism, attempts=1)
    job = await backend.get_job(JOB_ID)
    assert isinstance(job, ft.Job) and job.backend == "mistral"
    assert all(isinstance(j, ft.Job) for j in await backend.list_jobs(limit=3))
    assert all(isinstance(e, ft.JobEvent) for e in await backend.list_events(JOB_ID))
    assert all(isinstance(c, ft.Checkpoint) for c in await backend.list_checkpoints(JOB_ID))
    assert all(isinstance(p, ft.MetricPoint) for p in await backend.get_metrics(JOB_ID))
    for action in (backend.cancel_job, backend.start_job):
        assert isinstance(await action(JOB_ID), ft.Job)
    training = ft.FileRef(backend="mistral", id=JOB_ID)
    request = ft.backends.JobRequest(base_model=MODEL, training_file=training, idempotency_key="k")
    assert isinstance(await backend.create_job(request), ft.Job)
    await backend.aclose()
