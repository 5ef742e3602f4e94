"""Metrics: plain functions ``(prediction, reference, example) -> float`` in [0, 1].

Use them as they are (``ft.metrics.exact_match``) or build configured ones
(``ft.metrics.exact(case=True)``, ``ft.metrics.regex(r"^Order \\d+")``). Any function of the
same shape is a custom metric; its ``__name__`` names its column. A metric that compares the
prediction with the reference says so (``needs_reference``), and ``evaluate`` refuses
examples with no reference answer for it rather than score them against nothing. A metric
with a ``batch`` function, ``(predictions, references, examples) -> scores``, is called once
by ``evaluate`` for every answer (``embedding_similarity``: many texts a request).
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections import Counter
from collections.abc import Callable
from typing import Any, TypeVar

from finetune._errors import MissingDependency, did_you_mean
from finetune._json_text import json_from_text
from finetune._namespace import PublicNames, public_names
from finetune._numbers import is_whole
from finetune._synonyms import METRIC_SYNONYMS

__all__ = [
    "READY",
    "Metric",
    "bleu",
    "by_name",
    "chrf",
    "contains",
    "embedding_similarity",
    "exact",
    "exact_match",
    "json_fields",
    "json_schema",
    "json_valid",
    "llm_judge",
    "needs_reference",
    "regex",
    "token_f1",
    "tool_calls_match",
    "tool_names_match",
]
__dir__: PublicNames = public_names(__name__)

Metric = Callable[[str, str, Any], float]
"""A metric: ``(prediction, reference, example) -> float``, a score from 0 to 1 (1 best)."""
F = TypeVar("F", bound=Callable[..., float])
READY = (
    "bleu",
    "chrf",
    "contains",
    "exact_match",
    "json_fields",
    "json_valid",
    "token_f1",
    "tool_calls_match",
    "tool_names_match",
)
"""The metrics usable as they are, by name (in an eval config); the others are built with
arguments (``exact(case=False)``, ``regex(pattern)``, ``llm_judge(judge)``)."""
_PUNCTUATION = str.maketrans("", "", string.punctuation)


def _without_punctuation(text: str) -> str:
    """``text`` less ASCII's punctuation and symbols and every other script's punctuation
    (``¿``, ``«»``, ``“”``, ``。``): Unicode's P categories."""
    text = text.translate(_PUNCTUATION)
    if text.isascii():
        return text
    return "".join(char for char in text if not unicodedata.category(char).startswith("P"))


def by_name(name: str) -> Metric:
    """The ready metric called ``name`` (one of ``READY``); any other name is a
    ``ValueError`` that lists them."""
    if name not in READY:
        meant = did_you_mean(name, list(READY), METRIC_SYNONYMS)
        raise ValueError(
            f"metric {name!r}{meant}: by name, one of {', '.join(READY)}; the metrics built with "
            "arguments (exact, regex, json_schema, llm_judge, embedding_similarity) are given "
            "as functions in Python, e.g. ft.metrics.regex(pattern) (docs/evaluation.md)"
        )
    found: Metric = globals()[name]
    return found


def needs_reference(metric: Metric) -> bool:
    """Whether ``metric`` compares the prediction with the reference answer: the ready ones
    but ``json_valid``, ``regex`` and ``json_schema``, and a custom metric that sets
    ``metric.needs_reference = True``."""
    return getattr(metric, "needs_reference", False) is True


def _compares(function: F) -> F:
    function.needs_reference = True  # type: ignore[attr-defined]
    return function


def _named(name: str, function: Metric, *, compares: bool = True) -> Metric:
    function.__name__ = name
    function.__qualname__ = name
    return _compares(function) if compares else function


def normalize(
    text: str, *, case: bool = False, whitespace: bool = True, punctuation: bool = True
) -> str:
    """Unicode NFKC, then optionally fold case, collapse whitespace and keep punctuation."""
    text = unicodedata.normalize("NFKC", text)
    if not case:
        text = text.casefold()
    if not punctuation:
        text = _without_punctuation(text)
    if whitespace:
        text = " ".join(text.split())
    return text


