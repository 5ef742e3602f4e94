"""ShareGPT's and Alpaca's rows, the shapes of FastChat, Axolotl and LLaMA-Factory data, read
as chat examples; an error in one is named by the row's own fields."""

from __future__ import annotations

import json
import re
from typing import Any

from finetune._json_text import json_from_text

__all__ = [
    "MESSAGES_FIELD",
    "ROLE_SYNONYMS",
    "SPEAKERS",
    "community_field",
    "community_record",
    "is_alpaca",
    "is_sharegpt",
    "is_transcript_text",
    "messages_from_text",
    "tools_from_text",
    "transcript_turns",
]

# who spoke, as ShareGPT exports write it (FastChat, Axolotl, LLaMA-Factory), as our role
SPEAKERS = {
    **dict.fromkeys(("human", "user"), "user"),
    **dict.fromkeys(("gpt", "chatgpt", "bard", "bing", "model", "assistant"), "assistant"),
    "system": "system",
}
# the roles other tools write, as ours: ShareGPT's speakers, OpenAI's developer turn, Cohere's
# chatbot, Llama 3.1's ipython (a tool's result)
ROLE_SYNONYMS = {
    **SPEAKERS,
    **dict.fromkeys(("chatbot", "bot", "ai"), "assistant"),
    "developer": "system",
    "ipython": "tool",
}
_TURN_KEYS = {"from": "role", "value": "content"}
# LLaMA-Factory's tool turns: the assistant's calls, and a tool's result
_CALL_SPEAKER, _RESULT_SPEAKERS = "function_call", ("observation", "tool")
# a field of a chat record: ``messages``, or one message (``messages[3].content``)
MESSAGES_FIELD = re.compile(r"messages(?:\[(\d+)\])?")


def is_sharegpt(data: dict[str, Any]) -> bool:
    """``conversations``, a list of turns, in place of ``messages``."""
    turns = data.get("conversations")
    return "messages" not in data and isinstance(turns, list) and bool(turns)


def is_alpaca(data: dict[str, Any]) -> bool:
    """``instruction`` and ``output`` (with ``input``, ``system`` or ``history`` beside them),
    in place of ``messages``."""
    return "messages" not in data and "instruction" in data and "output" in data


# openassistant-guanaco's transcript (the QLoRA paper's set): "### Human: q### Assistant: a"
_GUANACO_TURN = re.compile(r"###\s*(Human|Assistant):[ ]?")
_TRANSCRIPT_ROLES = {"Human": "user", "Assistant": "assistant"}


def transcript_turns(text: str, turn: re.Pattern[str]) -> list[dict[str, str]]:
    """A transcript's turns as messages, split where ``turn`` marks each (its one group
    ``Human`` or ``Assistant``): HH-RLHF's and openassistant-guanaco's."""
    parts = turn.split(text)[1:]  # the split keeps each turn's speaker
    pairs = zip(parts[::2], parts[1::2], strict=True)
    return [{"role": _TRANSCRIPT_ROLES[who], "content": said} for who, said in pairs]


# Llama 2's chat template, written out (mlabonne/guanaco-llama2-1k and the sets made for it):
# "<s>[INST] <<SYS>>\nsystem\n<</SYS>>\n\nq [/INST] a </s><s>[INST] q2 [/INST] a2 </s>"
_LLAMA2_EXCHANGE = re.compile(
    r"(?:<s>)?\s*\[INST\](.*?)\[/INST\](.*?)(?:</s>|(?=(?:<s>)?\s*\[INST\])|\Z)", re.DOTALL
)
_LLAMA2_SYSTEM = re.compile(r"\s*<<SYS>>(.*?)<</SYS>>", re.DOTALL)


def _turns(head: str, role: str, after: str, ends: str) -> re.Pattern[str]:
    """Turns that each open with ``head``, the speaker's ``role`` and ``after``, and close at
    one of ``ends`` or where the next one opens (findall: their roles and texts)."""
    return re.compile(rf"{head}({role}){after}(.*?)(?:{ends}|(?={head})|\Z)", re.DOTALL)


