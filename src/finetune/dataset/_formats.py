"""Reading each provider's JSONL shape into our examples, and writing them back out."""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, Literal, get_args

from pydantic import TypeAdapter, ValidationError

from finetune._errors import DatasetError, UnsupportedFeature
from finetune._words import number_as_text
from finetune.dataset._api_shapes import api_field, api_record, is_api_shape, is_gemini
from finetune.dataset._community import (
    MESSAGES_FIELD,
    community_field,
    community_record,
    is_alpaca,
    is_sharegpt,
    is_transcript_text,
)
from finetune.dataset._functions import (
    function_field,
    functions_as_tools,
    is_function_row,
)
from finetune.dataset._implicit_prompt import (
    explicit_pair,
    explicit_pair_field,
    is_implicit_pair,
    not_messages,
    why_no_prompt,
)
from finetune.dataset._read_words import in_json_words
from finetune.dataset._role_columns import (
    is_role_columns,
    role_columns_field,
    role_columns_record,
)
from finetune.dataset._shape_hints import IGNORED_KEYS, role_meant, shape_hint
from finetune.dataset._tool_rows import arguments_as_text, lists_from_text
from finetune.dataset._turn_pairs import is_turn_pairs, turn_pairs_field, turn_pairs_record
from finetune.dataset._unknown_keys import columns_kept, unknown_key_message
from finetune.types import (
    EXAMPLE_KINDS,
    ChatExample,
    CompletionExample,
    Example,
    ExampleKind,
    Message,
    PreferenceExample,
)

__all__ = [
    "FUNCTION_KEYS",
    "IGNORED_KEYS",
    "KNOWN_KEYS",
    "MESSAGE_KEYS",
    "MESSAGE_READ_KEYS",
    "OUTPUT_FORMATS",
    "REASONING_KEYS",
    "TOOL_CALL_KEYS",
    "TURNS_DIGEST_SIZE",
    "OutputFormat",
    "Turns",
    "as_chat_record",
    "chat_field",
    "check_format",
    "detect_kind",
    "formatter",
    "is_empty",
    "parse_example",
    "repeats",
    "split_turns",
    "to_format",
    "turns_digest",
]

OutputFormat = Literal["native", "openai", "mistral", "hf"]
OUTPUT_FORMATS: frozenset[str] = frozenset(get_args(OutputFormat))
_EXAMPLE: TypeAdapter[Example] = TypeAdapter(Example)
KNOWN_KEYS: dict[str, frozenset[str]] = {
    "chat": frozenset({"kind", "messages", "tools"}),
    "completion": frozenset({"kind", "prompt", "completion"}),
    "preference": frozenset(
        {
            "kind",
            "input",
            "chosen",
            "rejected",
            "prompt",
            "preferred_output",
            "non_preferred_output",
            "tools",
        }
    ),
}
MESSAGE_KEYS = frozenset(
    {"role", "content", "reasoning_content", "name", "tool_calls", "tool_call_id", "weight"}
)
REASONING_KEYS = ("reasoning_content", "reasoning")  # ours; Together's and OpenRouter's
MESSAGE_READ_KEYS = MESSAGE_KEYS | {"reasoning"}  # read as reasoning_content
TOOL_CALL_KEYS = frozenset({"id", "type", "function"})
FUNCTION_KEYS = frozenset({"name", "arguments"})  # of a tool call's function


def is_empty(value: Any) -> bool:
    """``None``, ``""``, ``[]`` or ``{}``: an unknown key holding this is dropped, not refused
    (``ChatCompletionMessage.model_dump()`` gives ``"refusal": None``, ``"audio": None`` ...)."""
    return value is None or (isinstance(value, (str, list, dict)) and not value)


