"""The OpenAI backend through the real SDK over real HTTP on 127.0.0.1, against a stateful fake."""

from __future__ import annotations

import asyncio
import email.utils
import math
import re
import sys
import textwrap
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

import finetune as ft
from finetune.backends.openai import OpenAIBackend
from finetune.backends.openai._backend import PROBE_FILE

from .conftest import chat, needs_tiktoken
from .fakes._server import Faults, child_env, sigkill_while_held
from .fakes.openai_fake import OpenAIFake, Phases

pytestmark = needs_tiktoken
MODEL = "gpt-4.1-mini-2025-04-14"
FAST_POLL = {"file_poll_interval": 0.01}


@pytest.fixture
def server() -> Iterator[OpenAIFake]:
    with OpenAIFake() as fake:
        yield fake


def settings_for(server: OpenAIFake, **options: Any) -> dict[str, Any]:
    return {"api_key": server.api_key, "base_url": server.base_url, **FAST_POLL, **options}


def tuner_for(server: OpenAIFake, **options: Any) -> ft.Tuner:
    return ft.Tuner("openai", model=MODEL, **settings_for(server, **options))


def backend_for(server: OpenAIFake, **options: Any) -> OpenAIBackend:
    return OpenAIBackend(**settings_for(server, **options))


def dataset(tag: str = "", n: int = 12) -> ft.Dataset:
    return ft.Dataset.from_records(
        [chat(i, system=f"Support agent {tag}".strip()) for i in range(n)]
    )


def not_a_probe(request: Any) -> bool:
    """The organisation check before uploading names a file that does not exist."""
    return not isinstance(request.body, dict) or request.body.get("training_file") != PROBE_FILE


def posts(server: OpenAIFake, path: str) -> list[Any]:
    return [r for r in server.requests if r.method == "POST" and r.path == path and not_a_probe(r)]


def test_full_lifecycle(server: OpenAIFake) -> None:
    tuner = tuner_for(server)
    params = ft.Hyperparameters(epochs=3, batch_size=4, learning_rate_multiplier=0.5, seed=7)
    job = tuner.fit(
        dataset(),
        validation=dataset("v", 3),
        hyperparameters=params,
        suffix="support",
        integrations=[{"type": "wandb", "wandb": {"project": "p"}}],
    )
    assert job.status is ft.JobStatus.VALIDATING
    done = job.wait(poll_interval=0.02, timeout=10)
    assert done.status is ft.JobStatus.SUCCEEDED
    assert job.model.name.startswith(f"ft:{MODEL}:org-fake:support:")
    assert done.trained_tokens == 1234 and done.suffix == "support"
    (create,) = posts(server, "/v1/fine_tuning/jobs")
    body = create.body
    assert body["method"] == {
        "type": "supervised",
        "supervised": {
            "hyperparameters": {"n_epochs": 3, "batch_size": 4, "learning_rate_multiplier": 0.5}
        },
    }
    assert body["seed"] == 7 and body["suffix"] == "support"
    assert body["metadata"]["finetune_key"].startswith("ft-")
    assert body["validation_file"] and body["integrations"][0]["type"] == "wandb"
    metrics = job.metrics()
    assert [p.step for p in metrics] == [1, 2, 3, 4, 5]
    assert metrics[0].train_loss == 2.0 and metrics[0].valid_accuracy == 0.5
    events = job.events()
    assert events[0].message.startswith("Created fine-tuning job")
    assert events[-1].message == "The job has successfully completed"
    assert [c.step for c in job.checkpoints()] == [3, 5]
    assert done.hyperparameters.epochs == 3
    uploaded = [f for f in server.files.values() if f["purpose"] == "fine-tune"]
    assert {f["filename"].rsplit("-", 1)[1] for f in uploaded} == {
        "train.jsonl",
        "validation.jsonl",
    }


def test_reupload_is_avoided_and_rerun_reattaches(server: OpenAIFake) -> None:
    data = dataset()
    first = tuner_for(server).fit(data)
    again = tuner_for(server, registry=False).fit(data)
    assert again.id == first.id
    other = tuner_for(server).fit(data, hyperparameters=ft.Hyperparameters(epochs=2))
    assert other.id != first.id
    assert len(posts(server, "/v1/files")) == 1
    assert server.summary() == {"files": 1, "distinct_files": 1, "jobs": 2, "distinct_keys": 2}