def exact(*, case: bool = True, whitespace: bool = True, punctuation: bool = True) -> Metric:
    """Exact match after normalization (``case=False`` folds case, ``punctuation=False``
    drops punctuation, ``whitespace=False`` keeps runs of white space as they are). Its
    column says which: ``exact_match``, ``exact_match_normalized`` (case and punctuation
    ignored), ``exact_match_nocase``, ``exact_match_nopunct``, ``..._spaces``."""

    def metric(prediction: str, reference: str, example: Any = None) -> float:
        options = {"case": case, "whitespace": whitespace, "punctuation": punctuation}
        return float(normalize(prediction, **options) == normalize(reference, **options))

    ignored = [word for word, kept in (("nocase", case), ("nopunct", punctuation)) if not kept]
    parts = ["normalized"] if len(ignored) == 2 else ignored
    parts += [] if whitespace else ["spaces"]
    return _named("_".join(["exact_match", *parts]), metric)


exact_match: Metric = exact()
"""``exact()``: 1 where the prediction is the reference once both are Unicode-normalized
(NFKC) and their white space trimmed and collapsed (case and punctuation count), else 0."""


@_compares
def contains(prediction: str, reference: str, example: Any = None) -> float:
    """1 when the reference appears in the prediction (case-insensitive)."""
    return float(normalize(reference) in normalize(prediction))


def regex(pattern: str, *, name: str | None = None) -> Metric:
    """1 when the prediction matches ``pattern`` (``re.search``)."""
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"regex: {pattern!r} is no regular expression ({exc})") from None

    def metric(prediction: str, reference: str, example: Any = None) -> float:
        return float(compiled.search(prediction) is not None)

    return _named(name or "regex", metric, compares=False)


def _json(text: str) -> Any:
    """The JSON a reply holds, in a fenced block or not (its info string in any case:
    ``json``, ``JSON``); ``NaN`` and ``Infinity``, which Python reads and JSON has not, and
    no strict parser takes, are a ``ValueError``."""
    stripped = text.strip()
    if stripped.startswith("```"):
        body = stripped.strip("`")
        info, _, rest = body.partition("\n")
        if rest and not info.lstrip().startswith(("{", "[")):
            body = rest
        stripped = body.strip()
    return json_from_text(stripped, parse_constant=_no_json_constant)


def _no_json_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def json_valid(prediction: str, reference: str, example: Any = None) -> float:
    """1 when the prediction parses as JSON (a fenced ```json block counts; ``NaN`` and
    ``Infinity``, which no strict parser takes, do not)."""
    try:
        _json(prediction)
    except ValueError:
        return 0.0
    return 1.0


def json_schema(schema: dict[str, Any]) -> Metric:
    """1 when the prediction is JSON valid against ``schema`` (needs ``jsonschema``), under
    the draft its ``$schema`` names (2020-12 when it names none). A schema that is not valid
    under its draft (``{"type": "objekt"}``, ``"required": "name"``) is a ``ValueError``
    here, before any model is asked, not a score of 0 for every answer, or an error once
    every prediction is paid for."""
    try:
        import jsonschema
        from jsonschema.validators import validator_for
    except ImportError as exc:
        raise MissingDependency("jsonschema", "eval", purpose="for json_schema") from exc
    draft = validator_for(schema, default=jsonschema.Draft202012Validator)
    try:
        draft.check_schema(schema)
    except jsonschema.SchemaError as error:
        where = "/".join(str(part) for part in error.absolute_path) or "(the top)"
        raise ValueError(
            f"json_schema: the schema is not valid at {where}: {error.message}"
        ) from None
    validator = draft(schema)

    def metric(prediction: str, reference: str, example: Any = None) -> float:
        try:
            return float(validator.is_valid(_json(prediction)))
        except ValueError:
            return 0.0

    return _named("json_schema", metric, compares=False)


