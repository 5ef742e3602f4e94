from __future__ import annotations

import io
import json
import os
import pickle
import re
import stat
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import finetune as ft
from finetune.dataset import ReadProblem, atomic_folder, iter_jsonl
from finetune.dataset._implicit_prompt import _is_transcript_pair
from finetune.validation import validate

from .conftest import chat, needs_tiktoken, write_jsonl


def test_from_jsonl_streams_typed_examples(chat_file: Path) -> None:
    data = ft.Dataset.from_jsonl(chat_file)
    examples = list(data)
    assert len(examples) == len(data) == 40
    assert data.kind == "chat"
    assert isinstance(examples[0], ft.ChatExample)
    assert examples[3].messages[1].content == "Where is my order #3?"


def test_bad_row_names_file_line_and_field(tmp_path: Path) -> None:
    rows = [chat(0), chat(1), {"messages": [{"role": "robot", "content": "x"}]}]
    path = write_jsonl(tmp_path / "bad.jsonl", rows)
    with pytest.raises(ft.DatasetError) as caught:
        list(ft.Dataset.from_jsonl(path))
    error = caught.value
    assert (error.file, error.line, error.field) == ("bad.jsonl", 3, "messages[0].role")
    assert str(error).startswith("bad.jsonl:3: messages[0].role:")


def test_a_row_of_another_kind_is_named_as_such(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "mixed.jsonl", [chat(0), {"prompt": "p", "completion": "c"}])
    with pytest.raises(ft.DatasetError) as caught:
        list(ft.Dataset.from_jsonl(path))
    assert (caught.value.file, caught.value.line, caught.value.field) == ("mixed.jsonl", 2, None)
    assert "a completion example among chat examples: a dataset holds one kind" in str(caught.value)
    with pytest.raises(ft.DatasetError, match="records:1: a chat example among completion"):
        list(ft.Dataset.from_records([chat(0)], kind="completion"))


@pytest.mark.parametrize(
    ("row", "field"),
    [
        ({"prompt": "p", "completion": None}, "completion"),  # a field named like its kind
        ({"prompt": None, "completion": "c"}, "prompt"),
        ({"messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
        (
            {
                "input": {"messages": [{"role": "user", "content": "q"}]},
                "preferred_output": [{"role": "assistant", "content": 5}],
                "non_preferred_output": [{"role": "assistant", "content": "x"}],
            },
            "preferred_output[0].content",
        ),
    ],
)
def test_every_kind_names_the_field_as_the_file_spells_it(row: Any, field: str) -> None:
    with pytest.raises(ft.DatasetError) as caught:
        list(ft.Dataset.from_records([row]))
    assert caught.value.field == field and str(caught.value).startswith(f"records:1: {field}: ")


def test_an_unknown_key_is_named_with_the_keys_its_place_takes() -> None:
    pair = {"prompt": "q", "chosen": "a", "rejected": "b"}
    cases = [
        ({**pair, "messages": [{"role": "user", "content": "q"}]}, "messages", "takes chosen"),
        ({**chat(0), "tool": [{"type": "function"}]}, "tool", "(did you mean 'tools'?); remove"),
        (  # beside the key it resembles: an extra column, not a misspelling to rename
            {"prompt": "q", "completion": "a", "complete": "x"},
            "complete",
            "'complete' holds a value; remove it (a table's extra columns: keep only those you "
            "train on, ds.select_columns(['prompt', 'completion']), or --columns "
            "prompt,completion on the command line)",
        ),
        (  # a ShareGPT row's own column is kept, not the messages it is read as
            {
                "conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}],
                "source": "x",
            },
            "source",
            "ds.select_columns(['conversations']), or --columns conversations on the command line)",
        ),
        (  # HuggingFaceH4/ultrafeedback_binarized's prompt_id: was "did you mean 'prompt'?"
            {**pair, "prompt_id": "a1"},
            "prompt_id",
            "'prompt_id' holds a value; remove it (a table's extra columns: keep only those you "
            "train on, ds.select_columns(['prompt', 'chosen', 'rejected']), or --columns "
            "prompt,chosen,rejected on the command line)",
        ),
        (
            {"messages": [{"role": "user", "content": "q", "contnet": "x"}]},
            "messages[0].contnet",
            "did you mean 'content'?",
        ),
    ]
    for row, field, said in cases:
        with pytest.raises(ft.DatasetError) as caught:
            list(ft.Dataset.from_records([row]))
        assert caught.value.field == field and said in str(caught.value), str(caught.value)
        (finding,) = validate(ft.Dataset.from_records([row]), target="together", model="m").kept[
            "unexpected_field"
        ]
        assert said in finding.message  # validation says it as reading does
    message = str(caught.value)
    assert "preferred_output" not in message


def test_a_dataset_shows_its_kind_size_and_first_rows_without_reading_a_file_whole(
    tmp_path: Path,
) -> None:
    rows = [chat(i) for i in range(50)]
    rows[0]["messages"][1]["content"] = "<script>alert(1)</script>"
    file = ft.Dataset.from_jsonl(write_jsonl(tmp_path / "tickets.jsonl", rows))
    shown = file._repr_html_()
    assert "Dataset &#x27;tickets.jsonl&#x27;" in shown and "<script>" not in shown
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in shown and "Order #2 ships" in shown
    assert "Order #3 ships" not in shown  # three rows previewed
    assert "not counted yet" in shown and "chat" in shown and "bytes)" in shown
    assert repr(file) == "<Dataset 'tickets.jsonl'>"  # a file is not counted to be shown
    held = ft.Dataset.from_records(rows[:1])
    assert repr(held) == "<Dataset 'records', 1 example>" and ">1</td>" in held._repr_html_()
    assert repr(file.split(test_size=5)[1]) == "<Dataset 'tickets.jsonl[test]', 5 examples>"
    parts = [{"type": "text", "text": "Where is "}, {"type": "text", "text": "order 7?"}]
    multipart = chat(7)
    multipart["messages"][1]["content"] = parts
    shown = ft.Dataset.from_records([multipart])._repr_html_()
    assert "Where is order 7?" in shown and "&#x27;type&#x27;" not in shown  # text, not a repr


def test_from_pandas_names_what_it_takes() -> None:
    with pytest.raises(TypeError, match="takes a pandas DataFrame, not list"):
        ft.Dataset.from_pandas([chat(0)])


def test_unreadable_line_raises_dataset_error(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "broken.jsonl", [chat(0), "{not json"])
    with pytest.raises(ft.DatasetError, match=r"broken.jsonl:2"):
        list(ft.Dataset.from_jsonl(path))


def test_missing_file_is_a_dataset_error(tmp_path: Path) -> None:
    with pytest.raises(ft.DatasetError, match="no such file"):
        ft.Dataset.from_jsonl(tmp_path / "nope.jsonl")
    with pytest.raises(ft.DatasetError, match="is a folder, not a JSONL file"):
        ft.Dataset.from_jsonl(tmp_path)


def test_deduplicated_keeps_the_first_of_each_example_at_its_line(tmp_path: Path) -> None:
    """Validation warned of each ``duplicate_example`` and nothing took them out: a user
    rebuilt the file by hand (``ds.drop_duplicates()`` was an AttributeError)."""
    pair = {
        "input": [{"role": "user", "content": "Hi"}],
        "chosen": [{"role": "assistant", "content": "Hello."}],
    }
    rows = [
        chat(0),
        chat(1),
        chat(0),  # line 3: a repeat
        "{not json",  # line 4: unreadable, kept for validation to report
        {
            **chat(1),
            "messages": [*chat(1)["messages"][:-1], {**chat(1)["messages"][-1], "weight": 0}],
        },
        chat(1),  # line 6: a repeat
    ]
    path = write_jsonl(tmp_path / "train.jsonl", rows)
    kept = ft.Dataset.from_jsonl(path).deduplicated()
    assert [item.line for item in kept.items()] == [1, 2, 4, 5]  # a weight makes another example
    report = validate(kept, target="hf", model="m")
    assert "duplicate_example" not in report.counts and report.counts["invalid_json"] == 1
    assert (
        "duplicate_example" in validate(ft.Dataset.from_jsonl(path), target="hf", model="m").counts
    )
    pairs = [
        {**pair, "rejected": [{"role": "assistant", "content": "Go away."}]},
        {**pair, "rejected": [{"role": "assistant", "content": "What?"}]},  # another pair
        {**pair, "rejected": [{"role": "assistant", "content": "Go away."}]},
    ]
    assert len(ft.Dataset.from_records(pairs).deduplicated()) == 2


def test_a_url_a_blank_name_or_one_with_blanks_around_it_is_told_what_it_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``from_jsonl("https://.../train.jsonl")`` said "https:/.../train.jsonl: no such file"
    (one slash gone), ``""`` ".: is a folder", and a name pasted with a space after it
    "train.jsonl : no such file" beside the file it meant."""
    for url in ("https://example.com/train.jsonl", "hf://datasets/org/name/train.jsonl"):
        for read in (ft.Dataset.from_jsonl, ft.Dataset.from_csv, ft.Dataset.from_parquet):
            with pytest.raises(ft.DatasetError) as caught:
                read(url)
            assert str(caught.value).startswith(f"{url}: is a URL, and a dataset is read from")
            assert "ft.Dataset.from_hf(datasets.load_dataset('org/name'" in str(caught.value)
    with pytest.raises(ft.DatasetError, match=r"^no file named: give the path of a JSON file$"):
        ft.Dataset.from_json(" ")
    path = write_jsonl(tmp_path / "train.jsonl", [chat(i) for i in range(3)])
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ft.DatasetError) as caught:
        ft.Dataset.from_jsonl("train.jsonl ")
    assert str(caught.value) == (
        "train.jsonl : no such file: the name has blanks around it; 'train.jsonl' is one"
    )
    assert len(ft.Dataset.from_jsonl(path.as_uri())) == 3  # file:///...: the file itself


@needs_tiktoken
def test_a_file_that_is_not_jsonl_at_all_is_named_as_what_it_is(
    chat_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import zipfile

    from finetune.validation import validate

    lines = chat_file.read_bytes()
    packed = {
        "train.parquet": (
            b"PAR1" + bytes(16),
            "a Parquet file, not JSONL: read it with Dataset.from_parquet",
        ),
        "notepad.jsonl": (lines.decode().encode("utf-16"), "UTF-16 text.*save it as UTF-8"),
    }
    with zipfile.ZipFile(tmp_path / "train.zip", "w") as archive:
        archive.writestr("train.jsonl", lines)
    packed["train.zip"] = (
        (tmp_path / "train.zip").read_bytes(),
        "a zip archive .or an Excel workbook., not JSONL: extract the JSONL file; a sheet: "
        "save it as CSV UTF-8",
    )
    rows = [json.loads(line) for line in lines.splitlines()]
    array = "a JSON array, not JSONL .one JSON object per line.: read it with Dataset.from_json"
    packed["rows.json"] = (json.dumps(rows, indent=2).encode(), array)
    packed["one-line.json"] = (json.dumps(rows).encode(), array)
    packed["example.json"] = (json.dumps(rows[0], indent=2).encode(), "JSON written over several")
    packed["mac.jsonl"] = (lines.replace(b"\n", b"\r"), "JSONL whose lines end in a carriage ret")
    engine = sys.modules["finetune.validation._engine"]
    monkeypatch.setattr(engine, "PARALLEL_MIN_BYTES", 0)  # a file too long for one reader
    for name, (content, what) in packed.items():
        (tmp_path / name).write_bytes(content)
        data = ft.Dataset.from_jsonl(tmp_path / name)
        with pytest.raises(ft.DatasetError, match=f"{name}:1: the file is {what}") as refused:
            list(data)
        assert (refused.value.file, refused.value.line) == (name, 1)
        for workers in (1, 2):  # one finding, not one per line: no example was read
            report = validate(
                data, target="openai", model="gpt-4.1-mini-2025-04-14", workers=workers
            )
            assert [(f.code, f.line) for f in report.errors] == [("not_jsonl", 1)]
            assert report.examples == 0
    shorter = 3 * len(lines.splitlines()[0])  # than the file, one "line" of 40 rows: not too long
    mac = ft.Dataset.from_jsonl(tmp_path / "mac.jsonl", max_line_bytes=shorter)
    with pytest.raises(ft.DatasetError, match=r"mac\.jsonl:1: the file is JSONL whose lines end"):
        list(mac)
    (tmp_path / "spaced.jsonl").write_bytes(lines.replace(b'"content"', b'\r"content"'))
    assert len(ft.Dataset.from_jsonl(tmp_path / "spaced.jsonl")) == len(rows)  # CR: JSON's blank


def test_split_is_deterministic_and_disjoint(chat_file: Path) -> None:
    data = ft.Dataset.from_jsonl(chat_file)
    train, test = data.split(test_size=0.25, seed=7)
    again_train, again_test = data.split(test_size=0.25, seed=7)
    assert len(train) == 30 and len(test) == 10
    assert list(test) == list(again_test) and list(train) == list(again_train)
    assert not {e.model_dump_json() for e in train} & {e.model_dump_json() for e in test}
    other, _ = data.split(test_size=0.25, seed=8)
    assert list(other) != list(train)


def labelled(answer: str, i: int) -> dict[str, Any]:
    return {
        "messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": answer}]
    }


def answer(example: Any) -> str:
    return str(example.messages[-1].content)


def test_a_stratified_split_keeps_each_labels_share_on_both_sides(tmp_path: Path) -> None:
    """One refund in ten: a plain split of 100 rows gave a test side of 20 with no refund
    at all (seed 0), where a classifier's holdout needs the same mix as its training set."""
    from collections import Counter

    from finetune.dataset import RawRecord

    rows = [labelled("refund" if i % 10 == 0 else "ship", i) for i in range(100)]
    path = tmp_path / "labels.jsonl"
    path.write_text(
        "".join(json.dumps(row) + "\n" for row in rows[:50])
        + "{cut\n"
        + "".join(json.dumps(row) + "\n" for row in rows[50:])
    )
    data = ft.Dataset.from_jsonl(path)  # 100 examples and an unreadable row at line 51
    for seed in range(5):
        train, test = data.split(test_size=0.2, seed=seed, stratify=answer)
        assert (len(train), len(test)) == (81, 20)
        assert Counter(map(answer, test)) == {"ship": 18, "refund": 2}
        again = data.split(test_size=0.2, seed=seed, stratify=answer)[1]
        assert [e.line for e in test.records()] == [e.line for e in again.records()]
    with pytest.raises(ft.DatasetError, match=r"labels\.jsonl\[train\]:51: not valid JSON"):
        list(train)  # the unreadable row is a label of its own, on the larger side, still named
    counts = [5, 3, 2]  # shares of 3 test rows: 1.5, 0.9, 0.6; a seat each
    mixed = ft.Dataset.from_records(
        [labelled(name, i) for name, n in zip("abc", counts, strict=True) for i in range(n)]
    )
    _, test = mixed.split(test_size=3, stratify=answer)
    assert sorted(map(answer, test)) == ["a", "b", "c"]
    # a label of None is a label like any other, not the group of rows that are no example
    rows = [labelled("" if i < 10 else "x", i) for i in range(50)] + [7] * 50
    odd = ft.Dataset.from_records(rows)  # 50 examples, then 50 rows that are no object
    for seed in range(5):
        _, test = odd.split(test_size=50, seed=seed, stratify=lambda e: answer(e) or None)
        read = [item for item in test.items() if isinstance(item, RawRecord)]
        answers = Counter(record.data["messages"][-1]["content"] for record in read)
        assert (answers, len(test) - len(read)) == ({"": 5, "x": 20}, 25)
    with pytest.raises(TypeError, match="stratify returned a list, which cannot label a group"):
        mixed.split(stratify=lambda e: [answer(e)])
    with pytest.raises(TypeError, match="stratify is a function from an example"):
        mixed.split(stratify="answer")  # type: ignore[arg-type]


def test_split_rejects_empty_side(chat_file: Path) -> None:
    for size in (0.0, 1.0, float("nan"), 40, -1):
        with pytest.raises(ValueError, match=f"test_size={size!r} leaves an empty side"):
            ft.Dataset.from_jsonl(chat_file).split(test_size=size)
    for wrong in (True, "0.1", None):
        with pytest.raises(TypeError, match=f"fraction or a count, not {wrong!r}"):
            ft.Dataset.from_jsonl(chat_file).split(test_size=wrong)  # type: ignore[arg-type]
    five = ft.Dataset.from_jsonl(chat_file)[:5]  # a fraction in (0, 1) was told to be one
    for size, told in (
        (0.1, "no test example; give a count, test_size=1"),
        (0.95, "no training example; give a count, test_size=4"),
    ):
        with pytest.raises(ValueError) as caught:
            five.split(test_size=size)
        assert str(caught.value) == (
            f"test_size={size} leaves an empty side for 5 examples: 5 x {size} rounds to {told}"
        )
    with pytest.raises(ValueError, match=r"^1 example cannot be split: each side needs one"):
        five[:1].split(0.5)
    for wrong in (2.5, "3", True):
        with pytest.raises(TypeError, match=f"a whole number, not {wrong!r}"):
            ft.Dataset.from_jsonl(chat_file).sample(wrong)  # type: ignore[arg-type]


def test_split_and_sample_take_numpy_numbers(chat_file: Path) -> None:
    np = pytest.importorskip("numpy")  # what a count computed with numpy or pandas is
    train, test = ft.Dataset.from_jsonl(chat_file).split(test_size=np.int64(10))
    assert (len(train), len(test)) == (30, 10)
    assert len(ft.Dataset.from_jsonl(chat_file).split(test_size=np.float64(0.25))[1]) == 10
    assert len(ft.Dataset.from_jsonl(chat_file).sample(np.int64(3))) == 3


def test_a_pipe_is_refused_as_not_a_regular_file_not_as_missing(tmp_path: Path) -> None:
    """`cat data.jsonl | finetune validate /dev/stdin` said "no such file"."""
    pipe = tmp_path / "pipe.jsonl"
    os.mkfifo(pipe)
    with pytest.raises(ft.DatasetError, match=r"is not a regular file .* save it to a file"):
        ft.Dataset.from_jsonl(pipe)
    with pytest.raises(ft.DatasetError, match="no such file"):
        ft.Dataset.from_jsonl(tmp_path / "missing.jsonl")


def test_a_dash_is_refused_as_standard_input_unless_a_file_has_that_name(
    tmp_path: Path, chat_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`cat data.jsonl | finetune validate -` said "-: no such file; check the path"."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ft.DatasetError, match=r"^-: standard input is read once, .* file"):
        ft.Dataset.from_jsonl("-")
    (tmp_path / "-").write_bytes(chat_file.read_bytes())
    assert len(ft.Dataset.from_jsonl("-")) == len(ft.Dataset.from_jsonl(chat_file))


def test_an_open_file_or_bytes_is_refused_with_what_to_pass_instead(chat_file: Path) -> None:
    """`from_jsonl(open(path))` or an upload's bytes said "expected str, bytes or os.PathLike
    object, not TextIOWrapper"; `from_jsonl(None)` said "None: no such file"."""
    with chat_file.open("rb") as opened:
        for reader in (ft.Dataset.from_jsonl, ft.Dataset.from_json, ft.Dataset.from_csv):
            with pytest.raises(TypeError, match=r"not from an open file: pass its path, '"):
                reader(opened)  # type: ignore[arg-type]
    for held in (io.BytesIO(chat_file.read_bytes()), chat_file.read_bytes()):
        with pytest.raises(TypeError, match=r"save what it holds to a file .*from_records"):
            ft.Dataset.from_jsonl(held)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"^a JSONL file is named by its path .* not NoneType$"):
        ft.Dataset.from_jsonl(None)  # type: ignore[arg-type]


def test_a_file_changed_under_its_dataset_is_an_error_not_other_rows(chat_file: Path) -> None:
    """Writing a split over its own file made the other split read other rows, silently."""
    data = ft.Dataset.from_jsonl(chat_file)
    train, test = data.split(test_size=10, seed=1)
    held = [e.model_dump_json() for e in test]
    train.to_jsonl(chat_file)  # "clean the file in place"
    for stale in (test, data, train):
        with pytest.raises(ft.DatasetError, match="changed since this dataset was made"):
            list(stale)
    again = ft.Dataset.from_jsonl(chat_file)
    assert len(again) == 30 and not {e.model_dump_json() for e in again} & set(held)


def test_excluding_drops_the_examples_the_other_holds_and_keeps_unreadable_rows(
    tmp_path: Path,
) -> None:
    """A holdout with nothing the model trained on, even when the data repeats a row."""
    train = ft.Dataset.from_records([chat(i) for i in range(10)])
    reordered = {
        "messages": [{"content": m["content"], "role": m["role"]} for m in chat(3)["messages"]]
    }
    # the same question and answer as chat(4) but without its system turn: another question
    other_shape = {"prompt": "Where is my order #4?", "completion": "Order #4 ships tomorrow."}
    path = write_jsonl(
        tmp_path / "holdout.jsonl",
        [chat(11), reordered, "{not json", chat(12), chat(7), "", other_shape],
    )
    holdout = ft.Dataset.from_jsonl(path)
    clean = holdout.excluding(train)
    items = list(clean.items())
    kept = [item.line for item in items]
    assert kept == [1, 3, 4, 7]  # lines 2 and 5 were trained on; 6 is a blank-line warning
    assert isinstance(items[1], ReadProblem) and items[1].code == "invalid_json"
    assert len(clean) == 4 and repr(clean) == "<Dataset 'holdout.jsonl[excluding]', 4 examples>"
    assert [e.model_dump_json() for e in ft.Dataset.from_records([chat(11)]).excluding([])] == [
        e.model_dump_json() for e in ft.Dataset.from_records([chat(11)])
    ]
    assert len(train.excluding(train)) == 0


def test_excluding_tells_apart_questions_alike_in_text_but_not_in_image_or_call() -> None:
    def image(url: str) -> dict[str, Any]:
        parts = [{"type": "text", "text": "What is this?"}]
        parts.append({"type": "image_url", "image_url": {"url": url}})
        answer = {"role": "assistant", "content": "A cat."}
        return {"messages": [{"role": "user", "content": parts}, answer]}

    def call(city: str) -> dict[str, Any]:
        asked = {"name": "weather", "arguments": json.dumps({"city": city})}
        answer = {"role": "assistant", "tool_calls": [{"id": "c1", "function": asked}]}
        return {"messages": [{"role": "user", "content": "Weather?"}, answer]}

    train = ft.Dataset.from_records([image("https://x/1.png"), call("Paris")])
    holdout = [image("https://x/2.png"), call("Rome"), image("https://x/1.png"), call("Paris")]
    kept = ft.Dataset.from_records(holdout).excluding(train)
    assert [e.model_dump(exclude_none=True) for e in kept] == [
        e.model_dump(exclude_none=True) for e in ft.Dataset.from_records(holdout[:2])
    ]


def test_datasets_concatenated_keep_each_rows_file_and_line(tmp_path: Path) -> None:
    """Two files trained as one were joined with `cat`, so an error named a line of the
    joined file, in neither; a concatenation names the part's file and its own line."""
    first = write_jsonl(tmp_path / "a.jsonl", [chat(i) for i in range(12)])
    second = write_jsonl(tmp_path / "b.jsonl", [chat(0), chat(20), "{not json", chat(21)])
    both = ft.Dataset.from_jsonl(first) + ft.Dataset.from_jsonl(second)
    assert "not counted yet (len() reads each file)" in both._repr_html_()
    assert repr(both) == "<Dataset 'a.jsonl+b.jsonl'>" and len(both) == 16
    assert [(item.file, item.line) for item in both.items()][10:] == [
        ("a.jsonl", 11), ("a.jsonl", 12), ("b.jsonl", 1), ("b.jsonl", 2), ("b.jsonl", 3),
        ("b.jsonl", 4),
    ]  # fmt: skip
    with pytest.raises(ft.DatasetError) as caught:
        list(both)
    assert (caught.value.file, caught.value.line) == ("b.jsonl", 3)
    with pytest.raises(ft.DatasetError) as caught:
        both[14]
    assert (caught.value.file, caught.value.line) == ("b.jsonl", 3)
    report = validate(both, target="openai", model="gpt-4.1-mini-2025-04-14")
    assert report.files == ["a.jsonl+b.jsonl", "a.jsonl", "b.jsonl"]
    assert [(f.file, f.line) for f in report.errors] == [("b.jsonl", 3)]
    [duplicate] = report.kept["duplicate_example"]
    assert (duplicate.file, duplicate.line, duplicate.message) == (
        "b.jsonl",
        1,
        "same as a.jsonl:1",
    )
    held = ft.Dataset.from_records([chat(5)]) + ft.Dataset.from_records([chat(30)])
    report = validate(both[:12], target="openai", model="m", validation=held)
    assert held.name == "records+records#2"
    [leak] = report.kept["train_validation_leak"]
    assert (leak.file, leak.line) == ("records", 1)
    readable = both[:14] + both[15:]  # views of a concatenation keep their rows' places
    assert [(e.file, e.line) for e in readable.items()][-1] == ("b.jsonl", 4)
    written = tmp_path / "joined.jsonl"
    readable.to_jsonl(written)
    assert readable.fingerprint() == ft.Dataset.from_jsonl(written).fingerprint()


def test_only_datasets_of_one_declared_kind_are_concatenated() -> None:
    chats = ft.Dataset.from_records([chat(1)], kind="chat")
    completions = ft.Dataset.from_records([{"prompt": "p", "completion": "c"}], kind="completion")
    with pytest.raises(ValueError, match="declared of chat and completion examples"):
        chats + completions
    with pytest.raises(TypeError, match=r"Dataset.concat\(\[a, b\]\)"):
        ft.Dataset.concat(chats)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="a list of Datasets"):
        ft.Dataset.concat([chats, [chat(2)]])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="at least one"):
        ft.Dataset.concat([])
    with pytest.raises(TypeError):
        chats + 2  # type: ignore[operator]
    whole = ft.Dataset.concat([chats, ft.Dataset.from_records([chat(2)])], name="support")
    assert whole.name == "support" and whole.declared_kind == "chat" and len(whole) == 2
    undeclared = ft.Dataset.from_records([chat(1)]) + ft.Dataset.from_records([chat(2)])
    mixed = undeclared + ft.Dataset.from_records([{"prompt": "p", "completion": "c"}])
    [finding] = validate(mixed, target="together", model="m").kept["mixed_kinds"]
    assert (finding.file, finding.message) == (
        "records#3",
        "completion example in a set of files of chat examples",
    )
    three = whole + ft.Dataset.from_records([chat(3)])  # joined again: each part named apart
    assert three.name == "records+records#2+records#3"
    assert [item.file for item in three.items()] == ["records", "records#2", "records#3"]