def detect_kind(data: dict[str, Any], *, loose: bool = False) -> ExampleKind | None:
    """Guess the example kind from a raw record's keys (any supported provider shape).

    ``loose`` takes a record with a prompt *or* a completion as a (broken) completion example,
    so validation can say what is wrong with it.
    """
    kind = data.get("kind")
    if kind in EXAMPLE_KINDS:
        return kind  # type: ignore[no-any-return]
    if "preferred_output" in data or "chosen" in data:
        return "preference"
    if "messages" in data or _conversational_completion(data):
        return "chat"
    if is_sharegpt(data) or is_alpaca(data) or is_gemini(data) or is_role_columns(data):
        return "chat"
    if is_turn_pairs(data):
        return "chat"
    if is_transcript_text(data):
        return "chat"
    has_prompt, has_completion = "prompt" in data, "completion" in data
    if has_prompt and has_completion:
        return "completion"
    if loose and (has_prompt or has_completion) and not shape_hint(data):
        return "completion"  # a broken one; a misnamed pair is told how to name it
    return None


def _conversational_completion(data: dict[str, Any]) -> bool:
    """TRL's conversational prompt-completion row: no ``messages``, and ``prompt`` and
    ``completion`` both lists of messages (the conversation so far, and the answer)."""
    if "messages" in data:
        return False
    return data.get("prompt").__class__ is list and data.get("completion").__class__ is list


def as_chat_record(data: dict[str, Any]) -> dict[str, Any]:
    """A chat record in another tool's shape as ours. ShareGPT's and Alpaca's: see
    ``_community``. TRL's conversational prompt-completion: ``messages`` is the prompt then
    the completion; as TRL trains on the completion only, an assistant turn of the prompt
    gets ``weight: 0`` (kept as context, not trained). TRL's implicit-prompt preference
    pair: see ``_implicit_prompt``; OpenAI's legacy ``functions``: see ``_functions``. Any
    other record is returned as it is."""
    if len(data) == 1 and "messages" in data:  # the usual row: no other shape to look for
        return arguments_as_text(lists_from_text(data))
    if is_implicit_pair(data):
        return arguments_as_text(lists_from_text(explicit_pair(data)))
    if is_function_row(data):
        return arguments_as_text(functions_as_tools(data))
    if is_role_columns(data):
        return arguments_as_text(lists_from_text(role_columns_record(data)))
    if is_turn_pairs(data):
        return arguments_as_text(lists_from_text(turn_pairs_record(data)))
    if not _conversational_completion(data):
        return arguments_as_text(lists_from_text(community_record(api_record(data))))
    context = [
        {**m, "weight": 0}
        if isinstance(m, dict) and m.get("role") == "assistant" and "weight" not in m
        else m
        for m in data["prompt"]
    ]
    rest = {k: v for k, v in data.items() if k not in ("prompt", "completion")}
    return arguments_as_text(lists_from_text({**rest, "messages": [*context, *data["completion"]]}))


def chat_field(field: str | None, data: dict[str, Any]) -> str | None:
    """A field of ``as_chat_record(data)`` (``messages[3].content``) as the row spells it
    (``completion[1].content``, ``conversations[3].value``, ``chosen[2].content``)."""
    if is_implicit_pair(data):
        return explicit_pair_field(field, data)
    if is_function_row(data):
        return function_field(field, data)
    if is_api_shape(data):
        return api_field(field, data)
    if is_role_columns(data):
        return role_columns_field(field, data)
    if is_turn_pairs(data):
        return turn_pairs_field(field, data)
    if field is None or not _conversational_completion(data):
        return community_field(field, data)
    found = MESSAGES_FIELD.match(field)
    if found is None:
        return field
    rest, asked = field[found.end() :], found.group(1)
    prompt = len(data["prompt"])
    if asked is None:
        return f"completion{rest}"
    index = int(asked)
    return f"prompt[{index}]{rest}" if index < prompt else f"completion[{index - prompt}]{rest}"


_PROMPT_KEYS = frozenset({"prompt", "input", "preferred_output"})
_PAIR_PARTS = frozenset(
    {"prompt", "chosen", "rejected", "input.messages", "preferred_output", "non_preferred_output"}
)


