"""One model asked one prompt (``ModelRef.ask``): a look at what it answers, asked as
``ft.evaluate`` asks it, before a whole evaluation."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from finetune._loop import run_to_the_end
from finetune.evaluation._checks import (
    made_predictor,
    refuse_predictors_without_images,
    refuse_predictors_without_tools,
)
from finetune.evaluation._lineage import model_of_job, note_how_served
from finetune.evaluation._predictors import (
    TruncatedReply,
    close_predictors,
    reply_of,
    retrying_a_model,
)
from finetune.evaluation._prompts import (
    Messages,
    build_prompt,
    example_tools,
    sent,
    shot_turns,
    split_example,
)
from finetune.types import (
    ChatExample,
    CompletionExample,
    Example,
    ModelRef,
    PreferenceExample,
)

__all__ = ["aask", "ask"]

log = logging.getLogger("finetune")
EXAMPLE_TYPES = (ChatExample, CompletionExample, PreferenceExample)

ATTEMPTS = 5  # as many tries as ft.evaluate's max_attempts gives each prediction


def ask(
    model: ModelRef,
    prompt: str | Sequence[Any] | Example,
    tools: Sequence[Any] | None,
    options: Mapping[str, Any],
) -> str:
    """The synchronous form of ``aask`` (works inside a running event loop too)."""
    return run_to_the_end(lambda: aask(model, prompt, tools, options))


async def aask(
    model: ModelRef,
    prompt: str | Sequence[Any] | Example,
    tools: Sequence[Any] | None,
    options: Mapping[str, Any],
) -> str:
    """``model``'s reply to ``prompt`` (an example: to its prompt, as ``ft.evaluate`` asks
    it), its few-shot examples before it, retried on a rate limit or a server's error as an
    evaluation's predictions are."""
    example, messages = _asked_turns(prompt, tools)
    model = await asyncio.to_thread(model_of_job, str(model), model, named=False)  # registry
    # an error of ours names the model itself: no note repeating it
    predictor = made_predictor(model, dict(options), "ask's options", str(model), named=False)
    try:
        asking = {str(model): (predictor, model.few_shot)}
        refuse_predictors_without_tools(asking, [example])
        refuse_predictors_without_images(asking, [example])
        sent_messages = build_prompt(messages, shot_turns(model.few_shot))
        offered = example_tools(example)
        try:
            async for attempt in retrying_a_model(ATTEMPTS):
                with attempt:
                    reply = await reply_of(predictor, sent_messages, offered)
        except Exception as error:
            note_how_served(error, str(model), model.note)
            raise
        if isinstance(reply, TruncatedReply):
            longer = _how_longer(reply.limit, bool(model.few_shot))
            log.warning("the reply stopped at %s, cut short: %s", reply.limit, longer)
        return reply
    finally:
        await close_predictors([predictor])


def _how_longer(limit: str, shots: bool) -> str:
    """How a reply cut at ``limit`` gets longer: its setting raised (``max_tokens=256``), or,
    where the model's context cut it, a shorter prompt or another model."""
    setting, is_setting, _ = limit.partition("=")
    if is_setting:
        return f"raise {setting}"
    fewer = " (fewer shots)" if shots else ""
    return f"shorten the prompt{fewer}, or ask a model with a longer context"


def _asked_turns(
    prompt: str | Sequence[Any] | Example, tools: Sequence[Any] | None
) -> tuple[Example, Messages]:
    """The example asked about and the turns sent: an example's prompt (the turns before its
    answer, as ``ft.evaluate`` sends them), or the conversation given."""
    if isinstance(prompt, EXAMPLE_TYPES):
        if tools is not None:
            raise ValueError("an example offers its own tools: give tools= with a prompt alone")
        return prompt, split_example(prompt)[0]
    conversation = _conversation(prompt, tools)
    return conversation, [sent(message) for message in conversation.messages]


def _conversation(prompt: str | Sequence[Any], tools: Sequence[Any] | None) -> ChatExample:
    """The turns asked (one user turn for text) and the tools offered, read as a chat
    example's are: a conversation ends on the turn the model answers, never its own."""
    if isinstance(prompt, str):
        prompt = [{"role": "user", "content": prompt}]
    elif not isinstance(prompt, Sequence) or not prompt:
        raise TypeError(
            "prompt is a user turn's text, or a conversation's turns as dicts "
            f"([{{'role': 'user', 'content': ...}}]), not {prompt!r:.60}"
        )
    example = ChatExample.model_validate({"messages": list(prompt), "tools": tools})
    if example.messages[-1].role == "assistant":
        raise ValueError(
            "the conversation ends with the assistant's turn: end it with the turn the model "
            "answers (the user's, or a tool's result)"
        )
    return example
