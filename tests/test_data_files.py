"""The data files people have besides JSONL: Parquet (the Hugging Face Hub's format, read a
batch of rows at a time) and a JSON array of examples (Alpaca's and LLaMA-Factory's ``.json``),
read by ``Dataset.from_parquet`` and ``Dataset.from_json`` and by every command that takes a
data file; and the keys a table holds besides the ones trained on."""

from __future__ import annotations

import gzip
import importlib
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import finetune as ft
from finetune._config_file import eval_data
from finetune.cli import main
from finetune.dataset import _parquet
from finetune.validation import validate

from .conftest import chat, needs_tiktoken, write_config, write_jsonl

TOOLS = [{"type": "function", "function": {"name": "search", "parameters": {"type": "object"}}}]


def _hub_file(tmp_path: Path, rows: list[dict[str, Any]], name: str = "train.parquet") -> Path:
    """``rows`` as the Hub serves a dataset: written by ``datasets`` itself, in row groups
    of 4 (so that a file is read in several batches); by pyarrow alone where ``datasets`` is
    not installed (scripts/lowest.sh's round at pyarrow's floor)."""
    path = tmp_path / name
    try:
        import datasets
    except ImportError:
        pyarrow = pytest.importorskip("pyarrow")
        parquet = pytest.importorskip("pyarrow.parquet")
        parquet.write_table(pyarrow.Table.from_pylist(rows), path, row_group_size=4)
    else:
        datasets.Dataset.from_list(rows).to_parquet(str(path), batch_size=4)
    return path


def _rows(count: int) -> list[dict[str, Any]]:
    rows = [chat(i) for i in range(count)]
    rows[0] = {**rows[0], "tools": TOOLS}  # the others get "tools": null from Arrow
    return rows


