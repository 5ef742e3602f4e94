"""Quality checks (warnings): duplicates, leakage, system prompts, long tails, PII."""

from __future__ import annotations

import bisect
import json
import re
from array import array
from collections import Counter
from collections.abc import Callable, Iterator
from itertools import compress, islice, pairwise
from operator import eq
from typing import Any

from finetune._words import counted
from finetune.validation._tokens import reasoning_of

__all__ = ["QualityScan", "example_texts", "percentile"]

# an email's local part starts where a run of its characters starts: tried at every place
# of a long run (a hex dump, a sequence), the scan would take time quadratic in its length
_PII = re.compile(
    r"(?P<email>(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,})"
    r"|(?P<key>\b(?:sk-(?:proj-)?[A-Za-z0-9_-]{20,}|AKIA[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{30,}"
    r"|xox[abpr]-[A-Za-z0-9-]{10,}|AIza[0-9A-Za-z_-]{35})\b)"
    r"|(?P<card>\b(?:\d[ -]?){13,19}\b)"
    r"|(?P<phone>(?<![\w.])\+?\(?\d{1,4}\)?[ .-]?\(?\d{2,4}\)?[ .-]?\d{3,4}[ .-]?\d{3,4}(?![\w.]))",
    re.ASCII,
)
# a phone number holds at least 9 digits and a card number 13: text with fewer ASCII digits
# (and none of the other hints) cannot match, so the full scan is skipped for it
_DIGITS = b"0123456789"
_ASCII_WHITESPACE = b" \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f"  # what str.split() splits ASCII on
_ASCII_LOWER = bytes(range(256)).lower()
# the bytes some PII pattern cannot do without: "@" (email), "-" (sk-, xox...-), "K" (AKIA),
# "z" (AIza), "_" (gh?_); card and phone numbers need digits
_NOT_RARE = bytes(range(256)).translate(None, _DIGITS + b"@-Kz_")
_MIN_DIGITS = 9
_PII_CODES = {"email": "pii_email", "key": "secret_api_key", "card": "pii_card_number"}
_PII_CODES["phone"] = "pii_phone"
_MAX_SYSTEM_PROMPTS = 1000

AddFinding = Callable[[str, str, int, str | None], None]


