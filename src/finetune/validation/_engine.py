"""validate(): one rule engine for every target, streaming, never stopping early."""

from __future__ import annotations

import functools
import itertools
import multiprocessing
import os
import threading
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from finetune._errors import FinetuneError
from finetune._words import counted
from finetune.dataset._formats import as_chat_record, chat_field, column_as_text
from finetune.dataset._reader import RawRecord, ReadProblem, iter_jsonl, packed
from finetune.validation._catalog import (
    model_info,
    unchecked_context_message,
    unknown_model_message,
    untrained_images_message,
)
from finetune.validation._codes import RULES
from finetune.validation._quality import Places, QualityScan, example_texts, percentile
from finetune.validation._report import Finding, ValidationReport
from finetune.validation._rules import Target, check_record, plain_chat, record_kind, target_rules
from finetune.validation._tokens import TokenCounter, counter_for

if TYPE_CHECKING:
    from finetune.dataset import Dataset

__all__ = ["context_limit_for", "token_stats", "validate"]

_TEXT_NOT_GIVEN = frozenset({"invalid_content", "invalid_completion", "invalid_preference"})


class _Scan:
    """One pass over a dataset: findings into the report, hashes and token counts kept."""

    def __init__(
        self,
        report: ValidationReport,
        rules: Target,
        model: str,
        counter: TokenCounter,
        limit: int | None,
        file: str,
        declared: str | None = None,
    ) -> None:
        self.report = report
        self.rules = rules
        self.model = model
        self.counter = counter
        self._count_plain = getattr(counter, "count_plain", None)
        self.limit = limit
        most = getattr(counter, "max_token_chars", None) if limit is not None else None
        self._chars_cap = limit * most if most else None
        self.file = file
        report.add_file(file)  # findings sort file by file, in the order scanned
        self.quality = QualityScan()
        # a declared kind is the kind from the first row on: a row of another is mixed_kinds
        self.kind: str | None = declared
        self.declared = declared
        self.examples = 0

    def __getstate__(self) -> dict[str, Any]:
        # workers send their results back; the token counter and the rules stay behind
        kept = ("counter", "_count_plain", "rules")
        return {k: v for k, v in self.__dict__.items() if k not in kept}

    def add(self, code: str, message: str, line: int | None, field: str | None) -> None:
        severity = RULES.get(code, ("warning", ""))[0]
        self._finding(code, severity, message, line, field)

    def _finding(
        self, code: str, severity: str, message: str, line: int | None, field: str | None
    ) -> None:
        """A finding at ``line`` as the scan numbers it: in a concatenation, its part's."""
        file, places = self.file, self.quality.places
        if line is not None and places is not None:
            file, line = places.where(line)
        self.report.add(Finding(code, severity, message, file, line, field))  # type: ignore[arg-type]

    def _numbered(self, file: str, line: int) -> int:
        """A concatenation's row numbered on through its parts, each part a file of the
        report's (in the order read)."""
        places = self.quality.places = self.quality.places or Places()
        if file != places.current:
            self.report.add_file(file)
        return places.number(file, line)

    def run(self, dataset: Dataset) -> None:
        self.consume(dataset.items())

    def consume(self, items: Iterable[RawRecord | ReadProblem]) -> int:
        """Scan raw records and read problems, in order; the last line number seen."""
        record = self._record
        line = 0
        for item in items:
            line = item.line if item.file is None else self._numbered(item.file, item.line)
            if item.__class__ is RawRecord:
                self.examples += 1
                record(item.data, line)
                continue
            assert isinstance(item, ReadProblem)
            sev = item.severity
            self._finding(item.code, sev, item.message, line, None)
            if sev == "error":
                self.examples += 1
        return line

    def _record(self, row: dict[str, Any], line: int) -> None:
        data = as_chat_record(row)  # TRL's conversational prompt-completion: its messages
        # the usual chat shape, which no built-in rule can object to (a plugin's checks can)
        plain = plain_chat(data) if self.rules.extra_checks is None else None
        if plain is None:
            if not self._passes_rules(data, line, row):
                return
        elif self.kind != "chat":
            self._note_kind("chat", line)
        if self._chars_cap is not None and self._over_by_length(plain, data, line):
            return
        try:
            if plain is not None and self._count_plain is not None:
                tokens: int = self._count_plain(*plain)
            else:
                tokens = self.counter.count_example(data)
        except FinetuneError:  # the model, not this row (a base model's missing template)
            raise
        except Exception as exc:
            self.add("unknown_format", f"the tokenizer refused this example: {exc}", line, None)
            return
        if self.limit is not None and tokens > self.limit:
            code = "would_truncate" if self.rules.truncates else "too_many_tokens"
            self.add(code, f"{tokens} tokens, over the limit of {self.limit}", line, None)
        if plain is None:
            self.quality.observe(data, line, tokens, self.add)
        else:
            self.quality.observe_texts(*plain, line, tokens, self.add)

    def _over_by_length(
        self, plain: tuple[list[str], list[str]] | None, data: dict[str, Any], line: int
    ) -> bool:
        """A text so long that it is over the limit whatever its tokens is reported without
        being encoded (a 50 MB row would take minutes and gigabytes to count exactly)."""
        texts = plain[1] if plain is not None else [t for _, t in example_texts(data)]
        chars = sum(map(len, texts))
        assert self._chars_cap is not None and self.limit is not None
        if chars <= self._chars_cap:
            return False
        least = -(-chars * self.limit // self._chars_cap)
        code = "would_truncate" if self.rules.truncates else "too_many_tokens"
        self.add(
            code,
            f"at least {least} tokens ({chars} characters; no token of this tokenizer spells "
            f"more than {self._chars_cap // self.limit}), over the limit of {self.limit}; "
            "not counted exactly",
            line,
            None,
        )
        return True

    def _passes_rules(self, data: dict[str, Any], line: int, row: dict[str, Any]) -> bool:
        """Every rule's findings for one record (``row`` as read, ``data`` as checked);
        False when one of them is an error."""
        failed = False
        checked = check_record(data, self.rules, self.model, row.keys())
        for code, severity, message, field in checked:
            where = chat_field(field, row)
            if code in _TEXT_NOT_GIVEN:
                message += column_as_text(self.file, where, row.get(where or ""))
            self._finding(code, severity, message, line, where)
            failed = failed or severity == "error"
        self._note_kind(record_kind(data), line)
        return not failed

    def _note_kind(self, kind: str | None, line: int) -> None:
        if self.kind is None:
            self.kind = kind
        elif kind is not None and kind != self.kind:
            if self.declared:
                where = f"a dataset declared kind={self.declared!r}"
            else:  # a concatenation's rows name their own files
                whole = "file" if self.quality.places is None else "set of files"
                where = f"a {whole} of {self.kind} examples"
            self.add("mixed_kinds", f"{kind} example in {where}", line, None)


def context_limit_for(target: str, model: str, override: int | None) -> int | None:
    if override is not None:
        return override
    info = model_info(target, model)
    return int(info["context"]) if info and info.get("context") else None


def validate(
    dataset: Dataset,
    *,
    target: str | Target,
    model: str,
    validation: Dataset | None = None,
    token_counter: TokenCounter | None = None,
    context_limit: int | None = None,
    keep: int = 20,
    workers: int | None = None,
) -> ValidationReport:
    """Check every example against ``target``'s rules, limits and quality checks.

    ``target`` is a rule set's name (``openai``, ``mistral``, ``hf``) or a ``Target`` (a
    plugin's own). Never raises for bad data: every problem becomes a finding with file, line
    and field.
    A whole JSONL file of 16 MB or more is scanned by ``workers`` processes (default: one per
    CPU) over byte ranges, and a whole Parquet file of 20,000 rows or more over runs of its
    row groups; the report is the same as a sequential scan's.
    """
    workers = workers if workers is not None else (os.cpu_count() or 1)
    rules = target if isinstance(target, Target) else target_rules(target)
    counter = token_counter or counter_for(rules.name, model)
    limit = context_limit_for(rules.name, model, context_limit)
    report = ValidationReport(target=rules.name, model=model, keep=keep)
    train = _scan(dataset, report, rules, model, counter, limit, workers)
    not_jsonl = bool(report.counts.get("not_jsonl"))  # the one line read is no example
    report.examples = 0 if not_jsonl else train.examples
    if train.examples < rules.min_examples and not not_jsonl:
        train.add(
            "too_few_examples",
            f"{counted(train.examples, 'example')}; {rules.name} needs at least "
            f"{rules.min_examples}",
            None,
            None,
        )
    _all_truncated_away(train, report.counts.get("no_trainable_tokens", 0), "train on")
    _check_file_size(dataset, rules, train)
    train.quality.finish(train.add)
    if validation is not None:
        held = _scan_validation(
            dataset, validation, train, report, rules, model, counter, limit, workers
        )
        report.stats["validation_examples"] = held.examples
    info, images = model_info(rules.name, model), report.counts.get("uncounted_image", 0)
    if images and info is not None and not info.get("images"):
        said = untrained_images_message(rules.name, model, images)
        train.add("model_without_images", said, None, None)
    if rules.lists_models and info is None:
        train.add("unknown_model", unknown_model_message(rules.name, model, limit), None, None)
    elif limit is None:  # an unknown_model warning says it already
        train.add("unchecked_context", unchecked_context_message(rules.name, model), None, None)
    if not counter.exact:
        reason = getattr(counter, "reason", "") or "no exact tokenizer for this model"
        train.add("approximate_token_counts", reason, None, None)
    report.stats.update(
        token_stats(train.quality.tokens), counter=counter.name, context_limit=limit
    )
    return report


def _scan_validation(
    dataset: Dataset,
    validation: Dataset,
    train: _Scan,
    report: ValidationReport,
    rules: Target,
    model: str,
    counter: TokenCounter,
    limit: int | None,
    workers: int,
) -> _Scan:
    """The validation set, scanned as the training set is and checked against it."""
    label = validation.name
    if label == dataset.name:  # two in-memory sets are both "records": say which one
        label = f"validation {label}"
    unread = report.counts.get("not_jsonl", 0)
    skipped = report.counts.get("no_trainable_tokens", 0)
    held = _scan(validation, report, rules, model, counter, limit, workers, label=label)
    if held.examples == 0 and report.counts.get("not_jsonl", 0) == unread:
        message = "the validation set has no examples; pass none, or at least one"
        held.add("too_few_examples", message, None, None)
    _all_truncated_away(held, report.counts.get("no_trainable_tokens", 0) - skipped, "validate on")
    if None not in (held.kind, train.kind) and held.kind != train.kind:
        message = f"{held.kind} examples to validate {train.kind} training: give both one kind"
        held.add("mixed_kinds", message, None, None)
    held.quality.finish(held.add)
    train.quality.leaks(held.quality, held.add)
    return held


def _all_truncated_away(scan: _Scan, skipped: int, purpose: str) -> None:
    """An error when truncation leaves every example without a trained token, which TRL
    meets as an empty dataset (``num_samples=0``) once the job has started."""
    if scan.examples and skipped >= scan.examples:
        message = (
            "every example loses its trained tokens to truncation at max_length "
            f"(no_trainable_tokens): none is left to {purpose}; raise max_length or shorten them"
        )
        scan.add("too_few_examples", message, None, None)


PARALLEL_MIN_BYTES = 16 * 1024 * 1024
PARALLEL_MIN_ROWS = 20_000  # a Parquet file's rows: its bytes are compressed
_Reader = Callable[[], Iterator[RawRecord | ReadProblem]]
_worker_scan: _Scan | None = None
_worker_readers: list[_Reader] = []


def _scan(
    dataset: Dataset,
    report: ValidationReport,
    rules: Target,
    model: str,
    counter: TokenCounter,
    limit: int | None,
    workers: int = 1,
    *,
    label: str | None = None,
) -> _Scan:
    name = label or dataset.name
    scan = _Scan(report, rules, model, counter, limit, name, dataset.declared_kind)
    readers = _part_readers(dataset, workers) if workers > 1 and _can_fork() else []
    if len(readers) > 1:
        _scan_in_parallel(scan, readers)
        return scan
    scan.run(dataset)
    return scan


def _part_readers(dataset: Dataset, workers: int) -> list[_Reader]:
    """Readers of a whole file in up to ``workers`` parts, in order (a JSONL file's byte
    ranges, a Parquet file's runs of row groups), or none for what is not worth splitting."""
    whole = dataset.whole_file()
    if whole is not None:
        path, cap = whole
        if os.path.getsize(path) < PARALLEL_MIN_BYTES or _packed_file(path):
            return []
        return [
            functools.partial(iter_jsonl, path, max_line_bytes=cap, start=start, end=end)
            for start, end in _ranges(path, workers)
        ]
    table = dataset._whole_parquet()
    if table is None or table.rows < PARALLEL_MIN_ROWS:
        return []
    return table.parts(workers)


def _packed_file(path: str) -> bool:
    """A file that is not JSONL at all: read from its start alone, it ends at line 1."""
    with open(path, "rb") as handle:
        return packed(handle.readline(_FIRST_LINE_BYTES)) is not None


_FIRST_LINE_BYTES = 65536  # enough to tell a file's kind by its first line


def _can_fork() -> bool:
    # forking a process that runs other threads can deadlock the child: stay sequential then
    return "fork" in multiprocessing.get_all_start_methods() and threading.active_count() == 1


def _ranges(path: str, workers: int) -> list[tuple[int, int]]:
    size = os.path.getsize(path)
    bounds = [0]
    with open(path, "rb") as handle:
        for index in range(1, workers):
            handle.seek(size * index // workers)
            handle.readline()
            bounds.append(min(handle.tell(), size))
    bounds.append(size)
    return [(a, b) for a, b in itertools.pairwise(bounds) if b > a]


def _scan_part(index: int) -> tuple[_Scan, int]:
    """Worker: scan one part of the file (its lines numbered from 1 within the part)."""
    template = _worker_scan
    assert template is not None
    report = ValidationReport(
        target=template.report.target, model=template.model, keep=template.report.keep
    )
    scan = _Scan(
        report,
        template.rules,
        template.model,
        template.counter,
        template.limit,
        template.file,
        template.declared,
    )
    lines = scan.consume(_worker_readers[index]())
    return scan, lines


def _scan_in_parallel(scan: _Scan, readers: list[_Reader]) -> None:
    """Scan the parts in forked workers (which inherit the readers), merge in file order."""
    global _worker_scan, _worker_readers
    _worker_scan, _worker_readers = scan, readers
    offset = 0
    try:
        with multiprocessing.get_context("fork").Pool(len(readers)) as pool:
            for part, lines in pool.imap(_scan_part, range(len(readers))):  # merged as it comes
                _merge(scan, part, offset)
                offset += lines
                del part
    finally:
        _worker_scan, _worker_readers = None, []


def _merge(scan: _Scan, part: _Scan, offset: int) -> None:
    for code, findings in part.report.kept.items():
        shifted = [replace(f, line=f.line + offset) if f.line else f for f in findings]
        for finding in shifted:
            scan.report.add(finding)
        scan.report.counts[code] += part.report.counts[code] - len(shifted)
    if scan.kind is None:
        scan.kind = part.kind
    elif part.kind is not None and part.kind != scan.kind:
        scan.add(
            "mixed_kinds", f"{part.kind} examples in a file of {scan.kind} examples", None, None
        )
    scan.examples += part.examples
    scan.quality.extend(part.quality, offset)


def _check_file_size(dataset: Dataset, rules: Target, scan: _Scan) -> None:
    if dataset.path is None or rules.max_file_bytes is None:
        return
    size = os.path.getsize(dataset.path)
    if size > rules.max_file_bytes:
        scan.add(
            "file_too_large",
            f"{size} bytes; {rules.name} accepts at most {rules.max_file_bytes}",
            None,
            None,
        )


def token_stats(tokens: array[int]) -> dict[str, int]:
    histogram = Counter(tokens)
    return {
        "tokens_total": sum(tokens),
        "tokens_p50": percentile(histogram, 0.5),
        "tokens_p95": percentile(histogram, 0.95),
        "tokens_max": max(histogram, default=0),
    }
