from __future__ import annotations

import importlib
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import finetune as ft
from finetune.validation import counter_for, default_epochs, estimate, validate

from .conftest import chat, needs_tiktoken, write_jsonl

ANSWER = {"role": "assistant", "content": "A fine answer."}

MODEL = "gpt-4.1-mini-2025-04-14"
TOGETHER = "meta-llama/Meta-Llama-3.1-8B-Instruct-Reference"
FIXTURE = chat(42)


def codes(report: ft.ValidationReport) -> set[str]:
    return set(report.counts)


def run(rows: list[Any], target: str = "openai", **kw: Any) -> ft.ValidationReport:
    model = kw.pop("model", MODEL if target == "openai" else "open-mistral-nemo")
    return validate(ft.Dataset.from_records(rows), target=target, model=model, **kw)


@needs_tiktoken
def test_three_bad_lines_out_of_ten_thousand(tmp_path: Path) -> None:
    rows: list[Any] = [chat(i) for i in range(10_000)]
    rows[1233] = {"messages": [{"role": "user", "content": "no answer"}]}
    rows[4999] = {"messages": [{"role": "wizard", "content": "x"}, chat(1)["messages"][2]]}
    rows[9000] = "{broken json"
    path = write_jsonl(tmp_path / "big.jsonl", rows)
    report = ft.Dataset.from_jsonl(path)
    result = validate(report, target="openai", model=MODEL)
    assert result.error_count == 3
    found = sorted((f.line, f.code, f.field) for f in result.errors)
    assert found == [
        (1234, "missing_assistant", "messages"),
        (5000, "unknown_role", "messages[0].role"),
        (9001, "invalid_json", None),
    ]
    assert all(f.file == "big.jsonl" for f in result.errors)
    assert result.examples == 10_000


@needs_tiktoken
def test_token_counts_match_tiktoken_exactly() -> None:
    import tiktoken

    counter = counter_for("openai", MODEL)
    assert counter.exact and counter.name == "tiktoken:o200k_base"
    assert counter.count_example(FIXTURE) == 35
    encoding = tiktoken.get_encoding("o200k_base")
    by_hand = 3 + sum(
        3 + len(encoding.encode(m["content"])) + len(encoding.encode(m["role"]))
        for m in FIXTURE["messages"]
    )
    assert by_hand == 35
    assert counter_for("openai", "gpt-3.5-turbo-0125").name == "tiktoken:cl100k_base"


def test_token_counts_match_mistral_common_exactly() -> None:
    pytest.importorskip("mistral_common")
    counter = counter_for("mistral", "open-mistral-nemo")
    assert counter.exact
    assert counter.count_example(FIXTURE) == 26
    assert counter.count_text("Where is my order #42?") == 8


@needs_tiktoken
def test_one_encoding_per_process_whoever_loads_it_first(monkeypatch: pytest.MonkeyPatch) -> None:
    import tiktoken
    import tiktoken.registry as registry

    import finetune.validation._tokens as tokens

    for first in ("finetune", "tiktoken"):  # each time as in a fresh process
        monkeypatch.setattr(registry, "ENCODINGS", {})
        tokens._tiktoken_encoding.cache_clear()
        if first == "tiktoken":
            theirs = tiktoken.get_encoding("cl100k_base")
            assert tokens._tiktoken_encoding("cl100k_base") is theirs
        else:
            ours = tokens._tiktoken_encoding("cl100k_base")
            assert tiktoken.get_encoding("cl100k_base") is ours  # no second 70 MB copy
    tokens._tiktoken_encoding.cache_clear()