def parse_example(
    data: dict[str, Any],
    *,
    kind: ExampleKind | None = None,
    file: str | None = None,
    line: int | None = None,
) -> Example:
    """Turn one raw record (ours, OpenAI's, Mistral's or TRL's shape) into a typed example.

    Raises ``DatasetError`` naming the file, line and field on any problem.
    """
    own = detect_kind(data)
    if kind is not None and own is not None and own != kind:
        raise DatasetError(
            f"a {own} example among {kind} examples: a dataset holds one kind (the kind= it was "
            "given, else its first row's); keep each kind in its own file",
            file=file,
            line=line,
        )
    found = kind or own
    if found is None:
        raise DatasetError(
            "cannot tell the example kind: expected 'messages' (chat), 'prompt'+'completion' "
            f"or 'chosen'/'preferred_output' (preference){shape_hint(data)}",
            file=file,
            line=line,
        )
    try:
        read = data if found == "completion" else as_chat_record(data)  # as validated
        if found == "preference" and not _PROMPT_KEYS & read.keys() and "chosen" in read:
            message = f"no prompt: {why_no_prompt(data)}"
            raise DatasetError(message, file=file, line=line, field="prompt")
        native = _to_native(read, found)
        return _EXAMPLE.validate_python(native)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = chat_field(_json_path(_map_location(first["loc"], data, found)), data)
        raise DatasetError(
            _message(first, field, found, data, file), file=file, line=line, field=field
        ) from None
    except (TypeError, AttributeError) as exc:
        raise DatasetError(f"malformed {found} example: {exc}", file=file, line=line) from None


def _message(
    error: Any, field: str | None, kind: ExampleKind, data: dict[str, Any], file: str | None
) -> str:
    """pydantic's complaint in JSON's words (``in_json_words``); an unknown key is said as
    validation says it, an unknown or missing role is told the one most likely meant, and a
    number where text goes is told how to make it text."""
    if error["type"] == "string_type" and number_as_text(error.get("input")):
        return _number_for_text(error["input"], field, file)
    if kind == "preference" and field in _PAIR_PARTS and error["type"] == "list_type":
        text_allowed = "preferred_output" not in data  # TRL's pairs may be text
        return not_messages(field, error.get("input"), data, text_allowed=text_allowed)
    if field and field.endswith(".role") and error["type"] in ("literal_error", "missing"):
        if error["type"] == "missing":  # pydantic's input is then the message
            return f"{in_json_words(error, field)}{role_meant(None, error.get('input'))}"
        return f"{in_json_words(error, field)}{role_meant(error.get('input'))}"
    if error["type"] != "extra_forbidden" or not field:
        return in_json_words(error, field)
    where, _, key = field.rpartition(".")
    if not where:
        owner, value, known = f"a {kind} example", error.get("input"), KNOWN_KEYS[kind]
        checked = data if kind == "completion" else as_chat_record(data)
        kept = columns_kept(data, checked, known, IGNORED_KEYS)
        return unknown_key_message(
            key, known, owner, top_level=True, value=value, kept=kept, columns=list(data)
        )
    if _A_MESSAGE.fullmatch(where):
        return unknown_key_message(key, MESSAGE_READ_KEYS, "a message")
    if _A_TOOL_CALL.fullmatch(where):
        return unknown_key_message(key, TOOL_CALL_KEYS, "a tool call")
    if _A_TOOL_CALL.fullmatch(where.removesuffix(".function")):
        return unknown_key_message(key, FUNCTION_KEYS, "a tool call's function")
    return unknown_key_message(key)


_COLUMN_AS_TEXT = {
    "dataframe": "frame.astype({{{column!r}: str}}) before from_pandas (pd.read_csv(path, "
    "dtype=str) keeps each cell as written: '007', not 7)",
    "hf-dataset": "hf_dataset.cast_column({column!r}, datasets.Value('string'))",
}


def _number_for_text(value: float, field: str | None, source: str | None) -> str:
    told = f"a number ({value}), not text{number_as_text(value)}"
    return told + column_as_text(source, field, value)