# chat templates written out, each turn opened by its role's header and closed by the
# template's end of turn: ChatML (Qwen's, SmolLM's), Llama 3's, Gemma's, Phi-3's and Zephyr's
_NAME = "[A-Za-z_]+"
_HEADED = {
    "<|im_start|>": _turns(r"<\|im_start\|>", _NAME, r"[ \t]*\n?", r"<\|im_end\|>"),
    "<|start_header_id|>": _turns(
        r"<\|start_header_id\|>", _NAME, r"<\|end_header_id\|>", r"<\|eot_id\|>|<\|eom_id\|>"
    ),
    "<start_of_turn>": _turns("<start_of_turn>", _NAME, r"\n?", "<end_of_turn>"),
    "<|": _turns(r"<\|(?=(?:system|user|assistant)\|>)", _NAME, r"\|>\n?", r"<\|end\|>|</s>"),
}
_PHI3_FIRST = ("<|system|>", "<|user|>")
# the lines Llama 3.1-3.3's template opens its system turn with (before the system prompt, or
# alone where there is none): the template's, not the data's, and written again when trained
_LLAMA3_PREAMBLE = re.compile(
    r"(?:Environment: ipython\n)?(?:Tools: [^\n]*\n\n)?"
    r"Cutting Knowledge Date: [^\n]*\nToday Date: [^\n]*(?:\n|\Z)\s*"
)


def is_transcript_text(data: dict[str, Any]) -> bool:
    """A row of one ``text``, a conversation's transcript as openassistant-guanaco writes it
    (``### Human:`` first, and an ``### Assistant:`` turn), or as a chat template writes it:
    Llama 2's (``[INST]`` first, and its ``[/INST]``), ChatML, Llama 3's, Gemma's, Phi-3's or
    Zephyr's (a turn's header first, and an assistant turn)."""
    text = data.get("text")
    if data.keys() != {"text"} or not isinstance(text, str):
        return False
    if _is_llama2(text):
        return "[/INST]" in text
    if (headed := _headed(text)) is not None:
        return any(_role(role) == "assistant" for role, _ in headed.findall(text))
    return text.lstrip().startswith("### Human:") and "### Assistant:" in text


def _is_llama2(text: str) -> bool:
    return text.lstrip().startswith(("<s>[INST]", "[INST]"))


def _headed(text: str) -> re.Pattern[str] | None:
    """The turns of the template whose header ``text`` opens with (after a
    beginning-of-text token), or ``None``."""
    start = text.lstrip()
    for bos in ("<|begin_of_text|>", "<bos>", "<s>"):
        start = start.removeprefix(bos).lstrip()
    for head, turns in _HEADED.items():
        if start.startswith(head) and (head != "<|" or start.startswith(_PHI3_FIRST)):
            return turns
    return None


def _from_transcript(text: str) -> dict[str, Any]:
    if _is_llama2(text):
        return {"messages": _llama2_turns(text)}
    if (headed := _headed(text)) is not None:
        messages = [_headed_message(role, said) for role, said in headed.findall(text)]
        if headed is _HEADED["<|start_header_id|>"]:
            return {"messages": _without_llama3_preamble(messages)}
        return {"messages": messages}
    turns = transcript_turns(text, _GUANACO_TURN)
    return {"messages": [{**turn, "content": turn["content"].strip()} for turn in turns]}


def _headed_message(role: str, said: str) -> dict[str, str]:
    """A template's turn as a message: its role as ours (Gemma's ``model`` the assistant,
    Llama 3.1's ``ipython`` a tool's result; one we do not know kept, for validation to
    name)."""
    return {"role": _role(role), "content": said.strip()}


def _without_llama3_preamble(messages: list[dict[str, str]]) -> list[dict[str, str]]:
    """Llama 3.1's system turn without the template's own lines (its dates); none left where
    they were all it held."""
    if not messages or messages[0]["role"] != "system":
        return messages
    system, *others = messages
    preamble = _LLAMA3_PREAMBLE.match(system["content"])
    if preamble is None:
        return messages
    prompt = system["content"][preamble.end() :]
    return [{**system, "content": prompt}, *others] if prompt else others


def _role(role: str) -> str:
    return ROLE_SYNONYMS.get(role.lower(), role)


def _llama2_turns(text: str) -> list[dict[str, str]]:
    """Each ``[INST] q [/INST] a`` as a user turn and an assistant turn, the first one's
    ``<<SYS>>`` block as the system prompt before them."""
    messages = []
    for number, (asked, answer) in enumerate(_LLAMA2_EXCHANGE.findall(text)):
        system = _LLAMA2_SYSTEM.match(asked) if number == 0 else None
        if system is not None:
            messages.append({"role": "system", "content": system.group(1).strip()})
            asked = asked[system.end() :]
        messages.append({"role": "user", "content": asked.strip()})
        messages.append({"role": "assistant", "content": answer.strip()})
    return messages


