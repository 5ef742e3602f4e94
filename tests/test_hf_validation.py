"""The hf target: examples rendered through a local tokenizer's chat template."""

from __future__ import annotations

import pytest

import finetune as ft
from finetune.demo import train_tokenizer
from finetune.validation import ChatTemplateCounter, validate

from .conftest import chat

pytest.importorskip("transformers")


def test_counts_are_the_chat_template_lengths() -> None:
    rows = [chat(i) for i in range(30)]
    for i, row in enumerate(rows):
        row["messages"][2]["content"] += " Thanks!" * (i % 6)
    texts = [m["content"] for r in rows for m in r["messages"]]
    tokenizer = train_tokenizer(texts, vocab_size=300)
    counter = ChatTemplateCounter(tokenizer, name="tiny")
    for row in rows[:5]:
        expected = len(tokenizer.apply_chat_template(row["messages"], tokenize=True)["input_ids"])
        assert counter.count_example(row) == expected
    lengths = sorted(counter.count_example(r) for r in rows)
    limit = lengths[len(lengths) // 2]
    report = validate(
        ft.Dataset.from_records(rows),
        target="hf",
        model="tiny",
        token_counter=counter,
        context_limit=limit,
    )
    over = sum(n > limit for n in lengths)
    assert report.ok and report.counts["would_truncate"] == over > 0
    assert report.stats["counter"] == "chat-template:tiny"


def test_missing_chat_template_is_a_clear_error_for_chat_examples_only() -> None:
    """A base model ships no chat template, and its natural data, prompt and completion,
    needs none: validate and fit refused it all the same, with a ValueError."""
    tokenizer = train_tokenizer(["hello world"] * 10, vocab_size=300)
    tokenizer.chat_template = None
    counter = ChatTemplateCounter(tokenizer, name="tiny")
    assert counter.count_example({"prompt": "hello", "completion": " world"}) > 0
    with pytest.raises(ft.InvalidRequestError, match="tiny has no chat template") as caught:
        counter.count_example(chat(1))
    assert caught.value.param == "chat_template" and "train on completion data" in str(caught.value)
    assert '--option chat_template="$(cat chat.jinja)" on the command line' in str(caught.value)
    completions = [{"prompt": f"hello {i}", "completion": " world"} for i in range(12)]
    data = ft.Dataset.from_records(completions)
    assert validate(data, target="hf", model="tiny", token_counter=counter).ok
    with pytest.raises(ft.InvalidRequestError, match="no chat template"):  # once, not per row
        validate(
            ft.Dataset.from_records([chat(i) for i in range(12)]),
            target="hf",
            model="tiny",
            token_counter=counter,
        )
