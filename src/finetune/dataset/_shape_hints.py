"""What a row of no kind we read looks like, when it is a well-known shape (plain text, two
texts, StackExchange-paired's or Dolly's columns, a JSON file's wrapper object), and how to
write it as one we read; and the role a message's unknown one most likely means."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, get_args

from finetune._errors import did_you_mean
from finetune._words import counted
from finetune.dataset._community import ROLE_SYNONYMS
from finetune.dataset._functions import LEGACY_FUNCTIONS
from finetune.dataset._role_columns import as_turns_cure, renames_cure
from finetune.dataset._sources import reader_call
from finetune.dataset._tables import one_split
from finetune.types import Role

__all__ = ["IGNORED_KEYS", "not_records", "objects_only", "role_meant", "shape_hint"]

# keys some exports carry that mean nothing for training: dropped quietly
IGNORED_KEYS = frozenset({"parallel_tool_calls", "id", "metadata"})


def shape_hint(data: dict[str, Any]) -> str:
    """What a row of no kind we read looks like, when it is a well-known shape, and how to
    write it as one we read ("" for any other)."""
    keys = set(data) - IGNORED_KEYS
    if keys == {"text"}:
        return (
            "; a row of plain text is for language modeling, which finetune does not train: "
            "write each example as a question and its answer (messages, or prompt and "
            "completion); a conversation written out in a chat template (ChatML, Llama 2's or "
            "3's, Gemma's, Phi-3's, Zephyr's) or as guanaco's '### Human:' transcript is read "
            "once it has an assistant turn"
        )
    texts = sorted(k for k in keys if isinstance(data[k], str))
    if len(keys) == 2 and len(texts) == 2:
        asked, answer = sorted(texts, key=lambda key: key.lower() in _ANSWER_NAMES)
        if "completion" in keys:  # the one named so is the answer
            asked, answer = sorted(texts, key=lambda key: key == "completion")
        return _two_texts_hint(asked, answer)
    if {"question", "response_j", "response_k"} <= keys:
        renames = {"question": "prompt", "response_j": "chosen", "response_k": "rejected"}
        return (
            "; question, response_j and response_k are StackExchange-paired's preference "
            "shape (response_j the answer people preferred), read as prompt, chosen and "
            f"rejected, to train with method='dpo': {renames_cure(renames)}"
        )
    if {"instruction", "response"} <= keys <= {"instruction", "context", "response", "category"}:
        renames = {"instruction": "instruction", "context": "input", "response": "output"}
        return (
            "; instruction, context and response are Dolly's shape (databricks-dolly-15k), "
            "read as Alpaca's instruction, input and output: "
            f"{renames_cure(renames if 'context' in keys else _without(renames, 'context'))}"
        )
    if {"prompt", "completions", "labels"} <= keys and isinstance(data["labels"], list):
        return (
            "; prompt, completions and labels are TRL's stepwise supervision: a process "
            "reward model's data, each step of an answer labelled right or wrong, which "
            "finetune does not train; for SFT, keep the rows whose every step is labelled "
            "right, their steps joined as 'completion'"
        )
    pair = _question_and_answer(texts)
    if pair is not None and not any(isinstance(data[key], (list, dict)) for key in keys):
        return _question_hint(pair, keys, data)
    return _wrapper_hint(data, keys)


def _question_hint(pair: tuple[str, str], keys: set[str], data: dict[str, Any]) -> str:
    """How to read a question and its answer beside other columns: a context text with them
    as Alpaca's input (b-mc2/sql-create-context's schema); columns of numbers or flags left
    out; any other text, no guess (it may be what the answer needs)."""
    asked, answer = pair
    others = keys - {asked, answer, "system"}
    texts = sorted(key for key in others if isinstance(data[key], str))
    if not texts:
        return _two_texts_hint(asked, answer, left_out=sorted(others), data=data)
    if len(texts) > 1 or texts[0].lower() not in _CONTEXT_NAMES or others - set(texts):
        return ""
    system = {"system": "system"} if isinstance(data.get("system"), str) else {}
    renames = {**system, asked: "instruction", texts[0]: "input", answer: "output"}
    return (
        f"; {asked}, {texts[0]} and {answer} read as Alpaca's instruction, input (after the "
        f"instruction, a blank line between) and output: {renames_cure(renames)}"
    )


def _two_texts_hint(
    asked: str, answer: str, left_out: Sequence[str] = (), data: dict[str, Any] | None = None
) -> str:
    """How a question and its answer are named to be read; ``left_out``, the row's other
    columns, which the cure does not keep (a ``system`` text in ``data`` it keeps)."""
    told = " and ".join(
        f"{old!r} to {new!r}" for old, new in ((asked, "user"), (answer, "assistant"))
    )
    if left_out:
        told += f", leaving out {', '.join(repr(key) for key in left_out)}"
    cure = as_turns_cure(asked, answer)
    if data is not None and isinstance(data.get("system"), str):
        cure = renames_cure({"system": "system", asked: "user", answer: "assistant"})
    return (
        f"; a row of two texts is read as a question and its answer when they are named "
        f"user and assistant, a chat turn each, which every backend trains on: rename "
        f"{told} ({cure}); or prompt and completion, a completion "
        "pair (for a base model without a chat template: OpenAI's chat models and "
        "Fireworks train chat only)"
    )


def _question_and_answer(texts: list[str]) -> tuple[str, str] | None:
    """The two of a row's text columns named as a question and as its answer (HelpSteer's
    prompt and response, beside their scores), when just one of each is."""
    asked = [key for key in texts if key.lower() in _QUESTION_NAMES]
    answers = [key for key in texts if key.lower() in _ANSWER_NAMES]
    return (asked[0], answers[0]) if len(asked) == len(answers) == 1 else None


def _without(renames: dict[str, str], key: str) -> dict[str, str]:
    return {old: new for old, new in renames.items() if old != key}


def _wrapper_hint(data: dict[str, Any], keys: set[str]) -> str:
    """A row holding a list of objects (``{"data": [...]}``): a JSON file's object holding
    the examples, read as one row by ``from_jsonl``."""
    if "prompt" in keys or "completion" in keys:  # a broken pair, told as one
        return ""
    lists = [k for k in keys if data[k] and objects_only(data[k])]
    if not lists:
        return ""
    turns = _turns_named(lists[0], data[lists[0]])
    if turns:
        return turns
    held = counted(len(data[lists[0]]), "object")
    return (
        f"; its {lists[0]!r} holds a list of {held}, as a JSON file's object "
        "holding the examples does: Dataset.from_json reads such a file as that list "
        "(finetune's commands do)"
    )


def _turns_named(key: str, items: list[dict[str, Any]]) -> str:
    """A list of a conversation's turns under another name (lmsys-chat-1m's
    ``conversation``, a ``dialog``): the rename that reads it ("" for other objects)."""
    if all({"role", "content"} <= item.keys() for item in items):
        named = "messages"
    elif all({"from", "value"} <= item.keys() for item in items):
        named = "conversations"  # ShareGPT's turns
    else:
        return ""
    return (
        f"; its {key!r} holds the turns of a conversation, read under the name {named!r}: "
        f"rename it ({renames_cure({key: named})})"
    )


def objects_only(value: Any) -> bool:
    """Whether ``value`` is a JSON array of objects only (an empty one too)."""
    return value.__class__ is list and all(item.__class__ is dict for item in value)


# the column names that usually hold the answer of a question-and-answer row
_ANSWER_NAMES = frozenset({"answer", "response", "output", "target", "reply", "label", "a"})
_QUESTION_NAMES = frozenset({"prompt", "question", "query", "instruction", "input", "q"})
_CONTEXT_NAMES = frozenset({"context", "passage", "document", "schema"})


def role_meant(role: Any, message: Any = None) -> str:
    """`` (did you mean 'user'?)`` for ``User``, ShareGPT's ``human`` or OpenAI's
    ``developer``; OpenAI's legacy ``function`` turn told how it is read; a ``message`` of
    ShareGPT's keys (no role) told the rename that reads it; else nothing."""
    if role is None and isinstance(message, dict) and {"from", "value"} <= message.keys():
        return (
            ": 'from' and 'value' are ShareGPT's keys, read in a list named 'conversations' "
            f"({renames_cure({'messages': 'conversations'})})"
        )
    if role == "function":
        return f" ({LEGACY_FUNCTIONS})"
    if not isinstance(role, str):
        return ""
    return did_you_mean(role, sorted(get_args(Role)), ROLE_SYNONYMS)