def community_record(data: dict[str, Any]) -> dict[str, Any]:
    """A ShareGPT, Alpaca or transcript row (guanaco's, Llama 2's) as our chat record (any
    other row as it is): every assistant turn trained, as those tools train them by
    default."""
    if is_sharegpt(data):
        return _from_sharegpt(data)
    if is_alpaca(data):
        return _from_alpaca(data)
    if is_transcript_text(data):
        return _from_transcript(data["text"])
    return data


def community_field(field: str | None, data: dict[str, Any]) -> str | None:
    """A field of ``community_record(data)`` (``messages[1].content``) as the row spells it
    (``conversations[1].value``, ``output``)."""
    found = MESSAGES_FIELD.match(field or "")
    if found is not None and is_transcript_text(data):
        return "text"  # every turn is a part of it
    if field is None or found is None or not (is_sharegpt(data) or is_alpaca(data)):
        return field
    sources = _sharegpt_sources(data) if is_sharegpt(data) else _alpaca_sources(data)
    rest, asked = field[found.end() :], found.group(1)
    if asked is None:
        return ("conversations" if is_sharegpt(data) else "output") + rest
    index = int(asked)
    source = sources[index] if index < len(sources) else sources[-1]
    if is_alpaca(data):
        return source  # a message of an Alpaca row is one value: its role has no field
    key, dot, tail = rest.lstrip(".").partition(".")
    key, bracket, item = key.partition("[")  # content[0]: a part of the turn's value
    if key == "tool_calls":  # the calls are the function_call turn's value
        return f"{source}.value" if source != "system" else source
    turn_keys = {"role": "from", "content": "value", "tool_call_id": ""}
    renamed = turn_keys.get(key, key) if source != "system" else ""
    return source + (f".{renamed}{bracket}{item}{dot}{tail}" if renamed else "")


def _from_sharegpt(data: dict[str, Any]) -> dict[str, Any]:
    messages = [{"role": "system", "content": data["system"]}] if data.get("system") else []
    unanswered: list[str] = []  # the ids of the last calls no result has answered yet
    for index, turn in enumerate(data["conversations"]):
        if not isinstance(turn, dict):
            messages.append(turn)
        elif _speaker(turn) == _CALL_SPEAKER:
            message = _calls(turn, index)
            unanswered = [call["id"] for call in message["tool_calls"] if isinstance(call, dict)]
            messages.append(message)
        elif _speaker(turn) in _RESULT_SPEAKERS:
            messages.append(_result(turn, unanswered))
        else:
            messages.append(_message(turn))
    rest = {k: v for k, v in data.items() if k not in ("conversations", "system")}
    if isinstance(rest.get("tools"), str):
        rest["tools"] = tools_from_text(rest["tools"])
    return {**rest, "messages": messages}


def _speaker(turn: dict[str, Any]) -> str:
    speaker = turn.get("from")
    return speaker.lower() if isinstance(speaker, str) else ""


def _calls(turn: dict[str, Any], index: int) -> dict[str, Any]:
    """A ``function_call`` turn, one call or a list of them (``{"name", "arguments"}`` as
    JSON), as an assistant turn's tool calls, each given an id of its own; a value that is not
    such JSON is kept for validation to name."""
    value = turn.get("value")
    try:
        parsed = json_from_text(value) if isinstance(value, str) else value
    except ValueError:
        parsed = None
    listed = parsed if isinstance(parsed, list) else [parsed]
    if not all(isinstance(call, dict) and isinstance(call.get("name"), str) for call in listed):
        return {"role": "assistant", "tool_calls": value}
    calls = [
        {
            "id": f"call_{index}_{number}",
            "type": "function",
            "function": {"name": call["name"], "arguments": _arguments(call.get("arguments"))},
        }
        for number, call in enumerate(listed)
    ]
    return {"role": "assistant", "content": None, "tool_calls": calls}


def _arguments(arguments: Any) -> str:
    return arguments if isinstance(arguments, str) else json.dumps(arguments or {})