def test_filter_keeps_what_the_function_accepts_and_the_rows_for_validation(
    tmp_path: Path,
) -> None:
    """A filtered view reads the same file: its lines stay the file's, in its order."""
    path = write_jsonl(
        tmp_path / "tickets.jsonl",
        [chat(1), chat(22), "{not json", {"messages": [{"role": "robot"}]}, "", chat(3), chat(44)],
    )
    data = ft.Dataset.from_jsonl(path)
    seen: list[str] = []

    def short(example: ft.Example) -> bool:
        assert isinstance(example, ft.ChatExample)
        seen.append(example.messages[1].content or "")
        return len(example.messages[1].content or "") < 22

    kept = data.filter(short)
    assert len(seen) == 4  # once each, when filtering
    assert [item.line for item in kept.items()] == [1, 3, 4, 6]
    assert len(kept) == 4 and repr(kept) == "<Dataset 'tickets.jsonl[filter]', 4 examples>"
    with pytest.raises(ft.DatasetError) as caught:  # the unreadable row, as validation says
        list(kept)
    assert (caught.value.file, caught.value.line) == ("tickets.jsonl[filter]", 3)
    report = validate(kept, target="together", model="m")
    assert {(f.line, f.code) for f in report.errors} >= {(3, "invalid_json")}
    assert len(ft.Dataset.from_records([chat(i) for i in range(5)]).filter(lambda e: 0)) == 0
    assert len(ft.Dataset.from_records([]).filter(short)) == 0
    with pytest.raises(TypeError, match="a function from an example"):
        data.filter("short")  # type: ignore[arg-type]


def test_a_filter_or_stratify_function_that_fails_is_told_the_example_it_failed_on() -> None:
    """``data.filter(lambda e: e.messages[1].content ...)`` raised IndexError on one row of
    thousands, with nothing to say which."""
    asked_only = {"messages": [{"role": "user", "content": "a question, no answer yet"}]}
    data = ft.Dataset.from_records([chat(0), chat(1), asked_only, chat(3)])

    def answer(example: ft.Example) -> str:
        assert isinstance(example, ft.ChatExample)
        return example.messages[1].content or ""

    assert len(data[:2].filter(answer)) == 2  # no error: no note, no change
    with pytest.raises(IndexError) as caught:  # its own error, with a note naming the row
        data.filter(answer)
    assert caught.value.__notes__ == [
        "raised by the filter function on the example at position 2 (ds[2])"
    ]
    with pytest.raises(IndexError) as caught:
        data.split(test_size=1, stratify=answer)
    assert caught.value.__notes__ == [
        "raised by the stratify function on the example at position 2 (ds[2])"
    ]


def test_a_dataset_is_indexed_by_position_and_sliced_into_views(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "tickets.jsonl", [chat(0), "", chat(1), "{not json", chat(3)])
    data = ft.Dataset.from_jsonl(path)
    first, last = data[0], data[-1]
    assert isinstance(first, ft.ChatExample) and isinstance(last, ft.ChatExample)
    assert first.messages[1].content == "Where is my order #0?"
    assert last.messages[1].content == "Where is my order #3?" and data[3] == last
    with pytest.raises(ft.DatasetError) as caught:  # its line in the file, not its position
        data[2]
    assert (caught.value.file, caught.value.line) == ("tickets.jsonl", 4)
    for outside in (4, -5):
        with pytest.raises(IndexError, match=f"index {outside} is out of range for 4 examples"):
            data[outside]
    for wrong in (1.0, "0", True):
        with pytest.raises(TypeError, match="a whole number or a slice"):
            data[wrong]  # type: ignore[call-overload]
    head = data[:2]
    assert repr(head) == "<Dataset 'tickets.jsonl[0:2]', 2 examples>"
    assert [item.line for item in head.items()] == [1, 3] and list(head)[1] == data[1]
    assert [item.line for item in data[::3].items()] == [1, 5]
    assert len(data[3:1]) == 0 and head[-1] == data[1]
    with pytest.raises(ValueError, match="a positive step"):
        data[::-1]
    records = ft.Dataset.from_records([chat(i) for i in range(3)])
    assert [e.model_dump() for e in records[1:]] == [e.model_dump() for e in list(records)[1:]]


