"""The Together AI backend through the real ``together`` SDK over real HTTP on 127.0.0.1."""

from __future__ import annotations

import html
import json
import os
import re
import subprocess
import sys
import tempfile
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

import finetune as ft
from finetune._processes import process_start_time
from finetune.backends._files import remove_orphan_folders
from finetune.backends.together import TogetherBackend

from .conftest import chat
from .fakes._server import Faults, Raw, child_env, sigkill_while_held
from .fakes.together_fake import Phases, TogetherFake

pytest.importorskip("together")
TEXT: dict[str, Any] = {"capture_output": True, "text": True, "check": True}
MODEL = "meta-llama/Meta-Llama-3.1-8B-Instruct-Reference"
LORA = ft.Hyperparameters(epochs=2, lora=ft.LoRA(r=8))


@pytest.fixture
def server() -> Any:
    with TogetherFake() as fake:
        yield fake


def tuner_for(server: TogetherFake, model: str = MODEL, **options: Any) -> ft.Tuner:
    return ft.Tuner("together", model=model, api_key=server.api_key, base_url=server.url, **options)


def dataset(tag: str = "", n: int = 12) -> ft.Dataset:
    return ft.Dataset.from_records([chat(i, system=f"Agent {tag}".strip()) for i in range(n)])


def creates(server: TogetherFake) -> list[Any]:
    return [r for r in server.requests if (r.method, r.path) == ("POST", "/v1/fine-tunes")]


def test_a_model_off_our_table_is_checked_against_the_context_together_reports(
    server: TogetherFake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Our table lists some of the models Together trains: another one is validated with no
    context limit, so its examples are checked against Together's ``max_seq_length_sft`` once
    the fit has read the model's limits, and those over it stop the fit before any upload."""
    from .fakes import together_fake

    model = "acme/Tiny-Chat-1B"
    monkeypatch.setitem(together_fake.MODELS, model, 64)
    tuner = tuner_for(server, model=model)
    report = tuner.validate(dataset())
    (finding,) = report.kept["unchecked_context"]
    assert report.ok and model in finding.message and "FINETUNE_MODELS_FILE" in finding.message
    assert "unchecked_context" not in tuner_for(server).validate(dataset()).counts  # table's
    assert tuner.estimate_locally(dataset()).context_limit is None
    assert any(
        "no context limit is known" in note for note in tuner.estimate_locally(dataset()).notes
    )
    rows = [chat(i) for i in range(12)]
    rows[4]["messages"][2]["content"] = "A long answer. " * 40  # about 150 tokens
    path = tmp_path / "long.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    with pytest.raises(ft.ValidationFailed, match="too_many_tokens") as refused:
        tuner.fit(ft.Dataset.from_jsonl(path))
    (over,) = refused.value.report.kept["too_many_tokens"]
    assert (over.file, over.line) == ("long.jsonl", 5) and "over the limit of 64" in over.message
    assert not server.files and not creates(server)  # nothing uploaded, no job
    # a quote reads the limits too (a Tuner that has not): the figures replace the note
    quoted = tuner_for(server, model=model).estimate(dataset())
    assert quoted.provider_figures and (quoted.context_limit, quoted.examples_over_limit) == (64, 0)
    assert not any("no context limit is known" in note for note in quoted.notes)
    uploaded = len(server.files)
    long = tuner_for(server, model=model).estimate(ft.Dataset.from_jsonl(path))
    assert (long.context_limit, long.examples_over_limit, long.fits_context) == (64, 1, False)
    assert f"1 example over the 64-token limit together reports for {model}" in long.notes[-1]
    # what a fit refuses is not sent to be priced either: it was uploaded, then quoted
    assert long.provider_figures is None and len(server.files) == uploaded
    assert any("quote was skipped: an example of" in note for note in long.notes)
    held = tuner_for(server, model=model).estimate(
        dataset(), validation=ft.Dataset.from_jsonl(path)
    )
    assert held.provider_figures is None and len(server.files) == uploaded  # the held-out set too
    shared = {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "x"}]}
    shared["conversations"][1]["value"] = "A long answer. " * 40  # ShareGPT's shape, read as chat
    sharegpt = ft.Dataset.from_records([*(chat(i) for i in range(11)), shared])
    assert tuner_for(server, model=model).estimate(sharegpt).provider_figures is None
    assert len(server.files) == uploaded
    job = tuner.fit(dataset(), hyperparameters=LORA)  # examples within it train
    assert job.wait(poll_interval=0.02, timeout=10).status is ft.JobStatus.SUCCEEDED


def test_full_lifecycle(server: TogetherFake) -> None:
    tuner = tuner_for(server)
    estimate = tuner.estimate(dataset(), LORA)
    assert estimate.provider_figures is not None
    assert estimate.provider_figures["estimated_train_token_count"] > 0
    assert any("Together quotes" in note for note in estimate.notes)
    job = tuner.fit(
        dataset(),
        validation=dataset("v", 3),
        hyperparameters=ft.Hyperparameters(
            epochs=2, batch_size=16, learning_rate=2e-5, seed=3, lora=ft.LoRA(r=8)
        ),
        suffix="support",
        integrations=[{"type": "wandb", "wandb": {"project": "p", "api_key": "w" * 40}}],
    )
    done = job.wait(poll_interval=0.02, timeout=10)
    assert done.status is ft.JobStatus.SUCCEEDED
    assert job.model.name.startswith("fakeuser/Meta-Llama-3.1-8B-Instruct-Reference-support-")
    assert job.model.note is not None and "dedicated endpoint" in job.model.note
    (create,) = creates(server)
    body = create.body
    assert body["training_type"] == {
        "type": "Lora",
        "lora_r": 8,
        "lora_alpha": 32,
        "lora_dropout": 0.05,
        "lora_trainable_modules": "all-linear",
    }
    assert body["training_method"] == {"method": "sft", "train_on_inputs": "auto"}
    assert (body["n_epochs"], body["batch_size"], body["learning_rate"]) == (2, 16, 2e-5)
    assert body["random_seed"] == 3 and body["suffix"] == "support" and body["validation_file"]
    assert body["n_evals"] == 2  # one evaluation an epoch: Together's default, 0, never evaluates
    assert body["wandb_project_name"] == "p" and body["wandb_api_key"] == "w" * 40
    assert [p.step for p in job.metrics()] == [1, 2, 3, 4, 5]
    assert job.metrics()[0].valid_loss == 2.2
    assert [e.message for e in job.events()][-1] == "Training completed"
    assert [c.step for c in job.checkpoints()] == [10, 20]
    assert len(server.files) == 2  # training and validation, uploaded once for both calls