def not_records(value: Any) -> str | None:
    """What ``value`` is, and what to give instead, where it is no list of records: iterating
    it would give a path's characters, one record's keys (a model's fields), a table's
    columns. ``None`` for an iterable of what may be records."""
    if isinstance(value, os.PathLike) or (isinstance(value, str) and _a_path(value)):
        return f" (a file's path): {reader_call(value)} reads it"
    if hasattr(value, "columns"):  # polars, pyarrow
        return ": a table's rows as dicts (polars: frame.to_dicts(); pyarrow: table.to_pylist())"
    if isinstance(value, Mapping) and type(value).__name__.endswith("DatasetDict"):
        return one_split(value)
    if isinstance(value, Mapping) and _columns(value):
        return " of columns: its rows, [dict(zip(columns, row)) for row in zip(*columns.values())]"
    if isinstance(value, Mapping | str | bytes) or hasattr(value, "model_dump"):
        return ": Dataset.from_records([record]) for one"
    return None if isinstance(value, Iterable) else ""


def _columns(value: Mapping[str, Any]) -> bool:
    """Whether a dict holds columns (lists of one length, of the rows' values), not a record
    (whose lists hold messages: dicts)."""
    lists = [v for v in value.values() if isinstance(v, list)]
    if not value or len(lists) < len(value) or len({len(v) for v in lists}) != 1:
        return False
    if not lists[0]:  # {"messages": []}: a record with nothing in it, no table of no rows
        return False
    return not any(isinstance(item, Mapping) for column in lists for item in column)


def _a_path(text: str) -> bool:
    """Whether a text given for records names a file (it has a suffix, or is there)."""
    return "\n" not in text and (bool(os.path.splitext(text)[1]) or os.path.exists(text))
