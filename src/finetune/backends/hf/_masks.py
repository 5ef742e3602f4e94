"""Assistant-only loss for any chat template: which tokens of a conversation are the model's.

Most chat templates (SmolLM2, Llama 3, Mistral, Qwen 2.5, Gemma, Phi-3) have no
``{% generation %}`` markers, so the mask is found by rendering: the conversation up to an
assistant turn (with the generation prompt) and through it; the tokens the turn adds are the
assistant's, up to and including its end-of-turn token (whitespace the template adds after it
is not). Each prefix's tokens must be a prefix of the whole conversation's tokens; where a
template or tokenizer breaks that, the example is named (``MaskProblem``) rather than
trained on a shifted mask.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from finetune.validation._tokens import template_messages

__all__ = [
    "MaskProblem",
    "MaskedExample",
    "assistant_mask",
    "completion_mask",
    "encode_record",
    "render_ids",
    "text_ids",
    "turn_end_token",
]


class MaskProblem(ValueError):
    """An example whose assistant tokens cannot be found exactly, with the reason."""

    def __init__(self, message: str, code: str = "mask_unstable") -> None:
        self.code = code
        super().__init__(message)


@dataclass
class MaskedExample:
    """Token ids and a 0/1 mask of the tokens the loss is computed on."""

    input_ids: list[int]
    mask: list[int]
    unended_turn: int | None = None  # the first trained turn the template ends with no token

    @property
    def trained(self) -> int:
        """How many tokens the loss sees."""
        return sum(self.mask)


def render_ids(
    tokenizer: Any,
    messages: list[dict[str, Any]],
    generation_prompt: bool,
    tools: list[Any] | None = None,
) -> list[int]:
    """The token ids of ``messages`` as the chat template writes them, tokenized as
    ``apply_chat_template(tokenize=True)`` tokenizes them."""
    text = tokenizer.apply_chat_template(
        messages, tools=tools or None, tokenize=False, add_generation_prompt=generation_prompt
    )
    return text_ids(tokenizer, text)


def text_ids(tokenizer: Any, text: str) -> list[int]:
    """A rendered text's token ids, with no special token added: the template wrote them."""
    ids: list[int] = tokenizer(text, add_special_tokens=False)["input_ids"]
    return ids


def _special_ids(tokenizer: Any) -> set[int]:
    found = set(getattr(tokenizer, "all_special_ids", []) or [])
    added = getattr(tokenizer, "added_tokens_decoder", {}) or {}
    found.update(index for index, token in added.items() if getattr(token, "special", False))
    return found


def turn_end_token(tokenizer: Any, template: str | None = None) -> int | None:
    """The control token the chat ``template`` (the tokenizer's where ``None``) closes an
    assistant turn with: ``<|im_end|>``, ``<|eot_id|>``, Phi-3's ``<|end|>``, which need not
    be the tokenizer's end of text; ``None`` where it closes one with none."""
    answer = "Hello"
    asked = [{"role": "user", "content": "Hi"}]
    answered = [*asked, {"role": "assistant", "content": answer}]
    try:
        before = tokenizer.apply_chat_template(
            asked, add_generation_prompt=True, tokenize=False, chat_template=template
        )
        whole = tokenizer.apply_chat_template(answered, tokenize=False, chat_template=template)
    except Exception:  # a template that refuses the probe: the tokenizer's end of text alone
        return None
    turn = whole[len(before) :] if whole.startswith(before) else ""
    if answer not in turn:
        return None
    special = _special_ids(tokenizer)
    after = turn[turn.index(answer) + len(answer) :]  # past a think block, a header's token
    ids = tokenizer(after, add_special_tokens=False)["input_ids"]
    return next((int(token) for token in ids if token in special), None)


def _common_prefix(a: list[int], b: list[int]) -> int:
    size = min(len(a), len(b))
    for position in range(size):
        if a[position] != b[position]:
            return position
    return size


def _turn_end(
    tokenizer: Any, ids: list[int], start: int, end: int, special: set[int]
) -> tuple[int, bool]:
    """Where an assistant turn ends: just after its first control token (``<|im_end|>``,
    ``<|eot_id|>``, ``</s>`` ...), else before the layout whitespace the template adds; and
    whether it ends with a control token (the one that teaches the model to stop)."""
    for position in range(start, end):
        if ids[position] in special:
            return position + 1, True
    while end > start and not tokenizer.decode([ids[end - 1]]).strip():
        end -= 1
    return end, False