def test_offline_tiktoken_falls_back_to_marked_estimate(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import finetune.validation._tokens as tokens

    def offline(name: str) -> None:
        raise ConnectionError("no network (test_offline_tiktoken)")

    monkeypatch.setattr(tokens, "_tiktoken_encoding", offline)
    for _ in range(3):  # a sweep of fits warned on each one
        with caplog.at_level("WARNING", logger="finetune"):
            counter = counter_for("openai", MODEL)
        assert not counter.exact
        report = run([chat(i) for i in range(12)], token_counter=counter)
        assert "approximate_token_counts" in codes(report)
        assert "TIKTOKEN_CACHE_DIR" in report.kept["approximate_token_counts"][0].message
    warned = [r for r in caplog.records if "test_offline_tiktoken" in r.getMessage()]
    assert len(warned) == 1


def test_offline_tiktoken_names_the_download_not_the_connection_pool(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import requests

    import finetune.validation._tokens as tokens

    url = "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken"

    def offline(name: str) -> None:
        pool = "HTTPSConnectionPool(host='openaipublic.blob.core.windows.net', port=443): Max"
        raise requests.ConnectionError(pool, request=requests.Request("GET", url).prepare())

    monkeypatch.setattr(tokens, "_tiktoken_encoding", offline)
    monkeypatch.setattr(tokens, "_warned", set())
    counter = counter_for("openai", MODEL)
    assert not counter.exact
    reason = run([chat(1)], token_counter=counter).kept["approximate_token_counts"][0].message
    assert f"(ConnectionError fetching {url})" in reason
    assert "HTTPSConnectionPool" not in reason
    assert "TIKTOKEN_CACHE_DIR" in reason


CASES: list[tuple[dict[str, Any], str, str | None]] = [
    ({"messages": [{"role": "user", "content": "hi"}]}, "missing_assistant", "messages"),
    ({"messages": []}, "missing_messages", "messages"),
    (
        {"messages": [{"role": "user", "content": "q", "weight": 1}, *FIXTURE["messages"][2:]]},
        "weight_not_on_assistant",
        "messages[0].weight",
    ),
    (
        {
            "messages": [
                {"role": "user", "content": "q"},
                {"role": "assistant", "content": "a", "weight": 3},
            ]
        },
        "invalid_weight",
        "messages[1].weight",
    ),
    (
        {
            "messages": [
                {"role": "user", "content": "q"},
                {"role": "assistant", "content": "a", "weight": 0},
            ]
        },
        "no_trainable_turns",
        "messages",
    ),
    (
        {"messages": [*FIXTURE["messages"], {"role": "user", "content": "thanks"}]},
        "assistant_not_last",
        "messages[3]",
    ),
    (
        {"messages": [{"role": "user", "content": 5}, FIXTURE["messages"][2]]},
        "invalid_content",
        "messages[0].content",
    ),
    (
        {"messages": [{"role": "user"}, FIXTURE["messages"][2]]},
        "missing_content",
        "messages[0].content",
    ),
    (
        {
            "messages": [
                {"role": "user", "content": "weather?"},
                {
                    "role": "assistant",
                    "tool_calls": [
                        {
                            "id": "c1",
                            "type": "function",
                            "function": {"name": "w", "arguments": "{}"},
                        }
                    ],
                },
                {"role": "assistant", "content": "sunny"},
            ]
        },
        "tool_call_without_result",
        "messages[1].tool_calls[0]",
    ),
    (
        {
            "messages": [
                {"role": "user", "content": "q"},
                {"role": "tool", "tool_call_id": "zz", "content": "r"},
                {"role": "assistant", "content": "a"},
            ]
        },
        "tool_result_without_call",
        "messages[1].tool_call_id",
    ),
    (
        {
            "messages": [
                {"role": "user", "content": "q"},
                {
                    "role": "assistant",
                    "tool_calls": [
                        {
                            "id": "c1",
                            "type": "function",
                            "function": {"name": "w", "arguments": "not json"},
                        }
                    ],
                },
            ]
        },
        "tool_arguments_not_json",
        "messages[1].tool_calls[0].function.arguments",
    ),
    ({"messages": FIXTURE["messages"], "tools": {"x": 1}}, "invalid_tools", "tools"),
    ({"foo": 1}, "unknown_format", None),
    ({"prompt": "p", "completion": "c"}, "unsupported_kind", None),
    (
        {
            "input": {"messages": []},
            "preferred_output": [],
            "non_preferred_output": [{"role": "assistant", "content": "x"}],
        },
        "invalid_preference",
        "input.messages",
    ),
]


@pytest.mark.parametrize(("row", "code", "field"), CASES, ids=[c[1] for c in CASES])
def test_openai_rules(row: dict[str, Any], code: str, field: str | None) -> None:
    report = run([*[chat(i) for i in range(10)], row])
    assert not report.ok
    finding = report.kept[code][0]
    assert (finding.line, finding.field) == (11, field)


def _weather_call(arguments: Any) -> dict[str, Any]:
    call = {"id": "c1", "type": "function", "function": {"name": "w", "arguments": arguments}}
    return {"role": "assistant", "tool_calls": [call]}


def test_tool_call_arguments_given_as_an_object_are_read_as_their_json_text() -> None:
    """transformers' chat templates and TRL's datasets give a call's arguments as an object;
    every such row was a ``tool_arguments_not_json`` error, and ``from_records`` refused it."""
    asked = [{"role": "user", "content": "Weather in Zürich?"}]
    answered = [
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
        {"role": "assistant", "content": "Sunny."},
    ]
    ours = {"messages": [*asked, _weather_call({"city": "Zürich"}), *answered]}
    trl = {"prompt": asked, "completion": [_weather_call({"city": "Zürich"}), *answered]}
    rows = [ours, trl, *[chat(i) for i in range(10)]]
    report = run(rows)
    assert report.ok and dict(report.counts) == {"duplicate_example": 1}  # the same, read
    for example in ft.Dataset.from_records(rows)[:2]:
        (call,) = example.messages[1].tool_calls  # type: ignore[union-attr]
        assert call.function.arguments == '{"city": "Zürich"}'
    said = {
        "[1, 2]": "not the text of an array",
        "{city: x}": "not a string that is not JSON ('{city: x}')",
    }
    for arguments, tail in [*said.items(), (["a"], "not an array"), (None, "not null")]:
        row = {"messages": [*asked, _weather_call(arguments), *answered]}
        (finding,) = run([*[chat(i) for i in range(10)], row]).errors
        assert (
            finding.message
            == f"function.arguments must be a JSON object, as its text or as the object, {tail}"
        )


def test_json_text_nested_past_pythons_parser_is_a_finding_not_a_crash() -> None:
    """``[`` 5,000 times (a data generator gone into a loop) where JSON text is read: tool call
    arguments, tools given as text, a ShareGPT ``function_call`` turn. Each raised
    ``RecursionError`` out of ``validate`` or ``from_records``; now it is the finding any
    other text that is not JSON gets, at its line and field."""
    deep = "[" * 5000
    asked = [{"role": "user", "content": "Weather in Zürich?"}]
    sharegpt = {
        "conversations": [
            {"from": "human", "value": "Weather?"},
            {"from": "function_call", "value": deep},
            {"from": "observation", "value": "sunny"},
            {"from": "gpt", "value": "Sunny."},
        ]
    }
    rows = [
        *[chat(i) for i in range(10)],
        {"messages": [*asked, _weather_call(deep)]},
        {"messages": FIXTURE["messages"], "tools": deep},
        sharegpt,
    ]
    report = run(rows)
    (arguments,) = report.kept["tool_arguments_not_json"]
    assert (arguments.line, arguments.field) == (11, "messages[1].tool_calls[0].function.arguments")
    assert "a string that is not JSON ('[[[[" in arguments.message
    assert report.lines("invalid_tools") == [12]
    assert report.lines("invalid_tool_call") == [13]


def test_tools_given_as_the_json_text_of_a_list_are_read_as_the_list() -> None:
    """A Hugging Face dataset often keeps ``tools`` as a string column (Arrow holds no
    schema per row): such rows were ``'tools' must be a list`` errors."""
    tools = [{"type": "function", "function": {"name": "w", "parameters": {"type": "object"}}}]
    answered = [
        {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
        {"role": "assistant", "content": "Sunny."},
    ]

    def row(i: int, listed: Any) -> dict[str, Any]:
        asked = {"role": "user", "content": f"Weather {i}?"}
        return {"messages": [asked, _weather_call("{}"), *answered], "tools": listed}

    rows = [row(i, json.dumps(tools)) for i in range(11)]
    assert run(rows).ok
    assert ft.Dataset.from_records(rows)[0].tools[0].function["name"] == "w"  # type: ignore[index]
    for listed, held in (("not json", "text that is no JSON list"), ({"w": 1}, "an object")):
        (finding,) = run([*rows, row(99, listed)]).errors
        assert finding.message == (
            f"'tools' must be a list of function definitions (or its JSON text), not {held}"
        )


def test_messages_given_as_the_json_text_of_a_list_are_read_as_the_list(tmp_path: Path) -> None:
    """A CSV file's ``messages`` column (or a table's string column) holds each conversation
    as JSON text: every row was "'messages' must be a non-empty list", as ``tools`` given so
    once were. Text that is no JSON list of messages is told so."""
    rows = [{"messages": json.dumps(chat(i)["messages"])} for i in range(11)]
    assert run(rows).ok
    assert ft.Dataset.from_records(rows)[0] == ft.Dataset.from_records([chat(0)])[0]
    table = tmp_path / "chats.csv"
    table.write_text(
        "messages\n" + "".join('"' + r["messages"].replace('"', '""') + '"\n' for r in rows)
    )
    assert validate(ft.Dataset.from_csv(table), target="openai", model=MODEL).ok
    for text in ("not json", "[1, 2]", "[]", "[" * 5000):
        (finding,) = run([*rows, {"messages": text}]).errors
        assert (finding.code, finding.line) == ("missing_messages", 12)
        assert finding.message.endswith("not text that is no JSON list of messages")


def test_a_call_of_a_function_the_rows_tools_do_not_define_is_a_warning() -> None:
    """``get_wether`` beside a ``get_weather`` tool trained the model to call a function that
    is not there, and validation said nothing."""

    def row(called: str, *defined: str) -> dict[str, Any]:
        tools = [{"type": "function", "function": {"name": name}} for name in defined]
        call = _weather_call("{}")
        call["tool_calls"][0]["function"]["name"] = called
        answered = [
            {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
            {"role": "assistant", "content": "Sunny."},
        ]
        return {"messages": [{"role": "user", "content": called}, call, *answered], "tools": tools}

    rows = [row("get_wether", "get_weather"), row("forecast", "get_weather", "get_time")]
    rows += [row("get_weather", "get_weather"), row("anything")]  # no tools: nothing to hold to
    report = run([*rows, *[chat(i) for i in range(10)]])
    assert report.ok
    assert [(f.line, f.field, f.message) for f in report.warnings] == [
        (
            1,
            "messages[1].tool_calls[0].function.name",
            "calls 'get_wether', not a tool of the row (did you mean 'get_weather'?)",
        ),
        (
            2,
            "messages[1].tool_calls[0].function.name",
            "calls 'forecast', not a tool of the row; they define get_time, get_weather",
        ),
    ]


def _pair(i: int, called: str = "w", tools: Any = None, *, openai: bool = True) -> dict[str, Any]:
    """A preference pair whose preferred answer calls ``called`` with object arguments, in
    OpenAI's shape (tools in ``input``) or TRL's (tools beside the pair)."""
    asked = [{"role": "user", "content": f"Weather {i}?"}]
    call = _weather_call({"city": f"c{i}"})
    call["tool_calls"][0]["function"]["name"] = called
    refused = [{"role": "assistant", "content": f"No idea {i}."}]
    if tools is None:
        tools = [{"type": "function", "function": {"name": "w"}}]
    if openai:
        source = {"messages": asked, "tools": tools}
        return {"input": source, "preferred_output": [call], "non_preferred_output": refused}
    return {"prompt": asked, "tools": tools, "chosen": [call], "rejected": refused}


@pytest.mark.parametrize("openai", [True, False], ids=["openai shape", "trl shape"])
def test_a_preference_rows_tools_are_checked_as_a_chat_rows_are(openai: bool) -> None:
    """A pair's tools were never looked at: a tool with no function, ``tools`` that are no
    list and a call of a function they do not define passed ``validate``, and reading the
    file at ``fit`` then failed on the first of them; a call's object arguments were an error
    that said objects were taken ("as its text or as the object, not an object")."""
    where = "input.tools" if openai else "tools"
    answer = "preferred_output" if openai else "chosen"
    good = [_pair(i, openai=openai) for i in range(10)]
    report = run(good)
    assert report.ok and not report.warnings
    (call,) = ft.Dataset.from_records(good)[0].chosen[0].tool_calls  # type: ignore[union-attr, misc]
    assert call.function.arguments == '{"city": "c0"}'  # objects read as their JSON text
    misspelt = [{"type": "function", "function": {"name": "get_weather"}}]
    wrong = [("get_wether", misspelt), ("w", [{"type": "function"}]), ("w", {"w": 1})]
    bad = [_pair(10 + i, name, tools, openai=openai) for i, (name, tools) in enumerate(wrong)]
    report = run([*good, *bad])
    found = [(f.line, f.code, f.field, f.message) for f in [*report.errors, *report.warnings]]
    what = "'input.tools' must be a list of function definitions, not an object"
    if not openai:
        what = "'tools' must be a list of function definitions (or its JSON text), not an object"
    assert found == [
        (
            12,
            "invalid_tools",
            f"{where}[0]",
            'each tool needs {"type": "function", "function": {"name": ...}}',
        ),
        (13, "invalid_tools", where, what),
        (
            11,
            "undefined_tool",
            f"{answer}[0].tool_calls[0].function.name",
            "calls 'get_wether', not a tool of the row (did you mean 'get_weather'?)",
        ),
    ]
    with pytest.raises(ft.DatasetError, match="records:12"):
        list(ft.Dataset.from_records([*good, *bad]))
    listed = json.dumps([{"type": "function", "function": {"name": "w"}}])
    texts = [{**_pair(i, openai=False), "tools": listed} for i in range(10)]
    assert run(texts).ok  # TRL's tools as a table's JSON text, read as at fit
    assert ft.Dataset.from_records(texts)[0].tools[0].function["name"] == "w"  # type: ignore[index]


_FORECAST = {
    "type": "object",
    "properties": {
        "city": {"type": "string"},
        "days": {"type": "integer"},
        "unit": {"type": ["string", "null"], "enum": ["c", "f", None]},
        "when": {"type": "date"},  # no JSON type: not checked
    },
    "required": ["city"],
    "additionalProperties": False,
}


def _forecast_row(i: int, arguments: Any) -> dict[str, Any]:
    call = _weather_call(arguments)
    call["tool_calls"][0]["function"]["name"] = "forecast"
    return {
        "messages": [{"role": "user", "content": f"Forecast {i}?"}, call, *_ANSWERED],
        "tools": [{"type": "function", "function": {"name": "forecast", "parameters": _FORECAST}}],
    }


_ANSWERED = [
    {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
    {"role": "assistant", "content": "Sunny."},
]


def test_tool_call_arguments_that_break_the_functions_parameters_are_named() -> None:
    """Arguments the function's schema refuses teach the model to call it wrongly: each is
    named at its call, as text or as the object alike; what the schema allows passes."""
    fine = [
        {"city": "Bern"},
        '{"city": "Bern", "days": 2.0, "unit": null}',
        {"city": "Bern", "unit": "f", "when": 5},
    ]
    broken = [
        ("{}", "lacks the required argument 'city'"),
        ({"city": 5}, "passes city=5, a number where the function takes string"),
        ({"city": "Bern", "days": True}, "passes days=True, true where the function takes integer"),
        (
            {"city": "Bern", "days": 1.5},
            "passes days=1.5, a number where the function takes integer",
        ),
        ({"city": "Bern", "unit": "kelvin"}, "passes unit='kelvin', not one of 'c', 'f', None"),
        (
            {"city": "Bern", "citty": "x"},
            "passes 'citty', an argument the function does not take (did you mean 'city'?)",
        ),
    ]
    rows = [_forecast_row(i, a) for i, a in enumerate([*fine, *(a for a, _ in broken)])]
    report = run([*rows, *(chat(i) for i in range(10))])
    found = [(f.line, f.code, f.field, f.message) for f in report.warnings]
    where = "messages[1].tool_calls[0].function.arguments"
    expected = [
        (len(fine) + i + 1, "tool_arguments_off_schema", where, f"forecast() {message}")
        for i, (_, message) in enumerate(broken)
    ]
    assert found == expected
    tools = [{"type": "function", "function": {"name": "forecast", "parameters": _FORECAST}}]
    pair = _pair(1, "forecast", tools)
    pair["preferred_output"][0]["tool_calls"][0]["function"]["arguments"] = {"town": "Bern"}
    (warning,) = run([pair, *(_pair(i) for i in range(2, 12))]).warnings
    assert (warning.line, warning.field, warning.message) == (
        1,
        "preferred_output[0].tool_calls[0].function.arguments",
        "forecast() lacks the required argument 'city'",
    )


def test_tool_call_as_final_answer_is_valid() -> None:
    row = {
        "messages": [
            {"role": "user", "content": "weather in Paris?"},
            {
                "role": "assistant",
                "tool_calls": [
                    {
                        "id": "call1",
                        "type": "function",
                        "function": {"name": "weather", "arguments": '{"city": "Paris"}'},
                    }
                ],
            },
        ],
        "tools": [{"type": "function", "function": {"name": "weather", "parameters": {}}}],
    }
    assert run([*[chat(i) for i in range(10)], row]).ok


def test_too_few_examples_for_openai() -> None:
    report = run([chat(i) for i in range(3)])
    assert report.kept["too_few_examples"][0].message.startswith("3 examples")


def test_context_limit_is_overridable() -> None:
    report = run([chat(i) for i in range(10)], context_limit=20)
    assert report.counts["too_many_tokens"] == 10


def test_mistral_rules() -> None:
    pytest.importorskip("mistral_common")
    bad_id = {
        "messages": [
            {"role": "user", "content": "q"},
            {
                "role": "assistant",
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "f", "arguments": "{}"},
                    }
                ],
            },
        ]
    }
    report = run([chat(1), bad_id], target="mistral")
    assert codes(report) >= {"invalid_tool_call_id"}
    pair = {"prompt": "q", "chosen": "a", "rejected": "b"}
    assert "unsupported_kind" in codes(run([pair], target="mistral"))


@pytest.mark.parametrize(
    ("target", "model"),
    [("fireworks", "accounts/fireworks/models/qwen3-8b"), ("openai", "gpt-4o-mini-2024-07-18")],
)
def test_completion_pairs_where_only_chat_trains_are_told_the_renames_that_cure_them(
    target: str, model: str
) -> None:
    """Told "Convert them to messages" (OpenAI) or nothing (Fireworks), the user of a
    question-and-answer file was left to write the conversion; the cure is a rename to role
    columns."""
    rows = [{"prompt": f"{n} + {n}?", "completion": str(2 * n)} for n in range(12)]
    data = ft.Dataset.from_records(rows)
    refusals = validate(data, target=target, model=model).errors
    (message,) = {(finding.code, finding.message) for finding in refusals}
    cure = "ds.select_columns({'prompt': 'user', 'completion': 'assistant'})"
    assert len(refusals) == 12 and message[0] == "unsupported_kind"
    assert message[1].endswith(
        f": write each pair as a user turn and an assistant turn, {cure}, or "
        "--columns prompt=user,completion=assistant on the command line"
    )
    cured = data.select_columns({"prompt": "user", "completion": "assistant"})
    assert validate(cured, target=target, model=model).errors == []
    # fit refuses before anything is sent, with the same cure (Fireworks by its capabilities;
    # OpenAI, which trains completion pairs on two old models, by validation)
    refused = ft.UnsupportedFeature if target == "fireworks" else ft.ValidationFailed
    tuner = ft.Tuner(target, model=model, api_key="k-test", registry=False)
    with pytest.raises(refused, match=re.escape(cure)):
        tuner.fit(data)


def test_examples_that_differ_beyond_their_text_are_not_duplicates() -> None:
    def image(url: str) -> dict[str, Any]:
        parts = [{"type": "text", "text": "What is this?"}]
        parts.append({"type": "image_url", "image_url": {"url": url}})
        return {"messages": [{"role": "user", "content": parts}, ANSWER]}

    def call(city: str) -> dict[str, Any]:
        asked = {"name": "weather", "arguments": json.dumps({"city": city})}
        return {
            "messages": [
                {"role": "user", "content": "Weather?"},
                {
                    "role": "assistant",
                    "tool_calls": [{"id": "c1", "type": "function", "function": asked}],
                },
                {"role": "tool", "tool_call_id": "c1", "content": "sunny"},
                ANSWER,
            ]
        }

    rows = [chat(i) for i in range(10)]
    rows += [image("https://x/1.png"), image("https://x/2.png"), image("https://x/1.png")]
    rows += [call("Paris"), call("Rome"), call("Paris")]
    report = run(rows)
    assert report.lines("duplicate_example") == [13, 16]  # the same image, the same call
    assert not report.lines("near_duplicate_example")


def test_an_image_is_refused_where_training_would_drop_it() -> None:
    parts = [{"type": "text", "text": "What is this?"}]
    parts.append({"type": "image_url", "image_url": {"url": "https://x/1.png"}})
    seen = {"messages": [{"role": "user", "content": parts}, ANSWER]}
    pair = {
        "input": {"messages": [{"role": "user", "content": parts}]},
        "preferred_output": [ANSWER],
        "non_preferred_output": [{"role": "assistant", "content": "No idea."}],
    }
    for target, row, place in [
        ("hf", seen, "messages[0].content[1]"),
        ("mistral", seen, "messages[0].content[1]"),
        ("hf", pair, "input.messages[0].content[1]"),
    ]:
        report = run([row, *(chat(i) for i in range(11))], target=target, model="m")
        (finding,) = report.kept["unsupported_content"]
        assert (finding.line, finding.field) == (1, place)
        assert "'image_url' part would be dropped" in finding.message
    # the parts' texts, joined, are what the mistral format writes: the image is gone
    (example,) = ft.Dataset.from_records([seen])
    assert ft.dataset.to_format(example, "mistral")["messages"][0]["content"] == "What is this?"
    texts = {"messages": [{"role": "user", "content": parts[:1]}, ANSWER]}
    for target in ("openai", "together", "hf", "mistral"):
        report = run([seen if target in ("openai", "together") else texts], target=target)
        assert "unsupported_content" not in codes(report), target


def test_an_image_is_checked_as_each_provider_takes_it() -> None:
    def shown(url: Any, role: str = "user") -> dict[str, Any]:
        parts = [{"type": "text", "text": "What is this?"}]
        parts.append({"type": "image_url", "image_url": {"url": url}})
        turns = [{"role": "user", "content": "Look."}, {"role": role, "content": parts}]
        return {"messages": [*turns, {"role": "assistant", "content": "A cat."}]}

    link, gif = "https://x/cat.png", "data:image/gif;base64,R0lGODlh"
    png, jpg = "data:image/png;base64,iVBORw0KGgo=", "data:image/jpg;base64,/9j/4AAQ"
    cases = [
        ("openai", shown(link), None),
        ("openai", shown(jpg), None),
        ("openai", shown(gif), "openai takes jpeg, png, webp images, not image/gif"),
        ("together", shown(png), None),
        ("together", shown(link), "together takes images inline, as base64 data URLs"),
        ("fireworks", shown(jpg), None),
        ("fireworks", shown("data:image/webp;base64,UklGR"), "takes jpeg, png images, not"),
        ("openai", shown(png, role="assistant"), "an image in the assistant's turn"),
        ("together", shown(None), "an image_url part needs its url"),
    ]
    for target, row, said in cases:
        report = run([row, *(chat(i) for i in range(11))], target=target, model="m")
        found = [(f.line, f.field, f.message) for f in report.kept.get("invalid_image", [])]
        if said is None:
            assert found == [], (target, found)
        else:
            ((line, field, message),) = found
            assert (line, field) == (1, "messages[1].content[1]") and said in message, message


def test_images_on_a_model_the_table_does_not_mark_as_trained_on_them_are_a_warning() -> None:
    parts = [{"type": "text", "text": "What is this?"}]
    parts.append({"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0K"}})
    rows = [{"messages": [{"role": "user", "content": parts}, ANSWER]}]
    rows += [chat(i) for i in range(11)]
    (finding,) = run(rows).kept["model_without_images"]  # gpt-4.1-mini: text only, here
    assert finding.message.startswith(f"1 message shows images, and {MODEL} is not a model")
    assert "(it marks gpt-4o-2024-08-06)" in finding.message
    assert "model_without_images" not in codes(run(rows, model="gpt-4o-2024-08-06"))
    assert "model_without_images" not in codes(run(rows[1:]))  # no image, nothing to say
    together = run(rows, target="together", model="Qwen/Qwen3-8B")
    assert "(it marks none)" in together.kept["model_without_images"][0].message
    unknown = run(rows, target="together", model="Qwen/Qwen3-VL-8B-Instruct")
    assert "model_without_images" not in codes(unknown)  # not in the table: not said


def test_an_image_trained_on_is_said_to_be_left_out_of_the_tokens_and_the_bill() -> None:
    parts = [{"type": "text", "text": "What is this?"}]
    parts.append({"type": "image_url", "image_url": {"url": "https://x/1.png"}})
    seen = {"messages": [{"role": "user", "content": parts}, ANSWER]}
    rows = [seen, *(chat(i) for i in range(11))]
    (finding,) = run(rows).kept["uncounted_image"]
    assert (finding.line, finding.field, finding.severity) == (
        1,
        "messages[0].content[1]",
        "warning",
    )
    assert "openai bills it by its size" in finding.message
    data = ft.Dataset.from_records(rows)
    priced = estimate(data, target="openai", backend="openai", model=MODEL)
    assert not priced.exact
    assert "1 example shows images, which these tokens leave out" in " ".join(priced.notes)
    plain = estimate(
        ft.Dataset.from_records(rows[1:]), target="openai", backend="openai", model=MODEL
    )
    assert plain.exact and not any("images" in note for note in plain.notes)


def test_a_declared_kind_is_checked_on_every_row(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "chat.jsonl", [chat(i) for i in range(12)])
    declared = ft.Dataset.from_jsonl(path, kind="completion")
    report = validate(declared, target="openai", model=MODEL)
    assert report.lines("mixed_kinds")[:2] == [1, 2]  # it said OK, then fit failed to read
    assert report.kept["mixed_kinds"][0].message == (
        "chat example in a dataset declared kind='completion'"
    )
    with pytest.raises(ValueError, match="kind is one of"):
        ft.Dataset.from_jsonl(path, kind="chats")  # type: ignore[arg-type]


def test_a_text_part_without_text_is_an_error() -> None:
    bare = {"messages": [{"role": "user", "content": [{"type": "text"}]}, ANSWER]}
    untyped = {"messages": [{"role": "user", "content": [{"text": "hi"}]}, ANSWER]}
    report = run([*(chat(i) for i in range(10)), bare, untyped])
    (first, second) = report.kept["invalid_content"]
    assert first.location.endswith("records:11: messages[0].content[0]")
    assert 'needs a string "text"' in first.message and 'needs a "type"' in second.message
    numeric = {"messages": [{"role": "user", "content": 5}, ANSWER]}
    (number,) = run([*(chat(i) for i in range(10)), numeric]).kept["invalid_content"]
    assert (
        number.message
        == 'content must be a string or a list of parts, got a number: write it as text, "5"'
    )
    # a table's empty cell (from_pandas reads NaN as null): it said only "must be a string"
    rows = [{"prompt": "2+2=", "completion": None}, {"prompt": 4, "completion": "x"}]
    report = validate(ft.Dataset.from_records(rows), target="hf", model="m")
    said = [f.message for f in report.kept["invalid_completion"]]
    assert said == [
        "completion must be a string, not null",
        'prompt must be a string, not a number: write it as text, "4"',
    ]


def test_quality_warnings() -> None:
    rows = [chat(i) for i in range(30)]
    rows.append(chat(3))  # exact duplicate of line 4
    near = chat(5)
    near["messages"][2]["content"] = "ORDER #5   ships tomorrow."
    rows.append(near)
    rows.append(chat(99, system="You are a pirate."))
    secret = chat(100)
    secret["messages"][1]["content"] = (
        "mail me at jane.doe@example.com, card 4111 1111 1111 1111, key sk-abcdefghijklmnopqrstuvwx"
    )
    rows.append(secret)
    long = chat(101)
    long["messages"][2]["content"] = "word " * 3000
    rows.append(long)
    empty = chat(102)
    empty["messages"][2]["content"] = "   "
    rows.append(empty)
    report = run(rows)
    assert report.ok
    assert report.lines("duplicate_example") == [31]
    assert report.kept["duplicate_example"][0].message == "same as line 4"
    assert report.lines("near_duplicate_example") == [32]
    assert report.lines("inconsistent_system_prompt") == [33]
    assert {"pii_email", "pii_card_number", "secret_api_key"} <= codes(report)
    assert "sk-abcdefghijklmnopqrstuvwx" not in report.to_json()
    assert report.lines("long_tail") == [35]
    assert report.lines("empty_content") == [36]


def test_train_validation_leak() -> None:
    train = ft.Dataset.from_records([chat(i) for i in range(12)])
    held = ft.Dataset.from_records([chat(3), chat(500)], name="valid")
    report = validate(train, target="openai", model=MODEL, validation=held)
    (leak,) = report.kept["train_validation_leak"]
    assert (leak.file, leak.line) == ("valid", 1)
    unnamed = ft.Dataset.from_records([chat(3), {"messages": [{"role": "user", "content": "x"}]}])
    report = validate(train, target="openai", model=MODEL, validation=unnamed)
    (missing,) = report.kept["missing_assistant"]  # both sets are "records": say which one
    assert missing.location.startswith("validation records:2: ")
    assert report.kept["train_validation_leak"][0].file == "validation records"


def test_an_empty_validation_set_is_an_error_before_anything_is_uploaded(tmp_path: Path) -> None:
    train = ft.Dataset.from_records([chat(i) for i in range(12)])
    (tmp_path / "valid.jsonl").write_text("\n")
    for empty in (
        ft.Dataset.from_records([], name="held"),
        ft.Dataset.from_jsonl(tmp_path / "valid.jsonl"),
    ):
        report = validate(train, target="openai", model=MODEL, validation=empty)
        (finding,) = report.kept["too_few_examples"]
        assert finding.file == empty.name and not report.ok
        assert "the validation set has no examples; pass none" in finding.message
    (tmp_path / "array.json").write_text(json.dumps([chat(1)]))
    report = validate(
        train,
        target="openai",
        model=MODEL,
        validation=ft.Dataset.from_jsonl(tmp_path / "array.json"),
    )
    assert "not_jsonl" in report.counts and "too_few_examples" not in report.counts  # said once
    with pytest.raises(ft.ValidationFailed, match="validation set has no examples"):
        ft.Tuner("fake", model=MODEL, registry=False).fit(train, ft.Dataset.from_records([]))


def test_a_validation_set_of_another_kind_than_the_training_set_is_an_error() -> None:
    """TRL failed on it with KeyError: 'messages' once the job had started."""
    train = ft.Dataset.from_records([chat(i) for i in range(12)])
    held = ft.Dataset.from_records([{"prompt": "q", "completion": "a"}] * 2, name="held")
    report = validate(train, target="hf", model="any", validation=held)
    (finding,) = report.kept["mixed_kinds"]
    assert finding.location == "held"
    assert finding.message == "completion examples to validate chat training: give both one kind"
    report = validate(
        train, target="hf", model="any", validation=ft.Dataset.from_records([chat(50)])
    )
    assert "mixed_kinds" not in report.counts


def test_report_outputs() -> None:
    report = run([*[chat(i) for i in range(10)], {"messages": [{"role": "user", "content": "x"}]}])
    data = json.loads(report.to_json())
    assert data["ok"] is False and data["codes"]["missing_assistant"]["lines"] == [11]
    assert "| `missing_assistant` | error | 1 | 11 |" in report.to_markdown()
    assert ": 11 examples, 1 error, 0 warnings" in report.to_markdown()
    assert "missing_assistant" in report._repr_html_() and ">1 error</span>" in report._repr_html_()
    with pytest.raises(ft.ValidationFailed, match="records:11: messages"):
        report.raise_for_errors()
    clean = run([chat(i) for i in range(10)])
    assert clean.raise_for_errors().ok
    assert clean.to_markdown() == (
        f"**Validation OK** for `openai` / `{MODEL}`: 10 examples, 0 errors, 0 warnings"
    )
    # print(report) told only ok=False and the counts, not what was wrong where
    assert str(report).splitlines() == [
        f"Validation FAILED for openai / {MODEL}: 11 examples, 1 error, 0 warnings",
        "error missing_assistant x1",
        "  records:11: messages: no assistant message to learn from",
    ]
    assert str(clean) == f"Validation OK for openai / {MODEL}: 10 examples, 0 errors, 0 warnings"


def test_a_report_names_the_backend_that_borrows_another_s_rules() -> None:
    """The fake backend (and a plugin) validates with OpenAI's rules: its report was titled
    ``openai``, as if the data had been checked for another backend than the one asked."""
    data = ft.Dataset.from_records([chat(i) for i in range(3)])
    report = ft.Tuner("fake", model="m", registry=False).validate(data)
    assert str(report).startswith("Validation FAILED for fake (openai's rules) / m: 3 examples")
    assert report.to_markdown().startswith("**Validation FAILED** for `fake` (`openai`'s rules)")
    assert "(fake (openai&#x27;s rules))" in report._repr_html_()
    assert (report.target, report.backend) == ("openai", "fake")
    assert report.to_dict()["backend"] == "fake"
    own = ft.Tuner("openai", model=MODEL, registry=False).validate(data)
    assert str(own).startswith(f"Validation FAILED for openai / {MODEL}:")
    assert own.checked_as == "openai" and own.backend == "openai"


def test_a_report_of_two_files_keeps_each_line_with_its_file() -> None:
    """Training and validation findings were sorted by line alone, interleaving the two
    files, and the Markdown table's "first lines" mixed their numbers without a name."""

    def empty(question: str) -> dict[str, Any]:
        return {
            "messages": [
                {"role": "user", "content": question},
                {"role": "assistant", "content": ""},
            ]
        }

    rows = [chat(i) for i in range(12)]
    train = ft.Dataset.from_records([empty("a"), *rows[:2], empty("b"), *rows[2:]], name="tr")
    held = ft.Dataset.from_records([chat(100), empty("c")], name="va")
    report = validate(train, target="openai", model=MODEL, validation=held)
    assert report.files == ["tr", "va"]
    empties = [f.location for f in report.warnings if f.code == "empty_content"]
    assert empties == [f"{where}: messages[1].content" for where in ("tr:1", "tr:4", "va:2")]
    assert [f.file for f in report.warnings] == sorted(
        (f.file for f in report.warnings), key=report.files.index
    )
    assert report.lines("empty_content") == [1, 4, 2]
    assert report.lines("empty_content", file="va") == [2]
    assert "| `empty_content` | warning | 3 | tr: 1, 4; va: 2 |" in report.to_markdown()
    assert json.loads(report.to_json())["files"] == ["tr", "va"]
    alone = validate(train, target="openai", model=MODEL)
    assert "| `empty_content` | warning | 2 | 1, 4 |" in alone.to_markdown()  # one file: lines


def test_report_keeps_counts_but_bounds_findings() -> None:
    rows = [{"messages": [{"role": "user", "content": "x"}]} for _ in range(100)]
    report = run(rows, keep=5)
    assert report.counts["missing_assistant"] == 100
    assert len(report.kept["missing_assistant"]) == 5
    with pytest.raises(ft.ValidationFailed, match=r"^100 validation errors, nothing was uploaded"):
        report.raise_for_errors()  # every error counted, not the five kept


def test_a_small_cost_is_not_rounded_to_nothing() -> None:
    """76 tokens at 0.48 USD a million cost 0.0000365 USD: rounded to four places, "0.00 USD"."""
    from finetune._words import cost_figure

    data = ft.Dataset.from_records([{"prompt": "p" * 100, "completion": "c" * 160}])
    cost = estimate(data, target="together", backend="together", model="m", price_per_million=0.48)
    assert cost.cost == pytest.approx(cost.billed_tokens * 0.48e-6) and cost.cost > 0
    assert cost.billed_tokens == 76 and cost_figure(cost) == "0.0000365 USD"  # not 3.65e-05


@needs_tiktoken
def test_estimate_openai() -> None:
    data = ft.Dataset.from_records([chat(i) for i in range(20)])
    cost = estimate(data, target="openai", backend="openai", model=MODEL)
    assert cost.examples == 20 and cost.epochs == 5  # auto: 100 // 20
    assert "epochs='auto': 5 by openai's default rule for 20 examples" in cost.notes
    alone = estimate(data[:1], target="openai", backend="openai", model=MODEL)
    assert "epochs='auto': 25 by openai's default rule for 1 example" in alone.notes  # 1 examples
    assert cost.billed_tokens == cost.tokens_total * 5
    assert cost.price_per_million == 5.0 and cost.cost == pytest.approx(cost.billed_tokens * 5e-6)
    assert cost.exact and cost.fits_context and cost.pricing_date
    fixed = estimate(
        data,
        target="openai",
        backend="openai",
        model=MODEL,
        hyperparameters=ft.Hyperparameters(epochs=2),
    )
    assert fixed.epochs == 2


def test_an_estimate_of_data_a_fit_refuses_for_too_few_examples_says_so() -> None:
    """An estimate of 3 examples for OpenAI, which trains on 10 or more, priced the job
    with no word that a fit would refuse the data before it starts."""
    three = ft.Dataset.from_records([chat(i) for i in range(3)])
    refused = (
        "a fit refuses this data: 3 examples, and openai needs at least 10 (too_few_examples; "
        "tuner.validate(), finetune validate, checks it all)"
    )
    counter = ft.validation.ApproximateCounter("")
    by_name = estimate(three, target="openai", backend="openai", model=MODEL, token_counter=counter)
    assert by_name.notes[0] == refused
    own = ft.validation.Target("acme", frozenset({"chat"}), 4, None)  # a plugin's, unregistered
    of_a_plugin = estimate(three, target=own, backend="acme", model="m", token_counter=counter)
    assert of_a_plugin.notes[0] == refused.replace(
        "openai needs at least 10", "acme needs at least 4"
    )
    enough = estimate(
        ft.Dataset.from_records([chat(i) for i in range(10)]),
        target="openai",
        backend="openai",
        model=MODEL,
        token_counter=counter,
    )
    assert not any("refuses" in note for note in enough.notes)
    dolly = {"instruction": "Sum them.", "context": "2 and 2", "response": "4"}
    rows_of_no_kind = ft.Dataset.from_records([chat(i) for i in range(8)] + [dolly] * 2)
    counted_as_validation_does = estimate(
        rows_of_no_kind, target="openai", backend="openai", model=MODEL, token_counter=counter
    )  # 10 rows: validate names the two rows that are no example, not too_few_examples
    assert not any("refuses" in note for note in counted_as_validation_does.notes)


def test_an_estimate_counts_the_validation_set_and_says_what_it_could_not_read(
    tmp_path: Path,
) -> None:
    data = ft.Dataset.from_records([chat(i) for i in range(20)])
    holdout = ft.Dataset.from_jsonl(
        write_jsonl(tmp_path / "holdout.jsonl", [chat(i) for i in range(20, 25)] + ["{not json"])
    )
    alone = estimate(data, target="openai", backend="openai", model=MODEL)
    both = estimate(data, target="openai", backend="openai", model=MODEL, validation=holdout)
    readable = ft.Dataset.from_records([chat(i) for i in range(20, 25)])
    five = estimate(readable, target="openai", backend="openai", model=MODEL)
    assert (both.validation_tokens, both.validation_passes) == (five.tokens_total, 0)
    assert both.billed_tokens == alone.billed_tokens  # OpenAI: training tokens only
    assert "not counted: 1 line of the validation set that could not be read; " in " ".join(
        both.notes
    )


def test_an_estimate_leaves_out_rows_of_no_kind_and_is_not_exact_where_it_guessed() -> None:
    """A Dolly row (no example kind) was counted as an empty example, its few tokens of
    overhead in the total, with no note; an estimate that guessed a refused example's tokens
    at 4 characters a token still said ``exact``."""
    rows = [chat(i) for i in range(20)]
    dolly = {"instruction": "Sum them.", "context": "2 and 2", "response": "4"}
    alone = estimate(ft.Dataset.from_records(rows), target="hf", backend="hf", model="m")
    both = estimate(
        ft.Dataset.from_records([*rows, dolly, dolly]), target="hf", backend="hf", model="m"
    )
    assert (both.examples, both.tokens_total) == (20, alone.tokens_total)
    assert (
        "not counted: 2 rows of no example kind (neither chat, completion nor preference); "
        "tuner.validate() (finetune validate) names them, and how to read them"
    ) in both.notes
    pytest.importorskip("mistral_common")  # the Mistral tokenizer that refuses the example
    ends_with_a_question = {
        "messages": [{"role": "assistant", "content": "a"}, {"role": "user", "content": "q"}]
    }
    guessed = estimate(
        ft.Dataset.from_records([*rows, ends_with_a_question]),
        target="mistral",
        backend="mistral",
        model="open-mistral-nemo",
        price_per_million=1.0,
    )
    assert any("the tokenizer refused" in note for note in guessed.notes)
    assert not guessed.exact


@pytest.mark.parametrize(
    ("target", "model", "price"),
    [
        ("openai", "gpt-4.1", 25.0),  # the alias of gpt-4.1-2025-04-14, not of gpt-4.1-mini
        ("openai", "gpt-4o", 25.0),
        ("openai", "gpt-4o-mini", 3.0),
        ("openai", "ft:gpt-4.1-nano-2025-04-14:acme:support:abc123", 1.5),
        ("openai", "gpt-3.5-turbo", 8.0),  # two snapshots, one price
        ("openai", "gpt-4", None),  # a prefix of several models names none of them
        ("openai", "g", None),
        ("together", "meta-llama/Meta-Llama-3.1-8B-Instruct", 0.48),  # without -Reference
        ("mistral", "open-mistral-nemo-2407", 1.0),
        ("mistral", "codestral-2501", 3.0),  # a dated codestral-latest
    ],
)
def test_a_model_is_priced_as_itself_never_as_a_longer_name(
    target: str, model: str, price: float | None
) -> None:
    from finetune.validation._catalog import model_info

    info = model_info(target, model)
    assert (info or {}).get("price") == price


@needs_tiktoken
def test_a_model_openai_does_not_train_is_named_with_the_models_meant(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A misspelt model is caught before the upload, not by OpenAI after it."""
    data = ft.Dataset.from_records([chat(i) for i in range(20)])
    report = validate(data, target="openai", model="gpt-4o-mni")
    (finding,) = report.kept["unknown_model"]
    assert report.ok and finding.severity == "warning" and finding.line is None
    assert "did you mean gpt-4o-mini-2024-07-18?" in finding.message
    assert "No example was checked against a context limit" in finding.message
    given = validate(data, target="openai", model="gpt-5", context_limit=4096)
    (finding,) = given.kept["unknown_model"]
    assert "(of 2025-06-01)." in finding.message and "did you mean" not in finding.message
    assert "context limit" not in finding.message.split("FINETUNE_MODELS_FILE")[0]
    for known in (MODEL, "gpt-4.1-mini", "ft:gpt-4o-mini-2024-07-18:acme:support:abc123"):
        assert "unknown_model" not in codes(validate(data, target="openai", model=known))
    for other in ("mistral", "together", "hf"):  # tables of some of the models they train
        assert "unknown_model" not in codes(validate(data, target=other, model="gpt-4o-mni"))
    assert "(did you mean gpt-4o-mini-2024-07-18?)" in " ".join(
        estimate(data, target="openai", backend="openai", model="gpt-4o-mni").notes
    )
    qwen = estimate(data, target="together", backend="together", model="Qwen/Qwen3-8b")
    assert "Qwen/Qwen3-8b is not in our table (did you mean Qwen/Qwen3-8B?): priced at " in (
        " ".join(qwen.notes)
    )
    for target, model, meant in (  # a name without its owner's part, as a model page shows it
        ("together", "Qwen3-8B", "Qwen/Qwen3-8B"),
        ("together", "together_ai/Qwen/Qwen3-8B", "Qwen/Qwen3-8B"),  # LiteLLM's name for it
        ("openai", "openai/gpt-4o-mini", "gpt-4o-mini-2024-07-18"),
        ("fireworks", "llama-v3p1-8b-instruct", "accounts/fireworks/models/llama-v3p1-8b-instruct"),
    ):
        notes = " ".join(estimate(data, target=target, backend=target, model=model).notes)
        assert f" in our table (did you mean {meant}?)" in notes  # priced by its size or not
    # another size is another model: a 3B model was "meant" to be the table's Llama 3.3 70B
    for model in ("meta-llama/Llama-3.2-3B-Instruct", "Qwen/Qwen3-14B"):
        notes = " ".join(estimate(data, target="together", backend="together", model=model).notes)
        assert f"{model} is not in our table: priced at" in notes
    # a backend that borrows OpenAI's rules trains its own models: no table of them
    fake = ft.Tuner("fake", model="acme-1", registry=False)
    assert fake.capabilities.validation_target == "openai"
    assert "unknown_model" not in codes(fake.validate(data))
    table = json.loads(
        (Path(ft.__file__).parent / "data" / "models.json").read_text(encoding="utf-8")
    )
    table["openai"]["models"]["gpt-5-2026-01-01"] = {"context": 65536, "price": 30.0}
    mine = tmp_path / "models.json"
    mine.write_text(json.dumps(table), encoding="utf-8")
    monkeypatch.setenv("FINETUNE_MODELS_FILE", str(mine))
    assert "unknown_model" not in codes(validate(data, target="openai", model="gpt-5"))


def test_prices_carry_their_own_date_and_an_old_table_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import datetime

    from finetune.lifecycle import today as utc_today

    data = ft.Dataset.from_records([chat(i) for i in range(20)])
    together = estimate(data, target="together", backend="together", model="Qwen/Qwen3-8B")
    assert together.pricing_date == "2025-11-01"  # Together's section, not the table's date
    today = utc_today()  # the clock the closing dates are read by (tests: TESTS_TODAY)
    for age, old in ((30, False), (400, True)):
        dated = (today - datetime.timedelta(days=age)).isoformat()
        table = {
            "pricing_date": dated,
            "acme": {"source": "https://acme.test/pricing (per 1M)", "models": {"m": {"price": 2}}},
        }
        path = tmp_path / f"models-{age}.json"
        path.write_text(json.dumps(table))
        monkeypatch.setenv("FINETUNE_MODELS_FILE", str(path))
        figures = estimate(data, target="acme", backend="acme", model="m")
        notes = [note for note in figures.notes if "may have changed" in note]
        assert figures.pricing_date == dated and bool(notes) is old
        if old:
            assert f"{dated}, 400 days ago" in notes[0] and "https://acme.test/pricing " in notes[0]
        own = estimate(data, target="acme", backend="acme", model="m", price_per_million=1.0)
        assert own.pricing_date is None and not any("changed" in n for n in own.notes)


def test_a_model_table_of_ones_own_that_cannot_be_used_is_named_with_the_entry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A price of "5" failed in a sum as ``TypeError``, a missing file as a bare
    ``FileNotFoundError``: neither said that ``FINETUNE_MODELS_FILE`` was the cause."""
    data = ft.Dataset.from_records([chat(i) for i in range(20)])
    cases = [
        ({"acme": {"models": {"m": {"price": "5"}}}}, r"acme.models.m.price is USD per 1M"),
        ({"acme": {"models": {"m": {"context": "lots"}}}}, r"acme.models.m.context is a whole"),
        ([1, 2], "not a JSON object of targets"),
        ("{not json", r"cannot be read \(Expecting property name"),
        (None, r"cannot be read \(\[Errno 2\]"),
        # each was a TypeError, an AttributeError or int()'s "invalid literal" from an estimate
        ({"acme": {"models": ["m"]}}, r"acme.models is an object of model names, .* not list"),
        ({"acme": [1]}, r"acme is an object of models, default_epochs, .* not list \[1\]"),
        ({"acme": {"default_epochs": "three"}}, r"acme.default_epochs is a whole number of 1"),
        ({"acme": {"minimum_fee": "4"}}, r"acme.minimum_fee is USD per job, not '4'"),
        ({"acme": {"size_prices": [[16, 0.5], [8, 3]]}}, r"acme.size_prices is a list of \["),
        ({"acme": {"size_prices": [[16, "0.5"]]}}, r"acme.size_prices is a list of \["),
        ({"acme": {"size_prices": {"16": 0.5}}}, r"acme.size_prices is a list of \["),
        ({"acme": {"size_prices": 16}}, r"acme.size_prices is a list of \["),
        ({"acme": {"size_prices": [[True, 0.5]]}}, r"acme.size_prices is a list of \["),
        ({"acme": {"models": {"m": {"images": "yes"}}}}, r"acme.models.m.images is true or"),
        ({"pricing_date": 5}, r"pricing_date is a date as 2025-06-01, not 5"),
        ({"acme": {"pricing_date": "June"}}, r"acme.pricing_date is a date as 2025-06-01"),
        (  # another model's entry than the one asked about: the table is checked whole
            {"acme": {"models": {"m": {"price": 1}, "n": {"price": "x"}}}},
            r"acme.models.n.price is USD per 1M",
        ),
    ]
    for number, (table, says) in enumerate(cases):
        path = tmp_path / f"models-{number}.json"
        if table is not None:
            path.write_text(table if isinstance(table, str) else json.dumps(table))
        monkeypatch.setenv("FINETUNE_MODELS_FILE", str(path))
        with pytest.raises(ft.StorageError, match=f"^FINETUNE_MODELS_FILE={path}: {says}"):
            estimate(data, target="acme", backend="acme", model="m")
    from finetune.validation._catalog import _checked_table, _load

    bundled = _load(None)
    assert _checked_table(bundled, "the bundled model table") is bundled  # ours passes too


@pytest.mark.parametrize(
    ("target", "model", "price"),
    [
        ("together", "meta-llama/Llama-3.2-3B-Instruct", 0.48),
        ("together", "Qwen/Qwen2.5-72B-Instruct", 2.9),
        ("together", "google/gemma-2-27b-it", 1.5),
        ("fireworks", "accounts/fireworks/models/qwen2p5-32b-instruct", 3.0),
        ("fireworks", "accounts/fireworks/models/deepseek-r1-distill-qwen-1p5b", 0.5),
        ("together", "meta-llama/Llama-3.1-405B-Instruct", None),  # past the last bracket
        ("together", "Qwen/Qwen3-235B-A22B-Instruct-2507", None),  # a mixture: its own price
        ("together", "mistralai/Mixtral-8x7B-Instruct-v0.1", None),
        ("together", "meta-llama/Llama-4-Scout-17B-16E-Instruct", None),  # 17B of 109B
        ("openai", "gpt-4.2-mini-8b", None),  # a provider that does not price by size
    ],
)
def test_a_model_the_table_lacks_is_priced_by_the_size_its_name_gives(
    target: str, model: str, price: float | None
) -> None:
    """Together and Fireworks price by size bracket: a model of theirs our table lacks had no
    cost at all, though its name gave its bracket."""
    data = ft.Dataset.from_records([chat(i) for i in range(20)])
    quoted = estimate(data, target=target, backend=target, model=model)
    notes = " ".join(quoted.notes)
    assert quoted.price_per_million == price
    if price is None:
        assert quoted.cost is None and f"no published training price for {model}" in notes
        return
    assert quoted.cost == pytest.approx(quoted.billed_tokens * price / 1e6)
    assert f"{model} is not in our table: priced at {target}'s rate for models of up to " in notes
    assert "if it is another size, pass estimate(price_per_million=...)" in notes
    assert "no published training price" not in notes
    priced = estimate(data, target=target, backend=target, model=model, price_per_million=1.0)
    assert priced.price_per_million == 1.0 and "not in our table" not in " ".join(priced.notes)
    local = estimate(data, target=target, backend="hf", model=model, hosted=False)
    assert local.cost is None  # no provider bill for a local run


def test_default_epoch_rule() -> None:
    assert default_epochs("openai", 10) == 10
    assert default_epochs("openai", 1) == 25
    assert default_epochs("openai", 100) == 3
    assert default_epochs("openai", 20_000) == 1


def test_together_without_packing_bills_every_example_at_max_seq_length() -> None:
    data = ft.Dataset.from_records([chat(i) for i in range(20)])
    together = {"target": "together", "backend": "together", "model": TOGETHER}

    def billed(**extra: Any) -> ft.CostEstimate:
        params = ft.Hyperparameters(epochs=2, extra=extra)
        return estimate(data, hyperparameters=params, **together)

    packed = billed()
    assert packed.billed_tokens == 2 * packed.tokens_total
    assert billed(packing=True).billed_tokens == packed.billed_tokens
    padded = billed(packing=False, max_seq_length=2048)
    assert padded.billed_tokens == 20 * 2048 * 2
    assert padded.cost == pytest.approx(padded.billed_tokens * 0.48e-6)
    said = " ".join(padded.notes)
    assert "packing=False: Together bills each training example at max_seq_length" in said
    assert f"20 examples x 2048 x 2 epochs = {20 * 2048 * 2}" in said
    whole = billed(packing=False)  # no max_seq_length: the model's context, said as a guess
    assert whole.billed_tokens == 20 * 131072 * 2
    assert "max_seq_length not set: taken as the model's context, 131072" in " ".join(whole.notes)
    fireworks = estimate(  # a provider without that rule bills the examples' own tokens
        data,
        target="fireworks",
        backend="fireworks",
        model="accounts/fireworks/models/llama-v3p1-8b-instruct",
        hyperparameters=ft.Hyperparameters(epochs=2, extra={"packing": False}),
    )
    assert fireworks.billed_tokens == 2 * fireworks.tokens_total


def test_estimate_mistral_has_a_range() -> None:
    pytest.importorskip("mistral_common")
    data = ft.Dataset.from_records([chat(i) for i in range(20)])
    cost = estimate(data, target="mistral", backend="mistral", model="mistral-small-latest")
    assert cost.cost is None and cost.cost_low is not None and cost.cost_high is not None
    assert cost.cost_low < cost.cost_high
    assert not cost.exact


ZSTD_MAGIC = b"(\xb5/\xfd"


def _zstd_readable() -> bool:
    """Whether Python 3.14's zstd or the ``zstd`` extra's backport is here."""
    for name in ("compression.zstd", "backports.zstd"):
        try:
            importlib.import_module(name)
        except ImportError:
            continue
        return True
    return False


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400))
def test_arbitrary_bytes_never_crash(tmp_path_factory: pytest.TempPathFactory, blob: bytes) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "f.jsonl"
    path.write_bytes(blob)
    if blob.startswith(ZSTD_MAGIC) and not _zstd_readable():  # read as zstd: needs its reader
        with pytest.raises(ft.MissingDependency, match=r'pip install "finetune\[zstd\]"'):
            validate(ft.Dataset.from_jsonl(path), target="openai", model=MODEL)
        return
    report = validate(ft.Dataset.from_jsonl(path), target="openai", model=MODEL)
    assert isinstance(report, ft.ValidationReport)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=12,
)
SHAPED = st.fixed_dictionaries(
    {
        "messages": st.lists(
            st.dictionaries(
                st.sampled_from(
                    ["role", "content", "weight", "tool_calls", "tool_call_id", "name"]
                ),
                JSON,
                max_size=4,
            ),
            max_size=4,
        )
    },
    optional={"tools": JSON},
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.dictionaries(st.text(max_size=8), JSON), SHAPED), max_size=5))
@pytest.mark.parametrize("target", ["openai", "mistral", "hf"])
def test_arbitrary_json_never_crashes(target: str, rows: list[dict[str, Any]]) -> None:
    report = run(rows, target=target, model="open-mistral-nemo" if target == "mistral" else MODEL)
    assert report.examples == len(rows)