def test_a_dataset_repr_names_its_kind_once_known(chat_file: Path) -> None:
    data = ft.Dataset.from_jsonl(chat_file)
    assert repr(data) == "<Dataset 'train.jsonl'>"  # a repr reads nothing
    assert data.kind == "chat" and repr(data) == "<Dataset 'train.jsonl' kind=chat>"


def test_an_empty_dataset_says_it_is_empty(tmp_path: Path) -> None:
    blank = tmp_path / "blank.jsonl"
    blank.write_text("\n\n")
    for empty in (ft.Dataset.from_records([]), ft.Dataset.from_jsonl(blank)):
        with pytest.raises(ft.DatasetError, match="the dataset is empty"):
            ft.Tuner("fake", model="m", registry=False).fit(empty, skip_validation=True)


def test_sample_is_deterministic(chat_file: Path) -> None:
    data = ft.Dataset.from_jsonl(chat_file)
    assert list(data.sample(5, seed=1)) == list(data.sample(5, seed=1))
    assert len(data.sample(5, seed=1)) == 5
    assert len(data.sample(500)) == 40 and len(data.sample(0)) == 0
    assert data.sample(500).name.endswith("[sample40]")  # what it holds, not what was asked
    with pytest.raises(ValueError, match="0 or more"):
        data.sample(-1)


def test_fingerprint_stable_across_key_order_and_source(tmp_path: Path) -> None:
    rows = [chat(i) for i in range(5)]
    shuffled = [
        {"messages": [{"content": m["content"], "role": m["role"]} for m in r["messages"]]}
        for r in rows
    ]
    from_file = ft.Dataset.from_jsonl(write_jsonl(tmp_path / "a.jsonl", shuffled))
    from_records = ft.Dataset.from_records(rows)
    assert from_file.fingerprint() == from_records.fingerprint()
    assert len(from_file.fingerprint()) == 64
    changed = ft.Dataset.from_records([*rows[:4], chat(99)])
    assert changed.fingerprint() != from_records.fingerprint()
    # an empty list of tools or of calls is none, as a row without the key: one fit, one file
    empty = [{**json.loads(json.dumps(r)), "tools": []} for r in rows]
    empty[0]["messages"][-1] = {**empty[0]["messages"][-1], "tool_calls": []}
    assert ft.Dataset.from_records(empty).fingerprint() == from_records.fingerprint()
    assert list(ft.Dataset.from_records(empty)) == list(from_records)
    pair = {"input": {"messages": rows[0]["messages"][:2], "tools": []}}
    pair |= {
        "preferred_output": rows[0]["messages"][2:],
        "non_preferred_output": rows[1]["messages"][2:],
    }
    (read,) = ft.Dataset.from_records([pair])
    assert read.tools is None


def test_to_jsonl_round_trips_each_format(tmp_path: Path) -> None:
    data = ft.Dataset.from_records([chat(i) for i in range(3)])
    for fmt in ("native", "openai", "mistral", "hf"):
        out = data.to_jsonl(tmp_path / f"{fmt}.jsonl", format=fmt)
        assert list(ft.Dataset.from_jsonl(out)) == list(data)
    assert not list(tmp_path.glob(".*.tmp"))


def test_an_unknown_format_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    from finetune.dataset import to_format

    target = tmp_path / "out.jsonl"
    target.write_text("previous content\n")
    data = ft.Dataset.from_records([chat(0)])
    for dataset in (data, ft.Dataset.from_records([])):
        with pytest.raises(ValueError, match=r"unknown output format 'openia'.*'openai'"):
            dataset.to_jsonl(target, format="openia")  # type: ignore[arg-type]
    assert target.read_text() == "previous content\n"
    assert not list(tmp_path.glob(".*.tmp"))
    with pytest.raises(ValueError, match="format_example"):
        to_format(next(iter(data)), "together")  # type: ignore[arg-type]
    # a backend's name, or TRL's, says the format it stands for
    for name, meant in (
        ("together", "the together backend uploads 'openai' rows"),
        ("Fireworks", "the fireworks backend uploads 'openai' rows"),
        ("hf", None),
        ("mistral", None),
        ("trl", "TRL's rows are 'hf'"),
    ):
        if meant is None:
            assert data.to_jsonl(tmp_path / f"{name}.jsonl", format=name).exists()  # type: ignore[arg-type]
            continue
        with pytest.raises(ValueError, match=re.escape(f"'{name}' ({meant})")):
            data.to_jsonl(target, format=name)  # type: ignore[arg-type]
    assert ft.Tuner("hf").capabilities.output_format == "hf"  # as its jobs' files are written


def test_to_jsonl_is_atomic_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "out.jsonl"
    target.write_text("previous content\n")
    bad = ft.Dataset.from_records([chat(0), {"messages": "oops"}])
    with pytest.raises(ft.DatasetError):
        bad.to_jsonl(target)
    assert target.read_text() == "previous content\n"
    assert not list(tmp_path.glob(".*.tmp"))


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")
def test_a_file_written_atomically_has_the_permissions_open_would_give(tmp_path: Path) -> None:
    """The temp file's 0600 stayed on train.jsonl and result.json: no one else could read
    them. A new file gets 0666 less the umask; a replaced one keeps its own."""
    data = ft.Dataset.from_records([chat(0)])
    previous = os.umask(0o027)
    try:
        assert stat.S_IMODE(data.to_jsonl(tmp_path / "new.jsonl").stat().st_mode) == 0o640
        kept = tmp_path / "kept.jsonl"
        kept.write_text("")
        kept.chmod(0o604)
        assert stat.S_IMODE(data.to_jsonl(kept).stat().st_mode) == 0o604
    finally:
        os.umask(previous)


def test_writing_to_a_folder_says_so_before_any_work(tmp_path: Path) -> None:
    """It failed at the rename, after the whole dataset was written, naming the temp file."""
    data = ft.Dataset.from_records([chat(0)])
    with pytest.raises(IsADirectoryError, match=f"is a folder: name a file: '{tmp_path}'"):
        data.to_jsonl(tmp_path)
    assert not list(tmp_path.parent.glob(".*.tmp"))


def test_preference_formats_round_trip(tmp_path: Path) -> None:
    pair = ft.PreferenceExample(
        input=[ft.Message(role="user", content="2+2?")],
        chosen=[ft.Message(role="assistant", content="4")],
        rejected=[ft.Message(role="assistant", content="5")],
    )
    data = ft.Dataset.from_records([pair])
    for fmt in ("openai", "hf"):
        out = data.to_jsonl(tmp_path / f"{fmt}.jsonl", format=fmt)
        assert list(ft.Dataset.from_jsonl(out)) == [pair]
    openai_row = json.loads((tmp_path / "openai.jsonl").read_text())
    assert set(openai_row) == {"input", "preferred_output", "non_preferred_output"}
    with pytest.raises(ft.UnsupportedFeature, match="preference"):
        data.to_jsonl(tmp_path / "m.jsonl", format="mistral")


def test_trl_plain_text_preference_is_read() -> None:
    data = ft.Dataset.from_records([{"prompt": "q", "chosen": "a", "rejected": "b"}])
    (pair,) = list(data)
    assert isinstance(pair, ft.PreferenceExample)
    assert pair.chosen[0].role == "assistant"


def test_hh_rlhf_transcripts_are_read_as_their_conversations(tmp_path: Path) -> None:
    """Anthropic's HH-RLHF rows, ``chosen`` and ``rejected`` each a "Human: ... Assistant:
    ..." transcript, were "no prompt: give the conversation so far as 'prompt'"."""
    asked = "\n\nHuman: What is 2 + 2?\n\nAssistant: 4.\n\nHuman: And 3 + 3?\n\nAssistant:"
    rows = [
        {"chosen": f"{asked} 6.", "rejected": f"{asked} I do not know."},
        {"chosen": "Human: Hi?\n\nAssistant: Hello.", "rejected": "Human: Hi?\n\nAssistant:"},
        {"chosen": "\n\nHuman: Hi?\n\nAssistant: Hello.", "rejected": "\n\nHuman: Bye?"},
    ]
    data = ft.Dataset.from_jsonl(write_jsonl(tmp_path / "hh.jsonl", rows))
    pair = data[0]
    assert isinstance(pair, ft.PreferenceExample)
    assert [(m.role, m.content) for m in pair.input] == [
        ("user", "What is 2 + 2?"),
        ("assistant", "4."),
        ("user", "And 3 + 3?"),
    ]
    assert [m.content for m in pair.chosen] == ["6."]
    assert [m.content for m in pair.rejected] == ["I do not know."]
    report = validate(data, target="hf", model="m")
    (empty,) = [f for f in report.warnings if f.code != "unchecked_context"]
    assert (empty.code, empty.line, empty.field) == ("empty_content", 2, "rejected")
    (broken,) = report.errors  # no assistant turn in one: not a transcript pair
    assert broken.line == 3 and broken.message.startswith("no prompt: give the conversation")
    assert _is_transcript_pair({"chosen": "Human: q", "rejected": "Human: q"}) is False


def test_guanaco_transcripts_are_read_as_their_conversations(tmp_path: Path) -> None:
    """openassistant-guanaco's rows (the QLoRA paper's set), one ``text`` of "### Human:
    ... ### Assistant: ..." turns, were refused as plain text for language modeling."""
    asked = "### Human: What is 2 + 2?### Assistant: 4.### Human: And 3 + 3?"
    rows = [
        {"text": f"{asked}### Assistant: 6."},
        {"text": "### Human: Hi?### Assistant: "},
        {"text": "### Human: a question, and no answer"},
    ]
    data = ft.Dataset.from_jsonl(write_jsonl(tmp_path / "guanaco.jsonl", rows))
    chat = data[0]
    assert isinstance(chat, ft.ChatExample)
    assert [(m.role, m.content) for m in chat.messages] == [
        ("user", "What is 2 + 2?"),
        ("assistant", "4."),
        ("user", "And 3 + 3?"),
        ("assistant", "6."),
    ]
    report = validate(data, target="hf", model="m")
    (empty,) = [f for f in report.warnings if f.code == "empty_content"]
    assert (empty.line, empty.field) == (2, "text")
    (plain,) = report.errors  # no assistant turn: plain text, told as before
    assert plain.line == 3 and "a row of plain text is for language modeling" in plain.message


def test_llama_2_chat_text_is_read_as_its_conversation() -> None:
    """mlabonne/guanaco-llama2-1k's rows, one ``text`` written in Llama 2's chat template
    (``<s>[INST] q [/INST] a </s>``), were refused as plain text for language modeling."""
    system = "<<SYS>>\nBe brief.\n<</SYS>>\n\n"
    rows = [
        {"text": "<s>[INST] Me das un ejemplo? [/INST] Claro: uno. </s>"},
        {"text": f"<s>[INST] {system}Hi? [/INST] Hello. </s><s>[INST] Bye? [/INST] Bye. </s>"},
    ]
    data = ft.Dataset.from_records(rows)
    assert [[(m.role, m.content) for m in example.messages] for example in data] == [
        [("user", "Me das un ejemplo?"), ("assistant", "Claro: uno.")],
        [
            ("system", "Be brief."),
            ("user", "Hi?"),
            ("assistant", "Hello."),
            ("user", "Bye?"),
            ("assistant", "Bye."),
        ],
    ]


def test_chatml_llama_3_gemma_and_phi_3_chat_text_is_read_as_its_conversation() -> None:
    """A ``text`` written in ChatML (Qwen's, SmolLM's template; sets formatted for them), in
    Llama 3's, Gemma's, Phi-3's or Zephyr's template was refused as plain text for language
    modeling."""
    chatml = (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi?<|im_end|>\n"
        "<|im_start|>assistant\nHello.\n\nHow can I help?<|im_end|>\n"
    )
    llama3 = (
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nWeather?<|eot_id|>"
        '<|start_header_id|>ipython<|end_header_id|>\n\n{"sky": "clear"}<|eot_id|>'
        "<|start_header_id|>assistant<|end_header_id|>\n\nClear.<|eot_id|>"
    )
    gemma = (
        "<bos><start_of_turn>user\nHi?<end_of_turn>\n<start_of_turn>model\nHello.<end_of_turn>\n"
    )
    phi3 = "<|user|>\nHi?<|end|>\n<|assistant|>\nHello.<|end|>\n"
    zephyr = "<|system|>\nBe brief.</s>\n<|user|>\nHi?</s>\n<|assistant|>\nHello.</s>\n"
    texts = [chatml, llama3, gemma, phi3, zephyr]
    data = ft.Dataset.from_records([{"text": text} for text in texts])
    hello = [("user", "Hi?"), ("assistant", "Hello.")]
    assert [[(m.role, m.content) for m in example.messages] for example in data] == [
        [("system", "Be brief."), ("user", "Hi?"), ("assistant", "Hello.\n\nHow can I help?")],
        [
            ("system", "Be brief."),
            ("user", "Weather?"),
            ("tool", '{"sky": "clear"}'),
            ("assistant", "Clear."),
        ],
        hello,
        hello,
        [("system", "Be brief."), *hello],
    ]
    asked_only = "<|im_start|>user\nHi?<|im_end|>\n"  # no answer: plain text, as before
    unknown = "<|im_start|>user\nHi?<|im_end|>\n<|im_start|>critic\nNo.<|im_end|>\n"
    rows = [{"text": asked_only}, {"text": unknown + "<|im_start|>assistant\nYes.<|im_end|>"}]
    report = validate(ft.Dataset.from_records(rows), target="hf", model="m")
    assert [(f.code, f.line) for f in report.errors] == [("unknown_format", 1), ("unknown_role", 2)]
    assert report.errors[0].message.endswith(
        "in a chat template (ChatML, Llama 2's or 3's, Gemma's, Phi-3's, Zephyr's) or as "
        "guanaco's '### Human:' transcript is read once it has an assistant turn"
    )
    assert report.errors[1].field.startswith("text")


def test_llama_3_1_text_is_read_without_the_lines_its_template_adds_to_the_system_turn() -> None:
    """Llama 3.1-3.3's template opens the system turn with its dates (and ``Environment:
    ipython`` where tools were given), and writes them alone where a conversation has no
    system prompt: read as the system prompt, they were trained twice once the template wrote
    them again."""
    dates = "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n"
    turns = (
        "<|start_header_id|>user<|end_header_id|>\n\nHi?<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\nHello.<|eot_id|>"
    )

    def written(system: str) -> dict[str, str]:
        head = "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
        return {"text": f"{head}{system}<|eot_id|>{turns}"}

    rows = [
        written(dates + "Be brief."),
        written(dates),
        written("Environment: ipython\n" + dates + "Be brief."),
        written("Today Date: any day. Be brief."),  # the data's own words: kept
    ]
    hello = [("user", "Hi?"), ("assistant", "Hello.")]
    assert [[(m.role, m.content) for m in e.messages] for e in ft.Dataset.from_records(rows)] == [
        [("system", "Be brief."), *hello],
        hello,
        [("system", "Be brief."), *hello],
        [("system", "Today Date: any day. Be brief."), *hello],
    ]


def _turn(role: str, content: str) -> dict[str, str]:
    return {"role": role, "content": content}