def test_a_parquet_file_reads_as_the_same_table_does_through_datasets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Parquet was refused ("read it with pandas.read_parquet and use Dataset.from_pandas"),
    and the command line had no way at all to read it."""
    monkeypatch.setattr(_parquet, "_BATCH_ROWS", 3)
    path = _hub_file(tmp_path, _rows(10))
    read = ft.Dataset.from_parquet(path)
    datasets = pytest.importorskip("datasets")
    table = datasets.load_dataset("parquet", data_files=str(path), split="train")
    assert len(read) == 10 and repr(read) == "<Dataset 'train.parquet', 10 examples>"
    assert read.fingerprint() == ft.Dataset.from_hf(table).fingerprint()
    assert [e.tools is None for e in read] == [i != 0 for i in range(10)]
    assert read.path is None and read.whole_file() is None  # uploads write JSONL of it
    first, rest = read.split(0.3, seed=1)
    assert sorted(e.messages[1].content for e in [*first, *rest]) == sorted(  # type: ignore[union-attr]
        e.messages[1].content  # type: ignore[union-attr]
        for e in read
    )


@needs_tiktoken
def test_a_bad_row_is_named_by_its_file_and_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_parquet, "_BATCH_ROWS", 3)
    rows = _rows(10)
    rows[7] = {"messages": [{"role": "user", "content": "unanswered"}], "tools": None}
    rows[8] = {"messages": [{"role": "robot", "content": "x"}], "tools": None}
    path = _hub_file(tmp_path, rows)
    report = ft.Tuner("fake", model="base").validate(ft.Dataset.from_parquet(path))
    found = [(f.code, f.file, f.line, f.field) for f in report.errors]
    assert found == [
        ("missing_assistant", "train.parquet", 8, "messages"),
        ("unknown_role", "train.parquet", 9, "messages[0].role"),
    ]
    with pytest.raises(ft.DatasetError, match=r"train.parquet:9: messages\[0\].role"):
        list(ft.Dataset.from_parquet(path))


def test_a_value_json_cannot_hold_is_refused_at_its_row(tmp_path: Path) -> None:
    """Arrow has types JSON has not (a timestamp): refused while reading, not at upload."""
    import datetime

    rows = [{**chat(i), "when": datetime.datetime(2026, 1, i + 1)} for i in range(3)]
    path = _hub_file(tmp_path, rows)
    items = list(ft.Dataset.from_parquet(path).items())
    assert [(item.line, getattr(item, "code", None)) for item in items] == [
        (1, "invalid_json"),
        (2, "invalid_json"),
        (3, "invalid_json"),
    ]


def test_a_broken_or_changed_file_is_named(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"PAR1" + bytes(64))
    with pytest.raises(ft.DatasetError, match=r"broken.parquet: cannot read it as Parquet"):
        ft.Dataset.from_parquet(broken)
    with pytest.raises(ft.DatasetError, match=r"gone.parquet: no such file"):
        ft.Dataset.from_parquet(tmp_path / "gone.parquet")
    with pytest.raises(ft.DatasetError, match=r"is a folder, not a Parquet file"):
        ft.Dataset.from_parquet(tmp_path)
    path = _hub_file(tmp_path, _rows(6))
    read = ft.Dataset.from_parquet(path)
    _hub_file(tmp_path, _rows(8))  # rewritten under the dataset: its views would pick others
    with pytest.raises(ft.DatasetError, match="changed since this dataset was made from it"):
        list(read)


def test_without_pyarrow_the_error_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _hub_file(tmp_path, _rows(2))
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(ft.MissingDependency, match=r'pip install "finetune\[parquet\]"'):
        ft.Dataset.from_parquet(path)


@needs_tiktoken
def test_every_command_reads_a_parquet_file_by_its_content(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``finetune validate train.parquet`` stopped at one ``not_jsonl`` error: the command
    line could not read the Hub's format at all."""
    path = _hub_file(tmp_path, _rows(10), name="train-00000-of-00001")  # no suffix needed
    flags = ["--backend", "fake", "--model", "base"]
    assert main(["validate", str(path), *flags, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["examples"] == 10
    held = _hub_file(tmp_path, _rows(3), name="test.parquet")
    assert main(["train", str(path), "--validation", str(held), *flags, "--wait"]) == 0
    assert "succeeded" in capsys.readouterr().out
    (record,) = ft.Tuner("fake", model="base").jobs(limit=1)
    assert record.train_fingerprint == ft.Dataset.from_parquet(path).fingerprint()
    assert record.validation_fingerprint == ft.Dataset.from_parquet(held).fingerprint()
    jsonl = write_jsonl(tmp_path / "more.jsonl", [chat(40), chat(41)])
    assert main(["validate", str(path), str(jsonl), *flags, "--json"]) == 0  # read as one
    assert json.loads(capsys.readouterr().out)["examples"] == 12
    holdout = _hub_file(tmp_path, [chat(i) for i in range(8, 13)], name="holdout.parquet")
    config = {"data": str(holdout), "exclude": str(path)}  # an eval config's files
    data, said = eval_data(str(tmp_path / "eval.toml"), config)
    assert (len(data), said) == (3, [f"left out 2 of the evaluated examples: also in {path}"])


@needs_tiktoken
@pytest.mark.parametrize("command", ["validate", "estimate", "train"])
def test_the_commands_help_names_every_kind_of_file_they_read(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The help said "JSONL or Parquet" after the commands had learned CSV, JSON arrays and
    compressed files, and did not say that --columns renames."""
    with pytest.raises(SystemExit):
        main([command, "--help"])
    said = " ".join(capsys.readouterr().out.split())
    kinds = "JSONL, a JSON array, CSV or Parquet; gzip, bzip2, xz or zstd too"
    assert f"training data ({kinds})" in said and f"validation data ({kinds})" in said
    assert "question=user renames one as it keeps it" in said


def test_columns_leaves_a_hub_sets_extra_columns_out_on_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A Hub chat set (``prompt``, ``prompt_id``, ``messages``, ``category``, as
    HuggingFaceH4/no_robots): every row was ``unexpected_field`` three times, and the cure
    named (``ds.select_columns``) was out of a command's reach."""
    rows = [
        {"prompt": f"q{i}", "prompt_id": f"h{i}", **chat(i), "category": "Chat"} for i in range(12)
    ]
    path = _hub_file(tmp_path, rows)
    flags = ["--backend", "fake", "--model", "base", "--json"]
    assert main(["validate", str(path), *flags]) == 1
    said = capsys.readouterr().out  # the columns to keep, named: a command to copy
    assert "ds.select_columns(['messages']), or --columns messages on the command line" in said
    assert main(["validate", str(path), "--columns", "messages,tools", *flags]) == 0
    assert json.loads(capsys.readouterr().out)["examples"] == 12
    config = write_config(
        tmp_path / "train.toml",
        backend="fake",
        model="base",
        file=path,
        columns=["messages"],
        validation=path,
    )
    assert main(["train", "--config", str(config), "--wait"]) == 0
    (record,) = ft.Tuner("fake", model="base").jobs(limit=1)
    plain = ft.Dataset.from_records([chat(i) for i in range(12)])
    assert record.train_fingerprint == record.validation_fingerprint == plain.fingerprint()
    config.write_text(config.read_text().replace('["messages"]', "[5]"))
    assert main(["validate", "--config", str(config)]) == 2
    said = capsys.readouterr().err
    assert 'columns is a list of key names, as ["messages", "tools"], or a table' in said
    assert said.endswith('as { question = "prompt" }, not [5]\n')
    with pytest.raises(SystemExit):
        main(["validate", str(path), "--columns", "messages,,tools", *flags])
    assert "--columns: 'messages,,tools': give key names" in capsys.readouterr().err
    pairs = write_jsonl(
        tmp_path / "qa.jsonl", [{"question": f"q{i}", "answer": f"a{i}"} for i in range(12)]
    )
    hf = ["--backend", "fake", "--model", "base", "--json"]
    assert main(["validate", str(pairs), *hf]) == 1  # told the flag that renames them
    assert "--columns question=user,answer=assistant on the command line" in (
        capsys.readouterr().out
    )
    config.write_text(
        f'backend = "fake"\nmodel = "base"\nfile = "{pairs}"\n'
        '[columns]\nquestion = "user"\nanswer = "assistant"\n'
    )
    renamed = ["--columns", "question=user,answer=assistant"]
    for flags in (renamed, ["--config", str(config)]):
        assert main(["estimate", str(pairs), *flags, *hf[:4], "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["examples"] == 12
    with pytest.raises(SystemExit):
        main(["validate", str(pairs), "--columns", "question=,answer", *hf])
    assert "(question=prompt renames one)" in capsys.readouterr().err
    # a config's text is read as the flag's: it kept a key named "question=prompt"
    text = tmp_path / "text.toml"
    text.write_text(config.read_text().split("[columns]")[0])
    text.write_text(text.read_text() + 'columns = "question=prompt,answer=completion"\n')
    assert main(["estimate", "--config", str(text), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["examples"] == 12
    text.write_text(text.read_text().replace("answer=completion", "=completion"))
    assert main(["estimate", "--config", str(text), "--json"]) == 2
    assert "columns is a list of key names" in capsys.readouterr().err
    trained = _hub_file(tmp_path, rows[:9], name="trained.parquet")
    holdout = {"data": str(path), "exclude": str(trained), "columns": "messages"}
    data, said = eval_data(str(tmp_path / "eval.toml"), holdout)  # an eval config's files
    assert (len(data), said) == (3, [f"left out 9 of the evaluated examples: also in {trained}"])
    with pytest.raises(ft.FinetuneError, match="every example of data is also in exclude"):
        eval_data(str(tmp_path / "eval.toml"), {**holdout, "exclude": str(path)})


@needs_tiktoken
def test_a_parquet_files_row_groups_are_scanned_apart_and_report_as_one_scan(
    tmp_path: Path,
) -> None:
    """A Parquet file was validated by one process where a JSONL file of the same rows took
    every core; split by runs of row groups, the report is the sequential scan's. In a fresh
    process: workers are forked only where no other thread runs (``datasets`` leaves tqdm's)."""
    rows = [chat(i) for i in range(300)]
    rows[10] = {"messages": [{"role": "user", "content": "no answer"}]}
    rows[250] = chat(5)  # a duplicate of a row in another part
    rows[170] = chat(7, system="Another prompt")
    pytest.importorskip("pyarrow")
    path = tmp_path / "train.parquet"
    script = f"""
import json, pyarrow, pyarrow.parquet
import finetune as ft
from finetune.validation import _engine, validate
rows = json.loads({json.dumps(json.dumps(rows))})
pyarrow.parquet.write_table(pyarrow.Table.from_pylist(rows), {str(path)!r}, row_group_size=4)
data = ft.Dataset.from_parquet({str(path)!r})
model = "gpt-4.1-mini-2025-04-14"
sequential = validate(data, target="openai", model=model, workers=1)
_engine.PARALLEL_MIN_ROWS = 0
parts = len(_engine._part_readers(data, 3)) if _engine._can_fork() else 0
parallel = validate(data, target="openai", model=model, workers=3)
print(json.dumps([parts, parallel.to_dict() == sequential.to_dict(), sequential.to_dict()]))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    parts, same, report = json.loads(done.stdout.strip().splitlines()[-1])
    assert (parts, same) == (3, True)  # the test is void if the scan was not split
    codes = report["codes"]
    assert codes["missing_assistant"]["lines"] == [11]
    assert codes["duplicate_example"]["lines"] == [251]
    assert codes["inconsistent_system_prompt"]["lines"] == [171]


USER_Q = {"role": "user", "content": "2+2?"}
ANSWER_A = {"role": "assistant", "content": "4"}


def _alpaca(i: int) -> dict[str, Any]:
    return {"instruction": f"Add {i} and 2.", "input": "", "output": str(i + 2)}


def test_a_json_array_of_examples_is_read_an_element_at_a_time_each_named_by_its_line(
    tmp_path: Path,
) -> None:
    """LLaMA-Factory's data files and Alpaca's ``alpaca_data.json`` are one JSON array,
    pretty-printed: stopped at one ``not_jsonl`` error, to be converted with jq."""
    rows = [_alpaca(i) for i in range(12)]
    path = tmp_path / "alpaca_en_demo.json"
    path.write_text("\ufeff" + json.dumps(rows, indent=2), encoding="utf-8")
    read = ft.Dataset.from_json(path)
    assert len(read) == 12 and read.fingerprint() == ft.Dataset.from_records(rows).fingerprint()
    assert [item.line for item in read.items()][:3] == [2, 7, 12]  # where each element starts
    assert ft.Tuner("fake", model="base").validate(read).ok
    with pytest.raises(ft.DatasetError, match=r"a JSON array, not JSONL.*Dataset.from_json"):
        list(ft.Dataset.from_jsonl(path))
    jsonl = write_jsonl(tmp_path / "same.jsonl", rows)  # JSONL is read as from_jsonl reads it
    assert ft.Dataset.from_json(jsonl).whole_file() == ft.Dataset.from_jsonl(jsonl).whole_file()
    (tmp_path / "empty.json").write_text("[ ]\n")
    assert len(ft.Dataset.from_json(tmp_path / "empty.json")) == 0


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ('[{"a": 1},\n "text",\n {"b": 2}]', [(2, "not_an_object"), (3, None)]),  # read on
        ('[{"a": 1},\n {"b": NaN},\n {"c": 3}]', [(2, "invalid_json")]),  # stops: no resync
        ('[{"a": 1},\n {"b": ', [(2, "truncated_line")]),
        ('[{"a": 1},\n {"b": 2}', [(2, None), (2, "truncated_line")]),
        ('[{"a": 1}\n {"b": 2}]', [(1, "invalid_json")]),  # a comma missing
        ('[{"a": 1}]\n[{"b": 2}]', [(2, "invalid_json")]),  # text after the end
        ('[{"a": 1},\n {"b": "\\ud800"}]', [(2, "invalid_text")]),  # not UTF-8
    ],
)
def test_a_broken_json_array_is_named_at_the_line_of_its_element(
    tmp_path: Path, text: str, found: list[tuple[int, str | None]]
) -> None:
    path = tmp_path / "data.json"
    path.write_text(text, encoding="utf-8")
    items = list(ft.Dataset.from_json(path).items())
    assert [(item.line, getattr(item, "code", None)) for item in items][1:] == found
    (tmp_path / "latin.json").write_bytes(b'[{"a": 1},\n {"b": "caf\xe9"}]')
    [unreadable] = ft.Dataset.from_json(tmp_path / "latin.json").items()
    assert (unreadable.line, getattr(unreadable, "code", None)) == (2, "invalid_utf8")


def test_a_json_object_holding_the_examples_is_read_as_its_list(tmp_path: Path) -> None:
    """``{"version": "1.0", "data": [...]}`` (SQuAD's shape, many exports' too) was one row of
    key 'data', or ``not_jsonl`` with advice (``jq -c .``) that made it that one row."""
    rows = [_alpaca(i) for i in range(12)]
    expected = ft.Dataset.from_records(rows).fingerprint()
    pretty, minified = tmp_path / "squad_like.json", tmp_path / "minified.json"
    pretty.write_text(json.dumps({"version": "1.0", "data": rows, "notes": None}, indent=2))
    minified.write_text(json.dumps({"data": rows}))  # json.dump's own: one line
    for path in (pretty, minified):
        read = ft.Dataset.from_json(path)
        assert len(read) == 12 and read.fingerprint() == expected
    assert [item.line for item in ft.Dataset.from_json(pretty).items()][:2] == [4, 9]
    with pytest.raises(ft.DatasetError) as as_jsonl:  # one row to from_jsonl: told from_json
        list(ft.Dataset.from_jsonl(minified))
    assert str(as_jsonl.value).endswith(
        "; its 'data' holds a list of 12 objects, as a JSON file's object holding the examples "
        "does: Dataset.from_json reads such a file as that list (finetune's commands do)"
    )
    splits = tmp_path / "splits.json"
    splits.write_text(json.dumps({"train": rows[:10], "test": rows[10:], "n": 12}, indent=1))
    with pytest.raises(ft.DatasetError) as several:
        list(ft.Dataset.from_json(splits))
    assert str(several.value) == (
        "splits.json:1: the file is one JSON object whose 'train' and 'test' each hold a list "
        "of objects: name the one that holds the examples, Dataset.from_json('splits.json', "
        "field='train'), or --field train on the command line (or save it as a file of its "
        "own: jq '.train' splits.json > train.json)"
    )
    assert len(ft.Dataset.from_json(splits, field="test")) == 2
    array = tmp_path / "array.json"
    array.write_text(json.dumps(rows))
    with pytest.raises(ft.DatasetError, match="a JSON array, with no 'data': read it without"):
        list(ft.Dataset.from_json(array, field="data"))
    for field, says in (
        ("dev", "has no key 'dev' (its keys: 'train', 'test', 'n')"),
        ("n", "holds a number under 'n', not a list of examples"),
    ):
        with pytest.raises(ft.DatasetError, match=re.escape(says)):
            list(ft.Dataset.from_json(splits, field=field))
    one = tmp_path / "one_example.json"  # one example written over several lines
    one.write_text(json.dumps({"messages": [USER_Q, ANSWER_A]}, indent=2))
    assert [(item.line, type(item).__name__) for item in ft.Dataset.from_json(one).items()] == [
        (1, "RawRecord")
    ]
    # an object that holds no list of objects is one row, told what its shape is: a one-line
    # question-and-answer file kept the renames it was told as JSONL
    for indent in (None, 2):
        pair = tmp_path / f"pair{indent}.json"
        pair.write_text(json.dumps({"question": "2+2?", "answer": "4"}, indent=indent))
        with pytest.raises(ft.DatasetError, match=r"pair\w*.json:1: .*rename 'question' to 'user'"):
            list(ft.Dataset.from_json(pair))
    sharegpt = tmp_path / "sharegpt_one.json"  # its turns are no rows: it is one example
    sharegpt.write_text(
        json.dumps(
            {"conversations": [{"from": "human", "value": "2+2?"}, {"from": "gpt", "value": "4"}]},
            indent=2,
        )
    )
    assert len(ft.Dataset.from_json(sharegpt)) == 1
    empty = tmp_path / "empty_export.json"
    empty.write_text(json.dumps({"version": "1.0", "data": []}, indent=2))
    assert len(ft.Dataset.from_json(empty)) == 0


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ('{"data": [\n {"a": 1},\n {"b": NaN}]}', [(3, "invalid_json")]),
        ('{"data": [\n {"a": 1},\n {"b": ', [(3, "truncated_line")]),
        ('{"data": [\n {"a": 1}\n]', [(3, "truncated_line")]),  # where the text ends
        ('{"data": [\n {"a": 1}\n]}\n{"b": 2}', [(4, "invalid_json")]),  # after the end
        ('{"data" [\n {"a": 1}\n]}', [(1, "invalid_json")]),  # a colon missing
    ],
)
def test_a_broken_json_object_is_named_at_its_line(
    tmp_path: Path, text: str, found: list[tuple[int, str]]
) -> None:
    path = tmp_path / "data.json"
    path.write_text(text)
    items = list(ft.Dataset.from_json(path).items())
    assert [(item.line, getattr(item, "code", None)) for item in items] == found


_ROW_LINES = [json.dumps({"messages": [{"role": "user", "content": f"q{i}"}]}) for i in range(3)]


@pytest.mark.parametrize(
    "text",
    [
        "\ufeff" + "\n".join(_ROW_LINES),
        "\r\n".join(_ROW_LINES),
        "\n" + "\n".join(_ROW_LINES),
        "\n".join(line.replace('"', "'") for line in _ROW_LINES),  # Python dicts printed
        '{"messages": NaN}\n' + "\n".join(_ROW_LINES),
        ",\n".join(_ROW_LINES) + ",",
        "\n".join(_ROW_LINES) + "\n" + _ROW_LINES[0][:30],
        _ROW_LINES[0][:30] + "\n" + "\n".join(_ROW_LINES),
        "\r".join(_ROW_LINES),
        "42\n" + "\n".join(_ROW_LINES),
        _ROW_LINES[0],
        '{"question": "q", "answer": "a"}',
        _ROW_LINES[0] + _ROW_LINES[1] + "\n" + _ROW_LINES[2],
    ],
)
def test_from_json_reads_jsonl_as_from_jsonl_does(tmp_path: Path, text: str) -> None:
    """The commands give every file that is not CSV or Parquet to ``from_json``, which tells a
    JSON document from JSONL by its first lines: broken JSONL must stay JSONL, told line by
    line what is wrong."""
    path = tmp_path / "rows.jsonl"
    path.write_text(text + "\n")

    def read(reader: Any) -> list[tuple[int, str | None, str]]:
        items = reader(path).items()
        return [(i.line, getattr(i, "code", None), getattr(i, "message", "")) for i in items]

    assert read(ft.Dataset.from_json) == read(ft.Dataset.from_jsonl)


def test_a_row_nested_too_deep_to_read_is_named_at_its_line(tmp_path: Path) -> None:
    """An array's element nested past Python's parser raised ``RecursionError`` out of
    ``from_json``; a JSONL row nested past orjson's 1,024 levels, on a last line with no
    newline, was called truncated. Each is ``invalid_json`` at its line, saying why."""
    row = json.dumps({"messages": [USER_Q, ANSWER_A]})
    deep = "[" * 5000 + "]" * 5000
    deeper = "[" * 100_000 + "]" * 100_000  # Python 3.13's parser reads 5,000 levels
    array = tmp_path / "rows.json"
    array.write_text(f"[\n{row},\n{deeper},\n{row}\n]\n")
    items = list(ft.Dataset.from_json(array).items())
    assert [(i.line, getattr(i, "code", None)) for i in items] == [(2, None), (3, "invalid_json")]
    assert "nested too deeply" in items[1].message  # type: ignore[union-attr]
    lines = tmp_path / "rows.jsonl"
    lines.write_text(f"{row}\n" + '{"messages": ' + deep + "}")
    (*_, last) = ft.Dataset.from_jsonl(lines).items()
    assert (last.line, getattr(last, "code", None)) == (2, "invalid_json")
    assert "nested over 1,024 levels deep" in last.message  # type: ignore[union-attr]


def test_jsonl_stays_jsonl_where_a_json_document_is_looked_for(tmp_path: Path) -> None:
    rows = [{"messages": [USER_Q, ANSWER_A]}] * 3
    one_row = write_jsonl(tmp_path / "one.jsonl", rows[:1])
    broken_first = tmp_path / "broken.jsonl"  # a broken row, then rows: JSONL, read on
    broken_first.write_text('{"messages": [\n' + "".join(json.dumps(r) + "\n" for r in rows))
    for path in (one_row, broken_first):
        read = ft.Dataset.from_json(path)
        assert read.path == str(path)  # read as from_jsonl reads it (its bytes uploaded as-is)
    codes = [getattr(i, "code", None) for i in ft.Dataset.from_json(broken_first).items()]
    assert codes == ["invalid_json", None, None, None]
    commas = tmp_path / "commas.jsonl"  # rows written as an array's elements: JSONL, told so
    commas.write_text("".join(json.dumps(r) + ",\n" for r in rows))
    told = [getattr(item, "message", "") for item in ft.Dataset.from_json(commas).items()]
    assert len(told) == 3 and all("a comma after the object" in said for said in told)


@needs_tiktoken
def test_every_command_reads_a_json_array_by_its_content(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "train.json"
    path.write_text(json.dumps([_alpaca(i) for i in range(12)], indent=2))
    flags = ["--backend", "fake", "--model", "base"]
    assert main(["validate", str(path), *flags, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["examples"] == 12
    assert main(["train", str(path), *flags, "--wait"]) == 0
    (record,) = ft.Tuner("fake", model="base").jobs(limit=1)
    assert record.train_fingerprint == ft.Dataset.from_json(path).fingerprint()


def test_a_csv_file_is_read_a_row_at_a_time_each_named_by_its_line(tmp_path: Path) -> None:
    """A spreadsheet's export, as OpenAI's old ``prepare_data`` tool took it: every line was
    ``invalid_json``, and a conversation in columns named by role could not be read at all."""
    path = tmp_path / "support.csv"
    path.write_text(
        "\ufeffSystem,user,assistant,id\n"
        "Be brief.,2+2?,4,1\n"
        "\n"
        ',"Where is it,\nand when?","Paris, tomorrow",2\n'  # a quoted cell over two lines
        "x,unanswered,,3\n",
        encoding="utf-8",
    )
    read = ft.Dataset.from_csv(path)
    assert [item.line for item in read.items()] == [2, 4, 6]  # where each row starts
    found = validate(read, target="hf", model="m").errors
    assert [(f.code, f.file, f.line, f.field) for f in found] == [
        ("missing_assistant", "support.csv", 6, "assistant")
    ]
    second = read[1]
    assert [m.content for m in second.messages] == ["Where is it,\nand when?", "Paris, tomorrow"]  # type: ignore[union-attr]
    tsv = tmp_path / "pairs.tsv"
    tsv.write_text("prompt\tcompletion\n2+2?\t4\n")
    assert [(e.prompt, e.completion) for e in ft.Dataset.from_csv(tsv)] == [("2+2?", "4")]  # type: ignore[union-attr]
    import csv

    long = tmp_path / "long.csv"  # a cell over csv's own limit (128 KiB), which stays the same
    long.write_text(f"prompt,completion\nq,{'a' * 200_000}\n")
    before = csv.field_size_limit()
    assert len(next(iter(ft.Dataset.from_csv(long))).completion) == 200_000  # type: ignore[union-attr]
    assert csv.field_size_limit() == before
    long.write_text(f"prompt,completion\nq,a\nq,{'a' * 200_000}\n")
    first, second = iter(ft.Dataset.from_csv(long)), iter(ft.Dataset.from_csv(long))
    next(first), next(second)  # two passes paused at once (a view read beside its source)
    assert len(list(first)) == 1  # the first ends, and gives the limit back ...
    assert len(next(second).completion) == 200_000  # type: ignore[union-attr]  # ... not yet
    del second
    assert csv.field_size_limit() == before
    with pytest.raises(ft.DatasetError, match=r"looks like CSV .*prompt\\tcompletion.*from_csv"):
        list(ft.Dataset.from_jsonl(tsv))
    jsonl = tmp_path / "rows.csv"  # the other way round: read as CSV, a JSON object's pieces
    jsonl.write_text('{"prompt": "q", "completion": "a"}\n{"prompt": "r", "completion": "b"}\n')
    with pytest.raises(ft.DatasetError) as caught:
        list(ft.Dataset.from_csv(jsonl))
    assert str(caught.value) == (
        "rows.csv:1: the file looks like JSON (its first line starts with '{'), not CSV: read "
        "it with Dataset.from_jsonl, or Dataset.from_json for one JSON document (finetune's "
        "commands read a .jsonl or .json file so)"
    )
    for name, text in [("array.csv", '[{"prompt":"q","completion":"a"}]'), ("c.csv", '{"a":"b"}')]:
        compact = tmp_path / name  # no space after a comma: csv fails on the first row
        compact.write_text(text + "\n")
        with pytest.raises(ft.DatasetError, match=rf"{name}:1: the file looks like JSON"):
            list(ft.Dataset.from_csv(compact))


@pytest.mark.parametrize(
    ("name", "text"),
    [
        # Excel's "CSV UTF-8" where a comma is the decimal mark: a BOM, CRLF and semicolons
        ("excel.csv", '\ufeffuser;assistant\r\n2+2?;4\r\n"Where; and when?";"Paris, 3,5 km"\r\n'),
        ("exported.csv", "user\tassistant\n2+2?\t4\nWhere; and when?\tParis, 3,5 km\n"),
        ("piped.csv.gz", "user|assistant\n2+2?|4\nWhere; and when?|Paris, 3,5 km\n"),
        ("plain.tsv", 'user,assistant\n2+2?,4\n"Where; and when?","Paris, 3,5 km"\n'),
    ],
)
def test_a_csv_file_is_split_by_the_delimiter_its_header_row_uses(
    tmp_path: Path, name: str, text: str
) -> None:
    """A semicolon file (Excel's, in much of Europe) or a TSV named .csv was read as one
    column named 'user;assistant' and refused as no example kind at every row."""
    path = tmp_path / name
    data = text.encode()
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    rows = [("2+2?", "4"), ("Where; and when?", "Paris, 3,5 km")]
    expected = ft.Dataset.from_records([{"user": q, "assistant": a} for q, a in rows])
    assert ft.Dataset.from_csv(path).fingerprint() == expected.fingerprint()
    one_column = tmp_path / "one.csv"  # a cell's semicolons are not the header's
    one_column.write_text('messages\n"[{""role"": ""user"", ""content"": ""a;b;c""}]"\n')
    (record,) = ft.Dataset.from_csv(one_column).records()
    assert list(record.data) == ["messages"]
    given = next(ft.Dataset.from_csv(path, delimiter=";").records())  # a delimiter given is used
    assert len(given.data) == (2 if name == "excel.csv" else 1)


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("prompt,completion\na,b,c\nd,e\n", [(2, "invalid_csv"), (3, None)]),  # read on
        ("prompt,prompt\na,b\n", [(1, "invalid_csv")]),
        ("prompt,\na,b\n", [(1, "invalid_csv")]),
        ('prompt,completion\n"a"b,c\n', [(2, "invalid_csv")]),  # quoting broken: stops
    ],
)
def test_a_broken_csv_file_is_named_at_its_line(
    tmp_path: Path, text: str, found: list[tuple[int, str | None]]
) -> None:
    path = tmp_path / "data.csv"
    path.write_text(text)
    items = list(ft.Dataset.from_csv(path).items())
    assert [(item.line, getattr(item, "code", None)) for item in items] == found
    (tmp_path / "excel.csv").write_bytes(b"prompt,completion\na,b\ncaf\xe9,c\n")  # cp1252
    *_, unreadable = ft.Dataset.from_csv(tmp_path / "excel.csv").items()
    assert getattr(unreadable, "code", None) == "invalid_utf8"
    assert "save the file as CSV UTF-8, or name its encoding: Dataset.from_csv(path, " in (
        getattr(unreadable, "message", "")
    )


def test_a_csv_file_in_another_encoding_is_read_when_it_is_named(tmp_path: Path) -> None:
    """Excel's "CSV (Comma delimited)" on Windows writes cp1252 (in France, with semicolons):
    the only cure was to save the file again."""
    path = tmp_path / "excel.csv"
    path.write_bytes("user;assistant\r\nUn café ?;Oui, 2,50 €\r\n".encode("cp1252"))
    (example,) = ft.Dataset.from_csv(path, encoding="cp1252")
    assert [m.content for m in example.messages] == ["Un café ?", "Oui, 2,50 €"]  # type: ignore[union-attr]
    (wrong,) = ft.Dataset.from_csv(path, encoding="ascii").items()
    assert getattr(wrong, "message", "").startswith("not ascii (ordinal not in range(128))")
    with pytest.raises(ValueError, match="unknown encoding 'latin-9000'"):
        ft.Dataset.from_csv(path, encoding="latin-9000")


@needs_tiktoken
def test_every_command_reads_a_csv_file_by_its_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "train.csv"
    path.write_text("user,assistant\n" + "".join(f"q{i},a{i}\n" for i in range(12)))
    flags = ["--backend", "fake", "--model", "base"]
    assert main(["validate", str(path), *flags, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["examples"] == 12
    assert main(["train", str(path), *flags, "--wait"]) == 0
    (record,) = ft.Tuner("fake", model="base").jobs(limit=1)
    rows = [
        {
            "messages": [
                {"role": "user", "content": f"q{i}"},
                {"role": "assistant", "content": f"a{i}"},
            ]
        }
        for i in range(12)
    ]
    assert record.train_fingerprint == ft.Dataset.from_records(rows).fingerprint()


@pytest.mark.parametrize(
    ("path", "reader"),
    [
        ("train.parquet", "from_parquet"),
        ("alpaca.json", "from_json"),
        ("support.CSV", "from_csv"),
        ("train.jsonl", "from_jsonl"),
    ],
)
def test_a_files_path_given_for_a_dataset_is_told_the_reader_of_its_kind(
    path: str, reader: str
) -> None:
    """Every path was told ``ft.Dataset.from_jsonl(path)``, which refuses a Parquet file."""
    with pytest.raises(TypeError, match=rf"train is a ft.Dataset, not str: ft.Dataset.{reader}\("):
        ft.Tuner("fake", model="base").fit(path)  # type: ignore[arg-type]


@needs_tiktoken
def _zstd_module() -> Any:
    """Python 3.14's zstd, else the ``zstd`` extra's backport (the test skips without it)."""
    if sys.version_info >= (3, 14):
        return importlib.import_module("compression.zstd")
    return pytest.importorskip("backports.zstd")


def test_a_compressed_file_is_read_through_its_decompressor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``train.jsonl.gz`` (as some Hub datasets ship their files) stopped at one
    ``not_jsonl`` error: "decompress it first"; ``.zst`` too, until it was read."""
    import bz2
    import lzma

    from finetune.validation import _engine

    zstd = _zstd_module()

    rows = [chat(i) for i in range(12)]
    rows[4] = {"messages": [{"role": "user", "content": "unanswered"}]}
    plain = write_jsonl(tmp_path / "train.jsonl", rows)
    expected = validate(ft.Dataset.from_jsonl(plain), target="hf", model="m", workers=1)
    monkeypatch.setattr(_engine, "PARALLEL_MIN_BYTES", 0)  # a whole file would be split
    for suffix, compress in (
        (".gz", gzip.compress),
        (".bz2", bz2.compress),
        (".xz", lzma.compress),
        (".zst", zstd.compress),
    ):
        packed = tmp_path / f"train.jsonl{suffix}"
        packed.write_bytes(compress(plain.read_bytes()))
        read = ft.Dataset.from_jsonl(packed)
        assert read.whole_file() is None  # its bytes are not lines: never split by them
        report = validate(read, target="hf", model="m", workers=2)
        assert report.examples == 12 and report.counts == expected.counts
        assert report.lines("missing_assistant") == [5]
    for cut, compress in (("cut.jsonl.gz", gzip.compress), ("cut.jsonl.zst", zstd.compress)):
        (tmp_path / cut).write_bytes(compress(plain.read_bytes())[:-30])
        *_, last = ft.Dataset.from_jsonl(tmp_path / cut).items()
        assert getattr(last, "code", None) == "truncated_line", cut
    corrupt = tmp_path / "corrupt.jsonl.zst"  # a zstd frame header, then no valid block
    corrupt.write_bytes(b"(\xb5/\xfd" + bytes(64))
    (only,) = ft.Dataset.from_jsonl(corrupt).items()
    assert getattr(only, "code", None) == "truncated_line"
    monkeypatch.setitem(sys.modules, "backports.zstd", None)  # Python < 3.14 without the extra
    if sys.version_info < (3, 14):
        with pytest.raises(ft.MissingDependency, match=r'pip install "finetune\[zstd\]"'):
            len(ft.Dataset.from_jsonl(tmp_path / "train.jsonl.zst"))
    monkeypatch.delitem(sys.modules, "backports.zstd")
    array = tmp_path / "alpaca.json.gz"
    array.write_bytes(gzip.compress(json.dumps([_alpaca(i) for i in range(3)]).encode()))
    table = tmp_path / "pairs.tsv.gz"
    table.write_bytes(gzip.compress(b"prompt\tcompletion\n2+2?\t4\n"))
    flags = ["--backend", "fake", "--model", "base", "--json"]
    table_zst = tmp_path / "pairs.csv.zst"
    table_zst.write_bytes(zstd.compress(b"prompt,completion\n2+2?,4\n3+3?,6\n"))
    listed = ((array, 3), (table, 1), (table_zst, 2), (tmp_path / "train.jsonl.xz", 12))
    for path, examples in listed:
        assert main(["validate", str(path), *flags]) in (0, 1)
        assert json.loads(capsys.readouterr().out)["examples"] == examples


def test_a_folder_given_as_data_is_told_the_files_it_holds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A Hub dataset's ``data/`` folder was "is a folder, not a JSON file; name the file"."""
    shards = tmp_path / "data"
    shards.mkdir()
    for name in ("test-00000-of-00001.parquet", "train-00000-of-00002.parquet", "README.md"):
        (shards / name).write_bytes(b"")
    flags = ["--backend", "fake", "--model", "base"]
    assert main(["validate", str(shards), *flags]) == 2
    said = capsys.readouterr().err
    assert "is a folder: name its data files, which may be several splits (it holds " in said
    assert "test-00000-of-00001.parquet, train-00000-of-00002.parquet);" in said
    assert f"as {shards / 'train'}-*.parquet in a shell" in said
    snapshot = tmp_path / "data" / ".."  # a Hub dataset's snapshot: its files are in data/
    assert main(["validate", str(snapshot), *flags]) == 2
    said = capsys.readouterr().err
    assert said.startswith(f"error: {snapshot}: is a folder, and holds no data file itself; ")
    inner = snapshot / "data"
    assert f"{inner}: is a folder: name its data files, which may be several splits" in said
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["validate", str(empty), *flags]) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: {empty}: is a folder, and holds no data file (.jsonl, .json, .csv, .parquet)"
    )
    mine = tmp_path / "mine"  # a folder of one's own files: no shards to match
    mine.mkdir()
    (mine / "pref.jsonl").write_bytes(b"")
    assert main(["validate", str(mine), *flags]) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: {mine}: is a folder: name its data file, {mine / 'pref.jsonl'}"
    )
    (mine / "more.jsonl").write_bytes(b"")
    assert main(["validate", str(mine), *flags]) == 2
    said = capsys.readouterr().err.strip()  # not "mine/more.jsonl-*.jsonl"
    assert said.endswith(f"as {mine / 'more.jsonl'} {mine / 'pref.jsonl'}"), said