CALL = {"id": "call00001", "type": "function", "function": {"name": "f", "arguments": "{}"}}
VALID_ROWS = [
    {
        "messages": [
            {"role": "system", "content": "s", "name": "ops"},
            {"role": "user", "content": [{"type": "text", "text": "q"}]},
            {"role": "assistant", "content": None, "tool_calls": [CALL]},
            {"role": "tool", "tool_call_id": "call00001", "content": "r"},
            {"role": "assistant", "content": "a", "weight": 1},
        ],
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}],
    },
    {
        "input": {"messages": [{"role": "user", "content": "q"}]},
        "preferred_output": [{"role": "assistant", "content": "a"}],
        "non_preferred_output": [{"role": "assistant", "content": None, "tool_calls": [CALL]}],
    },
    {"prompt": [{"role": "user", "content": "q"}], "chosen": "a", "rejected": "b"},
    # other tools' shapes, read as ours
    {"system": "s", "prompt": "q", "chosen": "a", "rejected": "b"},
    {"conversation": [{"input": "q", "output": "a"}, {"input": "q2", "output": "a2"}]},
    {"conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}]},
    {"instruction": "i", "input": "x", "output": "o", "system": "s", "history": [["q", "a"]]},
    {
        "contents": [
            {"role": "user", "parts": [{"text": "q"}]},
            {"role": "model", "parts": [{"text": "a"}]},
        ]
    },
]
KEYS_ADDED = ["name", "tool_calls", "tool_call_id", "index", "type", "id", "weight", "strict"]