def test_the_registry_keeps_the_hyperparameters_auto_chose(server: OpenAIFake) -> None:
    """A job created with "auto" reports the values OpenAI chose once it runs: the lineage
    of the model it makes holds those, not "auto"."""
    job = tuner_for(server).fit(dataset("auto"), hyperparameters={"batch_size": 2})
    assert job.job.hyperparameters.epochs == "auto"
    assert job.wait(poll_interval=0.02, timeout=10).hyperparameters.epochs == 3
    lineage = ft.JobRegistry().lineage(job.model.name)
    assert lineage is not None
    assert lineage.hyperparameters == {
        "epochs": 3,
        "batch_size": 2,
        "learning_rate_multiplier": 1.8,
        "seed": 42,
    }


def test_dpo_request(server: OpenAIFake) -> None:
    pairs = [
        ft.PreferenceExample(
            input=[ft.Message(role="user", content=f"q{i}")],
            chosen=[ft.Message(role="assistant", content="good")],
            rejected=[ft.Message(role="assistant", content="bad")],
        )
        for i in range(12)
    ]
    job = tuner_for(server).fit(
        ft.Dataset.from_records(pairs), method="dpo", hyperparameters=ft.Hyperparameters(beta=0.2)
    )
    (create,) = posts(server, "/v1/fine_tuning/jobs")
    assert create.body["method"] == {"type": "dpo", "dpo": {"hyperparameters": {"beta": 0.2}}}
    assert job.job.method == "dpo"


def test_failed_job_raises_with_api_error(server: OpenAIFake) -> None:
    job = tuner_for(server).fit(dataset(), suffix="fail")
    with pytest.raises(ft.JobFailed) as caught:
        job.wait(poll_interval=0.02, timeout=10)
    assert caught.value.job.error == ft.JobError(
        code="invalid_training_data", message="Training diverged."
    )


def test_cancel_pause_resume(server: OpenAIFake) -> None:
    server.phases = Phases(validating=0, queued=0, running=30)
    job = tuner_for(server).fit(dataset())
    assert job.pause().status is ft.JobStatus.PAUSED
    assert job.resume().status is ft.JobStatus.RUNNING
    assert job.cancel().status is ft.JobStatus.CANCELLED
    assert job.events()[-1].message == "Fine-tuning job cancelled"
    asked = len(server.requests)  # an ended job is left as it is: OpenAI would answer 400
    assert job.pause().status is job.cancel().status is ft.JobStatus.CANCELLED
    assert len(server.requests) == asked


def test_a_running_job_says_when_openai_expects_it_to_finish(server: OpenAIFake) -> None:
    """OpenAI's running job has an ``estimated_finish``: the views said nothing of it."""
    server.phases = Phases(validating=0, queued=0, running=30)
    job = tuner_for(server).fit(dataset())
    job.refresh()
    left = job.job.raw["seconds_left"]
    assert job.status is ft.JobStatus.RUNNING and 27 <= left <= 30
    assert f"about 0m{left}s left (openai&#x27;s estimate)" in job._repr_html_()
    job.pause()
    assert "seconds_left" not in job.job.raw  # paused: OpenAI gives no finish