def _flatten(value: Any, path: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    """Every leaf by its path of keys (not their dotted text: ``{"a.b": 1}`` is no field of
    ``{"a": {"b": 1}}``); an empty object is a leaf, so ``{}`` is a value too."""
    if isinstance(value, dict) and value:
        out: dict[tuple[str, ...], Any] = {}
        for key, inner in value.items():
            out.update(_flatten(inner, (*path, key)))
        return out
    return {path: value}


@_compares
def json_fields(prediction: str, reference: str, example: Any = None) -> float:
    """The share of the reference JSON's (nested) fields that the prediction has, equal as
    JSON values: a field it lacks is no match, even where the reference holds ``null``."""
    try:
        expected = _flatten(_json(reference))
    except ValueError:
        return 0.0
    try:
        got = _flatten(_json(prediction))
    except ValueError:
        return 0.0
    matched: int = sum(k in got and _same(got[k], v) for k, v in expected.items())
    return matched / len(expected)


def _same(got: Any, expected: Any) -> bool:
    """JSON equality: ``true`` is not ``1`` (Python's ``True == 1``), ``1.0`` is ``1``."""
    if isinstance(got, bool) or isinstance(expected, bool):
        return got is expected
    if isinstance(got, list) and isinstance(expected, list):
        return len(got) == len(expected) and all(map(_same, got, expected))
    if isinstance(got, dict) and isinstance(expected, dict):
        return got.keys() == expected.keys() and all(_same(got[k], expected[k]) for k in got)
    return bool(got == expected)


@_compares
def tool_calls_match(prediction: str, reference: str, example: Any = None) -> float:
    """1 when the prediction calls the tools the reference calls, each with the same
    arguments as JSON values (``2`` is ``2.0``, not ``true``), in any order; on an example
    whose answer is text, 1 when the prediction calls no tool either."""
    return _same_calls(prediction, reference, arguments=True)


@_compares
def tool_names_match(prediction: str, reference: str, example: Any = None) -> float:
    """1 when the prediction calls the tools the reference calls, by name, arguments aside,
    in any order; on an example whose answer is text, 1 when the prediction calls no tool
    either."""
    return _same_calls(prediction, reference, arguments=False)


def _same_calls(prediction: str, reference: str, *, arguments: bool) -> float:
    """Whether each expected call is matched by one call of the prediction, by name (and
    arguments, as ``_same`` compares JSON values), none left over."""
    from finetune.evaluation._tools import read_tool_calls

    expected, got = read_tool_calls(reference), read_tool_calls(prediction)
    if expected is None or got is None:
        return float(expected is None and got is None)
    if len(got) != len(expected):
        return 0.0
    left = list(expected)
    for name, given in got:
        match = next(
            (
                i
                for i, (n, a) in enumerate(left)
                if n == name and (not arguments or _same(given, a))
            ),
            None,
        )
        if match is None:
            return 0.0
        del left[match]
    return 1.0


# a character of a script written without spaces between words (Chinese, Japanese kana):
# each one a word, as MLQA's and CMRC's evaluations read them; other text splits at spaces
_UNSPACED = (
    "\u3040-\u30ff"  # hiragana and katakana
    "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"  # CJK ideographs: extension A, unified, compatibility
    "\U00020000-\U0002ebef\U00030000-\U0003134f"  # extensions B to G
)
_UNSPACED_CHAR = re.compile(f"[{_UNSPACED}]")
_WORD = re.compile(f"[{_UNSPACED}]|[^\\s{_UNSPACED}]+")


def _words(text: str) -> list[str]:
    return _WORD.findall(text)


@_compares
def token_f1(prediction: str, reference: str, example: Any = None) -> float:
    """SQuAD-style token F1 over normalized words (case folded, punctuation of any script
    dropped); in Chinese and Japanese, which put no spaces between words, each character
    is one (as MLQA's evaluation reads them). Unlike SQuAD's script it keeps English
    articles (``a``, ``an``, ``the``): it scores any language alike, so on English text its
    figures differ from SQuAD's wherever an article is in either answer."""
    predicted = _words(normalize(prediction, punctuation=False))
    expected = _words(normalize(reference, punctuation=False))
    if not predicted or not expected:
        return float(predicted == expected)
    overlap = sum((Counter(predicted) & Counter(expected)).values())
    if overlap == 0:
        return 0.0
    precision, recall = overlap / len(predicted), overlap / len(expected)
    return 2 * precision * recall / (precision + recall)


def _sacrebleu() -> Any:
    try:
        import sacrebleu
    except ImportError as exc:
        raise MissingDependency("sacrebleu", "eval", purpose="for bleu and chrf") from exc
    return sacrebleu


@_compares
def bleu(prediction: str, reference: str, example: Any = None) -> float:
    """Sentence BLEU (sacrebleu), scaled to [0, 1]. Text holding Chinese or Japanese
    characters is tokenized by sacrebleu's ``zh`` tokenizer (each ideograph a token, as
    sacrebleu does for Chinese): its default, ``13a``, splits at spaces, which those scripts
    do not put between words, so an answer differing by one character scored 0."""
    unspaced = _UNSPACED_CHAR.search(prediction) or _UNSPACED_CHAR.search(reference)
    tokenize = "zh" if unspaced else "13a"
    return _unit(_sacrebleu().sentence_bleu(prediction, [reference], tokenize=tokenize).score)


@_compares
def chrf(prediction: str, reference: str, example: Any = None) -> float:
    """Sentence chrF (sacrebleu), scaled to [0, 1]."""
    return _unit(_sacrebleu().sentence_chrf(prediction, [reference]).score)


def _unit(percent: float) -> float:
    """sacrebleu's 0-100 score on [0, 1]: its exp() and sums give a perfect BLEU of
    100.00000000000004, which is no 0/1 score (the intervals would treat it as another)."""
    return min(1.0, max(0.0, float(percent) / 100))


def embedding_similarity(
    embed: Callable[[list[str]], list[list[float]]], *, batch_size: int = 256
) -> Metric:
    """Cosine similarity of embeddings from ``embed`` (any embedding function), clipped to
    [0, 1] (rounding makes a text's similarity to itself 1.0000000000000002).

    In ``evaluate``, ``embed`` is given the run's distinct texts, ``batch_size`` at a time (a
    reference shared by several candidates is embedded once), rather than two per row."""
    if not is_whole(batch_size) or batch_size < 1:
        raise ValueError(f"batch_size is a whole number of texts from 1, not {batch_size!r}")

    def vectors(texts: list[str]) -> dict[str, list[float]]:
        distinct = list(dict.fromkeys(texts))
        found: dict[str, list[float]] = {}
        for start in range(0, len(distinct), batch_size):
            chunk = distinct[start : start + batch_size]
            embedded = list(embed(chunk))
            if len(embedded) != len(chunk):
                raise ValueError(
                    f"the embedding function returned {len(embedded)} vectors for "
                    f"{len(chunk)} texts: it returns one vector per text, in order"
                )
            found.update(zip(chunk, embedded, strict=True))
        return found

    def metric(prediction: str, reference: str, example: Any = None) -> float:
        return batch([prediction], [reference], [example])[0]

    def batch(predictions: list[str], references: list[str], examples: list[Any]) -> list[float]:
        embedded = vectors([*predictions, *references])
        pairs = zip(predictions, references, strict=True)
        return [_cosine(embedded[p], embedded[r]) for p, r in pairs]

    metric.batch = batch  # type: ignore[attr-defined]
    return _named("embedding_similarity", metric)


def _cosine(first: list[float], second: list[float]) -> float:
    dot = sum(x * y for x, y in zip(first, second, strict=True))
    norm = (sum(x * x for x in first) * sum(y * y for y in second)) ** 0.5
    return min(1.0, max(0.0, dot / norm)) if norm else 0.0


_RUBRIC_PROMPT = (
    "You grade an answer against a reference.\nRubric: {rubric}\n\nConversation:\n{question}\n\n"
    "Reference answer:\n{reference}\n\nAnswer to grade:\n{prediction}\n\n"
    "Reply with one integer from 1 (fails the rubric) to 5 (fully meets it), nothing else."
)


def llm_judge(
    judge: Any, rubric: str = "Is the answer correct and complete?", *, name: str = "llm_judge"
) -> Metric:
    """A rubric judge: any predictor (or ``ModelRef``, or its text ``"openai:gpt-4.1"``) scores
    1-5, mapped to [0, 1]; its column is ``name`` (two rubrics in one evaluation,
    ``name="tone"`` beside the default); rate limits, 5xx and dropped connections are retried as
    predictions are. The grade is the last one a reply names (``Grade: 4``), else its one digit
    1-5 standing alone. A reply with no grade (``4.5``, ``3 to 4``, a refusal), or two (``it
    misses 2 points: 3``), is answered once with the instruction again (a second with two is
    read by its first); a second with none is a ``ValueError`` quoting it (never a score the
    judge did not give).

    In ``evaluate`` the judge grades each answer as soon as it is in, ``max_concurrency``
    requests at once, and its replies are kept in the prediction cache, so a re-run pays for
    no grade twice. Called on its own, the metric asks one request at a time.

    For pairwise judging with position swapping, see ``ft.evaluation.judge_pairwise``.
    """
    from finetune.evaluation._judging import Exchange, Judging, ask_blocking, no_verdict
    from finetune.evaluation._predictors import predictor_for

    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"name is the judge's column, a text such as 'tone', not {name!r}")
    grader = predictor_for(judge, what="judge")

    def exchange(prediction: str, reference: str, example: Any) -> Exchange:
        prompt = _RUBRIC_PROMPT.format(
            rubric=rubric, question=_question(example), reference=reference, prediction=prediction
        )
        asked = [{"role": "user", "content": prompt}]
        reply = yield asked
        grade = _grade(reply)
        if grade is None:
            reply = yield [*asked, {"role": "assistant", "content": reply}, _GRADE_AGAIN]
            grade = _grade(reply, guess=True)
        if grade is None:
            raise no_verdict(grader, "gave no grade from 1 to 5", reply)
        return (grade - 1) / 4

    def metric(prediction: str, reference: str, example: Any = None) -> float:
        return ask_blocking(grader, exchange(prediction, reference, example))

    metric.judging = Judging(judge, exchange, f"the rubric {rubric!r}")  # type: ignore[attr-defined]
    return _named(name, metric)


