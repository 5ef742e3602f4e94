"""A JSON file holding one array of examples (Alpaca's ``alpaca_data.json``, LLaMA-Factory's
data files): read an element at a time, each named by the line it starts on."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

from finetune._words import json_kind
from finetune.dataset._compressed import BROKEN_STREAM, broken_stream, open_data
from finetune.dataset._reader import RawRecord, ReadProblem, unwritable
from finetune.dataset._sources import FileSource

__all__ = ["JsonArraySource", "starts_an_array"]

_BOM = "\ufeff"
_SPACE = " \t\r\n"


def starts_an_array(path: str | Path) -> bool:
    """Whether the file's first character, past a BOM and blanks, opens a JSON array."""
    try:
        with open_data(path) as handle:
            head = handle.read(65536)
    except BROKEN_STREAM:  # OSError among them
        return False
    return head.removeprefix(_BOM.encode()).lstrip(_SPACE.encode()).startswith(b"[")


class JsonArraySource(FileSource):
    """The elements of a JSON file's one array, the file read whole on each pass (it is one
    document); a row's ``line`` is the line its element starts on."""

    maker = "Dataset.from_json"

    def _rows(self) -> Iterator[RawRecord | ReadProblem]:
        text = _text(self.file)
        if isinstance(text, ReadProblem):
            yield text
            return
        decoder = json.JSONDecoder(parse_constant=_not_json)
        at, line, counted_to = _past_space(text, 0), 1, 0
        if not text.startswith("[", at):
            yield ReadProblem(1, -1, "not_jsonl", "the file is not a JSON array of examples")
            return
        at += 1
        while True:
            at = _past_space(text, at)
            line, counted_to = line + text.count("\n", counted_to, at), at
            if at == len(text):
                why = "the file ends inside the array: it looks truncated"
                yield ReadProblem(line, -1, "truncated_line", why)
                return
            if text[at] == "]":
                break
            try:
                data, end = decoder.raw_decode(text, at)
            except ValueError as exc:  # JSONDecodeError, or a NaN refused
                yield _broken(exc, text, line)
                return
            yield _element(data, line)
            at = _past_space(text, end)
            if at < len(text) and text[at] == ",":
                at += 1
            elif at < len(text) and text[at] != "]":
                where = f"line {line + text.count(chr(10), counted_to, at)}"
                why = f"not valid JSON: expected ',' or ']' after an element, at {where}"
                yield ReadProblem(line, -1, "invalid_json", why)
                return
        rest = _past_space(text, at + 1)
        if rest < len(text):
            after = line + text.count("\n", counted_to, rest)
            yield ReadProblem(after, -1, "invalid_json", "text after the array's end")


def _text(file: str) -> str | ReadProblem:
    """The file's text (its bytes not kept beside it once decoded), or where it is not
    UTF-8."""
    try:
        with open_data(file) as handle:
            raw = handle.read()
    except BROKEN_STREAM as exc:
        return ReadProblem(1, -1, "truncated_line", broken_stream(exc))
    try:
        return raw.decode("utf-8").removeprefix(_BOM)
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        why = f"invalid UTF-8 at byte {exc.start} of the file; save it as UTF-8"
        return ReadProblem(line, -1, "invalid_utf8", why)


def _element(data: Any, line: int) -> RawRecord | ReadProblem:
    if not isinstance(data, dict):
        why = f"each element of the array must be a JSON object, got {json_kind(data)}"
        return ReadProblem(line, -1, "not_an_object", why)
    problem = unwritable(data)
    return RawRecord(line, -1, data) if problem is None else ReadProblem(line, -1, *problem)


def _past_space(text: str, at: int) -> int:
    while at < len(text) and text[at] in _SPACE:
        at += 1
    return at


def _not_json(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON (write null, or a number)")


def _broken(error: ValueError, text: str, line: int) -> ReadProblem:
    """The element starting on ``line`` that is not JSON: where, and why (a file cut short,
    or not)."""
    if not isinstance(error, json.JSONDecodeError):  # a NaN or Infinity
        why = f"not valid JSON in the element at line {line}: {error}"
        return ReadProblem(line, -1, "invalid_json", why)
    if error.pos >= len(text.rstrip()):
        why = f"the file ends inside the element at line {line}: it looks truncated"
        return ReadProblem(line, -1, "truncated_line", why)
    why = f"not valid JSON: {error.msg} at line {error.lineno} column {error.colno}"
    return ReadProblem(line, -1, "invalid_json", why)
