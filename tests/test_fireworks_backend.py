"""The Fireworks AI backend through the real ``fireworks-ai`` SDK over real HTTP on 127.0.0.1."""

from __future__ import annotations

import json
import re
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

import finetune as ft
from finetune.backends.fireworks import FireworksBackend

from .conftest import chat
from .fakes._server import Faults, Raw, child_env, sigkill_while_held
from .fakes.fireworks_fake import ACCOUNT, SIGNATURE, FireworksFake, Phases

pytest.importorskip("fireworks")
MODEL = "accounts/fireworks/models/llama-v3p1-8b-instruct"
JOBS = f"/v1/accounts/{ACCOUNT}/supervisedFineTuningJobs"
DPO_JOBS = f"/v1/accounts/{ACCOUNT}/dpoJobs"


@pytest.fixture
def server() -> Any:
    with FireworksFake() as fake:
        yield fake


def tuner_for(server: FireworksFake, **options: Any) -> ft.Tuner:
    settings = {"api_key": server.api_key, "base_url": server.url, "account_id": ACCOUNT}
    return ft.Tuner("fireworks", model=MODEL, dataset_poll_interval=0.01, **settings, **options)


def dataset(tag: str = "", n: int = 12) -> ft.Dataset:
    return ft.Dataset.from_records([chat(i, system=f"Agent {tag}".strip()) for i in range(n)])


def creates(server: FireworksFake) -> list[Any]:
    return [r for r in server.requests if (r.method, r.path) == ("POST", JOBS)]


def pair(i: int, tag: str = "", answers: int = 1) -> dict[str, Any]:
    """A preference pair in the shape Fireworks' DPO takes (one assistant message a side)."""
    said = [{"role": "assistant", "content": f"Order {i} ships today.{tag}"}] * answers
    return {
        "input": {"messages": [{"role": "user", "content": f"Where is order {i}?{tag}"}]},
        "preferred_output": said,
        "non_preferred_output": [{"role": "assistant", "content": "No idea."}],
    }


def pairs(tag: str = "", n: int = 6) -> ft.Dataset:
    return ft.Dataset.from_records([pair(i, tag) for i in range(n)])


def test_max_cost_starts_no_job_that_fireworks_itself_quotes_above_it(
    server: FireworksFake,
) -> None:
    data, params = dataset("budget"), ft.Hyperparameters(epochs=2)
    quoted = tuner_for(server).estimate(data, params)
    assert quoted.cost is not None and quoted.provider_figures is not None
    theirs = quoted.provider_figures["estimated_total_price"]
    assert quoted.cost < theirs  # our table's price, under the quote of the fake
    budget = (quoted.cost + theirs) / 2
    with pytest.raises(ft.InvalidRequestError, match="the provider's own quote for this job"):
        tuner_for(server).fit(data, hyperparameters=params, max_cost=budget)
    assert creates(server) == []
    tuner_for(server).fit(data, hyperparameters=params, max_cost=theirs)
    assert len(creates(server)) == 1


def test_full_lifecycle(server: FireworksFake) -> None:
    tuner = tuner_for(server)
    estimate = tuner.estimate(dataset(), ft.Hyperparameters(epochs=2))
    assert estimate.provider_figures and "estimated_total_price" in estimate.provider_figures
    params = ft.Hyperparameters(epochs=2, batch_size=16, learning_rate=1e-4, lora=ft.LoRA(r=16))
    job = tuner.fit(
        dataset(),
        validation=dataset("v", 4),
        hyperparameters=params,
        suffix="support",
        integrations=[{"type": "wandb", "project": "p", "api_key": "k" * 40}],
    )
    assert job.id.startswith("ft-") and job.job.raw["name"].endswith(job.id)
    done = job.wait(poll_interval=0.02, timeout=10)
    assert done.status is ft.JobStatus.SUCCEEDED
    assert job.model.name == f"accounts/{ACCOUNT}/models/{job.id}"
    assert job.model.note is not None and "on-demand" in job.model.note
    (create,) = creates(server)
    assert create.query == [("supervisedFineTuningJobId", job.id)]
    body = create.body
    assert body["baseModel"] == MODEL and body["outputModel"] == job.model.name
    assert (body["epochs"], body["batchSizeSamples"], body["learningRate"]) == (2, 16, 1e-4)
    assert body["loraRank"] == 16 and body["displayName"] == "support"
    assert body["dataset"].startswith(f"accounts/{ACCOUNT}/datasets/finetune-")
    assert body["evaluationDataset"].endswith("-validation")
    assert body["wandbConfig"] == {"enabled": True, "apiKey": "k" * 40, "project": "p"}
    assert [p.step for p in job.metrics()] == [1, 2, 3, 4, 5]
    assert len(server.datasets) == 2  # the estimate's upload was reused
    shown = done.hyperparameters  # read back from the job, for the registry's lineage too
    assert (shown.epochs, shown.batch_size, shown.learning_rate) == (2, 16, 1e-4)


