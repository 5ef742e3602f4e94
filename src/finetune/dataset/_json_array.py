"""A JSON file of examples: one array of them (Alpaca's ``alpaca_data.json``, LLaMA-Factory's
data files), an object holding that array under a key (``{"version": ..., "data": [...]}``),
or one example written over several lines. Read an element at a time, each named by the line
it starts on."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from finetune._json_text import json_at, json_from_text
from finetune._words import json_kind
from finetune.dataset._compressed import BROKEN_STREAM, broken_stream, open_data
from finetune.dataset._formats import detect_kind
from finetune.dataset._reader import DEFAULT_MAX_LINE_BYTES, RawRecord, ReadProblem, unwritable
from finetune.dataset._shape_hints import objects_only
from finetune.dataset._sources import FileSource

__all__ = ["JsonArraySource", "is_json_document"]

_BOM = "\ufeff"
_SPACE = " \t\r\n"


def is_json_document(path: str | Path) -> bool:
    """Whether the file is one JSON document, not JSONL: an array; an object alone on its only
    line that is no example (``{"data": [...]}``); or an object written over several lines:
    its first line does not hold a whole JSON object (a JSONL row's does, with a comma after
    it or not), nor are both of the next two lines JSON objects (JSONL's after a broken row)."""
    try:
        with open_data(path) as handle:
            first, *later = (handle.readline(DEFAULT_MAX_LINE_BYTES) for _ in range(3))
            alone = not any(line.strip() for line in later) and not handle.read(65536).strip()
    except BROKEN_STREAM:  # OSError among them: the reader says what is wrong
        return False
    head = first.removeprefix(_BOM.encode()).lstrip(_SPACE.encode())
    if head.startswith(b"["):
        return True
    if not head.startswith(b"{"):
        return False
    row = _leading_object(head)  # a JSONL row, even with a comma or more text after it
    if row is not None or alone or head.rstrip().endswith((b"}", b"},")):  # a row, broken
        return row is not None and alone and _holds_examples(row)
    return not all(_an_object(line) is not None for line in later if line.strip())


def _holds_examples(row: dict[str, Any]) -> bool:
    """Whether a one-line object is no example but holds a list of objects (its examples)."""
    if detect_kind(row, loose=True) is not None:
        return False
    return any(objects_only(value) for value in row.values())


def _leading_object(line: bytes) -> dict[str, Any] | None:
    """The JSON object the line starts with, whatever follows it on the line."""
    try:
        value, _ = json_at(json.JSONDecoder(), line.decode("utf-8", "replace"), 0)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _an_object(line: bytes) -> dict[str, Any] | None:
    try:
        value = json_from_text(line)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


class JsonArraySource(FileSource):
    """The examples of a JSON file (the file read whole on each pass, as it is one document):
    an array's elements; an object's, the elements of its one array of objects, or of the
    array under ``field``; or the object itself, when it is one example or holds no array of
    objects (validation then names its shape). A row's ``line`` is the line its element
    starts on."""

    maker = "Dataset.from_json"

    def __init__(self, file: Path, field: str | None = None) -> None:
        super().__init__(file)
        self.field = field

    def _rows(self) -> Iterator[RawRecord | ReadProblem]:
        text = _text(self.file)
        if isinstance(text, ReadProblem):
            yield text
            return
        cursor = _Cursor(text, json.JSONDecoder(parse_constant=_not_json))
        cursor.skip_space()
        if text.startswith("{", cursor.at):
            yield from self._object_rows(cursor)
            return
        why = None
        if not text.startswith("[", cursor.at):
            why = "the file is not a JSON array of examples, nor an object holding one"
        elif self.field is not None:
            why = f"the file is a JSON array, with no {self.field!r}: read it without field="
        if why is not None:
            yield ReadProblem(1, -1, "not_jsonl", why)
            return
        yield from _examples(cursor)
        if not cursor.failed:
            yield from _nothing_after(cursor, "the array's")

    def _object_rows(self, cursor: _Cursor) -> Iterator[RawRecord | ReadProblem]:
        start, line = cursor.at, cursor.line
        found = _members(cursor)
        if isinstance(found, ReadProblem):
            yield found
            return
        if self.field is None and (not found.lists or detect_kind(found.shallow, loose=True)):
            yield _element(json_at(cursor.decoder, cursor.text, start)[0], line)  # one row
            return
        chosen = found.chosen(self.field, self.file)
        if isinstance(chosen, ReadProblem):
            yield chosen
            return
        cursor.at, cursor.line, cursor.counted_to = found.arrays[chosen]
        yield from _examples(cursor)


@dataclass
class _Cursor:
    """A place in the text and the line it is on, counted on from the last place counted."""

    text: str
    decoder: json.JSONDecoder
    at: int = 0
    line: int = 1
    counted_to: int = 0
    failed: bool = False

    def skip_space(self) -> None:
        self.at = _past_space(self.text, self.at)
        self.line = self.line_of(self.at)
        self.counted_to = self.at

    def line_of(self, at: int) -> int:
        return self.line + self.text.count("\n", self.counted_to, at)

    def next_item(self, closing: str, what: str) -> bool | ReadProblem:
        """Past the space before an array's or object's next item: ``True`` at one, ``False``
        at its ``closing`` (the cursor past it), a problem where the text ends first."""
        self.skip_space()
        if self.at == len(self.text):
            self.failed = True
            why = f"the file ends inside the {what}: it looks truncated"
            return ReadProblem(self.line, -1, "truncated_line", why)
        if self.text[self.at] != closing:
            return True
        self.at += 1
        return False

    def separator(self, closing: str, after: str) -> ReadProblem | None:
        """Past the comma after an item; a problem where neither it nor ``closing`` follows."""
        self.at = _past_space(self.text, self.at)
        if self.text.startswith(",", self.at):
            self.at += 1
        elif not self.text.startswith(closing, self.at) and self.at < len(self.text):
            return self.expected(f"',' or '{closing}' after {after}")
        return None

    def expected(self, what: str) -> ReadProblem:
        self.failed = True
        why = f"not valid JSON: expected {what}, at line {self.line_of(self.at)}"
        return ReadProblem(self.line, -1, "invalid_json", why)

    def decode(self) -> tuple[Any, None] | tuple[None, ReadProblem]:
        """The JSON value at the cursor, the cursor past it; or why there is none."""
        try:
            value, self.at = json_at(self.decoder, self.text, self.at)
        except ValueError as exc:  # JSONDecodeError, or a NaN refused
            self.failed = True
            return None, _broken(exc, self.text, self.line)
        return value, None


def _array(cursor: _Cursor) -> Iterator[tuple[int, Any] | ReadProblem]:
    """Each element of the array at the cursor with the line it starts on, the cursor left
    past the array's end; a problem, and ``cursor.failed``, where it is not valid JSON."""
    cursor.at += 1
    while (more := cursor.next_item("]", "array")) is True:
        line = cursor.line
        value, problem = cursor.decode()
        if problem is None:
            yield line, value
            problem = cursor.separator("]", "an element")
        if problem is not None:
            yield problem
            return
    if isinstance(more, ReadProblem):
        yield more


def _examples(cursor: _Cursor) -> Iterator[RawRecord | ReadProblem]:
    for item in _array(cursor):
        yield item if isinstance(item, ReadProblem) else _element(item[1], item[0])


def _nothing_after(cursor: _Cursor, what: str) -> Iterator[ReadProblem]:
    rest = _past_space(cursor.text, cursor.at)
    if rest < len(cursor.text):
        yield ReadProblem(cursor.line_of(rest), -1, "invalid_json", f"text after {what} end")


@dataclass
class _Members:
    """A top-level object's members, each array among them as a list of its first element
    (``shallow``, for its shape), with where it starts (``arrays``); ``lists``: the keys of
    the arrays that hold objects only."""

    shallow: dict[str, Any] = dataclasses.field(default_factory=dict)
    arrays: dict[str, tuple[int, int, int]] = dataclasses.field(default_factory=dict)
    lists: list[str] = dataclasses.field(default_factory=list)

    def chosen(self, field: str | None, file: str) -> str | ReadProblem:
        """The key whose array holds the examples: ``field``, or the one array of objects."""
        lists = self.lists
        if field is None and len(lists) == 1:
            return lists[0]
        if field is not None and field in self.arrays:
            return field
        keys = ", ".join(repr(name) for name in list(self.shallow)[:8]) or "none"
        if field is not None and field in self.shallow:
            held = json_kind(self.shallow[field])
            why = f"the file's object holds {held} under {field!r}, not a list of examples"
        elif field is not None:
            why = f"the file's object has no key {field!r} (its keys: {keys})"
        else:
            named = " and ".join(repr(name) for name in lists)
            why = (
                f"the file is one JSON object whose {named} each hold a list of objects: name "
                f"the one that holds the examples, Dataset.from_json({Path(file).name!r}, "
                f"field={lists[0]!r}), or --field {lists[0]} on the command line (or save it "
                f"as a file of its own: jq '.{lists[0]}' {Path(file).name} > {lists[0]}.json)"
            )
        return ReadProblem(1, -1, "not_jsonl", why)


def _members(cursor: _Cursor) -> _Members | ReadProblem:
    """The object at the cursor, read through (its arrays an element at a time), and what
    follows it checked."""
    found, text = _Members(), cursor.text
    cursor.at += 1
    while (more := cursor.next_item("}", "object")) is True:
        if text[cursor.at] != '"':
            return cursor.expected("a key in double quotes")
        key, problem = cursor.decode()
        cursor.at = _past_space(text, cursor.at)
        if problem is None and not text.startswith(":", cursor.at):
            problem = cursor.expected("':' after a key")
        if problem is not None:
            return problem
        cursor.at += 1
        cursor.skip_space()
        problem = _member(cursor, found, key) or cursor.separator("}", "a value")
        if problem is not None:
            return problem
    if isinstance(more, ReadProblem):
        return more
    return next(_nothing_after(cursor, "the object's"), found)


def _member(cursor: _Cursor, found: _Members, key: Any) -> ReadProblem | None:
    """Read the value of ``key`` at the cursor into ``found``."""
    if not cursor.text.startswith("[", cursor.at):
        value, problem = cursor.decode()
        found.shallow[key] = value
        return problem
    found.arrays[key] = (cursor.at, cursor.line, cursor.counted_to)
    first: list[Any] = []  # for the object's shape: a row's turns are one example's
    objects = True
    for item in _array(cursor):
        if isinstance(item, ReadProblem):
            return item
        first = first or [item[1]]
        objects = objects and isinstance(item[1], dict)
    found.shallow[key] = first
    if objects:
        found.lists.append(key)
    return None


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