def test_trl_implicit_prompt_pairs_are_read_as_their_explicit_pairs() -> None:
    """``trl-lib/ultrafeedback_binarized``'s shape: chosen and rejected each the whole
    conversation; the prompt is the turns both begin with (TRL's ``extract_prompt``). Was:
    every row 'input must be a non-empty list of messages ..., not missing'."""
    system = _turn("system", "Be brief.")

    def conversation(i: int, answer: str) -> list[dict[str, str]]:
        return [system, _turn("user", f"{i} + 1?"), _turn("assistant", answer)]

    implicit = [
        {"chosen": conversation(i, str(i + 1)), "rejected": conversation(i, str(i + 2))}
        for i in range(12)
    ]
    explicit = [
        {"prompt": row["chosen"][:2], "chosen": row["chosen"][2:], "rejected": row["rejected"][2:]}
        for row in implicit
    ]
    read = ft.Dataset.from_records(implicit)
    assert list(read) == list(ft.Dataset.from_records(explicit))
    assert read.fingerprint() == ft.Dataset.from_records(explicit).fingerprint()
    assert [m.role for m in next(iter(read)).input] == ["system", "user"]
    assert validate(read, target="hf", model="m").ok
    # a finding in an answer is named where the row has it: after the shared turns
    broken = [*implicit[:11], {**implicit[11], "chosen": [*implicit[11]["chosen"][:2], {}]}]
    report = validate(ft.Dataset.from_records(broken), target="hf", model="m")
    assert (12, "chosen[2].role") in [(f.line, f.field) for f in report.errors]


def test_a_text_prompt_beside_two_whole_conversations_is_read_from_them() -> None:
    """``HuggingFaceH4/ultrafeedback_binarized`` (its columns selected): a text prompt, and
    chosen and rejected each the whole conversation. TRL reads the prompt from the
    conversations; we kept the text and trained the user's turn as part of each answer."""
    rows = [
        {
            "prompt": f"{i} + 1?",
            "chosen": [_turn("user", f"{i} + 1?"), _turn("assistant", str(i + 1))],
            "rejected": [_turn("user", f"{i} + 1?"), _turn("assistant", str(i + 2))],
        }
        for i in range(12)
    ]
    (first, *_) = read = list(ft.Dataset.from_records(rows))
    assert [m.role for m in first.input] == ["user"]  # type: ignore[union-attr]
    assert [m.role for m in first.chosen] == ["assistant"]  # type: ignore[union-attr]
    assert len(read) == 12
    assert validate(ft.Dataset.from_records(rows), target="hf", model="m").ok


@needs_tiktoken
def test_a_user_turn_in_an_answer_is_refused() -> None:
    """DPO trains on every turn of an answer, a user's too: the prompt belongs before it."""
    answer = [_turn("user", "q"), _turn("assistant", "a")]
    rows = [
        {"prompt": [_turn("user", "q")], "chosen": answer, "rejected": [_turn("assistant", "b")]},
        {
            "input": {"messages": [_turn("user", "q")]},
            "preferred_output": [_turn("assistant", "a")],
            "non_preferred_output": [_turn("system", "s"), _turn("assistant", "b")],
        },
    ]
    for row, field in zip(rows, ("chosen[0].role", "non_preferred_output[0].role"), strict=True):
        report = validate(
            ft.Dataset.from_records([row]), target="openai", model="gpt-4.1-mini-2025-04-14"
        )
        found = [(f.code, f.field) for f in report.errors]
        assert ("invalid_preference", field) in found, found


@pytest.mark.parametrize(
    ("chosen", "rejected", "says"),
    [
        ([_turn("assistant", "a")], [_turn("assistant", "b")], "they share no first turn"),
        (
            [_turn("user", "q"), _turn("assistant", "a")],
            [_turn("user", "q"), _turn("assistant", "a"), _turn("assistant", "b")],
            "nothing is left of one of them after the turns they share",
        ),
        ("Human: q Assistant: a", "Human: q Assistant: b", "only when both are lists of messages"),
    ],
)
def test_a_pair_without_a_prompt_that_cannot_be_split_says_why(
    chosen: Any, rejected: Any, says: str
) -> None:
    rows = [{"chosen": chosen, "rejected": rejected}]
    report = validate(ft.Dataset.from_records(rows), target="hf", model="m")
    (finding,) = [f for f in report.errors if f.field == "prompt"]
    assert finding.code == "invalid_preference"
    assert finding.message.startswith("no prompt: ") and says in finding.message
    assert "give the conversation so far as 'prompt', and each answer alone" in finding.message
    with pytest.raises(ft.DatasetError, match=f"records:1: prompt: no prompt: .*{says}"):
        list(ft.Dataset.from_records(rows))


@pytest.mark.parametrize(
    "row",
    [
        {"prompt": "q", "completion": "a", "label": False},
        {"prompt": [_turn("user", "q")], "completion": [_turn("assistant", "a")], "label": True},
    ],
)
def test_kto_rows_are_refused_with_a_cure_that_keeps_the_bad_completions_out(
    row: dict[str, Any],
) -> None:
    """TRL's unpaired preference rows: "remove the key", the advice for an extra column,
    would train SFT on the completions labelled bad."""
    report = validate(ft.Dataset.from_records([row]), target="hf", model="m")
    (finding,) = [f for f in report.errors if f.field == "label"]
    assert "KTO" in finding.message and "would train on the bad completions too" in finding.message
    assert "ds.filter(lambda row: row['label'])" in finding.message
    with pytest.raises(ft.DatasetError, match=r"records:1: label: .*KTO"):
        list(ft.Dataset.from_records([row]))
    number = validate(ft.Dataset.from_records([{**row, "label": 3}]), target="hf", model="m")
    assert "KTO" not in number.errors[0].message  # a class label of another kind of data


def test_hugging_face_datasets_method_names_are_told_what_does_it_here() -> None:
    """``ds.train_test_split(...)``, ``ds.shuffle(...)``, as a 🤗 datasets user writes them,
    were "'Dataset' object has no attribute" alone."""
    data = ft.Dataset.from_records([chat(i) for i in range(4)])
    with pytest.raises(AttributeError, match=r"here, ds\.split\(test_size=0\.1, seed=0\)"):
        data.train_test_split(test_size=0.1)  # type: ignore[attr-defined]
    with pytest.raises(AttributeError, match=r"keeps its file's order.*ds\.sample\(n, seed=0\)"):
        data.shuffle(seed=1)  # type: ignore[attr-defined]
    with pytest.raises(AttributeError) as misspelt:
        data.fitler  # type: ignore[attr-defined]  # noqa: B018
    assert str(misspelt.value) == "'Dataset' object has no attribute 'fitler'"
    assert (misspelt.value.name, misspelt.value.obj) == ("fitler", data)  # Python suggests
    assert not hasattr(data, "num_rows") and len(pickle.loads(pickle.dumps(data))) == 4
    with pytest.raises(
        TypeError, match=r"not 'messages'; a column: ds\.to_pandas\(\)\['messages'\]$"
    ):
        data["messages"]  # type: ignore[call-overload]


def test_pandas_method_names_are_told_what_does_it_here() -> None:
    """A Dataset looked at as the DataFrame it came from: ``ds.head()`` was "'Dataset' object
    has no attribute 'head'" alone."""
    data = ft.Dataset.from_records([chat(i) for i in range(8)])
    told = {
        "head": "that is pandas' name; here, ds[:5] is a view of the first rows",
        "to_dict": "[e.model_dump(exclude_none=True) for e in ds] gives the examples as dicts",
        "drop_duplicates": "ds.deduplicated() is a view without the repeats of an earlier",
    }
    for name, cure in told.items():
        with pytest.raises(AttributeError) as caught:
            getattr(data, name)
        assert cure in str(caught.value)
    dicts = [e.model_dump(exclude_none=True) for e in data[:5]]
    assert list(ft.Dataset.from_records(dicts)) == list(data[:5])  # the cures work as written
    with pytest.raises(AttributeError, match="that is Hugging Face datasets' name"):
        data.shuffle  # type: ignore[attr-defined]  # noqa: B018


def test_dolly_rows_are_told_the_renames_that_read_them_as_alpaca_rows() -> None:
    """databricks-dolly-15k's rows (instruction, context, response, category) were "cannot
    tell the example kind" with no cure, where Alpaca's instruction, input and output read."""
    dolly = {"instruction": "Sum them.", "context": "2 and 2", "response": "4", "category": "qa"}
    (finding,) = validate(ft.Dataset.from_records([dolly]), target="hf", model="m").errors
    renames = {"instruction": "instruction", "context": "input", "response": "output"}
    assert finding.message.endswith(
        "--columns instruction,context=input,response=output on the command line"
    )
    assert "Dolly" in finding.message and f"ds.select_columns({renames!r})" in finding.message
    renamed = ft.Dataset.from_records([dolly]).select_columns(renames)
    assert [m.content for m in renamed[0].messages] == ["Sum them.\n\n2 and 2", "4"]
    without_context = ft.Dataset.from_records([{**dolly, "context": ""}])
    assert without_context.select_columns(renames)[0].messages[0].content == "Sum them."


def test_a_first_row_of_no_kind_is_told_as_such_not_as_an_empty_dataset(tmp_path: Path) -> None:
    """``finetune train`` (and ``ds.kind``) on a file of Dolly rows said "the dataset is
    empty: it has no example to tell its kind from"."""
    dolly = {"instruction": "Sum them.", "context": "2 and 2", "response": "4"}
    data = ft.Dataset.from_jsonl(write_jsonl(tmp_path / "dolly.jsonl", [dolly, dolly]))
    with pytest.raises(ft.DatasetError) as told:
        _ = data.kind
    assert (told.value.file, told.value.line) == ("dolly.jsonl", 1)
    assert "cannot tell the example kind" in str(told.value) and "Dolly" in str(told.value)
    assert data.select_columns({"instruction": "instruction", "response": "output"}).kind == "chat"


def test_preference_rows_under_other_names_are_told_the_renames_that_read_them() -> None:
    """StackExchange-paired's rows (TRL's StackLLaMA data) were "unrecognized example shape"
    with five of their six keys and no cure; a pair's ``question`` was told to be removed."""
    paired = {
        "qid": 1,
        "question": "2 + 2?",
        "date": "2020",
        "metadata": ["x"],
        "response_j": "4.",
        "response_k": "5.",
    }
    (finding,) = validate(ft.Dataset.from_records([paired]), target="hf", model="m").errors
    assert finding.code == "unknown_format"
    assert "keys: date, metadata, qid, question, response_j, response_k)" in finding.message
    cure = "--columns question=prompt,response_j=chosen,response_k=rejected on the command line"
    assert finding.message.endswith(cure)
    renames = {"question": "prompt", "response_j": "chosen", "response_k": "rejected"}
    assert f"ds.select_columns({renames!r})" in finding.message
    renamed = ft.Dataset.from_records([paired]).select_columns(renames)
    assert validate(renamed, target="hf", model="m").ok and renamed.kind == "preference"

    asked = {"question": "2 + 2?", "chosen": "4.", "rejected": "5."}
    report = validate(ft.Dataset.from_records([asked]), target="hf", model="m")
    (told,) = [f for f in report.errors if f.field == "question"]
    kept = {"question": "prompt", "chosen": "chosen", "rejected": "rejected"}
    assert told.message == (
        "unknown key 'question' holds a value: a preference example's question is its 'prompt'; "
        f"rename it (ds.select_columns({kept!r}), or --columns question=prompt,chosen,rejected "
        "on the command line)"
    )
    assert validate(
        ft.Dataset.from_records([asked]).select_columns(kept), target="hf", model="m"
    ).ok


def test_trls_stepwise_supervision_is_named_as_what_it_is() -> None:
    """TRL's stepwise rows (prompt, completions, labels: a process reward model's data) were
    read as a broken completion pair, "did you mean 'completion'?" for ``completions``."""
    row = {"prompt": "9.8 or 9.11?", "completions": ["9.11.", "So 9.11."], "labels": [0, 0]}
    (finding,) = validate(ft.Dataset.from_records([row]), target="hf", model="m").errors
    assert finding.code == "unknown_format"
    assert "TRL's stepwise supervision: a process reward model's data" in finding.message
    with pytest.raises(ft.DatasetError, match="which finetune does not train; for SFT"):
        list(ft.Dataset.from_records([row]))


@pytest.mark.parametrize(
    ("row", "field", "message"),
    [
        # pydantic's "Input should be 'system', 'user', ..." and "Field required"
        (
            {
                "messages": [
                    {"role": ["user"], "content": "q"},
                    {"role": "assistant", "content": "a"},
                ]
            },
            "messages[0].role",
            "role must be 'system', 'user', 'assistant' or 'tool', not an array",
        ),
        (
            {"messages": [{"content": "q"}, {"role": "assistant", "content": "a"}]},
            "messages[0].role",
            "role is missing",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": "q"},
                    {"role": "assistant", "content": "a", "weight": 2},
                ]
            },
            "messages[1].weight",
            "weight must be 0 or 1, not 2",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": "q", "name": []},
                    {"role": "assistant", "content": "a"},
                ]
            },
            "messages[0].name",
            "name must be a string, not an array",
        ),
        # a ShareGPT turn's value holding parts was named by our key: conversations[0].content[0]
        (
            {"conversations": [{"from": "human", "value": [True]}, {"from": "gpt", "value": "a"}]},
            "conversations[0].value[0]",
            None,
        ),
        # an Alpaca history that is no list of pairs was named at a pair's turn it has not
        (
            {"instruction": "i", "output": "o", "history": [None]},
            "history[0]",
            None,
        ),
        # a Gemini part whose text is no text was named as two parts it does not have
        (
            {
                "contents": [
                    {"role": "user", "parts": [{"text": ["q", "r"]}]},
                    {"role": "model", "parts": [{"text": "a"}]},
                ]
            },
            "contents[0].parts[0]",
            None,
        ),
        # OpenAI's input as text: "'str' object has no attribute 'get'"
        (
            {"input": "q", "preferred_output": [{"role": "assistant", "content": "a"}]},
            "input.messages",
            "input must be an object holding the prompt's messages, "
            '{"messages": [...]}, not a string',
        ),
    ],
)
def test_reading_a_malformed_row_says_what_is_wrong_where_the_row_has_it(
    row: dict[str, Any], field: str, message: str | None
) -> None:
    """Reading a row (``ds[0]``, a ``for``) said pydantic's words, a Python exception's, or
    named a field the row does not have; validation names the same field."""
    if "preferred_output" in row:
        row = {**row, "non_preferred_output": row["preferred_output"]}
    if message is not None:  # the others, reading takes; validation refuses them
        with pytest.raises(ft.DatasetError) as caught:
            list(ft.Dataset.from_records([row]))
        assert (caught.value.field, str(caught.value)) == (field, f"records:1: {field}: {message}")
    report = validate(ft.Dataset.from_records([row]), target="hf", model="m")
    assert field in [f.field for f in report.errors + report.warnings]


def test_capybaras_exchanges_are_read_as_a_conversation() -> None:
    """LDJnr/Capybara's rows (a ``conversation`` of ``input`` and ``output`` exchanges) were
    refused as a JSON file's wrapper object, which they are not."""
    row = {
        "source": "Airoboros",
        "conversation": [
            {"input": "2+2?", "output": "4"},
            {"input": "And 3+3?", "output": "6"},
        ],
    }
    with pytest.raises(ft.DatasetError, match=r"--columns conversation on the command line"):
        list(ft.Dataset.from_records([row]))  # its source is an extra column, told as one
    example = ft.Dataset.from_records([row]).select_columns(["conversation"])[0]
    assert isinstance(example, ft.ChatExample)
    assert [(m.role, m.content) for m in example.messages] == [
        ("user", "2+2?"),
        ("assistant", "4"),
        ("user", "And 3+3?"),
        ("assistant", "6"),
    ]
    broken = {"conversation": [{"input": "2+2?", "output": ""}, {"input": 5, "output": "6"}]}
    with pytest.raises(ft.DatasetError) as caught:
        list(ft.Dataset.from_records([broken]))
    assert caught.value.field == "conversation[1].input"
    report = validate(ft.Dataset.from_records([broken]), target="hf", model="m")
    assert [f.field for f in report.errors] == ["conversation[1].input"]
    assert "conversation[0].output" in [f.field for f in report.warnings]


