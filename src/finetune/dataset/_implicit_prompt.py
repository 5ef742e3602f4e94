"""TRL's implicit-prompt preference rows (``trl-lib/ultrafeedback_binarized``, and most
preference sets on the Hub): ``chosen`` and ``rejected`` are each the whole conversation, and
the prompt is the turns both begin with. Read as our explicit pair, as TRL's own
``maybe_extract_prompt`` splits them: also where a text ``prompt`` stands beside the two
conversations (``HuggingFaceH4/ultrafeedback_binarized``), which TRL reads from them too; and
Anthropic's HH-RLHF rows, whose ``chosen`` and ``rejected`` are transcripts (``"\n\nHuman: ...
\n\nAssistant: ..."``), read as those conversations. An error in one is named by the row's
own fields. What a pair's prompt or answer that is not one holds, and the way to one, is
said here too (``not_messages``), for parsing and validation alike."""

from __future__ import annotations

import re
from typing import Any

from finetune._words import json_kind, number_as_text
from finetune.dataset._community import transcript_turns
from finetune.dataset._unknown_keys import prompt_named_otherwise

__all__ = [
    "explicit_pair",
    "explicit_pair_field",
    "is_implicit_pair",
    "not_messages",
    "shared_turns",
    "why_no_prompt",
]

_EXPLICIT_KEYS = frozenset({"input", "preferred_output", "kind"})
_PAIR_FIELD = re.compile(r"(prompt|input|chosen|rejected)(?:\[(\d+)\])?")


def is_implicit_pair(data: dict[str, Any]) -> bool:
    """A row with ``chosen`` and ``rejected`` both lists, and no prompt of its own (or one
    in text: the conversations' first turns say it as messages); or both HH-RLHF transcripts."""
    chosen = data.get("chosen")
    if chosen.__class__ is str:
        return _is_transcript_pair(data)
    if chosen.__class__ is not list or data.get("rejected").__class__ is not list:
        return False  # first: a chat row (every row, most often) stops here
    return not _EXPLICIT_KEYS & data.keys() and isinstance(data.get("prompt", ""), str)


_TURN = re.compile(r"\n\n(Human|Assistant):[ ]?")


def _is_transcript_pair(data: dict[str, Any]) -> bool:
    """HH-RLHF's row: ``chosen`` and ``rejected`` transcripts that begin with a human turn
    and hold an assistant turn, and no prompt of its own."""
    if "prompt" in data or _EXPLICIT_KEYS & data.keys():
        return False
    return all(_is_transcript(data.get(side)) for side in ("chosen", "rejected"))


def _is_transcript(text: Any) -> bool:
    return (
        isinstance(text, str)
        and text.lstrip("\n").startswith("Human:")
        and "\n\nAssistant:" in text
    )


def _transcript_turns(text: str) -> list[dict[str, str]]:
    """``"\n\nHuman: q\n\nAssistant: a"`` as ``[{"role": "user", "content": "q"}, ...]``."""
    return transcript_turns("\n\n" + text.lstrip("\n"), _TURN)


def _as_lists(data: dict[str, Any]) -> dict[str, Any]:
    """An HH-RLHF row with its transcripts as lists of messages; any other row as it is."""
    if data.get("chosen").__class__ is not str or not _is_transcript_pair(data):
        return data
    turns = {side: _transcript_turns(data[side]) for side in ("chosen", "rejected")}
    return {**data, **turns}


def shared_turns(data: dict[str, Any]) -> int:
    """How many first turns ``chosen`` and ``rejected`` have in common."""
    shared = 0
    for chosen, rejected in zip(data["chosen"], data["rejected"], strict=False):
        if chosen != rejected:
            break
        shared += 1
    return shared


def _split_at(data: dict[str, Any]) -> int | None:
    """Where the prompt ends, when each side keeps an answer after it (else ``None``:
    validation says what is missing)."""
    if not is_implicit_pair(data):
        return None
    data = _as_lists(data)
    shared = shared_turns(data)
    if shared == 0 or shared in (len(data["chosen"]), len(data["rejected"])):
        return None
    return shared


