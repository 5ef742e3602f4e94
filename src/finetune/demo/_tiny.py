"""A tiny Llama-style base model built offline: a BPE tokenizer and a briefly pre-trained model.

Nothing comes from a model hub. The tokenizer is trained with ``tokenizers`` on the texts you
give, the model is built from a config with random weights and pre-trained for a few seconds on
generic text, so that it is a real (if very small) base model that fine-tuning can improve.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from finetune._errors import MissingDependency
from finetune._progress import no_library_bars_in_a_log
from finetune.dataset import atomic_folder

__all__ = ["CHAT_TEMPLATE", "build_tiny_base", "generic_text", "train_tokenizer"]

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>' }}"
    "{% if message['role'] == 'assistant' %}{% generation %}"
    "{{ message['content'] + '<|end|>' }}{% endgeneration %}"
    "{% else %}{{ message['content'] + '<|end|>' }}{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}"
)
SPECIAL_TOKENS = ["<|pad|>", "<|end|>", "<|system|>", "<|user|>", "<|assistant|>", "<|tool|>"]

_SUBJECTS = ["the team", "our store", "a customer", "the parcel", "my friend", "the courier"]
_VERBS = ["sent", "checked", "found", "shipped", "wrote", "opened", "received", "returned"]
_OBJECTS = ["a letter", "the box", "an email", "the invoice", "a new phone", "the receipt"]
_TAILS = ["today", "yesterday", "last week", "in the morning", "after lunch", "on time"]


def generic_text(count: int = 2000, seed: int = 0) -> list[str]:
    """Plain sentences (with numbers and names) to pre-train the tiny base on."""
    rng = random.Random(seed)
    lines = []
    for _ in range(count):
        sentence = (
            f"{rng.choice(_SUBJECTS).capitalize()} {rng.choice(_VERBS)} "
            f"{rng.choice(_OBJECTS)} {rng.choice(_TAILS)}, number {rng.randint(1000, 9999)}."
        )
        lines.append(sentence)
    return lines


def _require_hf() -> None:
    try:
        import tokenizers  # noqa: F401
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError as exc:
        raise MissingDependency(
            exc.name or "transformers", "hf", purpose="for local models"
        ) from exc


def train_tokenizer(texts: Iterable[str], vocab_size: int = 512) -> Any:
    """A byte-level BPE tokenizer trained on ``texts``, with a chat template that marks turns."""
    _require_hf()
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE(unk_token=None))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    core.train_from_iterator(texts, trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core, pad_token="<|pad|>", eos_token="<|end|>"
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def build_tiny_base(
    directory: str | Path,
    texts: Sequence[str] = (),
    *,
    hidden_size: int = 96,
    layers: int = 2,
    pretrain_steps: int = 150,
    seed: int = 0,
) -> Path:
    """Build, briefly pre-train and save a tiny causal LM with its tokenizer; reuse if present.

    ``texts`` are added to the tokenizer's training corpus (pass your dataset's texts so its
    words get tokens); pre-training uses generic sentences only. Processes building the same
    folder at once take turns (a lock beside it): the later ones reuse the first's.
    """
    _require_hf()
    from finetune._lock import FileLock

    target = Path(directory)
    if _built(target):
        return target
    lock = FileLock(target.parent / f".{target.name}.lock", elsewhere="build it in another folder")
    lock.acquire()
    try:
        if not _built(target):  # another process may have built it while this one waited
            _build(target, texts, hidden_size, layers, pretrain_steps, seed)
    finally:
        lock.release()
    return target


def _built(target: Path) -> bool:
    return (target / "config.json").exists() and (target / "tokenizer.json").exists()


def _build(
    target: Path, texts: Sequence[str], hidden_size: int, layers: int, steps: int, seed: int
) -> None:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    corpus = generic_text(seed=seed)
    tokenizer = train_tokenizer([*corpus, *texts])
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=512,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
    )
    model = LlamaForCausalLM(config)
    _pretrain(model, tokenizer, corpus, steps, seed)
    with atomic_folder(target) as staging, no_library_bars_in_a_log():
        model.save_pretrained(staging, safe_serialization=True)
        tokenizer.save_pretrained(staging)


def _pretrain(model: Any, tokenizer: Any, corpus: list[str], steps: int, seed: int) -> None:
    import torch

    rng = random.Random(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(steps):
        batch = tokenizer(
            [line + "<|end|>" for line in rng.sample(corpus, 32)],
            return_tensors="pt",
            padding=True,
        )
        labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
        loss = model(**batch, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval()