def test_a_pairs_system_prompt_beside_its_prompt_is_the_prompts_first_turn() -> None:
    """Intel/orca_dpo_pairs' rows (system, question, chosen, rejected), its question named
    prompt, could not be read: a ``system`` beside a pair's prompt was an unknown key, whose
    cure dropped it, and the row's ``question`` was not named in the "no prompt" refusal."""
    orca = {"system": "You are terse.", "question": "2 + 2?", "chosen": "4", "rejected": "5"}
    with pytest.raises(ft.DatasetError) as missing:
        ft.Dataset.from_records([orca])[0]
    cure = "--columns system,question=prompt,chosen,rejected on the command line"
    assert "no prompt: a preference example's question is its 'prompt'" in str(missing.value)
    assert str(missing.value).endswith(cure + ")")
    report = validate(ft.Dataset.from_records([orca]), target="hf", model="m")
    assert {f.field for f in report.errors} == {"prompt", "system", "question"}
    assert all(f.message.endswith(cure + ")") for f in report.errors)

    renames = {"system": "system", "question": "prompt", "chosen": "chosen", "rejected": "rejected"}
    pair = ft.Dataset.from_records([orca]).select_columns(renames)[0]
    assert isinstance(pair, ft.PreferenceExample)
    assert [(m.role, m.content) for m in pair.input] == [
        ("system", "You are terse."),
        ("user", "2 + 2?"),
    ]
    blank = ft.Dataset.from_records([{**orca, "system": ""}]).select_columns(renames)
    assert [m.role for m in blank[0].input] == ["user"]  # orca's many empty ones make none
    turns = {"system": "S", "prompt": [{"role": "user", "content": "q"}], "chosen": "a"}
    listed = ft.Dataset.from_records([{**turns, "rejected": "b"}])[0]
    assert [m.role for m in listed.input] == ["system", "user"]

    own = [{"role": "system", "content": "own"}, {"role": "user", "content": "q"}]
    with pytest.raises(ft.DatasetError, match="unless the prompt begins with a system turn"):
        ft.Dataset.from_records([{**turns, "prompt": own, "rejected": "b"}])[0]
    # a problem is named by the row's own field
    for row, field in (
        ({**orca, "system": 7, "prompt": "q"}, "system"),
        (
            {**turns, "prompt": [{"role": "user", "content": 7}], "rejected": "b"},
            "prompt[0].content",
        ),
    ):
        with pytest.raises(ft.DatasetError) as caught:
            ft.Dataset.from_records([row]).select_columns(list(row))[0]
        assert caught.value.field == field


def test_a_pairs_part_that_is_neither_text_nor_messages_is_told_as_validation_tells_it() -> None:
    """Reading a pair whose prompt or answer was a number or null said pydantic's "Input
    should be a valid list", where validation said what the row held and how to mend it."""
    told = {
        "prompt": "prompt must be a non-empty list of messages or a string, not a number: "
        'write it as text, "5"',
        "rejected": "rejected must be a non-empty list of messages or a string, not null",
    }
    for field, message in told.items():
        row = {
            "prompt": "q",
            "chosen": "a",
            "rejected": "b",
            field: 5 if field == "prompt" else None,
        }
        with pytest.raises(ft.DatasetError) as caught:
            ft.Dataset.from_records([row])[0]
        assert (caught.value.field, str(caught.value).split(": ", 2)[-1]) == (field, message)
        (finding,) = validate(ft.Dataset.from_records([row]), target="hf", model="m").errors
        assert finding.message == message
    answer = [{"role": "assistant", "content": "a"}]
    openai = {"input": {"messages": 5}, "preferred_output": answer, "non_preferred_output": answer}
    with pytest.raises(ft.DatasetError) as caught:
        ft.Dataset.from_records([openai])[0]
    assert str(caught.value).endswith(
        "input.messages must be a non-empty list of messages, not a number"
    )


def _legacy_function_row(**changes: Any) -> dict[str, Any]:
    """OpenAI's fine-tuning row for function calling before tools (2023)."""
    call = {"name": changes.get("called", "get_weather"), "arguments": '{"city": "Paris"}'}
    call["arguments"] = changes.get("arguments", call["arguments"])
    function = {"name": "get_weather", "parameters": {"type": "object", "properties": {}}}
    return {
        "messages": [
            _turn("user", "Weather in Paris?"),
            {"role": "assistant", "content": None, "function_call": call},
            {"role": "function", "name": "get_weather", "content": "sunny"},
            _turn("assistant", "Sunny."),
        ],
        "functions": [changes.get("function", function)],
    }


def test_openai_legacy_function_calling_rows_are_read_as_tools() -> None:
    """Was four errors a row (unknown keys functions and function_call, role 'function', an
    assistant turn without content), each advising to remove or rename what holds the call."""
    tools_shape = {
        "messages": [
            _turn("user", "Weather in Paris?"),
            {
                "role": "assistant",
                "tool_calls": [
                    {
                        "id": "call00001",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call00001", "content": "sunny"},
            _turn("assistant", "Sunny."),
        ],
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "parameters": {"type": "object", "properties": {}},
                },
            }
        ],
    }
    legacy = ft.Dataset.from_records([_legacy_function_row()])
    assert list(legacy) == list(ft.Dataset.from_records([tools_shape]))
    assert legacy.fingerprint() == ft.Dataset.from_records([tools_shape]).fingerprint()
    for target in ("hf", "mistral"):  # Mistral takes call ids of nine letters and digits only
        report = validate(legacy, target=target, model="open-mistral-nemo")
        assert not report.errors, report


def test_a_legacy_function_rows_findings_name_its_own_fields() -> None:
    rows = [
        _legacy_function_row(arguments="not json"),
        _legacy_function_row(function={"name": "get_weather", "parameters": "x"}),
        _legacy_function_row(called="get_wether"),  # its result still answers it: by order
    ]
    report = validate(ft.Dataset.from_records(rows), target="hf", model="m")
    found = {(f.line, f.code, f.field) for f in [*report.errors, *report.warnings]}
    assert (1, "tool_arguments_not_json", "messages[1].function_call.arguments") in found
    assert (2, "invalid_tools", "functions[0].parameters") in found
    assert (3, "undefined_tool", "messages[1].function_call.name") in found
    assert not {code for line, code, _ in found if line == 3} & {
        "tool_call_without_result",
        "tool_result_without_call",
    }
    unlisted = {key: value for key, value in _legacy_function_row().items() if key != "functions"}
    report = validate(ft.Dataset.from_records([unlisted]), target="hf", model="m")
    told = {f.field: f.message for f in report.errors}
    for field in ("messages[1].function_call", "messages[2].role"):
        assert "a row that lists its 'functions'" in told[field], told  # was: rename it


def test_anthropic_and_gemini_rows_are_read_as_ours() -> None:
    """Bedrock's Claude fine-tuning rows (``system`` beside the messages) and Vertex AI's
    Gemini tuning rows (``contents`` of ``parts``): was an unknown key 'system' (whose cure,
    "remove it", lost the system prompt) and "unrecognized example shape (keys: contents)"."""
    system = "Be brief."
    ours = [
        {"messages": [_turn("system", system), _turn("user", f"q{i}"), _turn("assistant", f"a{i}")]}
        for i in range(3)
    ]
    anthropic = [{"system": system, "messages": row["messages"][1:]} for row in ours]
    gemini = [
        {
            "systemInstruction": {"parts": [{"text": system}]},
            "contents": [
                {"role": "user", "parts": [{"text": f"q{i}"}]},
                {"role": "model", "parts": [{"text": f"a{i}"}]},
            ],
        }
        for i in range(3)
    ]
    expected = ft.Dataset.from_records(ours)
    for rows in (anthropic, gemini):
        read = ft.Dataset.from_records(rows)
        assert read.kind == "chat"
        assert list(read) == list(expected)
        assert read.fingerprint() == expected.fingerprint()
        assert not validate(read, target="hf", model="m").errors
    two_parts = [
        {"role": "user", "parts": [{"text": "a"}, {"text": "b"}]},
        gemini[0]["contents"][1],
    ]
    (example,) = ft.Dataset.from_records([{"contents": two_parts}])
    assert isinstance(example, ft.ChatExample)
    assert example.messages[0].text == "ab"  # text parts, as a list of them


def test_anthropic_and_gemini_rows_findings_name_their_own_fields() -> None:
    gemini = {
        "contents": [
            {"role": "user", "parts": [{"text": "q"}, {"text": " more"}]},
            {"role": "bot", "parts": [{"text": "a"}]},
            {"role": "model", "parts": [{"text": ""}]},
        ]
    }
    anthropic = {"system": "s", "messages": [_turn("user", "q"), _turn("bot", "a")]}
    twice = {"system": "s", "messages": [_turn("system", "t"), *anthropic["messages"]]}
    report = validate(ft.Dataset.from_records([gemini, anthropic, twice]), target="hf", model="m")
    found = {(f.line, f.code, f.field) for f in [*report.errors, *report.warnings]}
    assert (1, "unknown_role", "contents[1].role") in found
    assert (1, "empty_content", "contents[2].parts") in found
    assert (2, "unknown_role", "messages[1].role") in found
    (kept_apart,) = [f for f in report.errors if f.line == 3 and f.field == "system"]
    assert "begin with a system turn of their own" in kept_apart.message
    called = {"role": "model", "parts": [{"functionCall": {"name": "w", "args": {}}}]}
    report = validate(ft.Dataset.from_records([{"contents": [called]}]), target="hf", model="m")
    told = {f.field: f.message for f in report.errors}
    assert told["contents[0].parts[0]"].startswith("Gemini's functionCall part is not read")


def _reasoned(**answer: Any) -> dict[str, Any]:
    return {"messages": [_turn("user", "2 + 2?"), {"role": "assistant", "content": "4", **answer}]}


@needs_tiktoken
def test_an_answers_reasoning_is_read_written_and_refused_where_it_is_not_trained(
    tmp_path: Path,
) -> None:
    """Together's ``reasoning`` (or ``reasoning_content``) beside an assistant turn's
    content: was 'unknown key ... remove it', which trains a reasoning model to stop."""
    read = ft.Dataset.from_records([_reasoned(reasoning="Two and two make four.")])
    (example,) = read
    assert example.messages[1].reasoning_content == "Two and two make four."  # type: ignore[union-attr]
    same = ft.Dataset.from_records([_reasoned(reasoning_content="Two and two make four.")])
    assert read.fingerprint() == same.fingerprint()
    for fmt in ("openai", "hf", "native"):
        written = read.to_jsonl(tmp_path / f"{fmt}.jsonl", format=fmt)
        assert '"reasoning_content":"Two and two make four."' in written.read_text()
        assert list(ft.Dataset.from_jsonl(written)) == list(read)
    with pytest.raises(ft.UnsupportedFeature, match="reasoning_content"):
        read.to_jsonl(tmp_path / "m.jsonl", format="mistral")
    both = {"reasoning_content": None, "reasoning": "Two and two make four."}  # a table's
    assert list(ft.Dataset.from_records([_reasoned(**both)])) == list(read)  # was: refused
    assert validate(ft.Dataset.from_records([_reasoned(**both)]), target="hf", model="m").ok
    for target in ("together", "fireworks", "hf"):
        assert not validate(read, target=target, model="m").counts.get("unsupported_reasoning")
    assert "[reasoning: Two and two make four.] 4" in read._repr_html_()  # the preview shows it
    refused = validate(read, target="openai", model="gpt-4.1-mini-2025-04-14")
    (found,) = refused.kept["unsupported_reasoning"]
    assert found.field == "messages[1].reasoning" and "unlearns to reason" in found.message


@pytest.mark.parametrize(
    ("row", "field", "says"),
    [
        (_reasoned(reasoning="a", reasoning_content="b"), "messages[1].reasoning", "keep one"),
        (_reasoned(reasoning=["a"]), "messages[1].reasoning", "as text, not an array"),
        (
            {"messages": [{**_turn("user", "q"), "reasoning": "r"}, _turn("assistant", "a")]},
            "messages[0].reasoning",
            "not a user message's",
        ),
    ],
)
def test_reasoning_that_is_not_one_answers_text_is_refused(
    row: dict[str, Any], field: str, says: str
) -> None:
    report = validate(ft.Dataset.from_records([row]), target="hf", model="m")
    found = {f.field: f.message for f in report.kept.get("invalid_reasoning", [])}
    assert says in found[field], found


@needs_tiktoken
def test_trl_conversational_prompt_completion_is_read_as_chat() -> None:
    """TRL trains on the completion: a prompt's assistant turn is context (weight 0)."""
    prompt = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello."},
    ]
    rows = [
        {
            "prompt": [*prompt, {"role": "user", "content": f"What is {i} + 1?"}],
            "completion": [{"role": "assistant", "content": str(i + 1)}],
        }
        for i in range(12)
    ]
    data = ft.Dataset.from_records(rows)
    assert data.kind == "chat"
    first = next(iter(data))
    assert isinstance(first, ft.ChatExample)
    assert [(m.role, m.weight) for m in first.messages] == [
        ("system", None),
        ("user", None),
        ("assistant", 0),
        ("user", None),
        ("assistant", None),
    ]
    model = "gpt-4.1-mini-2025-04-14"
    assert validate(data, target="openai", model=model).ok
    counted = ft.Tuner("openai", model=model).estimate(ft.Dataset.from_records(rows))
    assert counted.exact and counted.tokens_p50 > 20
    broken = [*rows[:11], {**rows[11], "completion": [{"role": "assistant", "content": 3}]}]
    report = validate(ft.Dataset.from_records(broken), target="openai", model=model)
    assert [(f.line, f.field) for f in report.errors] == [(12, "completion[0].content")]
    with pytest.raises(ft.DatasetError) as refused:
        list(ft.Dataset.from_records(broken))
    assert (refused.value.line, refused.value.field) == (12, "completion[0].content")


GPT_41_MINI = "gpt-4.1-mini-2025-04-14"


def test_sharegpt_rows_are_read_as_chat_and_named_as_written(tmp_path: Path) -> None:
    """FastChat's, Axolotl's and LLaMA-Factory's ShareGPT rows were refused with a recipe to
    rewrite them by hand; they are read, and an error names the row's own field."""
    rows = [
        {
            "id": f"c{i}",
            "system": "Be brief.",
            "conversations": [
                {"from": "human", "value": f"What is {i} + 1?"},
                {"from": "gpt", "value": str(i + 1)},
                {"from": "user", "value": "Thanks"},
                {"from": "assistant", "value": "You are welcome.", "weight": 0},
            ],
        }
        for i in range(12)
    ]
    source = tmp_path / "sharegpt.jsonl"
    source.write_text("".join(json.dumps(row) + "\n" for row in rows))
    data = ft.Dataset.from_jsonl(source)
    first = next(iter(data))
    assert data.kind == "chat" and isinstance(first, ft.ChatExample)
    assert [(m.role, m.content, m.weight) for m in first.messages] == [
        ("system", "Be brief.", None),
        ("user", "What is 0 + 1?", None),
        ("assistant", "1", None),
        ("user", "Thanks", None),
        ("assistant", "You are welcome.", 0),
    ]
    assert validate(data, target="openai", model=GPT_41_MINI).ok
    written = json.loads(data.to_jsonl(tmp_path / "chat.jsonl").read_text().splitlines()[0])
    assert written["messages"][1] == {"role": "user", "content": "What is 0 + 1?"}
    broken = [
        *rows[:10],
        {"conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": 3}]},
        {"conversations": [{"from": "human", "value": "q"}, {"from": "observation", "value": "x"}]},
    ]
    report = validate(ft.Dataset.from_records(broken), target="openai", model=GPT_41_MINI)
    assert [(f.line, f.field) for f in report.errors] == [
        (11, "conversations[1].value"),
        (12, "conversations"),  # no assistant turn
        (12, "conversations[1]"),  # a tool's result that answers no call
    ]
    with pytest.raises(ft.DatasetError) as refused:
        list(ft.Dataset.from_records(broken))
    assert (refused.value.line, refused.value.field) == (11, "conversations[1].value")
    system = [{**rows[0], "system": 5}]
    with pytest.raises(ft.DatasetError, match=r"^records:1: system: "):
        list(ft.Dataset.from_records(system))