def _places(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """The path of ``value`` and of every object and item inside it."""
    inner: list[Any] = []
    if isinstance(value, dict):
        inner = [_places(item, (*path, key)) for key, item in value.items()]
    elif isinstance(value, list):
        inner = [_places(item, (*path, index)) for index, item in enumerate(value)]
    return [path, *(place for places in inner for place in places)]


def _changed(row: dict[str, Any], data: st.DataObject) -> dict[str, Any]:
    """``row`` with a value replaced, or a key added to one of its objects, by ``data``."""
    row = json.loads(json.dumps(row))
    path = data.draw(st.sampled_from(_places(row)[1:]))
    owner = row
    for step in path[:-1]:
        owner = owner[step]
    target = owner[path[-1]]
    if isinstance(target, dict) and data.draw(st.booleans()):
        target[data.draw(st.sampled_from(KEYS_ADDED))] = data.draw(JSON)
    else:
        owner[path[-1]] = data.draw(JSON)
    return row


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
@pytest.mark.parametrize("target", ["openai", "together", "hf"])
def test_a_row_validation_lets_through_is_one_fit_reads(target: str, data: st.DataObject) -> None:
    row = data.draw(st.sampled_from(VALID_ROWS))
    for _ in range(data.draw(st.integers(1, 2))):
        row = _changed(row, data)
    others = [chat(i) for i in range(11)] if "messages" in row else []
    report = run([row, *others], target=target, model="m" if target != "openai" else MODEL)
    findings = (f for code in report.kept for f in report.kept[code])
    refused = any(f.severity == "error" and f.line == 1 for f in findings)
    event("validation refused it" if refused else "validation let it through")
    if not refused:
        list(ft.Dataset.from_records([row]))  # a DatasetError here: fit refuses what passed


def test_a_parts_text_that_is_not_a_string_is_refused_by_validation_as_by_reading() -> None:
    """A part of another type holding a non-string ``text`` passed validation (only a
    ``"text"`` part's was checked), and reading it refused the row (found by the property
    test above)."""
    part = {"type": "input_audio", "text": []}
    row = {"messages": [{"role": "user", "content": [part]}, {"role": "assistant", "content": "a"}]}
    with pytest.raises(ft.DatasetError):
        list(ft.Dataset.from_records([row]))
    report = run([row], target="hf", model="m")
    (finding,) = [f for f in report.errors if f.code == "invalid_content"]
    assert (finding.field, finding.message) == (
        "messages[0].content[0]",
        'a part\'s "text" is a string, not an array',
    )


def test_a_message_field_of_the_wrong_type_or_place_is_refused_by_validation() -> None:
    def turns(*changed: dict[str, Any]) -> dict[str, Any]:
        return {"messages": [{"role": "user", "content": "q"}, *changed]}

    answer = {"role": "assistant", "content": "a"}
    cases = [
        (turns({**answer, "name": 0}), "invalid_name", "messages[1].name"),
        (turns({**answer, "tool_call_id": "c1"}), "misplaced_field", "messages[1].tool_call_id"),
        (
            {"messages": [{"role": "user", "content": "q", "tool_calls": [CALL]}, answer]},
            "misplaced_field",
            "messages[0].tool_calls",
        ),
        (
            turns({"role": "assistant", "tool_calls": [{**CALL, "index": 0}]}),
            "unexpected_field",
            "messages[1].tool_calls[0].index",
        ),
    ]
    for row, code, field in cases:
        report = run([row, *(chat(i) for i in range(11))], target="together", model="m")
        assert [(f.code, f.field, f.line) for f in report.kept[code]] == [(code, field, 1)]
        if code != "misplaced_field":  # read, but no provider takes it
            with pytest.raises(ft.DatasetError):  # as fit would read it
                list(ft.Dataset.from_records([row]))
    # a call's unknown key holding nothing is dropped by both, as a message's is
    empty = turns({"role": "assistant", "tool_calls": [{**CALL, "index": None}]})
    report = run([empty], target="together", model="m")
    assert [f.field for f in report.kept["unknown_field"]] == ["messages[1].tool_calls[0].index"]
    (read,) = ft.Dataset.from_records([empty])
    assert read.messages[1].tool_calls[0].id == CALL["id"]
    held = turns({"role": "assistant", "tool_calls": [{**CALL, "x": 1}]})
    with pytest.raises(ft.DatasetError, match="a tool call takes function, id, type"):
        list(ft.Dataset.from_records([held]))


TEXT = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=40
).filter(str.strip)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(TEXT, TEXT), min_size=10, max_size=15))
def test_generated_valid_examples_pass(pairs: list[tuple[str, str]]) -> None:
    rows = [
        {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}
        for q, a in pairs
    ]
    report = run(rows)
    assert report.error_count == 0, report.summary()


