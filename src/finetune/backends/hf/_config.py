"""The resolved configuration of a local job, and its mapping onto TRL and PEFT arguments.

Everything here is plain data (no torch), so it is checked in the user's process before a
worker starts, and saved in the job directory as ``config.json``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from finetune._errors import InvalidRequestError
from finetune.types import Hyperparameters, LoRA

__all__ = ["LocalOptions", "TrainingConfig", "lora_arguments", "parse_options", "trainer_arguments"]

Launcher = Literal["python", "accelerate", "torchrun"]
DEFAULT_EPOCHS = 3
DEFAULT_BATCH_SIZE = 8
DEFAULT_LEARNING_RATE = {"full": 5e-5, "lora": 2e-4}


class LocalOptions(BaseModel):
    """Options of the local backend, given to ``Tuner("hf", ...)`` or ``fit(options=...)``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    max_length: int = Field(1024, gt=0)
    packing: bool = False
    assistant_only_loss: bool | None = Field(
        None, description="default: on for chat data (needs {% generation %} in the template)"
    )
    gradient_accumulation_steps: int = Field(1, gt=0)
    precision: Literal["auto", "bf16", "fp16", "fp32"] = "auto"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    merge: bool = False
    save_steps: int | None = Field(None, gt=0, description="default: a checkpoint per epoch")
    save_total_limit: int | None = 2
    logging_steps: int = Field(5, gt=0)
    max_steps: int | None = Field(None, gt=0)
    launcher: Launcher = "python"
    num_processes: int = Field(1, gt=0)
    accelerate_config: str | None = None
    quantization: Literal["4bit", "8bit"] | None = None
    trust_remote_code: bool = False
    trainer_args: dict[str, Any] = Field(default_factory=dict)
    peft_args: dict[str, Any] = Field(default_factory=dict)


def parse_options(options: dict[str, Any]) -> LocalOptions:
    """Check options early, with the name of any unknown or bad option in the error."""
    try:
        return LocalOptions(**options)
    except ValidationError as exc:
        first = exc.errors()[0]
        name = ".".join(str(part) for part in first["loc"])
        raise InvalidRequestError(
            f"option {name!r} of the hf backend: {first['msg']}; "
            f"known options: {sorted(LocalOptions.model_fields)}",
            backend="hf",
            param=name,
        ) from None


class TrainingConfig(BaseModel):
    """Everything a worker needs, written as the job's ``config.json``."""

    model_config = ConfigDict(frozen=True)
    job_id: str
    base_model: str
    method: Literal["sft", "dpo"]
    example_kind: str
    training_file: str
    validation_file: str | None = None
    hyperparameters: Hyperparameters = Field(default_factory=Hyperparameters)
    options: LocalOptions = Field(default_factory=LocalOptions)
    idempotency_key: str
    suffix: str | None = None
    metadata: dict[str, str] = Field(default_factory=dict)
    integrations: list[dict[str, Any]] = Field(default_factory=list)


def _number(value: object, default: float) -> float:
    return default if value is None or value == "auto" else float(value)  # type: ignore[arg-type]


def trainer_arguments(
    config: TrainingConfig,
    *,
    output_dir: str,
    cuda: bool,
    bf16_supported: bool,
    flash_attention: bool = False,
) -> dict[str, Any]:
    """Keyword arguments for ``SFTConfig`` or ``DPOConfig``.

    Packing uses TRL's best-fit ("bfd", padding-free) only under FlashAttention, which keeps
    the packed examples apart; otherwise a padding-free batch is one long sequence whose
    attention grows with the square of the whole batch, so "wrapped" rows of ``max_length``
    are used instead (see docs/performance.md for the measured difference).
    """
    hp = config.hyperparameters
    options = config.options
    style = "lora" if hp.lora is not None else "full"
    learning_rate = hp.learning_rate or DEFAULT_LEARNING_RATE[style] * _number(
        hp.learning_rate_multiplier, 1.0
    )
    args: dict[str, Any] = {
        "output_dir": output_dir,
        "num_train_epochs": _number(hp.epochs, DEFAULT_EPOCHS),
        "per_device_train_batch_size": int(_number(hp.batch_size, DEFAULT_BATCH_SIZE)),
        "per_device_eval_batch_size": int(_number(hp.batch_size, DEFAULT_BATCH_SIZE)),
        "learning_rate": learning_rate,
        "warmup_steps": hp.warmup or 0.0,
        "seed": hp.seed if hp.seed is not None else 0,
        "gradient_accumulation_steps": options.gradient_accumulation_steps,
        "max_length": options.max_length,
        "logging_steps": options.logging_steps,
        "save_strategy": "steps" if options.save_steps else "epoch",
        "save_total_limit": options.save_total_limit,
        "report_to": _report_to(config.integrations),
        "use_cpu": not cuda,
        "disable_tqdm": True,
    }
    if options.save_steps:
        args["save_steps"] = options.save_steps
    if options.max_steps:
        args["max_steps"] = options.max_steps
    if config.validation_file:
        args["eval_strategy"] = args["save_strategy"]
        if options.save_steps:
            args["eval_steps"] = options.save_steps
    args.update(_precision(options.precision, cuda=cuda, bf16_supported=bf16_supported))
    if config.method == "sft":
        args["packing"] = options.packing
        if options.packing:
            args["packing_strategy"] = "bfd" if flash_attention else "wrapped"
        args["assistant_only_loss"] = _assistant_only(config)
        if config.example_kind == "completion":
            args["completion_only_loss"] = True
    else:
        args["beta"] = _number(hp.beta, 0.1)
    args.update(hp.extra)
    args.update(options.trainer_args)
    return args


def _assistant_only(config: TrainingConfig) -> bool:
    chosen = config.options.assistant_only_loss
    return config.example_kind == "chat" if chosen is None else chosen


def _report_to(integrations: list[dict[str, Any]]) -> list[str]:
    return [str(item.get("type")) for item in integrations if item.get("type")]


def _precision(choice: str, *, cuda: bool, bf16_supported: bool) -> dict[str, bool]:
    if choice == "auto":
        if not cuda:
            return {"bf16": False, "fp16": False}
        return {"bf16": True} if bf16_supported else {"fp16": True}
    if choice in ("bf16", "fp16") and not cuda:
        raise InvalidRequestError(
            f"precision={choice!r} needs a CUDA GPU; this machine trains on CPU in fp32 "
            "(use precision='auto')",
            backend="hf",
            param="precision",
        )
    return {"bf16": choice == "bf16", "fp16": choice == "fp16"}


def lora_arguments(lora: LoRA, extra: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments for ``peft.LoraConfig``."""
    return {
        "r": lora.r,
        "lora_alpha": lora.alpha,
        "lora_dropout": lora.dropout,
        "target_modules": lora.target_modules,
        "task_type": "CAUSAL_LM",
        **extra,
    }