def test_llama_factory_tool_turns_are_read_as_tool_calls_and_results() -> None:
    """LLaMA-Factory's ShareGPT tool rows (``function_call`` and ``observation`` turns, ``tools``
    as a JSON string) were refused as unknown speakers."""
    schema = {"name": "get_weather", "parameters": {"type": "object"}}
    calls = [{"name": "get_weather", "arguments": {"city": c}} for c in ("Rome", "Paris")]
    row = {
        "conversations": [
            {"from": "human", "value": "Weather in Rome and Paris?"},
            {"from": "function_call", "value": json.dumps(calls)},
            {"from": "observation", "value": "18 C"},
            {"from": "observation", "value": "12 C"},
            {"from": "gpt", "value": "Rome 18 C, Paris 12 C."},
        ],
        "tools": json.dumps([schema]),
    }
    data = ft.Dataset.from_records([row] * 10)
    example = next(iter(data))
    assert isinstance(example, ft.ChatExample)
    assert example.tools is not None and example.tools[0].function == schema
    _, called, rome, paris, answer = example.messages
    assert called.tool_calls is not None
    assert [(c.function.name, json.loads(c.function.arguments)) for c in called.tool_calls] == [
        ("get_weather", {"city": "Rome"}),
        ("get_weather", {"city": "Paris"}),
    ]
    assert [rome.tool_call_id, paris.tool_call_id] == [c.id for c in called.tool_calls]
    assert (rome.role, rome.content, answer.role) == ("tool", "18 C", "assistant")
    report = validate(data, target="openai", model=GPT_41_MINI)
    assert not report.errors
    one_call = {**row, "conversations": row["conversations"][:2]}
    one_call["conversations"][1] = {"from": "function_call", "value": json.dumps(calls[0])}
    one_call["conversations"] += [row["conversations"][2], row["conversations"][4]]
    single = validate(ft.Dataset.from_records([one_call] * 10), target="openai", model=GPT_41_MINI)
    assert not single.errors  # one call, not in a list, and its one result
    unanswered = {**row, "conversations": [*row["conversations"][:3], row["conversations"][4]]}
    garbled = {
        **row,
        "conversations": [
            row["conversations"][0],
            {"from": "function_call", "value": "get_weather(Rome)"},
        ],
    }
    broken = validate(
        ft.Dataset.from_records([unanswered, garbled] * 5), target="openai", model=GPT_41_MINI
    )
    assert [(f.line, f.code, f.field) for f in broken.errors][:2] == [
        (1, "tool_call_without_result", "conversations[1].value"),  # Paris's has no result
        (2, "invalid_tool_call", "conversations[1].value"),  # no call's JSON
    ]


def test_an_alpaca_rows_text_that_writes_the_row_out_is_left_out() -> None:
    """tatsu-lab/alpaca's rows (and sets made from it) hold ``text``, the row written in the
    Alpaca prompt, beside its instruction, input and output: it was refused as an unexpected
    field, row after row, on the best-known instruction set."""
    template = (
        "Below is an instruction that describes a task, paired with an input that provides "
        "further context. Write a response that appropriately completes the request.\n\n"
        "### Instruction:\n{}\n\n### Input:\n{}\n\n### Response:\n{}"
    )
    rows = [
        {"instruction": f"Add {i} and 1.", "input": "Digits.", "output": str(i + 1)}
        for i in range(12)
    ]
    written = [{**row, "text": template.format(*row.values())} for row in rows]
    assert list(ft.Dataset.from_records(written)) == list(ft.Dataset.from_records(rows))
    other = [*written[:11], {**rows[11], "text": "Notes of our own."}]
    report = validate(ft.Dataset.from_records(other), target="openai", model=GPT_41_MINI)
    assert [(f.code, f.line, f.field) for f in report.errors] == [("unexpected_field", 12, "text")]


def test_alpaca_rows_are_read_as_chat_and_named_as_written() -> None:
    """The instruction, its input after a blank line, the output; ``system`` and
    LLaMA-Factory's ``history`` pairs before them."""
    rows = [
        {
            "instruction": f"Add {i} and 1.",
            "input": "" if i % 2 else "Show the sum only.",
            "output": str(i + 1),
            **({"system": "Be brief.", "history": [["Hi", "Hello."]]} if i == 0 else {}),
        }
        for i in range(12)
    ]
    data = ft.Dataset.from_records(rows)
    first, second = list(data)[:2]
    assert data.kind == "chat" and isinstance(first, ft.ChatExample)
    assert [(m.role, m.content) for m in first.messages] == [
        ("system", "Be brief."),
        ("user", "Hi"),
        ("assistant", "Hello."),
        ("user", "Add 0 and 1.\n\nShow the sum only."),
        ("assistant", "1"),
    ]
    assert isinstance(second, ft.ChatExample)
    assert [(m.role, m.content) for m in second.messages] == [
        ("user", "Add 1 and 1."),
        ("assistant", "2"),
    ]
    assert validate(data, target="openai", model=GPT_41_MINI).ok
    broken = [
        *rows[:9],
        {"instruction": "x", "input": "", "output": ""},
        {**rows[0], "history": [["Hi", 3]]},
        {"instruction": 4, "output": "4"},
    ]
    report = validate(ft.Dataset.from_records(broken), target="openai", model=GPT_41_MINI)
    assert [(f.line, f.field) for f in report.errors] == [
        (11, "history[0][1]"),
        (12, "instruction"),
    ]
    assert [(f.line, f.field, f.code) for f in report.warnings] == [(10, "output", "empty_content")]


def test_completion_kind_and_mistral_conversion(tmp_path: Path) -> None:
    data = ft.Dataset.from_records([{"prompt": "a", "completion": "b"}])
    assert data.kind == "completion"
    out = data.to_jsonl(tmp_path / "m.jsonl", format="mistral")
    assert json.loads(out.read_text())["messages"][1] == {"role": "assistant", "content": "b"}


def test_from_pandas() -> None:
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame([{"prompt": "a", "completion": "b"}, {"prompt": "c", "completion": "d"}])
    data = ft.Dataset.from_pandas(frame)
    assert [e.prompt for e in data] == ["a", "c"]  # type: ignore[union-attr]


def test_a_column_of_numbers_where_text_goes_is_told_how_to_cast_it(tmp_path: Path) -> None:
    pd = pytest.importorskip("pandas")
    (tmp_path / "sums.csv").write_text("user,assistant\n1+1,2\n2+2,4\n")
    frame = pd.read_csv(tmp_path / "sums.csv")  # pandas reads the answers as int64
    cast = "frame.astype({'assistant': str}) before from_pandas"
    with pytest.raises(
        ft.DatasetError, match=re.escape('number (2), not text: write it as text, "2"; a column')
    ) as caught:
        ft.Dataset.from_pandas(frame)[0]
    assert cast in str(caught.value) and caught.value.field == "assistant"
    report = validate(ft.Dataset.from_pandas(frame), target="hf", model="m")
    assert {(f.line, f.field, f.code) for f in report.errors} == {
        (1, "assistant", "invalid_content"),
        (2, "assistant", "invalid_content"),
    }
    assert cast in report.errors[0].message and '"2"' in report.errors[0].message
    assert ft.Dataset.from_pandas(frame.astype({"assistant": str}))[0].messages[1].content == "2"  # type: ignore[union-attr]
    pairs = validate(
        ft.Dataset.from_records([{"prompt": "a", "completion": 4.5}]), target="hf", model="m"
    )
    assert (
        pairs.errors[0].message
        == 'completion must be a string, not a number: write it as text, "4.5"'
    )
    nested = ft.Dataset.from_pandas(
        pd.DataFrame(
            {"messages": [[{"role": "user", "content": "a"}, {"role": "assistant", "content": 7}]]}
        )
    )
    with pytest.raises(
        ft.DatasetError,
        match=r'messages\[1\]\.content: a number \(7\), not text: write it as text, "7"$',
    ):
        nested[0]  # a cell of a list of messages: no column to cast


def test_to_pandas_gives_a_frame_that_reads_back_as_the_same_examples(tmp_path: Path) -> None:
    pytest.importorskip("pandas")
    from .conftest import weather_data

    tools = weather_data(2)[:1]
    rows = [chat(0), *(record.data for record in tools.records()), chat(1)]
    mixed = write_jsonl(tmp_path / "mixed.jsonl", rows)
    asked = [{"role": "user", "content": "q"}]
    pairs = [{"input": asked, "chosen": f"y{i}", "rejected": "n"} for i in range(2)]
    for data in (
        ft.Dataset.from_jsonl(mixed),  # a row with tools among rows without: NaN, then absent
        ft.Dataset.from_records([{"prompt": "a", "completion": "b"}]),
        ft.Dataset.from_records(pairs),
    ):
        frame = data.to_pandas()
        assert len(frame) == len(data) and set(frame["kind"]) == {data.kind}
        assert ft.Dataset.from_pandas(frame).fingerprint() == data.fingerprint()
    frame = ft.Dataset.from_jsonl(mixed).to_pandas()
    assert list(frame.columns) == ["kind", "messages", "tools"]
    assert frame["tools"].isna().tolist() == [True, False, True]
    assert list(ft.Dataset.from_jsonl(mixed)[:2].to_pandas(format="openai").columns) == [
        "messages",
        "tools",
    ]
    assert ft.Dataset.from_records([]).to_pandas().empty


def test_a_frame_read_from_parquet_holds_numpy_arrays_and_reads_as_lists() -> None:
    """pd.read_parquet gives a list column as numpy arrays (of dicts), numbers as numpy's."""
    pd = pytest.importorskip("pandas")
    np = pytest.importorskip("numpy")
    row = chat(3)
    messages = np.array([dict(m) for m in row["messages"]], dtype=object)
    messages[-1]["weight"] = np.int64(1)
    frame = pd.DataFrame({"messages": [messages]})
    (example,) = ft.Dataset.from_pandas(frame)
    assert [m.content for m in example.messages] == [m["content"] for m in row["messages"]]  # type: ignore[union-attr]
    assert example.messages[-1].weight == 1  # type: ignore[union-attr]
    report = validate(ft.Dataset.from_pandas(frame), target="hf", model="m")
    assert "invalid_json" not in report.counts  # was: ndarray is not JSON serializable
    datasets = pytest.importorskip("datasets")
    as_numpy = datasets.Dataset.from_list([chat(1), chat(2)]).with_format("numpy")
    report = validate(ft.Dataset.from_hf(as_numpy), target="hf", model="m")
    assert report.ok and report.examples == 2
    # each row of a pandas-formatted set is a frame: it said "Series is not JSON serializable"
    tagged = datasets.Dataset.from_list([{**chat(1), "n": 1}, {**chat(2), "n": 2}])
    for shown in ("pandas", "arrow", "numpy"):
        data = ft.Dataset.from_hf(tagged.select_columns(["messages"]).with_format(shown))
        assert [e.messages[0].content for e in data] == [
            chat(1)["messages"][0]["content"],
            chat(2)["messages"][0]["content"],
        ]  # type: ignore[union-attr]
    only_messages = tagged.with_format("pandas", columns=["messages"])  # its columns kept
    assert validate(ft.Dataset.from_hf(only_messages), target="hf", model="m").ok
    streamed = tagged.select_columns(["messages"]).to_iterable_dataset().with_format("numpy")
    assert validate(ft.Dataset.from_hf(streamed), target="hf", model="m").ok  # arrays: read


def test_the_empty_cells_of_a_frame_are_absent_keys() -> None:
    pd = pytest.importorskip("pandas")
    tools = [{"type": "function", "function": {"name": "track", "parameters": {}}}]
    with_tools = pd.DataFrame([{**chat(0), "tools": tools, "source": "crm"}])
    frame = pd.concat([with_tools, pd.DataFrame([chat(1), chat(2)])], ignore_index=True)
    assert frame["tools"].isna().tolist() == [False, True, True]  # NaN where chat(1) had none
    frame["reviewed"] = pd.array([pd.NA, pd.NA, pd.NA], dtype="boolean")
    frame["source"] = [float("nan"), None, float("nan")]
    examples = list(ft.Dataset.from_pandas(frame))
    assert [bool(e.tools) for e in examples] == [True, False, False]  # type: ignore[union-attr]