def test_every_rule_code_is_documented() -> None:
    from finetune.validation import RULES

    page = (Path(__file__).parents[1] / "docs" / "validation-rules.md").read_text()
    assert [code for code in RULES if f"`{code}`" not in page] == []


@needs_tiktoken
def test_parallel_scan_reports_exactly_what_a_sequential_scan_does(tmp_path: Path) -> None:
    """In a fresh interpreter: threads left by other tests would keep the scan sequential
    (workers are forked only where no other thread runs), and the test void."""
    rows: list[Any] = [chat(i) for i in range(3000)]
    rows[10] = {"messages": [{"role": "user", "content": "no answer"}]}
    rows[2500] = "{broken"
    rows[2900] = chat(5)  # duplicate of a line in the first half
    rows[1700] = chat(7, system="Another prompt")
    path = write_jsonl(tmp_path / "many.jsonl", rows)
    script = f"""
import json
import finetune as ft
from finetune.validation import _engine, validate
_engine.PARALLEL_MIN_BYTES = 0
split = []
def scanned_in_parts(scan, readers, scan_in_parallel=_engine._scan_in_parallel):
    split.append(len(readers))
    scan_in_parallel(scan, readers)
_engine._scan_in_parallel = scanned_in_parts
data = ft.Dataset.from_jsonl({str(path)!r})
sequential = validate(data, target="openai", model={MODEL!r}, workers=1).to_dict()
parallel = validate(data, target="openai", model={MODEL!r}, workers=3).to_dict()
print(json.dumps([split, parallel == sequential, sequential]))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    split, same, sequential = json.loads(done.stdout.strip().splitlines()[-1])
    assert split == [3] and same
    assert sequential["codes"]["invalid_json"]["lines"] == [2501]
    assert sequential["codes"]["duplicate_example"]["lines"] == [2901]
    assert sequential["codes"]["inconsistent_system_prompt"]["lines"] == [1701]


@pytest.mark.parametrize(
    "text",
    [
        "call +1 (555) 123-4567 now",
        "call 555.123.4567",
        "card 4111-1111-1111-1111",
        "card 4111111111111111",
        "write to a.b@example.org",
        "token ghp_" + "a" * 36,
        "key AKIA" + "A" * 16,
        "key sk-proj-" + "b" * 24,
        "slack xoxb-" + "1" * 12,
        "google AIza" + "c" * 35,
    ],
)
def test_pii_prefilter_never_hides_a_match(text: str) -> None:
    from finetune.validation._quality import _PII, _might_hold_pii

    assert _PII.search(text) is not None
    assert _might_hold_pii(text)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="0123456789 .-()+abc", max_size=40))
def test_pii_prefilter_is_a_necessary_condition(text: str) -> None:
    from finetune.validation._quality import _PII, _might_hold_pii

    if _PII.search(text) is not None:
        assert _might_hold_pii(text)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_every_pii_match_passes_the_prefilter(data: st.DataObject) -> None:
    """Text built around a real match of each pattern, with any text before and after it."""
    from finetune.validation._quality import _PII, _might_hold_pii

    match = data.draw(
        st.sampled_from(
            [
                st.from_regex(
                    r"[A-Za-z0-9._%+-]{1,8}@[A-Za-z0-9.-]{1,8}\.[A-Za-z]{2,4}", fullmatch=True
                ),
                st.from_regex(r"sk-(proj-)?[A-Za-z0-9_-]{20,30}", fullmatch=True),
                st.from_regex(r"AKIA[0-9A-Z]{16}", fullmatch=True),
                st.from_regex(r"gh[pousr]_[A-Za-z0-9]{30,34}", fullmatch=True),
                st.from_regex(r"xox[abpr]-[A-Za-z0-9-]{10,14}", fullmatch=True),
                st.from_regex(r"AIza[0-9A-Za-z_-]{35}", fullmatch=True),
                st.from_regex(r"(\d[ -]?){13,19}", fullmatch=True),
                st.from_regex(
                    r"\+?\(?\d{1,4}\)?[ .-]?\d{2,4}[ .-]?\d{3,4}[ .-]?\d{3,4}", fullmatch=True
                ),
            ]
        ).flatmap(lambda strategy: strategy)
    )
    around = st.text(alphabet=st.characters(codec="utf-8"), max_size=20)
    text = data.draw(around) + " " + match + " " + data.draw(around)
    if _PII.search(text) is not None:
        assert _might_hold_pii(text)


def test_a_long_run_of_address_characters_is_scanned_in_one_pass() -> None:
    """A hex dump, a base64url blob or a sequence of 400,000 characters with no space: the
    email pattern was tried at each of its places and scanned the rest of the run from each,
    time quadratic in its length (6 s at 80,000 characters, minutes here). In a fresh
    interpreter, so that a scan that never ends is stopped; it takes milliseconds."""
    script = """