def test_an_application_s_debug_log_shows_no_w_and_b_key(
    server: TogetherFake, caplog: pytest.LogCaptureFixture
) -> None:
    """The SDK logs each request's body at DEBUG: the W&B key stood in it as given."""
    wandb_key = "wandb-" + "k" * 34
    caplog.set_level("DEBUG")
    wandb = {"type": "wandb", "wandb": {"project": "p", "api_key": wandb_key}}
    tuner_for(server).fit(dataset("logs"), hyperparameters=LORA, integrations=[wandb])
    assert wandb_key not in caplog.text and server.api_key not in caplog.text
    assert "'wandb_api_key': '***'" in caplog.text  # the request is still logged, masked


def test_a_validation_set_is_evaluated_and_its_evaluations_are_estimated(
    server: TogetherFake,
) -> None:
    tuner = tuner_for(server, estimate_quote=False)
    train, holdout = dataset("n"), dataset("n", 4)
    plain = tuner.estimate(train, LORA)
    both = tuner.estimate(train, LORA, validation=holdout)
    assert (both.validation_passes, both.validation_tokens) == (
        2,
        tuner.estimate(holdout).tokens_total,
    )
    assert both.billed_tokens == plain.billed_tokens + 2 * both.validation_tokens
    assert any(n.startswith("validation: ") and "x 2 evaluations" in n for n in both.notes)
    quoted = tuner_for(server).estimate(train, LORA, validation=holdout)
    (asked,) = [r.body for r in server.requests if r.path.endswith("/estimate-price")]
    assert asked["validation_file"] in server.files and asked["n_evals"] == 2
    assert quoted.provider_figures is not None
    evaluated = quoted.provider_figures["estimated_eval_token_count"]
    assert evaluated > 0
    ours = 2 * quoted.validation_tokens
    assert f"Together counts {evaluated} evaluation tokens (ours: {ours})" in quoted.notes
    alone = tuner_for(server).estimate(train, LORA)  # no validation set: none quoted
    assert not any("evaluation tokens" in note for note in alone.notes)
    five = ft.Hyperparameters(epochs=2, lora=ft.LoRA(r=8), extra={"n_evals": 5})
    assert tuner.estimate(train, five, validation=holdout).validation_passes == 5
    tuner.fit(train, validation=holdout, hyperparameters=five)
    tuner.fit(dataset("alone"), hyperparameters=LORA)
    with_five, alone = (r.body for r in creates(server))
    assert with_five["n_evals"] == 5 and "n_evals" not in alone


def test_a_quote_for_a_job_without_packing_says_it_priced_the_job_packed(
    server: TogetherFake,
) -> None:
    unpacked = ft.Hyperparameters(epochs=2, extra={"packing": False, "max_seq_length": 1024})
    quoted = tuner_for(server).estimate(dataset("p"), unpacked)
    (asked,) = [r.body for r in server.requests if r.path.endswith("/estimate-price")]
    assert "packing" not in asked and "max_seq_length" not in asked  # its spec takes neither
    assert quoted.billed_tokens == 12 * 1024 * 2
    assert quoted.provider_figures is not None
    counted = quoted.provider_figures["estimated_train_token_count"]
    assert f"Together counts {counted} training tokens (ours: {12 * 1024 * 2})" in quoted.notes
    assert any(note.startswith("estimate-price takes no packing setting") for note in quoted.notes)
    packed = tuner_for(server).estimate(dataset("p"), LORA)
    assert not any("packing" in note for note in packed.notes)


def test_max_cost_starts_no_job_that_together_itself_quotes_above_it(
    server: TogetherFake,
) -> None:
    """``max_cost`` was checked against our own price table alone (dated, here 60% below
    what Together quotes): a job Together priced above the budget started. Its quote is now
    asked before the job is created, and the fit within it uses the upload priced."""
    data = dataset("budget")
    quoted = tuner_for(server).estimate(data, LORA)
    assert quoted.cost is not None and quoted.provider_figures is not None
    theirs = quoted.provider_figures["estimated_total_price"]
    assert quoted.cost < theirs
    budget = (quoted.cost + theirs) / 2  # ours under it, Together's over it
    with pytest.raises(ft.InvalidRequestError) as refused:
        tuner_for(server).fit(data, hyperparameters=LORA, max_cost=budget)
    assert str(refused.value).startswith(
        f"[together] the provider's own quote for this job, {theirs:.4g} USD, is above "
        f"max_cost={budget:g} USD (our estimate: {quoted.cost:.6f} USD at prices of "
        f"{quoted.pricing_date}); no job was started"
    )
    assert refused.value.param == "max_cost" and creates(server) == []
    uploads = [r for r in server.requests if r.method == "POST" and r.path == "/v1/files"]
    assert len(uploads) == 1  # the data the quote priced
    job = tuner_for(server).fit(data, hyperparameters=LORA, max_cost=theirs)
    assert job.job.status is not ft.JobStatus.FAILED and len(creates(server)) == 1
    assert [r for r in server.requests if r.method == "POST" and r.path == "/v1/files"] == uploads


def test_a_job_says_how_long_together_expects_it_to_take(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Together's job says how long to its next state (``progress``), and our views said
    nothing of it: a running job showed its status and the time so far, nothing more."""
    from finetune._progress import JobProgress

    with TogetherFake(phases=Phases(0.01, 0.01, 30.0)) as server:
        job = tuner_for(server).fit(dataset("long"), hyperparameters=LORA)
        deadline = time.monotonic() + 5
        while job.refresh().status is not ft.JobStatus.RUNNING and time.monotonic() < deadline:
            time.sleep(0.01)
        left = job.job.raw["seconds_left"]
        assert 25 <= left <= 30
        said = f"about 0m{left}s left (together's estimate)"
        assert html.escape(said) in job._repr_html_()
        bar = JobProgress(True, job.job)
        bar.update(job.job)
        bar.close()
        assert f"running, about 0m{left}s left [00:00]" in capsys.readouterr().err
        job.cancel()
        assert "seconds_left" not in job.job.raw  # ended: no time left to tell


def test_a_quote_that_fails_leaves_max_cost_to_our_estimate(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A fit given ``max_cost`` does not fail for want of a quote: once its retries are
    spent, the job our own figures priced under the budget starts, and a warning says so."""
    faults = Faults(rate=1.0, kinds=("503",), retry_after="0.01", only="estimate-price")
    with TogetherFake(faults) as server, caplog.at_level("WARNING", logger="finetune"):
        tuner = tuner_for(server, attempts=2, first_wait=0.01)
        job = tuner.fit(dataset("unquoted"), hyperparameters=LORA, max_cost=100.0)
        assert len(creates(server)) == 1 and job.id
        asked = [r for r in server.requests if r.path.endswith("/estimate-price")]
    assert len(asked) == 2 and all(r.fault == "503" for r in asked)
    said = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("max_cost was checked against our estimate alone: ") for m in said)


