"""The Mistral backend over real HTTP on 127.0.0.1: httpx for jobs, the real mistralai SDK for
files, against a stateful fake written from Mistral's API reference."""

from __future__ import annotations

import asyncio
import sys
import textwrap
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

import finetune as ft
from finetune.backends import JobRequest
from finetune.backends.mistral import MistralBackend

from .conftest import chat
from .fakes._server import Faults, child_env, sigkill_while_held
from .fakes.mistral_fake import MistralFake, Phases

MODEL = "open-mistral-nemo"
WANDB_KEY = "w" * 40


@pytest.fixture
def server() -> Iterator[MistralFake]:
    with MistralFake() as fake:
        yield fake


def tuner_for(server: MistralFake, **options: Any) -> ft.Tuner:
    settings = {"api_key": server.api_key, "server_url": server.url, "retry_wait": 0.01}
    return ft.Tuner("mistral", model=MODEL, **{**settings, **options})


def dataset(tag: str = "", n: int = 12) -> ft.Dataset:
    return ft.Dataset.from_records(
        [chat(i, system=f"Support agent {tag}".strip()) for i in range(n)]
    )


def posts(server: MistralFake, path: str) -> list[Any]:
    return [
        r
        for r in server.requests
        if r.method == "POST" and r.path == path and ("dry_run", "true") not in r.query
    ]