def test_tool_calls_of_a_hugging_face_dataset_keep_only_their_own_keys() -> None:
    """Arrow gives each row's object arguments, and each tool's definition, the keys of every
    other row's, as null: ``weather`` was trained to send ``{"city": "Paris", "q": null}``,
    and its tool's parameters held a ``"q": null`` property, which no JSON schema allows."""
    datasets = pytest.importorskip("datasets")

    def row(name: str, arguments: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
        call = {"id": "c1", "type": "function", "function": {"name": name, "arguments": arguments}}
        parameters = {"type": "object", "properties": schema}
        tool = {"type": "function", "function": {"name": name, "parameters": parameters}}
        return {
            "messages": [
                {"role": "user", "content": name},
                {"role": "assistant", "tool_calls": [call]},
                {"role": "tool", "tool_call_id": "c1", "content": "done"},
                {"role": "assistant", "content": "Done."},
            ],
            "tools": [tool],
        }

    city = {"type": "string", "default": None}  # a schema's null default is kept
    rows = [
        row("weather", {"city": "Paris", "when": {"day": 1}}, {"city": city}),
        row("search", {"q": "x"}, {"q": {"type": "string", "description": "what"}}),
    ]
    table = datasets.Dataset.from_list(rows)
    arrow = table[0]["messages"][1]["tool_calls"][0]["function"]["arguments"]
    assert arrow == {"city": "Paris", "when": {"day": 1}, "q": None}  # what Arrow hands over
    assert table[0]["tools"][0]["function"]["parameters"]["properties"]["q"] is None
    frame = table.to_pandas()  # a DataFrame of Arrow's rows, as read_parquet gives one
    for read in (list(ft.Dataset.from_hf(table)), list(ft.Dataset.from_pandas(frame))):
        arguments = [e.messages[1].tool_calls[0].function.arguments for e in read]  # type: ignore[union-attr, index]
        assert arguments == ['{"city": "Paris", "when": {"day": 1}}', '{"q": "x"}']
        properties = [e.tools[0].function["parameters"]["properties"] for e in read]  # type: ignore[union-attr, index]
        assert properties == [{"city": city}, {"q": {"type": "string", "description": "what"}}]
    written = {**rows[1], "tools": [{"type": "function", "function": {"name": "search"}}]}
    written["messages"][1]["tool_calls"][0]["function"]["arguments"] = {"q": None}
    (own,) = ft.Dataset.from_records([written])  # a row written so: its null is its own
    assert own.messages[1].tool_calls[0].function.arguments == '{"q": null}'  # type: ignore[union-attr, index]


def test_from_hf_dataset() -> None:
    datasets = pytest.importorskip("datasets")
    hf = datasets.Dataset.from_list([chat(1), chat(2)])
    assert len(list(ft.Dataset.from_hf(hf))) == 2
    splits = datasets.DatasetDict({"train": hf, "test": hf})  # what load_dataset(name) gives
    says = r"not a DatasetDict of splits \(train, test\): Dataset.from_hf\(dataset\['train'\]\)"
    with pytest.raises(TypeError, match=says):
        ft.Dataset.from_hf(splits)
    with pytest.raises(TypeError, match=r"IterableDatasetDict of splits|DatasetDict of splits"):
        ft.Dataset.from_hf(datasets.IterableDatasetDict({"train": hf.to_iterable_dataset()}))


def test_a_table_with_tools_on_some_rows_reads_the_others_as_having_none(tmp_path: Path) -> None:
    """Arrow gives a row without a column null: ``load_dataset("json")`` of a file where only
    some rows have tools gives the others ``"tools": None`` (pandas, NaN). No tools, as a row
    without the key: was ``invalid_tools`` ('tools' must be a list ..., not null)."""
    datasets = pytest.importorskip("datasets")
    tools = [{"type": "function", "function": {"name": "search", "parameters": {}}}]
    rows = [chat(i) for i in range(12)]
    rows[1] = {**rows[1], "tools": tools}
    path = write_jsonl(tmp_path / "mixed.jsonl", rows)
    table = datasets.load_dataset("json", data_files=str(path), split="train")
    assert table[0]["tools"] is None  # what Arrow gives; the test is void if not
    read = ft.Dataset.from_hf(table)
    report = ft.Tuner("fake", model="base").validate(read)
    assert report.ok, report
    assert [e.tools is None for e in read] == [i != 1 for i in range(12)]
    with_null = ft.Dataset.from_records([{**row, "tools": None} for row in rows[2:]])
    assert with_null.fingerprint() == ft.Dataset.from_records(rows[2:]).fingerprint()
    assert "invalid_tools" not in ft.Tuner("fake", model="base").validate(with_null).counts


def test_a_line_limit_that_refuses_every_line_is_refused_itself(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "t.jsonl", [chat(1)])
    with pytest.raises(ValueError, match="max_line_bytes is 1 or more, not 0"):
        ft.Dataset.from_jsonl(path, max_line_bytes=0)  # was: every line "longer than 0 bytes"
    with pytest.raises(TypeError, match="max_line_bytes is a whole number of bytes, not '1MB'"):
        ft.Dataset.from_jsonl(path, max_line_bytes="1MB")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("given", "says"),
    [
        # was: 'builtin_function_or_method' object has no attribute 'get' (str.format)
        ("HuggingFaceH4/ultrachat_200k", r"not the name 'HuggingFaceH4/ultrachat_200k': load one"),
        (
            {"prompt": ["q"], "completion": ["a"]},
            r"not dict: a dict of columns is Dataset.from_pan",
        ),
        (None, r"from_hf takes a datasets.Dataset, not NoneType$"),
    ],
)
def test_from_hf_given_a_name_or_columns_says_what_it_takes(given: Any, says: str) -> None:
    """A hub name read as characters, a dict of columns called a DatasetDict of splits."""
    with pytest.raises(TypeError, match=says):
        ft.Dataset.from_hf(given)


def test_from_hf_given_a_saved_folder_says_to_load_it_from_disk(tmp_path: Path) -> None:
    """A folder ``save_to_disk`` wrote was told ``datasets.load_dataset(folder, ...)``, which
    does not read such a folder."""
    datasets = pytest.importorskip("datasets")
    split = datasets.Dataset.from_list([chat(1)])
    split.save_to_disk(str(tmp_path / "one"))
    datasets.DatasetDict({"validation": split, "train": split}).save_to_disk(str(tmp_path / "two"))
    one, two = tmp_path / "one", tmp_path / "two"
    with pytest.raises(
        TypeError, match=re.escape(f"load it first, datasets.load_from_disk('{one}')")
    ):
        ft.Dataset.from_hf(one)
    told = f"load one split of it first, datasets.load_from_disk('{two}')['validation']"
    with pytest.raises(TypeError, match=re.escape(told)):
        ft.Dataset.from_hf(str(two))
    assert len(ft.Dataset.from_hf(datasets.load_from_disk(str(two))["validation"])) == 1


@pytest.mark.parametrize(
    "one", [chat(1), "q and a", ft.CompletionExample(prompt="q", completion="a")]
)
def test_from_records_given_one_record_says_to_give_a_list(one: Any) -> None:
    """A dict was read as its keys: 'records:1: record is a str, not a mapping'."""
    says = f"not {type(one).__name__}: Dataset.from_records\\(\\[record\\]\\) for one"
    with pytest.raises(TypeError, match=says):
        ft.Dataset.from_records(one)
    with pytest.raises(TypeError, match=r"takes a list of records .*, not int$"):
        ft.Dataset.from_records(5)  # type: ignore[arg-type]


def test_from_records_reads_a_dataframe_and_names_what_else_it_was_given(
    tmp_path: Path,
) -> None:
    """A pandas DataFrame was read as its column names ("records:1: record is a str, not a
    mapping"): its rows are read as from_pandas reads them. A file's path, a dict of columns
    and another table are told what to give instead."""
    pandas = pytest.importorskip("pandas")
    rows = [chat(1), chat(2)]
    frame = ft.Dataset.from_records(pandas.DataFrame(rows))
    assert list(frame) == list(ft.Dataset.from_records(rows))
    assert frame.name == "dataframe"
    told = {
        "train.jsonl": r"not str \(a file's path\): ft.Dataset.from_jsonl\('train.jsonl'\)",
        tmp_path / "rows.csv": r"Path \(a file's path\): ft.Dataset.from_csv\(",
        "q and a": r"not str: Dataset.from_records\(\[record\]\) for one",
    }
    for given, says in told.items():
        with pytest.raises(TypeError, match=says):
            ft.Dataset.from_records(given)  # type: ignore[arg-type]
    columns = {"prompt": ["q1", "q2"], "completion": ["a1", "a2"]}
    with pytest.raises(TypeError, match=r"not dict of columns: its rows, \[dict\(zip\("):
        ft.Dataset.from_records(columns)
    pyarrow = pytest.importorskip("pyarrow")
    with pytest.raises(TypeError, match=r"pyarrow: table.to_pylist\(\)"):
        ft.Dataset.from_records(pyarrow.Table.from_pylist(rows))
    datasets = pytest.importorskip("datasets")  # load_dataset's answer: splits, not rows
    splits = datasets.DatasetDict({"train": datasets.Dataset.from_list(rows)})
    with pytest.raises(TypeError, match=r"not DatasetDict of splits \(train\): Dataset.from_hf"):
        ft.Dataset.from_records(splits)


def test_the_constructor_given_rows_or_a_path_names_the_ways_to_make_a_dataset() -> None:
    # a newcomer's first guess: it used to be accepted and fail at len() with an AttributeError
    says = r"Dataset.from_jsonl\(path\), from_json\(path\), from_csv\(path\), "
    says += r".* not Dataset\({}\)"
    for wrong in ([chat(1), chat(2)], "train.jsonl", chat(1)):
        with pytest.raises(TypeError, match=says.format(type(wrong).__name__)):
            ft.Dataset(wrong)  # type: ignore[arg-type]


def test_reader_reports_every_kind_of_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "messy.jsonl"
    good = json.dumps({"prompt": "p", "completion": "c"}).encode()
    path.write_bytes(
        b"\xef\xbb\xbf"
        + good
        + b"\r\n"  # BOM + CRLF: fine
        + b"\n"  # blank
        + b"[1, 2]\n"  # not an object
        + b'{"messages": "\xff\xfe"}\n'  # invalid UTF-8
        + b"x" * 200
        + b"\n"  # too long
        + b"{oops}\n"  # invalid JSON
        + good[:20]  # truncated last line
    )
    items = list(iter_jsonl(path, max_line_bytes=120))
    codes = [(i.line, i.code if isinstance(i, ReadProblem) else "ok") for i in items]
    assert codes == [
        (1, "ok"),
        (2, "blank_line"),
        (3, "not_an_object"),
        (4, "invalid_utf8"),
        (5, "line_too_long"),
        (6, "invalid_json"),
        (7, "truncated_line"),
    ]
    offsets = [i.offset for i in items]
    assert offsets == sorted(offsets) and offsets[0] == 0
    assert items[2].message == "each line must be a JSON object, got an array"  # not "list"


def test_a_byte_order_mark_starting_a_later_line_is_read_past(tmp_path: Path) -> None:
    """``cat a.jsonl b.jsonl`` where Notepad saved b with a BOM: its first row was
    ``invalid_json`` ("UTF-8 byte order mark (BOM) is not supported"), as no JSON starts so."""
    rows = [chat(i) for i in range(12)]
    lines = [json.dumps(row).encode() + b"\n" for row in rows]
    path = tmp_path / "concatenated.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + b"".join(lines[:6]) + b"\xef\xbb\xbf" + b"".join(lines[6:]))
    data = ft.Dataset.from_jsonl(path)
    assert [example.model_dump() for example in data] == [
        example.model_dump() for example in ft.Dataset.from_records(rows)
    ]
    assert validate(data, target="hf", model="m").error_count == 0


def test_a_folder_whose_replacement_fails_is_put_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "model"
    target.mkdir()
    (target / "old.bin").write_text("old")
    rename = Path.rename

    def refuse_the_new_folder(self: Path, to: Any) -> Any:
        if Path(to) == target and self.name == "model" and self.parent != tmp_path:  # staging
            raise OSError("rename refused")
        return rename(self, to)

    def write_new() -> None:
        with atomic_folder(target) as staging:
            staging.mkdir()
            (staging / "new.bin").write_text("new")

    monkeypatch.setattr(Path, "rename", refuse_the_new_folder)
    with pytest.raises(OSError, match="rename refused"):
        write_new()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
    assert [p.name for p in target.iterdir()] == ["old.bin"]


def test_a_folder_is_replaced_whole_or_left_as_it_was(tmp_path: Path) -> None:
    target = tmp_path / "model"
    target.mkdir()
    (target / "old.bin").write_text("old")

    def fill_then_fail() -> None:
        with atomic_folder(target) as staging:
            staging.mkdir()
            (staging / "half.bin").write_text("half")
            raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        fill_then_fail()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no staging left behind
    assert [p.name for p in target.iterdir()] == ["old.bin"]
    with atomic_folder(target) as staging:
        staging.mkdir()
        (staging / "new.bin").write_text("new")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
    assert [p.name for p in target.iterdir()] == ["new.bin"]


def test_two_writers_of_one_folder_never_share_a_staging_folder(tmp_path: Path) -> None:
    """Two ``finetune demo --tiny`` at once on one folder: the second emptied the staging
    folder the first was writing, which then failed with a traceback from safetensors."""
    target = tmp_path / "model"
    with atomic_folder(target) as first:
        first.mkdir()
        (first / "a.bin").write_text("first")
        with atomic_folder(target) as second:
            second.mkdir()
            (second / "b.bin").write_text("second")
        assert [p.name for p in target.iterdir()] == ["b.bin"]
        (first / "a2.bin").write_text("first, more")
    assert sorted(p.name for p in target.iterdir()) == ["a.bin", "a2.bin"]  # the last, whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_a_file_written_by_name_is_each_writers_own_with_opens_permissions(
    tmp_path: Path,
) -> None:
    """Two GGUF exports to one file at once wrote the same ``.m.gguf.tmp``."""
    from finetune.dataset._atomic import temp_beside

    first, second = temp_beside(tmp_path / "m.gguf"), temp_beside(tmp_path / "m.gguf")
    assert first != second and first.name.startswith(".m.gguf.") and first.suffix == ".tmp"
    plain = tmp_path / "plain"
    plain.write_text("")
    assert stat.S_IMODE(first.stat().st_mode) == stat.S_IMODE(plain.stat().st_mode)


def test_a_staging_folder_a_killed_writer_left_goes_a_day_later(tmp_path: Path) -> None:
    target = tmp_path / "model"
    abandoned, recent = tmp_path / ".model.k1ll3d.tmp", tmp_path / ".model.w0rk1ng.tmp"
    for folder in (abandoned, recent):
        (folder / "model").mkdir(parents=True)
    two_days_ago = time.time() - 2 * 24 * 3600
    os.utime(abandoned, (two_days_ago, two_days_ago))
    with atomic_folder(target) as staging:
        staging.mkdir()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".model.w0rk1ng.tmp", "model"]


def test_a_row_of_plain_text_or_of_two_texts_is_named_with_how_to_write_it() -> None:
    says = "a row of plain text is for language modeling"
    data = ft.Dataset.from_records([{"text": "Once upon a time", "id": 7}])
    with pytest.raises(
        ft.DatasetError, match=f"^records:1: cannot tell the example kind: .*{says}"
    ):
        list(data)
    (finding,) = validate(data, target="hf", model="m").errors
    assert finding.code == "unknown_format" and says.replace("\\", "") in finding.message
    # a question-and-answer table (from_pandas, from_hf) of columns named otherwise
    pair = ft.Dataset.from_records([{"answer": "4", "Question": "2+2?"}], name="qa")
    (finding,) = validate(pair, target="hf", model="m").errors
    assert "keys: Question, answer); a row of two texts is read as a question" in finding.message
    # told the chat turns every backend trains (prompt and completion are refused by OpenAI's
    # chat models and Fireworks: the cure they were told first led to a second refusal)
    assert "rename 'Question' to 'user' and 'answer' to 'assistant'" in finding.message
    cure = {"Question": "user", "answer": "assistant"}
    assert f"(ds.select_columns({cure!r}), or --columns Question=user,answer=assistant" in (
        finding.message
    )
    for target, model in (("hf", "m"), ("fireworks", "f"), ("openai", "gpt-4o-mini-2024-07-18")):
        cured = validate(pair.select_columns(cure), target=target, model=model)
        assert not {"unknown_format", "unsupported_kind"} & set(cured.counts)
    # one of the two named right: validation read a broken completion example (three errors:
    # "completion must be a string, not null", an unknown 'response', ...), where fit told
    # "rename 'prompt' to 'prompt' and 'response' to 'completion'"
    half = ft.Dataset.from_records([{"prompt": "2+2?", "response": "4"}])
    (finding,) = validate(half, target="hf", model="m").errors
    with pytest.raises(ft.DatasetError) as parsed:
        list(half)
    assert finding.code == "unknown_format" and str(parsed.value).endswith(
        finding.message.partition(")")[2]
    )
    assert "rename 'prompt' to 'user' and 'response' to 'assistant' (ds.select_columns(" in (
        finding.message
    )
    assert "--columns prompt=user,response=assistant on the command line" in finding.message
    lone = ft.Dataset.from_records([{"prompt": "2+2?"}])
    (alone,) = validate(lone, target="hf", model="m").errors
    assert alone.message == "completion must be a string, not missing"