from finetune.validation._quality import QualityScan
found = []
run = "0123456789abcdef" * 25_000
text = run + " write to jane.doe@example.com or " + run + "@example.org"
QualityScan().observe_texts(["user"], [text], 1, 0, lambda *finding: found.append(finding[:2]))
print(found)
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    found = done.stdout.strip()
    assert found.count("pii_email") == 2, found  # the one after a space, the run before an @


def test_repeated_values_across_sorted_chunks() -> None:
    """Duplicates are found whether they sit in one chunk or in different ones."""
    import random
    from array import array

    from finetune.validation._quality import _repeated_values

    rng = random.Random(7)
    values = [rng.getrandbits(64) - (1 << 63) for _ in range(5000)]
    twins = values[10:60] + [-(1 << 63), (1 << 63) - 1] * 2
    values += twins
    rng.shuffle(values)
    expected = set(twins)
    for chunk in (7, 100, 1 << 17):
        assert _repeated_values(array("q", values), chunk=chunk) == expected
    assert _repeated_values(array("q")) == set()


_ROLES_DRAWN = st.sampled_from(["system", "system", "user", "assistant", "tool", "bogus", 3])
_CONTENT_DRAWN = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["", "  ", "a\tb  c ", "Call 555 123 4567", "Be brief.", "lone \ud800 half"]),
    st.none(),
)
_MESSAGE_DRAWN = st.builds(
    lambda role, content, extra: {"role": role, "content": content, **extra},
    _ROLES_DRAWN,
    _CONTENT_DRAWN,
    st.sampled_from([{}, {}, {}, {"weight": 0}, {"name": "n"}]),
)