_GRADE_AGAIN = {"role": "user", "content": "Reply with one integer from 1 to 5, nothing else."}


# a scale or a range said back ("1-5", "1 to 5", "3-4"), or the scale after a grade ("out of
# 5", "/ 5"): no grade of either end
_RANGE = re.compile(r"\b\d\s*(?:-|–|to)\s*\d\b|\bout of \d\b|/\s*\d\b", re.IGNORECASE)
# a grade named as one (``Grade: 4``, ``**Score** = 5``, ``rating 3``), not part of 4.5
_LABELLED_GRADE = re.compile(r"\b(?:grade|score|rating)\b\W{0,4}([1-5])(?![.,]?\d)", re.IGNORECASE)
# a digit 1-5 standing alone: not in 10 or 4.5
_ALONE_GRADE = re.compile(r"(?<![\d.,/])\b([1-5])\b(?![.,]\d)")


def _grade(reply: str, *, guess: bool = False) -> int | None:
    """The grade a reply gives: the last one named as a grade (a judge that reasons first
    concludes with it), else the digit 1-5 that stands alone ("4/5" and "4 out of 5" are 4).
    A decimal (4.5), a range (1-5, the scale said back) or 10 is no grade, and a reply with
    two ("it misses 2 points: 3") no clear one: the judge is asked again, and only its
    second reply is read by the first digit (``guess``)."""
    text = _RANGE.sub(" ", reply)
    named = _LABELLED_GRADE.findall(text)
    if named:
        return int(named[-1])
    found = _ALONE_GRADE.findall(text)
    if len(set(found)) == 1 or (found and guess):
        return int(found[0])
    return None


def _question(example: Any) -> str:
    """The conversation the answer ends, as the judge reads it: its system prompt too, which
    holds the instructions a rubric asks about (a format, a tone, a policy). A metric called
    with no example (``judge(prediction, reference)``) grades against the reference alone."""
    from finetune.evaluation._prompts import split_example, transcript

    if example is None:
        return "(not given: grade the answer against the reference alone)"
    return transcript(split_example(example)[0])
