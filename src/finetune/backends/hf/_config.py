"""The resolved configuration of a local job, and its mapping onto TRL and PEFT arguments.

Everything here is plain data (no torch), so it is checked in the user's process before a
worker starts, and saved in the job directory as ``config.json``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from pathlib import Path
from typing import Any, ClassVar, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from finetune._errors import (
    InvalidRequestError,
    MissingDependency,
    closest_name,
    did_you_mean,
    settings_problem,
)
from finetune._json_values import json_settings
from finetune._synonyms import LOCAL_OPTION_SYNONYMS, TUNER_KEYWORDS
from finetune.types import Hyperparameters, LoRA

__all__ = [
    "LocalOptions",
    "TrainingConfig",
    "adapter_settings",
    "assistant_only",
    "check_precision",
    "check_trainer_names",
    "continuing_adapter",
    "cpu_computes_bf16",
    "gpu_index",
    "lora_arguments",
    "lora_settings",
    "parse_options",
    "resolved_hyperparameters",
    "trainer_arguments",
    "wanted_quantization",
]

Launcher = Literal["python", "accelerate", "torchrun", "ray"]
Strategy = Literal["ddp", "fsdp", "deepspeed-zero2", "deepspeed-zero3"]
DEFAULT_EPOCHS = 3
DEFAULT_BATCH_SIZE = 8
DEFAULT_LEARNING_RATE = {"full": 5e-5, "lora": 2e-4}
DEFAULT_BETA = 0.1


class LocalOptions(BaseModel):
    """Options of the local backend, given to ``Tuner("hf", ...)`` or ``fit(options=...)``:
    each with its default and meaning in [the local backend's options](backends/hf.md#options)."""

    model_config: ClassVar[ConfigDict] = ConfigDict(extra="forbid", frozen=True)
    max_length: int = Field(default=1024, gt=0)
    packing: bool = False
    assistant_only_loss: bool | None = Field(
        default=None,
        description="default: on for chat and completion data: the loss covers the assistant "
        "turns (or the completion) only, found for any chat template",
    )
    gradient_accumulation_steps: int = Field(default=1, gt=0)
    precision: Literal["auto", "bf16", "fp16", "fp32"] = Field(
        default="auto",
        description="auto: bf16 on GPUs and CPUs that compute in bf16, else fp16/fp32",
    )
    device: str = Field(
        default="auto",
        description="auto, cpu, cuda, or cuda:N: one GPU by torch's index (launcher='python')",
    )
    attention: str = Field(
        default="auto", description="auto: eager on CPU, the model's default on GPU"
    )
    gradient_checkpointing: bool | None = Field(
        default=None, description="default: off on CPU, TRL's default (on) on GPU"
    )
    full_finetune: bool = Field(
        default=False,
        description="train every weight; by default a LoRA adapter (Hyperparameters.lora)",
    )
    merge: bool = False
    save_steps: int | None = Field(
        default=None, gt=0, description="default: a checkpoint per epoch"
    )
    save_total_limit: int | None = Field(
        default=2,
        gt=0,
        description="checkpoints kept; None keeps every one (transformers reads 0 so)",
    )
    logging_steps: int = Field(
        default=5,
        gt=0,
        description="metrics logged every N steps, and at every checkpoint, evaluation and the "
        "last step",
    )
    early_stopping_patience: int | None = Field(
        default=None,
        gt=0,
        description="stop once the validation loss has not improved for this many "
        "evaluations (needs a validation set); the model saved is the best checkpoint's",
    )
    early_stopping_threshold: float = Field(
        default=0.0, ge=0, description="how much lower a validation loss must be to improve"
    )
    max_steps: int | None = Field(default=None, gt=0)
    launcher: Launcher = "python"
    num_processes: int = Field(default=1, gt=0, description="processes per machine (Ray: workers)")
    accelerate_config: str | None = None
    num_machines: int = Field(default=1, gt=0)
    machine_rank: int = Field(default=0, ge=0)
    main_process_ip: str | None = None
    main_process_port: int | None = Field(default=None, gt=0, lt=65536)
    rdzv_backend: Literal["static", "c10d"] = Field(
        default="static",
        description="static: machine_rank 0 holds rank 0; c10d: elastic rendezvous",
    )
    collective_timeout: int = Field(
        default=600, gt=0, description="seconds a process waits for the others before failing"
    )
    strategy: Strategy = Field(
        default="ddp", description="how the model is shared across processes"
    )
    ray_address: str | None = Field(default=None, description="launcher='ray': the cluster (auto)")
    use_gpu: bool | None = Field(
        default=None, description="launcher='ray': default, when CUDA is here"
    )
    quantization: Literal["4bit", "8bit"] | None = None
    trust_remote_code: bool = False
    chat_template: str | None = Field(
        default=None,
        description="a Jinja chat template for a model without one (or in place of its own): "
        "validation, training and the saved model use it",
    )
    trainer_args: dict[str, Any] = Field(default_factory=dict)
    peft_args: dict[str, Any] = Field(default_factory=dict)

    @field_validator("*", mode="before")
    @classmethod
    def _not_a_flag(cls, value: Any, info: ValidationInfo) -> Any:
        """``True`` for a number is refused: pydantic reads it as 1 (``max_length=True``
        cut every example to one token)."""
        annotation = cls.model_fields[str(info.field_name)].annotation
        kinds = set(get_args(annotation) or (annotation,))
        if isinstance(value, bool) and bool not in kinds and kinds & {int, float}:
            raise ValueError("is a number, not a boolean")
        return value

    @field_validator("trainer_args", "peft_args", mode="before")
    @classmethod
    def _json_args(cls, value: object, info: ValidationInfo) -> object:
        return json_settings(value, str(info.field_name))

    @field_validator("chat_template")
    @classmethod
    def _jinja_text(cls, value: str | None) -> str | None:
        if value is not None and "{{" not in value and "{%" not in value:
            raise ValueError(
                "is the Jinja text of a chat template, not a name or a path "
                "(Path(...).read_text() reads a .jinja file; finetune: --option "
                '"chat_template=$(cat chat.jinja)")'
            )
        return value

    @field_validator("accelerate_config")
    @classmethod
    def _absolute(cls, path: str | None) -> str | None:
        """The file the caller named, wherever the launcher runs (in the job's folder)."""
        return None if path is None else str(Path(path).expanduser().absolute())

    @field_validator("device")
    @classmethod
    def _known_device(cls, value: str) -> str:
        if value in ("auto", "cpu", "cuda") or re.fullmatch(r"cuda:\d+", value):
            return value
        raise ValueError("is auto, cpu, cuda or cuda:N, one GPU by torch's index")


def gpu_index(device: str) -> int | None:
    """N of a ``cuda:N`` device; ``None`` for the others."""
    return int(device.removeprefix("cuda:")) if device.startswith("cuda:") else None


BACKEND_KEYWORDS = ("jobs_dir", "models_dir", "cancel_grace", "python")
"""What ``HFBackend`` takes beside its options: a misspelt one (``job_dir``) may mean one."""


def parse_options(options: dict[str, Any], *, of_backend: bool = False) -> LocalOptions:
    """Check options early, with the name of any unknown or bad option in the error, among
    the options and, ``of_backend`` (``HFBackend``'s own), its ``BACKEND_KEYWORDS``."""
    try:
        return LocalOptions(**options)
    except ValidationError as exc:
        from finetune._fit import hyperparameter_meant

        known = sorted([*LocalOptions.model_fields, *(BACKEND_KEYWORDS if of_backend else ())])
        message, name = settings_problem(exc, {"": ("the hf backend", known)}, noun="option")
        ours = hyperparameter_meant(name) if name not in known else None
        if ours:
            message = (
                f"{name!r} is no option of the hf backend: it is ft.Hyperparameters({ours}=...)"
            )
        elif name not in known and name in LOCAL_OPTION_SYNONYMS:
            message = (
                f"{name!r} is no option of the hf backend: write {LOCAL_OPTION_SYNONYMS[name]}"
            )
        elif (
            name not in known
            and not closest_name(name, known)
            and (tuners := closest_name(name, TUNER_KEYWORDS))
        ):
            message = (
                f"{name!r} is no option of the hf backend: did you mean the Tuner's {tuners}=...?"
            )
        raise InvalidRequestError(message, backend="hf", param=name) from None


class TrainingConfig(BaseModel):
    """Everything a worker needs, written as the job's ``config.json``."""

    # pydantic before 2.10 warns of a field named model_* unless its namespace is opened
    model_config: ClassVar[ConfigDict] = ConfigDict(frozen=True, protected_namespaces=())
    job_id: str
    base_model: str
    model_source: str | None = Field(default=None, description="the model as given, when converted")
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
    continues_adapter: bool = Field(
        default=False,
        description="the base is a LoRA adapter, trained further (hyperparameters.lora)",
    )


def _number(value: object, default: float) -> float:
    return default if value is None or value == "auto" else float(value)  # type: ignore[arg-type]


def _warmup_ratio(warmup: float | None) -> float:
    """Our fraction as transformers' ``warmup_steps``, which reads 1 or more as a step
    count: a warmup over the whole run (1.0) is sent as the largest float below 1."""
    return math.nextafter(1.0, 0.0) if warmup == 1 else warmup or 0.0


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
    hp = resolved_hyperparameters(config)
    options = config.options
    args: dict[str, Any] = {
        "output_dir": output_dir,
        "num_train_epochs": hp.epochs,
        "per_device_train_batch_size": hp.batch_size,
        "per_device_eval_batch_size": hp.batch_size,
        "learning_rate": hp.learning_rate,
        "warmup_steps": _warmup_ratio(hp.warmup),
        "seed": hp.seed,
        "gradient_accumulation_steps": options.gradient_accumulation_steps,
        "max_length": options.max_length,
        "logging_steps": options.logging_steps,
        "save_strategy": "steps" if options.save_steps else "epoch",
        "save_total_limit": options.save_total_limit,
        "report_to": _report_to(config.integrations),
        "use_cpu": not cuda,
        "disable_tqdm": True,
        "ddp_timeout": options.collective_timeout,
        "logging_nan_inf_filter": False,  # a NaN loss is logged as NaN, which ends a diverged run
    }
    if options.gradient_checkpointing is not None or not cuda:
        args["gradient_checkpointing"] = bool(options.gradient_checkpointing)
    if options.save_steps:
        args["save_steps"] = options.save_steps
    if options.max_steps:
        args["max_steps"] = options.max_steps
    if config.validation_file:
        args["eval_strategy"] = args["save_strategy"]
        if options.save_steps:
            args["eval_steps"] = options.save_steps
        if options.early_stopping_patience is not None:  # the best checkpoint is the model
            args["load_best_model_at_end"] = True
            args["metric_for_best_model"] = "eval_loss"
            args["greater_is_better"] = False
    args.update(_precision(options.precision, cuda=cuda, bf16_supported=bf16_supported))
    if config.method == "sft":
        args["packing"] = options.packing
        if options.packing:
            args["packing_strategy"] = "bfd" if flash_attention else "wrapped"
        # the worker tokenizes and masks (labels of -100) itself, for any chat template
        args["assistant_only_loss"] = False
        args["completion_only_loss"] = False
    else:
        args["beta"] = hp.beta
    args.update(hp.extra)
    args.update(options.trainer_args)
    return args


# TRL's names for what a job sets from its options and folder, beside its hyperparameters
# (``hyperparameter_meant``): given again in ``extra`` or ``trainer_args`` they trained
# otherwise than the job, its estimate and the registry said (``num_train_epochs=5`` under
# ``epochs=3``)
_SET_BY_THE_JOB = {
    "warmup_steps": "ft.Hyperparameters(warmup=...), a fraction of the steps",
    "output_dir": "the job's folder, under jobs_dir",
    **{
        name: f"options={{{name!r}: ...}}"
        for name in (
            "max_length",
            "max_steps",
            "gradient_accumulation_steps",
            "gradient_checkpointing",
            "logging_steps",
            "save_steps",
            "save_total_limit",
            "packing",
        )
    },
}


def check_trainer_names(config: TrainingConfig) -> None:
    """Refuse a name in ``hyperparameters.extra`` or ``options.trainer_args`` that TRL's
    trainer settings do not take, or in ``options.peft_args`` that PEFT's ``LoraConfig`` does
    not, before the job starts: the worker would fail on it."""
    trainer = {**config.hyperparameters.extra, **config.options.trainer_args}
    if trainer:
        try:
            import trl
        except ImportError as exc:
            raise MissingDependency("trl", "hf", purpose="to train locally") from exc
        settings = trl.SFTConfig if config.method == "sft" else trl.DPOConfig
        _refuse_unknown("hyperparameters.extra", config.hyperparameters.extra, settings, "TRL")
        _refuse_unknown("options.trainer_args", config.options.trainer_args, settings, "TRL")
    if config.options.peft_args:
        try:
            from peft import LoraConfig
        except ImportError as exc:
            raise MissingDependency("peft", "hf", purpose="to train a LoRA adapter") from exc
        _refuse_unknown("options.peft_args", config.options.peft_args, LoraConfig, "PEFT")


def _refuse_unknown(where: str, given: dict[str, Any], settings: Any, owner: str) -> None:
    known = sorted(field.name for field in dataclasses.fields(settings) if field.init)
    for name in given:
        ours = _set_by_the_job(name) if owner == "TRL" else None
        if ours:
            raise InvalidRequestError(
                f"{where}: {name!r} is set by the job from {ours}; give it "
                "there, where the job's estimate, report and registry record see it",
                backend="hf",
                param=f"{where}.{name}",
            )
        if name not in known:
            raise InvalidRequestError(
                f"{where}: {owner}'s {settings.__name__} takes no {name!r}"
                f"{did_you_mean(name, known)}",
                backend="hf",
                param=f"{where}.{name}",
            )


def _set_by_the_job(name: str) -> str | None:
    """The setting of ours a TRL setting ``name`` is, where the job sets it itself."""
    from finetune._fit import hyperparameter_meant

    ours = hyperparameter_meant(name)
    return f"ft.Hyperparameters({ours}=...)" if ours else _SET_BY_THE_JOB.get(name)


def resolved_hyperparameters(config: TrainingConfig) -> Hyperparameters:
    """The hyperparameters training uses: the request with this backend's defaults filled
    in (epochs, batch size, learning rate with any multiplier applied, warmup, seed, DPO beta,
    the LoRA adapter; ``lora=None`` for a full fine-tune), as hosted providers report
    theirs."""
    hp = config.hyperparameters
    lora = lora_settings(config)
    rate = DEFAULT_LEARNING_RATE["full" if lora is None else "lora"]
    return hp.model_copy(
        update={
            "epochs": int(_number(hp.epochs, DEFAULT_EPOCHS)),
            "batch_size": int(_number(hp.batch_size, DEFAULT_BATCH_SIZE)),
            "learning_rate": hp.learning_rate or rate * _number(hp.learning_rate_multiplier, 1),
            "learning_rate_multiplier": None,
            "warmup": hp.warmup or 0.0,
            "seed": hp.seed if hp.seed is not None else 0,
            "beta": _number(hp.beta, DEFAULT_BETA) if config.method == "dpo" else None,
            "lora": lora,
        }
    )


def assistant_only(config: TrainingConfig) -> bool:
    """Whether the loss covers the assistant turns (or the completion) only."""
    chosen = config.options.assistant_only_loss
    return config.example_kind in ("chat", "completion") if chosen is None else chosen


def _report_to(integrations: list[dict[str, Any]]) -> list[str]:
    return [str(item.get("type")) for item in integrations if item.get("type")]


def _precision(choice: str, *, cuda: bool, bf16_supported: bool) -> dict[str, bool]:
    if choice == "auto":
        if not cuda:
            return {"bf16": bf16_supported, "fp16": False}
        return {"bf16": True} if bf16_supported else {"fp16": True}
    check_precision(choice, cuda=cuda)
    return {"bf16": choice == "bf16", "fp16": choice == "fp16"}


def check_precision(choice: str, *, cuda: bool) -> None:
    """Refuse fp16 where training runs on the CPU (``cuda``: it runs on a CUDA GPU)."""
    if choice == "fp16" and not cuda:
        raise InvalidRequestError(
            "precision='fp16' needs a CUDA GPU; on CPU use 'bf16' or 'fp32' "
            "(or 'auto': bf16 where the CPU computes in bf16)",
            backend="hf",
            param="precision",
        )


def cpu_computes_bf16() -> bool:
    """Whether this CPU has bfloat16 arithmetic (x86 AVX512-BF16 or AMX, Arm BF16), read from
    ``/proc/cpuinfo``; elsewhere (macOS, Windows) training stays in fp32 unless asked."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            lines = [line for line in handle if line.startswith(("flags", "Features"))]
    except OSError:
        return False
    flags = set(" ".join(lines).split())
    return bool(flags & {"avx512_bf16", "amx_bf16", "bf16"})


def check_early_stopping(config: TrainingConfig) -> None:
    """Early stopping watches the validation loss: a fit without a validation set is refused
    before any work, rather than training to the end unwatched."""
    if config.options.early_stopping_patience is not None and not config.validation_file:
        raise InvalidRequestError(
            "early_stopping_patience stops on the validation loss: give the fit a validation "
            "set (fit(train, validation=holdout))",
            backend="hf",
            param="early_stopping_patience",
        )


def lora_settings(config: TrainingConfig) -> LoRA | None:
    """The job's LoRA adapter: ``Hyperparameters.lora``, LoRA's defaults when none is given,
    ``None`` for a full fine-tune (``full_finetune=True``)."""
    if config.options.full_finetune:
        if config.hyperparameters.lora is not None:
            raise InvalidRequestError(
                "full_finetune=True and Hyperparameters(lora=...) contradict each other; drop one",
                backend="hf",
                param="full_finetune",
            )
        return None
    return config.hyperparameters.lora or LoRA()


def wanted_quantization(config: TrainingConfig) -> str | None:
    """How the base is loaded for QLoRA: ``options.quantization``, else ``"4bit"`` for a
    LoRA with ``quantize_4bit``; ``None`` in full precision."""
    lora = lora_settings(config)
    if config.options.quantization is None and lora is not None and lora.quantize_4bit:
        return "4bit"
    return config.options.quantization


def adapter_settings(folder: str) -> LoRA | None:
    """The settings of the LoRA adapter saved in ``folder`` (``None`` when it holds none)."""
    path = Path(folder, "adapter_config.json")
    if not path.is_file() or Path(folder, "config.json").is_file():
        return None
    saved = json.loads(path.read_text(encoding="utf-8"))
    modules = saved.get("target_modules") or "all-linear"
    return LoRA(
        r=saved.get("r", 8),
        alpha=saved.get("lora_alpha", 8),
        dropout=saved.get("lora_dropout", 0.0),
        target_modules=sorted(modules) if isinstance(modules, list) else modules,
    )


def continuing_adapter(config: TrainingConfig) -> TrainingConfig:
    """``config`` as it is, or, when its base model is a LoRA adapter's folder, marked as
    continuing that adapter with the adapter's own settings as ``hyperparameters.lora``:
    read once, when the job is made, and kept in its ``config.json``."""
    own = adapter_settings(config.base_model)
    if own is None:
        return config
    lora = _continued(config, own)
    hyperparameters = config.hyperparameters.model_copy(update={"lora": lora})
    return config.model_copy(update={"continues_adapter": True, "hyperparameters": hyperparameters})


def _continued(config: TrainingConfig, own: LoRA) -> LoRA:
    """An adapter's own settings, for a job that trains it further; what cannot be done to
    an adapter is refused, naming the way through a merged model."""
    merge_first = (
        "export the adapter merged into its base (finetune export --format merged) and "
        "fine-tune that folder"
    )
    if config.options.full_finetune or config.method == "dpo":
        what = "full_finetune=True" if config.options.full_finetune else "method='dpo'"
        raise InvalidRequestError(
            f"the base model is a LoRA adapter, whose training a job continues; {what} "
            f"needs a whole model: {merge_first}",
            backend="hf",
            param="model",
        )
    wanted = config.hyperparameters.lora
    if wanted is not None and not _same_adapter(wanted, own):
        raise InvalidRequestError(
            f"the base model is a LoRA adapter (r={own.r}, alpha={own.alpha}), whose training "
            f"a job continues as it is; Hyperparameters(lora=...) asks for another one: drop "
            f"it, or {merge_first}",
            backend="hf",
            param="hyperparameters.lora",
        )
    return own.model_copy(update={"quantize_4bit": bool(wanted and wanted.quantize_4bit)})


def _same_adapter(wanted: LoRA, own: LoRA) -> bool:
    """Whether asking for ``wanted`` is asking for the saved ``own`` ("all-linear" is any
    saved list of modules: PEFT saves the names it found)."""
    sizes = (wanted.r, wanted.alpha, wanted.dropout) == (own.r, own.alpha, own.dropout)
    modules = wanted.target_modules
    return sizes and (modules == "all-linear" or sorted(modules) == own.target_modules)


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