def explicit_pair(data: dict[str, Any]) -> dict[str, Any]:
    """An implicit-prompt row as ours: ``prompt`` the shared turns, ``chosen`` and
    ``rejected`` what follows them. Any other row (one that cannot be split, too) as it is."""
    pair = _as_lists(data)
    shared = _split_at(pair)
    if shared is None:
        return data
    return {
        **pair,
        "prompt": pair["chosen"][:shared],
        "chosen": pair["chosen"][shared:],
        "rejected": pair["rejected"][shared:],
    }


def explicit_pair_field(field: str | None, data: dict[str, Any]) -> str | None:
    """A field of ``explicit_pair(data)`` (``chosen[0].content``) as the row spells it
    (``chosen[2].content``); the prompt's turns are the start of ``chosen``."""
    shared = _split_at(data)
    found = _PAIR_FIELD.fullmatch(field.split(".")[0]) if field else None
    if field is None or shared is None or found is None:
        return field
    key, index = found.group(1), found.group(2)
    if data["chosen"].__class__ is str:  # a transcript: its turns have no field of their own
        return "rejected" if key == "rejected" else "chosen"
    rest = field[found.end() :]
    if key in ("prompt", "input"):
        return f"chosen{rest}" if index is None else f"chosen[{index}]{rest}"
    return f"{key}{rest}" if index is None else f"{key}[{int(index) + shared}]{rest}"


def why_no_prompt(record: dict[str, Any]) -> str:
    """Why a pair without a prompt was not read as TRL's implicit-prompt pair, and the cure."""
    record = _as_lists(record)
    chosen, rejected = record.get("chosen"), record.get("rejected")
    cure = "give the conversation so far as 'prompt', and each answer alone"
    if not (isinstance(chosen, list) and isinstance(rejected, list)):
        return prompt_named_otherwise(record.keys()) or (
            f"{cure} (a prompt is read from chosen and rejected only when both are lists of "
            "messages, the turns they begin with: TRL's implicit prompt)"
        )
    if shared_turns(record) == 0:
        why = "they share no first turn"
    else:
        why = "nothing is left of one of them after the turns they share"
    return (
        "chosen and rejected are read as whole conversations that begin with the prompt "
        f"(TRL's implicit prompt), but {why}; {cure}"
    )


def not_messages(path: str, value: Any, record: dict[str, Any], *, text_allowed: bool) -> str:
    """Why a pair's prompt or answer is not one: what the row holds there, the shape meant,
    and the way from the near misses (OpenAI's ``input`` object, a message not in a list)."""
    wanted = "a non-empty list of messages" + (" or a string" if text_allowed else "")
    if path == "input.messages" and not isinstance(record.get("input"), dict):
        held = json_kind(record["input"]) if "input" in record else "missing"
        wanted = 'an object holding the prompt\'s messages, {"messages": [...]}'
        return f"input must be {wanted}, not {held}"
    if value is None:
        *outer, key = path.split(".")  # input.messages is in input
        holder = record.get(outer[0]) if outer else record
        given = "null" if isinstance(holder, dict) and key in holder else "missing"
    else:
        as_text = number_as_text(value) if text_allowed else ""
        given = "an empty array" if value == [] else json_kind(value) + as_text
    problem = f"{path} must be {wanted}, not {given}"
    if isinstance(value, dict) and "messages" in value:
        return (
            f'{problem}: {{"messages": [...]}} is OpenAI\'s input, whose answers are '
            f"preferred_output and non_preferred_output; beside chosen and rejected, {path} is "
            "the list of messages itself"
        )
    if isinstance(value, dict) and "role" in value:
        return f'{problem}: one message goes in a list, [{{"role": ...}}]'
    if path == "prompt" and given == "missing":
        return f"no prompt: {why_no_prompt(record)}"
    return problem
