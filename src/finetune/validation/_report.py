"""Findings and the ValidationReport: grouped by code, bounded in memory, printable anywhere."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from finetune._words import counted, table_cell

__all__ = ["Finding", "Severity", "ValidationReport"]

Severity = Literal["error", "warning"]


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem: a stable ``code``, where it is (file, 1-based line, JSON path) and why."""

    code: str
    severity: Severity
    message: str
    file: str | None = None
    line: int | None = None
    field: str | None = None

    @property
    def location(self) -> str:
        """``file:line: field`` as far as known."""
        where = f"{self.file or '<data>'}" + (f":{self.line}" if self.line is not None else "")
        return f"{where}: {self.field}" if self.field else where

    def __str__(self) -> str:
        return f"{self.location}: {self.severity} {self.code}: {self.message}"


@dataclass
class ValidationReport:
    """What validation found. Keeps every count but only the first ``keep`` findings per code."""

    target: str
    model: str | None = None
    keep: int = 20
    examples: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    severities: dict[str, Severity] = field(default_factory=dict)
    kept: dict[str, list[Finding]] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    """The files (or named record sets) checked, in order: the training set's first."""
    backend: str | None = None
    """The backend whose fit was checked (a Tuner's validate sets it); its rule set is
    ``target``, another backend's where it borrows one (``fake``, a plugin: ``openai``)."""

    def add(self, finding: Finding) -> None:
        """Record a finding (counted always, kept while under the per-code limit)."""
        self.add_file(finding.file)
        self.counts[finding.code] += 1
        self.severities[finding.code] = finding.severity
        bucket = self.kept.setdefault(finding.code, [])
        if len(bucket) < self.keep:
            bucket.append(finding)

    def add_file(self, file: str | None) -> None:
        """Note a file checked (once, in the order first seen)."""
        if file is not None and file not in self.files:
            self.files.append(file)

    def _place(self, finding: Finding) -> tuple[int, int, str]:
        """Where a finding sorts: by file, in the order checked, then by line."""
        rank = self.files.index(finding.file) if finding.file in self.files else -1
        return rank, finding.line or 0, finding.code

    @property
    def ok(self) -> bool:
        """True when there is no error (warnings allowed)."""
        return not any(self.counts[c] for c, s in self.severities.items() if s == "error")

    def _findings(self, severity: Severity) -> list[Finding]:
        found = [f for c, fs in self.kept.items() if self.severities[c] == severity for f in fs]
        return sorted(found, key=self._place)

    @property
    def errors(self) -> list[Finding]:
        """Kept error findings, file by file (training first) in line order."""
        return self._findings("error")

    @property
    def warnings(self) -> list[Finding]:
        """Kept warning findings, file by file (training first) in line order."""
        return self._findings("warning")

    @property
    def error_count(self) -> int:
        """How many errors in all (not only the kept ones)."""
        return sum(n for c, n in self.counts.items() if self.severities[c] == "error")

    @property
    def warning_count(self) -> int:
        """How many warnings in all."""
        return sum(n for c, n in self.counts.items() if self.severities[c] == "warning")

    def lines(self, code: str, *, file: str | None = None) -> list[int]:
        """The first kept line numbers for a code, each line once (a row with several such
        problems is one line), in every file checked or in ``file`` alone (a report of a
        training and a validation set holds both: ``report.files``)."""
        found = self.kept.get(code, [])
        places = ((f.file, f.line) for f in found if f.line is not None and file in (None, f.file))
        return [line for _, line in dict.fromkeys(places)]

    def raise_for_errors(self) -> ValidationReport:
        """Raise ``ValidationFailed`` when there is any error; else return self."""
        if not self.ok:
            from finetune._errors import ValidationFailed

            raise ValidationFailed(self)
        return self

    def summary(self, limit: int = 5) -> str:
        """A few lines per code: count, severity and the first locations."""
        out = []
        for code in sorted(self.counts, key=lambda c: (self.severities[c] != "error", c)):
            out.append(f"{self.severities[code]} {code} x{self.counts[code]}")
            out.extend(f"  {f.location}: {f.message}" for f in self.kept[code][:limit])
        return "\n".join(out) or "no problems found"

    def to_dict(self) -> dict[str, Any]:
        """Everything as plain data (JSON-ready)."""
        return {
            "target": self.target,
            "backend": self.backend,
            "model": self.model,
            "ok": self.ok,
            "examples": self.examples,
            "errors": self.error_count,
            "warnings": self.warning_count,
            "codes": {
                code: {
                    "severity": self.severities[code],
                    "count": self.counts[code],
                    "lines": self.lines(code),
                    "findings": [asdict(f) for f in self.kept[code]],
                }
                for code in sorted(self.counts)
            },
            "stats": self.stats,
            "files": self.files,
        }

    def to_json(self, indent: int | None = 2) -> str:
        """The report as JSON."""
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    def to_markdown(self) -> str:
        """A summary line, then a Markdown table of the findings (code, severity, count,
        first lines, first message); no table when there are none."""
        head = [self._headline(bold="**", code="`")]
        if not self.counts:
            return head[0]
        head += ["", "| code | severity | count | first lines | example |", "|---|---|---|---|---|"]
        for code in sorted(self.counts, key=lambda c: (self.severities[c] != "error", c)):
            first = self.kept[code][0]
            lines = table_cell(self._first_lines(code))
            message = table_cell(first.message)
            head.append(
                f"| `{code}` | {self.severities[code]} | {self.counts[code]} | {lines} | "
                f"{message} |"
            )
        return "\n".join(head)

    def _first_lines(self, code: str, most: int = 5) -> str:
        """``1, 4`` for one file; ``train.jsonl: 1, 4; valid.jsonl: 2`` for more."""
        placed = sorted((f for f in self.kept[code] if f.line is not None), key=self._place)
        places = list(dict.fromkeys((f.file, f.line) for f in placed))
        groups: dict[str | None, list[str]] = {}
        for file, line in places[:most]:
            groups.setdefault(file, []).append(str(line))
        if len(self.files) < 2:
            return ", ".join(line for lines in groups.values() for line in lines)
        return "; ".join(f"{file}: {', '.join(lines)}" for file, lines in groups.items())

    @property
    def checked_as(self) -> str:
        """The rule set, named after the backend that borrows it: ``openai``, or ``fake
        (openai's rules)``."""
        return self._named()

    def _named(self, code: str = "") -> str:
        target = f"{code}{self.target}{code}"
        if self.backend is None or self.backend == self.target:
            return target
        return f"{code}{self.backend}{code} ({target}'s rules)"

    def _headline(self, bold: str = "", code: str = "") -> str:
        state = "OK" if self.ok else "FAILED"
        model = f" / {code}{self.model}{code}" if self.model else ""
        return (
            f"{bold}Validation {state}{bold} for {self._named(code)}{model}: "
            f"{counted(self.examples, 'example')}, {counted(self.error_count, 'error')}, "
            f"{counted(self.warning_count, 'warning')}"
        )

    def __str__(self) -> str:
        """A headline (passed or failed, how many examples, errors and warnings), then each
        code's count and first places, as ``summary`` writes them."""
        return self._headline() + ("\n" + self.summary() if self.counts else "")

    def _repr_html_(self) -> str:
        from finetune._html import report_html

        return report_html(self)

    def __repr__(self) -> str:
        return (
            f"<ValidationReport {self.target} ok={self.ok} examples={self.examples} "
            f"errors={self.error_count} warnings={self.warning_count}>"
        )
