"""Model-side checks that ``validate()`` runs for a local model: what the worker would meet.

Each record is rendered with the model's own chat template and masked the way training masks
it, so a template that fails, a turn that cannot be found, an example longer than the model's
context or text that spells a control token is reported on its line before a job starts.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

from finetune.backends.hf._config import adapter_settings
from finetune.backends.hf._inputs import needs_trust, untrusted_model
from finetune.backends.hf._masks import MaskProblem, encode_record, render_ids, text_ids
from finetune.backends.hf._merge import adapter_base
from finetune.dataset._formats import REASONING_KEYS
from finetune.dataset._tool_rows import MESSAGE_LIST_KEYS
from finetune.validation._rules import Issue, first_tool_use
from finetune.validation._tokens import text_of

__all__ = ["ModelChecks", "config_context", "model_context", "writes_reasoning", "writes_tools"]


def model_context(path: str, trust_remote_code: bool = False, spec: str = "") -> int | None:
    """The longest sequence the model was built for (``max_position_embeddings``), if known
    (a LoRA adapter the worker would train further: its base's); a model whose config is
    code of its own, without ``trust_remote_code``, is refused (``spec``: the model as the
    user named it)."""
    try:
        base = adapter_base(path) if adapter_settings(path) is not None else None
    except (OSError, ValueError, KeyError):  # an adapter_config.json the worker reports
        return None
    try:
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(base or path, trust_remote_code=trust_remote_code)
    except Exception as exc:  # anything else wrong with the model, the worker reports
        if needs_trust(exc):
            raise untrusted_model(spec or path, adapter_of=base) from None
        return None
    return config_context(config)


def config_context(config: Any) -> int | None:
    """A transformers config's context (``max_position_embeddings``, its text model's in a
    multimodal one), if it names one."""
    text_config = config.get_text_config() if hasattr(config, "get_text_config") else config
    value = getattr(text_config, "max_position_embeddings", None)
    return int(value) if isinstance(value, int) and value > 0 else None


def writes_tools(tokenizer: Any, chat_template: str | None = None) -> bool:
    """Whether the chat template (``chat_template``, else the tokenizer's) writes tool
    definitions: a conversation rendered with a probe tool differs from the same one
    without it, and names it."""
    turn = [{"role": "user", "content": "x"}]
    try:
        plain = tokenizer.apply_chat_template(turn, tokenize=False, chat_template=chat_template)
        offered = tokenizer.apply_chat_template(
            turn, tools=[_PROBE], tokenize=False, chat_template=chat_template
        )
    except Exception:  # a template that fails on tools does not take them
        return False
    return bool(offered != plain and "finetune_probe" in offered)


def _first_reasoning(data: dict[str, Any]) -> str | None:
    """The field of the first chain of thought in a record, a chat's or a preference pair's
    (``None``: it has none)."""
    for name in MESSAGE_LIST_KEYS:
        messages = data.get(name)
        for index, message in enumerate(messages if isinstance(messages, list) else ()):
            for key in REASONING_KEYS:
                if isinstance(message, dict) and message.get(key) is not None:
                    return f"{name}[{index}].{key}"
    return None


def writes_reasoning(tokenizer: Any) -> bool:
    """Whether the chat template writes an assistant turn's ``reasoning_content`` (Qwen 3's
    and DeepSeek's do, in a think block): a conversation ending on a turn with a probe
    reasoning shows it."""
    turns = [
        {"role": "user", "content": "x"},
        {"role": "assistant", "content": "y", "reasoning_content": "finetune_probe_reasoning"},
    ]
    try:
        rendered = tokenizer.apply_chat_template(turns, tokenize=False)
    except Exception:  # a template that fails on it does not take it
        return False
    return "finetune_probe_reasoning" in str(rendered)


_NO_REASONING_IN_TEMPLATE = (
    "the model's chat template does not write reasoning_content, so the chain of thought "
    "would never be trained: use a model whose template does (Qwen 3, DeepSeek R1 and its "
    "distills ...), give one that does as Tuner('hf', chat_template=...) (finetune: --option "
    "chat_template=...), or write the reasoning into content as the model's own format spells "
    "it"
)


_NO_END_OF_TURN = (
    "the chat template ends this assistant turn with no end-of-turn token, so the model "
    "never learns to stop: its answers run on to max_new_tokens; give Tuner('hf', "
    "chat_template=...) one that closes each turn with a special token (this tokenizer's "
    "eos_token is {eos!r})"
)


class ModelChecks:
    """``Target.extra_checks`` for one tokenizer and the job options that shape training."""

    def __init__(
        self,
        tokenizer: Any,
        *,
        assistant_only: bool | None,
        max_length: int,
        context: int | None,
    ) -> None:
        self.tokenizer = tokenizer
        self.assistant_only = assistant_only
        self.max_length = max_length
        self.context = context
        specials = getattr(tokenizer, "all_special_tokens", []) or []
        self.specials = sorted({token for token in specials if len(token) > 1})

    def __call__(self, data: dict[str, Any]) -> Iterator[Issue]:
        from finetune.dataset._formats import parse_example, to_format

        try:
            example = parse_example(data)
        except Exception:  # the built-in rules report a malformed record
            return
        record = to_format(example, "hf")
        yield from self._special_tokens(record)
        reasoning = _first_reasoning(data)
        if reasoning is not None and not self.renders_reasoning:
            yield ("unsupported_reasoning", "error", _NO_REASONING_IN_TEMPLATE, reasoning)
            return
        if example.kind == "preference":
            if place := first_tool_use(data):
                yield ("unsupported_tools", "error", _DPO_TEXT_ONLY, place)
                return
            yield from self._renders(record)
            return
        if example.kind == "chat" and getattr(self.tokenizer, "chat_template", None) is None:
            return  # fit() refuses the model itself, once
        if record.get("tools") and not self.renders_tools:
            yield ("unsupported_tools", "error", _NO_TOOLS_IN_TEMPLATE, "tools")
            return
        yield from self._encodes(record, example.kind)

    @functools.cached_property
    def renders_reasoning(self) -> bool:
        """Whether the chat template writes an assistant turn's reasoning."""
        return writes_reasoning(self.tokenizer)

    @functools.cached_property
    def renders_tools(self) -> bool:
        """Whether the chat template writes tool definitions."""
        return writes_tools(self.tokenizer)

    def _assistant_only(self, kind: str) -> bool:
        return (
            kind in ("chat", "completion") if self.assistant_only is None else self.assistant_only
        )

    def _encodes(self, record: dict[str, Any], kind: str) -> Iterator[Issue]:
        try:
            assistant_only = self._assistant_only(kind)
            encoded = encode_record(
                self.tokenizer,
                record,
                kind,
                assistant_only=assistant_only,
                max_length=self.max_length,
            )
        except MaskProblem as problem:
            if problem.code != "no_trainable_tokens":  # no_trainable_turns reports that one
                yield (problem.code, "error", str(problem), "messages")
            return
        except Exception as exc:
            yield ("template_error", "error", _template_failure(exc), "messages")
            return
        yield from self._within_context(len(encoded.input_ids))
        if encoded.unended_turn is not None:
            yield (
                "no_end_of_turn",
                "warning",
                _NO_END_OF_TURN.format(eos=getattr(self.tokenizer, "eos_token", None)),
                f"messages[{encoded.unended_turn}]",
            )
        if not any(encoded.mask[: self.max_length]):
            yield (
                "no_trainable_tokens",
                "warning",
                f"no trained token is left after truncation to max_length={self.max_length}; "
                "training skips this example",
                None,
            )

    def _renders(self, record: dict[str, Any]) -> Iterator[Issue]:
        """A preference pair rendered with the chat template, each answer after the prompt;
        measured in tokens only where it may be long enough to be cut or past the context."""
        if getattr(self.tokenizer, "chat_template", None) is None:
            return
        texts: list[str] = []
        for side in ("chosen", "rejected"):
            try:
                rendered = self.tokenizer.apply_chat_template(
                    record["prompt"] + record[side], tokenize=False
                )
            except Exception as exc:
                yield ("template_error", "error", _template_failure(exc), side)
                return
            texts.append(str(rendered))
        longest = max(len(text.encode()) for text in texts)
        if longest + _TOKENS_PAST_BYTES > min(self.max_length, self.context or self.max_length):
            yield from self._pair_lengths(record["prompt"], texts)

    def _pair_lengths(self, prompt: list[Any], texts: list[str]) -> Iterator[Issue]:
        """A preference pair as TRL's DPO tokenizes it: the prompt with the generation prompt,
        and the prompt with each answer (``texts``), the answers starting where those part."""
        try:
            opening = render_ids(self.tokenizer, prompt, generation_prompt=True)
        except Exception as exc:
            yield ("template_error", "error", _template_failure(exc), None)
            return
        sides = [text_ids(self.tokenizer, text) for text in texts]
        yield from self._within_context(max(len(ids) for ids in sides))
        shared = min(_common_prefix(opening, ids) for ids in sides)
        if shared >= self.max_length:  # TRL drops the pair: no token of either answer is left
            yield (
                "no_trainable_tokens",
                "warning",
                f"the prompt alone is {shared} tokens, which fills max_length={self.max_length}: "
                "no token of either answer is left after truncation, and training drops this pair",
                None,
            )

    def _within_context(self, tokens: int) -> Iterator[Issue]:
        """An error when an example is longer than the model's context and ``max_length``
        would train it past that context."""
        if self.context is None or self.max_length <= self.context or tokens <= self.context:
            return
        kept = "all of them" if tokens <= self.max_length else f"the first {self.max_length}"
        yield (
            "too_many_tokens",
            "error",
            f"{tokens} tokens, over the model's context of {self.context}, and "
            f"max_length={self.max_length} would train {kept}: set max_length="
            f"{self.context} or lower to cut it at the context, or shorten the example",
            None,
        )

    def _special_tokens(self, record: dict[str, Any]) -> Iterator[Issue]:
        if not self.specials:
            return
        for field, text in _texts(record):
            found = [token for token in self.specials if token in text]
            if found:
                yield (
                    "special_token_in_text",
                    "warning",
                    f"the text spells the tokenizer's control token(s) {found}, which would "
                    "be read as real turn markers",
                    field,
                )


_PROBE = {
    "type": "function",
    "function": {"name": "finetune_probe", "parameters": {"type": "object", "properties": {}}},
}
_NO_TOOLS_IN_TEMPLATE = (
    "the model's chat template does not write tool definitions, so the model would never see "
    "them: use a model whose template takes tools (Qwen 2.5, Llama 3.1, SmolLM3 ...), give "
    "one that does as Tuner('hf', chat_template=...) (finetune: --option chat_template=...), "
    "or remove the tools"
)
_DPO_TEXT_ONLY = (
    "DPO on the hf backend trains text turns only: this pair's tools and tool calls would be "
    "dropped; remove them, or train it on a hosted backend that takes tools"
)


def _texts(record: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for key in ("prompt", "completion"):
        if isinstance(record.get(key), str):
            yield key, record[key]
    for key in ("messages", "prompt", "chosen", "rejected"):
        value = record.get(key)
        if isinstance(value, list):
            for index, message in enumerate(value):
                yield f"{key}[{index}].content", text_of(message.get("content"))


# A rendered text is tokenized whole (no special tokens added): each token holds a byte or more
# of it, but for a word-start marker a SentencePiece tokenizer may add. A few to spare.
_TOKENS_PAST_BYTES = 8


def _common_prefix(ids: list[int], other: list[int]) -> int:
    """How many leading tokens two sequences share."""
    return next(
        (at for at, pair in enumerate(zip(ids, other, strict=False)) if pair[0] != pair[1]),
        min(len(ids), len(other)),
    )


def _template_failure(exc: Exception) -> str:
    return f"the model's chat template cannot render this example ({type(exc).__name__}: {exc})"