def test_max_cost_checks_a_model_off_our_price_table_by_together_s_quote(
    server: TogetherFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A model Together trains that our table does not price could not be fit under any
    ``max_cost`` ("cannot be checked"), though Together quotes it."""
    from .fakes import together_fake

    model = "acme/Tiny-Chat"  # no size in its name: no bracket of Together's prices it
    monkeypatch.setitem(together_fake.MODELS, model, 4096)
    data, tuner = dataset("off"), tuner_for(server, model=model)
    theirs = tuner.estimate(data, LORA).provider_figures["estimated_total_price"]  # type: ignore[index]
    with pytest.raises(ft.InvalidRequestError) as refused:
        tuner.fit(data, hyperparameters=LORA, max_cost=theirs / 2)
    assert f"own quote for this job, {theirs:.4g} USD, is above max_cost=" in str(refused.value)
    assert "(our estimate: none, the model is not in our price table)" in str(refused.value)
    assert creates(server) == []
    tuner.fit(data, hyperparameters=LORA, max_cost=theirs)
    assert len(creates(server)) == 1
    no_quote = tuner_for(server, model=model, estimate_quote=False)
    with pytest.raises(ft.InvalidRequestError, match="cannot be checked: no price is known"):
        no_quote.fit(dataset("unquoted"), hyperparameters=LORA, max_cost=1.0)
    assert len(server.files) == 1  # the first fit's: the unquoted one uploaded nothing
    sized = "acme/Tiny-Chat-1B"  # priced at Together's rate for up to 16B: checked by it
    monkeypatch.setitem(together_fake.MODELS, sized, 4096)
    tuner_for(server, model=sized, estimate_quote=False).fit(
        data, hyperparameters=LORA, max_cost=1.0
    )
    with pytest.raises(ft.InvalidRequestError, match="above max_cost=1e-06 USD"):
        tuner_for(server, model=sized, estimate_quote=False).fit(
            data, hyperparameters=LORA, max_cost=1e-6
        )


def test_a_fit_does_not_log_that_token_counts_are_approximate(
    server: TogetherFake, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level("WARNING", logger="finetune"):
        tuner_for(server).fit(dataset("quiet"), hyperparameters=LORA)
    assert not [r for r in caplog.records if "do not stop the fit" in r.getMessage()]


def test_rerun_reattaches_by_what_it_trains(server: TogetherFake) -> None:
    first = tuner_for(server).fit(dataset(), hyperparameters=LORA, suffix="x")
    again = tuner_for(server, registry=False).fit(dataset(), hyperparameters=LORA, suffix="x")
    assert again.id == first.id and again.reattached and not first.reattached
    other = tuner_for(server, registry=False).fit(dataset(), hyperparameters=LORA, suffix="y")
    assert other.id != first.id and not other.reattached
    assert len(creates(server)) == 2 and len(server.files) == 1


def test_a_fit_with_other_settings_is_another_job(
    server: TogetherFake, caplog: pytest.LogCaptureFixture
) -> None:
    """Together keeps no key of ours on a job, so a fit finds its job by what it trains; a
    fit with another LoRA rank (a sweep) or method setting re-attached to the first job."""
    tuner, data = tuner_for(server, registry=False), dataset("sweep")
    ranks = [
        tuner.fit(data, hyperparameters=ft.Hyperparameters(epochs=2, lora=ft.LoRA(r=r)))
        for r in (8, 16, 8)
    ]
    assert ranks[0].id != ranks[1].id and ranks[2].id == ranks[0].id
    assert ranks[1].job.hyperparameters.lora == ft.LoRA(r=16)  # read from its training_type
    masked = ft.Hyperparameters(epochs=2, lora=ft.LoRA(r=8), extra={"train_on_inputs": True})
    inputs = tuner.fit(data, hyperparameters=masked)
    assert inputs.id not in {ranks[0].id, ranks[1].id}
    seeded = ft.Hyperparameters(epochs=2, lora=ft.LoRA(r=16), seed=7)
    with caplog.at_level("WARNING", logger="finetune"):
        again = tuner.fit(data, hyperparameters=seeded)
    assert again.id == ranks[1].id  # Together's job does not show its seed: said, not hidden
    assert "Together does not show a job's seed" in caplog.text
    assert inputs.job.hyperparameters == masked.model_copy(update={"batch_size": "auto"})  # max
    assert len(creates(server)) == 3


def test_a_jobs_lora_and_method_settings_are_read_back() -> None:
    """A payload as Together's API reference writes it (a FinetuneResponse)."""
    from finetune.backends.together import job_from_payload

    payload = {
        "id": "ft-1",
        "status": "running",
        "model": MODEL,
        "n_epochs": 3,
        "batch_size": "max",
        "training_type": {
            "type": "Lora",
            "lora_r": 8,
            "lora_alpha": 16,
            "lora_dropout": 0.0,
            "lora_trainable_modules": "q_proj, v_proj",
        },
        "training_method": {
            "method": "dpo",
            "dpo_beta": 0.3,
            "rpo_alpha": 0.5,
            "simpo_gamma": None,
        },
    }
    shown = job_from_payload(payload).hyperparameters
    assert shown.lora == ft.LoRA(r=8, alpha=16, dropout=0.0, target_modules=["q_proj", "v_proj"])
    assert (shown.epochs, shown.batch_size, shown.beta) == (3, "auto", 0.3)
    assert shown.extra == {"rpo_alpha": 0.5}
    full = {**payload, "training_type": {"type": "Full"}, "training_method": {"method": "sft"}}
    assert job_from_payload(full).hyperparameters.lora is None


def test_a_job_showing_what_together_chose_for_auto_is_still_the_same_fit() -> None:
    """A re-run (or a create whose answer was lost) must find its job even where the job
    shows the batch size Together chose for "max", or what it made of "auto"."""
    from finetune.backends.together import same_fit

    body = {
        "model": MODEL,
        "training_file": "file-1",
        "n_epochs": 2,
        "batch_size": "max",
        "training_type": {"type": "Lora", "lora_r": 8, "lora_trainable_modules": "all-linear"},
        "training_method": {"method": "sft", "train_on_inputs": "auto"},
    }
    chose = {
        **body,
        "status": "running",
        "batch_size": 16,
        "training_type": {"type": "Lora", "lora_r": 8, "lora_trainable_modules": "q_proj,v_proj"},
        "training_method": {"method": "sft", "train_on_inputs": False},
    }
    assert same_fit(chose, body)
    assert not same_fit({**chose, "training_type": {"type": "Lora", "lora_r": 16}}, body)
    assert not same_fit({**chose, "n_epochs": 3}, body)


def test_what_cannot_map_is_refused_before_anything_is_uploaded(server: TogetherFake) -> None:
    tuner = tuner_for(server)
    for params, match in (
        (ft.Hyperparameters(learning_rate_multiplier=2.0), "absolute learning_rate"),
        (ft.Hyperparameters(lora=ft.LoRA(r=128)), "above Together's limit of 64"),
        (
            ft.Hyperparameters(batch_size=4, lora=ft.LoRA(r=8)),
            r"outside Together's range \[8, 64\]",
        ),
        (ft.Hyperparameters(extra={"momentum": 0.9}), "unknown Together setting"),
    ):
        with pytest.raises((ft.UnsupportedFeature, ft.InvalidRequestError), match=match):
            tuner.fit(dataset(), hyperparameters=params)
    with pytest.raises(ft.InvalidRequestError, match="at most 40"):
        tuner.fit(dataset(), suffix="s" * 41)
    unknown = ft.Tuner(
        "together", model="no/such-model", api_key=server.api_key, base_url=server.url
    )
    with pytest.raises(ft.InvalidRequestError, match="not available for fine-tuning") as said:
        unknown.fit(dataset())
    assert "did you mean" not in str(said.value)  # nothing of our table is near its name
    misspelt = ft.Tuner(
        "together", model="Qwen/Qwen3-8b", api_key=server.api_key, base_url=server.url
    )
    with pytest.raises(ft.InvalidRequestError) as said:
        misspelt.fit(dataset())
    assert str(said.value) == (
        "[together] model Qwen/Qwen3-8b is not available for fine-tuning (did you mean "
        "Qwen/Qwen3-8B?) (param: model)"
    )
    for asking in (  # a quote refuses the same, before the upload the quote would need
        lambda: unknown.estimate(dataset()),
        lambda: tuner.estimate(dataset(), ft.Hyperparameters(lora=ft.LoRA(r=128))),
    ):
        with pytest.raises(ft.InvalidRequestError, match=r"not available|above Together's limit"):
            asking()
    assert not creates(server) and not server.files
    off = tuner_for(server, estimate_quote=False).estimate(dataset())
    assert not any("quote" in note for note in off.notes)  # off, not "no key"


def test_preference_pairs_are_quoted_as_the_dpo_job_a_fit_would_start(
    server: TogetherFake,
) -> None:
    """The quote asked for an SFT job whatever the data, so DPO pairs were priced at SFT's
    rates; without a key, our own figure (at the SFT rate) says DPO costs more."""
    pairs = ft.Dataset.from_records(
        [{"prompt": f"q {i}", "chosen": f"good {i}", "rejected": f"bad {i}"} for i in range(12)]
    )
    tuner_for(server).estimate(pairs)
    (asked,) = [r.body for r in server.requests if r.path.endswith("/estimate-price")]
    assert asked["training_method"] == {"method": "dpo", "dpo_beta": 0.1}
    offline = ft.Tuner("together", model=MODEL, api_key="", base_url=server.url).estimate(pairs)
    assert any(note.startswith("our price is Together's LoRA SFT rate") for note in offline.notes)
    chats = ft.Tuner("together", model=MODEL, api_key="", base_url=server.url).estimate(dataset())
    assert not any("LoRA SFT rate" in note for note in chats.notes)


def test_a_fit_without_lora_settings_trains_lora_as_together_does(server: TogetherFake) -> None:
    """Together's API and SDK default to LoRA, and our estimate prices LoRA; with no ``lora``
    given, the body asked for a full fine-tune (which costs more and never runs serverless)."""
    tuner = tuner_for(server)
    tuner.fit(dataset("default"), hyperparameters=ft.Hyperparameters(epochs=1))
    tuner.estimate(dataset("default"), ft.Hyperparameters(epochs=1))
    tuner.fit(dataset("full"), options={"full_finetune": True})
    default, full = (r.body for r in creates(server))
    assert default["training_type"] == {
        "type": "Lora",
        "lora_r": 16,  # LoRA()'s, as the local backend trains
        "lora_alpha": 32,
        "lora_dropout": 0.05,
        "lora_trainable_modules": "all-linear",
    }
    (quoted,) = [r.body for r in server.requests if r.path.endswith("/estimate-price")]
    assert quoted["training_type"] == default["training_type"]
    assert full["training_type"] == {"type": "Full"}
    for options, params, says in (
        ({"full_finetune": True}, LORA, "full_finetune=True and Hyperparameters"),
        ({"full_finetune": "yes"}, None, "options.full_finetune is true or false, not 'yes'"),
        ({"packing": False}, None, r"Together takes only \['full_finetune'\]; got \['packing'\]"),
        ({"n_epochs": 2}, None, r"got \['n_epochs'\] \('n_epochs' is ft\.Hyperparameters\(epochs="),
        (
            {},
            ft.Hyperparameters(extra={"lr": 1e-4}),
            r"\['lr'\] in extra \('lr' is ft\.Hyperparameters\(learning_rate=\.\.\.\)\); Together",
        ),
        ({}, ft.Hyperparameters(lora=ft.LoRA(quantize_4bit=True)), "takes no LoRA quantize_4bit"),
    ):
        with pytest.raises((ft.InvalidRequestError, ft.UnsupportedFeature), match=says):
            tuner.fit(dataset("refused"), hyperparameters=params, options=options)
    assert len(creates(server)) == 2


def test_what_cannot_map_is_refused_before_any_request(server: TogetherFake) -> None:
    """A setting Together never takes was refused only after the model's limits were read: a
    request, or a network error, before the plain answer that needs none."""
    for options, params in (
        ({"packing": False}, None),
        ({}, ft.Hyperparameters(learning_rate_multiplier=2.0)),
        ({}, ft.Hyperparameters(extra={"momentum": 0.9})),
    ):
        tuner = tuner_for(server)  # no limits read yet
        with pytest.raises((ft.InvalidRequestError, ft.UnsupportedFeature)):
            tuner.fit(dataset("refused"), hyperparameters=params, options=options)
        with pytest.raises((ft.InvalidRequestError, ft.UnsupportedFeature)):
            tuner.estimate(dataset("refused"), params, options=options)
    assert server.requests == []
    with pytest.raises(ft.UnsupportedFeature) as caught:  # a job setting, not an option
        tuner_for(server).estimate(dataset("refused"), options={"n_checkpoints": 2})
    assert str(caught.value) == (
        "Together takes only ['full_finetune']; got ['n_checkpoints'] ('n_checkpoints' is "
        "ft.Hyperparameters(extra={'n_checkpoints': ...}))"
    )


def test_the_default_lora_rank_is_lowered_to_a_models_limit() -> None:
    from finetune.backends.together._mapping import create_body

    request = ft.backends.JobRequest(
        base_model=MODEL,
        training_file=ft.FileRef(backend="together", id="file-1"),
        idempotency_key="k",
    )
    limits = {"lora_training": {"max_rank": 8}, "full_training": {}}
    assert create_body(request, limits)["training_type"] == {
        "type": "Lora",
        "lora_r": 8,
        "lora_alpha": 16,  # LoRA()'s alpha of twice the rank, kept
        "lora_dropout": 0.05,
        "lora_trainable_modules": "all-linear",
    }


@pytest.mark.parametrize(
    ("only", "options", "says"),
    [
        ("full_training", {}, "with full fine-tuning only; pass options={'full_finetune': True}"),
        ("lora_training", {"full_finetune": True}, "with LoRA only; drop full_finetune"),
    ],
)
def test_a_model_trained_one_way_only_refuses_the_other(
    server: TogetherFake, only: str, options: dict[str, Any], says: str
) -> None:
    """Its limits have no ``lora_training`` (or ``full_training``); the check read a
    ``supports_full_training`` field that Together's limits do not have."""
    server.trained_only_as[MODEL] = only
    with pytest.raises(ft.UnsupportedFeature, match=re.escape(says)):
        tuner_for(server).fit(dataset("one-way"), options=options)
    assert not creates(server)
    tuner_for(server).fit(dataset("one-way"), options={"full_finetune": only == "full_training"})
    assert len(creates(server)) == 1


def test_a_methods_own_settings_go_in_training_method(server: TogetherFake) -> None:
    """Together reads DPO's and SFT's own settings inside ``training_method``, as its SDK
    sends them: at the top level of the body they were left unread without a word."""
    tuner = tuner_for(server)
    pairs = ft.Dataset.from_records(
        [
            {
                "input": [{"role": "user", "content": f"question {i}"}],
                "chosen": [{"role": "assistant", "content": f"good {i}"}],
                "rejected": [{"role": "assistant", "content": f"bad {i}"}],
            }
            for i in range(12)
        ]
    )
    simpo = {"simpo_gamma": 0.5, "rpo_alpha": 1.0, "n_checkpoints": 2}
    tuner.fit(pairs, method="dpo", hyperparameters=ft.Hyperparameters(beta=0.2, extra=simpo))
    tuner.fit(dataset("sft"), hyperparameters=ft.Hyperparameters(extra={"train_on_inputs": False}))
    dpo, sft = (r.body for r in creates(server))
    assert dpo["training_method"] == {
        "method": "dpo",
        "dpo_beta": 0.2,
        "simpo_gamma": 0.5,
        "rpo_alpha": 1.0,
        "dpo_reference_free": True,  # SimPO, as Together's SDK sets it
        "dpo_normalize_logratios_by_length": True,
    }
    assert dpo["n_checkpoints"] == 2 and not {"simpo_gamma", "rpo_alpha"} & set(dpo)
    assert sft["training_method"] == {"method": "sft", "train_on_inputs": False}
    assert "train_on_inputs" not in sft
    other = ft.Hyperparameters(extra={"rpo_alpha": 1.0})
    with pytest.raises(ft.InvalidRequestError, match="rpo_alpha: only for DPO on Together"):
        tuner.fit(dataset("other"), hyperparameters=other)
    assert len(creates(server)) == 2


def test_server_side_file_validation_is_reported_in_our_terms(
    server: TogetherFake, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"messages": []}\n[1, 2, 3]\n')
    backend = TogetherBackend(api_key=server.api_key, base_url=server.url)
    tuner = ft.Tuner(backend, model=MODEL)
    with pytest.raises(ft.InvalidRequestError, match="line 2 is not a JSON object") as caught:
        tuner.run(backend.upload_file(broken))
    assert caught.value.param == "training_file"


async def test_each_upload_step_is_retried_alone_so_the_file_goes_once(
    server: TogetherFake, tmp_path: Path
) -> None:
    """A 500 after the PUT stored the bytes, then a lost preprocess answer: the PUT alone is
    sent again, the URL is asked for once, and the preprocess is not repeated (read instead)."""
    answered: dict[str, int] = {}

    def flaky(method: str, path: str, status: int, payload: Any) -> Any:
        step = "put" if method == "PUT" else path.rsplit("/", 1)[-1]
        answered[step] = answered.get(step, 0) + 1
        if step in ("put", "preprocess") and answered[step] == 1:
            return 503 if step == "preprocess" else 500, {"error": {"message": "flaky"}}
        return None

    server.rewrite = flaky
    data = tmp_path / "train.jsonl"
    dataset().to_jsonl(data)
    backend = TogetherBackend(api_key=server.api_key, base_url=server.url, attempts=3)
    ref = await backend.upload_file(data)
    await backend.aclose()
    sent = [(r.method, r.path.rsplit("/", 1)[-1]) for r in server.requests]
    assert sent.count(("POST", "files")) == 1
    assert [m for m, _ in sent].count("PUT") == 2
    assert sent.count(("POST", "preprocess")) == 1
    assert list(server.files) == [ref.id]
    assert server.contents[ref.id] == data.read_bytes()


def test_a_user_error_fails_the_job_with_its_message(server: TogetherFake) -> None:
    job = tuner_for(server).fit(dataset(), hyperparameters=LORA, suffix="bad")
    with pytest.raises(ft.JobFailed, match="no assistant messages") as caught:
        job.wait(poll_interval=0.02, timeout=10)
    assert caught.value.job.error is not None and caught.value.job.error.code == "user_error"


def test_cancel(server: TogetherFake) -> None:
    server.phases = Phases(0, 0, 30)
    job = tuner_for(server).fit(dataset(), hyperparameters=LORA)
    assert job.cancel().status is ft.JobStatus.CANCELLED
    with pytest.raises(ft.UnsupportedFeature, match="cannot pause"):
        job.pause()


async def test_odd_answers_are_server_errors(server: TogetherFake) -> None:
    server.rewrite = lambda method, path, status, payload: (
        (200, Raw(b'{"id": "ft-1", "status": "runn'))
        if path.startswith("/v1/fine-tunes/")
        else None
    )
    backend = TogetherBackend(api_key=server.api_key, base_url=server.url, attempts=1)
    with pytest.raises(ft.ServerError, match=r"\[together\].*not JSON") as caught:
        await backend.get_job("ft-1")
    assert caught.value.__context__ is None
    await backend.aclose()


def test_fifty_cycles_with_faults_make_no_duplicates() -> None:
    faults = Faults(rate=0.25, seed=5, slow_seconds=0.05, retry_after="0.01")
    with TogetherFake(faults, Phases(0.01, 0.01, 0.05)) as server:

        def cycle(i: int) -> ft.Job:
            # the fake lists a job once it is made: 1 s of create_grace finds one whose answer
            # was lost (the default 10 s waits for providers that list late), and backoff from
            # 0.05 s keeps a run of faults from sleeping 30 s: what is tested is no duplicates
            tuner = tuner_for(server, attempts=10, timeout=5, create_grace=1, first_wait=0.05)
            job = tuner.fit(dataset(str(i)), hyperparameters=LORA, suffix=f"c{i}")
            return job.wait(poll_interval=0.02, max_interval=0.1, timeout=60)

        with ThreadPoolExecutor(max_workers=8) as pool:
            jobs = list(pool.map(cycle, range(50)))
        faulted = sum(r.fault is not None for r in server.requests)
        jobs_made, files_made = len(server.jobs), len(server.files)
        names = {f["filename"] for f in server.files.values()}
    assert [j.status for j in jobs] == [ft.JobStatus.SUCCEEDED] * 50
    assert (jobs_made, files_made, len(names)) == (50, 50, 50)
    assert faulted > 50


CRASHING_SCRIPT = textwrap.dedent(
    """
    import sys
    import finetune as ft
    rows = [{"messages": [{"role": "user", "content": f"q{i}"},
                          {"role": "assistant", "content": f"a{i}"}]} for i in range(12)]
    tuner = ft.Tuner("together", model=sys.argv[1], api_key=sys.argv[2], base_url=sys.argv[3])
    job = tuner.fit(ft.Dataset.from_records(rows), suffix="crash",
                    hyperparameters=ft.Hyperparameters(lora=ft.LoRA(r=8)))
    print(job.wait(poll_interval=0.02, timeout=30).status.value)
    """
)


@pytest.mark.parametrize("registry", [True, False])
def test_sigkill_between_upload_and_create_then_rerun_makes_one_job(
    server: TogetherFake, tmp_path: Path, registry: bool
) -> None:
    script = tmp_path / "fit.py"
    script.write_text(CRASHING_SCRIPT)
    command = [sys.executable, str(script), MODEL, server.api_key, server.url]
    registry_file = tmp_path / "registry.sqlite3"
    env = child_env(tmp_path, FINETUNE_REGISTRY=str(registry_file))
    forget = None if registry else lambda: registry_file.unlink(missing_ok=True)
    rerun = sigkill_while_held(server, command, env, "/v1/fine-tunes", before_rerun=forget)
    assert rerun.returncode == 0, rerun.stderr
    assert rerun.stdout.strip() == "succeeded"
    assert len(server.jobs) == 1 and len(server.files) == 1


def test_the_upload_folder_of_a_process_killed_mid_upload_goes_with_a_later_fit(
    server: TogetherFake, tmp_path: Path
) -> None:
    """A process killed while it uploads runs no ``finally``: its temporary copy of the
    training data stayed in /tmp until the next reboot (six a run of this suite). The next
    fit removes it once it is an hour old and its process is gone."""
    script = tmp_path / "fit.py"
    script.write_text(CRASHING_SCRIPT)
    command = [sys.executable, str(script), MODEL, server.api_key, server.url]
    env = child_env(tmp_path, FINETUNE_REGISTRY=str(tmp_path / "registry.sqlite3"))
    temp = Path(env["TMPDIR"])
    left: list[Path] = []

    def an_hour_later() -> None:
        left.extend(temp.glob("finetune-upload-*"))
        assert [(f / "data.jsonl").stat().st_size > 0 for f in left] == [True]  # the data
        for folder in left:
            os.utime(folder, (time.time() - 3700, time.time() - 3700))

    rerun = sigkill_while_held(server, command, env, "/v1/files", before_rerun=an_hour_later)
    assert rerun.returncode == 0, rerun.stderr
    assert not left[0].exists() and not list(temp.iterdir())
    assert len(server.jobs) == 1


FULL_DISK_SCRIPT = textwrap.dedent(
    """
    import resource, signal, sys
    import finetune as ft
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit is then EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (65536, 65536))  # no file over 64 KiB: "full"
    rows = [{"messages": [{"role": "user", "content": f"question {i} " * 20},
                          {"role": "assistant", "content": f"a{i}"}]} for i in range(400)]
    tuner = ft.Tuner("together", model=sys.argv[1], api_key=sys.argv[2], base_url=sys.argv[3],
                     registry=False)
    try:
        tuner.fit(ft.Dataset.from_records(rows), hyperparameters={"lora": {"r": 8}})
    except ft.FinetuneError as error:
        print(type(error).__name__, error)
    """
)


def test_no_room_for_the_upload_copy_is_our_error_saying_where_and_what_to_do(
    server: TogetherFake, tmp_path: Path
) -> None:
    """A full temporary folder raised a bare ``OSError`` out of ``fit``."""
    script = tmp_path / "fit.py"
    script.write_text(FULL_DISK_SCRIPT)
    env = child_env(tmp_path)
    command = [sys.executable, str(script), MODEL, server.api_key, server.url]
    ran = subprocess.run(command, env=env, **{**TEXT, "timeout": 120})
    temp = env["TMPDIR"]
    said = ran.stdout.strip()
    assert said.startswith(
        f"StorageError cannot write the data to upload under {temp} (File too large; "
    ), ran.stderr
    assert said.endswith(
        " free there): free space there, or set TMPDIR to a writable folder with room for a "
        "copy of the training data"
    )
    assert not server.files and not server.jobs and not list(Path(temp).iterdir())


FORKED_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys
    import finetune as ft
    rows = [{"messages": [{"role": "user", "content": f"q{i}"},
                          {"role": "assistant", "content": f"a{i}"}]} for i in range(12)]
    tuners = {
        "fake": ft.Tuner("fake", model="base", registry=False),
        "together": ft.Tuner("together", model=sys.argv[1], api_key=sys.argv[2],
                             base_url=sys.argv[3], registry=False),
    }
    lora = {"lora": {"r": 8}}
    handles = {n: t.fit(ft.Dataset.from_records(rows), hyperparameters=lora)
               for n, t in tuners.items()}  # the loop threads run, connections are open
    children = []
    for name, tuner in tuners.items():
        child = os.fork()
        if child == 0:  # a multiprocessing worker, a pre-forked web server
            signal.alarm(20)  # a call that waits forever ends the child with SIGALRM
            handles[name].wait(poll_interval=0.02, timeout=15)
            again = tuner.fit(ft.Dataset.from_records(rows[:11]), hyperparameters=lora)
            print(name, handles[name].job.status.value, again.id != handles[name].id,
                  flush=True)
            os._exit(0)
        children.append(child)
    print("exits", [os.waitstatus_to_exitcode(os.waitpid(c, 0)[1]) for c in children])
    print("parent", [h.refresh().id == h.id for h in handles.values()])
    """
)


def test_a_forked_child_calls_its_tuner_as_the_parent_does(
    server: TogetherFake, tmp_path: Path
) -> None:
    """A process forked from one that had used a Tuner (``multiprocessing``'s default on
    Linux, gunicorn ``--preload``) waited forever on its first call: it had inherited the
    loop thread's state but not the thread."""
    script = tmp_path / "forks.py"
    script.write_text(FORKED_SCRIPT)
    command = [sys.executable, str(script), MODEL, server.api_key, server.url]
    ran = subprocess.run(command, env=child_env(tmp_path), **{**TEXT, "timeout": 120})
    lines = sorted(ran.stdout.splitlines())
    assert lines == [
        "exits [0, 0]",
        "fake succeeded True",
        "parent [True, True]",
        "together succeeded True",
    ], ran.stderr


def test_a_key_with_blanks_around_it_works_and_one_no_header_can_carry_is_named(
    server: TogetherFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A key read from a file (``open(...).read()``) or a Windows ``.env`` line ends in a line
    break: every fit was "connection problem: Connection error." after its retries. A key
    with a letter outside ASCII was "unexpected answer to call: UnicodeEncodeError"."""
    monkeypatch.setenv("TOGETHER_API_KEY", f"{server.api_key}\r\n")
    monkeypatch.setenv("TOGETHER_BASE_URL", f"{server.url}\r\n")
    from_env = ft.Tuner("together", model=MODEL, registry=False)
    assert from_env.fit(dataset(), hyperparameters=LORA).id
    spaced = ft.Tuner("together", model=MODEL, api_key=f" {server.api_key}\n", base_url=server.url)
    assert spaced.fit(dataset(), hyperparameters=LORA).id
    for key, what in [
        ("tgp_v1_abc def", "a space at character 11 of 14"),
        ("tgp_v1_abc\ndef", "a line break at character 11 of 14"),
        ("tgp_v1_abcé", "the character U+00E9 at character 11 of 11"),
    ]:
        with pytest.raises(
            ValueError, match=re.escape(f"holds {what}, which no key has")
        ) as caught:
            ft.Tuner("together", model=MODEL, api_key=key, base_url=server.url)
        assert "TOGETHER_API_KEY" in str(caught.value) and "abc" not in str(caught.value)
    assert len(server.jobs) == 1  # the same fit, re-attached


def test_only_old_upload_folders_of_ended_processes_are_orphans(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], **TEXT)
    me, my_start = os.getpid(), process_start_time(os.getpid())
    folders = {
        "ended": f"finetune-upload-{ended.stdout.strip()}-1-a",
        "ended, young": f"finetune-upload-{ended.stdout.strip()}-1-b",
        "this process": f"finetune-upload-{me}-{my_start or 0}-c",
        "its pid, reused": f"finetune-upload-{me}-{(my_start or 0) + 1}-d",
        "not ours": "finetune-upload-notes",
    }
    for name in folders.values():
        (tmp_path / name).mkdir()
        if "young" not in name:
            os.utime(tmp_path / name, (time.time() - 3700, time.time() - 3700))
    os.utime(tmp_path / folders["ended, young"])
    removed = {folder.name for folder in remove_orphan_folders()}
    assert removed == {folders["ended"], folders["its pid, reused"]}
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        folders[k] for k in ("ended, young", "this process", "not ours")
    )


def test_an_estimate_prices_the_full_fine_tune_a_fit_would_start(server: TogetherFake) -> None:
    """``estimate`` took no ``options``: a full fine-tune was quoted as LoRA, and a model
    Together trains in full only could not be estimated at all (the quote's check asked for
    ``options={'full_finetune': True}``, which ``estimate`` had no way to take)."""
    tuner = tuner_for(server)
    full = {"full_finetune": True}
    tuner.estimate(dataset("full"), ft.Hyperparameters(epochs=1), options=full)
    (asked,) = [r.body for r in server.requests if r.path.endswith("/estimate-price")]
    assert asked["training_type"] == {"type": "Full"}
    server.trained_only_as[MODEL] = "full_training"
    full_only = tuner_for(server)  # a backend reads a model's limits once
    quoted = full_only.estimate(dataset("full"), options=full)
    assert quoted.provider_figures is not None
    with pytest.raises(ft.UnsupportedFeature, match="with full fine-tuning only"):
        full_only.estimate(dataset("full"))
    offline = ft.Tuner("together", model=MODEL, api_key="", base_url=server.url)
    notes = offline.estimate(dataset("full"), options=full).notes
    assert any(note.startswith("our price is Together's LoRA SFT rate: a full") for note in notes)
    pairs = ft.Dataset.from_records(
        [{"prompt": f"q {i}", "chosen": f"good {i}", "rejected": f"bad {i}"} for i in range(12)]
    )
    both = offline.estimate(pairs, options=full).notes
    assert any("LoRA SFT rate: full DPO has higher rates" in note for note in both)
    assert not any("full fine-tune" in note for note in offline.estimate(dataset()).notes)
    uploaded = len(server.files)
    for asking in (tuner, offline):  # refused as a fit refuses it, with a key or without
        with pytest.raises(ft.UnsupportedFeature, match=r"takes only \[.full_finetune.\]"):
            asking.estimate(dataset("refused"), options={"packing": False})
    assert not creates(server)
    assert len(server.files) == uploaded  # refused before any upload


def test_the_command_line_says_its_own_flags_where_python_says_options_and_extra(
    server: TogetherFake,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``finetune estimate`` noted "extra={'n_evals': N} sets how many", and a model Together
    trains in full only was told to "pass options={'full_finetune': True}": Python, which a
    command line cannot take."""
    from finetune.cli import main

    monkeypatch.setenv("TOGETHER_BASE_URL", server.url)
    monkeypatch.setenv("TOGETHER_API_KEY", server.api_key)
    data = tmp_path / "train.jsonl"
    dataset().to_jsonl(data)
    asked = ["estimate", str(data), "--backend", "together", "--model", MODEL]
    assert main([*asked, "--validation", str(data)]) == 0
    said = capsys.readouterr().out
    assert "n_evals = N under [hyperparameters.extra] in a --config file sets how many" in said
    assert "extra={" not in said
    server.trained_only_as[MODEL] = "full_training"
    assert main(asked) == 2
    assert "with full fine-tuning only; pass --option full_finetune=true" in capsys.readouterr().err
    assert main([*asked, "--option", "full_finetune=true"]) == 0  # the flag it names is taken


def test_a_tuner_with_a_registry_file_of_its_own_finds_what_its_models_trained_on(
    server: TogetherFake, tmp_path: Path
) -> None:
    """``ft.evaluate`` read only the default registry: a Tuner given ``registry=PATH`` (one
    per project) had its completion-trained model asked through chat, and no note when a
    model was scored on the rows it trained on."""
    from .fakes.openai_fake import OpenAIFake

    own = tmp_path / "project" / "jobs.sqlite3"
    rows = [{"prompt": f"Order {i}:", "completion": f" ships on day {i}."} for i in range(12)]
    tuner = tuner_for(server, registry=own)
    job = tuner.fit(ft.Dataset.from_records(rows))
    assert job.wait(poll_interval=0.02, timeout=10).status is ft.JobStatus.SUCCEEDED
    assert not ft.JobRegistry().path.exists()  # the default registry was never written
    holdout = ft.Dataset.from_records([rows[3], {"prompt": "Order 99:", "completion": " no."}])
    with OpenAIFake() as serving:  # Together's serving API: OpenAI's, for every model
        serving.completions_for_every_model = True
        reached = {"api_key": serving.api_key, "base_url": serving.base_url}
        candidates = {
            "tuned": job.model,
            "few-shot": job.model.with_few_shot(ft.Dataset.from_records(rows[5:]), k=1),
            "re-attached": tuner.job(job.id).model,
        }
        options = {name: dict(reached) for name in candidates}
        options["few-shot"]["api"] = "chat"  # the completions API takes no few-shot turns
        result = ft.evaluate(
            holdout, candidates, "exact_match", predictor_options=options, cache=False
        )
        asked = [
            (r.path.rsplit("/v1/", 1)[1], len(r.body.get("messages", ()))) for r in serving.requests
        ]
    assert sorted(asked) == [("chat/completions", 3)] * 2 + [("completions", 0)] * 4
    assert result.trained_on == {name: [0] for name in candidates}


def test_a_model_trained_on_completions_is_asked_through_the_completions_api(
    server: TogetherFake,
) -> None:
    """A model Together trained on prompt/completion rows learnt each prompt as its plain
    text; ``ft.evaluate`` asked it through the chat API, which wraps the prompt in a chat
    template it never saw. The registry keeps what the job trained on: the model is asked
    through the completions API, by its job's model, its name alone, or a re-attached job's;
    a chat-trained one, or an ``api`` given, as before."""
    from .fakes.openai_fake import OpenAIFake

    rows = [{"prompt": f"Order {i}:", "completion": f" ships on day {i}."} for i in range(12)]
    tuner = tuner_for(server)
    prompts = tuner.fit(ft.Dataset.from_records(rows))
    chats = tuner.fit(dataset())
    for job in (prompts, chats):
        assert job.wait(poll_interval=0.02, timeout=10).status is ft.JobStatus.SUCCEEDED
    holdout = ft.Dataset.from_records([{"prompt": "Order 1:", "completion": " ships."}])
    with OpenAIFake() as serving:  # Together's serving API: OpenAI's, for every model
        serving.completions_for_every_model = True
        reached = {"api_key": serving.api_key, "base_url": serving.base_url}
        candidates = {
            "tuned": prompts.model,
            "by name": ft.ModelRef(backend="together", name=prompts.model.name),
            "re-attached": tuner.job(prompts.id).model,
            "chat-tuned": chats.model,
            "asked by chat": prompts.model,
        }
        options = {name: dict(reached) for name in candidates}
        options["asked by chat"]["api"] = "chat"
        ft.evaluate(holdout, candidates, "exact_match", predictor_options=options, cache=False)
        asked = {(r.path.rsplit("/v1/", 1)[1], r.body["model"]) for r in serving.requests}
    assert asked == {
        ("completions", prompts.model.name),
        ("chat/completions", chats.model.name),
        ("chat/completions", prompts.model.name),
    }
    completions = [r.body for r in serving.requests if r.path.endswith("/v1/completions")]
    assert len(completions) == 3 and all(b["prompt"] == "Order 1:" for b in completions)


def test_a_tuned_model_together_does_not_serve_is_told_how_it_is_served() -> None:
    """Asking a LoRA model Together does not serve serverless answered ``Overloaded (HTTP
    503)`` after every retry, without the note ``job.model.note`` holds: a dedicated
    endpoint is needed."""
    unserved = Faults(rate=1.0, kinds=("503",), only="/chat/completions")
    with TogetherFake(faults=unserved) as server:
        job = tuner_for(server).fit(dataset(), hyperparameters=LORA)
        tuned = job.wait(poll_interval=0.02, timeout=10).model
        assert tuned is not None and tuned.note is not None
        with pytest.raises(ft.ServerError) as evaluated:
            ft.evaluate(dataset("q", 1), {"tuned": tuned}, ["exact_match"], max_attempts=1)
        assert evaluated.value.status_code == 503
        assert evaluated.value.__notes__[-1] == f"candidate 'tuned': {tuned.note}"
        reached = {"by id": {"api_key": server.api_key, "base_url": server.url}}
        with pytest.raises(ft.ServerError) as by_id:  # as `finetune eval` names a job
            ft.evaluate(
                dataset("q", 1),
                {"by id": f"together:{job.id}"},
                ["exact_match"],
                max_attempts=1,
                predictor_options=reached,
            )
        assert by_id.value.__notes__[-1] == f"candidate 'by id': {tuned.note}"
        with pytest.raises(ft.ServerError) as asked:
            tuned.ask("Hello?")
        assert asked.value.__notes__[-1] == f"{tuned}: {tuned.note}"
        base = {"base": tuner_for(server).base_model}  # a model without a note: none added
        with pytest.raises(ft.ServerError) as plain:
            ft.evaluate(dataset("q", 1), base, ["exact_match"], max_attempts=1)
        assert plain.value.__notes__ == ["while candidate 'base' predicted the example at index 0"]