def column_as_text(source: str | None, field: str | None, value: Any) -> str:
    """For a number read from a table's column where text goes, how to cast the whole column
    (``; a column of numbers: frame.astype(...)``), or ``""``."""
    cast = _COLUMN_AS_TEXT.get(source or "")
    if cast is None or not field or not field.isidentifier() or not number_as_text(value):
        return ""
    return f"; a column of numbers: {cast.format(column=field)}"


_A_MESSAGE = re.compile(r"\w+(\.messages)?\[\d+\]")
_A_TOOL_CALL = re.compile(r"\w+(\.messages)?\[\d+\]\.tool_calls\[\d+\]")


def _without_empty_unknowns(data: dict[str, Any], known: frozenset[str]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k in known or not is_empty(v)}


def _clean_messages(value: Any) -> Any:
    if not isinstance(value, list):
        return value
    return [_clean_message(m) if isinstance(m, dict) else m for m in value]


def _clean_message(message: dict[str, Any]) -> dict[str, Any]:
    """A message, and each of its tool calls and their functions, without the unknown keys
    that hold nothing (``"index": null``, a table's null column); ``"tool_calls": []`` is
    no call, as a message without the key."""
    if message.get("reasoning") is not None and message.get("reasoning_content") is None:
        # one name for it (a table with both columns gives each row a null in one of them)
        named = {k: v for k, v in message.items() if k != "reasoning_content"}
        message = {("reasoning_content" if k == "reasoning" else k): v for k, v in named.items()}
    cleaned = _without_empty_unknowns(message, MESSAGE_KEYS)
    if cleaned.get("tool_calls") == []:  # no calls, as a message without the key
        del cleaned["tool_calls"]
    elif isinstance(cleaned.get("tool_calls"), list):
        cleaned["tool_calls"] = [_clean_call(call) for call in cleaned["tool_calls"]]
    return cleaned


def _clean_call(call: Any) -> Any:
    if not isinstance(call, dict):
        return call
    cleaned = _without_empty_unknowns(call, TOOL_CALL_KEYS)
    if isinstance(cleaned.get("function"), dict):
        cleaned["function"] = _without_empty_unknowns(cleaned["function"], FUNCTION_KEYS)
    return cleaned


def _to_native(data: dict[str, Any], kind: ExampleKind) -> dict[str, Any]:
    body = {k: v for k, v in data.items() if k not in IGNORED_KEYS}
    body = _without_empty_unknowns(body, KNOWN_KEYS[kind])
    if "tools" in body and body["tools"] in ([], None):  # no tools, as a row without the key
        del body["tools"]
    for key in ("messages", "chosen", "rejected", "preferred_output", "non_preferred_output"):
        if key in body:
            body[key] = _clean_messages(body[key])
    for key in ("input", "prompt"):
        if isinstance(body.get(key), list):
            body[key] = _clean_messages(body[key])
        elif isinstance(body.get(key), dict) and "messages" in body[key]:
            body[key] = {**body[key], "messages": _clean_messages(body[key]["messages"])}
    if kind != "preference" or "kind" in data:
        return {**body, "kind": kind}
    unknown = {k: v for k, v in body.items() if k not in KNOWN_KEYS[kind]}  # refused, not lost
    return {**_native_preference(body), **unknown}


def _native_preference(body: dict[str, Any]) -> dict[str, Any]:
    """A preference example in any provider's shape as ours (input, chosen, rejected)."""
    if "preferred_output" in body:
        given = body.get("input")
        source = given if isinstance(given, dict) else {}  # another value: told by validation
        native = {
            "kind": "preference",
            "input": source.get("messages"),
            "chosen": body.get("preferred_output"),
            "rejected": body.get("non_preferred_output"),
        }
        if source.get("tools") not in (None, []):
            native["tools"] = source["tools"]
        return native
    return {
        "kind": "preference",
        "input": _as_messages(body.get("prompt", body.get("input")), "user"),
        "chosen": _as_messages(body.get("chosen"), "assistant"),
        "rejected": _as_messages(body.get("rejected"), "assistant"),
        **({"tools": body["tools"]} if body.get("tools") is not None else {}),
    }


def _as_messages(value: Any, role: str) -> Any:
    if isinstance(value, str):
        return [{"role": role, "content": value}]
    return value


