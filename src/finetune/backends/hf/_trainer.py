"""How a local job trains fast: the model loaded for the hardware, the loss computed only where
it is trained.

Measured on SmolLM2-135M (LoRA r=16, 8 x ~65-token rows per step, 2 CPU cores; see
docs/performance.md): TRL's own loss builds the logits of every position over the 49k-token
vocabulary and spends half the step there; computing the LM head only on the positions that
have a label, with the frozen base in bfloat16 and eager attention, halves the step time.
"""

from __future__ import annotations

import json
from typing import Any

from finetune.backends.hf._config import TrainingConfig, lora_settings
from finetune.backends.hf._masks import MaskProblem, encode_record

__all__ = ["encoded_rows", "load_model", "sft_trainer_class"]


def encoded_rows(
    tokenizer: Any, path: str, kind: str, *, assistant_only: bool, max_length: int
) -> Any:
    """The training file as a tokenized ``datasets.Dataset``: ``input_ids`` and ``labels``
    (-100 on every token the loss skips), truncated to ``max_length``."""
    from datasets import Dataset

    rows = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                encoded = encode_record(
                    tokenizer,
                    json.loads(line),
                    kind,
                    assistant_only=assistant_only,
                    max_length=max_length,
                )
            except MaskProblem as problem:
                raise MaskProblem(f"{path}, line {number}: {problem}", problem.code) from None
            ids = encoded.input_ids[:max_length]
            labels = [t if m else -100 for t, m in zip(ids, encoded.mask[:max_length], strict=True)]
            rows.append({"input_ids": ids, "labels": labels})
    return Dataset.from_list(rows)


def load_model(config: TrainingConfig, *, cuda: bool, bf16: bool, quantization: Any) -> Any:
    """The base model: a frozen LoRA base held in bfloat16 when training in bf16 (adapters
    stay float32), eager attention on CPU (faster than SDPA's CPU kernels for short rows)."""
    import torch
    from transformers import AutoModelForCausalLM

    options = config.options
    load: dict[str, Any] = {"trust_remote_code": options.trust_remote_code}
    if quantization is not None:
        load["quantization_config"] = quantization
    elif bf16 and lora_settings(config) is not None:
        load["dtype"] = torch.bfloat16
    attention = options.attention
    if attention == "auto" and not cuda:
        attention = "eager"
    if attention != "auto":
        load["attn_implementation"] = attention
    if config.continues_adapter:
        from peft import AutoPeftModelForCausalLM

        return AutoPeftModelForCausalLM.from_pretrained(
            config.base_model, is_trainable=True, **load
        )
    return AutoModelForCausalLM.from_pretrained(config.base_model, **load)


def sft_trainer_class() -> type:
    """TRL's ``SFTTrainer`` with a loss that applies the LM head to labelled positions only."""
    import torch
    from trl import SFTTrainer

    class LeanSFTTrainer(SFTTrainer):  # type: ignore[misc]
        """Same training as ``SFTTrainer``; the logits of unlabelled positions are never built."""

        def compute_loss(
            self,
            model: Any,
            inputs: dict[str, Any],
            return_outputs: bool = False,
            num_items_in_batch: Any = None,
        ) -> Any:
            if return_outputs or "labels" not in inputs or not self._keeps_logits(model):
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            targets = inputs["labels"][:, 1:]
            positions = (targets != -100).any(dim=0).nonzero().flatten()
            forward = {k: v for k, v in inputs.items() if k != "labels"}
            outputs = model(**forward, use_cache=False, logits_to_keep=positions)
            logits = outputs.logits.float().flatten(0, 1)
            kept = targets[:, positions].flatten()
            total = torch.nn.functional.cross_entropy(
                logits, kept, ignore_index=-100, reduction="sum"
            )
            trained = kept.ne(-100)
            count = trained.sum()
            divisor = count if num_items_in_batch is None else num_items_in_batch
            loss = total / torch.as_tensor(divisor).clamp(min=1)
            if self.args.average_tokens_across_devices and num_items_in_batch is not None:
                loss = loss * self.accelerator.num_processes
            self._record(inputs, logits, kept, trained, count)
            return loss

        def _keeps_logits(self, model: Any) -> bool:
            """Whether the model's forward takes ``logits_to_keep`` (most causal LMs do)."""
            if not hasattr(self, "_logits_to_keep"):
                inner = self.accelerator.unwrap_model(model)
                inner = inner.get_base_model() if hasattr(inner, "get_base_model") else inner
                self._logits_to_keep = "logits_to_keep" in _parameters(inner.forward)
            return bool(self._logits_to_keep)

        def _record(self, inputs: Any, logits: Any, kept: Any, trained: Any, count: Any) -> None:
            mode = "train" if self.model.training else "eval"
            with torch.no_grad():
                correct = (logits.argmax(dim=-1).eq(kept) & trained).sum()
            gather = self.accelerator.gather_for_metrics
            valid, right = gather(count).sum(), gather(correct).sum()
            accuracy = (right / valid).item() if valid > 0 else 0.0
            self._metrics[mode]["mean_token_accuracy"].append(accuracy)
            if mode == "train" and "attention_mask" in inputs:
                self._total_train_tokens += gather(inputs["attention_mask"].sum()).sum().item()
            self._metrics[mode]["num_tokens"] = [self._total_train_tokens]

    return LeanSFTTrainer


def _parameters(function: Any) -> set[str]:
    import inspect

    try:
        return set(inspect.signature(function).parameters)
    except (TypeError, ValueError):
        return set()