_TEXT_DRAWN = st.one_of(
    st.text(min_size=1, max_size=40).filter(str.strip),
    st.sampled_from(["a\tb  c ", "Call 555 123 4567", "Be brief.", "lone \ud800 half", " "]),
)
_NEARLY_PLAIN_DRAWN = st.builds(
    lambda head, last: [*head, last],
    st.lists(
        st.builds(
            lambda role, content: {"role": role, "content": content},
            st.sampled_from(["system", "user", "assistant"]),
            _TEXT_DRAWN,
        ),
        max_size=4,
    ),
    st.builds(lambda content: {"role": "assistant", "content": content}, _TEXT_DRAWN),
)


@needs_tiktoken
@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    messages=st.one_of(st.lists(_MESSAGE_DRAWN, max_size=5), _NEARLY_PLAIN_DRAWN),
    extra=st.sampled_from([{}, {}, {"tools": []}]),
)
def test_the_plain_chat_shortcut_agrees_with_every_rule(
    messages: list[dict[str, Any]], extra: dict[str, Any]
) -> None:
    """The fast path takes only records no rule objects to, and counts and hashes them alike."""
    from finetune.validation._quality import QualityScan
    from finetune.validation._rules import check_record, plain_chat, target_rules

    record = {"messages": messages, **extra}
    plain = plain_chat(record)
    if plain is None:
        return
    roles, texts = plain
    event(f"plain chat with {roles.count('system')} system prompt(s)")
    assert [{"role": r, "content": t} for r, t in zip(roles, texts, strict=True)] == messages
    for target in ("openai", "mistral", "hf"):
        assert list(check_record(record, target_rules(target), "gpt-4.1-mini-2025-04-14")) == []
    counter = counter_for("openai", "gpt-4.1-mini-2025-04-14")
    assert counter.count_plain(roles, texts) == counter.count_example(record)  # type: ignore[attr-defined]
    full, fast = QualityScan(), QualityScan()
    found: list[tuple[Any, ...]] = []
    for line in (1, 2):  # the second time, its system prompts have been seen before
        full.observe(record, line, 5, lambda *a: found.append(("full", *a)))
        fast.observe_texts(roles, texts, line, 5, lambda *a: found.append(("fast", *a)))
    assert (full.exact, full.normalized, full.system_prompts) == (
        fast.exact,
        fast.normalized,
        fast.system_prompts,
    )
    assert [f[1:] for f in found if f[0] == "full"] == [f[1:] for f in found if f[0] == "fast"]


