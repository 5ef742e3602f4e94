"""What other tools (TRL, OpenAI, Together, Fireworks) call our settings, for the error that
meets one of their names: difflib alone took ``lr`` for ``lora``."""

from __future__ import annotations

__all__ = ["HYPERPARAMETER_SYNONYMS"]

HYPERPARAMETER_SYNONYMS: dict[str, str] = {
    "lr": "learning_rate",
    "n_epochs": "epochs",
    "num_epochs": "epochs",
    "num_train_epochs": "epochs",
    "epoch": "epochs",
    "bs": "batch_size",
    "per_device_train_batch_size": "batch_size",
    "train_batch_size": "batch_size",
    "warmup_ratio": "warmup",
    "warmup_fraction": "warmup",
    "lora_r": "lora",
    "lora_rank": "lora",
    "lora_alpha": "lora",
    "lora_dropout": "lora",
    "rank": "r",  # in LoRA's fields
    "dpo_beta": "beta",
    "random_seed": "seed",
}