def test_an_application_s_logs_show_no_signature_and_no_w_and_b_key(
    server: FireworksFake, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Only the ``finetune`` command masked them: an application logging at DEBUG (a
    notebook's ``basicConfig``) got httpx's line with the signed upload URL, and the SDK's
    request body with the W&B key, as they were."""
    from finetune.backends.fireworks import _backend

    monkeypatch.setattr(_backend, "SINGLE_UPLOAD_LIMIT", 64)  # the file goes by signed URL
    wandb_key = "wandb-" + "k" * 34
    caplog.set_level("DEBUG")
    job = tuner_for(server).fit(
        dataset("logs"), integrations=[{"type": "wandb", "project": "p", "api_key": wandb_key}]
    )
    job.wait(poll_interval=0.02, timeout=10)
    shown = caplog.text
    assert SIGNATURE not in shown and wandb_key not in shown and server.api_key not in shown
    assert "X-Amz-Signature=***" in shown  # the line is still there, masked
    assert re.search(r"Request options: .*'wandbConfig': \{[^}]*'apiKey': '\*\*\*'", shown)
    # the job resource echoes the key (the API reference shows wandbConfig.apiKey): a Job
    # keeps the provider's answer as raw, which must never hold a credential
    seen = job.refresh()
    assert seen.raw is not None and seen.raw["wandbConfig"]["apiKey"] == "***"
    assert wandb_key not in seen.model_dump_json() and wandb_key not in caplog.text


def test_a_dpo_fit_runs_as_a_fireworks_dpo_job(server: FireworksFake) -> None:
    tuner = tuner_for(server)
    estimate = tuner.estimate(pairs(), ft.Hyperparameters(epochs=2))
    assert any("quotes supervised jobs only" in note for note in estimate.notes)
    assert not server.requests  # no quote to ask for, so nothing uploaded
    params = ft.Hyperparameters(epochs=2, learning_rate=5e-5, beta=0.2, lora=ft.LoRA(r=16))
    job = tuner.fit(pairs(), method="dpo", hyperparameters=params, suffix="prefs")
    assert job.id.startswith("dpo-") and job.job.method == "dpo"
    done = job.wait(poll_interval=0.02, timeout=10)
    assert done.status is ft.JobStatus.SUCCEEDED and done.hyperparameters.beta == 0.2
    assert job.model.name == f"accounts/{ACCOUNT}/models/{job.id}"
    (create,) = [r for r in server.requests if (r.method, r.path) == ("POST", DPO_JOBS)]
    assert create.query == [("dpoJobId", job.id)] and creates(server) == []
    assert create.body["lossConfig"] == {"method": "DPO", "dpo": {"beta": 0.2}}
    assert create.body["displayName"] == "prefs"
    config = create.body["trainingConfig"]
    assert (config["baseModel"], config["outputModel"]) == (MODEL, job.model.name)
    assert (config["epochs"], config["learningRate"], config["loraRank"]) == (2, 5e-5, 16)
    (sent,) = server.contents.values()
    assert json.loads(sent.splitlines()[0]) == pair(0)
    assert [p.step for p in job.metrics()] == [1, 2, 3, 4, 5]
    again = tuner_for(server, registry=False)
    assert again.job(job.id).job.method == "dpo"
    rerun = again.fit(pairs(), method="dpo", hyperparameters=params, suffix="prefs")
    assert rerun.id == job.id and len(server.dpo_jobs) == 1
    supervised = again.fit(dataset(), suffix="sft")
    listed = again.run(again.backend.list_jobs())
    assert {j.id: j.method for j in listed} == {job.id: "dpo", supervised.id: "sft"}


def test_a_dpo_job_payload_reads_its_nested_settings() -> None:
    """The shape of Fireworks' documented ``GET .../dpoJobs/{id}`` answer."""
    from finetune.backends.fireworks._mapping import job_from_payload

    payload = {
        "dataset": f"accounts/{ACCOUNT}/datasets/prefs",
        "name": f"accounts/{ACCOUNT}/dpoJobs/dpo-abc",
        "displayName": "prefs",
        "createTime": "2026-11-07T05:31:56Z",
        "completedTime": "2026-11-07T06:31:56Z",
        "state": "JOB_STATE_FAILED",
        "status": {"code": "INVALID_ARGUMENT", "message": "pairs must be one-turn"},
        "trainingConfig": {
            "outputModel": f"accounts/{ACCOUNT}/models/dpo-abc",
            "baseModel": MODEL,
            "learningRate": 5e-5,
            "epochs": 2,
            "loraRank": 8,
        },
        "lossConfig": {"method": "DPO", "dpo": {"beta": 0.1}},
    }
    job = job_from_payload(payload)
    assert (job.id, job.method, job.base_model, job.suffix) == ("dpo-abc", "dpo", MODEL, "prefs")
    assert job.status is ft.JobStatus.FAILED and job.fine_tuned_model is None
    assert job.error is not None and job.error.message == "pairs must be one-turn"
    assert (job.hyperparameters.epochs, job.hyperparameters.beta) == (2, 0.1)
    done = job_from_payload(payload | {"state": "JOB_STATE_COMPLETED"})
    assert done.fine_tuned_model == f"accounts/{ACCOUNT}/models/dpo-abc"


def test_a_dpo_job_made_elsewhere_is_found_and_cancelled(server: FireworksFake) -> None:
    import httpx

    tuner = tuner_for(server)
    tuner.fit(pairs(), method="dpo").wait(poll_interval=0.02, timeout=10)
    server.phases = Phases(0, 0, 30)
    body = {"dataset": next(iter(server.datasets.values()))["name"]}
    body["trainingConfig"] = {"baseModel": MODEL}
    made = httpx.post(
        f"{server.url}{DPO_JOBS}?dpoJobId=console-made",
        json=body,
        headers={"Authorization": f"Bearer {server.api_key}"},
    )
    assert made.status_code == 200
    elsewhere = tuner.job("console-made")  # not a dpo- id of ours: found in dpoJobs all the same
    assert elsewhere.job.method == "dpo" and elsewhere.job.status is ft.JobStatus.RUNNING
    assert elsewhere.cancel().status is ft.JobStatus.CANCELLED
    assert ("POST", f"{DPO_JOBS}/console-made:cancel") in {
        (r.method, r.path) for r in server.requests
    }


def test_ids_derived_from_the_key_make_a_rerun_idempotent(server: FireworksFake) -> None:
    first = tuner_for(server).fit(dataset(), suffix="x")
    again = tuner_for(server, registry=False).fit(dataset(), suffix="x")
    assert again.id == first.id
    other = tuner_for(server, registry=False).fit(dataset(), suffix="y")
    assert other.id != first.id
    assert server.summary() == {"datasets": 1, "jobs": 2}


async def test_a_taken_job_id_returns_that_job(server: FireworksFake) -> None:
    backend = FireworksBackend(api_key=server.api_key, base_url=server.url, account_id=ACCOUNT)
    training = await backend.upload(dataset())
    request = ft.backends.JobRequest(
        base_model=MODEL, training_file=training, idempotency_key="ft-k"
    )
    made = await backend.create_job(request)
    again = await backend.create_job(request)  # a lost answer, sent again: 409 ALREADY_EXISTS
    assert again.id == made.id and server.summary()["jobs"] == 1
    await backend.aclose()


async def test_a_large_dataset_goes_by_signed_url_and_a_failed_put_is_sent_again_alone(
    server: FireworksFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over the single-upload limit (lowered here): a signed URL, a streamed PUT whose first
    answer is a 503 (retried alone, the URL is not asked for again), then a validateUpload
    whose first answer is lost (a 500 after it took the file: read, not sent again)."""
    from finetune.backends.fireworks import _backend

    monkeypatch.setattr(_backend, "SINGLE_UPLOAD_LIMIT", 64)
    puts = []
    validations = []

    def flaky_put(method: str, path: str, status: int, payload: Any) -> Any:
        if method == "PUT":
            puts.append(path)
            return (503, {"error": {"message": "busy"}}) if len(puts) == 1 else None
        if path.endswith(":validateUpload"):
            validations.append(path)
            return (500, {"error": {"message": "lost"}}) if len(validations) == 1 else None
        return None

    server.rewrite = flaky_put
    backend = FireworksBackend(api_key=server.api_key, base_url=server.url, account_id=ACCOUNT)
    data = dataset()
    training = await backend.upload(data)
    await backend.aclose()
    verbs = [r.path.rsplit(":", 1)[-1] for r in server.requests if r.method == "POST"]
    assert verbs.count("getUploadEndpoint") == 1 and verbs.count("validateUpload") == 1
    assert len(puts) == 2 and "upload" not in verbs
    name = training.id.rsplit("/", 1)[-1]
    lines = server.contents[name].decode().splitlines()
    assert len(lines) == len(data) and all(json.loads(line)["messages"] for line in lines)


async def test_a_refused_put_names_no_signature(
    server: FireworksFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Storage echoes the signature it refused (as S3 does): it is redacted from our error."""
    from finetune.backends.fireworks import _backend

    monkeypatch.setattr(_backend, "SINGLE_UPLOAD_LIMIT", 64)
    refusal = f"<Error><Code>SignatureDoesNotMatch</Code><SignatureProvided>{SIGNATURE}"
    server.rewrite = lambda method, path, status, payload: (
        (403, Raw(refusal.encode())) if method == "PUT" else None
    )
    backend = FireworksBackend(api_key=server.api_key, base_url=server.url, account_id=ACCOUNT)
    with pytest.raises(ft.BackendError) as caught:
        await backend.upload(dataset())
    await backend.aclose()
    assert caught.value.status_code == 403 and "SignatureDoesNotMatch" in str(caught.value)
    assert SIGNATURE not in f"{caught.value} {caught.value!r} {caught.value.__cause__!r}"


def test_settings_fireworks_cannot_take_are_refused_before_uploading(
    server: FireworksFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    tuner = tuner_for(server)
    for params in (
        ft.Hyperparameters(learning_rate_multiplier=2.0),
        ft.Hyperparameters(warmup=0.1),
        ft.Hyperparameters(extra={"momentum": 0.9}),
    ):
        with pytest.raises(ft.UnsupportedFeature):
            tuner.fit(dataset(), hyperparameters=params)
    with pytest.raises(ft.UnsupportedFeature, match="DPO jobs take no validation set"):
        tuner.fit(pairs(), validation=pairs("v"), method="dpo")
    with pytest.raises(ft.UnsupportedFeature, match="DPO jobs take no validation set"):
        tuner.validate(pairs(), pairs("v"))  # it reported the data as ready to train
    assert tuner.validate(dataset(), dataset("v")).ok  # SFT takes one
    with pytest.raises(ft.UnsupportedFeature, match=r"beta above 0 and below 0\.5, not 0\.6"):
        tuner.fit(pairs(), method="dpo", hyperparameters=ft.Hyperparameters(beta=0.6))
    with pytest.raises(ft.UnsupportedFeature, match="Fireworks DPO takes no warmup"):
        tuner.fit(pairs(), method="dpo", hyperparameters=ft.Hyperparameters(warmup=0.1))
    for lora, says in (  # only the rank was sent: the rest was dropped without a word
        (ft.LoRA(r=16, alpha=64), "Fireworks takes no LoRA alpha=64; of LoRA it takes r"),
        (ft.LoRA(quantize_4bit=True), "Fireworks takes no LoRA quantize_4bit=True"),
    ):
        with pytest.raises(ft.UnsupportedFeature, match=re.escape(says)):
            tuner.fit(dataset(), hyperparameters=ft.Hyperparameters(lora=lora))
    two_turns = ft.Dataset.from_records([pair(i, answers=2) for i in range(6)])
    with pytest.raises(ft.ValidationFailed) as refused:
        tuner.fit(two_turns, method="dpo")
    assert "preferred_output: fireworks takes one assistant message here, not 2" in str(
        refused.value
    )
    no_account = ft.Tuner("fireworks", model=MODEL, api_key=server.api_key, base_url=server.url)
    with pytest.raises(ft.InvalidRequestError, match="FIREWORKS_ACCOUNT_ID") as caught:
        no_account.fit(dataset())
    assert "API key" not in str(caught.value)
    assert not server.requests
    monkeypatch.delenv("FIREWORKS_API_KEY", raising=False)
    monkeypatch.delenv("FIREWORKS_ACCOUNT_ID", raising=False)
    with pytest.raises(ft.InvalidRequestError) as caught:  # both told at once, not one a run
        ft.Tuner("fireworks", model=MODEL, base_url=server.url).fit(dataset())
    assert str(caught.value) == (
        "[fireworks] no Fireworks account id: set FIREWORKS_ACCOUNT_ID or pass account_id=...; "
        "no API key either: set FIREWORKS_API_KEY or pass api_key=... to the Tuner "
        "(param: account_id)"
    )


def test_a_model_fireworks_does_not_tune_is_refused_before_uploading(
    server: FireworksFake,
) -> None:
    """A misspelt or served-only base model was found by the job's create, after the upload."""
    for model, says in (
        (
            "accounts/fireworks/models/llama-v3p1-8b-instrct",
            "Fireworks has no model accounts/fireworks/models/llama-v3p1-8b-instrct (did you "
            "mean accounts/fireworks/models/llama-v3p1-8b-instruct?): check",
        ),
        (
            "accounts/fireworks/models/deepseek-v3",
            "Fireworks serves accounts/fireworks/models/deepseek-v3 but does not fine-tune it",
        ),
        (
            "llama-v3p1-8b-instruct",
            "Fireworks names a model in full, accounts/fireworks/models/llama-v3p1-8b-instruct",
        ),
    ):
        tuner = tuner_for(server)
        tuner.model = model
        with pytest.raises(ft.InvalidRequestError, match=re.escape(says)) as refused:
            tuner.fit(dataset())
        assert refused.value.param == "model"
        with pytest.raises(ft.InvalidRequestError, match=re.escape(says)):
            tuner.fit(pairs(), method="dpo")
    assert {(r.method, r.path) for r in server.requests} == {
        ("GET", "/v1/accounts/fireworks/models/llama-v3p1-8b-instrct"),
        ("GET", "/v1/accounts/fireworks/models/deepseek-v3"),
    }
    assert not server.datasets and not server.jobs and not server.dpo_jobs
    server.requests.clear()
    tuner = tuner_for(server)
    tuner.fit(dataset("a")).wait(timeout=30)
    tuner.fit(dataset("b"))
    reads = [r.path for r in server.requests if "/models/" in r.path]
    assert reads == [f"/v1/{MODEL}"]  # read once by a backend, then known


def test_a_model_resource_says_whether_fireworks_tunes_it() -> None:
    from finetune.backends.fireworks._mapping import base_model_refusal, model_path

    assert model_path(MODEL) == ("fireworks", "llama-v3p1-8b-instruct")
    assert model_path("accounts/fireworks/llama") is None and model_path("qwen3-8b") is None
    for resource in (
        {"name": MODEL, "tunable": True},
        {"name": MODEL, "baseModelDetails": {"tunable": True}},
        {"name": MODEL},  # says nothing: Fireworks decides at the create
    ):
        assert base_model_refusal(MODEL, resource) is None
    for resource in ({"tunable": False}, {"baseModelDetails": {"tunable": False}}):
        assert "does not fine-tune it" in (base_model_refusal(MODEL, resource) or "")
    mine = "accounts/acme/models/support-v2"
    assert "Fireworks has no model accounts/acme/models/support-v2" in (
        base_model_refusal(mine, None) or ""
    )


def test_failure_and_cancel(server: FireworksFake) -> None:
    failing = tuner_for(server).fit(dataset(), suffix="fail")
    with pytest.raises(ft.JobFailed, match="no assistant turns"):
        failing.wait(poll_interval=0.02, timeout=10)
    server.phases = Phases(0, 0, 30)
    job = tuner_for(server).fit(dataset(), suffix="slow")
    assert job.cancel().status is ft.JobStatus.CANCELLED


async def test_odd_answers_are_server_errors(server: FireworksFake) -> None:
    server.rewrite = lambda method, path, status, payload: (
        (200, Raw(b"<html>oops</html>", "text/html")) if path.startswith(JOBS + "/") else None
    )
    backend = FireworksBackend(
        api_key=server.api_key, base_url=server.url, account_id=ACCOUNT, attempts=1
    )
    with pytest.raises(ft.ServerError, match=r"\[fireworks\].*not JSON"):
        await backend.get_job("ft-1")
    await backend.aclose()


def test_fifty_cycles_with_faults_make_no_duplicates() -> None:
    faults = Faults(rate=0.25, seed=9, slow_seconds=0.05, retry_after="0.01")
    with FireworksFake(faults, Phases(0.01, 0.01, 0.05)) as server:

        def cycle(i: int) -> ft.Job:
            # the fake lists a job once it is made: 1 s of create_grace finds one whose answer
            # was lost (the default 10 s waits for providers that list late), and backoff from
            # 0.05 s keeps a run of faults from sleeping 30 s: what is tested is no duplicates
            tuner = tuner_for(server, attempts=10, timeout=5, create_grace=1, first_wait=0.05)
            if i % 5 == 0:  # one fit in five is a DPO job
                job = tuner.fit(pairs(str(i)), method="dpo", suffix=f"c{i}")
            else:
                job = tuner.fit(dataset(str(i)), suffix=f"c{i}")
            return job.wait(poll_interval=0.02, max_interval=0.1, timeout=60)

        with ThreadPoolExecutor(max_workers=8) as pool:
            jobs = list(pool.map(cycle, range(50)))
        faulted = sum(r.fault is not None for r in server.requests)
        summary, dpo_jobs = server.summary(), len(server.dpo_jobs)
    assert [j.status for j in jobs] == [ft.JobStatus.SUCCEEDED] * 50
    assert summary == {"datasets": 50, "jobs": 50} and dpo_jobs == 10
    assert [j.method for j in jobs[::5]] == ["dpo"] * 10
    assert faulted > 50


CRASHING_SCRIPT = textwrap.dedent(
    """
    import sys
    import finetune as ft
    rows = [{"messages": [{"role": "user", "content": f"q{i}"},
                          {"role": "assistant", "content": f"a{i}"}]} for i in range(12)]
    tuner = ft.Tuner("fireworks", model=sys.argv[1], api_key=sys.argv[2], base_url=sys.argv[3],
                     account_id=sys.argv[4], dataset_poll_interval=0.01)
    job = tuner.fit(ft.Dataset.from_records(rows), suffix="crash")
    print(job.wait(poll_interval=0.02, timeout=30).status.value)
    """
)


@pytest.mark.parametrize("registry", [True, False])
def test_sigkill_between_upload_and_create_then_rerun_makes_one_job(
    server: FireworksFake, tmp_path: Path, registry: bool
) -> None:
    script = tmp_path / "fit.py"
    script.write_text(CRASHING_SCRIPT)
    command = [sys.executable, str(script), MODEL, server.api_key, server.url, ACCOUNT]
    registry_file = tmp_path / "registry.sqlite3"
    env = child_env(tmp_path, FINETUNE_REGISTRY=str(registry_file))
    forget = None if registry else lambda: registry_file.unlink(missing_ok=True)
    rerun = sigkill_while_held(server, command, env, JOBS, before_rerun=forget)
    assert rerun.returncode == 0, rerun.stderr
    assert rerun.stdout.strip() == "succeeded"
    assert server.summary() == {"datasets": 1, "jobs": 1}


def test_a_job_id_holding_the_action_separator_is_refused_before_anything_is_sent(
    server: FireworksFake,
) -> None:
    """The SDK's aiohttp turns ``%3A`` back into ``:``, which Fireworks reads as an action
    (``{id}:cancel``): ``tuner.job("x:cancel")`` would have asked another endpoint."""
    with pytest.raises(ft.InvalidRequestError, match="'x:cancel' is not a job id"):
        tuner_for(server).job("x:cancel")
    assert server.requests == []