def _result(turn: dict[str, Any], unanswered: list[str]) -> dict[str, Any]:
    """An ``observation`` turn as the result of the earliest call not yet answered (results
    follow their calls in order); with none left, it answers nothing, for validation to
    name."""
    message = {"role": "tool", "content": turn.get("value")}
    if unanswered:
        message["tool_call_id"] = unanswered.pop(0)
    return message


def messages_from_text(text: str) -> Any:
    """``messages`` given as text (a CSV file's cell, a table's string column): the JSON list
    of message objects it holds; text that is no such list is kept for validation to name."""
    listed = _json_list(text)
    if listed and all(isinstance(message, dict) for message in listed):
        return listed
    return text


def tools_from_text(text: str) -> Any:
    """``tools`` given as text (LLaMA-Factory's; a table's column), a JSON list of function
    schemas, as tool definitions (``{"type": "function", "function": {...}}``); text that is
    no such list is kept for validation to name."""
    listed = _json_list(text)
    if listed is None:
        return text
    return [
        item
        if not isinstance(item, dict) or "type" in item
        else {"type": "function", "function": item}
        for item in listed
    ]


def _json_list(text: str) -> list[Any] | None:
    """The list a text is the JSON of, or ``None``."""
    try:
        listed = json_from_text(text)
    except ValueError:
        return None
    return listed if isinstance(listed, list) else None


def _message(turn: dict[str, Any]) -> dict[str, Any]:
    """A ShareGPT turn as a message: ``from`` as its role (a name it does not know is kept, for
    validation to name), ``value`` as its content, any other key as it is."""
    message = {_TURN_KEYS.get(key, key): value for key, value in turn.items()}
    speaker = turn.get("from")
    if isinstance(speaker, str):
        message["role"] = SPEAKERS.get(speaker.lower(), speaker)
    return message


def _sharegpt_sources(data: dict[str, Any]) -> list[str]:
    system = ["system"] if data.get("system") else []
    return system + [f"conversations[{i}]" for i in range(len(data["conversations"]))]


def _from_alpaca(data: dict[str, Any]) -> dict[str, Any]:
    """The system prompt, each ``history`` pair as a user and an assistant turn, then the
    instruction (its ``input`` after a blank line) and the output."""
    messages = [{"role": "system", "content": data["system"]}] if data.get("system") else []
    history = data.get("history") or []
    for pair in history if isinstance(history, list) else [history]:
        asked, answered = pair if _is_pair(pair) else (pair, "")
        messages += [{"role": "user", "content": asked}, {"role": "assistant", "content": answered}]
    instruction, extra = data["instruction"], data.get("input")
    if isinstance(instruction, str) and isinstance(extra, str) and extra.strip():
        instruction = f"{instruction}\n\n{extra}"
    messages += [
        {"role": "user", "content": instruction},
        {"role": "assistant", "content": data["output"]},
    ]
    taken = ("instruction", "input", "output", "system", "history", *_written_out(data))
    return {**{k: v for k, v in data.items() if k not in taken}, "messages": messages}


def _is_pair(entry: Any) -> bool:
    """A ``history`` entry that is a question and its answer; any other is read as a
    question with no answer, for validation to name at that entry."""
    return isinstance(entry, (list, tuple)) and len(entry) == 2


def _written_out(data: dict[str, Any]) -> tuple[str, ...]:
    """``("text",)`` where ``text`` is the row itself written in a prompt template, as
    tatsu-lab/alpaca's rows hold it (its instruction, input and output in it): no example of
    its own, left out; else nothing."""
    text = data.get("text")
    parts = [data["instruction"], data["output"], data.get("input") or ""]
    if not isinstance(text, str) or not all(isinstance(part, str) for part in parts):
        return ()
    said = [part.strip() for part in parts if part.strip()]
    return ("text",) if len(said) >= 2 and all(part in text for part in said) else ()


def _alpaca_sources(data: dict[str, Any]) -> list[str]:
    """Where each message of ``_from_alpaca``'s record stands in the row: a pair that is no
    pair (or a ``history`` that is no list) names itself for both its turns."""
    history = data.get("history") or []
    turns = ["history"] * 2 if not isinstance(history, list) else []
    for i, pair in enumerate(history if isinstance(history, list) else []):
        turns += [f"history[{i}][{j}]" if _is_pair(pair) else f"history[{i}]" for j in (0, 1)]
    return ["system"] * bool(data.get("system")) + turns + ["instruction", "output"]
