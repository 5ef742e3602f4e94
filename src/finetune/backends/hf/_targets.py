"""A LoRA's target modules, checked against the model's layers before a job starts.

PEFT fails the job, once the worker has loaded the model, when no target names a layer, and
trains the others without a word when only some do (``["q_proj", "v_prj"]`` trains ``q_proj``
alone). The layers come from the model's config, built on PyTorch's meta device: no weights
are read.
"""

from __future__ import annotations

from typing import Any

from finetune._errors import InvalidRequestError, did_you_mean
from finetune.backends.hf._config import TrainingConfig, lora_settings


def check_lora_targets(config: TrainingConfig) -> None:
    """Refuse a LoRA beside ``full_finetune=True``, and target modules (``LoRA``'s, or
    ``peft_args``' that replace them) that name no layer of the model, with the closest one
    and the model's linear layers, before any work."""
    lora = lora_settings(config)
    if lora is None or config.continues_adapter:
        return
    replaced = "target_modules" in config.options.peft_args
    targets = config.options.peft_args["target_modules"] if replaced else lora.target_modules
    if not isinstance(targets, list):  # "all-linear", or a pattern PEFT matches whole
        return
    layers = _layers(config.base_model, trust_remote_code=config.options.trust_remote_code)
    missing = [name for name in targets if isinstance(name, str) and not _matches(name, layers)]
    if not layers or not missing:
        return
    linear = sorted({name.rsplit(".", 1)[-1] for name, is_linear in layers.items() if is_linear})
    meant = did_you_mean(missing[0], linear)
    named = ", ".join(repr(name) for name in missing)
    place = "options.peft_args" if replaced else "hyperparameters.lora"
    raise InvalidRequestError(
        f"{place}.target_modules: {named} names no layer of {config.model_source}{meant}; its "
        f"linear layers are {', '.join(linear)} (target_modules='all-linear', the default, "
        "takes them all)",
        backend="hf",
        param=f"{place}.target_modules",
    )


def _matches(target: str, layers: dict[str, bool]) -> bool:
    """PEFT's rule for a list of names: a layer whose dotted name is, or ends with, one."""
    return any(name == target or name.endswith("." + target) for name in layers)


def _layers(path: str, *, trust_remote_code: bool) -> dict[str, bool]:
    """Each layer's dotted name, and whether it is linear; none where the model cannot be
    built here (the worker then reports what is wrong with it)."""
    try:
        import torch
        from transformers import AutoConfig, AutoModelForCausalLM

        model_config = AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code)
        with torch.device("meta"):
            model: Any = AutoModelForCausalLM.from_config(
                model_config, trust_remote_code=trust_remote_code
            )
    except Exception:
        return {}
    return {
        name: isinstance(module, torch.nn.Linear) or type(module).__name__ == "Conv1D"
        for name, module in model.named_modules()
        if name
    }