def _map_location(loc: tuple[Any, ...], data: dict[str, Any], kind: str) -> tuple[Any, ...]:
    # the union's tag leads the location; "completion" is also a field name, kept after it
    parts = list(loc[1:] if loc and loc[0] in EXAMPLE_KINDS else loc)
    if kind == "preference" and "preferred_output" in data and parts:
        rename = {"input": ("input", "messages"), "chosen": ("preferred_output",)}
        rename["rejected"] = ("non_preferred_output",)
        head = rename.get(parts[0], (parts[0],))
        return (*head, *parts[1:])
    if kind == "preference" and "prompt" in data and parts and parts[0] == "input":
        return ("prompt", *parts[1:])
    return tuple(parts)


_TYPE_LABELS = frozenset({"str", "int", "float", "bool", "none", "bytes"})
_TYPE_PREFIXES = ("function-", "list[", "literal[", "dict[", "tagged-union[", "is-instance[")


def _json_path(loc: tuple[Any, ...]) -> str:
    """``messages[2].content`` from pydantic's location, without the labels of the union
    members it tried (``str``, ``list[ContentPart]``...)."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif isinstance(part, str) and not (
            part in _TYPE_LABELS or part.startswith(_TYPE_PREFIXES)
        ):
            out += f".{part}" if out else part
    return out


def check_format(fmt: str) -> None:
    """Refuse a format name we cannot write (a typo would otherwise write another shape)."""
    if fmt not in OUTPUT_FORMATS:
        raise ValueError(
            f"unknown output format {fmt!r}{_meant(fmt)}: use one of {sorted(OUTPUT_FORMATS)}, "
            "or a function from an example to its JSON record (a backend's format_example)"
        )


def _meant(fmt: object) -> str:
    """The format a backend's name (or TRL's) stands for, where ``fmt`` is one."""
    if not isinstance(fmt, str):
        return ""
    if fmt.lower() == "trl":
        return " (TRL's rows are 'hf')"
    from finetune.backends._plugins import available_backends, backend_class

    if fmt.lower() not in available_backends():
        return ""
    try:
        capabilities = getattr(backend_class(fmt.lower()), "capabilities", None)
    except Exception:  # a plugin that fails to load: the format's error is the news
        return ""
    written = getattr(capabilities, "output_format", None)
    return f" (the {fmt.lower()} backend uploads {written!r} rows)" if written else ""


def to_format(example: Example, fmt: OutputFormat) -> dict[str, Any]:
    """One example as a JSON-ready record in a provider's format."""
    check_format(fmt)
    return _formatted(example, fmt)


def formatter(fmt: OutputFormat) -> Callable[[Example], dict[str, Any]]:
    """``to_format`` for many examples: the format name is checked once, here."""
    check_format(fmt)
    return functools.partial(_formatted, fmt=fmt)


def _formatted(example: Example, fmt: OutputFormat) -> dict[str, Any]:
    if fmt == "native":
        return example.model_dump(mode="json", exclude_none=True)
    if isinstance(example, ChatExample):
        return _chat(example, fmt)
    if isinstance(example, CompletionExample):
        return _completion(example, fmt)
    return _preference(example, fmt)


def _messages(messages: list[Message], fmt: OutputFormat) -> list[dict[str, Any]]:
    out = []
    for message in messages:
        record = message.model_dump(mode="json", exclude_none=True)
        if fmt == "mistral" and message.reasoning_content is not None:
            raise UnsupportedFeature(
                "Mistral's format has no place for an assistant turn's reasoning_content: "
                "write the examples in the openai or hf format"
            )
        if fmt == "mistral" and isinstance(message.content, list):
            record["content"] = message.text
        out.append(record)
    return out


def _chat(example: ChatExample, fmt: OutputFormat) -> dict[str, Any]:
    record: dict[str, Any] = {"messages": _messages(example.messages, fmt)}
    if example.tools:
        record["tools"] = [t.model_dump(mode="json", exclude_none=True) for t in example.tools]
    return record