def assistant_mask(
    tokenizer: Any,
    messages: list[dict[str, Any]],
    *,
    tools: list[Any] | None = None,
    trained_roles: tuple[str, ...] = ("assistant",),
    max_length: int | None = None,
) -> MaskedExample:
    """The conversation's token ids with the assistant turns' tokens marked (with
    ``max_length``, those of the turns that start within it: truncation keeps no other, and
    each turn renders the conversation up to it, so a long one would cost time quadratic in
    its turns).

    A turn's tokens are those the conversation gains when the turn is added to the rendered
    prefix (with its generation prompt), through the turn's end-of-turn token; a turn that
    calls tools trains on the calls as the template writes them. An assistant message with
    ``weight: 0`` is kept in the context but not trained on. Raises ``MaskProblem`` when the
    template renders the prefix differently inside the whole conversation, or the marked
    tokens do not spell the message (the mask would be shifted) or leave out its tool calls,
    or no turn is trained.
    """
    plain = template_messages(messages)
    full = render_ids(tokenizer, plain, generation_prompt=False, tools=tools)
    special = _special_ids(tokenizer)
    mask = [0] * len(full)
    unended: int | None = None
    for index, message in enumerate(messages):
        if message.get("role") not in trained_roles or message.get("weight") == 0:
            continue
        before = render_ids(tokenizer, plain[:index], True, tools) if index else []
        if max_length is not None and len(before) >= max_length:
            return MaskedExample(full, mask, unended)  # none marked: no_trainable_tokens
        through = render_ids(tokenizer, plain[: index + 1], False, tools)
        if through[: len(before)] != before or full[: len(before)] != before:
            raise MaskProblem(
                f"message {index}: the template renders the conversation up to this turn "
                "differently from the whole conversation, so its tokens cannot be found exactly "
                "(pass options={'assistant_only_loss': False} to train on every token)"
            )
        start = len(before)
        common = _common_prefix(through, full)
        # a template may write a turn differently once it is not the last (Qwen 3 drops an
        # earlier turn's think block): its end is then found in the whole conversation
        bound = common if common == len(through) else len(full)
        end, closed = _turn_end(tokenizer, full, start, bound, special)
        if not closed and unended is None:
            unended = index
        spelled = tokenizer.decode([t for t in full[start:end] if t not in special])
        _check_spelled(spelled.strip(), plain[index], index)
        for position in range(start, end):
            mask[position] = 1
    if not any(mask):
        raise MaskProblem("no assistant tokens to train on", code="no_trainable_tokens")
    return MaskedExample(full, mask, unended)


def _check_spelled(spelled: str, message: dict[str, Any], index: int) -> None:
    """The marked tokens spell the turn: its content, or its tool calls by name."""
    names = [call["function"].get("name") for call in message.get("tool_calls", [])]
    if names:
        missing = [name for name in names if not name or name not in spelled]
        if missing or message["content"].strip() not in spelled:
            raise MaskProblem(
                f"message {index}: the tokens this turn adds spell {spelled[:60]!r}, without "
                f"its tool call(s) {', '.join(map(str, names))}: the model's chat template "
                "does not write tool calls",
                code="unsupported_tools",
            )
    elif not _spells_answer(spelled, message):
        raise MaskProblem(
            f"message {index}: the tokens this turn adds spell {spelled[:60]!r}, "
            "not the message's content, so the template changes or moves it "
            "(pass options={'assistant_only_loss': False} to train on every token)"
        )


_THINK_BLOCK = re.compile(r"<(\w+)>\s*</\1>")  # <think></think>, its reasoning taken out


def _spells_answer(spelled: str, message: dict[str, Any]) -> bool:
    """The turn's content, after a think block holding its reasoning (empty without one), as
    Qwen 3's template writes the last turn: ``<think>\n...\n</think>\n\n`` then the answer."""
    content = message["content"].strip()
    if spelled == content:
        return True
    if not spelled.endswith(content):
        return False
    head = spelled[: len(spelled) - len(content)]
    reasoning = str(message.get("reasoning_content") or "").strip()
    if reasoning and reasoning not in head:
        return False
    return _THINK_BLOCK.fullmatch(head.replace(reasoning, "", 1).strip()) is not None


def completion_mask(tokenizer: Any, prompt: str, completion: str) -> MaskedExample:
    """Prompt + completion (with the end-of-sequence token), the completion marked."""
    prompt_ids: list[int] = tokenizer(prompt, add_special_tokens=True)["input_ids"]
    eos = tokenizer.eos_token or ""
    whole: list[int] = tokenizer(prompt + completion + eos, add_special_tokens=True)["input_ids"]
    if whole[: len(prompt_ids)] != prompt_ids:
        raise MaskProblem("the prompt tokenizes differently before its completion")
    mask = [0] * len(prompt_ids) + [1] * (len(whole) - len(prompt_ids))
    if not any(mask):
        raise MaskProblem("the completion is empty", code="no_trainable_tokens")
    return MaskedExample(whole, mask)


def encode_record(
    tokenizer: Any,
    record: dict[str, Any],
    kind: str,
    *,
    assistant_only: bool,
    max_length: int | None = None,
) -> MaskedExample:
    """One record of the ``hf`` format (chat or completion) as token ids and a loss mask:
    the assistant turns (or the completion), or every token when ``assistant_only`` is off;
    with ``max_length``, the mask is exact in the tokens truncation keeps."""
    if kind == "completion":
        if assistant_only:
            return completion_mask(tokenizer, record["prompt"], record["completion"])
        ids = tokenizer(record["prompt"] + record["completion"] + (tokenizer.eos_token or ""))
        return MaskedExample(ids["input_ids"], [1] * len(ids["input_ids"]))
    tools = record.get("tools") or None
    if assistant_only:
        return assistant_mask(tokenizer, record["messages"], tools=tools, max_length=max_length)
    ids = render_ids(tokenizer, template_messages(record["messages"]), False, tools)
    return MaskedExample(ids, [1] * len(ids))