def test_a_question_and_its_answer_beside_other_columns_are_told_how_to_be_read() -> None:
    """HelpSteer's rows (prompt, response and a score each) were read as broken completion
    pairs: "completion must be a string", and 'response' was told to be removed (the cure
    kept ['prompt'] alone, dropping the answer)."""
    row = {"prompt": "2+2?", "response": "4", "helpfulness": 3, "correctness": 4}
    (finding,) = validate(ft.Dataset.from_records([row]), target="hf", model="m").errors
    assert finding.code == "unknown_format"
    assert (
        "rename 'prompt' to 'user' and 'response' to 'assistant', leaving out 'correctness', "
        "'helpfulness' (ds.select_columns({'prompt': 'user', 'response': 'assistant'}), or "
        "--columns prompt=user,response=assistant on the command line)"
    ) in finding.message
    with pytest.raises(ft.DatasetError, match="leaving out 'correctness', 'helpfulness'"):
        list(ft.Dataset.from_records([row]))
    cured = ft.Dataset.from_records([row]).select_columns(
        {"prompt": "user", "response": "assistant"}
    )
    assert validate(cured, target="hf", model="m").ok
    # a system prompt is kept with them
    row = {"system": "Be terse.", "question": "2+2?", "answer": "4", "level": 1}
    (finding,) = validate(ft.Dataset.from_records([row]), target="hf", model="m").errors
    assert "--columns system,question=user,answer=assistant on the command line" in (
        finding.message
    )
    # beside a context text: Alpaca's instruction, input and output
    sql = {"question": "Rows of t?", "context": "CREATE TABLE t (x INT)", "answer": "SELECT *"}
    (finding,) = validate(ft.Dataset.from_records([sql]), target="hf", model="m").errors
    renames = {"question": "instruction", "context": "input", "answer": "output"}
    assert f"ds.select_columns({renames!r})" in finding.message
    read = ft.Dataset.from_records([sql]).select_columns(renames)[0]
    assert read.messages[0].content == "Rows of t?\n\nCREATE TABLE t (x INT)"
    # two texts named as neither, or two of one kind, or beside another text or a list (a
    # source, a history: what the answer may need, which the cure would drop), get no guess
    history = {"query": "2+2?", "response": "4", "history": [["1+1?", "2"]]}
    for unsure in (
        history,
        {"question": "2+2?", "answer": "4", "source": "wiki"},
        {"title": "t", "body": "b", "n": 1},
        {"prompt": "p", "question": "q", "answer": "a"},
    ):
        findings = validate(ft.Dataset.from_records([unsure]), target="hf", model="m").errors
        guessed = ("leaving out", "Alpaca's instruction")
        assert findings and not any(said in f.message for f in findings for said in guessed)


def test_a_row_of_columns_named_by_role_is_read_as_its_conversation() -> None:
    """A table of ``system``, ``user`` and ``assistant`` columns (a spreadsheet's, a CSV's
    usual shape) was refused with the Python that would rewrite each row as messages, which
    no command could run."""
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(
        {"assistant": ["4", "Paris"], "System": ["Be brief.", None], "user": ["2+2?", "Capital?"]}
    )
    read = ft.Dataset.from_pandas(frame)
    written = [
        {"messages": [SYSTEM_BRIEF, {"role": "user", "content": "2+2?"}, ANSWER_4]},
        {"messages": [{"role": "user", "content": "Capital?"}, ANSWER_PARIS]},
    ]
    assert read.fingerprint() == ft.Dataset.from_records(written).fingerprint()
    unanswered = ft.Dataset.from_records([{"user": "2+2?", "assistant": ""}, {"User": 5}])
    found = validate(unanswered, target="hf", model="m").errors
    assert [(f.code, f.line, f.field) for f in found] == [
        ("missing_assistant", 1, "assistant"),
        ("invalid_content", 2, "User"),
        ("missing_assistant", 2, "assistant"),
    ]
    asker = ft.Dataset.from_records([{"prompt": "2+2?", "completion": "4", "user": "ann"}])
    (extra,) = validate(asker, target="hf", model="m").errors  # who asked, not a turn
    assert (extra.code, extra.field) == ("unexpected_field", "user")
    # a misspelt role column was told the keys of a chat example, "messages, tools", which
    # the table never had
    typo = ft.Dataset.from_records([{"User": "2+2?", "Asistant": "4", "user_id": "7"}])
    found = validate(typo, target="hf", model="m").errors
    told = {f.field: f.message for f in found if f.code == "unexpected_field"}
    assert told["Asistant"] == (
        "unknown key 'Asistant' holds a value (did you mean 'assistant'?): a table's columns "
        "named system, user, assistant are read as the row's turns; rename the column to "
        "'assistant' (ds.select_columns({'User': 'User', 'Asistant': 'assistant'}), or "
        "--columns User,Asistant=assistant on the command line)"
    )
    assert "did you mean" not in told["user_id"]  # an id beside the turns is no misspelling


SYSTEM_BRIEF = {"role": "system", "content": "Be brief."}
ANSWER_4 = {"role": "assistant", "content": "4"}
ANSWER_PARIS = {"role": "assistant", "content": "Paris"}


def test_a_path_under_the_home_folder_may_start_with_a_tilde(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As pandas and datasets read them; a config file's paths get no shell to expand them."""
    monkeypatch.setenv("HOME", str(tmp_path))
    write_jsonl(tmp_path / "train.jsonl", [chat(i) for i in range(3)])
    data = ft.Dataset.from_jsonl("~/train.jsonl")
    assert len(list(data)) == 3
    assert data.to_jsonl("~/copy.jsonl", format="openai") == tmp_path / "copy.jsonl"
    monkeypatch.setenv("FINETUNE_REGISTRY", "~/jobs.sqlite3")  # quoted in a .env file
    assert ft.JobRegistry().path == tmp_path / "jobs.sqlite3"
    result = ft.evaluate(data, {"echo": lambda m: m[-1]["content"]}, "exact_match", cache="~/c")
    assert result.to_json("~/result.json") == tmp_path / "result.json"
    assert (tmp_path / "c").is_file()
    assert ft.EvalResult.from_json("~/result.json").candidates == ["echo"]


def test_a_registry_or_cache_it_cannot_use_is_told_the_cure_for_its_cause(tmp_path: Path) -> None:
    """Every SQLite failure was told "Free disk space or fix the file's permissions, move it
    away if it is corrupt", beside "75 GB free there" for a file that was not a database."""
    import sqlite3

    from finetune._paths import unusable_database

    other = tmp_path / "jobs.sqlite3"
    other.write_text("a file that is not a database\n" * 100)
    with pytest.raises(ft.RegistryError) as caught:
        ft.JobRegistry(other).list()
    assert str(caught.value) == (
        f"the job registry {other} cannot be used (DatabaseError: file is not a database): it "
        "is not a SQLite database, or a damaged one: move it away; or set FINETUNE_REGISTRY to "
        "another path, or pass registry=False to the Tuner"
    )
    assert "free there" not in str(caught.value)
    with pytest.raises(ft.StorageError, match=r"\(DatabaseError: file is not a database\): it is"):
        ft.evaluate(ft.Dataset.from_records([chat(0)]), {"m": str}, "exact_match", cache=other)
    read_only = tmp_path / "read-only.sqlite3"
    sqlite3.connect(read_only).execute("CREATE TABLE t (x)").connection.commit()
    with pytest.raises(sqlite3.OperationalError) as refused:
        sqlite3.connect(f"file:{read_only}?mode=ro", uri=True).execute("INSERT INTO t VALUES (1)")
    assert unusable_database(refused.value, read_only).endswith(
        "database): it cannot be written there: fix the permissions of the file and its folder"
    )
    full = unusable_database(sqlite3.OperationalError("database or disk is full"), read_only)
    assert re.fullmatch(
        r"\(OperationalError: database or disk is full; .+ free there\): free disk space", full
    )
    busy = unusable_database(sqlite3.OperationalError("database is locked"), read_only)
    assert busy.endswith("another process kept it locked for 30 s: try again when that one is done")


FULL_DISK_SCRIPT = """
import resource, signal, sys
from pathlib import Path
import finetune as ft
from finetune.backends.hf._jobdir import training_file
out = Path(sys.argv[1])
rows = [{"messages": [{"role": "user", "content": f"question {i} " * 20},
                      {"role": "assistant", "content": f"a{i}"}]} for i in range(400)]
answers = ft.evaluate(ft.Dataset.from_records(rows[:300]), {"echo": lambda ex: "x" * 300},
                      metrics=["exact_match"], cache=False)
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit is then EFBIG
resource.setrlimit(resource.RLIMIT_FSIZE, (32768, 32768))  # no file over 32 KiB: "full"
for write in (lambda: ft.Dataset.from_records(rows).to_jsonl(out / "data.jsonl"),
              lambda: answers.to_json(out / "result.json"),
              lambda: ft.JobRegistry(out / "jobs.sqlite3").lineage("model"),
              lambda: training_file(out / "jobs", ft.Dataset.from_records(rows), "train")):
    try:
        write()
    except ft.FinetuneError as error:
        print(type(error).__name__, error)
"""


def test_a_full_disk_is_our_error_naming_the_file_and_the_room_left(tmp_path: Path) -> None:
    """A full disk was a bare ``OSError`` naming no file (``to_jsonl``, ``EvalResult.to_json``),
    and a fresh registry's reason was hidden behind "cannot rollback - no transaction is
    active" (SQLite had rolled back itself); a local job's training data said no room left."""
    import subprocess

    out = tmp_path / "out"
    out.mkdir()
    (out / "data.jsonl").write_text("kept\n")
    script = tmp_path / "write.py"
    script.write_text(FULL_DISK_SCRIPT)
    ran = subprocess.run(
        [sys.executable, str(script), str(out)], capture_output=True, text=True, timeout=120
    )
    said = ran.stdout.splitlines()
    assert len(said) == 4, ran.stderr
    for line, name in zip(said[:2], ["data.jsonl", "result.json"], strict=True):
        assert line.startswith(f"StorageError cannot write {out / name} (File too large; ")
        assert line.endswith(
            " free there); nothing was written there: free disk space, or choose another path"
        )
    assert said[2].startswith(
        f"RegistryError the job registry {out / 'jobs.sqlite3'} cannot be used"
    )
    assert "rollback" not in said[2] and " free there): free disk space or fix" in said[2]
    assert said[3].startswith(  # a local job's training data: the room left too
        f"StorageError cannot write the training data under {out / 'jobs' / 'files'} (File "
        "too large; "
    )
    assert said[3].endswith(
        " free there); free disk space there, or pass jobs_dir= a writable folder with room "
        "(or set FINETUNE_HF_JOBS_DIR)"
    )
    assert list((out / "jobs" / "files").iterdir()) == []  # no half-written file
    assert (out / "data.jsonl").read_text() == "kept\n"  # the file as it was
    assert not (out / "result.json").exists()


def test_a_copy_is_no_more_readable_than_the_file_it_came_from(tmp_path: Path) -> None:
    """A 0600 dataset's copy was written 0644, readable by every user of the machine (a
    local job's training copy under ``jobs_dir/files`` too). As ``cp`` does, a new file now
    takes the source's permissions, less the umask; a file replaced keeps its own."""
    source = tmp_path / "private.jsonl"
    write_jsonl(source, [chat(i) for i in range(3)])
    source.chmod(0o600)
    data = ft.Dataset.from_jsonl(source)
    mode = lambda path: stat.S_IMODE(path.stat().st_mode)  # noqa: E731
    assert mode(data.to_jsonl(tmp_path / "copy.jsonl", format="openai")) == 0o600
    assert mode(data.split(1, seed=0)[0].to_jsonl(tmp_path / "view.jsonl")) == 0o600
    shared = tmp_path / "shared.jsonl"
    shared.write_text("")
    shared.chmod(0o644)
    assert mode(data.to_jsonl(shared)) == 0o644  # replaced: its own, as before
    records = ft.Dataset.from_records([chat(0)]).to_jsonl(tmp_path / "records.jsonl")
    assert mode(records) == 0o666 & ~_current_umask()  # no source file: as open() makes it


def _current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def test_a_column_kept_that_the_rows_lack_is_named() -> None:
    """``--columns mesages`` (or a name no row has) left every row empty, each refused as
    "unrecognized example shape (keys: none)"; a misspelt one among right ones was dropped
    unsaid, and the row refused for what it then lacked ("no prompt")."""
    rows = [{"system": "S", "question": f"q{i}", "chosen": "a", "rejected": "b"} for i in range(3)]
    data = ft.Dataset.from_records(rows)
    cases = {
        (
            "sytem",
            "questoin",
        ): "the column kept 'sytem' is not in this row (did you mean 'system'?)",
        ("system", "questoin", "chosen"): "the column kept 'questoin' is not in this row (did "
        "you mean 'question'?)",
        ("nope",): "the row holds none of the columns kept, 'nope': its columns are system, "
        "question, chosen, rejected",
    }
    for kept, said in cases.items():
        view = data.select_columns(list(kept))
        with pytest.raises(ft.DatasetError) as caught:
            list(view)
        assert str(caught.value).endswith(f":1: {said}")
        report = validate(view, target="hf", model="m")
        assert [(f.code, f.line, f.message) for f in report.errors][:1] == [
            ("unknown_format", 1, said)
        ]
    # a column some rows just do not have (tools) is no typo
    optional = data.select_columns(
        {
            "system": "system",
            "question": "prompt",
            "chosen": "chosen",
            "rejected": "rejected",
            "tools": "tools",
        }
    )
    assert validate(optional, target="hf", model="m").ok


def test_select_columns_leaves_a_tables_extra_columns_out(tmp_path: Path) -> None:
    """The Hub's chat sets carry ``id``, ``source`` or a ``prompt`` repeating the first turn:
    each was an ``unexpected_field`` error whose cure, ``ds.select_columns``, was the
    ``datasets`` library's, not ours (nor any command's)."""
    rows = [{"id": f"t{i}", **chat(i), "source": "tickets"} for i in range(12)]
    rows[2] = {"id": "t2", "messages": [{"role": "robot", "content": "x"}]}
    path = write_jsonl(tmp_path / "hub.jsonl", rows)
    data = ft.Dataset.from_jsonl(path)
    model = "gpt-4.1-mini-2025-04-14"
    assert validate(data, target="openai", model=model).counts["unexpected_field"] == 11
    kept = data.select_columns(["messages", "tools"])
    assert repr(kept) == "<Dataset 'hub.jsonl[messages, tools]'>"
    report = validate(kept, target="openai", model=model)
    assert [(f.code, f.file, f.line) for f in report.errors] == [
        ("unknown_role", "hub.jsonl[messages, tools]", 3)
    ]
    good = write_jsonl(tmp_path / "good.jsonl", [{"id": i, **chat(i)} for i in range(3)])
    selected = ft.Dataset.from_jsonl(good).select_columns("messages")
    plain = ft.Dataset.from_records([chat(i) for i in range(3)])
    assert selected.fingerprint() == plain.fingerprint()
    selected.to_jsonl(tmp_path / "out.jsonl", format="openai")
    assert (tmp_path / "out.jsonl").read_text() == "".join(
        json.dumps(chat(i), separators=(",", ":")) + "\n" for i in range(3)
    )
    assert len(kept) == 12 and len(data.select_columns("messages")) == 12
    assert data.select_columns("messages").whole_file() is None  # not the file's bytes
    joined = (data + data).select_columns(["messages"])  # each row still names its part
    assert {item.file for item in joined.items()} == {"hub.jsonl", "hub.jsonl#2"}
    renamed = ft.Dataset.from_records([{"q": "2+2?", "a": "4", "id": 1}] * 12).select_columns(
        {"q": "prompt", "a": "completion"}
    )
    assert renamed.name == "records[q as prompt, a as completion]"
    assert validate(renamed, target="hf", model="m").ok
    assert next((e.prompt, e.completion) for e in renamed) == ("2+2?", "4")  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="select_columns names two keys 'prompt'"):
        data.select_columns({"q": "prompt", "question": "prompt"})
    for wrong, error in (([], ValueError), ([""], ValueError), (5, TypeError), ({}, ValueError)):
        with pytest.raises(error, match="select_columns takes"):
            data.select_columns(wrong)  # type: ignore[arg-type]
