"""Assistant-only loss on chat templates without ``{% generation %}`` markers: five families."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("transformers")

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from finetune.backends.hf._masks import (
    MaskProblem,
    assistant_mask,
    completion_mask,
    encode_record,
    turn_end_token,
)
from tests.chat_templates import FAMILIES, Family, family_tokenizer

_TOKENIZERS: dict[str, Any] = {}


def tokenizer_of(family: Family) -> Any:
    if family.name not in _TOKENIZERS:
        _TOKENIZERS[family.name] = family_tokenizer(family)
    return _TOKENIZERS[family.name]


def trained_spans(tokenizer: Any, ids: list[int], mask: list[int]) -> list[str]:
    """The masked tokens, decoded run by run."""
    spans: list[list[int]] = []
    previous = 0
    for token, marked in zip(ids, mask, strict=True):
        if marked and not previous:
            spans.append([])
        if marked:
            spans[-1].append(token)
        previous = marked
    return [tokenizer.decode(span) for span in spans]


def conversation(family: Family, replies: list[str]) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    if family.system:
        messages.append({"role": "system", "content": "Reply briefly."})
    for number, reply in enumerate(replies):
        messages.append({"role": "user", "content": f"Question {number}: where is my order?"})
        messages.append({"role": "assistant", "content": reply})
    return messages


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.name)
def test_every_assistant_turn_is_marked_with_its_end_of_turn_token(family: Family) -> None:
    tokenizer = tokenizer_of(family)
    replies = ["It ships tomorrow.", "Café 東京: sorry for the delay!"]
    masked = assistant_mask(tokenizer, conversation(family, replies))
    assert trained_spans(tokenizer, masked.input_ids, masked.mask) == [
        reply + family.end_of_turn for reply in replies
    ]
    assert masked.unended_turn is None  # each turn closes with its end-of-turn token
    rendered = tokenizer.apply_chat_template(conversation(family, replies), tokenize=False)
    assert tokenizer.decode(masked.input_ids) == rendered  # the ids are the whole conversation


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.name)
def test_the_token_a_template_closes_a_turn_with_ends_a_local_answer(family: Family) -> None:
    """Phi-3 closes a turn with <|end|>, Gemma with <end_of_turn>: neither is the tokenizer's
    end of text, and a model tuned with such a template (one of the user's, its generation
    config silent) wrote the token and went on to max_new_tokens."""
    from finetune.evaluation._local import _end_tokens

    tokenizer = tokenizer_of(family)
    closing = turn_end_token(tokenizer)
    assert closing is not None
    assert tokenizer.convert_ids_to_tokens(closing) == family.end_of_turn
    assert closing in _end_tokens(tokenizer, None, None)
    plain = "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
    assert turn_end_token(tokenizer, plain) is None
    assert _end_tokens(tokenizer, None, plain) == [tokenizer.eos_token_id]


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.name)
def test_a_turn_of_weight_zero_stays_in_context_but_is_not_trained(family: Family) -> None:
    tokenizer = tokenizer_of(family)
    messages = conversation(family, ["Old answer.", "New answer."])
    first_reply = next(m for m in messages if m["role"] == "assistant")
    first_reply["weight"] = 0
    masked = assistant_mask(tokenizer, messages)
    assert trained_spans(tokenizer, masked.input_ids, masked.mask) == [
        "New answer." + family.end_of_turn
    ]
    assert "Old answer." in tokenizer.decode(masked.input_ids)


_words = st.text(
    alphabet=st.characters(
        codec="utf-8", categories=("L", "N", "P", "S"), exclude_characters="<>|[]{}%#"
    ),
    min_size=1,
    max_size=12,
)
_replies = st.lists(_words, min_size=1, max_size=5).map(" ".join)


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.name)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(replies=st.lists(_replies, min_size=1, max_size=3))
def test_marked_tokens_decode_to_exactly_the_replies(family: Family, replies: list[str]) -> None:
    tokenizer = tokenizer_of(family)
    masked = assistant_mask(tokenizer, conversation(family, replies))
    assert trained_spans(tokenizer, masked.input_ids, masked.mask) == [
        reply + family.end_of_turn for reply in replies
    ]


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.name)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(reply=st.text(min_size=1, max_size=40))
def test_any_text_gets_an_exact_mask_or_a_named_problem(family: Family, reply: str) -> None:
    """Whitespace at the edges, control-token look-alikes, any Unicode: never a shifted mask."""
    tokenizer = tokenizer_of(family)
    try:
        masked = assistant_mask(tokenizer, conversation(family, [reply]))
    except MaskProblem as problem:
        named = "message" in str(problem) or problem.code == "no_trainable_tokens"
        assert named, problem  # noqa: PT017 - any outcome but a wrong mask is allowed
        return
    [span] = trained_spans(tokenizer, masked.input_ids, masked.mask)
    assert span.removesuffix(family.end_of_turn).strip() == reply.strip()


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.name)
def test_a_long_conversation_renders_only_the_turns_truncation_keeps(family: Family) -> None:
    """Each assistant turn renders the conversation up to it: 300 turns rendered 600 times,
    time quadratic in the turns (800 turns: 5 s of validation, 1,600: 22 s), though training
    keeps ``max_length`` tokens. The mask is the same in what it keeps; a conversation whose
    turns all start past it trains nothing, which validation warns of."""
    tokenizer = tokenizer_of(family)
    messages = conversation(family, [f"Reply number {n}." for n in range(300)])
    whole = assistant_mask(tokenizer, messages)
    rendered = []
    original = tokenizer.apply_chat_template

    def counted(*args: Any, **kwargs: Any) -> Any:
        rendered.append(1)
        return original(*args, **kwargs)

    tokenizer.apply_chat_template = counted
    try:
        for limit in (120, 400, 1000):
            rendered.clear()
            kept = assistant_mask(tokenizer, messages, max_length=limit)
            assert kept.input_ids == whole.input_ids
            assert kept.mask[:limit] == whole.mask[:limit] and any(kept.mask)
            assert len(rendered) < 2 + limit // 5  # a turn is over 10 tokens: not 601 renders
        late = [*messages[:-1], {"role": "user", "content": "more"}]  # the last turn is 0's
        late = [{**m, "weight": 0} if m["role"] == "assistant" else m for m in late]
        late += [{"role": "assistant", "content": "the only trained turn"}]
        assert not any(assistant_mask(tokenizer, late, max_length=40).mask)
    finally:
        tokenizer.apply_chat_template = original


def test_a_template_that_rewrites_earlier_turns_is_named() -> None:
    """Like templates that drop the reasoning of earlier turns: the prefix does not hold."""
    family = FAMILIES[0]
    tokenizer = family_tokenizer(family)
    tokenizer.chat_template = (
        "{% for m in messages %}{% set text = m['content'] if loop.last or m['role'] != "
        "'assistant' else '(earlier)' %}{{ '<|im_start|>' + m['role'] + '\\n' + text + "
        "'<|im_end|>\\n' }}{% endfor %}{% if add_generation_prompt %}"
        "{{ '<|im_start|>assistant\\n' }}{% endif %}"
    )
    with pytest.raises(MaskProblem, match="message 1") as caught:
        assistant_mask(tokenizer, conversation(family, ["first", "second"])[1:])
    assert caught.value.code == "mask_unstable"


def test_no_trainable_turn_is_its_own_problem() -> None:
    tokenizer = tokenizer_of(FAMILIES[0])
    messages = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello", "weight": 0},
    ]
    with pytest.raises(MaskProblem) as caught:
        assistant_mask(tokenizer, messages)
    assert caught.value.code == "no_trainable_tokens"


def test_completion_mask_marks_the_completion_and_the_end_of_sequence() -> None:
    tokenizer = tokenizer_of(FAMILIES[0])
    masked = completion_mask(tokenizer, "Where is my order?", " It ships tomorrow.")
    assert trained_spans(tokenizer, masked.input_ids, masked.mask) == [
        " It ships tomorrow.<|im_end|>"
    ]


def test_without_assistant_only_loss_every_token_is_trained() -> None:
    family = FAMILIES[1]
    tokenizer = tokenizer_of(family)
    record = {"messages": conversation(family, ["It ships tomorrow."])}
    masked = encode_record(tokenizer, record, "chat", assistant_only=False)
    assert masked.trained == len(masked.input_ids)


CALL = {"id": "call_1", "type": "function", "function": {"name": "find_order", "arguments": "{}"}}
TOOL = {"type": "function", "function": {"name": "find_order", "parameters": {"type": "object"}}}
CALLING = [
    {"role": "user", "content": "Where is order 427?"},
    {"role": "assistant", "content": "", "tool_calls": [CALL]},
    {"role": "tool", "tool_call_id": "call_1", "content": "shipped"},
    {"role": "assistant", "content": "It ships tomorrow."},
]


def test_a_tool_call_is_trained_as_the_template_writes_it_and_its_result_is_not() -> None:
    from dataclasses import replace

    from tests.chat_templates import CHATML_TOOLS

    tokenizer = family_tokenizer(replace(FAMILIES[0], template=CHATML_TOOLS))
    record = {"messages": CALLING, "tools": [TOOL]}
    masked = encode_record(tokenizer, record, "chat", assistant_only=True)
    assert trained_spans(tokenizer, masked.input_ids, masked.mask) == [
        '<tool_call>{"name": "find_order", "arguments": {}}</tool_call><|im_end|>',
        "It ships tomorrow.<|im_end|>",
    ]
    whole = tokenizer.decode(masked.input_ids)
    assert '"name": "find_order"' in whole.split("<|im_end|>")[0]  # the definitions come first
    assert "<tool_response>shipped</tool_response>" in whole  # context, not trained


def test_a_template_that_does_not_write_tool_calls_is_named() -> None:
    tokenizer = tokenizer_of(FAMILIES[0])  # plain ChatML: content only
    with pytest.raises(MaskProblem, match=r"without its tool call\(s\) find_order") as caught:
        assistant_mask(tokenizer, CALLING)
    assert caught.value.code == "unsupported_tools"


THINKING = [
    {"role": "user", "content": "Where is my order?"},
    {"role": "assistant", "content": "It ships tomorrow.", "reasoning_content": "Ships soon."},
    {"role": "user", "content": "Thanks"},
    {"role": "assistant", "content": "Sorry for the delay.", "reasoning_content": "Be polite."},
]


def test_a_think_block_is_trained_with_its_turn_as_a_qwen3_template_writes_it() -> None:
    """Qwen 3's template writes the turns after the last question with a think block (empty
    without reasoning), and earlier ones without: each turn is found as the whole
    conversation writes it. Was: the last turn's think block made it 'not the message's
    content', and a turn before it 'spell ''' (both mask_unstable)."""
    from dataclasses import replace

    from tests.chat_templates import CHATML_THINK

    tokenizer = family_tokenizer(replace(FAMILIES[0], template=CHATML_THINK))
    masked = assistant_mask(tokenizer, THINKING)
    assert trained_spans(tokenizer, masked.input_ids, masked.mask) == [
        "It ships tomorrow.<|im_end|>",  # its reasoning is not in the conversation the model sees
        "<think>\nBe polite.\n</think>\n\nSorry for the delay.<|im_end|>",
    ]
    plain = [{k: v for k, v in m.items() if k != "reasoning_content"} for m in THINKING]
    masked = assistant_mask(tokenizer, plain)
    assert trained_spans(tokenizer, masked.input_ids, masked.mask)[1] == (
        "<think>\n\n</think>\n\nSorry for the delay.<|im_end|>"
    )
    moved = [*THINKING[:3], {**THINKING[3], "reasoning_content": "Not what it writes."}]
    with pytest.raises(MaskProblem):  # a template that writes other reasoning is still named
        assistant_mask(
            family_tokenizer(
                replace(
                    FAMILIES[0],
                    template=CHATML_THINK.replace("(m.get('reasoning_content') or '')", "'other'"),
                )
            ),
            moved,
        )