def test_full_lifecycle(server: MistralFake, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_API_KEY", WANDB_KEY)
    params = ft.Hyperparameters(
        epochs=3, learning_rate=2e-4, warmup=0.1, extra={"weight_decay": 0.05, "seq_len": 4096}
    )
    job = tuner_for(server).fit(
        dataset(),
        validation=dataset("v", 4),
        hyperparameters=params,
        suffix="support",
        integrations=[{"type": "wandb", "wandb": {"project": "support-bot"}}],
    )
    assert job.status is ft.JobStatus.QUEUED
    done = job.wait(poll_interval=0.02, timeout=10)
    assert done.status is ft.JobStatus.SUCCEEDED
    assert job.model.name.startswith(f"ft:{MODEL}:support:")
    assert done.trained_tokens == 4321 and done.suffix == "support"
    (create,) = posts(server, "/v1/fine_tuning/jobs")
    body = create.body
    assert body["hyperparameters"] == {
        "epochs": 3,
        "learning_rate": 2e-4,
        "warmup_fraction": 0.1,
        "weight_decay": 0.05,
        "seq_len": 4096,
    }
    assert body["training_files"] == [{"file_id": done.training_file, "weight": 1}]
    assert body["validation_files"] == [done.validation_file]
    assert body["auto_start"] is True and body["suffix"] == "support"
    assert body["integrations"] == [
        {"type": "wandb", "project": "support-bot", "api_key": WANDB_KEY}
    ]
    assert done.hyperparameters.epochs == 3 and done.hyperparameters.warmup == 0.1
    assert done.hyperparameters.extra["seq_len"] == 4096
    assert WANDB_KEY not in repr(done) and WANDB_KEY not in str(done.raw)
    metrics = job.metrics()
    assert [p.step for p in metrics] == [10, 20]
    assert metrics[-1].train_loss == 1.0 and metrics[-1].valid_loss == 1.1
    assert metrics[-1].valid_accuracy == pytest.approx(0.7)
    statuses = [e.data["status"] for e in job.events() if e.data]
    assert statuses == ["QUEUED", "VALIDATING", "VALIDATED", "RUNNING", "SUCCESS"]
    assert [c.step for c in job.checkpoints()] == [10, 20]
    uploads = posts(server, "/v1/files")
    assert len(uploads) == 2 and {f["purpose"] for f in server.files.values()} == {"fine-tune"}
    assert all(f["filename"].startswith("finetune-") for f in server.files.values())


def test_rerun_reattaches_by_what_the_job_trains(server: MistralFake) -> None:
    data = dataset()
    first = tuner_for(server).fit(data, suffix="s1")
    again = tuner_for(server, registry=False).fit(data, suffix="s1")
    assert again.id == first.id
    other = tuner_for(server, registry=False).fit(
        data, suffix="s1", hyperparameters=ft.Hyperparameters(epochs=2)
    )
    assert other.id != first.id
    assert len(posts(server, "/v1/files")) == 1
    assert server.summary() == {"files": 1, "distinct_files": 1, "jobs": 2, "distinct_fits": 1}


def test_estimate_reports_the_dry_run_beside_our_count(server: MistralFake) -> None:
    tuner = tuner_for(server, allow_closed_provider=True)  # the API as it worked
    estimate = tuner.estimate(dataset(), ft.Hyperparameters(epochs=2))
    figures = estimate.provider_figures
    assert figures is not None and figures["data_tokens"] == 12 * 25
    assert figures["cost_currency"] == "EUR" and figures["epochs"] == 2.0
    assert any("dry run counts 300 data tokens" in note for note in estimate.notes)
    assert estimate.epochs == 2 and estimate.tokens_total > 0
    (dry,) = [r for r in server.requests if ("dry_run", "true") in r.query]
    assert dry.body["hyperparameters"] == {"epochs": 2}
    assert not server.jobs
    tuner.fit(dataset(), hyperparameters=ft.Hyperparameters(epochs=2))
    assert len(posts(server, "/v1/files")) == 1  # the estimate's upload is reused


def test_estimate_without_a_key_or_with_bad_data_sends_nothing(
    server: MistralFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MISTRAL_API_KEY", raising=False)
    keyless = ft.Tuner("mistral", model=MODEL, server_url=server.url)
    estimate = keyless.estimate(dataset())
    assert estimate.provider_figures is None and "dry run was skipped" in estimate.notes[-1]
    broken = [chat(i) for i in range(12)] + [{"messages": [{"role": "user", "content": "hi"}]}]
    estimate = tuner_for(server).estimate(ft.Dataset.from_records(broken))
    assert "validation error" in estimate.notes[-1]
    assert not server.requests


def test_failed_job_raises_with_the_api_message(server: MistralFake) -> None:
    job = tuner_for(server).fit(dataset(), suffix="fail")
    with pytest.raises(ft.JobFailed) as caught:
        job.wait(poll_interval=0.02, timeout=10)
    error = caught.value.job.error
    assert error is not None and error.code == "failed"
    assert error.message == "Training diverged: loss became NaN at step 20."
    invalid = tuner_for(server).fit(dataset("b"), suffix="badval")
    with pytest.raises(ft.JobFailed, match="last message must be from the assistant") as caught:
        invalid.wait(poll_interval=0.02, timeout=10)
    assert caught.value.job.error.code == "failed_validation"  # type: ignore[union-attr]
    again = tuner_for(server).fit(dataset("b"), suffix="badval")
    assert again.id != invalid.id  # a failed fit is never re-attached


def test_auto_start_false_waits_for_resume(server: MistralFake) -> None:
    job = tuner_for(server).fit(dataset(), options={"auto_start": False})
    paused = job.wait(poll_interval=0.02, timeout=10)
    assert paused.status is ft.JobStatus.PAUSED and paused.raw["status"] == "VALIDATED"
    assert job.resume().status is not ft.JobStatus.PAUSED
    assert job.wait(poll_interval=0.02, timeout=10).status is ft.JobStatus.SUCCEEDED
    (create,) = posts(server, "/v1/fine_tuning/jobs")
    assert create.body["auto_start"] is False
    with pytest.raises(ft.UnsupportedFeature):
        job.pause()


def test_cancel(server: MistralFake) -> None:
    server.phases = Phases(running=30)
    job = tuner_for(server).fit(dataset())
    asked = job.cancel()
    assert asked.raw["status"] == "CANCELLATION_REQUESTED" and asked.status is ft.JobStatus.RUNNING
    assert job.wait(poll_interval=0.02, timeout=10).status is ft.JobStatus.CANCELLED
    with pytest.raises(ft.FinetuneError, match="no fine-tuned model"):
        _ = job.model


def test_reattach_list_and_not_found(server: MistralFake) -> None:
    job = tuner_for(server).fit(dataset())
    other = ft.Tuner("mistral", api_key=server.api_key, server_url=server.url)
    assert other.job(job.id).job.base_model == MODEL
    assert [j.id for j in other.remote_jobs()] == [job.id]
    with pytest.raises(ft.JobNotFound):
        other.job("00000000-0000-0000-0000-00000000dead")


def test_a_tuners_models_are_asked_at_its_server_with_its_key(
    server: MistralFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Tuner's ``server_url`` and key, not ``MISTRAL_API_KEY`` at api.mistral.ai."""
    monkeypatch.setenv("MISTRAL_API_KEY", "environment-key-must-not-travel-123")
    server.chat_responder = lambda model, messages: f"{model} says hi"
    tuner = tuner_for(server)
    tuned = tuner.fit(dataset()).wait(poll_interval=0.02, timeout=10).model
    assert tuned is not None
    candidates = {"base": tuner.base_model, "tuned": tuned}
    result = ft.evaluate(dataset("held", 1), candidates, "exact_match", cache=False)
    assert result.predictions("base") == [f"{MODEL} says hi"]
    assert result.predictions("tuned") == [f"{tuned.name} says hi"]


async def test_paging_stops_at_the_total(server: MistralFake) -> None:
    backend = MistralBackend(api_key=server.api_key, server_url=server.url)
    training = await backend.upload(dataset())
    for i in range(5):
        body = {"model": MODEL, "training_files": [{"file_id": training.id}], "suffix": f"p{i}"}
        server._create_job({**body, "hyperparameters": {}}, dry_run=False)
    assert len(await backend.list_jobs(limit=3)) == 3
    assert len(await backend.list_jobs(limit=50)) == 5
    await backend.aclose()


def test_wrong_key_is_refused_and_never_shown(server: MistralFake) -> None:
    secret = "wrong-mistral-key-1234567890"
    tuner = ft.Tuner("mistral", model=MODEL, api_key=secret, server_url=server.url)
    with pytest.raises(ft.AuthenticationError) as caught:
        tuner.fit(dataset())
    assert secret not in str(caught.value) and "MISTRAL_API_KEY" in str(caught.value)
    assert secret not in repr(tuner.backend) and secret not in repr(tuner)


def test_missing_key_is_a_clear_error_but_validation_works(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("MISTRAL_API_KEY", raising=False)
    tuner = ft.Tuner(
        "mistral", model=MODEL, server_url="http://127.0.0.1:9", allow_closed_provider=True
    )
    assert tuner.validate(dataset()).ok
    with pytest.raises(ft.AuthenticationError, match="MISTRAL_API_KEY"):
        tuner.fit(dataset())


async def test_unprocessable_names_the_field_and_hides_the_wandb_key(server: MistralFake) -> None:
    backend = MistralBackend(api_key=server.api_key, server_url=server.url)
    training = await backend.upload(dataset())
    short_key = "short-wandb-key-123456"
    request = JobRequest(
        base_model=MODEL,
        training_file=training,
        idempotency_key="k",
        integrations=[{"type": "wandb", "project": "p", "api_key": short_key}],
    )
    with pytest.raises(ft.InvalidRequestError) as caught:
        await backend.create_job(request)
    error = caught.value
    assert error.status_code == 422 and error.param == "integrations.0.wandb.api_key"
    assert "40 characters" in str(error) and short_key not in str(error)
    assert short_key not in repr(request)


def test_settings_mistral_cannot_take_are_refused_before_sending(server: MistralFake) -> None:
    tuner = tuner_for(server)
    for params in (
        ft.Hyperparameters(batch_size=8),
        ft.Hyperparameters(learning_rate_multiplier=2.0),
        ft.Hyperparameters(extra={"momentum": 0.9}),
        ft.Hyperparameters(epochs=2, extra={"training_steps": 10}),
    ):
        with pytest.raises(ft.UnsupportedFeature):
            tuner.fit(dataset(), hyperparameters=params)
    with pytest.raises(ft.InvalidRequestError, match="at most 18"):
        tuner.fit(dataset(), suffix="a-suffix-that-is-too-long")
    with pytest.raises(ft.UnsupportedFeature, match="auto_start"):
        tuner.fit(dataset(), options={"autostart": False})
    pairs = ft.Dataset.from_records(
        [{"input": [{"role": "user", "content": "q"}], "chosen": "a", "rejected": "b"}] * 12
    )
    with pytest.raises(ft.UnsupportedFeature):
        tuner.fit(pairs, method="dpo")
    assert not posts(server, "/v1/fine_tuning/jobs")


async def test_rate_limit_carries_retry_after() -> None:
    with MistralFake(Faults(rate=1.0, kinds=("429",), retry_after="7")) as server:
        backend = MistralBackend(api_key=server.api_key, server_url=server.url, attempts=1)
        with pytest.raises(ft.RateLimitError) as caught:
            await backend.get_job("00000000-0000-0000-0000-000000000001")
    assert caught.value.retry_after == 7.0
    assert "rate limit exceeded" in str(caught.value)


async def test_server_errors_are_retried_then_raised() -> None:
    with MistralFake(Faults(rate=1.0, kinds=("503",), retry_after="0.01")) as server:
        backend = MistralBackend(
            api_key=server.api_key, server_url=server.url, attempts=3, retry_wait=0.01
        )
        with pytest.raises(ft.ServerError) as caught:
            await backend.list_jobs()
        with pytest.raises(ft.ServerError):
            await backend.upload(dataset())
    assert caught.value.retryable
    assert len([r for r in server.requests if r.path == "/v1/fine_tuning/jobs"]) == 3
    assert not server.files


def test_fifty_cycles_with_thirty_percent_faults() -> None:
    faults = Faults(rate=0.3, seed=11, slow_seconds=0.05, retry_after="0.01")
    with MistralFake(faults, Phases(0.01, 0.01, 0.01, 0.05)) as server:

        def cycle(i: int) -> ft.Job:
            # the fake lists a job once it is made: 1 s of create_grace finds one whose answer
            # was lost (the default 10 s waits for providers that list late), and backoff from
            # 0.05 s keeps a run of faults from sleeping 30 s: what is tested is no duplicates
            tuner = tuner_for(server, timeout=5, attempts=8, create_grace=1, first_wait=0.05)
            job = tuner.fit(dataset(str(i)), suffix=f"c{i}")
            return job.wait(poll_interval=0.02, max_interval=0.1, timeout=60)

        with ThreadPoolExecutor(max_workers=10) as pool:
            jobs = list(pool.map(cycle, range(50)))
        faulted = sum(r.fault is not None for r in server.requests)
        summary = server.summary()
    assert [j.status for j in jobs] == [ft.JobStatus.SUCCEEDED] * 50
    assert summary == {"files": 50, "distinct_files": 50, "jobs": 50, "distinct_fits": 50}
    assert faulted / len(server.requests) > 0.2


CRASHING_SCRIPT = textwrap.dedent(
    """
    import sys
    import finetune as ft
    rows = [{"messages": [{"role": "user", "content": f"q{i}"},
                          {"role": "assistant", "content": f"a{i}"}]} for i in range(12)]
    tuner = ft.Tuner("mistral", model=sys.argv[1], api_key=sys.argv[2], server_url=sys.argv[3])
    job = tuner.fit(ft.Dataset.from_records(rows), suffix="crash")
    print(job.wait(poll_interval=0.02, timeout=30).status.value)
    """
)


@pytest.mark.parametrize("hold", ["/v1/files", "/v1/fine_tuning/jobs"])
@pytest.mark.parametrize("registry", [True, False])
def test_sigkill_then_rerun_makes_one_job(
    server: MistralFake, tmp_path: Path, hold: str, registry: bool
) -> None:
    script = tmp_path / "fit.py"
    script.write_text(CRASHING_SCRIPT)
    command = [sys.executable, str(script), MODEL, server.api_key, server.url]
    env = child_env(tmp_path, FINETUNE_REGISTRY=str(tmp_path / "registry.sqlite3"))
    registry_file = tmp_path / "registry.sqlite3"
    forget = None if registry else lambda: registry_file.unlink(missing_ok=True)
    rerun = sigkill_while_held(server, command, env, hold, before_rerun=forget)
    assert rerun.returncode == 0, rerun.stderr
    assert rerun.stdout.strip() == "succeeded"
    assert server.summary() == {"files": 1, "distinct_files": 1, "jobs": 1, "distinct_fits": 1}


async def test_async_lifecycle(server: MistralFake) -> None:
    options = {"api_key": server.api_key, "server_url": server.url}
    async with ft.AsyncTuner(
        "mistral", model=MODEL, allow_closed_provider=True, **options
    ) as tuner:
        estimate = await tuner.estimate(dataset())
        assert estimate.provider_figures is not None
        job = await tuner.fit(dataset(), validation=dataset("v", 3))
        done = await job.wait(poll_interval=0.02, timeout=10)
        assert done.status is ft.JobStatus.SUCCEEDED
        assert [p.step for p in await job.metrics()] == [10, 20]
        assert (await job.events())[-1].data == {"status": "SUCCESS"}
        assert [c.step for c in await job.checkpoints()] == [10, 20]
        again = await tuner.fit(dataset(), validation=dataset("v", 3))
        assert again.id == job.id
        assert [j.id for j in await tuner.remote_jobs()] == [job.id]
        paused = await tuner.fit(dataset("p"), options={"auto_start": False})
        assert (await paused.wait(poll_interval=0.02, timeout=10)).status is ft.JobStatus.PAUSED
        await paused.resume()
        assert (await paused.wait(poll_interval=0.02, timeout=10)).status.value == "succeeded"
        await job.cancel()


async def test_async_fits_under_faults() -> None:
    faults = Faults(rate=0.3, seed=3, slow_seconds=0.05, retry_after="0.01")
    with MistralFake(faults, Phases(0.01, 0.01, 0.01, 0.05)) as server:
        tuner = ft.AsyncTuner(
            "mistral",
            model=MODEL,
            api_key=server.api_key,
            server_url=server.url,
            retry_wait=0.01,
            attempts=8,
        )
        jobs = await asyncio.gather(*(tuner.fit(dataset(str(i)), suffix=f"a{i}") for i in range(8)))
        done = await asyncio.gather(
            *(j.wait(poll_interval=0.02, max_interval=0.1, timeout=60) for j in jobs)
        )
        await tuner.aclose()
    assert {d.status for d in done} == {ft.JobStatus.SUCCEEDED}
    assert server.summary() == {"files": 8, "distinct_files": 8, "jobs": 8, "distinct_fits": 8}


def test_models_and_files_are_managed_through_the_sdk(server: MistralFake) -> None:
    tuner = tuner_for(server)
    job = tuner.fit(dataset())
    model = job.wait(poll_interval=0.02, timeout=10).fine_tuned_model
    assert model is not None
    backend = tuner.backend
    assert isinstance(backend, MistralBackend)
    assert tuner.run(backend.archive_model(model)) is True
    assert tuner.run(backend.unarchive_model(model)) is False
    record = tuner.run(backend.update_model(model, name="support-v1", description="tickets, nov"))
    assert record["name"] == "support-v1" and record["job"] == job.id
    with pytest.raises(ft.InvalidRequestError):
        tuner.run(backend.archive_model("ft:open-mistral-nemo:missing"))
    assert tuner.run(backend.delete_file(job.job.training_file or "")) is True
    assert not server.files
    tuner.close()


def test_a_model_or_file_id_typed_by_a_user_reaches_no_other_resource(server: MistralFake) -> None:
    """mistralai puts the ids it is given in the path as they are: archiving
    ``../files/file-1`` posted to ``/v1/fine_tuning/files/file-1/archive``, and a ``?`` added
    a query. Each id is now one segment of its own path (a model's colons kept)."""
    tuner = tuner_for(server)
    backend = tuner.backend
    assert isinstance(backend, MistralBackend)
    calls = [
        ("POST", "/v1/fine_tuning/models/{}/archive", backend.archive_model),
        ("DELETE", "/v1/fine_tuning/models/{}/archive", backend.unarchive_model),
        ("PATCH", "/v1/fine_tuning/models/{}", backend.update_model),
        ("DELETE", "/v1/files/{}", backend.delete_file),
    ]
    for crafted in ("../files/file-1", "ft:x:y?limit=1", "ft:x#y"):
        for method, path, call in calls:
            server.requests.clear()
            with pytest.raises(ft.FinetuneError):
                tuner.run(call(crafted))
            encoded = quote(crafted, safe=":" if "models" in path else "")
            sent = [(r.method, r.path, bool(r.query)) for r in server.requests]
            assert sent == [(method, path.format(encoded), False)]
    tuner.close()


async def test_models_files_and_injected_client(server: MistralFake) -> None:
    import httpx

    job = await (
        await ft.AsyncTuner(
            "mistral", model=MODEL, api_key=server.api_key, server_url=server.url
        ).fit(dataset())
    ).wait(poll_interval=0.02, timeout=10)
    assert job.fine_tuned_model is not None
    model = job.fine_tuned_model
    seen: list[str] = []

    async def record(request: httpx.Request) -> None:
        seen.append(request.url.path)

    client = httpx.AsyncClient(event_hooks={"request": [record]})
    backend = MistralBackend(api_key=server.api_key, server_url=server.url, http_client=client)
    assert [j.id for j in await backend.list_jobs()] == [job.id]
    assert await backend.archive_model(model) is True
    assert (await backend.update_model(model, description="d"))["description"] == "d"
    assert await backend.delete_file(job.training_file or "") is True
    await backend.aclose()
    assert not client.is_closed  # the caller's to close
    await client.aclose()
    assert seen == ["/v1/fine_tuning/jobs"]


@pytest.mark.parametrize(
    ("setting", "says"),
    [
        ({"retry_wait": -1}, "retry_wait must be 0 seconds or more, not -1"),
        ({"retry_wait": "1"}, "retry_wait must be 0 seconds or more, not '1'"),
        ({"first_wait": -1, "retry_wait": 1}, "first_wait must be 0 seconds or more, not -1"),
    ],
)
def test_a_wrong_first_backoff_is_named_as_it_was_given(setting: dict[str, Any], says: str) -> None:
    with pytest.raises(ValueError, match=says):  # retry_wait=-1 was named first_wait
        ft.Tuner("mistral", model=MODEL, api_key="test-key", **setting)