def test_a_job_without_a_result_file_has_the_metrics_its_events_logged(
    server: OpenAIFake,
) -> None:
    """The result file comes once a job succeeds; before (or with none, cancelled) the
    metric events so far are the series."""
    server.phases = Phases(validating=0, queued=0, running=5)  # a step a second
    job = tuner_for(server).fit(dataset())
    deadline = time.monotonic() + 10
    while not any(e.data for e in job.events()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert job.cancel().status is ft.JobStatus.CANCELLED
    logged = [e.data for e in job.events() if e.data]
    metrics = job.metrics()
    assert 1 <= len(metrics) < 5 and [p.step for p in metrics] == [d["step"] for d in logged]
    assert metrics[0].train_loss == 2.0 and metrics[0].valid_loss is None


def test_a_fit_whose_estimate_is_above_max_cost_is_refused_before_any_upload(
    server: OpenAIFake,
) -> None:
    data = dataset()
    tuner = tuner_for(server, check_organisation=False)
    cost = tuner.estimate(data).cost
    assert cost is not None
    with pytest.raises(ft.InvalidRequestError, match="is above max_cost") as caught:
        tuner.fit(data, max_cost=cost / 2)
    assert caught.value.param == "max_cost" and "nothing was uploaded" in str(caught.value)
    unpriced = ft.Tuner("openai", model="gpt-5-nano-2026-01-01", **settings_for(server))
    with pytest.raises(ft.InvalidRequestError, match="max_cost=100 USD cannot be checked"):
        unpriced.fit(data, max_cost=100)
    for wrong in (-1, float("nan"), "5", True):
        with pytest.raises(ValueError, match="max_cost is the most the job may cost in USD"):
            tuner.fit(data, max_cost=wrong)  # type: ignore[arg-type]
    assert not server.requests
    assert tuner.fit(data, max_cost=cost).status is ft.JobStatus.VALIDATING  # at the limit
    local = ft.Tuner("fake", model="base", registry=False)  # no bill to check
    assert local.fit(data, max_cost=0).status is not ft.JobStatus.FAILED


def test_reattach_and_list(server: OpenAIFake) -> None:
    job = tuner_for(server).fit(dataset())
    other = ft.Tuner("openai", api_key=server.api_key, base_url=server.base_url)
    assert other.job(job.id).job.base_model == MODEL
    assert [j.id for j in other.remote_jobs()] == [job.id]
    with pytest.raises(ft.JobNotFound):
        other.job("ftjob-missing")


def test_authentication_error_hides_the_key(server: OpenAIFake) -> None:
    secret = "sk-wrong-key-1234567890abcdef"
    tuner = ft.Tuner("openai", model=MODEL, api_key=secret, base_url=server.base_url)
    with pytest.raises(ft.AuthenticationError) as caught:
        tuner.fit(dataset())
    assert secret not in str(caught.value) and "OPENAI_API_KEY" in str(caught.value)
    assert secret not in repr(tuner.backend)


async def test_invalid_request_names_the_param(server: OpenAIFake) -> None:
    backend = backend_for(server)
    request = ft.backends.JobRequest(
        base_model=MODEL,
        training_file=ft.FileRef(backend="openai", id="file-nope"),
        idempotency_key="k",
    )
    with pytest.raises(ft.InvalidRequestError) as caught:
        await backend.create_job(request)
    assert caught.value.param == "training_file" and caught.value.status_code == 400


def test_learning_rate_is_refused_before_sending(server: OpenAIFake) -> None:
    with pytest.raises(ft.UnsupportedFeature, match="learning_rate_multiplier"):
        tuner_for(server).fit(dataset(), hyperparameters=ft.Hyperparameters(learning_rate=1e-4))
    assert not posts(server, "/v1/fine_tuning/jobs")


def test_an_extra_setting_openai_does_not_take_is_refused_before_any_upload(
    server: OpenAIFake,
) -> None:
    """``extra`` went into the hyperparameters as given: a name OpenAI's API has not (its
    spec lists a method's hyperparameters) was sent after the upload."""
    unknown = ft.Hyperparameters(extra={"weight_decay": 0.1})
    with pytest.raises(
        ft.UnsupportedFeature,
        match=re.escape(
            "unknown OpenAI setting(s) ['weight_decay'] in extra; OpenAI takes "
            "['batch_size', 'learning_rate_multiplier', 'n_epochs']"
        ),
    ):
        tuner_for(server).fit(dataset(), hyperparameters=unknown)
    assert not posts(server, "/v1/files") and not posts(server, "/v1/fine_tuning/jobs")
    own_names = ft.Hyperparameters(epochs=3, extra={"n_epochs": 2})  # OpenAI's name wins
    tuner_for(server).fit(dataset(), hyperparameters=own_names)
    (created,) = posts(server, "/v1/fine_tuning/jobs")
    assert created.body["method"]["supervised"]["hyperparameters"] == {"n_epochs": 2}


async def test_rate_limit_carries_retry_after() -> None:
    with OpenAIFake(Faults(rate=1.0, kinds=("429",), retry_after="7")) as server:
        backend = backend_for(server, max_retries=0)
        with pytest.raises(ft.RateLimitError) as caught:
            await backend.get_job("ftjob-1")
    assert caught.value.retry_after == 7.0


async def test_a_retry_after_given_as_an_http_date_is_the_wait_until_it() -> None:
    """RFC 9110's other form, which proxies and gateways send: seconds until that moment."""
    in_a_minute = email.utils.formatdate(time.time() + 60, usegmt=True)
    waits = []
    for date in (in_a_minute, "Wed, 21 Oct 2015 07:28:00 GMT"):
        faults = Faults(rate=1.0, kinds=("429",), retry_after=date)
        with OpenAIFake(faults) as server, pytest.raises(ft.RateLimitError) as caught:
            await backend_for(server, max_retries=0).get_job("ftjob-1")
        waits.append(caught.value.retry_after)
    assert waits[0] is not None and 55 <= waits[0] <= 60
    assert waits[1] == 0.0  # a moment already past


async def test_server_errors_are_retryable() -> None:
    with OpenAIFake(Faults(rate=1.0, kinds=("503",))) as server:
        backend = backend_for(server, max_retries=1)
        with pytest.raises(ft.ServerError) as caught:
            await backend.list_jobs()
    assert caught.value.retryable
    assert len(server.requests) == 2  # one retry, after the Retry-After it asked for


def test_large_file_goes_through_uploads_in_parts(server: OpenAIFake) -> None:
    data = dataset(n=200)
    tuner = tuner_for(server, upload_threshold=1, part_size=4096, upload_concurrency=3)
    job = tuner.fit(data)
    parts = [r for r in server.requests if r.path.endswith("/parts")]
    (upload,) = server.uploads.values()
    assert upload["status"] == "completed" and len(parts) == -(-upload["bytes"] // 4096) > 3
    assert not posts(server, "/v1/files")
    assert job.job.training_file == upload["file"]["id"]
    tuner_for(server, upload_threshold=1, part_size=4096).fit(data, suffix="again")
    assert len(server.uploads) == 1  # reused by name and size


async def test_each_step_of_a_parts_upload_is_retried_alone(server: OpenAIFake) -> None:
    """A 503 on the Upload's create, then a completion whose answer is lost (500 after it
    completed): the create is sent again, but the parts go once and the file is found."""
    answered: dict[str, int] = {}

    def flaky(method: str, path: str, status: int, payload: Any) -> Any:
        step = path.rsplit("/", 1)[-1]
        if step in ("uploads", "complete"):
            answered[step] = answered.get(step, 0) + 1
            if answered[step] == 1:
                return (503 if step == "uploads" else 500), {"error": {"message": "flaky"}}
        return None

    server.rewrite = flaky
    backend = backend_for(server, upload_threshold=1, part_size=2048, attempts=3)
    data = dataset(n=100)
    ref = await backend.upload(data)
    await backend.aclose()
    parts = [r for r in server.requests if r.path.endswith("/parts")]
    completed = [u for u in server.uploads.values() if u["status"] == "completed"]
    assert answered == {"uploads": 2, "complete": 1}
    assert len(completed) == 1 and len(parts) == -(-completed[0]["bytes"] // 2048)
    assert ref.id == completed[0]["file"]["id"]


async def test_failed_part_cancels_the_upload(server: OpenAIFake) -> None:
    backend = backend_for(server, max_retries=0, upload_threshold=1, part_size=2048)
    server.faults = Faults(rate=1.0, kinds=("500",), only="/parts")
    with pytest.raises(ft.ServerError):
        await backend.upload(dataset(n=100))
    server.faults = Faults()
    (upload,) = server.uploads.values()
    assert upload["status"] == "cancelled" and not [
        f for f in server.files.values() if f["purpose"] == "fine-tune"
    ]


def test_a_hosted_model_scored_on_its_training_rows_is_noted_from_the_registry(
    server: OpenAIFake,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """OpenAI keeps no training file we may read back: the registry's row digests tell."""
    train = dataset("seen")
    job = tuner_for(server).fit(train, suffix="seen").wait(poll_interval=0.02, timeout=10)
    assert job.model is not None
    held = ft.Dataset.from_records(
        [chat(i, system="Support agent other") for i in range(3)] + [chat(7, "Support agent seen")]
    )
    options = {"tuned": {"api_key": server.api_key, "base_url": server.base_url}}
    candidates = {"tuned": job.model}
    result = ft.evaluate(held, candidates, "exact_match", cache=False, predictor_options=options)
    assert result.notes == [
        "candidate 'tuned' was fine-tuned on 1 of the 4 evaluated examples (at index 3), "
        "answers included: its scores on them are inflated. Evaluate on data without them: "
        'holdout.excluding(train) (an eval config\'s exclude = "train.jsonl")'
    ]
    assert result.trained_on == {"tuned": [3]}
    assert ft.EvalResult.from_json(result.to_json(tmp_path / "r.json")).trained_on == {"tuned": [3]}
    by_name = {"tuned": ft.ModelRef(backend="openai", name=job.model.name)}  # as a config names it
    named = ft.evaluate(held, by_name, "exact_match", cache=False, predictor_options=options)
    assert named.notes == result.notes
    # a pipeline's gate passed a model on examples it learnt: it now refuses to
    from finetune.cli import main

    config = tmp_path / "eval.toml"
    config.write_text(
        f'data = "{held.to_jsonl(tmp_path / "held.jsonl")}"\nmetrics = ["exact_match"]\n'
        f'baseline = "base"\n[candidates]\nbase = "openai:{MODEL}"\n'
        f'tuned = "openai:{job.model.name}"\n'
    )
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", server.api_key)
    assert main(["eval", str(config), "--fail-unless-improved", "tuned"]) == 1
    assert capsys.readouterr().err.endswith(
        "not trusted: 'tuned' was fine-tuned on 1 of the evaluated examples; evaluate it on "
        'data it was not trained on (exclude = "train.jsonl" in the config leaves out the '
        "examples of its training set)\n"
    )
    elsewhere = tmp_path / "another machine"
    monkeypatch.setenv("FINETUNE_REGISTRY", str(elsewhere / "jobs.sqlite3"))
    unknown = ft.evaluate(held, by_name, "exact_match", cache=False, predictor_options=options)
    assert unknown.notes == [] and not elsewhere.exists()  # evaluating creates no registry
    # a job's model is looked up where its Tuner recorded the job, wherever the default is
    known = ft.evaluate(held, candidates, "exact_match", cache=False, predictor_options=options)
    assert known.notes == result.notes and not elsewhere.exists()


def test_a_tuners_models_are_asked_with_its_key_at_its_url(
    server: OpenAIFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``tuner.base_model`` and ``job.model`` were asked with ``OPENAI_API_KEY`` at
    ``OPENAI_BASE_URL`` (else api.openai.com), not with the key and URL the Tuner was built
    with: a gateway's Tuner had its models asked at OpenAI, with the environment's key."""
    import pickle

    monkeypatch.setenv("OPENAI_API_KEY", "sk-environment-must-not-travel")
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.setenv("OPENAI_ORG_ID", "org-of-the-environment")
    server.chat_responder = lambda model, messages: f"{model} says hi"
    tuner = tuner_for(server, organization="org-fake", project="proj-support")
    handle = tuner.fit(dataset("asked"), suffix="asked")
    done = handle.wait(poll_interval=0.02, timeout=10)
    assert done.model is not None
    (listed,) = [job.model for job in tuner.remote_jobs() if job.id == done.id]
    candidates = {
        "base": tuner.base_model,
        "tuned": done.model,
        "handle": handle.model,
        "listed": listed,
        "3-shot": done.model.with_few_shot(dataset("shots", 3), k=3),
    }
    result = ft.evaluate(dataset("held", 2), candidates, "exact_match", cache=False)
    tuned = f"{done.model.name} says hi"
    assert result.predictions("base") == [f"{MODEL} says hi"] * 2
    for name in ("tuned", "handle", "listed", "3-shot"):
        assert result.predictions(name) == [tuned] * 2
    chats = [r for r in server.requests if r.path == "/v1/chat/completions"]
    assert len(chats) == 10  # all here, each with the Tuner's key (another is a 401)
    assert {(r.headers["openai-organization"], r.headers["openai-project"]) for r in chats} == {
        ("org-fake", "proj-support")  # a tuned model answers only in its organisation
    }
    for model in (done.model, tuner.base_model):
        assert model.api_key == server.api_key and server.api_key not in repr(model)
        assert server.api_key.encode() not in pickle.dumps(model)
        assert server.api_key not in model.model_dump_json() + str(model.asked_with)
    assert server.api_key.encode() not in pickle.dumps(done)
    assert pickle.loads(pickle.dumps(done)).model.api_key is None  # another process: its own


def test_fifty_cycles_with_thirty_percent_faults() -> None:
    faults = Faults(rate=0.3, seed=11, slow_seconds=0.05)
    with OpenAIFake(faults, Phases(0.02, 0.02, 0.05)) as server:

        def cycle(i: int) -> ft.Job:
            tuner = ft.Tuner(
                "openai",
                model=MODEL,
                api_key=server.api_key,
                base_url=server.base_url,
                attempts=10,  # a quarter of requests fail: ten tries make a call fail 1e-6
                timeout=5,
                create_grace=1,  # the fake lists a job once made; the default 10 s is for
                first_wait=0.05,  # providers that list late, and backoff from 0.5 s slept
                **FAST_POLL,  # through runs of faults: what is tested is no duplicates
            )
            job = tuner.fit(dataset(str(i)), suffix=f"c{i}")
            return job.wait(poll_interval=0.02, max_interval=0.1, timeout=60)

        with ThreadPoolExecutor(max_workers=10) as pool:
            jobs = list(pool.map(cycle, range(50)))
        faulted = sum(r.fault is not None for r in server.requests)
        summary = server.summary()
    assert [j.status for j in jobs] == [ft.JobStatus.SUCCEEDED] * 50
    assert summary == {"files": 50, "distinct_files": 50, "jobs": 50, "distinct_keys": 50}
    assert faulted / len(server.requests) > 0.2


CRASHING_SCRIPT = textwrap.dedent(
    """
    import sys
    import finetune as ft
    rows = [{"messages": [{"role": "user", "content": f"q{i}"},
                          {"role": "assistant", "content": f"a{i}"}]} for i in range(12)]
    tuner = ft.Tuner("openai", model=sys.argv[1], api_key=sys.argv[2], base_url=sys.argv[3],
                     file_poll_interval=0.01)
    job = tuner.fit(ft.Dataset.from_records(rows), suffix="crash")
    print(job.wait(poll_interval=0.02, timeout=30).status.value)
    """
)


@pytest.mark.parametrize("hold", ["/v1/files", "/v1/fine_tuning/jobs"])
def test_sigkill_then_rerun_makes_one_job(server: OpenAIFake, tmp_path: Path, hold: str) -> None:
    script = tmp_path / "fit.py"
    script.write_text(CRASHING_SCRIPT)
    command = [sys.executable, str(script), MODEL, server.api_key, server.base_url]
    env = child_env(tmp_path, FINETUNE_REGISTRY=str(tmp_path / "registry.sqlite3"))
    rerun = sigkill_while_held(server, command, env, hold, is_target=not_a_probe)
    assert rerun.returncode == 0, rerun.stderr
    assert rerun.stdout.strip() == "succeeded"
    assert server.summary() == {"files": 1, "distinct_files": 1, "jobs": 1, "distinct_keys": 1}


async def test_async_lifecycle(server: OpenAIFake) -> None:
    async with ft.AsyncTuner(
        "openai", model=MODEL, api_key=server.api_key, base_url=server.base_url, **FAST_POLL
    ) as tuner:
        job = await tuner.fit(dataset())
        done = await job.wait(poll_interval=0.02, timeout=10)
        assert done.status is ft.JobStatus.SUCCEEDED
        assert len(await job.metrics()) == 5
        assert (await job.events())[-1].message == "The job has successfully completed"
        assert [c.step for c in await job.checkpoints()] == [3, 5]
        again = await tuner.fit(dataset())
        assert again.id == job.id
        assert [j.id for j in await tuner.remote_jobs()] == [job.id]


def test_options_cannot_replace_what_fit_sets_and_metadata_is_text(server: OpenAIFake) -> None:
    tuner = tuner_for(server)
    with pytest.raises(ft.UnsupportedFeature, match=r"options=\['metadata'\] would replace"):
        tuner.fit(dataset(), options={"metadata": {"team": "a"}})  # it carries the fit's key
    with pytest.raises(TypeError, match="metadata maps text to text; 'run' is int"):
        tuner.fit(dataset(), metadata={"run": 3})
    # what OpenAI's spec allows: 16 pairs (one is the fit's key), keys of 64, values of 512
    many = {f"k{i}": "v" for i in range(16)}
    with pytest.raises(ft.InvalidRequestError, match="give at most 15, not 16") as caught:
        tuner.fit(dataset(), metadata=many)
    assert caught.value.param == "metadata"
    with pytest.raises(ft.InvalidRequestError, match=r"'note': .* this pair has 4 and 513"):
        tuner.fit(dataset(), metadata={"note": "x" * 513})
    for misplaced in ({"n_epochs": 2}, {"lr": 1e-4}):  # sent as body fields: a 400 after the upload
        with pytest.raises(ft.UnsupportedFeature, match=r"are hyperparameters, not fields .* is f"):
            tuner.fit(dataset(), options=misplaced)
    # a config written for Tuner("hf") keeps its [options] when its backend becomes OpenAI
    for local in ({"max_length": 2048}, {"packing": True, "merge": True}):
        with pytest.raises(ft.UnsupportedFeature, match=r"are options of local training"):
            tuner.fit(dataset(), options=local)
    assert not server.files and not server.jobs  # refused before the upload, not after
    job = tuner.fit(dataset(), metadata={f"k{i}": "v" * 512 for i in range(15)})
    assert len(server.jobs[job.id].body["metadata"]) == 16  # the fake holds the spec's limit


def test_an_option_the_sdk_does_not_know_yet_is_sent_in_the_create_body(
    server: OpenAIFake,
) -> None:
    import numpy as np

    tuner = tuner_for(server)
    with pytest.raises(ValueError, match=r"options\['shuffle_seeds'\]\[1\] is nan"):
        tuner.fit(dataset(), options={"shuffle_seeds": [1, float("nan")]})
    assert not server.files and not server.jobs  # refused before the upload, not after
    job = tuner.fit(dataset(), options={"reasoning_effort": "low", "shuffle_seeds": (np.int64(7),)})
    body = server.jobs[job.id].body
    assert (body["reasoning_effort"], body["shuffle_seeds"]) == ("low", [7])
    again = tuner.fit(dataset(), options={"reasoning_effort": "low", "shuffle_seeds": [7]})
    assert again.id == job.id and len(server.jobs) == 1  # the same fit, its key the same


@pytest.mark.parametrize(
    ("hyperparameters", "says"),
    [
        ({"epochs": 51}, "OpenAI takes n_epochs from 1 to 50, not 51"),
        ({"batch_size": 512}, "OpenAI takes batch_size from 1 to 256, not 512"),
        ({"extra": {"n_epochs": 0}}, "OpenAI takes n_epochs from 1 to 50, not 0"),
        ({"seed": 2**31}, "OpenAI takes a seed up to 2147483647, not 2147483648"),
    ],
)
def test_settings_beyond_the_api_references_bounds_are_refused_before_the_upload(
    server: OpenAIFake, hyperparameters: dict[str, Any], says: str
) -> None:
    with pytest.raises(ft.InvalidRequestError, match=says):
        tuner_for(server).fit(dataset(), hyperparameters=hyperparameters)
    assert not server.files and not server.jobs


@pytest.mark.parametrize(
    ("setting", "says"),
    [
        ({"upload_concurrency": 0}, "upload_concurrency must be 1 or more"),
        ({"part_size": 0}, "part_size must be 1 byte to 64 MB"),
        ({"part_size": 65 * 1024 * 1024}, "part_size must be 1 byte to 64 MB"),
        ({"attempts": 0}, "attempts must be 1 or more"),
        ({"timeout": 0}, "timeout must be more than 0 seconds"),
        ({"attempts": True}, "attempts must be 1 or more .*, not True"),  # was one try
        ({"timeout": True}, "timeout must be more than 0 seconds, not True"),  # was 1 s
        ({"timeout": "30"}, "timeout must be more than 0 seconds, not '30'"),  # was a TypeError
        ({"first_wait": "1"}, "first_wait must be 0 seconds or more, not '1'"),  # at 1st retry
        ({"first_wait": -1}, "first_wait must be 0 seconds or more, not -1"),
        ({"retry_after_cap": "60"}, "retry_after_cap must be 0 seconds or more, not '60'"),
        ({"retry_after_cap": math.nan}, "retry_after_cap must be 0 seconds or more, not nan"),
    ],
)
def test_settings_that_would_hang_or_send_nothing_are_refused_at_once(
    setting: dict[str, Any], says: str
) -> None:
    with pytest.raises(ValueError, match=says):  # upload_concurrency=0 waited forever
        ft.Tuner("openai", model=MODEL, api_key="sk-test", **setting)


async def test_aclose_closes_the_client_it_built_and_leaves_a_given_one_open(
    server: OpenAIFake,
) -> None:
    import openai

    given = openai.AsyncOpenAI(api_key=server.api_key, base_url=server.base_url, max_retries=0)
    shared = backend_for(server, client=given)
    assert await shared.list_jobs() == []
    await shared.aclose()
    assert not given.is_closed()
    assert await shared.list_jobs() == []
    await given.close()

    own = backend_for(server)
    assert await own.list_jobs() == []
    built = own._sdk_client()
    await own.aclose()
    assert built.is_closed()
    assert await own.list_jobs() == []  # a later call builds a fresh client


async def test_async_uploads_in_parts_and_faults() -> None:
    with OpenAIFake(Faults(rate=0.3, seed=3, slow_seconds=0.05)) as server:
        tuner = ft.AsyncTuner(
            "openai",
            model=MODEL,
            api_key=server.api_key,
            base_url=server.base_url,
            attempts=10,
            upload_threshold=1,
            part_size=4096,
            **FAST_POLL,
        )
        jobs = await asyncio.gather(*(tuner.fit(dataset(str(i), n=60)) for i in range(5)))
        done = await asyncio.gather(
            *(j.wait(poll_interval=0.02, max_interval=0.1, timeout=60) for j in jobs)
        )
        await tuner.aclose()
    assert {d.status for d in done} == {ft.JobStatus.SUCCEEDED}
    assert server.summary()["jobs"] == 5 and server.summary()["distinct_files"] == 5


def test_missing_key_is_a_clear_error_on_the_first_call(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    tuner = ft.Tuner("openai", model=MODEL)
    assert tuner.validate(dataset()).ok  # no key needed before any money is spent
    with pytest.raises(ft.AuthenticationError, match="OPENAI_API_KEY"):
        tuner.fit(dataset())


def test_finetune_jobs_refresh_asks_the_provider_about_jobs_not_ended(
    server: OpenAIFake, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``finetune jobs`` listed a hosted job as the registry last saw it (``validating``) with
    no word that it was no news, and no way to ask."""
    from finetune.cli import main

    job = tuner_for(server).fit(dataset())
    job.wait(poll_interval=0.02, timeout=10)  # succeeded on the provider; recorded as created
    registry = ft.JobRegistry()
    (record,) = registry.list()
    registry.record(
        job.job.model_copy(update={"status": ft.JobStatus.VALIDATING}), endpoint=record.endpoint
    )
    assert main(["jobs"]) == 0
    out, err = capsys.readouterr()
    assert out.split()[2] == "validating"
    assert "1 job not ended shown as last seen" in err and "finetune jobs --refresh" in err
    assert main(["jobs", "--refresh"]) == 0  # no key in the environment: not asked
    assert "warning: 1 openai job not read again: " in capsys.readouterr().err
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", server.api_key)
    assert main(["jobs", "--refresh"]) == 0
    out, err = capsys.readouterr()
    assert out.split()[2] == "succeeded" and f"-> {job.model.name}" in out and err == ""
    assert registry.get("openai", job.id).status == "succeeded"


def test_tuner_jobs_refresh_asks_about_jobs_not_ended_and_keeps_what_it_hears(
    server: OpenAIFake,
) -> None:
    """``tuner.jobs()`` of a hosted backend could only list jobs as last seen; the command's
    ``--refresh`` had no Python twin."""
    tuner = tuner_for(server)
    job = tuner.fit(dataset())
    job.wait(poll_interval=0.02, timeout=10)
    registry = ft.JobRegistry()
    (record,) = registry.list()
    as_seen = job.job.model_copy(update={"status": ft.JobStatus.VALIDATING})
    registry.record(as_seen, endpoint=record.endpoint)
    gone = as_seen.model_copy(update={"id": "ftjob-gone", "fine_tuned_model": None})
    registry.record(gone, endpoint=record.endpoint)  # a job the provider no longer knows
    elsewhere = as_seen.model_copy(update={"id": "ftjob-elsewhere"})
    registry.record(elsewhere, endpoint="openai:https://other.example/v1:org")
    asked = len(server.requests)
    assert {r.job_id: r.status for r in tuner.jobs()} == {
        job.id: "validating",
        "ftjob-gone": "validating",
        "ftjob-elsewhere": "validating",
    }
    assert len(server.requests) == asked  # as last seen: nothing asked
    listed = {r.job_id: r for r in tuner.jobs(refresh=True)}
    assert listed[job.id].status == "succeeded"
    assert listed[job.id].fine_tuned_model == job.model.name
    assert listed["ftjob-gone"].status == listed["ftjob-elsewhere"].status == "validating"
    gets = [r.path for r in server.requests[asked:] if r.method == "GET"]
    assert sorted(gets) == sorted(f"/v1/fine_tuning/jobs/{i}" for i in (job.id, "ftjob-gone"))
    assert registry.get("openai", job.id).status == "succeeded"  # the registry keeps it
    asked = len(server.requests)
    tuner.jobs(refresh=True)  # an ended job is not asked again
    assert [r.path for r in server.requests[asked:]] == ["/v1/fine_tuning/jobs/ftjob-gone"]
    server.faults = Faults(rate=1.0, kinds=("500",))
    with pytest.raises(ft.ServerError):
        tuner_for(server, attempts=1).jobs(refresh=True)  # told, not listed as if all were well


def test_a_hosted_job_is_not_deleted_and_nothing_is_asked(server: OpenAIFake) -> None:
    job = tuner_for(server).fit(dataset())
    asked = len(server.requests)
    with pytest.raises(ft.UnsupportedFeature, match="delete a job's files"):
        job.delete()
    assert len(server.requests) == asked and ft.JobRegistry().get("openai", job.id) is not None
