"""The local backend: real TRL + PEFT training of a tiny model in a worker process."""

from __future__ import annotations

import functools
import json
import math
import os
import re
import shutil
import signal
import time
import warnings
from pathlib import Path
from typing import Any

import pytest

import finetune as ft
from finetune._words import counted
from finetune.backends.hf import HFBackend
from finetune.backends.hf._jobdir import JobDir
from finetune.evaluation import HFPredictor
from finetune.evaluation import metrics as m
from finetune.export import ExportError

from .conftest import chat

pytest.importorskip("trl")
pytest.importorskip("peft")
pytestmark = [pytest.mark.hf, pytest.mark.timeout(300)]


def _greedy(model_path: str, prompt: list[dict[str, str]]) -> str:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_path)
    model = AutoModelForCausalLM.from_pretrained(model_path)
    ids = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, return_tensors="pt")
    ids = ids["input_ids"] if hasattr(ids, "keys") else ids
    out = model.generate(ids, max_new_tokens=20, do_sample=False, pad_token_id=0)
    return str(tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True))


def _wait_until(check: Any, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.2)


def test_full_sft_learns_the_reply_format(
    tiny_base: str, rows: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    tuner = ft.Tuner("hf", model=tiny_base)
    job = tuner.fit(
        ft.Dataset.from_records(rows[:200]),
        hyperparameters=ft.Hyperparameters(epochs=4, batch_size=16, learning_rate=3e-3, seed=1),
        options={"max_length": 128, "full_finetune": True},
    )
    assert job.job.status in (ft.JobStatus.QUEUED, ft.JobStatus.RUNNING)
    job.wait(poll_interval=0.3, timeout=240, progress=True)
    assert "52/52" in capsys.readouterr().err  # 200 rows / 16 x 4 epochs: the bar ends full
    assert job.job.status is ft.JobStatus.SUCCEEDED, tuner.backend.worker_log(job.id)
    losses = [p.train_loss for p in job.metrics() if p.train_loss is not None]
    assert losses[-1] < losses[0] * 0.6
    assert job.metrics()[-1].step == 52  # the last step's loss, though logged every 5 steps
    logged = {point.step for point in job.metrics()}
    assert {13, 26, 39, 52} <= logged  # each epoch's checkpoint has its own step's loss
    prompt = rows[300]["messages"][:2]
    tuned = job.model.name
    assert Path(tuned, "model.safetensors").exists()
    assert _greedy(tuned, prompt) != _greedy(tiny_base, prompt)
    assert _greedy(tuned, prompt).startswith("Hello")
    assert job.job.trained_tokens and job.job.trained_tokens > 0
    saved = job.checkpoints()
    assert saved and all(c.metrics["train_loss"] > 0 for c in saved)  # they had none
    assert saved[-1].metrics == job.metrics().at(saved[-1].step)
    held = ft.Dataset.from_records(rows[300:302])  # a checkpoint folder is asked as a model
    asked = ft.evaluate(held, {"last": job.checkpoint_model(saved[-1])}, ["exact_match"])
    assert len(asked.predictions("last")) == 2
    used = ft.Hyperparameters(epochs=4, batch_size=16, learning_rate=3e-3, seed=1, warmup=0.0)
    assert job.job.hyperparameters == used  # full fine-tune: no adapter
    (record,) = tuner.registry.list()  # type: ignore[union-attr]
    assert record.hyperparameters == used.model_dump(
        mode="json", exclude_none=True, exclude={"extra"}
    )


def test_an_estimate_says_how_long_training_takes_at_the_pace_of_a_job_alike(
    tiny_base: str, rows: list[dict[str, Any]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A local estimate said "no provider bill" and nothing of time, what local training
    costs: how long a fit would train was learnt by starting it."""
    monkeypatch.chdir(Path(tiny_base).parent)  # the model given as a relative path
    spelt = f"./{Path(tiny_base).name}"
    tuner = ft.Tuner(HFBackend(jobs_dir=tmp_path), model=spelt, registry=False)
    params = ft.Hyperparameters(epochs=2, batch_size=16, learning_rate=1e-3, seed=1)
    full = {"max_length": 96, "full_finetune": True}

    def timed(notes: list[str]) -> list[str]:
        return [note for note in notes if note.startswith("training: about ")]

    data = ft.Dataset.from_records(rows[:48])
    assert timed(tuner.estimate_locally(data, params, options=full).notes) == []  # no job yet
    job = tuner.fit(data, hyperparameters=params, options=full)
    assert job.wait(poll_interval=0.3, timeout=240).status is ft.JobStatus.SUCCEEDED
    ran = [e["data"] for e in JobDir(tmp_path / job.id).events() if e.get("data")]
    (runtime,) = [logged["train_runtime"] for logged in ran if "train_runtime" in logged]
    pace = json.loads((tmp_path / job.id / "status.json").read_text())["trained_tokens"] / runtime
    more = ft.Dataset.from_records(rows[:96])  # the same model as another path names it:
    figures = tuner.estimate(more, params, model=tiny_base, options={**full, "max_length": 128})
    seconds = max(1, round(figures.billed_tokens / pace))
    assert timed(figures.notes) == [
        f"training: about {seconds} s for {figures.billed_tokens:,} trained tokens at the "
        f"pace of {job.id} ({pace:,.0f} tokens a second), the latest job here that trained "
        "this model the same way; loading the model comes on top"
    ]
    assert timed(tuner.estimate_locally(more, params, options={"max_length": 96}).notes) == []


def test_a_base_model_named_by_a_relative_path_is_the_model_at_that_path(
    tiny_base: str, rows: list[dict[str, Any]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two projects' ``Tuner("hf", model="base")`` on the same data made one idempotency key,
    so the second fit re-attached to the job trained on the first project's model; the job
    and the registry held "base", which names nothing from another folder."""
    for project in ("a", "b"):
        shutil.copytree(tiny_base, tmp_path / project / "base")
    data = ft.Dataset.from_records(rows[:12])
    keys = {}
    for project, spelt in (("a", "base"), ("a", "./base/"), ("b", "base"), ("b", "~/base")):
        monkeypatch.chdir(tmp_path / project)
        monkeypatch.setenv("HOME", str(tmp_path / project))
        tuner = ft.AsyncTuner(HFBackend(jobs_dir=tmp_path / "jobs"), model=spelt, registry=False)
        model = str(tmp_path / project / "base")
        assert tuner.model == tuner.base_model.name == model
        assert repr(tuner).startswith(f"AsyncTuner('hf', model={model!r}")
        keys[project, spelt] = tuner.plan_fit(data).key
    assert keys["a", "base"] == keys["a", "./base/"] != keys["b", "base"] == keys["b", "~/base"]
    hub = ft.Tuner("hf", model="org/base", jobs_dir=tmp_path / "jobs", registry=False)
    assert hub.model == "org/base"  # a Hub id, no folder of that name here: as given


def test_early_stopping_ends_a_run_whose_validation_loss_stops_improving(
    tiny_base: str, rows: list[dict[str, Any]]
) -> None:
    """A threshold no loss can beat makes every evaluation after the first a miss: with a
    patience of 1, the run stops at its second evaluation of ten, and keeps the checkpoint of
    the lower validation loss as its model."""
    tuner = ft.Tuner("hf", model=tiny_base)
    train, holdout = ft.Dataset.from_records(rows[:64]), ft.Dataset.from_records(rows[64:80])
    options = {"max_length": 96, "early_stopping_patience": 1, "early_stopping_threshold": 100.0}
    params = ft.Hyperparameters(epochs=10, batch_size=16, learning_rate=1e-3, seed=1)
    with pytest.raises(ft.InvalidRequestError, match="give the fit a validation set"):
        tuner.fit(train, hyperparameters=params, options=options)
    job = tuner.fit(train, validation=holdout, hyperparameters=params, options=options)
    done = job.wait(poll_interval=0.3, timeout=240)
    assert done.status is ft.JobStatus.SUCCEEDED, tuner.backend.worker_log(job.id)
    (stopped,) = [e.message for e in job.events() if e.message.startswith("Stopped early")]
    assert stopped.startswith("Stopped early at step 8 of 40: the validation loss no longer")
    evaluated = {p.step: p.valid_loss for p in job.metrics() if p.valid_loss is not None}
    assert list(evaluated) == [4, 8]
    best = min(evaluated, key=lambda step: evaluated[step] or 0.0)
    assert f"the model is the checkpoint of step {best} (validation loss " in stopped
    assert f"{evaluated[best]:.4g})" in stopped
    assert Path(done.fine_tuned_model or "", "adapter_config.json").exists()
    assert ((done.raw or {}).get("step"), (done.raw or {}).get("max_steps")) == (8, 8)
    assert "step 8 / 8" in job._repr_html_()  # not 40 / 40: it trained 8 steps


def test_a_run_whose_weights_are_no_longer_numbers_fails_and_saves_nothing(
    tiny_base: str, rows: list[dict[str, Any]]
) -> None:
    """A learning rate no model survives, with gradient clipping off: the loss turns NaN, which
    transformers' logging showed as 0.0, and the job "succeeded" with a model of NaN weights.
    It fails at the first logged loss past the NaN, saving neither model nor checkpoint."""
    tuner = ft.Tuner("hf", model=tiny_base)
    job = tuner.fit(
        ft.Dataset.from_records(rows[:40]),
        hyperparameters=ft.Hyperparameters(epochs=2, batch_size=4, learning_rate=1e12, seed=1),
        options={"max_length": 96, "full_finetune": True, "trainer_args": {"max_grad_norm": 0}},
    )
    with pytest.raises(ft.JobFailed) as failed:
        job.wait(poll_interval=0.3, timeout=240)
    error = failed.value.job.error
    assert error is not None and error.code == "training_diverged", tuner.backend.worker_log(job.id)
    assert error.message.startswith("the train loss became nan by step 5 and the weights are no")
    assert "lower learning rate (this job's: 1e+12), and keep gradient clipping" in error.message
    losses = [point.train_loss for point in job.metrics()]
    assert len(losses) == 1 and losses[0] is not None and math.isnan(losses[0])  # not 0.0
    assert failed.value.job.fine_tuned_model is None and not job.checkpoints()
    folder = JobDir(tuner.backend.jobs_dir / job.id)  # type: ignore[attr-defined]
    assert not folder.model_dir.exists()
    # transformers' filter put back, clipping on: the loss reads 0.0, the gradient norm NaN
    filtered = {"logging_nan_inf_filter": True}
    again = tuner.fit(
        ft.Dataset.from_records(rows[:40]),
        hyperparameters=ft.Hyperparameters(epochs=2, batch_size=4, learning_rate=1e12, seed=1),
        options={"max_length": 96, "full_finetune": True, "trainer_args": filtered},
    )
    with pytest.raises(ft.JobFailed) as failed:
        again.wait(poll_interval=0.3, timeout=240)
    error = failed.value.job.error
    assert error is not None and error.code == "training_diverged"
    assert error.message.startswith("the gradient norm became nan by step 5 and the weights")
    assert "keep gradient clipping" not in error.message


@pytest.mark.parametrize("spoiled", [False, True])
def test_a_lost_loss_ends_the_run_only_where_the_weights_are_spoiled(
    tmp_path: Path, spoiled: bool
) -> None:
    """fp16's loss scaling skips a step whose gradients overflow: the loss logged is NaN, the
    weights are sound, and training goes on with a warning; NaN weights end it."""
    import torch
    from transformers import TrainerControl, TrainerState, TrainingArguments

    from finetune.backends.hf._worker import _callback, _Stop

    job = JobDir(tmp_path / "job")
    job.path.mkdir()
    stop = _Stop()
    model = torch.nn.Linear(2, 2)
    if spoiled:
        with torch.no_grad():
            model.weight[0, 0] = float("nan")
    args = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to=[])
    state, control = TrainerState(global_step=10, max_steps=40, epoch=0.5), TrainerControl()
    control.should_save = True
    logs = {"loss": float("nan"), "learning_rate": 1e-4}
    callback = _callback(job, stop)
    callback.on_log(args, state, control, logs=logs, model=model)
    callback.on_log(args, TrainerState(global_step=15, max_steps=40), control, logs=logs)
    assert control.should_training_stop is spoiled and control.should_save is not spoiled
    assert (stop.diverged is not None) is spoiled
    warnings = [e["message"] for e in job.events() if e["level"] == "warning"]
    assert len(warnings) == (0 if spoiled else 1)  # said once, not at every log
    if not spoiled:
        assert warnings[0].startswith("The train loss was nan in the steps up to 10; the weights")


def test_a_resumed_run_carries_on_the_counts_its_checkpoint_saved(tmp_path: Path) -> None:
    """TRL counts trained tokens from 0 in each run, and transformers gives early stopping
    its whole patience again (its restore of callback states is off: it would also restore the
    stop a cancel saved): both go on from the checkpoint's."""
    from types import SimpleNamespace

    from transformers import EarlyStoppingCallback, TrainerControl, TrainerState
    from transformers.trainer_callback import CallbackHandler

    from finetune.backends.hf._worker import _carry_on_from

    waiting, stopped = EarlyStoppingCallback(early_stopping_patience=3), TrainerControl()
    waiting.early_stopping_patience_counter, stopped.should_training_stop = 2, True
    history = [{"step": 5, "num_tokens": 2572.0}, {"step": 10, "num_tokens": 5144.0}]
    saved = TrainerState(global_step=10, log_history=history, stateful_callbacks=[waiting, stopped])
    (tmp_path / "checkpoint-10").mkdir()
    saved.save_to_json(str(tmp_path / "checkpoint-10" / "trainer_state.json"))
    fresh = EarlyStoppingCallback(early_stopping_patience=3)
    handler = CallbackHandler([fresh], None, None, None, None)
    trainer = SimpleNamespace(callback_handler=handler, _total_train_tokens=0)
    assert _carry_on_from(trainer, tmp_path / "checkpoint-10") == 5144
    assert trainer._total_train_tokens == 5144 and fresh.early_stopping_patience_counter == 2


def test_lora_adapter_merges_and_reloads(tiny_base: str, rows: list[dict[str, Any]]) -> None:
    from peft import AutoPeftModelForCausalLM
    from transformers import AutoModelForCausalLM

    tuner = ft.Tuner("hf", model=tiny_base, merge=True)
    hp = ft.Hyperparameters(epochs=2, batch_size=16, learning_rate=1e-2, lora=ft.LoRA(r=8))
    job = tuner.fit(ft.Dataset.from_records(rows[:120]), hyperparameters=hp)
    job.wait(poll_interval=0.3, timeout=240)
    directory = Path(job.job.raw["job_dir"])
    assert (directory / "model" / "adapter_config.json").exists()
    assert job.model.name == str(directory / "merged")
    merged = AutoModelForCausalLM.from_pretrained(job.model.name)
    from finetune.backends.hf._merge import quiet_peft

    with quiet_peft():  # peft's own deprecation noise, as the library silences it
        adapted = AutoPeftModelForCausalLM.from_pretrained(str(directory / "model"))
    import torch

    ids = torch.tensor([[5, 6, 7, 8, 9]])
    with torch.no_grad():
        difference = (merged(ids).logits - adapted(ids).logits).abs().max().item()
    base = AutoModelForCausalLM.from_pretrained(tiny_base)
    with torch.no_grad():
        moved = (merged(ids).logits - base(ids).logits).abs().max().item()
    assert difference < 1e-4 < moved


def test_dpo_smoke_run(tiny_base: str, rows: list[dict[str, Any]]) -> None:
    pairs = [
        {
            "input": row["messages"][:2],
            "chosen": [row["messages"][2]],
            "rejected": [{"role": "assistant", "content": "No."}],
        }
        for row in rows[:40]
    ]
    tuner = ft.Tuner("hf", model=tiny_base)
    job = tuner.fit(
        ft.Dataset.from_records(pairs),
        method="dpo",
        hyperparameters=ft.Hyperparameters(epochs=1, batch_size=8, beta=0.1),
        options={"max_length": 128},
    )
    job.wait(poll_interval=0.3, timeout=240)
    assert job.job.status is ft.JobStatus.SUCCEEDED, tuner.backend.worker_log(job.id)
    assert job.metrics()
    used = job.job.hyperparameters
    assert (used.beta, used.learning_rate, used.lora) == (0.1, 2e-4, ft.LoRA())


def test_a_preference_pair_whose_prompt_fills_max_length_is_said_to_be_dropped(
    tiny_base: str, tmp_path: Path
) -> None:
    """TRL's DPO drops a pair whose prompt alone fills ``max_length`` (no answer token is
    left): validation said only ``would_truncate``, and a fit of such pairs alone failed in
    the worker with "num_samples=0". Nor was a pair checked against the model's context."""
    asked = "Could you tell me where my order is, and when it ships? " * 6
    pairs = [
        {
            "input": [{"role": "user", "content": (asked if i < 8 else "Where?") + f" #{i}"}],
            "chosen": [{"role": "assistant", "content": f"Order #{i} ships tomorrow."}],
            "rejected": [{"role": "assistant", "content": "No."}],
        }
        for i in range(12)
    ]
    tuner = ft.Tuner("hf", model=tiny_base, max_length=48, registry=False)
    report = tuner.validate(ft.Dataset.from_records(pairs))
    assert report.ok and report.counts["no_trainable_tokens"] == 8
    (said, *_) = report.kept["no_trainable_tokens"]
    assert said.line == 1 and "which fills max_length=48: no token of either answer" in str(said)
    with pytest.raises(ft.ValidationFailed, match="none is left to train on"):
        tuner.fit(ft.Dataset.from_records(pairs[:8] * 2), method="dpo")

    config = json.loads((Path(tiny_base) / "config.json").read_text())
    short = tmp_path / "context-32"
    shutil.copytree(tiny_base, short)
    (short / "config.json").write_text(json.dumps({**config, "max_position_embeddings": 32}))
    over = ft.Tuner("hf", model=str(short), max_length=512).validate(ft.Dataset.from_records(pairs))
    assert over.counts["too_many_tokens"] == 8  # a pair past the context, trained past it
    assert "over the model's context of 32, and max_length=512" in str(over.errors[0])


_LONG = {"max_length": 96, "save_steps": 10, "logging_steps": 5}


def _long_job(tuner: ft.Tuner, rows: list[dict[str, Any]], **options: Any) -> ft.JobHandle:
    return tuner.fit(
        ft.Dataset.from_records(rows[:160]),
        hyperparameters=ft.Hyperparameters(epochs=30, batch_size=4),
        options={**_LONG, **options},
    )


@pytest.mark.parametrize(
    ("method", "given", "options", "used"),
    [
        ("sft", {}, {}, {"learning_rate": 2e-4, "lora": ft.LoRA()}),
        ("sft", {"learning_rate_multiplier": 2.0}, {}, {"learning_rate": 4e-4, "lora": ft.LoRA()}),
        ("sft", {"epochs": "auto"}, {"full_finetune": True}, {"learning_rate": 5e-5}),
        ("dpo", {"lora": ft.LoRA(r=4)}, {}, {"learning_rate": 2e-4, "lora": ft.LoRA(r=4)}),
    ],
)
def test_a_local_job_reports_the_hyperparameters_it_trains_with(
    method: str, given: dict[str, Any], options: dict[str, Any], used: dict[str, Any]
) -> None:
    """As hosted providers report theirs: the defaults filled in, the multiplier applied, and
    what the trainer is given is exactly what the job says."""
    from finetune.backends.hf._config import (
        LocalOptions,
        TrainingConfig,
        resolved_hyperparameters,
        trainer_arguments,
    )

    config = TrainingConfig(
        job_id="hfjob-x",
        base_model="m",
        method=method,  # type: ignore[arg-type]
        example_kind="chat" if method == "sft" else "preference",
        training_file="t.jsonl",
        hyperparameters=ft.Hyperparameters(**given),
        options=LocalOptions(**options),
        idempotency_key="k",
    )
    resolved = resolved_hyperparameters(config)
    beta = 0.1 if method == "dpo" else None
    assert resolved == ft.Hyperparameters(
        epochs=3, batch_size=8, warmup=0.0, seed=0, beta=beta, **used
    )
    args = trainer_arguments(config, output_dir="out", cuda=False, bf16_supported=False)
    assert (args["num_train_epochs"], args["learning_rate"], args.get("beta")) == (
        3,
        used["learning_rate"],
        beta,
    )
    assert args["per_device_train_batch_size"] == 8 and args["seed"] == 0


@pytest.mark.parametrize(("warmup", "steps"), [(None, 0), (0.25, 25), (1.0, 100)])
def test_warmup_is_a_fraction_of_the_run_up_to_all_of_it(
    warmup: float | None, steps: int, tmp_path: Path
) -> None:
    from trl import DPOConfig, SFTConfig

    from finetune.backends.hf._config import TrainingConfig, trainer_arguments
    from finetune.backends.hf._worker import with_current_names

    for method, settings in (("sft", SFTConfig), ("dpo", DPOConfig)):
        config = TrainingConfig(
            job_id="hfjob-x",
            base_model="m",
            method=method,
            example_kind="chat" if method == "sft" else "preference",
            training_file="t.jsonl",
            hyperparameters=ft.Hyperparameters(warmup=warmup),
            idempotency_key="k",
        )
        args = trainer_arguments(config, output_dir=str(tmp_path), cuda=False, bf16_supported=False)
        with warnings.catch_warnings():
            warnings.simplefilter("error", FutureWarning)  # no deprecated setting names
            assert settings(**with_current_names(args)).get_warmup_steps(100) == steps


def test_cancel_stops_the_worker_and_marks_the_job(
    tiny_base: str, rows: list[dict[str, Any]]
) -> None:
    tuner = ft.Tuner("hf", model=tiny_base)
    job = _long_job(tuner, rows, save_steps=None)  # one checkpoint an epoch, of 40 steps
    _wait_until(lambda: (job.refresh().raw or {}).get("step", 0) >= 5)
    started = time.monotonic()
    job.cancel()
    assert job.job.status is ft.JobStatus.CANCELLED
    assert time.monotonic() - started < 10
    worker = json.loads(Path(job.job.raw["job_dir"], "worker.json").read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(worker["pid"], 0)
    messages = [e.message for e in job.events()]
    assert "cancelled" in messages[-1]
    assert not any(m.startswith("Training finished") for m in messages)  # stopped, not finished
    # saved where it stopped, once: the cut-short epoch's end saved the same step again
    assert len([m for m in messages if m.startswith("Checkpoint saved")]) == 1, messages


def test_ctrl_c_while_waiting_names_the_jobs_folder_to_re_attach_from(
    tiny_base: str, rows: list[dict[str, Any]], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Ctrl-C in ``job.wait()`` (and its ``WaitTimeout``) said "Re-attach with
    Tuner('hf').job(id)", which finds no job made with ``jobs_dir=``: the hint names the
    folder, in Python and on the command line."""
    import _thread
    import shlex
    import threading

    from finetune.cli import main

    folder = tmp_path / "jobs"
    job = _long_job(ft.Tuner("hf", model=tiny_base, jobs_dir=folder, registry=False), rows)
    handler = signal.signal(signal.SIGINT, signal.default_int_handler)  # see test_tuner's
    try:
        with pytest.raises(ft.WaitTimeout) as late:  # its message says the same
            job.wait(poll_interval=0.1, timeout=0.3)
        tuner = f"Tuner('hf', jobs_dir={str(folder)!r})"
        assert f"Re-attach later with {tuner}.job({job.id!r}).wait()" in str(late.value)
        threading.Timer(0.5, _thread.interrupt_main).start()
        with caplog.at_level("WARNING", "finetune"), pytest.raises(KeyboardInterrupt):
            job.wait(poll_interval=0.1)
        said = caplog.messages[-1]
        assert f"Re-attach with Tuner('hf', jobs_dir={str(folder)!r}).job({job.id!r})" in said
        again = ft.Tuner("hf", jobs_dir=folder, registry=False).job(job.id)
        assert again.job.status is ft.JobStatus.RUNNING
        command = shlex.split(said.rpartition("(")[2].rstrip(")"))
        assert command[:3] == ["finetune", "cancel", job.id] and "--jobs-dir" in command
        assert main(command[1:]) == 0
        assert again.refresh().status is ft.JobStatus.CANCELLED
    finally:
        signal.signal(signal.SIGINT, handler)
        job.cancel()  # a no-op once the command cancelled it


def test_a_tuner_dropped_while_its_worker_runs_leaves_no_warning_and_no_zombie(
    tiny_base: str, rows: list[dict[str, Any]]
) -> None:
    """A job outlives its Tuner: dropping them while it trains warns of nothing (Popen's
    "still running" ResourceWarning, an error where warnings are errors), and the worker is
    reaped when it ends, though nothing waits on it."""
    import gc

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        job_id = _long_job(ft.Tuner("hf", model=tiny_base), rows).id
        gc.collect()
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)], caught
    job = ft.Tuner("hf", model=tiny_base).job(job_id)
    worker = json.loads(Path(job.job.raw["job_dir"], "worker.json").read_text())
    job.cancel()
    _wait_until(lambda: not Path(f"/proc/{worker['pid']}").exists(), timeout=10)


@pytest.mark.parametrize(("epoch", "evaluated"), [(1.0, True), (0.275, False)])
def test_a_stop_saves_its_step_once_and_evaluates_only_an_epoch_that_ended(
    tmp_path: Path, epoch: float, evaluated: bool
) -> None:
    """The Trainer takes the end of the loop a stop breaks for an epoch's end: with one
    checkpoint an epoch it saved the stop's step again, and evaluated a cut-short epoch."""
    from transformers import TrainerControl, TrainerState, TrainingArguments

    from finetune.backends.hf._worker import _callback, _Stop

    job = JobDir(tmp_path / "job")
    job.path.mkdir()
    stop = _Stop()
    stop.requested = True
    callback = _callback(job, stop)
    args = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to=[])
    state = TrainerState(global_step=11, max_steps=40, epoch=epoch)
    control = TrainerControl()
    callback.on_save(args, state, control)  # at the step it stopped
    control.should_save = control.should_evaluate = True  # what the flow asks at an epoch's end
    callback.on_epoch_end(args, state, control)
    assert (control.should_save, control.should_evaluate) == (False, evaluated)
    stop.requested = False  # an epoch that ends with no stop is saved and evaluated
    control.should_save = control.should_evaluate = True
    callback.on_epoch_end(args, TrainerState(global_step=40, max_steps=80, epoch=1.0), control)
    assert control.should_save and control.should_evaluate


def test_a_max_steps_past_the_epochs_asked_says_it_goes_round_the_data_again(
    tmp_path: Path,
) -> None:
    """``max_steps=6`` with one epoch of 3 steps trained 2 epochs, while the job said 1."""
    from transformers import TrainerControl, TrainerState, TrainingArguments

    from finetune.backends.hf._worker import _callback, _Stop

    job = JobDir(tmp_path / "job")
    job.path.mkdir()
    callback = _callback(job, _Stop())
    for max_steps, epochs, said in (
        (6, 2, "; max_steps=6 sets the length: 2 epochs over the data, not the 1 epoch asked"),
        (2, 1, ""),  # fewer steps than the epoch: a bound, said by the step count
        (-1, 1, ""),
    ):
        args = TrainingArguments(
            output_dir=str(tmp_path), use_cpu=True, report_to=[], max_steps=max_steps
        )
        args.num_train_epochs = 1
        state = TrainerState(max_steps=abs(max_steps) * 3, num_train_epochs=epochs)
        callback.on_train_begin(args, state, TrainerControl())
        steps = counted(state.max_steps, "step")
        assert job.events()[-1]["message"] == f"Training started: {steps} on 1 process{said}"


def test_a_job_started_beside_others_on_the_cpu_says_they_will_crawl(
    tiny_base: str,
    rows: list[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    """Two trainings at once on the same cores, each with a thread per core, were both still
    training after 6 minutes where one alone took 19 s: a job started beside others says so,
    unless ``OMP_NUM_THREADS`` shares the cores out. A job that has ended, its worker still
    exiting (a fit right after ``wait``), trains no more: it was named all the same. Jobs of
    another jobs folder (the demo's) were not named at all."""
    tuner = ft.Tuner("hf", model=tiny_base)
    data = ft.Dataset.from_records(rows[:160])

    def start(suffix: str) -> ft.JobHandle:
        return tuner.fit(data, hyperparameters=ft.Hyperparameters(epochs=30), suffix=suffix)

    jobs = [start("first")]
    with caplog.at_level("WARNING", logger="finetune"):
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
        jobs.append(start("shared"))
        monkeypatch.delenv("OMP_NUM_THREADS")
        jobs.append(start("third"))
        ended = JobDir(Path(os.environ["FINETUNE_HF_JOBS_DIR"]) / jobs[0].id)
        worker = json.loads(ended.worker_path.read_text())["pid"]
        os.kill(worker, signal.SIGSTOP)  # alive, and writing no more status
        try:
            ended.update_status(status="succeeded")
            elsewhere = ft.Tuner(HFBackend(jobs_dir=tmp_path / "elsewhere"), model=tiny_base)
            jobs.append(elsewhere.fit(data, hyperparameters=ft.Hyperparameters(epochs=30)))
        finally:
            os.kill(worker, signal.SIGKILL)
    for job in jobs[1:]:
        job.cancel()
    # by membership: the jobs of tests running beside this one in other processes count too
    said = [r.getMessage() for r in caplog.records if "still training" in r.getMessage()]
    assert said[0].startswith(f"job {jobs[2].id}: ") and "OMP_NUM_THREADS" in said[0]
    assert jobs[0].id in said[0] and jobs[1].id in said[0]
    assert said[1].startswith(f"job {jobs[3].id}: ")
    assert jobs[0].id not in said[1] and jobs[1].id in said[1] and jobs[2].id in said[1]


_CALL = {"id": "call_1", "type": "function", "function": {"name": "look_up", "arguments": "{}"}}
_TOOL = {"type": "function", "function": {"name": "look_up", "parameters": {"type": "object"}}}
_TOOL_TEMPLATE = (  # the tiny base's own layout, with tools written as Qwen 2.5 writes them
    "{% if tools %}{{ '<|system|>Tools:' }}{% for t in tools %}{{ ' ' + (t | tojson) }}"
    "{% endfor %}{{ '<|end|>' }}{% endif %}{% for m in messages %}"
    "{{ '<|' + m['role'] + '|>' + m['content'] }}{% for c in m.get('tool_calls', []) %}"
    "{{ '<tool_call>' + c['function']['name'] + ' ' + (c['function']['arguments'] | tojson) }}"
    "{% endfor %}{{ '<|end|>' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}"
)


def _calling(number: int) -> dict[str, Any]:
    return {
        "messages": [
            {"role": "user", "content": f"Look up order {number}."},
            {"role": "assistant", "tool_calls": [_CALL]},
            {"role": "tool", "tool_call_id": "call_1", "content": "found"},
            {"role": "assistant", "content": f"Order {number} is found."},
        ],
        "tools": [_TOOL],
    }


def _with_template(model: str, folder: Path, template: str) -> str:
    """A copy of the ``model`` folder whose tokenizer has the chat ``template``."""
    from transformers import AutoTokenizer

    shutil.copytree(model, folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    tokenizer.chat_template = template
    tokenizer.save_pretrained(folder)
    return str(folder)


def test_tools_train_where_the_chat_template_writes_them_and_are_refused_elsewhere(
    tiny_base: str, rows: list[dict[str, Any]], tmp_path: Path
) -> None:

    described = {**rows[0], "tools": [_TOOL]}  # tools offered, none called
    pair = {
        "prompt": "Look it up.",
        "chosen": [{"role": "assistant", "tool_calls": [_CALL]}],
        "rejected": "No.",
    }
    plain = ft.Tuner("hf", model=tiny_base)  # its template writes no tools
    data = ft.Dataset.from_records([*rows[:10], _calling(1), described])
    report = plain.validate(data)
    assert report.counts["unsupported_tools"] == 2 and report.lines("unsupported_tools") == [11, 12]
    assert {f.field for f in report.kept["unsupported_tools"]} == {"tools"}
    assert "does not write tool definitions" in report.kept["unsupported_tools"][0].message
    assert "Tuner('hf', chat_template=...)" in report.kept["unsupported_tools"][0].message
    files = set((plain.backend.jobs_dir / "files").glob("*"))
    with pytest.raises(ft.ValidationFailed, match="unsupported_tools x2"):
        plain.fit(data)
    assert set((plain.backend.jobs_dir / "files").glob("*")) == files  # nothing written
    refused = plain.validate(ft.Dataset.from_records([pair]))
    assert refused.kept["unsupported_tools"][0].field == "chosen[0].tool_calls"  # DPO: text only

    tuner = ft.Tuner("hf", model=_with_template(tiny_base, tmp_path / "tools", _TOOL_TEMPLATE))
    tooled = ft.Dataset.from_records([*rows[:20], *(_calling(n) for n in range(20)), described])
    assert tuner.validate(tooled).error_count == 0
    job = tuner.fit(tooled, hyperparameters=ft.Hyperparameters(epochs=1, batch_size=8))
    assert job.wait(poll_interval=0.3, timeout=240).status is ft.JobStatus.SUCCEEDED


_THINK_TEMPLATE = (  # the tiny base's own layout, the answer's reasoning in a think block
    "{% for m in messages %}{{ '<|' + m['role'] + '|>' }}"
    "{% if m['role'] == 'assistant' and loop.last %}"
    "{{ '<think>' + (m.get('reasoning_content') or '') + '</think>' }}{% endif %}"
    "{{ m['content'] + '<|end|>' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}"
)


def test_reasoning_trains_where_the_chat_template_writes_it_and_is_refused_elsewhere(
    tiny_base: str, rows: list[dict[str, Any]], tmp_path: Path
) -> None:
    """An assistant turn's chain of thought (Together's ``reasoning``): was refused as an
    unknown key, whose cure, "remove it", trains a reasoning model to stop reasoning."""

    reasoned = [
        {**row, "messages": [*row["messages"][:-1], {**row["messages"][-1], "reasoning": why}]}
        for row, why in zip(rows[:24], ("The customer waits.", "Be brief.") * 12, strict=True)
    ]
    plain = ft.Tuner("hf", model=tiny_base)  # its template writes content alone
    report = plain.validate(ft.Dataset.from_records(reasoned))
    assert report.counts["unsupported_reasoning"] == 24
    found = report.kept["unsupported_reasoning"][0]
    assert found.field == f"messages[{len(rows[0]['messages']) - 1}].reasoning"
    assert "does not write reasoning_content" in found.message
    assert "--option chat_template=" in found.message  # tokenizer.chat_template is not ours
    pair = {"prompt": "2 + 2?", "chosen": [{"role": "assistant", "content": "4", "reasoning": "r"}]}
    pair["rejected"] = "5"
    refused = plain.validate(ft.Dataset.from_records([pair]))
    assert refused.kept["unsupported_reasoning"][0].field == "chosen[0].reasoning"  # DPO too

    tuner = ft.Tuner("hf", model=_with_template(tiny_base, tmp_path / "thinks", _THINK_TEMPLATE))
    assert tuner.validate(ft.Dataset.from_records(reasoned)).error_count == 0
    job = tuner.fit(ft.Dataset.from_records(reasoned), hyperparameters=ft.Hyperparameters(epochs=1))
    assert job.wait(poll_interval=0.3, timeout=240).status is ft.JobStatus.SUCCEEDED
    uploaded = next((tuner.backend.jobs_dir / "files").glob("*"))
    assert '"reasoning_content":"The customer waits."' in uploaded.read_text()


def test_a_log_line_cut_by_a_crash_costs_only_that_line(tmp_path: Path) -> None:
    job = JobDir(tmp_path / "job")
    job.path.mkdir()
    job.append_event("Started")
    job.append_metric({"step": 1, "train_loss": 2.0})
    for path in (job.events_path, job.metrics_path):  # a full disk or a kill mid-write
        with path.open("a", encoding="utf-8") as handle:
            handle.write('{"created_at": "2026-')
    assert [row["message"] for row in job.events()] == ["Started"]
    job.append_event("Resumed")  # the resumed worker writes on
    job.append_metric({"step": 2, "train_loss": 1.5})
    assert [row["message"] for row in job.events()] == ["Started", "Resumed"]
    assert [row["step"] for row in job.metrics()] == [1, 2]
    job.events_path.write_text(job.events_path.read_text() + "not json\n[1]\n")
    assert [row["message"] for row in job.events()] == ["Started", "Resumed"]


def test_a_worker_record_is_never_read_half_written(tmp_path: Path) -> None:
    """``worker.json`` was rewritten in place on each launch: a status read from another
    process while a resume rewrote it could find it empty or cut, and fail to parse."""
    import threading

    job = JobDir(tmp_path / "job")
    job.path.mkdir()
    record = {"pid": 4242, "start_time": 1.0, "command": ["python", "-m", "worker"] * 50}
    job.write_worker(record)
    done, seen = threading.Event(), []

    def rewrite() -> None:
        while not done.is_set():
            job.write_worker(record)

    writer = threading.Thread(target=rewrite)
    writer.start()
    try:
        deadline = time.monotonic() + 0.5
        while time.monotonic() < deadline:
            seen.append(job.read_worker())
    finally:
        done.set()
        writer.join()
    assert len(seen) > 100 and all(found == record for found in seen)


def test_delete_removes_an_ended_job_or_its_checkpoints_alone(
    tiny_base: str, rows: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    """No command deleted a job: an ended job's checkpoints (60 MB each on SmolLM2) and
    folder were removed by hand, leaving its record in the registry."""
    from finetune.cli import main

    tuner = ft.Tuner("hf", model=tiny_base)
    job = _long_job(tuner, rows, max_steps=600)  # still running when asked, however fast
    _wait_until(lambda: len(job.checkpoints()) >= 1)
    with pytest.raises(ft.InvalidRequestError, match=r"is running: .*cancel it first"):
        job.delete()  # its worker still writes there
    job.cancel()
    folder = Path(job.job.raw["job_dir"])
    assert main(["delete", job.id, "--checkpoints-only"]) == 0
    assert re.fullmatch(
        rf"{job.id} checkpoints deleted: [\d.]+ [KM]B freed\n", capsys.readouterr().out
    )
    assert folder.is_dir() and not (folder / "checkpoints").exists() and job.checkpoints() == []
    assert job.delete(checkpoints_only=True) == 0  # nothing left to free
    assert job.delete() > 0 and not folder.exists()
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]  # nothing hidden
    assert ft.JobRegistry().get("hf", job.id) is None
    with pytest.raises(ft.JobNotFound):
        tuner.job(job.id)
    assert main(["status", job.id]) == 2  # it said the job "was not started from this machine"
    assert ": started elsewhere, or deleted;" in capsys.readouterr().err
    assert main(["ask", f"hf:{job.id}", "hi"]) == 2  # it said "give the job's folder" alone
    assert "registry does not hold (deleted, or started elsewhere)" in capsys.readouterr().err


def test_delete_removes_the_copy_of_the_data_no_other_job_trains_on(
    tiny_base: str, rows: list[dict[str, Any]], tmp_path: Path
) -> None:
    """``finetune delete`` removed a job's folder and kept the copy of its training data under
    ``jobs_dir/files`` for good: the data (private, perhaps) and its room on disk."""
    from finetune.cli import main

    tuner = ft.Tuner("hf", model=tiny_base, jobs_dir=tmp_path / "jobs", registry=False)
    shared, alone = ft.Dataset.from_records(rows[:40]), ft.Dataset.from_records(rows[40:80])
    made = [tuner.fit(shared, idempotency_key=key, options=_LONG) for key in ("a", "b")]
    made.append(tuner.fit(alone, options=_LONG))
    try:
        with pytest.raises(ft.InvalidRequestError) as running:  # the command names its folder
            made[2].delete()
        cancel = f"finetune cancel {made[2].id} --backend hf --jobs-dir {tmp_path / 'jobs'}"
        assert f"({cancel}), then delete it" in str(running.value)
        assert main(cancel.split()[1:]) == 0  # without the registry, found by --jobs-dir alone
    finally:
        for job in made:
            job.cancel()
    files = tmp_path / "jobs" / "files"
    copies = {path.name: path for path in files.iterdir()}
    assert len(copies) == 2  # one copy of the data two jobs train on
    shared_copy, alone_copy = (
        files / f"{data.fingerprint()[:16]}-train.jsonl" for data in (shared, alone)
    )
    for copy in copies.values():  # last used two hours ago: no fit is starting with it
        os.utime(copy, (time.time() - 7200, time.time() - 7200))
    made[0].delete()
    assert shared_copy.is_file()  # the second job trains on it
    folder, size = Path(made[1].job.raw["job_dir"]), shared_copy.stat().st_size
    assert made[1].delete() > size and not shared_copy.exists()  # the room freed counts it
    assert not folder.exists() and alone_copy.is_file()
    tuner.fit(alone, idempotency_key="again", options={**_LONG, "max_steps": 1}).cancel()
    made[2].delete()  # its copy was used again a moment ago: a fit may be starting with it
    assert alone_copy.is_file()


def test_a_lost_worker_s_job_is_resumed_by_a_command_that_finds_its_folder(
    tmp_path: Path,
) -> None:
    """A job of a ``jobs_dir=`` of one's own, its worker lost, said ``finetune resume ID
    --backend hf``, which looks in the default jobs folder (or the registry's record)."""
    from finetune.backends.hf._jobdir import how_to_resume

    for folder, flags in (
        (tmp_path / "my jobs", f"--backend hf --jobs-dir '{tmp_path / 'my jobs'}'"),
        (HFBackend().jobs_dir, "--backend hf"),  # the default ($FINETUNE_HF_JOBS_DIR here)
    ):
        said = how_to_resume(JobDir(folder / "hfjob-x"))
        assert said == f"resume() (finetune resume hfjob-x {flags}) starts it again " + (
            "(no checkpoint was saved)"
        )


def test_killed_worker_is_failed_and_resume_continues(
    tiny_base: str, rows: list[dict[str, Any]]
) -> None:
    tuner = ft.Tuner("hf", model=tiny_base)
    job = _long_job(tuner, rows, max_steps=60)
    _wait_until(lambda: len(job.checkpoints()) >= 2)
    worker = json.loads(Path(job.job.raw["job_dir"], "worker.json").read_text())
    os.killpg(worker["pid"], signal.SIGKILL)
    _wait_until(lambda: job.refresh().status is ft.JobStatus.FAILED, timeout=30)
    assert job.job.error is not None and job.job.error.code == "worker_lost"
    assert "SIGKILL" in job.job.error.message and "resume()" in job.job.error.message
    assert f"(finetune resume {job.id} --backend hf) continues from" in job.job.error.message
    assert "then fit again" not in str(ft.JobFailed(job.job))  # it is resumed, not fit again
    last = job.checkpoints()[-1].step
    # A kill while the Trainer saves leaves the next checkpoint with its files but an empty
    # trainer_state.json (written last, in place): it is not a checkpoint to resume from.
    folder = Path(job.job.raw["job_dir"], "checkpoints")
    cut = folder / f"checkpoint-{last + 10}"
    shutil.copytree(folder / f"checkpoint-{last}", cut, dirs_exist_ok=True)  # or the kill's
    (cut / "trainer_state.json").write_text("")
    assert job.checkpoints()[-1].step == last

    watcher = ft.Tuner(HFBackend()).job(job.id)  # another Tuner, no handle on the process
    assert watcher.job.status is ft.JobStatus.FAILED
    job.resume()
    job.wait(poll_interval=0.3, timeout=240)
    assert job.job.status is ft.JobStatus.SUCCEEDED, tuner.backend.worker_log(job.id)
    said = [e.message for e in job.events()]
    assert f"Discarded the checkpoint at step {last + 10}: its save was cut short" in said
    assert any(f"checkpoint at step {last}" in message for message in said)
    assert max(p.step for p in job.metrics()) == 60
    assert Path(job.model.name, "adapter_model.safetensors").exists()
    # TRL counts the tokens trained from 0 again in a resumed run: the count went on from the
    # checkpoint's, so the metric never falls back and the job counts every run's tokens
    counts = [p.extra["num_tokens"] for p in job.metrics()]
    assert counts == sorted(set(counts)) and job.job.trained_tokens == counts[-1]
    resumed = next(e for e in job.events() if e.message.startswith("Resuming from"))
    assert job.job.raw["run_first_step"] == last  # its view times the resumed run's steps
    at_last = next(p.extra["num_tokens"] for p in job.metrics() if p.step == last)
    assert resumed.data == {"step": last, "trained_tokens": at_last}
    # the estimate's pace is the last run's: its tokens, over the seconds it ran
    (runtime,) = [
        e.data["train_runtime"] for e in job.events() if "train_runtime" in (e.data or {})
    ]
    pace = (counts[-1] - resumed.data["trained_tokens"]) / runtime
    notes = tuner.estimate_locally(ft.Dataset.from_records(rows[:8]), options=_LONG).notes
    assert f"at the pace of {job.id} ({pace:,.0f} tokens a second)" in "".join(notes)


def test_accelerate_launch_runs_two_processes(
    tiny_base: str, rows: list[dict[str, Any]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the workers' temporary folder
    tuner = ft.Tuner("hf", model=tiny_base, launcher="accelerate", num_processes=2)
    job = tuner.fit(
        ft.Dataset.from_records(rows[:64]),
        hyperparameters=ft.Hyperparameters(epochs=1, batch_size=4),
        options={"max_length": 96},
    )
    job.wait(poll_interval=0.3, timeout=240)
    assert job.job.status is ft.JobStatus.SUCCEEDED, tuner.backend.worker_log(job.id)
    assert job.job.raw["world_size"] == 2
    started = next(e for e in job.events() if e.message.startswith("Training started"))
    assert started.data == {"world_size": 2, "max_steps": 8}  # 64 / (4 per device x 2)
    assert started.message == "Training started: 8 steps on 2 processes"
    assert not list(tmp_path.glob("torchelastic_*"))  # its launch logs stay with the job
    assert list(Path(job.job.raw["job_dir"], "launcher-logs").iterdir())


def test_an_accelerate_config_of_ones_own_is_read_where_it_was_named(
    tiny_base: str, rows: list[dict[str, Any]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``accelerate_config="my.yaml"`` (as docs/backends/hf.md writes it) was handed to a
    launcher that runs in the job's folder: the worker died on a file it could not find."""
    (tmp_path / "my.yaml").write_text(
        "compute_environment: LOCAL_MACHINE\ndistributed_type: 'NO'\nnum_processes: 1\n"
        "num_machines: 1\nmachine_rank: 0\nmixed_precision: 'no'\nuse_cpu: true\n"
    )
    monkeypatch.chdir(tmp_path)
    tuner = ft.Tuner(
        "hf",
        model=tiny_base,
        jobs_dir=tmp_path / "jobs",
        launcher="accelerate",
        accelerate_config="my.yaml",
    )
    job = tuner.fit(ft.Dataset.from_records(rows[:16]), options={"max_steps": 1, "max_length": 96})
    job.wait(poll_interval=0.3, timeout=240)
    assert job.job.status is ft.JobStatus.SUCCEEDED, tuner.backend.worker_log(job.id)


def test_missing_model_folder_is_a_clear_error(rows: list[dict[str, Any]]) -> None:
    tuner = ft.Tuner("hf", model="/nonexistent/model")
    data = ft.Dataset.from_records(rows[:20])
    for attempt in (tuner.validate, lambda d: tuner.fit(d, skip_validation=True)):
        with pytest.raises(ft.InvalidRequestError, match="could not be loaded") as caught:
            attempt(data)
        assert caught.value.param == "model"
        assert "no such folder or .gguf file; check the path" in str(caught.value)
        assert "HF_HUB_OFFLINE" not in str(caught.value)  # a path, not a Hub id
    with pytest.raises(ft.InvalidRequestError, match=r"no such folder or \.gguf file"):
        ft.evaluate(  # a local candidate says the same
            data,
            {"gone": ft.ModelRef(backend="hf", name="/nonexistent/model")},
            [ft.metrics.exact_match],
        )


def test_a_hub_id_that_cannot_be_fetched_names_the_reason_and_offline_mode(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import transformers

    from finetune.backends.hf._inputs import load_tokenizer

    def unreachable(*args: Any, **kwargs: Any) -> Any:
        raise OSError("We couldn't connect to 'https://huggingface.co' to load the files.\nMore")

    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", unreachable)
    with pytest.raises(ft.InvalidRequestError) as caught:
        load_tokenizer("org/model", False, "org/model")
    message = str(caught.value)
    assert "(OSError: We couldn't connect to 'https://huggingface.co'" in message
    assert "More" not in message and "HF_HUB_OFFLINE=1" in message


def test_template_without_generation_markers_trains_on_assistant_turns_only(
    tiny_base: str, rows: list[dict[str, Any]], tmp_path: Path
) -> None:
    from transformers import AutoTokenizer

    from finetune.backends.hf._trainer import encoded_rows

    tokenizer = AutoTokenizer.from_pretrained(tiny_base)
    copy = tmp_path / "plain"
    tokenizer.chat_template = tokenizer.chat_template.replace("{% generation %}", "").replace(
        "{% endgeneration %}", ""
    )
    tokenizer.save_pretrained(copy)
    for name in ("config.json", "model.safetensors"):
        (copy / name).write_bytes(Path(tiny_base, name).read_bytes())
    tuner = ft.Tuner("hf", model=str(copy))
    data = ft.Dataset.from_records(rows[:16])
    job = tuner.fit(data, hyperparameters=ft.Hyperparameters(epochs=1, batch_size=8))
    job.wait(poll_interval=0.3, timeout=240)
    assert job.job.status is ft.JobStatus.SUCCEEDED, tuner.backend.worker_log(job.id)
    encoded = encoded_rows(
        tokenizer, job.job.training_file or "", "chat", assistant_only=True, max_length=1024
    )
    for row, source in zip(encoded, rows[:16], strict=True):
        trained = [
            t for t, label in zip(row["input_ids"], row["labels"], strict=True) if label != -100
        ]
        assert tokenizer.decode(trained) == source["messages"][-1]["content"] + "<|end|>"

    bare = tmp_path / "bare"
    tokenizer.chat_template = None
    tokenizer.save_pretrained(bare)
    (bare / "config.json").write_text(Path(tiny_base, "config.json").read_text())
    with pytest.raises(ft.FinetuneError, match="no chat template"):
        ft.Tuner("hf", model=str(bare)).fit(data, skip_validation=True)


@pytest.mark.parametrize("templated", [False, True])
def test_a_model_trained_on_completions_is_asked_as_it_trained(
    tiny_base: str, tmp_path: Path, templated: bool
) -> None:
    """Prompt and completion need no chat template, which a base model lacks: validate, fit
    and evaluate refused them, as if they were chat examples. A model with one, trained on
    completions (the prompt's text, then the completion), was asked through its template, a
    prompt it never saw in training."""
    from transformers import AutoTokenizer

    bare = tmp_path / "bare"
    if templated:
        bare = Path(tiny_base)
    else:
        tokenizer = AutoTokenizer.from_pretrained(tiny_base)
        tokenizer.chat_template = None
        tokenizer.save_pretrained(bare)
        for name in ("config.json", "model.safetensors"):
            (bare / name).write_bytes(Path(tiny_base, name).read_bytes())
    tuner = ft.Tuner(HFBackend(jobs_dir=tmp_path / "jobs"), model=str(bare), registry=False)
    completions = [{"prompt": f"Order {i}:", "completion": " ships tomorrow."} for i in range(16)]
    data = ft.Dataset.from_records(completions)
    assert tuner.validate(data).ok
    params = ft.Hyperparameters(epochs=30, batch_size=8, learning_rate=3e-3, seed=1)
    job = tuner.fit(data, hyperparameters=params, options={"full_finetune": True})
    done = job.wait(poll_interval=0.3, timeout=240)
    assert done.status is ft.JobStatus.SUCCEEDED, tuner.backend.worker_log(job.id)
    # asked as it trained, the prompt's text: evaluation refused it for want of a template
    short = {"base": {"max_new_tokens": 12}, "tuned": {"max_new_tokens": 12}}
    asked = {"base": tuner.base_model, "tuned": job.model}
    result = ft.evaluate(data, asked, ["exact_match"], predictor_options=short)
    assert result.summary()["tuned"]["exact_match"].mean == 1.0
    if templated:  # its merged export is asked so too: the export says which job it is of
        from finetune.export import export_model

        merged = export_model(job.model.name, tmp_path / "merged", format="merged").path
        gguf_file = export_model(job.model.name, tmp_path / "m.gguf", format="gguf").path
        asked = {
            "merged": ft.ModelRef(backend="hf", name=str(merged)),
            "gguf": ft.ModelRef.gguf(str(gguf_file)),  # the file says so in its metadata
        }
        short = {name: {"max_new_tokens": 12} for name in asked}
        result = ft.evaluate(data, asked, ["exact_match"], predictor_options=short)
        assert result.summary()["merged"]["exact_match"].mean == 1.0
        assert result.summary()["gguf"]["exact_match"].mean == 1.0
        # a chat prompt asked beside a completion's left it asked through the chat template
        tuned = HFPredictor(job.model.name, max_new_tokens=12)
        chat = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "q"}]
        prompt = [{"role": "user", "content": "Order 3:"}]
        assert tuned.predict_batch([prompt, chat])[0] == tuned.predict(prompt) == "ships tomorrow."
        # Ollama sends the prompt as it is, not in the chat format it never trained in
        ollama = export_model(merged, tmp_path / "ollama", format="ollama")
        modelfile = (ollama.path / "Modelfile").read_text()
        assert 'TEMPLATE """{{ .Prompt }}"""' in modelfile and "stop" not in modelfile
        assert "prompt/completion" in ollama.notes[0]
        return
    chats = ft.Dataset.from_records(
        [{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}]
        * 4
    )
    with pytest.raises(ft.InvalidRequestError, match="has no chat template"):
        tuner.validate(chats)


_TURNS = (
    "{% for message in messages %}<|{{ message['role'] }}|>{{ message['content'] }}"
    "{% if message['role'] == 'assistant' %}{{ eos_token }}{% endif %}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def test_a_model_without_a_chat_template_trains_with_the_one_given(
    tiny_base: str,
    rows: list[dict[str, Any]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from transformers import AutoTokenizer

    from finetune.backends.hf._trainer import encoded_rows
    from finetune.cli import main

    tokenizer = AutoTokenizer.from_pretrained(tiny_base)
    tokenizer.chat_template = None
    bare = tmp_path / "bare"
    tokenizer.save_pretrained(bare)
    for name in ("config.json", "model.safetensors"):
        (bare / name).write_bytes(Path(tiny_base, name).read_bytes())
    data = ft.Dataset.from_records(rows[:16])
    with pytest.raises(ft.InvalidRequestError, match=r"chat_template=Path\('chat.jinja'\)"):
        ft.Tuner("hf", model=str(bare)).fit(data, skip_validation=True)
    with pytest.raises(ft.InvalidRequestError, match="Jinja text") as caught:
        ft.Tuner("hf", model=str(bare), chat_template="chatml")
    assert caught.value.param == "chat_template"
    assert '--option "chat_template=$(cat chat.jinja)"' in str(caught.value)  # the CLI's way

    backend = HFBackend(jobs_dir=tmp_path / "jobs", chat_template=_TURNS)
    tuner = ft.Tuner(backend, model=str(bare), registry=False)
    tokenizer.chat_template = _TURNS
    rendered = [tokenizer.apply_chat_template(r["messages"])["input_ids"] for r in rows[:16]]
    assert tuner.validate(data).ok
    assert tuner.estimate(data).tokens_total == sum(map(len, rendered))
    longer = _TURNS.replace("<|{{", "<|turn|><|{{")  # the fit's own template is counted
    quoted = tuner.estimate(data, options={"chat_template": longer}).tokens_total
    assert quoted > sum(map(len, rendered))

    job = tuner.fit(data, hyperparameters=ft.Hyperparameters(epochs=1, batch_size=8))
    job.wait(poll_interval=0.3, timeout=240)
    assert job.job.status is ft.JobStatus.SUCCEEDED, backend.worker_log(job.id)
    assert AutoTokenizer.from_pretrained(job.model.name).chat_template == _TURNS
    encoded = encoded_rows(
        tokenizer, job.job.training_file or "", "chat", assistant_only=True, max_length=1024
    )
    for row, source in zip(encoded, rows[:16], strict=True):
        trained = [t for t, mark in zip(row["input_ids"], row["labels"], strict=True) if mark >= 0]
        assert tokenizer.decode(trained) == source["messages"][-1]["content"] + "<|end|>"

    question = rows[20]["messages"][:2]
    with pytest.raises(ft.InvalidRequestError, match=r"in ft\.evaluate's predictor_options"):
        HFPredictor(str(bare), max_new_tokens=4).predict(question)
    assert main(["ask", f"hf:{bare}", "hi", "--system", "Be brief."]) == 2  # a chat prompt
    assert 'in --option "chat_template=$(cat chat.jinja)"' in capsys.readouterr().err
    given = HFPredictor(str(bare), max_new_tokens=4, chat_template=_TURNS)
    assert isinstance(given.predict(question), str)
    assert given.name != HFPredictor(str(bare), max_new_tokens=4).name
    assert isinstance(HFPredictor(job.model.name, max_new_tokens=4).predict(question), str)

    # the Tuner's base model is asked as it trains: with the Tuner's template (it was refused)
    assert tuner.base_model.asked_with == {"chat_template": _TURNS}
    assert ft.Tuner("hf", model=str(bare)).base_model.asked_with == {}
    candidates = {
        "base": tuner.base_model,
        "base 2-shot": tuner.base_model.with_few_shot(data, k=2),
        "tuned": job.model,
    }
    held = ft.Dataset.from_records(rows[20:22])
    questions = [r["messages"][:2] for r in rows[20:22]]
    short = {name: {"max_new_tokens": 4} for name in candidates}
    asked = ft.evaluate(held, candidates, m.exact_match, predictor_options=short)
    assert asked.predictions("base") == [given.predict(q) for q in questions]
    other = {"base": {"max_new_tokens": 4, "chat_template": longer}}  # the candidate's own wins
    mine = ft.evaluate(held, {"base": tuner.base_model}, m.exact_match, predictor_options=other)
    with_longer = HFPredictor(str(bare), max_new_tokens=4, chat_template=longer)
    assert mine.predictions("base") == [with_longer.predict(q) for q in questions]


def test_preference_data_needs_dpo_and_options_are_checked(
    tiny_base: str, rows: list[dict[str, Any]], tmp_path: Path
) -> None:
    pairs = [
        {"input": r["messages"][:2], "chosen": [r["messages"][2]], "rejected": [r["messages"][2]]}
        for r in rows[:3]
    ]
    tuner = ft.Tuner("hf", model=tiny_base)
    with pytest.raises(ft.UnsupportedFeature, match="method='dpo'"):
        tuner.fit(ft.Dataset.from_records(pairs), skip_validation=True)
    with pytest.raises(ft.InvalidRequestError, match="its options are accelerate_config") as caught:
        tuner.fit(ft.Dataset.from_records(rows[:20]), options={"packed": True})
    assert caught.value.param == "packed"
    with pytest.raises(ft.InvalidRequestError) as caught:
        tuner.fit(ft.Dataset.from_records(rows[:20]), options={"max_lenght": 64})
    assert str(caught.value).startswith(
        "[hf] the hf backend has no option 'max_lenght' (did you mean 'max_length'?)"
    )
    with pytest.raises(ft.InvalidRequestError) as caught:
        tuner.fit(ft.Dataset.from_records(rows[:20]), options={"device": "tpu"})
    assert str(caught.value).startswith(
        "[hf] device: not 'tpu' (is auto, cpu, cuda or cuda:N, one GPU by torch's index)"
    )
    with pytest.raises(ft.InvalidRequestError, match="launcher"):
        tuner.fit(ft.Dataset.from_records(rows[:20]), options={"num_processes": 2})
    with pytest.raises(ft.InvalidRequestError) as caught:  # was 1: every example cut to a token
        tuner.fit(ft.Dataset.from_records(rows[:20]), options={"max_length": True})
    assert str(caught.value).startswith("[hf] max_length: not True (is a number, not a boolean)")
    packed = ft.Tuner("hf", model=tiny_base, packing=True, jobs_dir=tmp_path / "packed")
    for attempt in (packed.estimate, functools.partial(packed.fit, method="dpo")):
        with pytest.raises(
            ft.InvalidRequestError, match="DPO trains each preference pair"
        ) as caught:
            attempt(ft.Dataset.from_records(pairs * 4))  # TRL's DPO took it and packed nothing
        assert caught.value.param == "packing"
    assert not (tmp_path / "packed").exists()  # nothing uploaded
    assert packed.estimate(ft.Dataset.from_records(pairs * 4), options={"packing": False})


def test_lora_target_modules_that_name_no_layer_are_refused_before_the_job(
    tiny_base: str, rows: list[dict[str, Any]], tmp_path: Path
) -> None:
    """PEFT failed the job once the worker had loaded the model where no target named a
    layer, and trained the others alone where one was misspelt ("v_prj")."""
    tuner = ft.Tuner(HFBackend(jobs_dir=tmp_path), model=tiny_base, registry=False)
    data = ft.Dataset.from_records(rows[:20])
    for targets in (["q_proj", "v_prj"], ["attention"]):
        lora = ft.LoRA(target_modules=targets)
        with pytest.raises(ft.InvalidRequestError) as caught:
            tuner.fit(data, hyperparameters=ft.Hyperparameters(lora=lora))
        assert caught.value.param == "hyperparameters.lora.target_modules"
        assert f"lora.target_modules: {targets[-1]!r} names no layer of {tiny_base}" in str(
            caught.value
        )
    peft_args = {"peft_args": {"target_modules": ["q_prj"]}}  # PEFT's own setting, the same
    with pytest.raises(ft.InvalidRequestError) as caught:
        tuner.fit(data, options=peft_args)
    assert caught.value.param == "options.peft_args.target_modules"
    assert not list(tmp_path.glob("hfjob-*"))  # no job began
    with pytest.raises(ft.InvalidRequestError) as caught:
        tuner.fit(data, hyperparameters=ft.Hyperparameters(lora=ft.LoRA(target_modules=["v_prj"])))
    assert "(did you mean 'v_proj'?); its linear layers are down_proj, gate_proj, k_proj, " in (
        str(caught.value)
    )


def test_a_fit_rerun_with_other_tuner_options_starts_its_own_job(
    tiny_base: str, rows: list[dict[str, Any]], tmp_path: Path
) -> None:
    """The options a Tuner is built with are part of what a fit trains with, so a re-run
    with another ``max_length`` is not handed the job trained with the first."""
    data = ft.Dataset.from_records(rows[:16])

    def fit(**options: Any) -> ft.JobHandle:
        backend = HFBackend(jobs_dir=tmp_path / "jobs", max_steps=1, **options)
        job = ft.Tuner(backend, model=tiny_base, registry=False).fit(data)
        job.wait(poll_interval=0.3, timeout=120)
        return job

    short = fit(max_length=64)
    longer = fit(max_length=128)
    assert longer.id != short.id
    configs = [
        json.loads(Path(j.job.raw["job_dir"], "config.json").read_text()) for j in (short, longer)
    ]
    assert [config["options"]["max_length"] for config in configs] == [64, 128]
    assert fit(max_length=64).id == short.id  # the same fit again: re-attached
    assert fit(max_length=128, save_total_limit=2).id == longer.id  # the default, said


def test_trainer_and_peft_args_are_json_as_the_job_config_is() -> None:
    """The job's config.json carries them to the worker: a NumPy number stopped the fit with
    pydantic's "Unable to serialize unknown type: numpy.float32"."""
    import numpy as np

    from finetune.backends.hf._config import parse_options

    options = parse_options({"trainer_args": {"weight_decay": np.float32(0.5)}})
    assert options.trainer_args == {"weight_decay": 0.5}
    assert type(options.trainer_args["weight_decay"]) is float
    with pytest.raises(ft.InvalidRequestError, match=r"peft_args\['layers'\] is set \{1\}"):
        parse_options({"peft_args": {"layers": {1}}})


def test_validate_reports_examples_longer_than_max_length(
    tiny_base: str, rows: list[dict[str, Any]]
) -> None:
    data = ft.Dataset.from_records(rows[:30])
    assert ft.Tuner("hf", model=tiny_base).validate(data).counts.get("would_truncate", 0) == 0
    short = ft.Tuner("hf", model=tiny_base, max_length=45).validate(data)
    assert short.ok and short.counts["would_truncate"] == 30
    assert 0 < short.counts["no_trainable_tokens"] < 30  # some replies cut off entirely: skipped
    assert short.stats["context_limit"] == 45
    as_the_fit = ft.Tuner("hf", model=tiny_base).validate(data, options={"max_length": 45})
    assert as_the_fit.counts["would_truncate"] == 30  # the checks fit(options=...) makes

    # cut to nothing: a job failed in TRL with num_samples=0, after validation had passed
    tuner = ft.Tuner("hf", model=tiny_base, max_length=4)
    none_left = tuner.validate(data, ft.Dataset.from_records(rows[30:32], name="held"))
    assert none_left.counts["no_trainable_tokens"] == 32
    assert [f.location for f in none_left.kept["too_few_examples"]] == ["records", "held"]
    assert "none is left to train on; raise max_length" in str(
        none_left.kept["too_few_examples"][0]
    )
    with pytest.raises(ft.ValidationFailed, match="none is left to train on"):
        tuner.fit(data)


def test_packing_past_the_models_context_is_refused_before_anything_is_written(
    tiny_base: str, tmp_path: Path
) -> None:
    """Packing fills every row to ``max_length``: above the context of a model of learned
    positions (GPT-2's), the job failed mid-training with "IndexError: index out of range in
    self", after validation and the estimate had passed every short example."""
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    tokenizer = AutoTokenizer.from_pretrained(tiny_base)
    model = tmp_path / "gpt2-context-64"
    settings = {"n_positions": 64, "n_embd": 32, "n_layer": 1, "n_head": 2}
    GPT2LMHeadModel(GPT2Config(vocab_size=len(tokenizer), **settings)).save_pretrained(model)
    tokenizer.save_pretrained(model)
    data = ft.Dataset.from_records([chat(i) for i in range(12)])
    jobs = tmp_path / "jobs"
    tuner = ft.Tuner("hf", model=str(model), jobs_dir=jobs, packing=True, max_length=128)
    assert tuner.validate(data).ok  # each example is short: packing makes the rows long
    said = f"packing=True fills rows of max_length=128 tokens, over the context of {model} (64"
    packed = {"packing": True, "max_length": 128}
    plain = ft.Tuner("hf", model=str(model), jobs_dir=jobs)
    for attempt in (tuner.estimate, tuner.fit, functools.partial(plain.validate, options=packed)):
        with pytest.raises(ft.InvalidRequestError, match=re.escape(said)) as caught:
            attempt(data)
        assert caught.value.param == "max_length"
    assert not jobs.exists()  # no training file, no job folder
    assert "set max_length=64 or lower, or leave packing off" in str(caught.value)
    job = tuner.fit(data, options={"max_length": 64}, hyperparameters=ft.Hyperparameters(epochs=1))
    assert job.wait(timeout=240).status == ft.JobStatus.SUCCEEDED  # as the error advises


def test_a_chat_template_that_closes_no_turn_is_said_to_teach_no_stop(
    tiny_base: str, rows: list[dict[str, Any]]
) -> None:
    """A plain ``role: text`` template ends a turn with a newline: the model never sees an
    end token to learn, and its answers run on to max_new_tokens; validation said nothing."""
    plain = (
        "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
        "{% if add_generation_prompt %}assistant: {% endif %}"
    )
    data = ft.Dataset.from_records(rows[:12])
    report = ft.Tuner("hf", model=tiny_base, chat_template=plain).validate(data)
    assert report.ok and report.counts == {"no_end_of_turn": 12}
    (first, *_) = report.kept["no_end_of_turn"]
    assert (first.line, first.field) == (1, "messages[2]")  # after the system prompt and the ask
    assert first.message.startswith("the chat template ends this assistant turn with no end-")
    assert "this tokenizer's eos_token is '<|end|>'" in first.message
    closed = plain.replace("\n{% endfor %}", "{{ eos_token }}\n{% endfor %}")
    assert ft.Tuner("hf", model=tiny_base, chat_template=closed).validate(data).counts == {}
    assert ft.Tuner("hf", model=tiny_base).validate(data).counts == {}


def _with_its_own_config_code(base: str, target: Path, context: int) -> str:
    """A copy of ``base`` whose config class is code in its folder (``auto_map``), as many
    Hub models ship: transformers reads it only with ``trust_remote_code=True``."""
    shutil.copytree(base, target)
    config = json.loads((target / "config.json").read_text())
    config.update(
        model_type="finetune_remote",
        max_position_embeddings=context,
        auto_map={
            "AutoConfig": "configuration_remote.RemoteConfig",
            "AutoModelForCausalLM": "modeling_remote.RemoteForCausalLM",
        },
    )
    (target / "config.json").write_text(json.dumps(config))
    (target / "configuration_remote.py").write_text(
        "from transformers import LlamaConfig\n\n\n"
        "class RemoteConfig(LlamaConfig):\n    model_type = 'finetune_remote'\n"
    )
    (target / "modeling_remote.py").write_text(
        "from transformers import LlamaForCausalLM\n\n"
        "from .configuration_remote import RemoteConfig\n\n\n"
        "class RemoteForCausalLM(LlamaForCausalLM):\n    config_class = RemoteConfig\n"
    )
    return str(target)


def test_a_model_that_ships_its_own_code_is_read_trained_and_asked_when_trusted(
    tiny_base: str, rows: list[dict[str, Any]], tmp_path: Path
) -> None:
    """Its context was read with the backend's ``trust_remote_code`` only: with the fit's,
    reading it failed quietly and no example was checked against it. Untrusted, it started
    a job whose worker failed. Trusted, its LoRA adapter could not be asked or exported
    merged, and a tokenizer of its own code failed the worker's merge."""
    model = _with_its_own_config_code(tiny_base, tmp_path / "remote", context=48)
    data = ft.Dataset.from_records(rows[:30])
    trusted = {"trust_remote_code": True}
    counter = HFBackend(jobs_dir=tmp_path / "jobs").token_counter(model)
    over = sum(counter.count_example(row) > 48 for row in rows[:30])
    assert 0 < over < 30

    for report in (
        ft.Tuner("hf", model=model).validate(data, options=trusted),
        ft.Tuner("hf", model=model, **trusted).validate(data),
    ):
        assert report.counts["too_many_tokens"] == over
        said = report.kept["too_many_tokens"][0].message
        assert "over the model's context of 48, and max_length=1024 would train all of" in said
        assert "set max_length=48 or lower to cut it at the context" in said
    fits = ft.Tuner("hf", model=model, max_length=48).validate(data, options=trusted)
    assert "too_many_tokens" not in fits.counts and fits.counts["would_truncate"] == over
    with pytest.raises(ft.InvalidRequestError, match="ships its own code"):
        ft.Tuner("hf", model=model).validate(data)  # it passed, reading no context

    # refused before a job starts (the worker failed on loading it), trained when trusted
    tuner = ft.Tuner(HFBackend(jobs_dir=tmp_path / "jobs", max_length=48), model=model)
    with pytest.raises(ft.InvalidRequestError, match="ships its own code") as refused:
        tuner.fit(data)
    assert refused.value.param == "trust_remote_code" and tuner.jobs() == []
    job = tuner.fit(data, hyperparameters={"epochs": 1}, options=trusted)
    assert job.wait(poll_interval=0.3, timeout=200).status is ft.JobStatus.SUCCEEDED
    # its adapter, trained on further: no context was read (an adapter folder has no config)
    # and, untrusted, a job started whose worker failed on loading the base
    further = ft.Tuner(HFBackend(jobs_dir=tmp_path / "further"), model=job.model.name)
    assert further.validate(data, options=trusted).counts["too_many_tokens"] == over
    with pytest.raises(ft.InvalidRequestError, match=r"a LoRA adapter of .*ships its own code"):
        further.fit(data)
    assert [record.job_id for record in further.jobs()] == [job.id]  # no second job
    whole = Path(shutil.copytree(tiny_base, tmp_path / "whole"))  # trained as a whole model
    (whole / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": model}))
    assert "too_many_tokens" not in ft.Tuner("hf", model=str(whole)).validate(data).counts
    question = rows[0]["messages"][:2]
    asked = HFPredictor(job.model.name, max_new_tokens=2)  # with the flag its job recorded
    assert isinstance(asked.predict(question), str)  # its adapter over the base
    untrusting = HFPredictor(job.model.name, max_new_tokens=2, trust_remote_code=False)
    with pytest.raises(
        ft.InvalidRequestError, match=r"HFPredictor\(\.\.\., trust_remote_code"
    ) as no:
        untrusting.predict(question)
    assert f"(a LoRA adapter of {model!r}) ships its own code" in str(no.value)
    few, exact = ft.Dataset.from_records(rows[:2]), ft.evaluation.metrics.exact_match
    short = {"max_new_tokens": 2}  # its job's flag, unless the candidate's options say otherwise
    said = ft.evaluate(
        few, {"tuned": job.model}, exact, predictor_options={"tuned": short}, cache=False
    )
    assert len(said.predictions("tuned")) == 2
    unsure = {"tuned": {**short, "trust_remote_code": False}}
    with pytest.raises(ft.InvalidRequestError, match="ships its own code"):
        ft.evaluate(few, {"tuned": job.model}, exact, predictor_options=unsure, cache=False)
    merged = job.model.export(tmp_path / "merged", format="merged").path  # it lacked the flag
    assert (merged / "modeling_remote.py").is_file()
    assert isinstance(HFPredictor(str(merged), trust_remote_code=True).predict(question), str)
    lone = shutil.copytree(job.model.name, tmp_path / "lone")
    outside = ft.ModelRef(backend="hf", name=str(lone))
    with pytest.raises(ExportError, match="no local job recorded that you allowed it"):
        outside.export(tmp_path / "lone-merged", format="merged")

    # a tokenizer of its own code was "not a model folder or .gguf file here"
    settings = Path(model) / "tokenizer_config.json"
    tokenizer = json.loads(settings.read_text())
    tokenizer.update(
        tokenizer_class="RemoteTokenizer",
        auto_map={"AutoTokenizer": [None, "tokenization_remote.RemoteTokenizer"]},
    )
    settings.write_text(json.dumps(tokenizer))
    (Path(model) / "tokenization_remote.py").write_text(
        "from transformers import PreTrainedTokenizerFast\n\n\n"
        "class RemoteTokenizer(PreTrainedTokenizerFast):\n    pass\n"
    )
    with pytest.raises(ft.InvalidRequestError, match="ships its own code"):
        ft.Tuner("hf", model=model).validate(data)
    trusting = ft.Tuner("hf", model=model).validate(data, options=trusted)
    assert trusting.counts["too_many_tokens"] == over
    merging = tuner.fit(data, hyperparameters={"epochs": 1}, options={**trusted, "merge": True})
    done = merging.wait(poll_interval=0.3, timeout=200)  # its worker merged with the flag
    assert done.status is ft.JobStatus.SUCCEEDED, done.error
    assert (Path(done.raw["job_dir"]) / "merged" / "tokenization_remote.py").is_file()


def test_a_hub_id_is_never_read_as_a_folder_of_the_job_it_is_asked_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``org/name`` asked from inside a job's folder was read as that job's model: its
    ``trust_remote_code`` then ran another model's own code unasked (``HFPredictor``)."""
    from finetune.backends.hf._jobdir import job_config_of, trusted_by_its_job

    job = JobDir(tmp_path / "hfjob-trusting")
    (job.path / "model").mkdir(parents=True)
    job.write_config({"base_model": "org/remote", "options": {"trust_remote_code": True}})
    job.update_status(status="succeeded")
    monkeypatch.chdir(job.path)
    assert trusted_by_its_job(job.path / "model") and trusted_by_its_job("model")
    assert job_config_of("Qwen/Qwen3-8B") is None
    assert not trusted_by_its_job("Qwen/Qwen3-8B")


@pytest.mark.parametrize("field", ["api_key", "apiKey", "WANDB_API_KEY"])
def test_integration_keys_are_never_written_to_the_job_folder(
    field: str, tiny_base: str, rows: list[dict[str, Any]]
) -> None:
    """A key named ``apiKey`` (Fireworks' spelling) or ``WANDB_API_KEY`` was written to the
    job's ``config.json``: only ``api_key`` was looked for, as it is written."""
    secret = "wandb-secret-key-0123456789abcdef0123456789"
    tuner = ft.Tuner("hf", model=tiny_base)
    job = _long_job(tuner, rows)
    integration = {"type": "wandb", "wandb": {"project": "p", field: secret}}
    keyed = tuner.fit(ft.Dataset.from_records(rows[:40]), integrations=[integration])
    for handle in (keyed, job):
        handle.cancel()
    folder = Path(keyed.job.raw["job_dir"])
    saved = (folder / "config.json").read_text()
    assert secret not in saved and '"project": "p"' in saved
    assert all(secret not in f.read_text(errors="ignore") for f in folder.glob("*") if f.is_file())


def test_a_hub_token_reaches_the_worker_in_its_environment_and_no_file(
    tiny_base: str, rows: list[dict[str, Any]]
) -> None:
    """``trainer_args={"hub_token": ...}`` (TRL's way to push to the Hub) was written to the
    job's ``config.json`` and, by TRL, to the ``training_args.bin`` beside the model and each
    checkpoint: folders users share. The worker now gets it as ``HF_TOKEN``."""
    token = "hf_" + "t0k3n" * 7
    tuner = ft.Tuner("hf", model=tiny_base)
    running = _long_job(tuner, rows, trainer_args={"hub_token": token})
    worker = json.loads(Path(running.job.raw["job_dir"], "worker.json").read_text())["pid"]
    environ = Path(f"/proc/{worker}/environ")  # Linux's view of another process's environment
    seen = environ.read_bytes().split(b"\0") if environ.exists() else None
    running.cancel()
    assert seen is None or b"HF_TOKEN=" + token.encode() in seen
    done = tuner.fit(
        ft.Dataset.from_records(rows[:40]),
        hyperparameters=ft.Hyperparameters(epochs=1, batch_size=4),
        options={"max_length": 96, "save_steps": 5, "trainer_args": {"hub_token": token}},
    ).wait(timeout=300)
    files = [f for f in Path(done.raw["job_dir"]).rglob("*") if f.is_file()]
    assert any(f.name == "training_args.bin" for f in files)
    assert all(token.encode() not in f.read_bytes() for f in files)
    with pytest.raises(ft.InvalidRequestError, match="is a credential"):
        tuner.fit(
            ft.Dataset.from_records(rows[:40]),
            hyperparameters=ft.Hyperparameters(extra={"hub_token": token}),
        )


def test_a_job_under_another_folder_is_found_by_its_folder_or_the_env(
    tuned_tiny: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from finetune.cli import main

    folder = Path(tuned_tiny).parent  # <jobs dir>/<job id>/model
    monkeypatch.setenv("FINETUNE_HF_JOBS_DIR", str(folder.parent / "elsewhere"))
    assert main(["status", folder.name, "--backend", "hf"]) != 0
    said = capsys.readouterr().err
    assert "give the job's folder as its id" in said and "$FINETUNE_HF_JOBS_DIR" in said
    for named in ([], ["--backend", "hf"]):  # a folder is a local job's: no --backend needed
        assert main(["status", str(folder), *named]) == 0
        assert json.loads(capsys.readouterr().out)["status"] == "succeeded"
    assert main(["events", str(folder)]) == 0
    assert "successfully completed; model saved to" in capsys.readouterr().out
    handle = ft.Tuner("hf").job(str(folder))  # its later calls name it by its id
    assert handle.id == folder.name and handle.wait(timeout=5).status is ft.JobStatus.SUCCEEDED
    assert handle.events() and handle.metrics() and handle.checkpoints() is not None
    monkeypatch.setenv("FINETUNE_HF_JOBS_DIR", str(folder.parent))
    assert main(["status", folder.name, "--backend", "hf"]) == 0


def test_finetune_jobs_reads_a_local_job_not_ended_again_from_its_folder(
    tuned_tiny: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A job started without ``--wait`` stayed ``queued`` in ``finetune jobs`` long after it
    had ended: the registry holds what the job was when last seen, and nothing looked again."""
    from finetune.cli import main

    folder = Path(tuned_tiny).parent
    its_own = HFBackend(jobs_dir=folder.parent)
    seen = ft.Job(id=folder.name, backend="hf", base_model="b", status=ft.JobStatus.QUEUED)
    registry = ft.JobRegistry()
    registry.record(seen, endpoint=its_own.identity)
    gone = seen.model_copy(update={"id": "hfjob-20260101-000000-00000000"})
    registry.record(gone, endpoint=f"hf|{folder.parent.parent / 'deleted'}")
    assert main(["jobs"]) == 0
    out, err = capsys.readouterr()
    listed = {line.split()[1]: line.split()[2] for line in out.splitlines()}
    assert listed == {folder.name: "succeeded", gone.id: "queued"}
    assert f"-> {folder / 'model'}" in out
    assert "warning: 1 hf job not read again: its jobs folder " in err
    assert "1 job not ended shown as last seen" in err  # the one whose folder is gone
    assert "--refresh" not in err  # a local job: no provider to ask
    assert registry.get("hf", folder.name).status == "succeeded"  # the registry keeps it
    registry.record(seen, endpoint=its_own.identity)  # and a Tuner's jobs() reads it again
    listed = {record.job_id: record.status for record in ft.Tuner(its_own).jobs()}
    assert listed == {folder.name: "succeeded", gone.id: "queued"}
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))  # the default folder's: "hf"
    (tmp_path / "data" / "finetune").mkdir(parents=True)
    (tmp_path / "data" / "finetune" / "hf-jobs").symlink_to(folder.parent)
    registry.record(seen, endpoint="hf")
    assert main(["jobs", "--backend", "hf", "--limit", "1"]) == 0
    assert capsys.readouterr().out.split()[1:3] == [folder.name, "succeeded"]


def test_a_job_in_its_own_jobs_folder_is_found_through_the_registry(
    tuned_tiny: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The demo trains in a jobs folder of its own: ``finetune jobs`` listed its job, but
    ``finetune status ID`` and ``finetune export ID`` looked in the default folder only, and
    a fit of the same data in another folder dropped the job's record as stale."""
    from finetune.cli import main

    folder = Path(tuned_tiny).parent
    its_own = HFBackend(jobs_dir=folder.parent)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert HFBackend(jobs_dir=tmp_path / "data" / "finetune" / "hf-jobs").identity == "hf"
    assert its_own.identity == f"hf|{folder.parent.resolve()}" != HFBackend().identity
    ft.Tuner(its_own).job(folder.name)  # recorded, as the fit that made it records it
    by_folder = ft.Tuner("hf").job(str(folder))  # reached by its location: no second record
    assert by_folder.refresh().status is ft.JobStatus.SUCCEEDED
    assert ft.JobRegistry().endpoints_of("hf", folder.name) == [its_own.identity]
    for command in (
        ["status", folder.name],
        ["metrics", folder.name],
        ["export", folder.name, "--format", "merged", "--output", str(tmp_path / "merged")],
    ):
        assert main(command) == 0, capsys.readouterr().err
    assert (tmp_path / "merged" / "config.json").is_file()
    assert main(["status", folder.name, "--jobs-dir", str(tmp_path)]) == 2
    assert f"no local job {folder.name!r} under {tmp_path}" in capsys.readouterr().err
    assert main(["status", folder.name, "--backend", "fake", "--jobs-dir", str(tmp_path)]) == 2
    assert "--jobs-dir is where hf jobs live, not fake jobs" in capsys.readouterr().err
    with pytest.raises(ft.JobNotFound) as raised:
        ft.Tuner("hf").job(folder.name)
    said = f"this machine's job registry has it from the jobs folder {folder.parent.resolve()} "
    assert said in str(raised.value)
    made = f"Tuner('hf', jobs_dir={str(folder.parent.resolve())!r})"
    assert str(raised.value).endswith(f": re-attach with {made}.job({folder.name!r})")
    again = ft.Tuner("hf", jobs_dir=folder.parent.resolve()).job(folder.name)  # as it says
    assert again.job.status is ft.JobStatus.SUCCEEDED


def test_a_removed_job_folder_is_a_stale_hint(tiny_base: str, rows: list[dict[str, Any]]) -> None:
    import shutil

    tuner = ft.Tuner("hf", model=tiny_base)
    first = _long_job(tuner, rows)
    first.cancel()
    shutil.rmtree(first.job.raw["job_dir"])
    again = _long_job(tuner, rows)  # the registry still remembers the first job's id
    assert again.id != first.id
    again.cancel()


def test_a_save_that_fails_on_disk_fails_the_job_clearly(
    tiny_base: str, rows: list[dict[str, Any]], tmp_path: Path
) -> None:
    """A worker whose files may not grow past 64 KB (RLIMIT_FSIZE), as on a full disk: saving
    the first checkpoint fails with an OSError, and the job ends failed, saying so."""
    import sys

    wrapper = tmp_path / "python-small-disk"
    wrapper.write_text(
        f"#!{sys.executable}\n"
        "import resource, runpy, signal, sys\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        "resource.setrlimit(resource.RLIMIT_FSIZE, (65536, 65536))\n"
        "module = sys.argv[2]  # called as: python -m MODULE ARGS...\n"
        "sys.argv = [module, *sys.argv[3:]]\n"
        "runpy.run_module(module, run_name='__main__', alter_sys=True)\n"
    )
    wrapper.chmod(0o755)
    tuner = ft.Tuner(HFBackend(python=str(wrapper)), model=tiny_base)
    job = tuner.fit(
        ft.Dataset.from_records(rows[:32]),
        hyperparameters=ft.Hyperparameters(epochs=1, batch_size=16),
        options={"max_length": 64},
    )
    with pytest.raises(ft.JobFailed) as caught:
        job.wait(poll_interval=0.3, timeout=240)
    error = caught.value.job.error
    assert error is not None and "File too large" in error.message, tuner.backend.worker_log(job.id)
    assert "disk" in error.message


def test_a_setting_trl_or_peft_does_not_take_is_refused_before_the_job_starts(
    tiny_base: str, rows: list[dict[str, Any]], tmp_path: Path
) -> None:
    """Passed through to TRL's SFTConfig, a misspelt name failed the job in its worker."""
    tuner = ft.Tuner("hf", model=tiny_base)
    data = ft.Dataset.from_records(rows)
    misspelt = ft.Hyperparameters(extra={"weight_decy": 0.1})
    says = r"hyperparameters\.extra: TRL's SFTConfig takes no 'weight_decy' \(did you mean"
    with pytest.raises(ft.InvalidRequestError, match=says) as refused:
        tuner.fit(data, hyperparameters=misspelt)
    assert refused.value.param == "hyperparameters.extra.weight_decy"
    with pytest.raises(ft.InvalidRequestError, match=r"options\.trainer_args: TRL's SFTConfig"):
        tuner.fit(data, options={"trainer_args": {"no_such_setting": 1}})
    with pytest.raises(ft.InvalidRequestError, match=r"PEFT's LoraConfig takes no 'use_dora_'"):
        tuner.fit(data, options={"peft_args": {"use_dora_": True}})
    # what the job sets from its own settings trained otherwise than it said (5 epochs, not 3)
    twice = ft.Hyperparameters(epochs=3, extra={"num_train_epochs": 5})
    with pytest.raises(ft.InvalidRequestError) as refused:
        tuner.fit(data, hyperparameters=twice)
    assert str(refused.value).startswith(
        "[hf] hyperparameters.extra: 'num_train_epochs' is set by the job from "
        "ft.Hyperparameters(epochs=...); give it there"
    )
    with pytest.raises(ft.InvalidRequestError, match=r"'max_length' is set by the job from opt"):
        tuner.fit(data, options={"trainer_args": {"max_length": 64}})
    assert not list((tmp_path / "hf-jobs").glob("hfjob-*"))  # no job was made


def test_a_lora_adapter_as_the_base_model_trains_further_on_its_own_base(
    tiny_base: str, rows: list[dict[str, Any]]
) -> None:
    """Not a second adapter stacked on it and saved alone, which loads without the first."""
    from safetensors import safe_open

    data = ft.Dataset.from_records(rows[:16])
    first = ft.Tuner("hf", model=tiny_base).fit(data, hyperparameters={"epochs": 1, "seed": 1})
    assert first.wait(poll_interval=0.2, timeout=120).status is ft.JobStatus.SUCCEEDED
    adapter = first.model.name
    tuner = ft.Tuner("hf", model=adapter)
    more = ft.Dataset.from_records(rows[16:32])
    pairs = ft.Dataset.from_records(
        [{"prompt": f"q{i}", "chosen": "yes", "rejected": "no"} for i in range(8)]
    )
    for given, refused, says in (
        (more, {"hyperparameters": {"lora": {"r": 4}}}, r"adapter \(r=16, alpha=32\), whose"),
        (more, {"options": {"full_finetune": True}}, "full_finetune=True needs a whole model"),
        (pairs, {"method": "dpo"}, r"method='dpo' needs a whole model: export the adapter"),
    ):
        with pytest.raises(ft.InvalidRequestError, match=says):
            tuner.fit(given, **refused)
    second = tuner.fit(more, hyperparameters={"epochs": 1, "seed": 7})  # another seed: fresh
    done = second.wait(poll_interval=0.2, timeout=120)  # weights would differ from the first's
    assert done.status is ft.JobStatus.SUCCEEDED
    own = done.hyperparameters.lora  # the adapter's own settings: LoRA's defaults here
    assert own is not None and (own.r, own.alpha, own.dropout) == (16, 32, 0.05)
    saved = json.loads(Path(done.fine_tuned_model, "adapter_config.json").read_text())
    assert saved["base_model_name_or_path"] == str(Path(tiny_base).resolve())
    key = "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight"
    with (
        safe_open(f"{adapter}/adapter_model.safetensors", "pt") as before,
        safe_open(f"{done.fine_tuned_model}/adapter_model.safetensors", "pt") as after,
    ):
        start, end = before.get_tensor(key), after.get_tensor(key)
    assert 0 < float((end - start).abs().max()) < 0.01 * float(start.abs().max())
    shutil.rmtree(adapter)  # the job's record keeps what it trained, wherever its base went
    assert tuner.job(second.id).job.hyperparameters.lora == own


# The tiny model's chat template, with tools: their names in a system turn, each call as
# <tool_call>{json}</tool_call> in the assistant turn (Qwen 2.5's form), a result as a tool turn
_TOOLS_TEMPLATE = (
    "{% if tools %}{{ '<|system|>Tools:' }}{% for t in tools %}{{ ' ' + t['function']['name'] }}"
    "{% endfor %}{{ '<|end|>' }}{% endif %}"
    "{% for message in messages %}{{ '<|' + message['role'] + '|>' }}"
    "{% if message['role'] == 'assistant' %}{% generation %}{{ message['content'] }}"
    "{% for c in message.get('tool_calls', []) %}{{ '<tool_call>{\"name\": \"' + "
    "c['function']['name'] + '\", \"arguments\": ' + (c['function']['arguments'] | tojson) + "
    "'}</tool_call>' }}{% endfor %}{{ '<|end|>' }}{% endgeneration %}"
    "{% else %}{{ message['content'] + '<|end|>' }}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}"
)
# transformers' parser of what that template's model writes: text, and its tool calls
_RESPONSE_TEMPLATE = {
    "start_anchor": "<|assistant|>",
    "fields": {
        "content": {"content": "text"},
        "tool_calls": {
            "open": "<tool_call>",
            "close": "</tool_call>",
            "content": "json",
            "repeats": True,
            "transform": {
                "type": "function",
                "function": {"name": "{content.name}", "arguments": "{content.arguments}"},
            },
        },
    },
}


def test_a_local_model_is_evaluated_on_its_tool_calls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A tiny model fine-tuned to call a tool, through Tuner("hf"), is offered the tool by its
    chat template and its calls are read by its tokenizer's response_template: scored as
    calls. A model whose tokenizer has no response_template is refused, saying why. Each
    model's tokenizer is loaded once (it was loaded again with the model)."""
    from transformers import AutoTokenizer

    from finetune.backends.hf import _inputs, _models
    from finetune.demo import build_tiny_base
    from finetune.evaluation import metrics as m

    from .conftest import weather_data

    data = weather_data(6)
    texts = [message.text for example in data for message in example.messages]
    calls = [
        c for example in data for message in example.messages for c in message.tool_calls or []
    ]
    texts += [ft.evaluation.format_tool_calls([c]) for c in calls]
    plain = build_tiny_base(tmp_path / "plain", texts, hidden_size=64, pretrain_steps=80)
    base = shutil.copytree(plain, tmp_path / "base")
    tokenizer = AutoTokenizer.from_pretrained(base)
    tokenizer.chat_template = _TOOLS_TEMPLATE
    tokenizer.response_template = _RESPONSE_TEMPLATE
    tokenizer.save_pretrained(base)
    tuner = ft.Tuner(HFBackend(jobs_dir=tmp_path / "jobs"), model=str(base), registry=False)
    job = tuner.fit(
        data,
        hyperparameters=ft.Hyperparameters(epochs=40, batch_size=4, learning_rate=3e-3),
        options={"max_length": 128, "full_finetune": True},
    )
    job.wait(poll_interval=0.3, timeout=240)
    untuned = ft.ModelRef(backend="hf", name=str(base))
    metrics = [m.tool_names_match, m.tool_calls_match]
    loads: list[str] = []
    load = _inputs.load_tokenizer
    monkeypatch.setattr(_inputs, "load_tokenizer", lambda *a: loads.append(a[2]) or load(*a))
    resolved: list[str] = []  # a .gguf file is hashed each time: once per model
    resolve = _models.resolve
    monkeypatch.setattr(_models, "resolve", lambda *a: resolved.append(a[0]) or resolve(*a))
    result = ft.evaluate(data, {"tuned": job.model, "base": untuned}, metrics, cache=False)
    assert sorted(loads) == sorted([str(base), job.model.name])
    assert sorted(resolved) == sorted(loads)
    called = result.predictions("tuned")[::2]  # the examples whose answer is a call
    assert all(p.startswith('get_weather({"city": "City') for p in called), called
    assert result.summary()["tuned"]["tool_names_match"].mean == 1.0
    assert result.scores("base", "tool_names_match")[::2] == [0.0] * 6  # it writes text
    with pytest.raises(ValueError, match=r"'plain' \(HFPredictor\) takes no tools: its tokenizer"):
        ft.evaluate(data, {"plain": ft.ModelRef(backend="hf", name=str(plain))}, metrics)

    # the tuned model saved without its parser: given one, its calls are read as calls
    bare = Path(shutil.copytree(job.model.name, tmp_path / "bare"))
    settings = json.loads((bare / "tokenizer_config.json").read_text())
    assert settings.pop("response_template") == _RESPONSE_TEMPLATE
    (bare / "tokenizer_config.json").write_text(json.dumps(settings))
    candidate = {"bare": ft.ModelRef(backend="hf", name=str(bare))}
    with pytest.raises(ValueError, match=r"predictor_options: \{'response_template'"):
        ft.evaluate(data, candidate, metrics, cache=False)
    given = {"bare": {"response_template": _RESPONSE_TEMPLATE}}
    parsed = ft.evaluate(data, candidate, metrics, predictor_options=given, cache=False)
    assert parsed.predictions("bare") == result.predictions("tuned")
    assert parsed.summary()["bare"]["tool_names_match"].mean == 1.0

    # a parser, but a template that never writes the tools: the model would not see them
    unwritten = _TOOLS_TEMPLATE.split("{% endif %}", 1)[1]
    blind = {"bare": {"response_template": _RESPONSE_TEMPLATE, "chat_template": unwritten}}
    with pytest.raises(ValueError, match="its chat template does not write tool definitions"):
        ft.evaluate(data, candidate, metrics, predictor_options=blind, cache=False)


def test_the_training_copy_of_a_private_file_stays_private(
    tmp_path: Path, rows: list[dict[str, Any]]
) -> None:
    """A local job keeps its data under ``jobs_dir/files``: a 0600 file's copy was 0644, for
    every user of a shared training machine to read."""
    source = tmp_path / "private.jsonl"
    source.write_text("".join(json.dumps(row) + "\n" for row in rows[:20]))
    source.chmod(0o600)
    backend = HFBackend(jobs_dir=tmp_path / "jobs")
    copy = Path(backend.upload(ft.Dataset.from_jsonl(source)).filename or "")
    assert copy.parent == tmp_path / "jobs" / "files"
    assert oct(copy.stat().st_mode & 0o777) == "0o600"


def test_building_the_tiny_base_draws_no_bar_in_a_log(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``build_tiny_base`` with stderr to a file wrote transformers' "Writing model shards"
    bar there, which the training and the export around it kept out of a log."""
    from finetune.demo import build_tiny_base

    build_tiny_base(tmp_path / "base", hidden_size=32, pretrain_steps=2)
    assert "Writing model shards" not in capsys.readouterr().err
    assert (tmp_path / "base" / "model.safetensors").is_file()