def test_the_shortcut_takes_the_usual_shape_and_nothing_odd() -> None:
    from finetune.validation._rules import plain_chat

    assert plain_chat(chat(1)) is not None
    odd = [
        {**chat(1), "tools": []},
        {"messages": [{"role": "user", "content": "q"}]},
        {"messages": [{"role": "assistant", "content": " "}]},
        {"messages": [{"role": "assistant", "content": "a", "weight": 1}]},
        {"messages": [{"role": "tool", "content": "a"}, {"role": "assistant", "content": "b"}]},
        {"messages": [{"role": ["x"], "content": "a"}]},
    ]
    assert [plain_chat(record) for record in odd] == [None] * len(odd)


def test_a_preference_pairs_input_is_read_for_duplicates_and_personal_data() -> None:
    """Our own shape (``input`` a list of messages) was skipped: twelve pairs with twelve
    questions and the same answers were "duplicates", and an email in an input was missed.
    A pair whose chosen and rejected answers are the same is said to teach nothing."""

    def pair(question: str, chosen: str, rejected: str) -> dict[str, Any]:
        return {
            "input": [{"role": "user", "content": question}],
            "chosen": [{"role": "assistant", "content": chosen}],
            "rejected": [{"role": "assistant", "content": rejected}],
        }

    rows = [pair(f"question {i}", "yes", "no") for i in range(11)]
    rows.append(pair("write to jane.doe@example.com", "sure", "no"))
    report = run(rows)
    assert "duplicate_example" not in report.counts, report.summary()
    assert report.lines("pii_email") == [12]
    same = run([pair(f"question {i}", "yes", "yes") for i in range(12)])
    assert same.counts["identical_pair"] == 12 and same.error_count == 0
    assert (
        str(same.kept["identical_pair"][0])
        == "records:1: rejected: warning identical_pair: the same as chosen"
    )


def test_an_empty_prompt_completion_or_plain_text_answer_is_named() -> None:
    """Text given as a plain string (a completion row, TRL's string pair) was never looked at:
    an empty completion or chosen answer passed, and so did a pair with the same answers."""
    rows: list[dict[str, Any]] = [{"prompt": f"p{i}", "completion": f"c{i}"} for i in range(12)]
    rows[3]["completion"], rows[4]["completion"], rows[5]["prompt"] = "", "  ", ""
    report = run(rows)
    assert [str(f) for f in report.kept["empty_content"]] == [
        "records:4: completion: warning empty_content: completion is empty",
        "records:5: completion: warning empty_content: completion is empty",
        "records:6: prompt: warning empty_content: prompt is empty",
    ]
    pairs: list[dict[str, Any]] = [
        {"prompt": f"p{i}", "chosen": f"yes {i}", "rejected": f"no {i}"} for i in range(12)
    ]
    pairs[1]["rejected"] = "yes 1"
    pairs[2]["rejected"] = [{"role": "assistant", "content": "yes 2"}]  # the same, as messages
    pairs[3]["chosen"] = ""
    report = run(pairs)
    assert report.lines("identical_pair") == [2, 3]
    assert report.lines("empty_content") == [4]
    assert report.error_count == 0


def test_what_reading_the_data_refuses_validation_refuses_first() -> None:
    """A tool or tool call of another type, and OpenAI's preference outputs given as text,
    passed validation, then stopped fit when the rows were read."""

    def row(tool: dict[str, Any], call_type: Any = "function") -> dict[str, Any]:
        call = {"id": "call_1", "type": call_type, "function": {"name": "f", "arguments": "{}"}}
        return {
            "messages": [
                {"role": "user", "content": "q"},
                {"role": "assistant", "content": None, "tool_calls": [call]},
                {"role": "tool", "tool_call_id": "call_1", "content": "r"},
                {"role": "assistant", "content": "a"},
            ],
            "tools": [tool],
        }

    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    rows = [row(tool) for _ in range(10)]
    rows[1] = row({**tool, "type": "retrieval"})
    rows[2] = row(tool, call_type=None)
    rows[3] = row({"function": {"name": "f", "parameters": "{}"}})
    report = run(rows, "together", model="meta-llama/Llama-3.2-3B-Instruct")
    assert [str(f) for f in report.errors] == [
        "records:2: tools[0].type: error invalid_tools: type must be \"function\", not 'retrieval'",
        "records:3: messages[1].tool_calls[0].type: error invalid_tool_call: type must be "
        '"function", not None',
        "records:4: tools[0].function.parameters: error invalid_tools: parameters is a JSON "
        'schema object, as {"type": "object", ...}',
    ]
    for line in (2, 3):
        with pytest.raises(ft.DatasetError):
            list(ft.Dataset.from_records([rows[line - 1]]))
    answer = [{"role": "assistant", "content": "a"}]
    pair = {"input": {"messages": [{"role": "user", "content": "q"}]}, "preferred_output": "yes"}
    report = run([{**pair, "non_preferred_output": answer}], "together", model="m")
    assert report.lines("invalid_preference") == [1]
    ours = {"input": [{"role": "user"}], "chosen": answer, "rejected": [{"role": "assistant"}]}
    fields = [f.field for f in run([ours], "together", model="m").errors]
    assert fields == ["input[0].content", "rejected[0].content"]  # as the row spells them


def test_a_pair_in_the_wrong_shape_is_told_the_shape_meant_and_its_line_once() -> None:
    """OpenAI's ``input: {"messages": [...]}`` beside ``chosen``/``rejected``, and answers
    given as one message, said only "must be a non-empty list"; the table's first lines
    said ``1, 1, 1, 2, 2`` for two rows with three problems each."""
    question = [{"role": "user", "content": "q"}]
    mixed = {
        "input": {"messages": question},
        "chosen": {"role": "assistant", "content": "yes"},
        "rejected": [],
    }
    report = run([mixed, mixed, {"input": question, "chosen": "yes"}], "together", model="m")
    messages = [f"{f.location}: {f.message}" for f in report.errors]
    assert messages == [
        "records:1: input: input must be a non-empty list of messages or a string, not an "
        'object: {"messages": [...]} is OpenAI\'s input, whose answers are preferred_output '
        "and non_preferred_output; beside chosen and rejected, input is the list of messages "
        "itself",
        "records:1: chosen: chosen must be a non-empty list of messages or a string, not an "
        'object: one message goes in a list, [{"role": ...}]',
        "records:1: rejected: rejected must be a non-empty list of messages or a string, not "
        "an empty array",
        *messages[3:6],
        "records:3: rejected: rejected must be a non-empty list of messages or a string, not "
        "missing",
    ]
    assert report.lines("invalid_preference") == [1, 2, 3]
    assert "| `invalid_preference` | error | 7 | 1, 2, 3 |" in report.to_markdown()
    no_messages = {"input": {}, "preferred_output": [{"role": "assistant", "content": "a"}]}
    said = [f.message for f in run([no_messages], "together", model="m").errors]
    assert said[0] == "input.messages must be a non-empty list of messages, not missing"
    openai = {"input": {"messages": None}, "preferred_output": [], "non_preferred_output": "no"}
    said = [f.message for f in run([openai], "together", model="m").errors]
    assert said == [
        "input.messages must be a non-empty list of messages, not null",
        "preferred_output must be a non-empty list of messages, not an empty array",
        "non_preferred_output must be a non-empty list of messages, not a string",
    ]