def _completion(example: CompletionExample, fmt: OutputFormat) -> dict[str, Any]:
    if fmt == "mistral":
        return {
            "messages": [
                {"role": "user", "content": example.prompt},
                {"role": "assistant", "content": example.completion},
            ]
        }
    return {"prompt": example.prompt, "completion": example.completion}


def _preference(example: PreferenceExample, fmt: OutputFormat) -> dict[str, Any]:
    tools = [t.model_dump(mode="json", exclude_none=True) for t in example.tools or []]
    if fmt == "mistral":
        raise UnsupportedFeature(
            "preference (DPO) examples cannot be written in the mistral format: Mistral "
            "fine-tuning accepts chat (instruct) and function-calling data only"
        )
    if fmt == "openai":
        source: dict[str, Any] = {"messages": _messages(example.input, fmt)}
        if tools:
            source["tools"] = tools
        return {
            "input": source,
            "preferred_output": _messages(example.chosen, fmt),
            "non_preferred_output": _messages(example.rejected, fmt),
        }
    record = {
        "prompt": _messages(example.input, fmt),
        "chosen": _messages(example.chosen, fmt),
        "rejected": _messages(example.rejected, fmt),
    }
    if tools:
        record["tools"] = tools
    return record


Turns = tuple[tuple[tuple[str, str], ...], str]  # (role, text) pairs, then the answer


def split_turns(example: Example) -> Turns:
    """An example as a question and its answer: the turns before the last assistant turn as
    ``(role, text)`` pairs, and that turn's text (a completion's prompt and completion, a
    preference pair's input and chosen answer). A turn that shows more than text (an image,
    a tool call) has the JSON of that after its text and a NUL. Hashable: two examples with
    the same conversation and answer are the same question to ``ft.evaluate``."""
    if isinstance(example, ChatExample):
        messages = example.messages
        last = max((i for i, m in enumerate(messages) if m.role == "assistant"), default=None)
        if last is None:
            return _pairs(messages), ""
        return _pairs(messages[:last]), _shown(messages[last])
    if isinstance(example, CompletionExample):
        return (("user", example.prompt),), example.completion
    if isinstance(example, PreferenceExample):
        reference = _shown(example.chosen[-1]) if example.chosen else ""
        return _pairs(example.input), reference
    raise TypeError(f"no question and answer in {type(example).__name__}")


def _shown(message: Message) -> str:
    """A turn's text; then, after a NUL, the JSON of what else it shows (its images, its tool
    calls): two turns alike in text, but showing two images or calling with two arguments,
    are not the same turn."""
    content = message.content if isinstance(message.content, list) else []
    parts = [p.model_dump(mode="json", exclude_none=True) for p in content if p.type != "text"]
    calls = [call.function.model_dump(mode="json") for call in message.tool_calls or []]
    if not parts and not calls:
        return message.text
    return f"{message.text}\x00{json.dumps([parts, calls], sort_keys=True, ensure_ascii=False)}"


TURNS_DIGEST_SIZE = 8


def turns_digest(turns: Turns) -> bytes:
    """Eight bytes that stand for one question and answer (blake2b of its JSON): what the job
    registry keeps of each training row, so ``ft.evaluate`` can tell a hosted model's training
    rows among the evaluated ones without keeping the rows themselves."""
    text = json.dumps(turns, ensure_ascii=False, separators=(",", ":"))
    return hashlib.blake2b(text.encode(), digest_size=TURNS_DIGEST_SIZE).digest()


def repeats(examples: Iterable[tuple[int, Example]]) -> Iterator[int]:
    """The positions of the examples equal in every field to an earlier one (by a digest of
    their JSON: 16 bytes kept an example, not the example)."""
    seen: set[bytes] = set()
    for position, example in examples:
        digest = hashlib.blake2b(example.model_dump_json().encode(), digest_size=16).digest()
        if digest in seen:
            yield position
        seen.add(digest)


def _pairs(messages: Sequence[Message]) -> tuple[tuple[str, str], ...]:
    return tuple((m.role, _shown(m)) for m in messages)
