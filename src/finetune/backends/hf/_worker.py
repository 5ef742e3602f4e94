"""The training process of a local job: ``python -m finetune.backends.hf._worker JOB_DIR``.

Started by the backend (directly, under torchrun, or under ``accelerate launch``); it reads
the job's ``config.json``, trains with TRL (+ PEFT), and reports through the job directory
only. Rank 0 writes; every rank trains.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import sys
import traceback
from pathlib import Path
from typing import Any

from finetune._words import counted
from finetune.backends.hf._config import (
    TrainingConfig,
    assistant_only,
    lora_arguments,
    lora_settings,
    trainer_arguments,
    wanted_quantization,
)
from finetune.backends.hf._jobdir import JobDir, now_iso
from finetune.dataset._atomic import readable_weights

_METRIC_NAMES = {
    "loss": "train_loss",
    "eval_loss": "valid_loss",
    "mean_token_accuracy": "train_accuracy",
    "eval_mean_token_accuracy": "valid_accuracy",
    "learning_rate": "learning_rate",
}


class _Stop:
    """Why training ends before its last step: SIGTERM (``requested``: it stops cleanly at the
    end of the current step), or weights that are no longer numbers (``diverged``: what the
    job's failure says)."""

    requested = False
    diverged: str | None = None

    def handle(self, signum: int, frame: Any) -> None:
        self.requested = True


def _text(content: Any) -> str:
    if isinstance(content, list):
        return "".join(part.get("text") or "" for part in content)
    return content or ""


def _messages(messages: list[dict[str, Any]]) -> list[dict[str, str]]:
    return [{"role": m["role"], "content": _text(m.get("content"))} for m in messages]


def _row(record: dict[str, Any], kind: str) -> dict[str, Any]:
    if kind == "chat":
        return {"messages": _messages(record["messages"])}
    if kind == "completion":
        return {"prompt": record["prompt"], "completion": record["completion"]}
    return {
        "prompt": _messages(record["prompt"]),
        "chosen": _messages(record["chosen"]),
        "rejected": _messages(record["rejected"]),
    }


def load_rows(path: str | None, kind: str) -> Any:
    """The training file as a ``datasets.Dataset`` in TRL's conversational shapes."""
    from datasets import Dataset

    if path is None:
        return None
    with open(path, encoding="utf-8") as handle:
        rows = [_row(json.loads(line), kind) for line in handle if line.strip()]
    return Dataset.from_list(rows)


def _early_stopping(config: TrainingConfig) -> list[Any]:
    """transformers' ``EarlyStoppingCallback``, where the options ask for one."""
    options = config.options
    if options.early_stopping_patience is None:
        return []
    from transformers import EarlyStoppingCallback

    return [
        EarlyStoppingCallback(
            early_stopping_patience=options.early_stopping_patience,
            early_stopping_threshold=options.early_stopping_threshold,
        )
    ]


def _stopped_early_note(state: Any) -> str | None:
    """What an event says of a run that early stopping ended before its last step."""
    if state.global_step >= state.max_steps or state.best_model_checkpoint is None:
        return None
    best = Path(state.best_model_checkpoint).name.removeprefix("checkpoint-")
    return (
        f"Stopped early at step {state.global_step} of {state.max_steps}: the validation loss "
        f"no longer improved; the model is the checkpoint of step {best} (validation loss "
        f"{state.best_metric:.4g})"
    )


def _callback(job: JobDir, stop: _Stop) -> Any:
    from transformers import TrainerCallback

    class JobCallback(TrainerCallback):  # type: ignore[misc]
        saved_step = -1
        skipped_said = False  # a lost loss whose step was skipped: said once, not every log

        def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            if state.is_world_process_zero:
                job.update_status(
                    step=state.global_step,
                    max_steps=state.max_steps,
                    run_started_at=now_iso(),  # a view times the steps of this run alone
                    run_first_step=state.global_step,
                )
                job.append_event(
                    f"Training started: {counted(state.max_steps, 'step')} on "
                    f"{counted(args.world_size, 'process')}{_steps_past_epochs(args, state)}",
                    world_size=args.world_size,
                    max_steps=state.max_steps,
                )

        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            if state.is_world_process_zero:
                job.update_status(step=state.global_step, max_steps=state.max_steps)
            stop.requested = _agreed(stop.requested or job.stop_reason() is not None)
            if stop.requested:
                control.should_save = True
                control.should_training_stop = True
            _log_where_it_counts(state, control, stop)

        def on_epoch_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            if stop.diverged is not None:  # the loop breaks for an epoch's end: no save there
                control.should_save = control.should_evaluate = False
            elif stop.requested:  # saved at the step it stopped: not again as the epoch's end
                control.should_save = control.should_save and self.saved_step < state.global_step
                if not float(state.epoch or 0).is_integer():  # an epoch cut short: no evaluation
                    control.should_evaluate = False
            _log_where_it_counts(state, control, stop)

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any) -> None:
            lost = _lost(logs)
            if lost is not None and stop.diverged is None:
                self.stop_if_diverged(args, state, control, lost, kw.get("model"))
            if not state.is_world_process_zero or not logs:
                return
            if "train_runtime" in logs:
                if not stop.requested and stop.diverged is None:  # else "Job cancelled/failed"
                    summary = {k: v for k, v in logs.items() if isinstance(v, (int, float))}
                    job.append_event(
                        f"Training finished in {logs['train_runtime']:.1f} s", data=summary
                    )
                return
            point: dict[str, Any] = {"step": state.global_step, "epoch": state.epoch}
            extra = {}
            for name, value in logs.items():
                if name in _METRIC_NAMES:
                    point[_METRIC_NAMES[name]] = value
                elif isinstance(value, (int, float)) and name != "epoch":
                    extra[name] = float(value)
            if any(k in point for k in ("train_loss", "valid_loss")):
                job.append_metric({**point, "extra": extra})
            job.update_status(step=state.global_step, max_steps=state.max_steps)

        def on_save(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            self.saved_step = state.global_step
            if state.is_world_process_zero:
                readable_weights(Path(args.output_dir) / f"checkpoint-{state.global_step}")
                job.append_event(f"Checkpoint saved at step {state.global_step}")

        def stop_if_diverged(
            self, args: Any, state: Any, control: Any, lost: tuple[str, float], model: Any
        ) -> None:
            """Fail the run whose weights a lost loss (or gradient norm) has spoiled; fp16's
            loss scaling skips a step whose gradients overflow, leaving the weights sound:
            training goes on, and a lost loss is said once."""
            what, value = lost
            if _weights_spoiled(model):
                stop.diverged = _diverged_message(args, state.global_step, what, value)
                control.should_training_stop = True
                control.should_save = control.should_evaluate = False
            elif what == "train loss" and state.is_world_process_zero and not self.skipped_said:
                self.skipped_said = True
                job.append_event(
                    f"The train loss was {value} in the steps up to {state.global_step}; the "
                    "weights are still numbers (the step whose gradients overflowed was "
                    "skipped): training goes on, and the metrics show each such loss",
                    level="warning",
                )

    return JobCallback()


def _lost(logs: Any) -> tuple[str, float] | None:
    """The logged train loss where it is NaN or infinite, else the gradient norm where it is
    (transformers' ``logging_nan_inf_filter``, given back, logs a lost loss as a number), as
    what it is and its value; ``None`` where both are numbers."""
    for name, what in (("loss", "train loss"), ("grad_norm", "gradient norm")):
        value = logs.get(name) if isinstance(logs, dict) else None
        if isinstance(value, (int, float)) and not math.isfinite(value):
            return what, float(value)
    return None


def _weights_spoiled(model: Any) -> bool:
    """Whether a trained weight is NaN or infinite, on any process of the job."""
    import torch

    spoiled = model is not None and any(
        not bool(torch.isfinite(getattr(weight, "ds_tensor", weight)).all())
        for weight in model.parameters()
        if weight.requires_grad
    )
    return _agreed(spoiled)


def _diverged_message(args: Any, step: int, what: str, value: float) -> str:
    clipping = "" if args.max_grad_norm else ", and keep gradient clipping on (max_grad_norm=1.0)"
    return (
        f"the {what} became {value} by step {step} and the weights are no longer numbers, so "
        f"no model was saved; fit again with a lower learning rate (this job's: "
        f"{args.learning_rate:g}){clipping}"
    )


def _steps_past_epochs(args: Any, state: Any) -> str:
    """What a ``max_steps`` past the epochs asked does (transformers trains that many steps,
    going round the data again), said when the run starts; else nothing."""
    asked = math.ceil(args.num_train_epochs)
    if args.max_steps <= 0 or state.num_train_epochs <= asked:
        return ""
    return (
        f"; max_steps={args.max_steps} sets the length: "
        f"{counted(state.num_train_epochs, 'epoch')} over the data, not the "
        f"{counted(asked, 'epoch')} asked"
    )


def _log_where_it_counts(state: Any, control: Any, stop: _Stop) -> None:
    """Log the metrics, between two ``logging_steps`` or not, at the last step, where a
    cancel or pause stops the run, and at every checkpoint or evaluation (the checkpoint's
    metrics are then its own step's)."""
    last = state.global_step >= state.max_steps
    if last or stop.requested or control.should_save or control.should_evaluate:
        control.should_log = True


def _agreed(stopping: bool) -> bool:
    """Whether any process asks to stop: every process must leave the loop at the same step,
    or the others wait for it in the next collective."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return stopping
    import torch

    flag = torch.tensor([1.0 if stopping else 0.0])
    if dist.get_backend() == "nccl":
        flag = flag.cuda()
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return bool(flag.item() > 0)


def _device(config: TrainingConfig) -> tuple[bool, bool]:
    """(CUDA, bf16 supported) for this job: ``device="cpu"`` forces the CPU."""
    import torch

    from finetune.backends.hf._config import cpu_computes_bf16

    cuda = torch.cuda.is_available() and config.options.device != "cpu"
    if not cuda and config.options.device.startswith("cuda"):  # checked at create: a resume
        raise RuntimeError(f"device={config.options.device!r}, and this worker sees no CUDA device")
    if cuda:
        return True, bool(torch.cuda.is_bf16_supported())
    return False, cpu_computes_bf16()


def _quantization(config: TrainingConfig, cuda: bool) -> Any:
    wanted = wanted_quantization(config)
    if wanted is None:
        return None
    if not cuda:
        raise RuntimeError(f"quantization={wanted!r} (QLoRA) needs a CUDA GPU and bitsandbytes")
    from transformers import BitsAndBytesConfig

    if wanted == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4")


def build_trainer(config: TrainingConfig, job: JobDir, stop: _Stop) -> Any:
    """The TRL trainer for this job (our lean SFTTrainer, or DPOTrainer)."""
    from transformers import AutoTokenizer

    from finetune.backends.hf._trainer import encoded_rows, load_model, sft_trainer_class

    cuda, bf16 = _device(config)
    remote = config.options.trust_remote_code
    tokenizer = AutoTokenizer.from_pretrained(config.base_model, trust_remote_code=remote)
    if config.options.chat_template is not None:  # saved with the model, which then has it
        tokenizer.chat_template = config.options.chat_template
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    arguments = with_current_names(
        trainer_arguments(
            config, output_dir=str(job.checkpoints_dir), cuda=cuda, bf16_supported=bf16
        )
    )
    model = load_model(
        config,
        cuda=cuda,
        bf16=arguments.get("bf16", False),
        quantization=_quantization(config, cuda),
    )
    attention = str(getattr(model.config, "_attn_implementation", "") or "")
    if arguments.get("packing") and attention.startswith("flash_attention"):
        arguments["packing_strategy"] = "bfd"
    peft_config = None
    lora = lora_settings(config)
    if lora is not None and not config.continues_adapter:  # else: the model has its adapter
        from peft import LoraConfig

        peft_config = LoraConfig(**lora_arguments(lora, config.options.peft_args))
    common = {
        "model": model,
        "processing_class": tokenizer,
        "peft_config": peft_config,
        "callbacks": [_callback(job, stop), *_early_stopping(config)],
    }
    if config.method == "dpo":
        from trl import DPOConfig, DPOTrainer

        train = load_rows(config.training_file, config.example_kind)
        held = load_rows(config.validation_file, config.example_kind)
        return DPOTrainer(
            args=DPOConfig(**arguments), train_dataset=train, eval_dataset=held, **common
        )
    from trl import SFTConfig

    def encode(path: str | None) -> Any:
        if path is None:
            return None
        return encoded_rows(
            tokenizer,
            path,
            config.example_kind,
            assistant_only=assistant_only(config),
            max_length=config.options.max_length,
        )

    trainer_class = sft_trainer_class()
    return trainer_class(
        args=SFTConfig(**arguments),
        train_dataset=encode(config.training_file),
        eval_dataset=encode(config.validation_file),
        **common,
    )


def with_current_names(arguments: dict[str, Any]) -> dict[str, Any]:
    """The trainer settings under this transformers' names: from 5.24 ``gradient_checkpointing``
    is a deprecated alias of ``activation_checkpointing`` (for SFT and DPO alike)."""
    from transformers import TrainingArguments

    renamed = dict(arguments)
    if "gradient_checkpointing" in renamed and "activation_checkpointing" in _fields(
        TrainingArguments
    ):
        renamed["activation_checkpointing"] = renamed.pop("gradient_checkpointing")
    return renamed


def _fields(config_class: Any) -> set[str]:
    import dataclasses

    return {field.name for field in dataclasses.fields(config_class)}


def _save(trainer: Any, config: TrainingConfig, job: JobDir) -> str:
    import shutil

    staging = job.path / ".model.tmp"
    trainer.save_model(str(staging))
    main = trainer.accelerator.is_main_process
    if main:
        trainer.processing_class.save_pretrained(str(staging))
        readable_weights(staging)
        shutil.rmtree(job.model_dir, ignore_errors=True)
        staging.rename(job.model_dir)
    result = job.model_dir
    if config.options.merge and lora_settings(config) is not None and main:
        from finetune.backends.hf._merge import merge_adapter

        remote = config.options.trust_remote_code
        result = merge_adapter(job.model_dir, job.merged_dir, trust_remote_code=remote)
    trainer.accelerator.wait_for_everyone()
    return str(result)


def _carry_on_from(trainer: Any, checkpoint: Path) -> int:
    """What a resumed run takes on from ``checkpoint`` that TRL and transformers start again,
    and the tokens trained up to it: TRL's count of them (its ``num_tokens``: the metric fell
    back, and the job's trained tokens counted the last run alone), and early stopping's count
    of evaluations that did not improve (a resumed run waited its whole patience again).
    transformers' own restore of callback states is left off: it also restores the control
    of the step the checkpoint was saved at, which a cancel or pause told to stop."""
    from transformers import EarlyStoppingCallback

    state = json.loads((checkpoint / "trainer_state.json").read_text())
    tokens = _token_count(state.get("log_history", [])) or 0
    if hasattr(trainer, "_total_train_tokens"):
        trainer._total_train_tokens = tokens
    saved = (state.get("stateful_callbacks") or {}).get("EarlyStoppingCallback") or {}
    saved = saved[0] if isinstance(saved, list) else saved  # one a callback, when several
    waited = (saved.get("attributes") or {}).get("early_stopping_patience_counter", 0)
    for callback in trainer.callback_handler.callbacks:
        if isinstance(callback, EarlyStoppingCallback):
            callback.early_stopping_patience_counter = waited
    return tokens


def _token_count(history: list[dict[str, Any]]) -> int | None:
    """The last count of tokens trained (TRL's ``num_tokens``) a log history holds."""
    for entry in reversed(history):
        if "num_tokens" in entry:
            return int(entry["num_tokens"])
    return None


def _rank(name: str) -> int:
    return int(os.environ.get(name, "0"))


def run(job: JobDir, resume: bool) -> int:
    """Train the job in ``job``; returns the process exit code.

    Global rank 0 owns the job directory (status, metrics, checkpoints, the model); on other
    machines the first process of each keeps that machine's status, saying where the model is.
    """
    stop = _Stop()
    with contextlib.suppress(ValueError):  # not the main thread (Ray Train): the job directory's
        signal.signal(signal.SIGTERM, stop.handle)  # stop request is polled at every step
    main, leader = _rank("RANK") == 0, _rank("LOCAL_RANK") == 0
    config = TrainingConfig.model_validate(job.read_config())
    if leader:
        job.update_status(
            status="running",
            started_at=job.read_status().get("started_at") or now_iso(),
            world_size=int(os.environ.get("WORLD_SIZE", "1")),
            main_node=main,
            error=None,
        )
    trainer = build_trainer(config, job, stop)
    if main and resume:
        for step in job.discard_incomplete_checkpoints():
            job.append_event(f"Discarded the checkpoint at step {step}: its save was cut short")
    checkpoints = job.checkpoints() if resume else []
    if checkpoints:
        step, folder = checkpoints[-1]
        tokens = _carry_on_from(trainer, folder)
        if main:
            job.append_event(
                f"Resuming from the checkpoint at step {step}", step=step, trained_tokens=tokens
            )
    trainer.train(resume_from_checkpoint=str(checkpoints[-1][1]) if checkpoints else None)
    if stop.diverged is not None:
        if leader:
            job.mark_failed("training_diverged", stop.diverged)
        return 1
    if stop.requested:
        return _stopped(job, trainer.state.global_step, leader)
    if main and (early := _stopped_early_note(trainer.state)):
        job.append_event(early)
        job.update_status(max_steps=trainer.state.global_step)  # a progress bar ends full there
    model_path = _save(trainer, config, job)
    if main:
        job.update_status(
            status="succeeded",
            finished_at=now_iso(),
            fine_tuned_model=model_path,
            trained_tokens=_token_count(trainer.state.log_history),
        )
        job.append_event(f"The job has successfully completed; model saved to {model_path}")
    elif leader:
        where = config.options.main_process_ip or "the machine of rank 0"
        job.update_status(status="succeeded", finished_at=now_iso(), fine_tuned_model=None)
        job.append_event(f"Training finished on this machine; the model is saved on {where}")
    return 0


def _stopped(job: JobDir, step: int, leader: bool) -> int:
    """Record a stop: paused or cancelled when asked, failed when stopped from outside."""
    reason = job.stop_reason()
    if not leader:
        return 0 if reason else 1
    if reason in ("pause", "cancel"):
        status = "paused" if reason == "pause" else "cancelled"
        job.update_status(status=status, finished_at=now_iso())
        job.append_event(f"Job {status} at step {step}")
        return 0
    job.mark_failed(
        "terminated",
        f"stopped from outside at step {step} (SIGTERM: a shutdown, a preemption, or another "
        "process or machine of this job going away); resume() on every machine continues "
        "from the last checkpoint",
    )
    return 1


def main(argv: list[str]) -> int:
    """Entry point: ``JOB_DIR [--resume]``."""
    job = JobDir(Path(argv[0]))
    try:
        return run(job, resume="--resume" in argv[1:])
    except BaseException as exc:
        traceback.print_exc()
        if _rank("LOCAL_RANK") == 0:
            _record_failure(job, exc)
        return 1


_PEER_GONE = ("connection closed by peer", "connection reset", "broken pipe", "timed out")


def _record_failure(job: JobDir, exc: BaseException) -> None:
    """Mark the job failed; on a full disk the backend notices the dead worker instead."""
    message = f"{type(exc).__name__}: {exc}"
    text = str(exc).lower()
    if isinstance(exc, OSError) or "os error" in text or "i/o error" in text:  # safetensors' too
        message += " (check free disk space and the job folder's permissions, then resume())"
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and any(sign in text for sign in _PEER_GONE):
        message += (
            " (another process or machine of this job stopped or cannot be reached: look at "
            "its worker.log, then resume() on every machine)"
        )
    try:
        job.mark_failed("training_error", message)
    except OSError:
        traceback.print_exc()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
