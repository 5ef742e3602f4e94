"""A LoRA adapter folded into its base model's weights, at the base model's own precision."""

from __future__ import annotations

import contextlib
import json
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from finetune._progress import no_library_bars_in_a_log
from finetune.dataset import atomic_folder

__all__ = ["adapter_base", "is_adapter", "merge_adapter", "quiet_peft", "write_merged"]


@contextlib.contextmanager
def quiet_peft() -> Iterator[None]:
    """Hide the FutureWarning PEFT triggers in transformers 5 by reading a deprecated property
    (``is_gradient_checkpointing``) on every adapter it loads: the user cannot act on it."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning
        )
        yield


def is_adapter(folder: str | Path) -> bool:
    """Whether ``folder`` holds a LoRA adapter's ``adapter_config.json`` (PEFT loads it over
    its base)."""
    return Path(folder, "adapter_config.json").is_file()


def adapter_base(adapter: str | Path) -> str:
    """The base model an adapter folder was trained on (``adapter_config.json``)."""
    config = json.loads(Path(adapter, "adapter_config.json").read_text(encoding="utf-8"))
    return str(config["base_model_name_or_path"])


def merge_adapter(
    adapter: str | Path, output: str | Path, *, trust_remote_code: bool = False
) -> Path:
    """Save base + adapter as one plain checkpoint in ``output`` (written whole or not at all).

    The base is loaded afresh in the precision it is stored in: training may have held it in
    bfloat16, and merging into that copy would round every weight of the base.
    """
    target = Path(output)
    with atomic_folder(target) as staging:
        write_merged(adapter, staging, trust_remote_code=trust_remote_code)
    return target


def write_merged(adapter: str | Path, folder: Path, *, trust_remote_code: bool = False) -> None:
    """Write base + adapter, merged, into ``folder`` (the caller makes that write atomic)."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    with no_library_bars_in_a_log():
        base = AutoModelForCausalLM.from_pretrained(
            adapter_base(adapter), dtype="auto", trust_remote_code=trust_remote_code
        )
        with quiet_peft():
            merged: Any = PeftModel.from_pretrained(base, str(adapter)).merge_and_unload()
        merged.save_pretrained(str(folder), safe_serialization=True)
    tokenizer = AutoTokenizer.from_pretrained(str(adapter), trust_remote_code=trust_remote_code)
    tokenizer.save_pretrained(str(folder))
