"""What other tools (TRL, OpenAI, Together, Fireworks, Hugging Face evaluate) call our settings
and metrics, for the error that meets one of their names: difflib alone took ``lr`` for
``lora``."""

from __future__ import annotations

__all__ = [
    "HYPERPARAMETER_SYNONYMS",
    "LOCAL_OPTION_SYNONYMS",
    "METRIC_SYNONYMS",
    "TUNER_KEYWORDS",
]

# a Tuner's own keywords, which a misspelling among a backend's options may have meant
TUNER_KEYWORDS = ["model", "registry", "create_grace"]

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

# the hf backend's options, as TRL, transformers, accelerate and torchrun name them: the value
# says what to write instead
LOCAL_OPTION_SYNONYMS: dict[str, str] = {
    "gpus": "num_processes=N (a process per GPU)",
    "num_gpus": "num_processes=N (a process per GPU)",
    "n_gpus": "num_processes=N (a process per GPU)",
    "nproc_per_node": "num_processes=N (a process per GPU)",
    "nnodes": "num_machines=N",
    "num_nodes": "num_machines=N",
    "node_rank": "machine_rank=N",
    "master_addr": "main_process_ip='...'",
    "master_port": "main_process_port=N",
    "bf16": "precision='bf16'",
    "fp16": "precision='fp16'",
    "torch_dtype": "precision='bf16' (or 'fp16', 'fp32')",
    "dtype": "precision='bf16' (or 'fp16', 'fp32')",
    "load_in_4bit": "quantization='4bit'",
    "load_in_8bit": "quantization='8bit'",
    "device_map": "device='cuda:N' (one GPU) or num_processes=N (several)",
}

# what other tools (Hugging Face evaluate, SQuAD, OpenAI evals) call our ready metrics
METRIC_SYNONYMS: dict[str, str] = {
    "f1": "token_f1",
    "squad_f1": "token_f1",
    "rouge1": "token_f1",
    "em": "exact_match",
    "exact": "exact_match",
    "accuracy": "exact_match",
    "sacrebleu": "bleu",
    "chrf++": "chrf",
    "json": "json_valid",
    "valid_json": "json_valid",
}