def example_texts(record: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(role, text) of every message, prompt or answer in a raw record of any shape."""
    if "prompt" in record and isinstance(record.get("completion"), str):
        yield "user", str(record.get("prompt"))
        yield "assistant", record["completion"]
        return
    for group in _groups(record):
        if isinstance(group, str):
            yield "user", group
        elif isinstance(group, list):
            for message in group:
                if isinstance(message, dict):
                    yield str(message.get("role")), _text(message.get("content"))
                    if reasoning_of(message):
                        yield "reasoning", reasoning_of(message)


def _groups(record: dict[str, Any]) -> Iterator[Any]:
    """The message lists (or plain prompt strings) of a chat or preference record."""
    yield record.get("messages")
    source = record.get("input")  # ours is a list of messages; OpenAI's, {"messages": [...]}
    yield source.get("messages") if isinstance(source, dict) else source
    for key in ("prompt", "chosen", "rejected", "preferred_output", "non_preferred_output"):
        yield record.get(key)


def beyond_text(record: dict[str, Any]) -> int:
    """A hash of what an example holds besides its texts (images and other non-text parts,
    tool calls, the tools offered); 0 when nothing. Two examples that differ only there (the
    same question about two images) are not duplicates."""
    extra: list[Any] = [record["tools"]] if record.get("tools") else []
    for group in _groups(record):
        for message in group if isinstance(group, list) else ():
            if not isinstance(message, dict):
                continue
            content = message.get("content")
            if isinstance(content, list):
                extra += [p for p in content if not (isinstance(p, dict) and "text" in p)]
            if message.get("tool_calls"):
                extra.append(message["tool_calls"])
    if not extra:
        return 0
    return hash(json.dumps(extra, sort_keys=True, default=str))


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(p.get("text") or "") for p in content if isinstance(p, dict))
    return ""


def _luhn(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


class Places:
    """The rows of a concatenation of datasets, numbered on through its parts (a scan counts
    by that number), and back to each part's name and own line (what a finding names)."""

    def __init__(self) -> None:
        self._bases: list[int] = []
        self._files: list[str] = []
        self._last = 0

    @property
    def current(self) -> str | None:
        """The part read last."""
        return self._files[-1] if self._files else None

    def number(self, file: str, line: int) -> int:
        """The running number of ``line`` of part ``file`` (a new part goes on from the
        last number given)."""
        if file != self.current:
            self._bases.append(self._last)
            self._files.append(file)
        number = self._bases[-1] + line
        self._last = max(self._last, number)
        return number

    def where(self, number: int) -> tuple[str, int]:
        """The part and its own line that ``number`` stands for."""
        index = bisect.bisect_left(self._bases, number) - 1
        return self._files[index], number - self._bases[index]


class QualityScan:
    """Collects compact per-example hashes while scanning, then reports at the end.

    Memory is a few bytes per example (arrays of 64-bit hashes), so it stays flat in practice.
    """

    def __init__(self) -> None:
        self.exact = array("q")
        self.normalized = array("q")
        self.lines = array("i")
        self.tokens = array("i")
        self.system_prompts: Counter[int] = Counter()
        self.system_lines: dict[int, int] = {}
        self.places: Places | None = None  # lines numbered on through parts: what they are

    def observe(self, record: dict[str, Any], line: int, tokens: int, add: AddFinding) -> None:
        """Hash one valid example and scan its text for PII and secrets."""
        pairs = list(example_texts(record))
        roles, texts = [r for r, _ in pairs], [t for _, t in pairs]
        self.observe_texts(roles, texts, line, tokens, add, beyond=beyond_text(record))

    def observe_texts(
        self,
        roles: list[str],
        texts: list[str],
        line: int,
        tokens: int,
        add: AddFinding,
        *,
        beyond: int = 0,
    ) -> None:
        """``observe`` for an example already read as its messages' roles and texts;
        ``beyond`` is ``beyond_text`` of the record when it holds more than texts."""
        joined = "\x00".join(texts)
        unscanned = self._unscanned(roles, texts, line) if "system" in roles else texts
        # one pre-check for the whole example: it passes whenever one of its texts would
        if _pii_hint(_utf8(joined if unscanned is texts else "\x00".join(unscanned))):
            for text in unscanned:
                if text and _might_hold_pii(text):
                    self._scan_pii(text, line, add)
        normalized = _normalized_hash(joined)
        self.exact.append(hash((tuple(roles), tuple(texts), beyond)))
        self.normalized.append(hash((normalized, beyond)) if beyond else normalized)
        self.lines.append(line)
        self.tokens.append(tokens)

    def _unscanned(self, roles: list[str], texts: list[str], line: int) -> list[str]:
        """Counts the system prompts; the texts less the prompts scanned on an earlier line."""
        prompts = self.system_prompts
        if roles[0] == "system" and roles.count("system") == 1:  # the usual shape, no loop
            key = hash(texts[0])
            if key in prompts:
                prompts[key] += 1
                return texts[1:]
        unscanned = []
        for role, text in zip(roles, texts, strict=True):
            if role == "system":
                key = hash(text)
                if key in prompts:
                    prompts[key] += 1
                    continue
                self._observe_system(key, line)
            unscanned.append(text)
        return unscanned

    def extend(self, other: QualityScan, line_offset: int) -> None:
        """Append another scan's hashes (of the lines after ours), shifting its line numbers."""
        self.exact.extend(other.exact)
        self.normalized.extend(other.normalized)
        self.lines.extend(line + line_offset for line in other.lines)
        self.tokens.extend(other.tokens)
        for key, uses in other.system_prompts.items():
            if key in self.system_prompts or len(self.system_prompts) < _MAX_SYSTEM_PROMPTS:
                self.system_prompts[key] += uses
                self.system_lines.setdefault(key, other.system_lines[key] + line_offset)

    def _observe_system(self, key: int, line: int) -> None:
        if key in self.system_prompts or len(self.system_prompts) < _MAX_SYSTEM_PROMPTS:
            self.system_prompts[key] += 1
            self.system_lines.setdefault(key, line)

    def _scan_pii(self, text: str, line: int, add: AddFinding) -> None:
        for match in _PII.finditer(text):
            kind = match.lastgroup or ""
            found = match.group()
            if kind == "card" and not _luhn(re.sub(r"\D", "", found)):
                continue
            add(_PII_CODES[kind], f"{kind} pattern: {_mask(found)}", line, None)

    def finish(self, add: AddFinding) -> None:
        """Report duplicates, system prompt spread and long tails."""
        near = _repeated_values(self.normalized)
        if near:  # an exact duplicate is also a near one: look for them among those only
            pairs = zip(self.exact, self.normalized, strict=True)
            exact = _repeated_values(array("q", (e for e, n in pairs if n in near)))
            exact_dupes = self._duplicates(self.exact, exact, "duplicate_example", add)
            self._duplicates(self.normalized, near, "near_duplicate_example", add, exact_dupes)
        self._system_prompts(add)
        self._long_tail(add)

    def _duplicates(
        self,
        hashes: array[int],
        repeated: set[int],
        code: str,
        add: AddFinding,
        skip: bytearray | None = None,
    ) -> bytearray:
        """Marks (one byte per example) the repeats of an earlier example, reported as found."""
        found = bytearray(len(hashes))
        if not repeated:
            return found
        first: dict[int, int] = {}
        for index, key in enumerate(hashes):
            if key not in repeated:
                continue
            if key not in first:
                first[key] = index
            elif skip is None or not skip[index]:
                found[index] = 1
                add(code, f"same as {self._named(self.lines[first[key]])}", self.lines[index], None)
        return found

    def _named(self, line: int) -> str:
        """A line as a message names it: ``line 3``, or ``b.jsonl:3`` in a concatenation."""
        if self.places is None:
            return f"line {line}"
        file, own = self.places.where(line)
        return f"{file}:{own}"

    def _system_prompts(self, add: AddFinding) -> None:
        if len(self.system_prompts) < 2:
            return
        (_, count), *rest = self.system_prompts.most_common()
        total = sum(self.system_prompts.values())
        for key, uses in rest[:5]:
            add(
                "inconsistent_system_prompt",
                f"{len(self.system_prompts)} different system prompts; the most common is used "
                f"{count}/{total} times, this one {counted(uses, 'time')}. The model learns the "
                "prompt you train with: use the one you will serve with",
                self.system_lines[key],
                "messages[0].content",
            )

    def _long_tail(self, add: AddFinding) -> None:
        if len(self.tokens) < 20:
            return
        median = percentile(Counter(self.tokens), 0.5)
        cutoff = max(median * 8, 256)
        if max(self.tokens) <= cutoff:
            return
        for index, tokens in enumerate(self.tokens):
            if tokens > cutoff:
                add(
                    "long_tail",
                    f"{tokens} tokens, over 8x the median ({median}); check it is intended",
                    self.lines[index],
                    None,
                )

    def leaks(self, validation: QualityScan, add: AddFinding) -> None:
        """Warn for every validation example whose normalized text is also in training."""
        train = set(self.normalized)
        for index, key in enumerate(validation.normalized):
            if key in train:
                add(
                    "train_validation_leak",
                    "this validation example also appears in the training data",
                    validation.lines[index],
                    None,
                )


def _normalized_hash(joined: str) -> int:
    """Hash of an example's texts (joined by NUL) lowercased, with every whitespace removed."""
    if joined.isascii():
        return hash(joined.encode().translate(_ASCII_LOWER, _ASCII_WHITESPACE))
    return hash(_utf8("".join(joined.lower().split())))


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def _might_hold_pii(text: str) -> bool:
    return _pii_hint(_utf8(text))


def _pii_hint(data: bytes) -> bool:
    """False when no PII pattern can match the UTF-8 text ``data`` (a cheap pre-check)."""
    # every pattern needs 9 ASCII digits or one of a few rarer bytes: keep only those, in C.
    # UTF-8 keeps ASCII bytes as themselves and never uses them inside other characters
    rare = data.translate(None, _NOT_RARE)
    anchors = rare.translate(None, _DIGITS)
    if len(rare) - len(anchors) >= _MIN_DIGITS:
        return True
    return bool(anchors) and (
        b"@" in data
        or b"sk-" in data
        or b"xox" in data
        or b"AKIA" in data
        or b"AIza" in data
        or (b"_" in data and b"gh" in data)
    )


def _repeated_values(values: array[int], chunk: int = 1 << 17) -> set[int]:
    """Values that occur more than once, sorting in chunks so the extra memory stays small.

    Each chunk is sorted; then each band of the value range is gathered from every sorted
    chunk (by bisection) and sorted once more. Only sorts and pairwise compares, all in C.
    """
    runs = [array("q", sorted(values[i : i + chunk])) for i in range(0, len(values), chunk)]
    if len(runs) <= 1:
        return _adjacent_repeats(runs[0] if runs else array("q"))
    step = (1 << 64) // len(runs)  # hashes spread evenly over the 64-bit range
    edges = [-(1 << 63) + band * step for band in range(len(runs))] + [1 << 63]
    repeated: set[int] = set()
    for low, high in pairwise(edges):
        band = array("q")
        for run in runs:
            band.extend(run[bisect.bisect_left(run, low) : bisect.bisect_left(run, high)])
        repeated |= _adjacent_repeats(array("q", sorted(band)))
    return repeated


def _adjacent_repeats(ordered: array[int]) -> set[int]:
    """The values of a sorted array that equal their successor."""
    return set(compress(ordered, map(eq, ordered, islice(ordered, 1, None))))


def percentile(histogram: Counter[int], fraction: float) -> int:
    """The value at ``fraction`` of a histogram of counts (nearest rank)."""
    total = sum(histogram.values())
    if not total:
        return 0
    rank = min(total - 1, int(fraction * (total - 1) + 0.5))
    seen = 0
    for value in sorted(histogram):
        seen += histogram[value]
        if seen > rank:
            return value
    return max(histogram)


def _mask(value: str) -> str:
    if len(value) <= 6:
        return "***"
    return f"{value[:3]}…{value[-2:]}"
