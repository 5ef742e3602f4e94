"""Evaluation: statistics, metrics, predictors over real HTTP and on the tiny model, the cache."""

from __future__ import annotations

import asyncio
import gc
import html
import io
import json
import logging
import pickle
import re
import shutil
import sqlite3
import sys
import threading
import weakref
from pathlib import Path
from typing import Any

import pytest

import finetune as ft
from finetune.backends import BaseBackend
from finetune.evaluation import (
    CallablePredictor,
    EvalResult,
    HFPredictor,
    MistralPredictor,
    OpenAIPredictor,
    PredictionCache,
    TruncatedReply,
    compare_paired,
    mean_interval,
    wilson_interval,
)
from finetune.evaluation import metrics as m
from finetune.evaluation._prompts import build_prompt, shot_turns

from .conftest import WEATHER_TOOL, needs_mistralai, weather_data, weather_model
from .fakes._server import Faults
from .fakes.mistral_fake import MistralFake
from .fakes.openai_fake import OpenAIFake


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FINETUNE_CACHE_DIR", str(tmp_path / "cache"))


def _qa(n: int) -> ft.Dataset:
    return ft.Dataset.from_records(
        [
            {
                "messages": [
                    {"role": "system", "content": "Answer with the number only."},
                    {"role": "user", "content": f"What is {i} + 1?"},
                    {"role": "assistant", "content": str(i + 1)},
                ]
            }
            for i in range(n)
        ]
    )


def _answer(messages: list[dict[str, str]]) -> str:
    question = messages[-1]["content"]
    return str(int(question.split()[2]) + 1)


# -- statistics --


def test_identical_candidates_give_no_evidence() -> None:
    scores = [1.0, 0.0, 1.0, 1.0, 0.0] * 10
    result = compare_paired("a", scores, "b", list(scores))
    assert result.delta == 0 and result.low <= 0 <= result.high
    assert (result.wins, result.ties, result.losses) == (0, 50, 0)
    assert result.p_value == 1.0 and result.verdict == "no evidence"


def test_a_clearly_better_candidate_is_improved_and_its_mirror_worse() -> None:
    better = [1.0] * 40 + [0.0] * 10
    worse = [0.0] * 35 + [1.0] * 5 + [0.0] * 10
    up = compare_paired("tuned", better, "base", worse)
    assert up.verdict == "improved" and up.low > 0 and up.p_value < 0.001
    assert (up.wins, up.ties, up.losses) == (35, 15, 0)
    assert compare_paired("base", worse, "tuned", better).verdict == "worse"
    # 35 wins of the same size: the exact binomial (McNemar) figure, 2 / 2**35, no sampling
    assert up.resamples == 0 and up.p_value == pytest.approx(2 / 2**35)
    assert up.p_text == "<0.0001" and "p<0.0001" in str(up)
    exact = compare_paired("a", [1.0] * 5, "b", [0.0] * 5)
    assert exact.resamples == 0 and exact.p_text == "0.0625" and "p=0.0625" in str(exact)
    # graded wins of 35 sizes: 5000 sampled sign flips, none as extreme: a bound, said as one
    graded = [0.5 + i / 100 for i in range(35)] + [0.0] * 15
    sampled = compare_paired("tuned", graded, "base", [0.0] * 50)
    assert sampled.resamples == 5000 and sampled.p_text == "<0.0002" and "p<0.0002" in str(sampled)


def test_holm_adjusts_p_values_step_down_in_their_order() -> None:
    # by hand: 0.005 x 4, 0.01 x 3, 0.03 x 2, then 0.04 x 1 raised to the 0.06 before it
    assert ft.evaluation.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert ft.evaluation.holm([0.5, 0.9]) == [1.0, 1.0] and ft.evaluation.holm([]) == []
    assert ft.evaluation.holm([0.02]) == [0.02]


def test_a_verdict_that_does_not_hold_among_all_the_comparisons_is_named() -> None:
    """Two candidates on two metrics are four comparisons: one at p=0.0215 alone is below
    0.05 by chance more often than 1 in 20 once four are read, and the tables said so
    nowhere."""
    rows = []
    for index in range(40):
        base = 1.0 if index >= 10 else 0.0
        tuned = 1.0 if index < 9 else 0.0 if index == 39 else base  # 9 wins, 1 loss
        for candidate, exact in (("base", base), ("tuned", tuned), ("other", base)):
            row = {"prediction": "p", "reference": "r", "exact": exact, "f1": base}
            rows.append({"example": index, "candidate": candidate, **row})
    result = EvalResult(["base", "tuned", "other"], ["exact", "f1"], rows)
    first, *rest = result.compare_all()
    assert (first.a, first.metric, first.verdict, first.p_text) == (
        "tuned",
        "exact",
        "improved",
        "0.0215",
    )
    assert first.p_holm == pytest.approx(4 * first.p_value) and first.p_holm_text == "0.0859"
    assert len(rest) == 3 and all(c.p_holm == 1.0 for c in rest)
    assert result.compare("tuned", "base", "exact").p_holm is None  # alone: nothing to adjust
    text = result.to_markdown(baseline="base")
    assert "| tuned vs base | exact | +0.200 [+0.042, +0.356] | 9/30/1 | 0.0215 | 0.0859 |" in text
    says = "counting all 4 comparisons (Holm's p, below 0.05 to hold), these do not hold: "
    assert f"{says}tuned vs base on exact (improved, p 0.0215, Holm 0.0859)" in text
    view = result._repr_html_()
    assert html.escape(says) in view and "<th>p (Holm)</th>" in view
    alone = EvalResult(["base", "tuned"], ["exact"], [r for r in rows if r["candidate"] != "other"])
    (only,) = alone.compare_all("base")
    assert only.p_holm == only.p_value and "do not hold" not in alone.to_markdown("base")
    with pytest.raises(KeyError, match="no candidate 'nobody'"):
        result.compare_all("nobody")
    with pytest.raises(KeyError, match=r"no candidate 'tunde' \(did you mean 'tuned'\?\)"):
        result.compare("tunde", "base")
    assert str(result) == result.to_markdown(baseline="base")  # print(result): the table
    lone = EvalResult(["base"], ["exact"], [r for r in rows if r["candidate"] == "base"])
    assert str(lone) == lone.to_markdown() and "vs" not in str(lone)
    # an eval config of its baseline alone (one model's scores): its table had a comparison
    # table's header with no rows under it
    assert lone.to_markdown("base") == str(lone) and "comparison" not in str(lone)


def test_zero_or_one_scores_get_the_exact_sign_test_at_any_size() -> None:
    # the figures are scipy.stats.binomtest(wins, wins + losses).pvalue
    many = compare_paired("a", [1.0] * 5100 + [0.0] * 4900, "b", [0.0] * 5100 + [1.0] * 4900)
    assert many.resamples == 0 and many.p_value == pytest.approx(0.046585527704946, rel=1e-9)
    ties = [1.0] * 5  # right on both sides: no flip, no weight
    some = compare_paired("a", [1.0] * 12 + [0.0] * 18 + ties, "b", [0.0] * 12 + [1.0] * 18 + ties)
    assert some.p_value == pytest.approx(0.361594608053565, rel=1e-9)


def test_sampled_sign_flips_agree_with_every_flip_enumerated() -> None:
    from finetune.evaluation import _stats

    deltas = [0.9, -0.2, 0.35, 0.1, -0.45, 0.6, 0.05, -0.15, 0.3, 0.25, -0.05, 0.4, 0.2, -0.3]
    observed = abs(sum(deltas))
    exact = _stats._exact_sign_flip(deltas, observed)
    sampled = _stats._sampled_sign_flip(deltas, observed, 20000, seed=3)
    assert 0.05 < exact < 0.5  # a p-value where a sign error would show
    assert sampled == pytest.approx(exact, abs=0.01)  # about 4 standard errors


def test_a_p_value_does_not_change_with_the_scores_unit() -> None:
    # flips whose sums tie the observed one, but for rounding, count at any size of score
    # (latencies in milliseconds: a sum near 10,000 is off by more than 1e-12); the figure
    # is every flip enumerated in exact fractions
    deltas = [-0.7, 1.1, 0.7, -0.7, -0.2, -1.1, -0.1, 1.1, -0.2, -0.3, -0.1, -0.1]
    for unit in (1.0, 1000.0, 12345.678, 1e6):
        scaled = [d * unit for d in deltas]
        result = compare_paired("a", scaled, "b", [0.0] * len(deltas))
        assert result.p_value == pytest.approx(3386 / 4096, abs=1e-12), unit
        many = scaled * 2  # 24 deltas: the flips are sampled
        assert compare_paired("a", many, "b", [0.0] * 24).p_value == pytest.approx(
            compare_paired("a", deltas * 2, "b", [0.0] * 24).p_value, abs=1e-12
        ), unit


def test_resampled_results_are_remembered_by_the_scores_content() -> None:
    graded = [i / 50 for i in range(50)]
    first = mean_interval(graded)
    assert mean_interval(list(graded)) is first  # the same scores: not resampled again
    graded[0] = 0.5  # a result's rows edited in place: its scores are new content
    changed = mean_interval(graded)
    assert changed is not first and changed.mean > first.mean
    base = [v * 0.8 for v in graded]
    comparison = compare_paired("a", graded, "b", base, metric="f1")
    assert compare_paired("a", graded, "b", base, metric="f1") == comparison


def test_a_small_noisy_difference_is_not_called_an_improvement() -> None:
    a = [1.0, 0.0, 1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 0.0]
    b = [0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 0.0, 1.0, 1.0, 0.0]
    result = compare_paired("a", a, "b", b)
    assert result.verdict == "no evidence" and result.low < 0 < result.high
    # 3 wins and 2 losses of size 1: exact sign-flip p = P(|sum| >= 1) = 1 over 2**5 patterns
    assert result.p_value == 1.0


def test_exact_sign_flip_p_value_on_a_known_case() -> None:
    # five wins, no losses: only the all-plus and all-minus patterns reach |sum| = 5
    result = compare_paired("a", [1.0] * 5, "b", [0.0] * 5)
    assert result.p_value == pytest.approx(2 / 32)
    assert result.verdict == "no evidence"  # p = 0.0625 >= 0.05: too few examples
    assert result.too_few_to_tell and str(result).endswith(
        ": no evidence (5 differing examples cannot give p < 0.05: 6 at the least)"
    )
    six = compare_paired("a", [1.0] * 6, "b", [0.0] * 6)
    assert six.p_value == pytest.approx(2 / 64) and not six.too_few_to_tell
    assert not compare_paired("a", [1.0] * 5, "b", [1.0] * 5).too_few_to_tell  # all tied


def test_a_table_says_when_no_evidence_only_means_too_few_examples_differ() -> None:
    """Five right answers against five wrong ones read "no evidence" beside an interval that
    excludes 0, and nothing said that no five examples could ever show more."""
    data = _qa(5)
    result = ft.evaluate(
        data, {"base": lambda messages: "?", "tuned": _answer}, [m.exact_match], cache=False
    )
    note = (
        "Note: no evidence, and none possible: on these, 5 or fewer examples scored "
        "differently, and so few give no p below 0.05 whatever they show (for 5 the least is "
        "0.0625): tuned vs base on exact_match (5 differing examples); evaluate more examples "
        "(6 or more must differ; many more for a small effect)"
    )
    assert note in result.to_markdown(baseline="base").splitlines()
    assert html.escape(note.removeprefix("Note: "), quote=True) in result._repr_html_()
    more = ft.evaluate(
        _qa(8), {"base": lambda messages: "?", "tuned": _answer}, [m.exact_match], cache=False
    )
    assert "none possible" not in more.to_markdown(baseline="base")


def test_scores_of_zero_or_one_get_a_wilson_interval_that_never_claims_certainty() -> None:
    # the figures are statsmodels' proportion_confint(method="wilson")
    perfect = mean_interval([1.0] * 40)
    assert perfect.method == "wilson" and perfect.mean == 1.0 and perfect.high == 1.0
    assert perfect.low == pytest.approx(0.912378, abs=1e-6)
    some = mean_interval([1.0] * 13 + [0.0] * 47)
    assert (some.low, some.high) == pytest.approx((0.131230, 0.336200), abs=1e-6)
    assert wilson_interval(0, 1).high == pytest.approx(0.793450, abs=1e-6)
    graded = mean_interval([0.5, 1.0, 0.0, 0.75])
    assert graded.method == "bootstrap" and graded.low < graded.mean < graded.high


def test_a_wilson_interval_holds_its_proportion_to_the_last_bit() -> None:
    """10 of 10 gave a high end of 0.9999999999999999 below the mean of 1.0, and
    `EvalResult.plot()` then failed: "'yerr' must not contain negative values"."""
    for n in range(1, 201):
        for successes in range(n + 1):
            interval = wilson_interval(successes, n)
            assert interval.low <= interval.mean <= interval.high, (successes, n)
    assert wilson_interval(10, 10).high == 1.0 and wilson_interval(0, 7).low == 0.0


def _words(prediction: str, reference: str) -> float:
    return float(len(prediction.split()))


def test_plot_draws_a_perfect_candidate_and_a_graded_metric(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    user, assistant = "user", "assistant"
    rows = [
        {"messages": [{"role": user, "content": f"q{i}"}, {"role": assistant, "content": f"a{i}"}]}
        for i in range(10)
    ]
    result = ft.evaluate(
        ft.Dataset.from_records(rows),
        {"echo": lambda m: m[-1]["content"].replace("q", "a"), "fixed": lambda m: "a1"},
        metrics=[m.exact_match, m.token_f1, m.chrf],
        cache=False,
    )
    ax = result.plot()
    assert [label.get_text() for label in ax.get_xticklabels()] == result.metrics
    assert ax.get_ylim() == pytest.approx((0, 1.05))
    data = ft.Dataset.from_records(rows)
    counted = ft.evaluate(data, {"three": lambda m: "a1 a2 a3"}, [_words], cache=False)
    assert counted.plot().get_ylim() == pytest.approx((0, 3.15))  # not cut at 1.05
    ax.figure.savefig(tmp_path / "plot.png")
    assert (tmp_path / "plot.png").stat().st_size > 0


async def test_plain_functions_work_in_a_thread_one_call_at_a_time() -> None:
    """A plain function ran on the event loop itself: `aevaluate` in a web server stopped the
    server's loop while it worked, and the other candidates' requests waited on it."""
    import threading
    import time

    rows = [
        {"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": "a"}]}
        for i in range(6)
    ]
    inside, most, lock = [0], [0], threading.Lock()

    def blocking(messages: Any) -> str:
        with lock:
            inside[0] += 1
            most[0] = max(most[0], inside[0])
        time.sleep(0.1)
        with lock:
            inside[0] -= 1
        return "a"

    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticker = asyncio.create_task(tick())
    data = ft.Dataset.from_records(rows)
    candidates = {"plain": blocking, "another": lambda messages: blocking(messages)}
    result = await ft.aevaluate(data, candidates, [m.exact_match], cache=False)
    ticker.cancel()
    assert result.summary()["another"]["exact_match"].mean == 1.0
    assert ticks > 40  # about 120 while they slept 1.2 s; none when they blocked the loop
    assert most[0] == 1  # never two calls at once, of one function or two: as on the loop


async def test_the_data_and_the_cache_are_read_off_the_event_loop(tmp_path: Path) -> None:
    """`aevaluate` read the examples, the job registry and every cached answer on the event
    loop: a server's loop stopped 0.8 s for 20,000 cached answers (benchmarks/evaluate.py)."""
    import threading

    read_in: set[int] = set()

    class Watched(PredictionCache):
        def get(self, key: str) -> str | None:
            read_in.add(threading.get_ident())
            return super().get(key)

    def examples() -> Any:
        read_in.add(threading.get_ident())
        yield from _qa(4)

    cache = Watched(tmp_path / "cache.sqlite3")
    right = {"right": CallablePredictor(_answer, name="right")}
    try:
        first = await ft.aevaluate(examples(), right, "exact_match", cache=cache)
        again = await ft.aevaluate(examples(), right, "exact_match", cache=cache)
    finally:
        cache.close()
    assert first.predictions("right") == again.predictions("right") == ["1", "2", "3", "4"]
    assert len(read_in) >= 1 and threading.get_ident() not in read_in


def test_a_comparison_without_a_metric_name_reads_as_a_sentence() -> None:
    said = str(compare_paired("a", [1.0] * 5, "b", [0.0] * 5))
    assert said.startswith("a vs b: delta +1.000 ")


def test_paired_zero_or_one_scores_get_newcombes_interval() -> None:
    def paired(both: int, only_a: int, only_b: int, neither: int) -> tuple[list[float], ...]:
        a = [1.0] * (both + only_a) + [0.0] * (only_b + neither)
        b = [1.0] * both + [0.0] * only_a + [1.0] * only_b + [0.0] * neither
        return a, b

    # no correlation between the pairs (phi 0): the same interval as statsmodels'
    # confint_proportions_2indep(6, 9, 3, 9, method="newcomb") for independent samples
    uncorrelated = compare_paired("a", paired(2, 4, 1, 2)[0], "b", paired(2, 4, 1, 2)[1])
    assert uncorrelated.method == "newcombe"
    assert (uncorrelated.low, uncorrelated.high) == pytest.approx((-0.108558, 0.634207), abs=1e-6)
    # agreeing pairs narrow it: the same margins as independent samples give statsmodels'
    # (-0.087, 0.317), across 0; paired (5 wins, no loss), the interval lies above 0
    a, b = paired(14, 5, 0, 22)
    correlated = compare_paired("a", a, "b", b)
    assert correlated.low > 0 and correlated.high - correlated.low < 0.6 * (0.317 + 0.087)
    # winning on every example is evidence, not certainty: the interval keeps its width
    sweep = compare_paired("tuned", [1.0] * 60, "base", [0.0] * 60)
    assert sweep.verdict == "improved" and sweep.delta == 1.0 and 0.9 < sweep.low < 1.0
    graded = compare_paired("a", [0.5, 1.0, 0.25], "b", [0.0, 0.5, 0.25])
    assert graded.method == "bootstrap"


def test_a_result_table_shows_no_zero_width_interval_for_a_clean_sweep() -> None:
    data = _qa(20)
    result = ft.evaluate(data, {"right": _answer, "silent": lambda _: ""}, "exact_match")
    right, silent = (
        result.summary()["right"]["exact_match"],
        result.summary()["silent"]["exact_match"],
    )
    assert (right.mean, silent.mean) == (1.0, 0.0)
    assert right.low < 1.0 and silent.high > 0.0
    assert "1.000 [1.000, 1.000]" not in result.to_markdown(baseline="silent")


# -- metrics --


@pytest.mark.parametrize(
    ("metric", "prediction", "reference", "expected"),
    [
        (m.exact_match, "Paris", "Paris", 1.0),
        (m.exact_match, "paris", "Paris", 0.0),
        (m.exact(case=False, punctuation=False), " paris! ", "Paris", 1.0),
        (m.contains, "The capital is Paris.", "paris", 1.0),
        (m.regex(r"^Order \d+:"), "Order 42: shipped", "", 1.0),
        (m.json_valid, '```json\n{"a": 1}\n```', "", 1.0),
        (m.json_valid, "{'a': 1}", "", 0.0),
        # NaN and Infinity are Python's, not JSON: no strict parser (JSON.parse) takes them
        (m.json_valid, '{"score": NaN}', "", 0.0),
        (m.json_valid, "[-Infinity]", "", 0.0),
        (m.json_valid, '```JSON\n{"a": 1}\n```', "", 1.0),  # a fence's info in any case
        # a degenerate reply nested past Python's parser raised RecursionError, every
        # prediction paid for: it is no JSON, scored 0 (tool calls: no call)
        (m.json_valid, "[" * 5000, "", 0.0),
        (m.json_fields, '{"a": ' + "[" * 5000, '{"a": 1}', 0.0),
        (m.tool_calls_match, "f(" + "[" * 5000 + ")", 'f({"a": 1})', 0.0),
        (m.json_fields, '{"a": 1, "b": NaN}', '{"a": 1, "b": 2}', 0.0),
        (m.json_fields, '{"a": 1, "b": {"c": 2}}', '{"a": 1, "b": {"c": 3}}', 0.5),
        (m.json_fields, '{"urgent": 1, "n": 2.0}', '{"urgent": true, "n": 2}', 0.5),
        (m.json_fields, '{"tags": [1, false], "x": {}}', '{"tags": [true, 0], "x": {}}', 0.5),
        (m.json_fields, '{"a": null}', '{"a": null, "b": null}', 0.5),
        # a key holding a dot is no path: {"a.b": 1} has no field "b" of "a"
        (m.json_fields, '{"a.b": 1, "c": 2}', '{"a": {"b": 1}, "c": 2}', 0.5),
        (m.token_f1, "the cat sat", "the cat sat down", pytest.approx(6 / 7)),
        (m.token_f1, "", "", 1.0),
        (m.token_f1, "¿Qué hora es?", "qué hora es", 1.0),  # "¿qué" was another word
        (m.token_f1, "He said “yes”.", "he said yes", 1.0),
        # no spaces between words: each character is one, where the whole reply was one word
        (m.token_f1, "北京是首都", "北京是中国的首都。", pytest.approx(10 / 13)),
        (m.token_f1, "首都は東京です", "東京", pytest.approx(4 / 9)),
        (m.token_f1, "GPT-4は強い", "GPT-4", pytest.approx(2 / 5)),
        (m.exact(case=False, punctuation=False), "«Bonjour» !", "bonjour", 1.0),
    ],
)
def test_metrics_on_fixtures(metric: Any, prediction: str, reference: str, expected: Any) -> None:
    assert metric(prediction, reference, None) == expected


def test_json_schema_bleu_and_chrf() -> None:
    pytest.importorskip("jsonschema")
    pytest.importorskip("sacrebleu")
    schema = {"type": "object", "required": ["status"], "properties": {"status": {"enum": ["ok"]}}}
    check = m.json_schema(schema)
    assert check('{"status": "ok"}', "", None) == 1.0
    assert check('{"status": "bad"}', "", None) == 0.0
    assert m.bleu("the cat sat on the mat", "the cat sat on the mat", None) == pytest.approx(1.0)
    assert m.bleu("a0", "a0") == 1.0  # exactly: sacrebleu gives 100.00000000000004
    assert 0 < m.chrf("the cat sat", "the cat sat on the mat", None) < 1
    # Chinese: one character apart scored 0 (the reply one token at sacrebleu's default)
    assert m.bleu("北京是中国的首都", "北京是中国的首都。") == pytest.approx(0.8825, abs=1e-4)
    assert m.bleu("the cat sat on the mat", "the cat sat on a mat") == pytest.approx(
        0.5373, abs=1e-4
    )


@pytest.mark.parametrize(
    ("schema", "where"),
    [({"type": "objekt"}, "at type"), ({"type": "object", "required": "status"}, "at required")],
)
def test_a_json_schema_that_is_not_valid_is_refused_before_any_model_is_asked(
    schema: dict[str, Any], where: str
) -> None:
    """``"required": "status"`` scored every answer 0, and ``"objekt"`` raised once every
    prediction was made."""
    pytest.importorskip("jsonschema")
    with pytest.raises(ValueError, match=f"json_schema: the schema is not valid {where}"):
        m.json_schema(schema)


def test_a_json_schema_is_read_under_the_draft_it_names() -> None:
    """A draft-04 schema's ``exclusiveMinimum: true`` was read under 2020-12's rules."""
    pytest.importorskip("jsonschema")
    schema = {
        "$schema": "http://json-schema.org/draft-04/schema#",
        "properties": {"n": {"type": "integer", "minimum": 0, "exclusiveMinimum": True}},
    }
    check = m.json_schema(schema)
    assert (check('{"n": 0}', ""), check('{"n": 1}', "")) == (0.0, 1.0)


def test_custom_metric_and_embedding_similarity() -> None:
    def length_ok(prediction: str, reference: str, example: Any) -> float:
        return float(len(prediction) <= 3)

    similar = m.embedding_similarity(
        lambda texts: [[1.0, 0.0] if "a" in t else [0.0, 1.0] for t in texts]
    )
    result = ft.evaluate(_qa(6), {"oracle": _answer}, [length_ok, similar], cache=False)
    assert result.metrics == ["length_ok", "embedding_similarity"]
    assert result.summary()["oracle"]["length_ok"].mean == 1.0
    vector = [0.9948195629497427, 0.9493954730932436, 0.5441770474293208, 0.4448541887258536]
    scaled = m.embedding_similarity(lambda texts: [vector, [x * 2.682407416493281 for x in vector]])
    assert scaled("a", "b", None) == 1.0  # the cosine of these is 1.0000000000000002


def test_an_embedding_model_is_given_each_distinct_text_once_in_batches() -> None:
    """Each row asked the embedding function for its two texts: 18 calls for 6 examples and
    3 candidates, the references embedded once per candidate."""
    calls: list[list[str]] = []

    def embed(texts: list[str]) -> list[list[float]]:
        calls.append(texts)
        return [[1.0, 0.0] if t in {"1", "2", "3", "4", "5", "6"} else [0.0, 1.0] for t in texts]

    similar = m.embedding_similarity(embed, batch_size=4)
    candidates = {"oracle": _answer, "again": _answer, "zero": lambda _: "0"}
    result = ft.evaluate(_qa(6), candidates, [similar], cache=False)
    assert result.scores("oracle", "embedding_similarity") == [1.0] * 6
    assert result.scores("zero", "embedding_similarity") == [0.0] * 6
    embedded = [text for call in calls for text in call]
    assert sorted(embedded) == ["0", "1", "2", "3", "4", "5", "6"]  # each once
    assert [len(call) for call in calls] == [4, 3]
    assert similar("1", "0", None) == 0.0 and len(calls) == 3  # on its own: its two texts

    def short(texts: list[str]) -> list[list[float]]:
        return [[1.0]] * (len(texts) - 1)

    with pytest.raises(ValueError, match="returned 3 vectors for 4 texts") as caught:
        ft.evaluate(_qa(6), candidates, [m.embedding_similarity(short, batch_size=4)], cache=False)
    assert caught.value.__notes__ == [
        "while metric 'embedding_similarity' scored every answer at once"
    ]
    with pytest.raises(ValueError, match="batch_size is a whole number of texts from 1"):
        m.embedding_similarity(embed, batch_size=0)


def _scored_in_one_call(seen: list[int]) -> Any:
    """A metric ``longer`` that fails when asked one answer at a time; its ``batch`` scores
    every answer at once (1 where the prediction is longer than the reference), adding to
    ``seen`` how many it was given."""

    def longer(prediction: str, reference: str, example: Any) -> float:
        raise AssertionError("scored one at a time")

    def longer_batch(predictions: list[str], references: list[str], examples: list[Any]) -> Any:
        seen.append(len(predictions))
        return [float(len(p) > len(r)) for p, r in zip(predictions, references, strict=True)]

    longer.batch = longer_batch  # type: ignore[attr-defined]
    return longer


def test_a_metric_of_ones_own_may_score_every_answer_in_one_call() -> None:
    seen: list[int] = []
    longer = _scored_in_one_call(seen)
    result = ft.evaluate(_qa(4), {"a": _answer, "b": lambda _: "1000"}, [longer], cache=False)
    assert seen == [8] and result.scores("b", "longer") == [1.0, 1.0, 1.0, 1.0]
    longer.batch = lambda predictions, references, examples: [1.0]  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="metric 'longer' scored 1 answers of 8"):
        ft.evaluate(_qa(4), {"a": _answer, "b": lambda _: "1000"}, [longer], cache=False)


def test_each_kind_of_exact_match_has_a_column_of_its_own() -> None:
    """``exact(case=False)`` and ``exact(punctuation=False)`` were both
    ``exact_match_normalized``, and ``exact(whitespace=False)`` was ``exact_match``: two of
    them in one evaluation were refused as one name twice, and a saved result's column did
    not say which it was."""
    import itertools

    kinds = [
        m.exact(case=case, whitespace=whitespace, punctuation=punctuation)
        for case, whitespace, punctuation in itertools.product([True, False], repeat=3)
    ]
    names = [kind.__name__ for kind in kinds]
    assert len(set(names)) == 8 and names[0] == "exact_match"
    assert m.exact(case=False, punctuation=False).__name__ == "exact_match_normalized"
    assert m.exact(case=False).__name__ == "exact_match_nocase"
    result = ft.evaluate(_qa(2), {"oracle": _answer}, kinds, cache=False)
    assert result.metrics == names


# "3" and "0.5" were taken as 3.0 and 0.5: a metric that returns the answer's text scored it
@pytest.mark.parametrize("score", [None, "good", float("nan"), float("inf"), "-inf", "3", "0.5"])
def test_a_metric_that_returns_no_number_is_named_with_its_candidate(score: Any) -> None:
    def broken(prediction: str, reference: str, example: Any) -> Any:
        return score if prediction == "2" else 1.0

    with pytest.raises(ValueError, match=r"metric 'broken' returned .* candidate 'oracle'"):
        ft.evaluate(_qa(6), {"oracle": _answer}, [m.exact_match, broken], cache=False)
    assert ft.evaluate(_qa(2), {"oracle": _answer}, [lambda p, r, e: True], cache=False).rows


@pytest.mark.parametrize("setting", ["max_concurrency", "max_attempts"])
def test_settings_that_would_hang_or_never_ask_are_refused(setting: str) -> None:
    for value in (0, -1):  # max_concurrency=0 waited forever on an empty semaphore
        with pytest.raises(ValueError, match=f"{setting} must be a whole number of 1 or more"):
            ft.evaluate(
                _qa(2), {"oracle": _answer}, [m.exact_match], cache=False, **{setting: value}
            )


def test_counts_computed_with_numpy_are_taken() -> None:
    np = pytest.importorskip("numpy")
    base = ft.ModelRef(backend="fake", name="m")
    assert len(base.with_few_shot(_qa(6), k=np.int64(3)).few_shot or []) == 3
    settings = {"max_concurrency": np.int64(2), "max_attempts": np.int64(1)}
    result = ft.evaluate(_qa(2), {"oracle": _answer}, [m.exact_match], cache=False, **settings)
    assert result.summary()["oracle"]["exact_match"].mean == 1.0
    numbers = _qa(2)  # a function replying with NumPy's number was refused as no reply
    replies = {"int": lambda messages: np.int64(4), "float": lambda messages: np.float32(0.5)}
    answers = ft.evaluate(numbers, replies, [m.exact_match], cache=False)
    assert answers.predictions("int") == ["4", "4"]
    assert answers.predictions("float") == ["0.5", "0.5"]


def test_a_job_is_a_candidate_as_the_model_it_made() -> None:
    """``{"tuned": job}`` is what one writes after ``job = tuner.fit(...)``; it was a
    TypeError ("a candidate is a ModelRef, a Predictor or a function, not JobHandle")."""
    from finetune.testing import FakeBackend

    tuner = ft.Tuner(FakeBackend(running=0.2), model="base", registry=False)
    train, held = _qa(16).split(0.25)
    job = tuner.fit(train)
    with pytest.raises(ft.FinetuneError, match=rf"^candidate 'tuned' is job {job.id}, which is "):
        ft.evaluate(held, {"tuned": job}, m.exact_match, cache=False)
    job.wait(poll_interval=0.05)
    as_job = ft.evaluate(held, {"tuned": job, "record": job.job}, m.exact_match, cache=False)
    as_model = ft.evaluate(held, {"tuned": job.model}, m.exact_match, cache=False)
    assert as_job.predictions("tuned") == as_job.predictions("record")
    assert as_job.predictions("tuned") == as_model.predictions("tuned")
    for given in (tuner, ft.AsyncTuner("fake", model="base", registry=False)):  # not its model
        with pytest.raises(TypeError, match=r"not (Async)?Tuner: a tuner's untuned model is "):
            ft.evaluate(held, {"base": given}, m.exact_match, cache=False)


def test_a_job_named_by_its_id_is_the_model_it_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An eval config's ``tuned = "hf:hfjob-..."``, the job as ``finetune train`` printed it,
    asked a model of that name: "not a model folder or .gguf file here"."""
    from finetune.testing import FakeBackend

    monkeypatch.setenv("FINETUNE_REGISTRY", str(tmp_path / "jobs.sqlite3"))
    train, held = _qa(16).split(0.25)
    running = ft.Tuner(FakeBackend(running=60), model="base").fit(train, suffix="slow")
    with pytest.raises(ft.FinetuneError) as refused:
        ft.evaluate(held, {"tuned": f"fake:{running.id}"}, m.exact_match, cache=False)
    said = str(refused.value).replace(running.job.status.value, "STATUS")
    assert said == (
        f"candidate 'tuned' is job fake:{running.id}, which had made no model when this machine "
        f"last saw it (STATUS): `finetune wait fake:{running.id}` waits for it and reads it again"
    )
    asked = ft.ModelRef(backend="fake", name=running.id)  # asked, the job is no candidate
    with pytest.raises(ft.FinetuneError) as refused:
        asked.ask("Where is my order?")
    assert str(refused.value).replace(running.job.status.value, "STATUS") == (
        f"job fake:{running.id} had made no model when this machine last saw it (STATUS): "
        f"`finetune wait fake:{running.id}` waits for it and reads it again"
    )
    running.cancel()  # it will make none: nothing to wait for
    with pytest.raises(ft.FinetuneError) as refused:
        ft.evaluate(held, {"tuned": f"fake:{running.id}"}, m.exact_match, cache=False)
    assert str(refused.value) == (
        f"candidate 'tuned' is job fake:{running.id}, which ended cancelled and made no model "
        f"(`finetune status fake:{running.id}` shows it): evaluate the model of another job"
    )
    with pytest.raises(ft.FinetuneError) as refused:
        asked.ask("Where is my order?")
    assert str(refused.value) == (
        f"job fake:{running.id} ended cancelled and made no model "
        f"(`finetune status fake:{running.id}` shows it): ask the model of another job"
    )
    job = ft.Tuner("fake", model="base").fit(train).wait(poll_interval=0.05)
    seen = held + train[:2]
    by_id = ft.evaluate(seen, {"tuned": f"fake:{job.id}"}, m.exact_match, cache=False)
    by_model = ft.evaluate(seen, {"tuned": job.model}, m.exact_match, cache=False)
    assert by_id.predictions("tuned") == by_model.predictions("tuned") != []
    assert by_id.trained_on == by_model.trained_on == {"tuned": [4, 5]}  # known by its job
    named = ft.ModelRef(backend="fake", name="base")  # a model that is no job: as it is
    assert ft.evaluate(held, {"b": named}, m.exact_match, cache=False).predictions("b") != []


def test_nothing_to_evaluate_is_refused() -> None:
    """Each says what is missing: no example (a holdout that ``excluding`` emptied was told
    to "give at least one example and one candidate", with candidates given), or no
    candidate."""
    with pytest.raises(ValueError, match="nothing to evaluate: the data given holds no example"):
        ft.evaluate([], {"oracle": _answer}, [m.exact_match])
    held = _qa(3)
    emptied = held.excluding(held)
    with pytest.raises(ValueError) as refused:
        ft.evaluate(emptied, {"oracle": _answer}, [m.exact_match])
    assert str(refused.value) == f"nothing to evaluate: {emptied!r} holds no example"
    assert "0 examples" in repr(emptied)
    with pytest.raises(ValueError, match=r"^nothing to evaluate: give at least one candidate, "):
        ft.evaluate(_qa(3), {}, [m.exact_match])


@pytest.mark.parametrize(
    ("backend", "title"),
    [
        ("openai", "OpenAI"),
        ("mistral", "Mistral"),
        ("together", "Together"),
        ("fireworks", "Fireworks"),
    ],
)
def test_a_hosted_model_without_a_key_is_refused_before_anything_is_asked(
    backend: str, title: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """OpenAI's and Mistral's models were asked with no key at all: a connection error here,
    and at the provider a 401 once the run had begun; Together's and Fireworks' were refused
    at once. A server of one's own, asked through the openai backend, may take none."""
    from finetune.backends import backend_class

    factory = backend_class(backend)
    for variable in (factory.key_variable, factory.url_variable):
        monkeypatch.delenv(variable, raising=False)
    refused = rf"^\[{backend}\] asking {title}'s models needs a key: set {factory.key_variable}, "
    with pytest.raises(ft.AuthenticationError, match=refused):
        ft.ModelRef(backend=backend, name="m").ask("hi")
    answered = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hi"}]
    data = ft.Dataset.from_records([{"messages": answered}])
    with pytest.raises(ft.AuthenticationError, match=refused):
        ft.evaluate(data, {"m": f"{backend}:m"}, "exact_match", cache=False)
    if backend == "openai":
        with OpenAIFake() as fake:
            fake.api_key = "none"  # a server of one's own that takes no key
            mine = {"m": {"base_url": fake.base_url}}
            result = ft.evaluate(data, {"m": "openai:m"}, "exact_match", predictor_options=mine)
        assert result.predictions("m") == ["echo: hi"] and len(fake.requests) == 1


def test_a_hosted_few_shot_prompt_over_the_context_names_its_shots(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """OpenAI's refusal of a prompt over the context said to reduce the messages; a few-shot
    candidate's shots are in every one of them, which the error now says."""
    with OpenAIFake() as fake:
        fake.context_tokens = 200
        monkeypatch.setenv("OPENAI_API_KEY", fake.api_key)
        monkeypatch.setenv("OPENAI_BASE_URL", fake.base_url)
        wordy = [{"role": "user", "content": "word " * 80}, {"role": "assistant", "content": "ok"}]
        shots = [{"messages": wordy}] * 3
        base = ft.ModelRef(backend="openai", name="gpt-4.1-mini")
        with pytest.raises(ft.InvalidRequestError, match="maximum context length") as caught:
            ft.evaluate(
                _qa(2), {"shots": base.with_few_shot(shots, k=3)}, ["exact_match"], cache=False
            )
        assert ft.evaluate(_qa(2), {"base": base}, ["exact_match"], cache=False).notes == []
    assert caught.value.__notes__[-1] == (
        "its 3 few-shot examples are in each prompt: fewer leave room"
    )


def test_a_model_named_by_its_text_is_that_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """``"openai:ft:gpt-4.1:acme::x"``, ``str(ref)`` and an eval config's form, was a
    ``TypeError`` showing how to write the ``ModelRef``, in ``evaluate`` and in a judge."""
    with OpenAIFake() as fake:
        fake.chat_responder = lambda model, messages: "Grade: 5" if model == "gpt-4.1" else model
        monkeypatch.setenv("OPENAI_API_KEY", fake.api_key)
        monkeypatch.setenv("OPENAI_BASE_URL", fake.base_url)
        judge = m.llm_judge("openai:gpt-4.1")
        result = ft.evaluate(_qa(2), {"tuned": "openai:ft:gpt-4.1:acme::x"}, judge, cache=False)
        asked = [r.body["model"] for r in fake.requests if r.path.endswith("/chat/completions")]
    assert result.predictions("tuned") == ["ft:gpt-4.1:acme::x"] * 2
    assert result.scores("tuned", "llm_judge") == [1.0, 1.0]
    assert sorted(asked) == ["ft:gpt-4.1:acme::x"] * 2 + ["gpt-4.1"] * 2
    from finetune.evaluation._predictors import model_named

    assert model_named("gguf:/models/m.gguf") == ft.ModelRef.gguf("/models/m.gguf")
    assert model_named(str(ft.ModelRef(backend="hf", name="org/m"))) == ft.ModelRef(
        backend="hf", name="org/m"
    )
    says = r'given as text is "backend:model", .* not \'ft:gpt-4.1:acme::x\'; or ft.ModelRef\('
    with pytest.raises(TypeError, match=says):  # no backend is named "ft"
        ft.evaluate(_qa(3), {"tuned": "ft:gpt-4.1:acme::x"}, [m.exact_match])
    with pytest.raises(TypeError, match=r"ft.ModelRef\(backend=\.\.\., name='base'\)"):
        ft.evaluate(_qa(3), {"base": "base"}, [m.exact_match])
    with pytest.raises(ValueError, match=r"is ft.ModelRef.openai_compatible\(base_url, 'm'\)"):
        ft.evaluate(_qa(3), {"served": "openai-compatible:m"}, [m.exact_match])
    with pytest.raises(TypeError) as rubric_first:  # it was "a candidate given as text is ..."
        m.llm_judge("Is the answer polite?")
    assert str(rubric_first.value).startswith('a judge given as text is "backend:model"')
    assert str(rubric_first.value).endswith("(the judge comes first, then the rubric)")
    with pytest.raises(TypeError, match=r"^a judge is a ModelRef or its"):
        ft.evaluation.judge_pairwise(result, _qa(2), "tuned", "tuned", judge=3)


@pytest.mark.parametrize(
    ("name", "error", "says"),
    [
        (1, TypeError, r"a candidate's name is text, not int 1"),
        (("a", "b"), TypeError, r"a candidate's name is text, not tuple \('a', 'b'\)"),
        ("  ", ValueError, r"a candidate's name is blank \('  '\)"),
    ],
)
def test_a_candidate_not_named_by_text_is_refused_before_anything_is_asked(
    name: Any, error: type[Exception], says: str
) -> None:
    """A name of 1 was asked every example and then broke to_markdown; a tuple came back
    from to_json as a list; a blank one headed an empty row."""
    asked: list[Any] = []

    def counting(messages: list[dict[str, str]]) -> str:
        asked.append(messages)
        return "2"

    with pytest.raises(error, match=says):
        ft.evaluate(_qa(3), {name: counting}, [m.exact_match], cache=False)
    assert asked == []


def test_candidates_given_as_a_list_are_refused_as_such() -> None:
    """A list's functions were read as names: "a candidate's name is text, not function"."""
    with pytest.raises(TypeError, match=r"^candidates is a dict of names to candidates, not list"):
        ft.evaluate(_qa(3), [_answer], [m.exact_match], cache=False)  # type: ignore[arg-type]


def test_a_response_template_the_parser_cannot_take_is_refused_at_once() -> None:
    """It was read on the first tool call, after the model had answered."""
    pytest.importorskip("transformers")
    for given, says in (("chatml", "must be a dict, got str"), ({"nope": 1}, "Unknown keys")):
        with pytest.raises(ft.InvalidRequestError, match=says) as refused:
            HFPredictor("some/model", response_template=given)  # type: ignore[arg-type]
        assert refused.value.param == "response_template"
    local = {"l": ft.ModelRef(backend="hf", name="some/model")}
    options = {"l": {"response_template": {"nope": 1}}}
    with pytest.raises(ft.InvalidRequestError, match="response_template: Unknown keys"):
        ft.evaluate(_qa(3), local, m.exact_match, predictor_options=options)


def test_predictor_options_for_no_candidate_are_refused_before_anything_is_asked() -> None:
    """A misspelt candidate name would leave its options unused without a word."""
    asked: list[Any] = []

    def counting(messages: list[dict[str, str]]) -> str:
        asked.append(messages)
        return "2"

    with pytest.raises(
        ValueError, match=r"names no candidate: 'tunde'; the candidates are 'tuned'"
    ):
        ft.evaluate(
            _qa(3),
            {"tuned": counting},
            [m.exact_match],
            cache=False,
            predictor_options={"tunde": {"max_new_tokens": 8}},
        )
    assert asked == []


def test_a_models_setting_given_to_evaluate_is_shown_where_it_goes() -> None:
    """``ft.evaluate(..., max_tokens=20)`` was ``aevaluate() got an unexpected keyword
    argument``, naming a function the user never called."""
    asked: list[Any] = []
    candidates = {"base": asked.append, "tuned": asked.append}
    takes = "it takes ['cache', 'max_attempts', 'max_concurrency', 'predictor_options', 'progress']"
    cases = {
        "max_tokens": " (max_tokens is a model's own setting: predictor_options={'base': "
        "{'max_tokens': 20}, 'tuned': {'max_tokens': 20}})",
        "max_concurency": " (did you mean 'max_concurrency'?)",
        "verbose": "",
    }
    for name, hint in cases.items():
        said = f"evaluate() got unexpected keyword argument(s) [{name!r}]{hint}; {takes}"
        with pytest.raises(TypeError, match=re.escape(said)):
            ft.evaluate(_qa(3), candidates, m.exact_match, **{name: 20})  # type: ignore[misc]
    assert asked == []


def test_a_predictor_option_its_predictor_does_not_take_names_the_candidate() -> None:
    base = ft.ModelRef(backend="fake", name="base")
    said = r"^predictor_options of candidate 'b': .*'namespase'(\. Did you mean .*)?$"  # 3.13
    with pytest.raises(ValueError, match=said):
        ft.evaluate(_qa(3), {"b": base}, m.exact_match, predictor_options={"b": {"namespase": 1}})
    local = ft.ModelRef(backend="hf", name="some/model")  # OpenAI's name for the setting
    with pytest.raises(ValueError) as refused:
        ft.evaluate(_qa(3), {"l": local}, m.exact_match, predictor_options={"l": {"max_tokens": 8}})
    assert str(refused.value) == (
        "predictor_options of candidate 'l': HFPredictor takes no option 'max_tokens' (did you "
        "mean 'max_new_tokens'?); its options are max_new_tokens, batch_size, seed, device, "
        "trust_remote_code, chat_template, response_template"
    )

    class Broken(BaseBackend):
        name = "broken-predictor-for-test"

        @classmethod
        def predictor(cls, model: str, **options: Any) -> ft.evaluation.Predictor:
            raise TypeError("bad argument of its own")

    ft.register_backend(Broken.name, Broken)
    broken = {"b": ft.ModelRef(backend=Broken.name, name="m")}
    with pytest.raises(TypeError, match="bad argument of its own"):  # not an option: as it is
        ft.evaluate(_qa(3), broken, m.exact_match, predictor_options={"b": {"seed": 1}})


@pytest.mark.parametrize(
    ("candidate", "options", "says"),
    [
        (
            "local",
            {"max_new_tokens": 0},
            "max_new_tokens must be a whole number of 1 or more, not 0",
        ),
        ("local", {"batch_size": 0}, "batch_size must be a whole number of 1 or more, not 0"),
        (
            "served",
            {"max_tokens": "64"},
            "max_tokens must be a whole number of 1 or more, not '64'",
        ),
        ("served", {"temperature": -1}, "temperature is a number of 0 or more, not -1"),
    ],
)
def test_a_predictor_setting_out_of_range_names_the_candidate_before_anything_is_asked(
    candidate: str, options: dict[str, Any], says: str
) -> None:
    """batch_size=0 failed in range() and max_new_tokens=0 in generate(), once loaded."""
    refs = {
        "local": ft.ModelRef(backend="hf", name="/no/model/needed/yet"),
        "served": ft.ModelRef.openai_compatible("http://127.0.0.1:9/v1", "m", api_key="k"),
    }
    with pytest.raises(ValueError, match=f"^candidate '{candidate}': {says}$"):
        ft.evaluate(
            _qa(2),
            {candidate: refs[candidate]},
            m.exact_match,
            cache=False,
            predictor_options={candidate: options},
        )


def test_examples_with_no_answer_are_refused_for_metrics_that_compare_with_it() -> None:
    """Scored against an empty reference, a table would mean nothing, and look as if it did."""
    asked: list[Any] = []

    def answer(messages: list[dict[str, str]]) -> str:
        asked.append(messages)
        return '{"ok": true}'

    rows = [
        {"messages": [{"role": "user", "content": "q1"}, {"role": "assistant", "content": "a"}]},
        {"messages": [{"role": "user", "content": "q2"}]},
        {"messages": [{"role": "user", "content": "q3"}, {"role": "assistant", "content": " "}]},
    ]
    data = ft.Dataset.from_records(rows, kind="chat")
    with pytest.raises(ValueError, match=r"^the examples at index 1, 2 \(2 of 3\) end with no "):
        ft.evaluate(data, {"a": answer}, [m.json_valid, m.token_f1, m.exact(case=False)])
    with pytest.raises(ValueError, match="and token_f1, exact_match_normalized compare the "):
        ft.evaluate(data, {"a": answer}, [m.token_f1, m.exact(case=False, punctuation=False)])
    assert asked == []

    def custom(prediction: str, reference: str, example: Any = None) -> float:
        return float(prediction == reference)

    needs = [m.json_valid, m.regex("ok"), custom]  # a custom metric compares when it says so
    result = ft.evaluate(data, {"a": answer}, needs, cache=False)
    assert result.summary()["a"]["json_valid"].mean == 1.0
    custom.needs_reference = True  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="and custom compares the prediction with it"):
        ft.evaluate(data, {"a": answer}, needs, cache=False)
    assert [name for name in m.READY if m.needs_reference(getattr(m, name))] == [
        "bleu",
        "chrf",
        "contains",
        "exact_match",
        "json_fields",
        "token_f1",
        "tool_calls_match",
        "tool_names_match",
    ]


@needs_mistralai
def test_tool_calling_is_evaluated_over_http() -> None:
    tools_metrics = [m.exact_match, m.tool_calls_match, m.tool_names_match]
    with OpenAIFake(faults=Faults(rate=0.2, kinds=("429", "503"), seed=4)) as fake:
        fake.chat_responder = weather_model
        options = {"api_key": fake.api_key, "base_url": fake.base_url}
        candidates = {
            "tuned": ft.ModelRef(backend="openai", name="ft:gpt-4.1-mini:acme::w"),
            "base": ft.ModelRef(backend="openai", name="gpt-4.1-mini"),
        }
        result = ft.evaluate(
            weather_data(6),
            candidates,
            tools_metrics,
            predictor_options={"tuned": options, "base": options},
            cache=False,
        )
        sent = [r.body for r in fake.requests if r.path.endswith("/chat/completions")]
    assert all(body["tools"] == [WEATHER_TOOL] for body in sent)
    followed = next(body for body in sent if body["messages"][-1]["role"] == "tool")
    assert followed["messages"][1]["tool_calls"][0]["id"] == followed["messages"][2]["tool_call_id"]
    assert result.predictions("tuned")[:2] == [
        'get_weather({"city": "City0"})',
        "It is 0 C in City0.",
    ]
    assert result.summary()["tuned"]["tool_calls_match"].mean == 1.0
    assert result.scores("base", "tool_calls_match") == [0.0, 1.0] * 6  # text where text is due
    assert result.compare("tuned", "base", "exact_match").verdict == "improved"
    with MistralFake() as mistral:
        mistral.chat_responder = weather_model
        predictor = MistralPredictor(
            "ft:open-mistral-nemo:w", api_key=mistral.api_key, server_url=mistral.base_url
        )
        again = ft.evaluate(weather_data(2), {"tuned": predictor}, tools_metrics, cache=False)
        for request in mistral.requests:  # mistralai before 1.6 adds "description": ""
            [function] = [tool["function"] for tool in request.body["tools"]]
            sent = {
                key: value for key, value in function.items() if (key, value) != ("description", "")
            }
            assert sent == WEATHER_TOOL["function"]
    assert again.summary()["tuned"]["tool_calls_match"].mean == 1.0


def test_an_image_is_sent_with_its_question_and_refused_to_a_text_only_candidate(
    tiny_base: str,
) -> None:
    photo = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
    rows = [
        {
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": f"Cat {i}?"}, photo]},
                {"role": "assistant", "content": "yes"},
            ]
        }
        for i in range(3)
    ]
    plain = {
        "messages": [{"role": "user", "content": "Plain?"}, {"role": "assistant", "content": "no"}]
    }
    data = ft.Dataset.from_records([*rows, plain])
    with OpenAIFake() as fake:
        fake.chat_responder = lambda model, messages: "yes"
        options = {"api_key": fake.api_key, "base_url": fake.base_url}
        vision = ft.ModelRef(backend="openai", name="gpt-4.1-mini")
        result = ft.evaluate(
            data,
            {"vision": vision},
            m.exact_match,
            predictor_options={"vision": options},
            cache=False,
        )
        sent = [r.body["messages"] for r in fake.requests if r.path.endswith("/completions")]
    assert all([row["messages"][0]] in sent for row in rows)  # the image beside its text
    assert [{"role": "user", "content": "Plain?"}] in sent and len(sent) == 4  # in any order
    assert result.scores("vision", "exact_match") == [1.0, 1.0, 1.0, 0.0]
    seen: list[Any] = []
    ft.evaluate(
        data, {"mine": lambda messages: seen.append(messages) or "yes"}, m.exact_match, cache=False
    )
    assert seen[0][0]["content"][1] == photo  # a function is given the parts too
    local = ft.ModelRef(backend="hf", name=tiny_base)
    keyed = {"vision": {"api_key": "sk-test"}}  # refused before anything is asked
    with pytest.raises(
        ValueError,
        match=r"^candidate 'local' \(HFPredictor\) reads text only, and the example at index "
        r"0 shows an image .*3 of 4 do: index 0, 1, 2\): it would answer without the image",
    ):
        ft.evaluate(
            data, {"vision": vision, "local": local}, m.exact_match, predictor_options=keyed
        )
    shown = local.with_few_shot(ft.Dataset.from_records(rows), k=2)  # the shots show images
    with pytest.raises(ValueError, match=r"its few-shot prompt's shot 0 shows an image"):
        ft.evaluate(ft.Dataset.from_records([plain]), {"shown": shown}, m.exact_match)


def test_tool_calls_are_scored_as_calls() -> None:
    text = ft.evaluation.format_tool_calls(
        [
            {"function": {"name": "f", "arguments": '{"b": 2.0, "a": [1, true]}'}},
            {"name": "g", "arguments": ""},
        ]
    )
    assert text == 'f({"a": [1, true], "b": 2.0})\ng({})'
    assert ft.evaluation.read_tool_calls(text) == [("f", {"a": [1, True], "b": 2.0}), ("g", {})]
    assert ft.evaluation.read_tool_calls("Call(me) maybe") is None
    assert ft.evaluation.read_tool_calls("See f(later)") is None  # no JSON inside: text
    swapped = 'g({})\nf({"a": [1, true], "b": 2})'  # another order, 2 for 2.0
    assert m.tool_calls_match(swapped, text) == 1.0
    assert m.tool_calls_match('g({})\nf({"a": [true, true], "b": 2})', text) == 0.0
    assert m.tool_calls_match('f({"a": [1, 1], "b": 2})\ng({})', text) == 0.0  # 1 is no true
    assert m.tool_names_match('g({})\nf({"a": 0})', text) == 1.0
    assert m.tool_names_match('f({"a": 0})', text) == 0.0
    assert m.tool_calls_match("It rains.", "It is sunny.") == 1.0  # rightly no call
    assert m.tool_calls_match("f({})", "It is sunny.") == 0.0
    broken = ft.evaluation.format_tool_calls([{"name": "f", "arguments": '{"city": "Par'}])
    assert broken == 'f("{\\"city\\": \\"Par")' and m.tool_names_match(broken, "f({})") == 1.0


def test_tool_use_is_asked_only_of_predictors_that_take_tools() -> None:
    """Sent as text turns, a tool call would become an empty assistant turn and a tool result
    an answer to nothing (a provider refuses it): the scores would measure another task."""
    asked: list[Any] = []

    def text_only(messages: list[dict[str, str]]) -> str:
        asked.append(messages)
        return "a"

    def with_tools(messages: list[dict[str, Any]], tools: Any = None) -> Any:
        asked.append(tools)
        return [{"name": "get_weather", "arguments": {"city": "City0"}}]

    data = weather_data(2)
    with pytest.raises(
        ValueError,
        match=r"^candidate 'plain' \(CallablePredictor\) takes no tools, "
        r"and the example at index 0 uses them \(messages\[1\]\.tool_calls; 4 of 4 ",
    ):
        ft.evaluate(data, {"calls": with_tools, "plain": text_only}, m.exact_match, cache=False)
    fake = ft.ModelRef(backend="fake", name="base")
    with pytest.raises(ValueError, match=r"candidate 'fake' \(FakePredictor\) takes no tools"):
        ft.evaluate(data, {"fake": fake}, m.exact_match, cache=False)
    assert asked == []
    result = ft.evaluate(data, {"calls": with_tools}, m.tool_calls_match, cache=False)
    assert result.scores("calls", "tool_calls_match") == [1.0, 0.0, 0.0, 0.0]
    assert asked == [[WEATHER_TOOL]] * 4


def test_shots_that_use_tools_are_shown_in_the_system_turn() -> None:
    """A shot that calls a tool cannot be an earlier turn: a call wants its result before the
    next question, and a shot that ends on its call has none. Such shots were refused, so a
    tool-calling fine-tune had no few-shot baseline; they are shown as transcripts in the
    system turn, and the example's own tools and turns are sent as they are."""
    data = list(weather_data(3))
    shots, held = data[4:], data[:2]  # City2's two rows shown, City0's two evaluated
    with OpenAIFake() as fake:
        fake.chat_responder = weather_model
        options = {"api_key": fake.api_key, "base_url": fake.base_url}
        tuned = ft.ModelRef(backend="openai", name="ft:gpt-4.1-mini:acme::w")
        result = ft.evaluate(
            held,
            {"shown": tuned.with_few_shot(shots, k=2)},
            m.tool_calls_match,
            predictor_options={"shown": options},
            cache=False,
        )
        sent = [r.body for r in fake.requests if r.path.endswith("/chat/completions")]
    assert all(body["tools"] == [WEATHER_TOOL] for body in sent)
    asked = next(body for body in sent if body["messages"][-1]["role"] == "user")  # concurrent
    system, *own = asked["messages"]
    assert own == [{"role": "user", "content": "Weather in City0?"}]
    assert system["role"] == "system" and system["content"].count("<example>") == 2
    call = 'assistant: get_weather({"city": "City2"})'
    assert f"<example>\nuser: Weather in City2?\n{call}\n</example>" in system["content"]
    assert f"{call}\ntool: 2 C\nassistant: It is 2 C in City2.\n</example>" in system["content"]
    assert result.scores("shown", "tool_calls_match") == [1.0, 1.0]
    briefed = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    prompt = build_prompt(briefed, shot_turns(shots))
    assert prompt[0]["content"].startswith("Be brief.\n\nExamples of conversations")
    assert prompt[1:] == briefed[1:]


def test_a_batching_predictor_that_takes_tools_is_asked_with_them() -> None:
    class Batching:
        name = "batching"
        supports_tools = True

        def predict(self, messages: Any, tools: Any = None) -> str:
            raise AssertionError("asked through apredict")

        async def apredict(self, messages: Any, tools: Any = None) -> str:
            return f"offered {len(tools or [])}"

        def predict_batch(self, prompts: Any) -> list[str]:  # has no tools to give
            return ["batched"] * len(prompts)

    result = ft.evaluate(weather_data(1), {"b": Batching()}, m.exact_match, cache=False)
    assert result.predictions("b") == ["offered 1", "offered 1"]
    assert ft.evaluate(_qa(2), {"b": Batching()}, m.exact_match, cache=False).predictions("b") == [
        "batched",
        "batched",
    ]


def test_a_preference_pair_whose_answer_calls_a_tool_is_scored_on_the_call() -> None:
    """With no tool definitions and no tool turn before it, a chosen answer that calls a tool
    was read as an empty answer and the pair refused as having none."""
    call = {"id": "c", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}
    pair = {
        "input": {"messages": [{"role": "user", "content": "Call f."}]},
        "preferred_output": [{"role": "assistant", "tool_calls": [call]}],
        "non_preferred_output": [{"role": "assistant", "content": "No."}],
    }

    def caller(messages: Any, tools: Any = None) -> Any:
        return [{"name": "f", "arguments": {"a": 1}}]

    data = ft.Dataset.from_records([pair])
    result = ft.evaluate(data, {"c": caller}, m.tool_calls_match, cache=False)
    assert result.rows[0]["reference"] == 'f({"a": 1})'
    assert result.scores("c", "tool_calls_match") == [1.0]


def test_a_judge_reads_the_tool_calls_of_the_conversation() -> None:
    prompts: list[str] = []

    def judge(messages: list[dict[str, str]]) -> str:
        prompts.append(messages[0]["content"])
        return "5"

    def caller(messages: list[dict[str, Any]], tools: Any) -> str:
        return "It is 0 C in City0."

    data = ft.Dataset.from_records([list(weather_data(1))[1].model_dump(exclude_none=True)])
    ft.evaluate(data, {"c": caller}, m.llm_judge(judge), cache=False)
    (prompt,) = prompts
    assert 'assistant: get_weather({"city": "City0"})\ntool: 0 C' in prompt


def test_the_tools_offered_are_part_of_the_cache_key() -> None:
    messages = [{"role": "user", "content": "q"}]
    plain = PredictionCache.key("p", messages)
    assert plain == PredictionCache.key("p", messages, None)  # keys of runs before tools
    assert PredictionCache.key("p", messages, [WEATHER_TOOL]) != plain


def test_dicts_are_evaluated_as_from_records_reads_them() -> None:
    """A list of dicts (what ``with_few_shot`` takes) failed with "no question and answer in
    dict"; a row no reader knows is named by its place."""
    rows = [{"prompt": f"What is {i} + 1?", "completion": str(i + 1)} for i in range(3)]
    both = {"tuned": _answer, "base": lambda messages: "0"}
    from_rows = ft.evaluate(rows, both, [m.exact_match], cache=False)
    read = ft.evaluate(ft.Dataset.from_records(rows), both, [m.exact_match], cache=False)
    assert from_rows.rows == read.rows and from_rows.scores("tuned") == [1.0, 1.0, 1.0]
    judged = ft.evaluation.judge_pairwise(from_rows, rows, "tuned", "base", lambda m: "TIE")
    assert judged.ties == 3
    with pytest.raises(ft.DatasetError, match=r"the data to evaluate:2: record is a int"):
        ft.evaluate([rows[0], 7], {"tuned": _answer}, [m.exact_match], cache=False)


def test_a_refusal_is_scored_as_the_words_the_model_answered() -> None:
    """Under structured outputs OpenAI answers a refusal with no content and its words in
    ``refusal``: it was scored, and shown, as an empty answer."""
    from tests.fakes._server import Refusal

    data = _qa(2)
    with OpenAIFake() as fake:
        fake.chat_responder = lambda model, messages: Refusal("I can't help with that.")
        options = {"api_key": fake.api_key, "base_url": fake.base_url}
        result = ft.evaluate(
            data,
            {"strict": ft.ModelRef(backend="openai", name="gpt-4.1-mini")},
            m.exact_match,
            predictor_options={"strict": options},
            cache=False,
        )
    assert result.predictions("strict") == ["I can't help with that."] * 2


def test_a_dataframe_is_evaluated_and_shown_as_its_rows() -> None:
    """A pandas DataFrame, to evaluate or to draw shots from, was read as its column names
    ("record is a str, not a mapping"; ``with_few_shot``: pandas' own ``sample`` refused
    ``seed``)."""
    pandas = pytest.importorskip("pandas")
    rows = [{"prompt": f"What is {i} + 1?", "completion": str(i + 1)} for i in range(3)]
    frame = pandas.DataFrame(rows)
    read = ft.evaluate(frame, {"tuned": _answer}, [m.exact_match], cache=False)
    assert read.rows == ft.evaluate(rows, {"tuned": _answer}, [m.exact_match], cache=False).rows
    model = ft.ModelRef(backend="fake", name="m")
    shots = model.with_few_shot(frame, k=2, seed=1).few_shot
    assert shots == model.with_few_shot(rows, k=2, seed=1).few_shot
    # named as given: the caller of evaluate never called from_records
    with pytest.raises(TypeError) as caught:
        ft.evaluate(5, {"tuned": _answer}, [m.exact_match], cache=False)  # type: ignore[arg-type]
    assert str(caught.value) == (
        "the data to evaluate must be a ft.Dataset or a list of records (dicts or examples), "
        "not int"
    )
    with pytest.raises(TypeError, match=r"^few-shot records must be a ft\.Dataset or a list"):
        model.with_few_shot({"messages": []})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"not dict: Dataset.from_records\(\[record\]\) for one$"):
        ft.Dataset.from_records({"messages": []})  # type: ignore[arg-type]  # not "columns"


def test_pairwise_judge_swaps_positions_to_cancel_order_bias() -> None:
    def wrong(messages: list[dict[str, str]]) -> str:
        return "0"

    data = _qa(12)
    result = ft.evaluate(data, {"tuned": _answer, "base": wrong}, [m.exact_match], cache=False)
    prompts: list[str] = []

    def always_a(messages: list[dict[str, str]]) -> str:
        prompts.append(messages[0]["content"])
        return "A"

    biased = ft.evaluation.judge_pairwise(result, data, "tuned", "base", always_a)
    assert biased.ties == 12 and biased.verdict == "no evidence"
    assert len(prompts) == 24

    def fair(messages: list[dict[str, str]]) -> str:
        text = messages[0]["content"]
        question = text.split("user: ")[1].split("\n")[0]
        right = str(int(question.split()[2]) + 1)
        first = text.split("Answer A:\n")[1].split("\n")[0]
        return "A" if first == right else "B"

    verdict = ft.evaluation.judge_pairwise(result, data, "tuned", "base", fair)
    assert verdict.wins == 12 and verdict.verdict == "improved"
    with pytest.raises(ValueError, match="12 evaluated"):
        ft.evaluation.judge_pairwise(result, _qa(5), "tuned", "base", fair)
    with pytest.raises(ValueError, match="no candidate 'other'"):
        ft.evaluation.judge_pairwise(result, data, "tuned", "other", fair)
    first, *rest = data
    shuffled = ft.Dataset.from_records([*rest, first])  # the same size, in another order
    with pytest.raises(ValueError, match=r"same order: the example at index 0 \('system: "):
        ft.evaluation.judge_pairwise(result, shuffled, "tuned", "base", fair)


def test_a_pairwise_judge_refuses_other_questions_with_the_same_answers(tmp_path: Path) -> None:
    """Only the answers were compared: labels ("yes", "no") or a reworded holdout passed,
    and the judge saw each answer beside another question."""

    def wrong(messages: list[dict[str, str]]) -> str:
        return "0"

    data = _qa(6)
    reworded = ft.Dataset.from_records(
        [
            {
                "messages": [
                    {"role": "user", "content": f"How much is {i} and one?"},
                    {"role": "assistant", "content": str(i + 1)},
                ]
            }
            for i in range(6)
        ]
    )
    result = ft.evaluate(data, {"tuned": _answer, "base": wrong}, [m.exact_match], cache=False)
    saved = EvalResult.from_json(result.to_json(tmp_path / "result.json"))
    assert saved.example_keys == result.example_keys and len(set(result.example_keys or [])) == 6
    for checked in (result, saved):
        with pytest.raises(ValueError, match=r"index 0 \('user: How much is 0 and one\?'\)"):
            ft.evaluation.judge_pairwise(checked, reworded, "tuned", "base", lambda _: "A")
        assert ft.evaluation.judge_pairwise(checked, data, "tuned", "base", lambda _: "A").ties == 6

    # a result kept before the keys were, or built by hand: its reference answers are checked
    legacy = {k: v for k, v in result.to_dict().items() if k != "example_keys"}
    (tmp_path / "legacy.json").write_text(json.dumps(legacy))
    assert EvalResult.from_json(tmp_path / "legacy.json").example_keys is None
    older = EvalResult(result.candidates, result.metrics, result.rows)
    assert ft.evaluation.judge_pairwise(older, reworded, "tuned", "base", lambda _: "A").ties == 6
    with pytest.raises(ValueError, match="the example at index 0 answers '2'"):
        ft.evaluation.judge_pairwise(older, list(_qa(7))[1:], "tuned", "base", lambda _: "A")
    broken = {**result.to_dict(), "example_keys": ["x"]}
    (tmp_path / "broken.json").write_text(json.dumps(broken))
    with pytest.raises(ft.StorageError, match="example_keys is not a digest for each example"):
        EvalResult.from_json(tmp_path / "broken.json")


def test_a_pairwise_judge_with_no_verdict_is_asked_again_then_refused() -> None:
    """A reply with no verdict was read as a tie: a judge that declined every pair made
    "no evidence" of a real difference."""
    data = _qa(3)
    result = ft.evaluate(data, {"tuned": _answer, "base": _answer}, [m.exact_match], cache=False)
    asked: list[list[dict[str, str]]] = []

    def late(messages: list[dict[str, str]]) -> str:
        asked.append(messages)
        return "Both are fine" if len(messages) == 1 else "A"

    voted = ft.evaluation.judge_pairwise(result, data, "tuned", "base", late)
    assert voted.ties == 3 and len(asked) == 12  # A in both orders: a split, read as a tie
    second = next(messages for messages in asked if len(messages) == 3)  # asked at once
    assert [second[0]] in asked and second[1] == {"role": "assistant", "content": "Both are fine"}
    assert second[2]["content"] == "Reply with exactly one of: A, B, TIE."

    def refuses(messages: list[dict[str, str]]) -> str:
        return "I cannot compare these answers."

    with pytest.raises(ValueError, match=r"named no better answer for example \d, asked twice"):
        ft.evaluation.judge_pairwise(result, data, "tuned", "base", refuses)


@pytest.mark.parametrize(
    ("reply", "vote"),
    [
        ("A", 1.0),
        ("b", 0.0),
        ("TIE", 0.5),
        ("**B**", 0.0),
        ("Answer B.", 0.0),
        ("The better one is A", 1.0),
        ("Both are equally good: TIE", 0.5),
        ("Both are fine", None),  # no verdict: asked again
        ("Both answers work, a tie", 0.5),
        ("**a**", 1.0),
        ("I cannot tell", None),
        # a judge that reasons about both answers first: the verdict it names, not the
        # first letter of its reasoning (both were read as A)
        ("Answer A is concise but wrong; answer B is correct. Verdict: B", 0.0),
        ("A has a typo, B does not. Decision - B", 0.0),
        ("**Winner:** A", 1.0),
        ("The winner is a tie", 0.5),
        ("Answer A is better. A clear win", 1.0),
        # a reply naming two is no clear verdict: asked again (both were read as A)
        ("A close call, but B is better", None),
        ("A tie.", None),
        ("Answer B is better than answer A", None),
    ],
)
def test_a_pairwise_vote_is_the_last_named_else_the_one_standalone_verdict(
    reply: str, vote: float | None
) -> None:
    from finetune.evaluation._judge import _vote

    assert _vote(reply) == vote


@pytest.mark.parametrize(
    ("reply", "vote"),
    [("Answer B is better than answer A", 0.0), ("A tie.", 1.0), ("Both are fine", None)],
)
def test_a_second_reply_naming_two_verdicts_is_read_by_the_first(
    reply: str, vote: float | None
) -> None:
    from finetune.evaluation._judge import _vote

    assert _vote(reply, guess=True) == vote


def test_a_pairwise_reply_naming_both_answers_is_asked_again() -> None:
    """A reply of "A close call, but B is better" was read as a vote for A, its first capital:
    a judge that always picked the right answer made it look like a tie."""

    def wrong(messages: list[dict[str, str]]) -> str:
        return "0"

    data = _qa(6)
    result = ft.evaluate(data, {"tuned": _answer, "base": wrong}, [m.exact_match], cache=False)
    asked: list[list[dict[str, str]]] = []

    def hedges(messages: list[dict[str, str]]) -> str:
        asked.append(messages)
        text = messages[0]["content"]
        better = "B" if text.split("Answer A:\n")[1].startswith("0") else "A"
        return better if len(messages) > 1 else f"A close call, but {better} is better"

    verdict = ft.evaluation.judge_pairwise(result, data, "tuned", "base", hedges)
    assert verdict.wins == 6 and verdict.verdict == "improved"
    again = [messages for messages in asked if len(messages) == 3]
    assert len(again) == 6  # only the replies naming both: those where B is the better one
    assert all(messages[2]["content"].startswith("Reply with exactly one of") for messages in again)


@pytest.mark.parametrize(
    ("reply", "score"),
    [
        ("4/5", 0.75),
        ("Score: 2", 0.25),
        ("5", 1.0),
        ("**5**", 1.0),
        # the scale said back was read as the grade: 0.0 for a 2, 1.0 for a 4
        ("1-5: 2", 0.25),
        ("On a 1 to 5 scale, 4", 0.75),
        # a judge that reasons first: its concluding grade, not the first digit it wrote
        ("The answer scores 2 of the 3 points asked. Grade: 5", 1.0),
        ("Rating: 3 (out of 5)", 0.5),
        ("4 out of 5", 0.75),
        ("4 / 5", 0.75),
        ("I'd give it a 4. A clear 4", 0.75),
    ],
)
def test_a_rubric_grade_is_the_last_named_else_the_one_standalone_digit(
    reply: str, score: float
) -> None:
    judge = m.llm_judge(lambda messages: reply)
    result = ft.evaluate(_qa(1), {"oracle": _answer}, [judge], cache=False)
    assert result.scores("oracle", "llm_judge") == [score]


@pytest.mark.parametrize("reply", ["Score: 4.5", "3-4", "I rate it 3 to 4"])
def test_a_grade_between_two_is_asked_again_not_rounded(reply: str) -> None:
    """``4.5`` was read as 4, and ``3 to 4`` as 4: a grade the judge did not give."""
    replies = [reply, "2"]
    judge = m.llm_judge(lambda messages: replies[len(messages) // 2])
    result = ft.evaluate(_qa(1), {"oracle": _answer}, [judge], cache=False)
    assert result.scores("oracle", "llm_judge") == [0.25]  # the second reply's


@pytest.mark.parametrize(("second", "score"), [("3", 0.5), ("It misses 2 points, so 3", 0.25)])
def test_a_reply_with_two_grades_is_asked_again(second: str, score: float) -> None:
    """A reply of "It misses 2 of the points: 3" was graded 2, its first digit; asked again,
    a second such reply is read by its first digit."""
    replies = ["It misses 2 of the points: 3", second]
    judge = m.llm_judge(lambda messages: replies[len(messages) // 2])
    result = ft.evaluate(_qa(1), {"oracle": _answer}, [judge], cache=False)
    assert result.scores("oracle", "llm_judge") == [score]


def test_a_rubric_judge_with_no_grade_is_asked_again_then_refused() -> None:
    """A reply with no grade ("10", a refusal) was scored 0, the lowest grade, which the
    judge never gave: a candidate whose answers a judge declined to grade looked worst."""
    asked: list[list[dict[str, str]]] = []

    def late(messages: list[dict[str, str]]) -> str:
        asked.append(messages)
        return "10" if len(messages) == 1 else "4"

    result = ft.evaluate(_qa(1), {"oracle": _answer}, [m.llm_judge(late)], cache=False)
    assert result.scores("oracle", "llm_judge") == [0.75]
    first, second = asked
    assert second[:2] == [*first, {"role": "assistant", "content": "10"}]
    assert second[2]["content"] == "Reply with one integer from 1 to 5, nothing else."

    def refuses(messages: list[dict[str, str]]) -> str:
        return "I cannot grade this answer."

    with pytest.raises(ValueError, match="gave no grade from 1 to 5, asked twice") as caught:
        ft.evaluate(_qa(2), {"oracle": _answer}, [m.llm_judge(refuses)], cache=False)
    assert "'I cannot grade this answer.'" in str(caught.value)
    (note,) = caught.value.__notes__  # kept on Python 3.10 too
    assert note.startswith("while metric 'llm_judge' scored candidate 'oracle'")


async def test_metrics_run_off_the_event_loop() -> None:
    import threading

    where: list[threading.Thread] = []

    def judged(prediction: str, reference: str, example: Any) -> float:
        where.append(threading.current_thread())  # a judge model would block here
        return 1.0

    await ft.aevaluate(_qa(3), {"oracle": _answer}, [judged], cache=False)
    assert len(where) == 3 and threading.current_thread() not in where


def test_a_judge_is_asked_many_at_once_and_a_rerun_asks_it_nothing(tmp_path: Path) -> None:
    """The judge was asked one grade at a time after every prediction, and again for every
    grade on a re-run: 200 grades at 50 ms took 10.4 s each run (benchmarks/judge.py)."""
    in_flight = peak = 0
    asked: list[str] = []

    async def grading(messages: list[dict[str, str]]) -> str:
        nonlocal in_flight, peak
        asked.append(messages[-1]["content"])
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.02)
        in_flight -= 1
        return "Grade: 5" if "Answer to grade:\n3" in messages[-1]["content"] else "Grade: 1"

    judge = ft.evaluation.CallablePredictor(grading, name="grader-v1")
    candidates = {"oracle": _answer, "zero": lambda _: "0"}
    cache = tmp_path / "cache.sqlite3"

    def run(rubric: str) -> ft.EvalResult:
        graded = m.llm_judge(judge, rubric=rubric)
        return ft.evaluate(_qa(6), candidates, [graded], max_concurrency=4, cache=cache)

    first = run("correct sum")
    assert peak == 4 and len(asked) == 12
    assert first.notes == [
        "llm_judge: graded by the judge grader-v1 against the rubric 'correct sum'"
    ]
    assert "Note: llm_judge: graded by the judge grader-v1" in first.to_markdown()
    assert first.scores("oracle", "llm_judge") == [0.0, 0.0, 1.0, 0.0, 0.0, 0.0]
    assert first.scores("zero", "llm_judge") == [0.0] * 6
    again = run("correct sum")
    assert len(asked) == 12 and again.rows == first.rows  # every grade from the cache
    run("a new rubric")
    assert len(asked) == 24  # another prompt: asked again
    standalone = m.llm_judge(lambda messages: "Grade: 4")
    assert standalone("3", "3", list(_qa(3))[2]) == 0.75  # a metric of its own, blocking


class _BatchJudge:
    """A judge that answers in batches, as a local model does (``HFPredictor``)."""

    name = "batch-judge"
    batch_size = 4

    def __init__(self) -> None:
        self.batches: list[int] = []

    def predict(self, messages: list[dict[str, str]]) -> str:
        raise AssertionError("asked one at a time")

    async def apredict(self, messages: list[dict[str, str]]) -> str:
        raise AssertionError("asked one at a time")

    def predict_batch(self, asked: list[list[dict[str, str]]]) -> list[str]:
        self.batches.append(len(asked))
        return [self._grade(messages) for messages in asked]

    @staticmethod
    def _grade(messages: list[dict[str, str]]) -> str:
        if len(messages) == 3:  # asked again: the instruction repeated
            return "Grade: 2"
        return "Maybe?" if "Answer to grade:\n1" in messages[0]["content"] else "Grade: 5"


def test_a_judge_that_answers_in_batches_is_asked_in_batches(tmp_path: Path) -> None:
    """A local judge was asked one request a generate call: SmolLM2 on a CPU answers 16 in
    one batch 3.5x as fast."""
    judge = _BatchJudge()
    graded = m.llm_judge(judge)
    cache = tmp_path / "cache.sqlite3"
    result = ft.evaluate(_qa(6), {"oracle": _answer}, [graded], cache=cache)
    assert result.scores("oracle", "llm_judge") == [0.25, 1.0, 1.0, 1.0, 1.0, 1.0]
    assert judge.batches == [4, 3]  # the one asked again joins the last two
    ft.evaluate(_qa(6), {"oracle": _answer}, [graded], cache=cache)
    assert judge.batches == [4, 3]  # every grade from the cache


async def test_a_judge_answered_from_the_cache_lets_the_event_loop_run_between_grades(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cached grade awaits nothing: 20,000 of them were read in one stretch that held the
    loop 349 ms (benchmarks/event_loop.py --judge); others now run between them."""

    async def grading(messages: list[dict[str, str]]) -> str:
        return "Grade: 5"

    graded = m.llm_judge(ft.evaluation.CallablePredictor(grading, name="grader"))
    cache = ft.evaluation.PredictionCache(tmp_path / "cache.sqlite3")
    await ft.aevaluate(_qa(40), {"oracle": _answer}, [graded], cache=cache)
    turns = 0

    async def other_work() -> None:
        nonlocal turns
        while True:
            turns += 1
            await asyncio.sleep(0)

    seen: list[int] = []
    read = ft.evaluation.PredictionCache.recall

    def noting(self: ft.evaluation.PredictionCache, key: str) -> str | None:
        seen.append(turns)
        return read(self, key)

    other = asyncio.create_task(other_work())
    monkeypatch.setattr(ft.evaluation.PredictionCache, "recall", noting)  # the judge's reads
    await ft.aevaluate(_qa(40), {"oracle": _answer}, [graded], cache=cache, max_concurrency=1)
    other.cancel()
    assert len(seen) == 40 and len(set(seen)) > 20, seen


async def test_a_pairwise_judge_is_asked_many_at_once_and_a_rerun_asks_it_nothing(
    tmp_path: Path,
) -> None:
    """``judge_pairwise`` asked its two questions per example one after another, each time."""
    in_flight = peak = 0
    asked = 0

    async def prefers_the_right_sum(messages: list[dict[str, str]]) -> str:
        nonlocal in_flight, peak, asked
        asked += 1
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.02)
        in_flight -= 1
        first = messages[-1]["content"].split("Answer A:\n")[1].split("\n")[0]
        return "A" if first != "0" else "B"

    data = _qa(5)
    candidates = {"tuned": _answer, "base": lambda _: "0"}
    result = await ft.aevaluate(data, candidates, [m.exact_match], cache=False)
    judge = ft.evaluation.CallablePredictor(prefers_the_right_sum, name="pairwise-v1")
    cache = tmp_path / "cache.sqlite3"
    for _ in range(2):
        compared = await ft.evaluation.ajudge_pairwise(
            result, data, "tuned", "base", judge, max_concurrency=3, cache=cache
        )
        assert (compared.wins, compared.ties, compared.losses) == (5, 0, 0)
        assert peak == 3 and asked == 10  # both orders of each example; none asked again
    with pytest.raises(TypeError, match=r"\['max_concurency'\] \(did you mean 'max_concurrency'"):
        ft.evaluation.judge_pairwise(result, data, "tuned", "base", judge, max_concurency=2)  # type: ignore[call-arg]


def test_two_rubrics_grade_in_one_evaluation_each_in_its_column() -> None:
    """Two ``llm_judge`` metrics were both named ``llm_judge``: refused as one name twice."""

    def grader(messages: list[dict[str, str]]) -> str:
        return "Grade: 5" if "Rubric: polite" in messages[0]["content"] else "Grade: 1"

    polite = m.llm_judge(grader, "polite", name="tone")
    result = ft.evaluate(_qa(2), {"oracle": _answer}, [m.llm_judge(grader), polite], cache=False)
    assert result.metrics == ["llm_judge", "tone"]
    assert result.scores("oracle", "tone") == [1.0, 1.0]
    assert result.scores("oracle", "llm_judge") == [0.0, 0.0]
    assert result.notes[1].startswith("tone: graded by the judge callable:")
    assert result.notes[1].endswith(" against the rubric 'polite'")
    with pytest.raises(ValueError, match="name is the judge's column, a text such as 'tone'"):
        m.llm_judge(grader, name=" ")


def test_rubric_judge_as_a_metric() -> None:
    def grader(messages: list[dict[str, str]]) -> str:
        text = messages[0]["content"]
        return "5" if "Answer to grade:\n1" in text or "Answer to grade:\n2" in text else "1"

    judge = m.llm_judge(grader, rubric="correct sum")
    result = ft.evaluate(_qa(2), {"oracle": _answer}, [judge], cache=False)
    assert result.scores("oracle", "llm_judge") == [1.0, 1.0]


def test_a_rubric_judge_reads_the_system_prompt_and_grades_without_an_example() -> None:
    """The system prompt, where a rubric's instructions live ("Answer with the number
    only"), was left out of what the judge read; called as ``judge(prediction, reference)``
    the metric raised ``AttributeError``."""
    prompts: list[str] = []

    def grader(messages: list[dict[str, str]]) -> str:
        prompts.append(messages[0]["content"])
        return "Grade: 5"

    judge = m.llm_judge(grader, rubric="follows the system prompt")
    ft.evaluate(_qa(1), {"oracle": _answer}, [judge], cache=False)
    assert "Conversation:\nsystem: Answer with the number only.\nuser: What is 0 + 1?" in prompts[0]
    assert judge("1", "1") == 1.0
    assert "Conversation:\n(not given: grade the answer against the reference alone)" in prompts[1]


# -- running, concurrency and the cache --


def test_bounded_concurrency_reaches_its_limit_and_never_exceeds_it() -> None:
    in_flight = peak = 0

    async def slow(messages: list[dict[str, str]]) -> str:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.02)
        in_flight -= 1
        return _answer(messages)

    result = ft.evaluate(_qa(40), {"slow": slow}, [m.exact_match], max_concurrency=5, cache=False)
    assert peak == 5
    assert result.summary()["slow"]["exact_match"].mean == 1.0


def test_cache_makes_a_rerun_free_and_keeps_an_interrupted_run(tmp_path: Path) -> None:
    calls: list[str] = []

    def flaky(messages: list[dict[str, str]]) -> str:
        calls.append(messages[-1]["content"])
        if len(calls) == 7:
            raise KeyError("interrupted")  # not retryable: the run stops here
        return _answer(messages)

    cache = tmp_path / "predictions.sqlite3"
    data = _qa(12)
    model = ft.evaluation.CallablePredictor(flaky, name="flaky-v1")  # named: cached
    with pytest.raises(KeyError):
        ft.evaluate(data, {"model": model}, [m.exact_match], max_concurrency=1, cache=str(cache))
    assert len(calls) == 7
    result = ft.evaluate(
        data, {"model": model}, [m.exact_match], max_concurrency=1, cache=str(cache)
    )
    assert len(calls) == 7 + 6  # the six answered before the interruption came from the cache
    assert result.summary()["model"]["exact_match"].mean == 1.0
    ft.evaluate(data, {"model": model}, [m.exact_match], cache=str(cache))
    assert len(calls) == 13


def test_a_run_answered_from_the_cache_draws_no_progress_bar(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cache, data = str(tmp_path / "predictions.sqlite3"), _qa(5)
    model = ft.evaluation.CallablePredictor(_answer, name="answers-v1")
    ft.evaluate(data, {"model": model}, [m.exact_match], cache=cache, progress=True)
    drawn = capsys.readouterr().err  # to a log (not a terminal): a line per frame, no "\r"
    assert "5/5" in drawn.splitlines()[-1] and "\r" not in drawn and drawn.endswith("\n")
    ft.evaluate(data, {"model": model}, [m.exact_match], cache=cache, progress=True)
    assert "evaluate" not in capsys.readouterr().err  # was "evaluate: 0prediction", twice


def test_a_log_gets_each_frame_of_the_bar_once(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The last frame, drawn by the last update, was drawn again when the bar closed: a log
    ended with ``evaluate: 100%|...| 120/120`` twice."""
    monkeypatch.setattr("finetune._progress.LOG_REDRAW_SECONDS", 0.0)  # every update drawn
    model = ft.evaluation.CallablePredictor(_answer)
    ft.evaluate(_qa(5), {"model": model}, [m.exact_match], max_concurrency=1, progress=True)
    frames = capsys.readouterr().err.splitlines()
    assert "5/5" in frames[-1] and "5/5" not in frames[-2], frames


def test_the_judge_grades_answers_while_the_others_are_predicted() -> None:
    """The judge was asked only once every prediction was in: its requests, as many as the
    predictions, added as long again to the run."""
    graded = threading.Event()
    order: list[str] = []

    async def last_waits(messages: list[dict[str, str]]) -> str:
        if messages[-1]["content"] == "What is 3 + 1?":  # the last example
            await asyncio.to_thread(graded.wait, 10)  # before: 10 s, then read as the first
        order.append("predicted")
        return _answer(messages)

    def judge(messages: list[dict[str, str]]) -> str:
        order.append("graded")
        graded.set()
        return "Grade: 5"

    model = ft.evaluation.CallablePredictor(last_waits)
    result = ft.evaluate(_qa(4), {"m": model}, [m.llm_judge(judge)], max_concurrency=1, cache=False)
    assert order.index("graded") < len(order) - 1 - order[::-1].index("predicted")
    assert result.scores("m", "llm_judge") == [1.0] * 4


def test_the_judges_grades_have_a_bar_of_their_own(capsys: pytest.CaptureFixture[str]) -> None:
    """After the predictions' bar, a judge's requests took as long again with nothing shown."""
    judge = m.llm_judge(lambda messages: "Grade: 5")
    data, candidates = _qa(3), {"a": _answer, "b": _answer}
    ft.evaluate(data, candidates, [judge], cache=False, progress=True)
    lines = capsys.readouterr().err.splitlines()  # to a log: each bar's first and last frames
    # the judge grades while the predictions are asked: both bars at once, the predictions' first
    assert [line.split(":")[0] for line in lines] == ["evaluate", "judge", "evaluate", "judge"]
    assert "6/6" in lines[2] and "6/6" in lines[3] and "grade" in lines[3]
    result = ft.evaluate(data, candidates, [m.exact_match], cache=False)
    ft.evaluation.judge_pairwise(result, data, "a", "b", lambda _: "TIE", progress=True)
    assert "6/6" in capsys.readouterr().err.splitlines()[-1]  # both orders of 3 examples


def test_a_cache_file_it_cannot_use_is_named_before_anything_is_asked(tmp_path: Path) -> None:
    corrupt = tmp_path / "predictions.sqlite3"
    corrupt.write_text("not a database\n" * 200)
    asked: list[Any] = []
    model = ft.evaluation.CallablePredictor(asked.append, name="m")
    with pytest.raises(ft.StorageError, match=r"predictions\.sqlite3 cannot be used.*cache=False"):
        ft.evaluate(_qa(2), {"model": model}, [m.exact_match], cache=str(corrupt))
    with pytest.raises(TypeError, match="cache is True, False, a file's path or a Predict"):
        ft.evaluate(_qa(2), {"model": model}, [m.exact_match], cache=5)  # type: ignore[arg-type]
    says = rf"the prediction cache {re.escape(str(tmp_path))} is a folder: give the path of a "
    with pytest.raises(ft.StorageError, match=says + r"file in it, as .*predictions\.sqlite3"):
        ft.evaluate(_qa(2), {"model": model}, [m.exact_match], cache=tmp_path)  # not "unable to
        # open database file", with advice for a corrupt one
    assert not asked
    assert ft.evaluate(_qa(1), {"x": _answer}, m.exact_match, cache=tmp_path / "p.sqlite3").rows
    assert (tmp_path / "p.sqlite3").exists()  # a Path, as the type says, not only a str


@pytest.mark.skipif(sys.platform == "win32", reason="a file size limit is POSIX's")
def test_a_cache_that_fills_the_disk_midway_loses_no_answer_of_the_run(tmp_path: Path) -> None:
    """A full disk at the 5th answer stopped the run with a StorageError (saying the file
    might be corrupt): every answer after the 4th, paid for, was lost."""
    import subprocess
    import textwrap

    script = tmp_path / "run.py"
    script.write_text(
        textwrap.dedent(
            """
            import os, resource, signal, sys
            import finetune as ft
            from finetune.evaluation import CallablePredictor, PredictionCache
            cache = PredictionCache(sys.argv[1])
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit: EFBIG
            size = max(os.path.getsize(p) for p in (sys.argv[1], sys.argv[1] + "-wal")
                       if os.path.exists(p))
            resource.setrlimit(resource.RLIMIT_FSIZE, (size + 40_000, resource.RLIM_INFINITY))
            rows = [{"messages": [{"role": "user", "content": f"q{i} " + "x" * 500},
                                  {"role": "assistant", "content": f"a{i}"}]} for i in range(60)]
            model = CallablePredictor(lambda m: m[-1]["content"][:3] + "y" * 500, name="m")
            judge = ft.metrics.llm_judge(CallablePredictor(lambda m: "4", name="j"))
            result = ft.evaluate(ft.Dataset.from_records(rows), {"m": model},
                                 ["exact_match", judge], cache=cache)
            print(len(result.rows), result.scores("m", "llm_judge")[-1], len(cache))
            """
        )
    )
    cache = tmp_path / "predictions.sqlite3"
    done = subprocess.run(
        [sys.executable, str(script), str(cache)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    rows, grade, kept = done.stdout.split()
    assert (rows, grade) == ("60", "0.75") and 0 < int(kept) < 120
    assert f"the prediction cache {cache} could not keep an answer (" in done.stderr
    assert "a re-run asks again for the answers it did not keep" in done.stderr


def test_a_cache_written_over_midway_costs_the_run_no_answer(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Another program wrote over the cache file after the first answer: the judge's next
    read of it raised a StorageError, and the run's answers, paid for, were lost."""
    path = tmp_path / "predictions.sqlite3"

    def writes_over(messages: list[dict[str, str]]) -> str:
        for name in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            if name.exists() and name.read_bytes()[:7] != b"garbage":
                with name.open("r+b") as file:  # in place, as another program would
                    file.write(b"garbage" * 2000)
        return _answer(messages)

    model = ft.evaluation.CallablePredictor(writes_over, name="m")
    judge = m.llm_judge(ft.evaluation.CallablePredictor(lambda _: "Grade: 4", name="j"))
    with caplog.at_level("WARNING", logger="finetune"):
        result = ft.evaluate(_qa(5), {"m": model}, [judge], cache=path, max_concurrency=1)
    assert result.scores("m", "llm_judge") == [0.75] * 5
    (warning,) = [r.getMessage() for r in caplog.records if "prediction cache" in r.getMessage()]
    assert f"the prediction cache {path} could not " in warning and "goes on without it" in warning


def test_an_unnamed_function_is_never_answered_from_another_run(tmp_path: Path) -> None:
    def version(reply: Any) -> Any:
        def predict(messages: list[dict[str, str]]) -> str:  # one name, two behaviours
            return str(reply(messages))

        return predict

    cache = str(tmp_path / "predictions.sqlite3")
    first = ft.evaluate(_qa(4), {"model": version(_answer)}, [m.exact_match], cache=cache)
    edited = ft.evaluate(_qa(4), {"model": version(lambda _: "no")}, [m.exact_match], cache=cache)
    assert first.summary()["model"]["exact_match"].mean == 1.0
    assert edited.summary()["model"]["exact_match"].mean == 0.0


def test_few_shot_prompts_come_from_training_examples_only() -> None:
    seen: list[list[dict[str, str]]] = []

    def record(messages: list[dict[str, str]]) -> str:
        seen.append(messages)
        return _answer(messages)

    train, holdout = _qa(30).split(test_size=5, seed=1)
    shots = ft.ModelRef(backend="custom", name="x").with_few_shot(train, k=3, seed=2)
    ft.evaluate(holdout, {"few": ft.evaluation.CallablePredictor(record)}, [m.exact_match])
    plain = list(seen)
    seen.clear()
    from finetune.evaluation._prompts import build_prompt, shot_turns, split_example

    shown = shot_turns(shots.few_shot)
    prompts = [build_prompt(split_example(example)[0], shown) for example in holdout]
    held = {e.messages[1].content for e in holdout}  # type: ignore[union-attr]
    for prompt in prompts:
        assert prompt[0]["role"] == "system" and len(prompt) == 1 + 3 * 2 + 1
        assert not {p["content"] for p in prompt[1:-1]} & held
    assert all(len(p) == 2 for p in plain)
    assert len(shots.with_few_shot(list(train)[:2], k=3).few_shot or []) == 2  # all there are
    with pytest.raises(ValueError, match="k is how many examples to show"):
        shots.with_few_shot(train, k=-1)
    for empty in (ft.Dataset.from_records([]), [], train.filter(lambda e: False)):
        # its row would be the base model's, named few-shot, and the comparison a tie
        with pytest.raises(ValueError, match=r"with_few_shot\(k=3\) has no example to show"):
            shots.with_few_shot(empty, k=3)
    assert shots.with_few_shot([], k=0).few_shot == []
    for wrong in (2.5, "3"):  # named as k, not as sample()'s n
        with pytest.raises(TypeError, match=f"k is how many examples to show, .* not {wrong!r}"):
            shots.with_few_shot(train, k=wrong)  # type: ignore[arg-type]


def test_metrics_are_one_or_several_functions_or_ready_names() -> None:
    data = _qa(4)
    for metrics in ("exact_match", m.exact_match, ["exact_match", m.token_f1]):
        result = ft.evaluate(data, {"a": _answer}, metrics, cache=False)
        assert result.scores("a") == [1.0] * 4
    with pytest.raises(ValueError, match="metric 'regex': by name, one of bleu, chrf"):
        ft.evaluate(data, {"a": _answer}, ["regex"], cache=False)
    with pytest.raises(TypeError, match=r"a metric is a function .* not 0\.5"):
        ft.evaluate(data, {"a": _answer}, [0.5], cache=False)  # type: ignore[list-item]
    for alone in (None, 0.5):  # was "'NoneType' object is not iterable"
        with pytest.raises(TypeError, match=f"a metric is a function .* not {alone}$"):
            ft.evaluate(data, {"a": _answer}, alone, cache=False)  # type: ignore[arg-type]
    for theirs, ours in (("f1", "token_f1"), ("EM", "exact_match"), ("sacrebleu", "bleu")):
        with pytest.raises(ValueError, match=f"metric '{theirs}' \\(did you mean '{ours}'\\?\\)"):
            ft.evaluate(data, {"a": _answer}, [theirs], cache=False)  # other tools' names
    with pytest.raises(ValueError, match=r"regex: '\(' is no regular expression \(missing \)"):
        m.regex("(")  # it was re.error's own words, naming no metric
    two = ft.evaluate(data, {"a": _answer, "b": _answer}, ["exact_match", "token_f1"], cache=False)
    with pytest.raises(KeyError, match=r"no metric 'f1' \(did you mean 'token_f1'\?\)"):
        two.compare("a", "b", "f1")  # a result's metric by another tool's name


def test_two_metrics_of_one_name_are_refused_with_how_to_name_them() -> None:
    """Each name is a column: two lambdas (both ``<lambda>``) or a ``functools.partial`` (no
    name) were refused with the names alone, and nothing said how to give others."""
    import functools

    data = _qa(2)
    cure = "write each as a def named as its column should read, or set its __name__"
    two_lambdas = [lambda p, r: p == r, lambda p, r: len(p) < 9]
    with pytest.raises(ValueError, match=rf"\['<lambda>', '<lambda>'\]; a lambda .*{cure}"):
        ft.evaluate(data, {"a": _answer}, two_lambdas, cache=False)
    partial = functools.partial(lambda p, r, n: len(p) < n, n=9)
    with pytest.raises(ValueError, match=rf"\['exact_match', ''\]; .*{cure}"):
        ft.evaluate(data, {"a": _answer}, [m.exact_match, partial], cache=False)
    with pytest.raises(ValueError, match=r"\['exact_match', 'exact_match'\]$"):
        ft.evaluate(data, {"a": _answer}, [m.exact_match, "exact_match"], cache=False)


def test_metrics_given_as_a_dict_are_named_by_its_keys() -> None:
    """A dict of names to metrics, as candidates are given, names each one's column: it was
    read as a list of its keys, and refused as no ready metric ("metric 'strict': by name,
    one of ..."), the functions beside them never looked at."""
    data = _qa(4)
    seen: list[int] = []
    longer = _scored_in_one_call(seen)
    metrics = {
        "strict": m.exact(case=False),
        "f1": "token_f1",
        "short": lambda p, r: float(len(p) < 9),
        "none": lambda p, r, example: 0.0,
        "longer than asked": longer,
    }
    result = ft.evaluate(data, {"a": _answer}, metrics, cache=False)
    assert result.metrics == list(metrics)
    assert result.scores("a", "strict") == result.scores("a", "f1") == [1.0] * 4
    assert result.scores("a", "short") == [1.0] * 4 and result.scores("a", "none") == [0.0] * 4
    assert seen == [4] and result.scores("a", "longer than asked") == [0.0] * 4
    assert m.token_f1.__name__ == "token_f1" and longer.__name__ == "longer"  # left as given
    unanswered = ft.Dataset.from_records([{"messages": [{"role": "user", "content": "q"}]}])
    with pytest.raises(ValueError, match=r"end with no answer .* and f1 compares"):
        ft.evaluate(unanswered, {"a": _answer}, {"f1": m.token_f1}, cache=False)
    with pytest.raises(TypeError, match=r"a metric's name \(a key of the metrics dict\) is text"):
        ft.evaluate(data, {"a": _answer}, {3: "exact_match"}, cache=False)  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="metric 'regex': by name, one of bleu"):
        ft.evaluate(data, {"a": _answer}, {"pattern": "regex"}, cache=False)


def test_a_metric_of_prediction_and_reference_alone_is_taken_as_it_is() -> None:
    data = _qa(4)

    def same(prediction: str, reference: str) -> float:
        return float(prediction == reference)

    same.needs_reference = True  # type: ignore[attr-defined]
    result = ft.evaluate(data, {"a": _answer}, [same, lambda p, r, example: 1.0], cache=False)
    assert result.scores("a", "same") == [1.0] * 4 and "same" in result.to_markdown()
    unanswered = ft.Dataset.from_records([{"messages": [{"role": "user", "content": "q"}]}])
    with pytest.raises(ValueError, match=r"end with no answer .* and same compares"):
        ft.evaluate(unanswered, {"a": _answer}, [same], cache=False)
    asked: list[str] = []

    def counted(messages: list[dict[str, str]]) -> str:
        asked.append("x")
        return _answer(messages)

    def one(prediction: str) -> float:
        return 1.0

    with pytest.raises(TypeError, match=r"metric one\(prediction\) takes neither"):
        ft.evaluate(data, {"a": counted}, [one], cache=False)
    assert asked == []  # refused before any model is asked


def test_few_shots_drawn_from_the_evaluated_data_are_refused_before_any_request() -> None:
    data = _qa(10)
    nowhere = ft.ModelRef.openai_compatible("http://127.0.0.1:9/v1", "m")  # never asked
    leaky = nowhere.with_few_shot(data, k=3)
    with pytest.raises(ValueError, match=r"'leaky' shows 3 evaluated examples \(at index \d"):
        ft.evaluate(data, {"base": nowhere, "leaky": leaky}, [m.exact_match], cache=False)
    unseen = list(_qa(12))[10:]
    one = nowhere.with_few_shot([*unseen, list(data)[4]], k=5)  # one of them is evaluated
    with pytest.raises(ValueError, match=r"shows 1 evaluated example \(at index 4\)"):
        ft.evaluate(data, {"one": one}, [m.exact_match], cache=False)


def test_a_candidate_that_raises_is_named_on_its_error() -> None:
    def flaky(messages: list[dict[str, str]]) -> str:
        if "3 + 1" in messages[-1]["content"]:
            raise RuntimeError("model down")
        return _answer(messages)

    with pytest.raises(RuntimeError, match="model down") as caught:  # its own type, kept
        ft.evaluate(_qa(6), {"ok": _answer, "flaky": flaky}, [m.exact_match], cache=False)
    assert caught.value.__notes__ == ["while candidate 'flaky' predicted the example at index 3"]


def test_a_function_that_reads_its_argument_as_the_example_is_told_what_it_is_given() -> None:
    """``lambda ex: ex.messages[-1]`` failed with "'list' object has no attribute
    'messages'", and nothing said that a candidate function is given the prompt's messages."""

    async def as_the_example(example: Any) -> str:
        return str(example["messages"])

    candidates = {"sync": lambda example: example.messages[-1].content, "async": as_the_example}
    for name, function in candidates.items():
        with pytest.raises((AttributeError, TypeError)) as caught:  # their own types, kept
            ft.evaluate(_qa(3), {name: function}, [m.exact_match], cache=False)
        told, where = caught.value.__notes__
        assert told == (
            "a candidate function is given the prompt, not the example: a list of message "
            "dicts ({'role': ..., 'content': ...}, the example's turns before its answer), and "
            "tools= where it takes them; it returns the reply's text"
        )
        assert where.startswith(f"while candidate {name!r} predicted the example at index ")
    with pytest.raises(ZeroDivisionError) as other:  # not a misread argument: no such note
        ft.evaluate(_qa(3), {"x": lambda messages: str(1 / 0)}, [m.exact_match], cache=False)
    assert len(other.value.__notes__) == 1


def test_a_metric_that_raises_is_named_with_the_candidate_and_example() -> None:
    """A metric's KeyError on one row said nothing of which metric, candidate or row."""

    def picky(prediction: str, reference: str, example: Any = None) -> float:
        return {"1": 1.0, "2": 0.0}[reference]

    with pytest.raises(KeyError) as caught:
        ft.evaluate(_qa(6), {"ok": _answer}, [m.exact_match, picky], cache=False)
    assert caught.value.__notes__ == [
        "while metric 'picky' scored candidate 'ok' on the example at index 2"
    ]


@pytest.mark.parametrize(
    ("returned", "says"),
    [
        (None, "returned NoneType None, not the reply's text"),
        (True, "returned bool True"),
        (["2"], "returned list \\['2'\\]"),  # a list of texts is no list of tool calls
        ([{"function": "add"}], "returned list"),
    ],
)
def test_a_candidate_function_that_returns_no_text_is_refused(returned: Any, says: str) -> None:
    """A missing return would be scored as the answer "None", on every example."""

    def forgot(messages: list[dict[str, str]]) -> Any:
        return returned

    async def forgot_async(messages: list[dict[str, str]]) -> Any:
        return returned

    for function in (forgot, forgot_async):
        with pytest.raises(TypeError, match=says):
            ft.evaluate(_qa(2), {"x": function}, m.exact_match, cache=False)
    numbers = ft.evaluate(_qa(2), {"x": lambda messages: 1 + 1}, m.exact_match, cache=False)
    assert numbers.predictions("x") == ["2", "2"]  # a number is written as text


def test_a_plugin_predictor_that_returns_no_text_is_refused_naming_it(tmp_path: Path) -> None:
    """A plugin's ``None`` was scored as the answer "" and cached as "None": a re-run read
    from the cache scored another answer than the run that asked."""

    class Forgetful:
        name = "forgetful"

        def predict(self, messages: Any) -> Any:
            return None

        async def apredict(self, messages: Any) -> Any:
            return None

    cache = tmp_path / "cache.sqlite3"
    with pytest.raises(TypeError, match="predictor 'forgetful' returned NoneType None") as caught:
        ft.evaluate(_qa(2), {"plugin": Forgetful()}, m.exact_match, cache=cache)
    assert "while candidate 'plugin' predicted the example at index" in caught.value.__notes__[0]
    assert len(PredictionCache(cache)) == 0


def test_a_reply_with_half_a_surrogate_pair_is_scored_cached_and_saved(tmp_path: Path) -> None:
    """A JSON escape can carry half of a UTF-16 pair (an emoji cut in two) that UTF-8 cannot:
    caching the reply, or saving the result, failed with a bare UnicodeEncodeError."""
    replies = {
        "1": "\ud83d 1",
        "2": "\ud83d\ude00 2",
        "3": TruncatedReply("3\udc00", "max_tokens=1"),
    }

    def broken(messages: list[dict[str, str]]) -> str:
        return replies.get(_answer(messages), _answer(messages))

    candidates = {"broken": CallablePredictor(broken, name="broken")}
    cache = tmp_path / "cache.sqlite3"
    first = ft.evaluate(_qa(4), candidates, m.exact_match, cache=cache)
    again = ft.evaluate(_qa(4), candidates, m.exact_match, cache=cache)
    assert first.predictions("broken") == ["\ufffd 1", "\U0001f600 2", "3\ufffd", "4"]
    assert again.predictions("broken") == first.predictions("broken")
    assert any("max_tokens=1" in note for note in again.notes)
    saved = ft.EvalResult.from_json(first.to_json(tmp_path / "result.json"))
    assert saved.predictions("broken") == first.predictions("broken")


def test_the_ready_metrics_are_exactly_those_that_need_no_arguments() -> None:
    import inspect

    def ready(name: str) -> bool:
        found = getattr(m, name)
        return inspect.isfunction(found) and next(iter(inspect.signature(found).parameters)) == (
            "prediction"
        )

    assert set(m.READY) == {name for name in m.__all__ if name != "Metric" and ready(name)}


def test_result_table_markdown_html_json(tmp_path: Path) -> None:
    def wrong(messages: list[dict[str, str]]) -> str:
        return "0"

    result = ft.evaluate(_qa(30), {"base": wrong, "tuned": _answer}, [m.exact_match], cache=False)
    comparison = result.compare("tuned", "base")
    assert comparison.verdict == "improved" and comparison.delta == 1.0
    text = result.to_markdown(baseline="base")
    assert "| tuned vs base | exact_match | +1.000" in text and "improved" in text
    assert "<table>" in result._repr_html_()
    assert repr(result).startswith("<EvalResult 30 examples x 2 candidates")
    assert repr(ft.evaluate(_qa(1), {"a": _answer}, [m.exact_match], cache=False)).startswith(
        "<EvalResult 1 example x 1 candidate,"
    )
    again = EvalResult.from_json(result.to_json(tmp_path / "result.json"))
    assert again.compare("tuned", "base") == comparison
    for name, text, why in (
        ("predictions.jsonl", '{"a": 1}\n{"a": 2}\n', "not JSON: Extra data"),
        ("deep.json", "[" * 100_000, "not JSON: JSON nested too deeply"),  # RecursionError
        ("config.json", '{"candidates": ["a"]}', "no candidates, metrics and rows"),
        ("cut.json", '{"candidates": [], "metrics": ["em"], "rows": [{"example": 0}]}', "row 0"),
    ):
        (tmp_path / name).write_text(text)
        with pytest.raises(ft.StorageError, match=f"{name}: not an evaluation result.*{why}"):
            EvalResult.from_json(tmp_path / name)
    saved = result.to_dict()
    for name, edit, why in (  # each loaded once, to show NaN, other means or a crash later
        ("names.json", {"candidates": "base"}, r"candidates is not a list of text"),
        ("metrics.json", {"metrics": [1]}, r"metrics is not a list of text"),
        ("empty.json", {"rows": []}, r"rows is not a list of scores"),
        ("short.json", {"rows": saved["rows"][:-1]}, r"one row for each of the 30 examples"),
        ("twice.json", {"rows": saved["rows"][1:] + saved["rows"][1:2]}, r"each of the 30"),
        ("other.json", {"candidates": ["base"]}, r"row \d+ is of candidate 'tuned', not one"),
        ("score.json", {"rows": [{**saved["rows"][0], "exact_match": None}]}, r"not a number"),
        ("index.json", {"rows": [{**saved["rows"][0], "example": [0]}]}, r"not an index"),
    ):
        (tmp_path / name).write_text(json.dumps({**saved, **edit}))
        with pytest.raises(ft.StorageError, match=f"{name}: not an evaluation result.*{why}"):
            EvalResult.from_json(tmp_path / name)
    pytest.importorskip("pandas")
    frame = result.to_pandas()
    assert list(frame.columns) == ["example", "candidate", "prediction", "reference", "exact_match"]
    assert len(frame) == 60


def test_a_candidate_named_with_a_pipe_keeps_the_markdown_tables_in_shape() -> None:
    candidates = {"base | q8": _answer, "tuned\nv2": _answer}
    result = ft.evaluate(_qa(3), candidates, [m.exact_match], cache=False)
    text = result.to_markdown(baseline="base | q8")
    assert "| base \\| q8 | 1.000" in text and "| tuned v2 vs base \\| q8 | exact_match |" in text
    for row in text.splitlines():
        if row.startswith("|"):  # cells split on unescaped pipes only: 2 columns, then 7
            assert len(re.split(r"(?<!\\)\|", row)) - 2 in (2, 7), row


# -- predictors over real HTTP --


def test_openai_predictor_over_http_with_rate_limits() -> None:
    with OpenAIFake(faults=Faults(rate=0.3, kinds=("429", "503"), seed=3)) as fake:
        fake.chat_responder = lambda model, messages: (
            _answer(messages) if model.startswith("ft:") else "?"
        )
        options = {"api_key": fake.api_key, "base_url": fake.base_url}
        tuned = ft.ModelRef(backend="openai", name="ft:gpt-4.1-mini:acme::abc")
        base = ft.ModelRef(backend="openai", name="gpt-4.1-mini")
        result = ft.evaluate(
            _qa(20),
            {"tuned": tuned, "base": base},
            [m.exact_match],
            predictor_options={"tuned": options, "base": options},
            cache=False,
        )
        chats = [r for r in fake.requests if r.path.endswith("/chat/completions")]
        faulted = [r for r in chats if r.fault]
    assert faulted, "the fault injection must have hit some requests"
    assert len(chats) == 40 + len(faulted)
    assert result.compare("tuned", "base").verdict == "improved"
    sent = next(r.body for r in chats if not r.fault)
    assert sent["temperature"] == 0.0 and sent["messages"][0]["role"] == "system"


def test_openai_completion_models_are_asked_through_the_completions_api() -> None:
    """babbage-002 and davinci-002 (and their fine-tunes) are not chat models: OpenAI's chat
    endpoint answers 404, so evaluating one failed on its first example."""
    completions = [{"prompt": f"Order {i}:", "completion": "ships tomorrow."} for i in range(20)]
    data = ft.Dataset.from_records(completions)
    with OpenAIFake(faults=Faults(rate=0.3, kinds=("429", "503"), seed=3)) as fake:
        fake.chat_responder = lambda model, messages: (
            "ships tomorrow." if model.startswith("ft:") else "?"
        )
        options = {"api_key": fake.api_key, "base_url": fake.base_url}
        base = ft.ModelRef(backend="openai", name="babbage-002")
        tuned = ft.ModelRef(backend="openai", name="ft:babbage-002:acme::abc")
        result = ft.evaluate(
            data,
            {"tuned": tuned, "base": base},
            [m.exact_match],
            predictor_options={"tuned": options, "base": options},
            cache=False,
        )
        sent = [r.body for r in fake.requests if r.path.endswith("/completions") and not r.fault]
        shots = ft.Dataset.from_records([{"prompt": "Parcel 1:", "completion": "ships."}] * 2)
        with pytest.raises(ft.InvalidRequestError, match="completions API, which takes"):
            ft.evaluate(data, {"few": base.with_few_shot(shots, k=2)}, [m.exact_match],
                        predictor_options={"few": options}, cache=False)  # fmt: skip
        chat_model = OpenAIPredictor("gpt-4.1-mini", api="completions", **options)
        with pytest.raises(ft.InvalidRequestError, match="This is a chat model"):
            chat_model.predict([{"role": "user", "content": "hi"}])
    assert result.compare("tuned", "base").verdict == "improved"
    assert {body["prompt"] for body in sent} == {f"Order {i}:" for i in range(20)}
    assert all("messages" not in body and body["temperature"] == 0.0 for body in sent)
    assert chat_model.name.endswith(":completions") and not chat_model.supports_tools
    with pytest.raises(ValueError, match="api is 'chat' or 'completions'"):
        OpenAIPredictor("m", api_key="k", api="legacy")


def test_judges_over_http_ride_out_rate_limits_and_5xx() -> None:
    with OpenAIFake(faults=Faults(rate=0.3, kinds=("429", "503"), seed=5)) as fake:
        fake.chat_responder = lambda model, messages: (
            "5" if "Answer to grade" in messages[-1]["content"] else "Answer A."
        )
        judge = ft.evaluation.OpenAIPredictor(
            "gpt-4.1-mini", api_key=fake.api_key, base_url=fake.base_url
        )
        data = _qa(8)
        graded = m.llm_judge(judge, rubric="correct sum")
        result = ft.evaluate(data, {"a": _answer, "b": lambda _: "0"}, [graded], cache=False)
        pairwise = ft.evaluation.judge_pairwise(result, data, "a", "b", judge)
        chats = [r for r in fake.requests if r.path.endswith("/chat/completions")]
        faulted = [r for r in chats if r.fault]
    assert faulted, "the fault injection must have hit some requests"
    assert len(chats) == 16 + 16 + len(faulted)  # every reply, each fault asked again
    assert result.scores("a", "llm_judge") == [1.0] * 8
    assert pairwise.ties == 8  # "A" in both orders: the position bias cancels out


def test_a_judge_over_http_serves_one_evaluation_after_another(tmp_path: Path) -> None:
    """Each evaluation asks its judge on its own event loop: the client the judge opened on
    the last one's is closed with it, and the cache answers what was asked before."""
    with OpenAIFake() as fake:
        fake.chat_delay = 0.02
        fake.chat_responder = lambda model, messages: "Grade: 5"
        judge = ft.evaluation.OpenAIPredictor("judge", api_key=fake.api_key, base_url=fake.base_url)
        served = ft.ModelRef.openai_compatible(fake.base_url, "judge", fake.api_key)
        for grader in (judge, served):
            graded = m.llm_judge(grader)
            for cache in (False, tmp_path / "cache.sqlite3", tmp_path / "cache.sqlite3"):
                result = ft.evaluate(_qa(8), {"oracle": _answer}, [graded], cache=cache)
                assert result.scores("oracle", "llm_judge") == [1.0] * 8
        chats = [r for r in fake.requests if r.path.endswith("/chat/completions")]
    # 8 for each judge without the cache, and 8 into the cache, which answers the second
    # judge too: the same model at the same endpoint
    assert len(chats) == 8 * 3


@needs_mistralai
def test_a_predictor_asked_in_one_asyncio_run_after_another_answers_and_closes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """``apredict`` in a script's second ``asyncio.run`` went through the client of the
    first, whose loop had ended: "unexpected answer to call: RuntimeError: Event loop is
    closed" (OpenAI's and Mistral's)."""
    import asyncio
    import gc

    asked = [{"role": "user", "content": "Capital of France?"}]
    answers = []
    with OpenAIFake() as fake, MistralFake() as mistral:
        fake.chat_responder = mistral.chat_responder = lambda model, messages: "Paris"
        for model in (
            ft.evaluation.OpenAIPredictor("m", api_key=fake.api_key, base_url=fake.base_url),
            MistralPredictor("m", api_key=mistral.api_key, server_url=mistral.base_url),
        ):
            answers += [model.predict(asked)]  # a blocking call first: no loop to bind to
            answers += [asyncio.run(model.apredict(asked)) for _ in range(3)]
            asyncio.run(model.aclose())
        gc.collect()
    assert answers == ["Paris"] * 8
    assert [r.getMessage() for r in caplog.records if r.levelname == "ERROR"] == []


def test_a_judge_cut_short_before_its_verdict_is_told_which_limit_to_raise(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A judge that reasons first, cut at ``max_tokens``, was told to "use a judge model
    that follows the instruction", which it did, given room."""
    from finetune.cli import main

    reasoning = "Let me weigh both answers with care before I decide " * 10 + "Grade: 4"
    with OpenAIFake() as fake:
        fake.chat_responder = lambda model, messages: reasoning
        cut = ft.evaluation.OpenAIPredictor(
            "judge", api_key=fake.api_key, base_url=fake.base_url, max_tokens=16
        )
        with pytest.raises(ValueError, match=r"its reply stopped at max_tokens=16 before it"):
            ft.evaluate(_qa(1), {"oracle": _answer}, [m.llm_judge(cut)], cache=False)
        roomy = ft.evaluation.OpenAIPredictor(
            "judge", api_key=fake.api_key, base_url=fake.base_url, max_tokens=1024
        )
        result = ft.evaluate(_qa(1), {"oracle": _answer}, [m.llm_judge(roomy)], cache=False)
        assert result.scores("oracle", "llm_judge") == [0.75]
        pairwise = ft.evaluate(_qa(1), {"a": _answer, "b": _answer}, [m.exact_match], cache=False)
        with pytest.raises(ValueError, match=r"named no better answer .* at max_tokens=16"):
            ft.evaluation.judge_pairwise(pairwise, _qa(1), "a", "b", cut, cache=False)
        data = _qa(1).to_jsonl(tmp_path / "holdout.jsonl")
        served = f'backend = "openai-compatible"\nendpoint = "{fake.base_url}"\n'
        key = f'api_key = "{fake.api_key}"'
        (tmp_path / "eval.toml").write_text(
            f'data = "{data}"\n[candidates.a]\n{served}model = "a"\noptions = {{ {key} }}\n'
            f'[judge]\n{served}model = "judge"\noptions = {{ max_tokens = 16, {key} }}\n'
        )
        assert main(["eval", str(tmp_path / "eval.toml")]) == 2
        said = capsys.readouterr().err  # the config's way to give it room, not Python's
        assert "reason, e.g. options = { max_tokens = 1024 } in the [judge] table" in said


@needs_mistralai
def test_mistral_predictor_over_http() -> None:
    with MistralFake() as fake:
        fake.chat_responder = lambda model, messages: _answer(messages)
        predictor = MistralPredictor(
            "ft:open-mistral-nemo:abc", api_key=fake.api_key, server_url=fake.base_url
        )
        result = ft.evaluate(_qa(8), {"tuned": predictor}, [m.exact_match], cache=False)
        sync_reply = predictor.predict([{"role": "user", "content": "What is 4 + 1?"}])
    assert result.summary()["tuned"]["exact_match"].mean == 1.0
    assert sync_reply == "5"
    assert all(r.body["model"] == "ft:open-mistral-nemo:abc" for r in fake.requests)


@needs_mistralai
def test_answers_cut_at_the_token_limit_are_noted_on_the_result(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A cut answer scores lower than the model's whole answer would: the result says which
    answers were cut, on a fresh run and on one read back from the cache."""
    long_reply = "one two three four five six"
    with OpenAIFake() as openai, MistralFake() as mistral:
        openai.chat_responder = mistral.chat_responder = lambda model, messages: long_reply
        short = OpenAIPredictor("m", api_key=openai.api_key, base_url=openai.base_url, max_tokens=3)
        roomy = OpenAIPredictor("m", api_key=openai.api_key, base_url=openai.base_url)
        terse = MistralPredictor(
            "m", api_key=mistral.api_key, server_url=mistral.base_url, max_tokens=2
        )
        candidates = {"short": short, "roomy": roomy, "terse": terse}
        cache = str(tmp_path / "predictions.sqlite3")
        with caplog.at_level("WARNING", logger="finetune"):
            result = ft.evaluate(_qa(3), candidates, [m.token_f1], cache=cache)
        warnings = [r.getMessage() for r in caplog.records if "cut short" in r.getMessage()]
        asked = len(openai.requests) + len(mistral.requests)
        again = ft.evaluate(_qa(3), candidates, [m.token_f1], cache=cache)
        assert len(openai.requests) + len(mistral.requests) == asked  # all from the cache
    assert result.predictions("short") == ["one two three"] * 3
    assert result.predictions("roomy") == [long_reply] * 3
    assert {type(p) for p in result.predictions("short")} == {str}  # the table holds plain text
    assert result.notes == [
        "candidate 'short': 3 of its 3 answers stopped at max_tokens=3 (at index 0, 1, 2), cut "
        "short, and are scored as they are; if answers should be longer, raise it: "
        "predictor_options={'short': {'max_tokens': ...}} (an eval config's options = "
        "{ max_tokens = ... } under [candidates.short])",
        "candidate 'terse': 3 of its 3 answers stopped at max_tokens=2 (at index 0, 1, 2), cut "
        "short, and are scored as they are; if answers should be longer, raise it: "
        "predictor_options={'terse': {'max_tokens': ...}} (an eval config's options = "
        "{ max_tokens = ... } under [candidates.terse])",
    ]
    assert again.notes == result.notes
    assert "Note: candidate 'short': 3 of its 3 answers" in result.to_markdown()
    assert warnings == [f"evaluate: {note}" for note in result.notes]  # once per candidate


def test_a_plugin_predictor_marks_its_cut_answers_with_truncated_reply() -> None:
    def cut_at_two_words(messages: list[dict[str, Any]]) -> str:
        return TruncatedReply("an answer", "max_words=2")  # of "an answer longer than that"

    data = _qa(4)
    result = ft.evaluate(data, {"mine": cut_at_two_words, "whole": _answer}, m.token_f1)
    assert result.predictions("mine") == ["an answer"] * 4
    assert result.notes == [
        "candidate 'mine': 4 of its 4 answers stopped at max_words=2 (at index 0, 1, 2, 3), cut "
        "short, and are scored as they are; if answers should be longer, raise it: "
        "predictor_options={'mine': {'max_words': ...}} (an eval config's options = "
        "{ max_words = ... } under [candidates.mine])"
    ]
    spaced = ft.evaluate(data, {"mine 2": cut_at_two_words}, m.token_f1, cache=False)
    assert spaced.notes[0].endswith('under [candidates."mine 2"])')  # as TOML writes the name


def test_a_truncated_reply_keeps_its_limit_through_the_cache_and_a_pickle(tmp_path: Path) -> None:
    cache = PredictionCache(tmp_path / "predictions.sqlite3")
    cache.put("k", TruncatedReply("one two", "max_tokens=2"))
    kept = cache.get("k")
    assert isinstance(kept, TruncatedReply) and kept == "one two" and kept.limit == "max_tokens=2"
    cache.put("k", "one two three")  # asked again with room: no longer marked
    assert type(cache.get("k")) is str
    cache.close()
    copy = pickle.loads(pickle.dumps(TruncatedReply("a", "max_new_tokens=1")))
    assert isinstance(copy, TruncatedReply) and (copy, copy.limit) == ("a", "max_new_tokens=1")


def test_the_cache_is_pruned_by_age_and_gives_its_space_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It grew with every run and nothing took anything out of it."""
    import time as clock

    path = tmp_path / "predictions.sqlite3"
    cache = PredictionCache(path)
    now = clock.time()
    for age_days, key in ((40, "old"), (10, "recent"), (0, "new")):
        monkeypatch.setattr(clock, "time", lambda age=age_days: now - age * 86400)
        cache.put(
            key, TruncatedReply("x" * 20_000, "max_tokens=9") if key == "old" else "x" * 20_000
        )
    monkeypatch.setattr(clock, "time", lambda: now)
    before = path.stat().st_size + path.with_name(path.name + "-wal").stat().st_size
    assert len(cache) == 3 and cache.prune(older_than_days=30) == 1
    assert (len(cache), cache.get("old"), cache.get("recent")) == (2, None, "x" * 20_000)
    assert path.stat().st_size + path.with_name(path.name + "-wal").stat().st_size < before
    assert cache._db.execute("SELECT count(*) FROM truncated").fetchone() == (0,)
    assert cache.prune() == 2 and len(cache) == 0
    for wrong in (-1, "30", float("nan")):
        with pytest.raises(ValueError, match="older_than_days is 0 or more days"):
            cache.prune(older_than_days=wrong)  # type: ignore[arg-type]
    cache.close()


def test_a_cache_written_before_truncation_was_kept_still_reads(tmp_path: Path) -> None:
    path = tmp_path / "predictions.sqlite3"
    with sqlite3.connect(path) as old:
        old.execute(
            "CREATE TABLE predictions (key TEXT PRIMARY KEY, prediction TEXT, created REAL)"
        )
        old.execute("INSERT INTO predictions VALUES ('k', 'an old answer', 0)")
    old.close()
    cache = PredictionCache(path)
    assert cache.get("k") == "an old answer" and type(cache.get("k")) is str
    cache.put("j", TruncatedReply("cut", "max_tokens=1"))
    assert isinstance(cache.get("j"), TruncatedReply)
    cache.close()


def test_a_local_answer_cut_at_max_new_tokens_is_marked(tiny_base: str) -> None:
    question = [{"role": "user", "content": "Where is my order #12?"}]
    reply = HFPredictor(tiny_base, max_new_tokens=1).predict(question)
    assert isinstance(reply, TruncatedReply) and reply.limit == "max_new_tokens=1"


def test_a_model_folder_edited_in_place_is_another_predictor_to_the_cache(
    tiny_base: str, tmp_path: Path
) -> None:
    """Only the weights and generation_config.json were stamped: a chat template or a context
    edited in place left the predictor's name, its cache key, as it was, and the cache served
    the answers the model gave before."""
    folder = Path(shutil.copytree(tiny_base, tmp_path / "edited"))
    names = [HFPredictor(str(folder)).name]
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "max_position_embeddings": 64}))
    names.append(HFPredictor(str(folder)).name)
    template = folder / "chat_template.jinja"
    template.write_text(template.read_text() + "{{ '' }}")
    names.append(HFPredictor(str(folder)).name)
    assert len(set(names)) == 3
    (folder / "README.md").write_text("what this model is")  # no part of its answers
    assert HFPredictor(str(folder)).name == names[-1]

    # an adapter answers with its base: a base edited in place, another adapter predictor
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from finetune.backends.hf._merge import quiet_peft

    base = AutoModelForCausalLM.from_pretrained(str(folder))
    adapter = tmp_path / "adapter"
    with quiet_peft():
        lora = get_peft_model(base, LoraConfig(r=2, target_modules=["q_proj"]))
    lora.save_pretrained(adapter)
    before = HFPredictor(str(adapter)).name
    template.write_text(template.read_text() + "{{ '' }}")
    assert HFPredictor(str(adapter)).name != before


def test_a_hub_model_s_newer_revision_is_another_predictor_to_the_cache(
    tiny_base: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Hub model was keyed by its id alone ("hub"): once a newer revision was downloaded
    under the same id, the cache served the answers the older one gave."""
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    repo = tmp_path / "models--acme--tiny"

    def download(commit: str) -> str:  # the Hub cache's layout: refs name a snapshot
        shutil.copytree(tiny_base, repo / "snapshots" / commit)
        (repo / "refs").mkdir(parents=True, exist_ok=True)
        (repo / "refs" / "main").write_text(commit)
        return HFPredictor("acme/tiny").name

    assert HFPredictor("acme/tiny").name.startswith("hf:acme/tiny:hub:")  # not yet cached
    older = download("a" * 40)
    assert older.startswith("hf:acme/tiny:hub-aaaaaaaaaaaa:")
    assert HFPredictor("acme/tiny").name == older
    assert download("b" * 40) != older


def _with_room_after(
    question: list[dict[str, str]], room: int, tiny_base: str, tmp_path: Path
) -> tuple[Path, int]:
    """A copy of the tiny model whose context leaves ``room`` tokens after ``question``'s
    prompt, and that prompt's length."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_base)
    text = tokenizer.apply_chat_template(question, tokenize=False, add_generation_prompt=True)
    prompt = len(tokenizer(text, add_special_tokens=False).input_ids)
    model = Path(shutil.copytree(tiny_base, tmp_path / f"room-{room}"))
    config = json.loads((model / "config.json").read_text())
    (model / "config.json").write_text(
        json.dumps({**config, "max_position_embeddings": prompt + room})
    )
    return model, prompt


def test_a_local_answer_stops_at_the_model_s_context_and_is_noted_as_cut(
    tiny_base: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A prompt within the context was answered past it, up to max_new_tokens: noise for the
    position the model never learned (an index error, where positions are learned), scored
    as the model's answer and not said to be cut. A prompt as long as the context has no
    room for an answer at all."""
    question = [{"role": "user", "content": "Where is my order #12?"}]
    model, prompt = _with_room_after(question, 3, tiny_base, tmp_path)
    reply = HFPredictor(str(model), max_new_tokens=40).predict(question)
    assert isinstance(reply, TruncatedReply)
    assert reply.limit == f"the model's context of {prompt + 3} tokens"
    with caplog.at_level(logging.WARNING, logger="finetune"):
        ft.ModelRef(backend="hf", name=str(model)).ask(question[0]["content"])
    assert caplog.messages[-1] == (  # it said to "raise the model's context of N tokens"
        f"the reply stopped at the model's context of {prompt + 3} tokens, cut short: shorten "
        "the prompt, or ask a model with a longer context"
    )
    answered = [*question, {"role": "assistant", "content": "a"}]
    data = ft.Dataset.from_records([{"messages": answered}])
    candidate = {"short": ft.ModelRef(backend="hf", name=str(model))}
    result = ft.evaluate(data, candidate, [ft.metrics.exact_match], cache=False)
    assert result.notes[-1] == (
        f"candidate 'short': 1 of its 1 answers stopped at the model's context of {prompt + 3} "
        "tokens (at index 0), cut short, and are scored as they are; if answers should be "
        "longer, ask with shorter prompts (fewer shots), or a model with a longer context"
    )
    exact, _ = _with_room_after(question, 0, tiny_base, tmp_path)
    with pytest.raises(ft.InvalidRequestError, match=rf"is {prompt} tokens, as long as the model"):
        HFPredictor(str(exact), max_new_tokens=40).predict(question)


def test_a_local_answer_does_not_depend_on_the_prompts_asked_beside_it(
    tiny_base: str, tmp_path: Path
) -> None:
    """A batch had the room its longest prompt left: a short prompt asked beside one near the
    context was cut at 3 new tokens and noted as cut by the context, where alone it had 40."""
    short = [{"role": "user", "content": "Where is my order #12?"}]
    long = [{"role": "user", "content": "order " * 60}]
    model, prompt = _with_room_after(long, 3, tiny_base, tmp_path)
    predictor = HFPredictor(str(model), max_new_tokens=40, batch_size=4)
    alone = predictor.predict(short)
    together = predictor.predict_batch([short, long, short])
    assert together[0] == together[2] == alone
    assert [getattr(reply, "limit", None) for reply in together] == [
        getattr(alone, "limit", None),
        f"the model's context of {prompt + 3} tokens",
        getattr(alone, "limit", None),
    ]
    assert getattr(alone, "limit", None) in (None, "max_new_tokens=40")
    assert together[1] == predictor.predict(long)


def test_a_prompt_longer_than_a_local_model_s_context_is_refused_not_scored(
    tiny_base: str,
) -> None:
    """transformers only warned ("a friendly reminder ... nothing at all"), and the noise it
    generated past the context was scored as the model's answer."""
    long = [{"role": "user", "content": "word " * 1000}]  # the tiny model's context: 512
    short = [{"role": "user", "content": "Where is my order #12?"}]
    predictor = HFPredictor(tiny_base, max_new_tokens=1)
    with pytest.raises(ft.InvalidRequestError, match=r"the prompt is \d+ tokens, longer than"):
        predictor.predict(long)
    with pytest.raises(ft.InvalidRequestError, match="prompt 2 of the 2 asked together is"):
        predictor.predict_batch([short, long])
    data = ft.Dataset.from_records(
        [{"messages": [*m, {"role": "assistant", "content": "a"}]} for m in (short, long)]
    )
    with pytest.raises(ft.InvalidRequestError) as caught:
        ft.evaluate(
            data,
            {"base": ft.ModelRef(backend="hf", name=tiny_base)},
            [ft.metrics.exact_match],
            cache=False,
        )
    assert "while candidate 'base' predicted the examples at index 0 to 1" in caught.value.__notes__
    # the shots of a few-shot prompt make it long, said as the way out (not 'leave it out')
    base = ft.ModelRef(backend="hf", name=tiny_base)
    wordy = [{"messages": [*long, {"role": "assistant", "content": "a"}]}] * 2
    with pytest.raises(ft.InvalidRequestError) as caught:
        ft.evaluate(data[:1], {"2-shot": base.with_few_shot(wordy, k=2)}, ["exact_match"])
    assert caught.value.__notes__ == [
        "while candidate '2-shot' predicted the examples at index 0 to 0",
        "its 2 few-shot examples are in each prompt: fewer leave room",
    ]


def test_a_local_or_hosted_predictor_s_seed_and_device_are_checked_before_anything_runs(
    tiny_base: str,
) -> None:
    """``--option seed=abc`` was "invalid literal for int() with base 10", ``device=gpu`` a
    torch traceback, and a hosted model's seed went to its server as it was."""
    with pytest.raises(ValueError, match="seed must be a whole number, not 'abc'"):
        HFPredictor(tiny_base, seed="abc")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"seed must be a whole number, not 0\.5"):
        OpenAIPredictor("gpt-4.1-mini", api_key="sk-test", seed=0.5)  # type: ignore[arg-type]
    OpenAIPredictor("gpt-4.1-mini", api_key="sk-test", seed=None)  # the server's own
    question = [{"role": "user", "content": "Where is my order #12?"}]
    with pytest.raises(ft.InvalidRequestError, match="device 'gpu' is no device torch knows"):
        HFPredictor(tiny_base, device="gpu").predict(question)
    import torch

    if not torch.cuda.is_available():  # the local backend's own check, for a model asked
        with pytest.raises(ft.InvalidRequestError, match="device='cuda:0' asks for a GPU, and"):
            HFPredictor(tiny_base, device="cuda:0").predict(question)


def test_a_local_candidate_not_there_is_refused_before_any_candidate_is_asked(
    tmp_path: Path,
) -> None:
    """A local candidate's missing folder, or a job's id written as its model, was found
    when its model was loaded: after every candidate before it had been asked (minutes of
    generation, or a hosted model's bill), and the error named no candidate."""
    asked: list[Any] = []

    def base(messages: list[dict[str, Any]]) -> str:
        asked.append(messages)
        return "4"

    job = "hfjob-20261206-000000-0a1b2c3d"
    data = [
        {"messages": [{"role": "user", "content": "2 + 2?"}, {"role": "assistant", "content": "4"}]}
    ]
    for model, says in [
        (str(tmp_path / "gone"), "no such folder or .gguf file; check the path"),
        (f"hf:{job}", "is a local job's id, not a model: give the model it made, Tuner('hf')"),
    ]:
        local = ft.ModelRef(backend="hf", name=model)
        with pytest.raises(ft.InvalidRequestError, match=re.escape(says)) as caught:
            ft.evaluate(data, {"base": base, "tuned": local}, [m.exact_match], cache=False)
        assert caught.value.__notes__ == ["candidate 'tuned'"]
    assert asked == []


def test_a_local_model_stops_at_each_end_its_generation_config_lists(
    tuned_tiny: str, rows: list[dict[str, Any]], tmp_path: Path
) -> None:
    """Gemma's tokenizer names <eos> as its end, while its turns end with <end_of_turn>, which
    only generation_config.json lists: answers ran on past it to max_new_tokens, cut."""
    import shutil

    import torch

    question = rows[-1]["messages"][:-1]  # a held-out one: the model answers in many tokens
    loaded = HFPredictor(tuned_tiny)._load()
    tokenizer, model = loaded.tokenizer, loaded.model
    text = tokenizer.apply_chat_template(question, add_generation_prompt=True, tokenize=False)
    prompt = tokenizer(text, return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        out = model.generate(**prompt, max_new_tokens=8, do_sample=False, eos_token_id=None)
    tokens = out[0, prompt["input_ids"].shape[1] :].tolist()
    end = next(i for i, t in enumerate(tokens) if i > 1 and t not in tokens[:i])
    assert tokenizer.eos_token_id not in tokens[: end + 1]  # the model's own end comes later
    folder = tmp_path / "two-ends"
    shutil.copytree(tuned_tiny, folder)
    settings_file = folder / "generation_config.json"
    settings = json.loads(settings_file.read_text()) if settings_file.exists() else {}
    settings["eos_token_id"] = [tokenizer.eos_token_id, tokens[end]]
    before = HFPredictor(str(folder), max_new_tokens=8).name
    settings_file.write_text(json.dumps(settings))
    predictor = HFPredictor(str(folder), max_new_tokens=8)
    assert predictor.name != before  # no cached answer that ran on past the new end

    reply = predictor.predict(question)
    assert not isinstance(reply, TruncatedReply)
    assert reply == tokenizer.decode(tokens[:end], skip_special_tokens=True).strip() != ""


def test_the_cache_keys_on_the_endpoint(tmp_path: Path) -> None:
    cache = str(tmp_path / "predictions.sqlite3")
    with OpenAIFake() as first, OpenAIFake() as second:
        first.chat_responder = lambda model, messages: "from the first server"
        second.chat_responder = lambda model, messages: "from the second server"
        for fake, expected in (
            (first, "from the first server"),
            (second, "from the second server"),
        ):
            ref = ft.ModelRef.openai_compatible(fake.base_url, "local-model", api_key=fake.api_key)
            result = ft.evaluate(_qa(3), {"served": ref}, [m.exact_match], cache=cache)
            assert {row["prediction"] for row in result.rows} == {expected}
        assert len([r for r in second.requests if r.path.endswith("/chat/completions")]) == 3
    assert "key" not in repr(ref) and fake.api_key not in str(ref.model_dump())


@pytest.mark.parametrize(
    ("backend", "mount", "variables"),
    [
        ("together", "/v1", ("TOGETHER_API_KEY", "TOGETHER_BASE_URL")),
        ("fireworks", "/inference/v1", ("FIREWORKS_API_KEY", "FIREWORKS_BASE_URL")),
    ],
)
def test_a_together_or_fireworks_model_is_asked_with_its_own_key(
    backend: str, mount: str, variables: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    key_variable, url_variable = variables
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai-must-not-travel")
    monkeypatch.delenv(key_variable, raising=False)
    tuned = ft.ModelRef(backend=backend, name="acct/llama-3.1-8b-support")
    with pytest.raises(ft.AuthenticationError, match=f"set {key_variable}"):
        ft.evaluate(_qa(2), {"tuned": tuned}, [m.exact_match], cache=False)
    with OpenAIFake(prefix=mount) as fake:
        fake.chat_responder = lambda model, messages: f"{model} says hi"
        monkeypatch.setenv(key_variable, fake.api_key)
        monkeypatch.setenv(url_variable, fake.url)  # the API root, as the backend reads it
        result = ft.evaluate(_qa(3), {"tuned": tuned}, [m.exact_match], cache=False)
        chats = [r for r in fake.requests if r.path == f"{mount}/chat/completions"]
        assert result.predictions("tuned") == ["acct/llama-3.1-8b-support says hi"] * 3
        assert len(chats) == 3
        monkeypatch.delenv(url_variable)
        for given in (fake.url, fake.url + mount + "/"):  # the Tuner's root (404'd), or the chat's
            fake.requests.clear()
            options = {"tuned": {"base_url": given}}
            ft.evaluate(
                _qa(1), {"tuned": tuned}, m.exact_match, cache=False, predictor_options=options
            )
            assert [r.path for r in fake.requests] == [f"{mount}/chat/completions"]
        elsewhere = {"tuned": {"base_url": fake.url + "/elsewhere"}}
        with pytest.raises(ft.BackendError, match=rf"^\[{backend}\] ") as failed:  # not [openai]
            ft.evaluate(_qa(1), {"tuned": tuned}, m.exact_match, predictor_options=elsewhere)
        assert failed.value.backend == backend


@pytest.mark.parametrize("backend", ["together", "fireworks"])
def test_a_together_or_fireworks_model_is_evaluated_with_what_its_extra_installs(
    backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``pip install "finetune[together]"``, a job trained, then ``ft.evaluate``: the openai
    SDK that asks the model was not installed, and the error spoke of OpenAI models."""
    from importlib.metadata import requires

    marker = f"extra == '{backend}'"  # as the metadata writes it, either quote
    given = [r.replace('"', "'") for r in requires("finetune") or []]
    wanted = [r for r in given if r.endswith(marker)]
    assert any(r.startswith("openai>=") for r in wanted), wanted
    monkeypatch.setitem(sys.modules, "openai", None)  # installed without the extra
    monkeypatch.setenv(f"{backend.upper()}_API_KEY", "key")
    tuned = ft.ModelRef(backend=backend, name="acct/llama-3.1-8b-support")
    with pytest.raises(ft.MissingDependency) as missing:
        ft.evaluate(_qa(1), {"tuned": tuned}, [m.exact_match], cache=False)
    assert str(missing.value).startswith(
        f"openai is not installed to evaluate {backend} models (asked through the openai SDK)."
        ' Install it with: pip install "finetune[openai]"'
    )


def test_a_fake_tuned_model_answers_with_what_it_was_trained_on() -> None:
    from finetune.testing import FakeBackend

    FakeBackend.reset("eval-a")
    FakeBackend.reset("eval-b")
    quick = {"validating": 0.0, "queued": 0.0, "running": 0.0}
    tuner = ft.Tuner("fake", model="base", namespace="eval-a", **quick)
    tuned = tuner.fit(_qa(10)).wait().model
    asked = ft.Dataset.from_records(
        [
            {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}
            for q, a in [("What is 2 + 1?", "3"), ("what is 4 + 1 then", "5"), ("Hello?", "x")]
        ]
    )
    result = ft.evaluate(
        asked,
        {"base": tuner.base_model, "tuned": tuned},
        [m.exact_match],
        predictor_options={"tuned": {"namespace": "eval-a"}},
        cache=False,
    )
    # the trained reply, the nearest trained question's reply, and no shared word: repeated
    assert result.predictions("tuned") == ["3", "5", "Hello?"]
    assert result.predictions("base") == ["What is 2 + 1?", "what is 4 + 1 then", "Hello?"]

    # another namespace's job of the same id learned other rows: another cache key
    other = ft.Tuner("fake", model="base", namespace="eval-b", **quick).fit(_qa(12)).wait()
    assert other.id == tuned.name.rsplit(":", 1)[1]
    names = {
        ft.evaluation.predictor_for(tuned, namespace=space).name for space in ("eval-a", "eval-b")
    }
    assert len(names) == 2
    with pytest.raises(ft.JobNotFound, match="no fake job 'ftjob-fake-0001' in namespace 'x'"):
        ft.evaluation.predictor_for(tuned, namespace="x")


def test_a_fake_tuners_models_are_asked_in_its_namespace() -> None:
    """A namespaced fake Tuner's ``job.model`` was asked in the default namespace, a
    ``JobNotFound``, unless ``predictor_options`` named the namespace a second time."""
    from finetune.testing import FakeBackend

    FakeBackend.reset("eval-own")
    tuner = ft.Tuner("fake", model="base", namespace="eval-own", running=0.0)
    handle = tuner.fit(_qa(10))
    candidates = {"base": tuner.base_model, "tuned": handle.wait().model, "handle": handle.model}
    result = ft.evaluate(_qa(3), candidates, m.exact_match, cache=False)
    assert result.predictions("tuned") == result.predictions("handle") == ["1", "2", "3"]
    assert result.trained_on == {"tuned": [0, 1, 2], "handle": [0, 1, 2]}


def test_a_model_evaluated_on_what_it_was_trained_on_is_noted_on_the_result(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from finetune._html import eval_html
    from finetune.testing import FakeBackend

    FakeBackend.reset("eval-seen")
    tuner = ft.Tuner("fake", model="base", namespace="eval-seen", running=0.0)
    train = _qa(12)
    tuned = tuner.fit(train).wait().model
    rows = [record.data for record in _qa(20).records()]
    mixed = ft.Dataset.from_records([*rows[10:14], *rows[:3]])
    with caplog.at_level("WARNING", logger="finetune"):
        result = ft.evaluate(
            [*mixed],
            {"base": tuner.base_model, "tuned": tuned},
            m.exact_match,
            predictor_options={"tuned": {"namespace": "eval-seen"}},
            cache=False,
        )
    note = (
        "candidate 'tuned' was fine-tuned on 5 of the 7 evaluated examples (at index 0, 1, 4, "
        "5, 6), answers included: its scores on them are inflated. Evaluate on data without "
        'them: holdout.excluding(train) (an eval config\'s exclude = "train.jsonl")'
    )
    assert result.notes == [note]  # rows 10 and 11 of _qa(20) are in _qa(12) too
    assert result.to_markdown().endswith(f"\n\nNote: {note}")
    assert "<b>Note:</b> candidate &#x27;tuned&#x27; was fine-tuned on 5" in eval_html(result)
    assert any(note in r.getMessage() for r in caplog.records)
    again = EvalResult.from_json(result.to_json(tmp_path / "result.json"))
    assert again.notes == [note]
    held_out = ft.evaluate(
        ft.Dataset.from_records(rows[12:]),
        {"tuned": tuned},
        m.exact_match,
        predictor_options={"tuned": {"namespace": "eval-seen"}},
        cache=False,
    )
    assert held_out.notes == []
    assert "Note:" not in held_out.to_markdown() and "notes" not in held_out.to_dict()


def test_a_plugin_backend_gives_the_predictor_for_its_models() -> None:
    class Answering(BaseBackend):
        name = "answering-for-test"

        @classmethod
        def predictor(cls, model: str, **options: Any) -> ft.evaluation.Predictor:
            return ft.evaluation.CallablePredictor(lambda _: f"{model} {options}", name=model)

    class Silent(BaseBackend):
        name = "silent-for-test"

    ft.register_backend("answering-for-test", Answering)
    ft.register_backend("silent-for-test", Silent)
    result = ft.evaluate(
        _qa(2),
        {"a": ft.ModelRef(backend="answering-for-test", name="m1")},
        [m.exact_match],
        predictor_options={"a": {"temperature": 0}},
        cache=False,
    )
    assert result.predictions("a") == ["m1 {'temperature': 0}"] * 2
    silent = {"s": ft.ModelRef(backend="silent-for-test", name="m")}
    with pytest.raises(ft.UnsupportedFeature, match="'silent-for-test' has no predictor"):
        ft.evaluate(_qa(2), silent, [m.exact_match], cache=False)
    with pytest.raises(ft.BackendNotFound, match="Did you mean 'together'"):
        ft.evaluate(_qa(2), {"t": ft.ModelRef(backend="togther", name="m")}, m.exact_match)


def test_evaluation_errors_are_our_own_and_hide_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "sk-wrong-key-0123456789abcdef"
    with OpenAIFake() as fake:
        ref = ft.ModelRef.openai_compatible(fake.base_url, "m", api_key=secret)
        with pytest.raises(ft.AuthenticationError) as caught:
            ft.evaluate(_qa(2), {"x": ref}, [m.exact_match], cache=False)
        monkeypatch.setenv("OPENAI_BASE_URL", fake.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", secret)
        with pytest.raises(ft.AuthenticationError) as from_the_environment:
            ft.evaluate(_qa(2), {"x": ft.ModelRef(backend="openai", name="m")}, m.exact_match)
    # the advice is how to give an evaluated model its key, not a Tuner's
    options = "predictor_options={candidate: {'api_key': ...}} (ref.ask(..., api_key=...))"
    assert str(caught.value).endswith(f"Pass the key {fake.base_url} takes in {options}")
    assert str(from_the_environment.value).endswith(
        f"Set OPENAI_API_KEY or pass the key in {options}"
    )
    assert secret not in str(caught.value) and secret not in repr(caught.value.__cause__)
    (note,) = caught.value.__notes__
    assert note.startswith("while candidate 'x' predicted the example at index ")
    assert caught.value.__context__ is None or isinstance(
        caught.value.__context__, ft.FinetuneError
    )
    gone = ft.ModelRef.openai_compatible("http://127.0.0.1:9/v1", "m")
    at = r"connection problem at http://127\.0\.0\.1:9/v1: "  # which of one's servers is down
    with pytest.raises(ft.ServerError, match=at) as down:
        ft.evaluate(_qa(2), {"x": gone}, [m.exact_match], cache=False, max_attempts=1)
    # the server's kind, not OpenAI, and what a refused connection means
    assert str(down.value).startswith("[openai-compatible] connection problem")
    assert "nothing listens there: is the server running, and is the URL right?" in str(down.value)


def test_no_event_loop_noise_after_evaluate(tmp_path: Path) -> None:
    import subprocess
    import sys
    import textwrap

    script = tmp_path / "run.py"
    script.write_text(
        textwrap.dedent(
            """
            import sys, gc
            import finetune as ft
            rows = [{"messages": [{"role": "user", "content": "hi"},
                                  {"role": "assistant", "content": "echo: hi"}]}] * 3
            ref = ft.ModelRef.openai_compatible(sys.argv[1], "m", api_key=sys.argv[2])
            for _ in range(2):
                result = ft.evaluate(ft.Dataset.from_records(rows), {"x": ref},
                                     [ft.metrics.exact_match], cache=False)
            gc.collect()
            print(result.summary()["x"]["exact_match"].mean)
            """
        )
    )
    with OpenAIFake() as fake:
        done = subprocess.run(
            [sys.executable, "-X", "dev", str(script), fake.base_url, fake.api_key],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "1.0"
    assert "Event loop is closed" not in done.stderr and "Unclosed" not in done.stderr


def test_openai_predictor_sync_call() -> None:
    with OpenAIFake() as fake:
        predictor = OpenAIPredictor("gpt-4.1-mini", api_key=fake.api_key, base_url=fake.base_url)
        assert predictor.predict([{"role": "user", "content": "hi"}]) == "echo: hi"


def test_a_reasoning_model_is_asked_with_the_parameters_it_takes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """o1 to o4 and gpt-5 refuse ``max_tokens`` and a temperature other than 1: every answer
    of such a candidate, and every grade of such a judge, was an InvalidRequestError."""
    hi = [{"role": "user", "content": "hi"}]
    with OpenAIFake() as fake, caplog.at_level("WARNING", logger="finetune"):
        blocking = OpenAIPredictor("o4-mini", api_key=fake.api_key, base_url=fake.base_url)
        assert blocking.predict(hi) == "echo: hi"
        reasoning = OpenAIPredictor("gpt-5-mini", api_key=fake.api_key, base_url=fake.base_url)
        judge = m.llm_judge(OpenAIPredictor("o3", api_key=fake.api_key, base_url=fake.base_url))
        fake.chat_responder = lambda model, messages: "Grade: 4" if model == "o3" else "1"
        candidates = {"r": reasoning}
        result = ft.evaluate(_qa(4), candidates, [judge], cache=False, max_concurrency=4)
        plain = OpenAIPredictor("gpt-4.1-mini", api_key=fake.api_key, base_url=fake.base_url)
        plain.predict(hi)
        asked = [r.body for r in fake.requests if "messages" in r.body]
    assert result.scores("r", "llm_judge") == [0.75] * 4  # four at once: each adapted
    for model, answers in [("o4-mini", 1), ("gpt-5-mini", 4), ("o3", 4)]:
        bodies = [body for body in asked if body["model"] == model]
        taken = [body for body in bodies if "max_tokens" not in body and "temperature" not in body]
        assert len(taken) == answers and bodies[-1] in taken, bodies
        assert all(body["max_completion_tokens"] == 256 and body["seed"] == 0 for body in taken)
    assert asked[-1]["max_tokens"] == 256 and asked[-1]["temperature"] == 0.0  # as before
    refused = [
        r.getMessage() for r in caplog.records if "refuses temperature=0.0" in r.getMessage()
    ]
    assert [message.split()[0] for message in refused] == ["o4-mini", "gpt-5-mini", "o3"]


def test_openai_is_asked_for_max_completion_tokens_and_other_servers_for_max_tokens() -> None:
    """OpenAI deprecates ``max_tokens`` (its reasoning models refuse it); a vLLM or llama.cpp
    server, or another provider, takes it."""
    hi = [{"role": "user", "content": "hi"}]
    official = OpenAIPredictor("gpt-4.1-mini", api_key="sk-test")._request(hi, None)
    assert official["max_completion_tokens"] == 256 and "max_tokens" not in official
    legacy = OpenAIPredictor("babbage-002", api_key="sk-test")._request(hi, None)
    assert legacy["max_tokens"] == 256  # the completions API has no max_completion_tokens
    served = OpenAIPredictor("m", base_url="http://127.0.0.1:8000/v1")._request(hi, None)
    assert served["max_tokens"] == 256 and "max_completion_tokens" not in served


# -- the tiny local model --


@pytest.mark.timeout(300)
def test_tuned_tiny_model_beats_its_base(
    tiny_base: str, tuned_tiny: str, rows: list[dict[str, Any]]
) -> None:
    holdout = ft.Dataset.from_records([*rows[340:399], rows[177]])  # the last, a training row
    train = ft.Dataset.from_records(rows[:300])
    base = ft.ModelRef(backend="hf", name=tiny_base)
    result = ft.evaluate(
        holdout,
        {
            "base": base,
            "few-shot": base.with_few_shot(train, k=3),
            "tuned": ft.ModelRef(backend="hf", name=tuned_tiny),
        },
        [m.token_f1, m.regex(r"^Hello \w+! Order \d+: ", name="format")],
        predictor_options={"base": {"max_new_tokens": 24}, "tuned": {"max_new_tokens": 24}},
    )
    comparison = result.compare("tuned", "base")
    assert comparison.verdict == "improved" and comparison.low > 0
    assert result.compare("tuned", "base", "format").verdict == "improved"
    assert "few-shot" in result.to_markdown(baseline="base")
    assert isinstance(HFPredictor(tuned_tiny).name, str)
    assert result.notes[0] == (
        "candidate 'tuned' was fine-tuned on 1 of the 60 evaluated examples (at index 59), "
        "answers included: its scores on them are inflated. Evaluate on data without them: "
        'holdout.excluding(train) (an eval config\'s exclude = "train.jsonl")'
    )
    # the untuned model rambles to its token limit; the tuned one learned to end its answer
    cut = [note.split(":")[0] for note in result.notes[1:]]
    assert cut == ["candidate 'base'", "candidate 'few-shot'"], result.notes
    assert "stopped at max_new_tokens=24" in result.notes[1]
    assert "stopped at max_new_tokens=64" in result.notes[2]
    clean = holdout.excluding(train)  # the training row goes, and with it the note
    assert len(clean) == 59
    again = ft.evaluate(
        clean, {"tuned": ft.ModelRef(backend="hf", name=tuned_tiny)}, m.token_f1, cache=False
    )
    assert again.notes == []


def test_finetune_ask_answers_with_a_local_job_s_model(
    tuned_tiny: str,
    rows: list[dict[str, Any]],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``finetune ask hf:hfjob-... "question"``: the model a local job made, named as an eval
    config names a candidate, answers as ``ref.ask`` and ``ft.evaluate`` have it answer."""
    from finetune.cli import main

    job = ft.Job(id="hfjob-ask", backend="hf", base_model="tiny", status="succeeded")
    ft.JobRegistry().record(job.model_copy(update={"fine_tuned_model": tuned_tiny}))
    system, question = (rows[5]["messages"][i]["content"] for i in (0, 1))
    asked = ["hf:hfjob-ask", question, "--system", system, "--option", "max_new_tokens=24"]
    assert main(["ask", *asked]) == 0
    reply = capsys.readouterr().out.strip()
    assert re.match(r"Hello \w+! Order \d+: ", reply), reply  # the house format it learned
    turns = [{"role": "system", "content": system}, {"role": "user", "content": question}]
    assert ft.ModelRef(backend="hf", name=tuned_tiny).ask(turns, max_new_tokens=24) == reply
    monkeypatch.setattr("sys.stdin", io.StringIO(question))  # a prompt piped in, as "-"
    assert main(["ask", *asked[:1], "-", *asked[2:]]) == 0
    assert capsys.readouterr().out.strip() == reply
    assert main(["ask", "tiny", question]) == 2
    assert "'tiny' names no model: write it backend:model" in capsys.readouterr().err


def test_a_local_job_s_folder_is_asked_as_the_model_it_made(
    tuned_tiny: str, rows: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    """``finetune ask hf:./jobs/hfjob-...`` (the folder ``finetune status`` and ``export``
    take) said the job's folder "is not a model folder or .gguf file here, and not a model
    the Hugging Face Hub or its cache has"; a Tuner given it as its model said the same."""
    from finetune.cli import main
    from finetune.evaluation._checks import as_models

    job_folder = str(Path(tuned_tiny).parent)
    question = rows[5]["messages"][1]["content"]
    assert main(["ask", f"hf:{job_folder}", question, "--option", "max_new_tokens=8"]) == 0
    reply = capsys.readouterr().out.strip()
    assert ft.ModelRef(backend="hf", name=tuned_tiny).ask(question, max_new_tokens=8) == reply
    tuned = as_models({"tuned": f"hf:{job_folder}"})["tuned"]
    assert (tuned.name, tuned.job_id) == (tuned_tiny, Path(job_folder).name)
    with pytest.raises(ft.InvalidRequestError) as raised:
        ft.Tuner("hf", model=job_folder, registry=False).validate(ft.Dataset.from_records(rows[:2]))
    assert str(raised.value) == (
        f"[hf] model {job_folder!r} is a local job's folder, not a model: the model it made is "
        f"{tuned_tiny} (param: model)"
    )


def test_weights_rewritten_in_place_are_loaded_again(tiny_base: str, tmp_path: Path) -> None:
    import shutil

    import torch
    from transformers import AutoModelForCausalLM

    folder = tmp_path / "model"
    shutil.copytree(tiny_base, folder)
    before = HFPredictor(str(folder))
    first = before._load().model
    model = AutoModelForCausalLM.from_pretrained(folder)
    with torch.no_grad():
        next(model.parameters()).add_(1.0)
    model.save_pretrained(folder)  # retrained into the same folder
    after = HFPredictor(str(folder))
    assert after.name != before.name and after._load().model is not first
    assert after.predict_batch([[{"role": "user", "content": "Hi"}]])


def test_local_models_no_evaluation_uses_are_freed_beyond_max_loaded(
    tiny_base: str, tuned_tiny: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Evaluating checkpoint after checkpoint in a notebook must not keep every model loaded."""
    import shutil

    monkeypatch.setattr(HFPredictor, "max_loaded", 1)
    # copies: a predictor of the shared folders that another test left alive holds them
    tiny_base = str(shutil.copytree(tiny_base, tmp_path / "base"))
    tuned_tiny = str(shutil.copytree(tuned_tiny, tmp_path / "tuned"))
    third = tmp_path / "third"
    shutil.copytree(tiny_base, third)
    hi = [[{"role": "user", "content": "Hi"}]]
    base = HFPredictor(tiny_base, max_new_tokens=2)
    base.predict_batch(hi)
    weights = weakref.ref(base._load().model)
    tuned = HFPredictor(tuned_tiny, max_new_tokens=2)
    tuned.predict_batch(hi)  # base is still held by its predictor: both stay
    assert HFPredictor.loaded_models()[-2:] == [tiny_base, tuned_tiny]
    base.close()
    tuned.close()  # no one holds either: the least recently used goes
    assert tiny_base not in HFPredictor.loaded_models()
    gc.collect()
    assert weights() is None, "a freed model's weights must leave memory"
    data = ft.Dataset.from_records([{"messages": hi[0] + [{"role": "assistant", "content": "a"}]}])
    candidates = {
        "tuned": ft.ModelRef(backend="hf", name=tuned_tiny),
        "third": ft.ModelRef(backend="hf", name=str(third)),
    }
    options = {name: {"max_new_tokens": 2} for name in candidates}
    ft.evaluate(data, candidates, m.token_f1, cache=False, predictor_options=options)
    assert HFPredictor.loaded_models() == [str(third)]  # the evaluation closed its predictors


def test_evaluate_is_typed_with_the_keywords_of_aevaluate() -> None:
    """``evaluate`` took ``**options: Any``: a checker and an editor saw none of its options,
    so ``max_concurency=4`` passed them both. Its ``EvaluateOptions`` must stay those of
    ``aevaluate``, name for name and type for type."""
    import inspect

    keywords = {
        name: parameter.annotation
        for name, parameter in inspect.signature(ft.aevaluate).parameters.items()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY
    }
    declared = ft.evaluation.EvaluateOptions.__annotations__
    assert {name: hint.__forward_arg__ for name, hint in declared.items()} == keywords != {}
    (options,) = [
        p for p in inspect.signature(ft.evaluate).parameters.values() if p.kind is p.VAR_KEYWORD
    ]
    assert options.annotation == "Unpack[EvaluateOptions]"


def test_an_earlier_turns_reasoning_is_not_sent_and_the_answer_is_the_reference() -> None:
    """A chat API takes no reasoning_content in the history (its own chain of thought is its
    reply's): a prompt sends the turns without it, and the reference is the answer's
    content, not its reasoning."""
    from finetune.evaluation._prompts import split_example

    turn = {"role": "assistant", "content": "4", "reasoning": "Two and two."}
    row = {"messages": [{"role": "user", "content": "2 + 2?"}, turn]}
    row["messages"] += [{"role": "user", "content": "And 3 + 3?"}, {**turn, "content": "6"}]
    (example,) = ft.Dataset.from_records([row])
    prompt, reference = split_example(example)
    assert reference == "6"
    assert all("reasoning_content" not in message for message in prompt)
    assert prompt[1] == {"role": "assistant", "content": "4"}


def test_a_reasoning_models_think_block_is_not_its_answer() -> None:
    """Qwen 3 and DeepSeek R1 write ``<think>...</think>`` before the answer (locally, or
    served without a reasoning parser): the answer scored was the whole reply, so a right
    answer scored 0."""
    from finetune.evaluation._predictors import after_thinking

    assert after_thinking("<think>\nTwo and two.\n</think>\n\n4") == "4"
    assert after_thinking("<think>\nTwo and two") == ""  # cut before it answered
    assert after_thinking("4, not <think>") == "4, not <think>"
    rows = [
        {
            "messages": [
                {"role": "user", "content": f"{i} + 1?"},
                {"role": "assistant", "content": str(i + 1)},
            ]
        }
        for i in range(3)
    ]
    with OpenAIFake() as fake:
        fake.chat_responder = lambda model, messages: (
            f"<think>\nAdd one.\n</think>\n\n{int(messages[-1]['content'].split()[0]) + 1}"
        )
        model = ft.ModelRef(backend="openai", name="deepseek-r1")
        result = ft.evaluate(
            ft.Dataset.from_records(rows),
            {"r1": model},
            m.exact_match,
            predictor_options={"r1": {"api_key": fake.api_key, "base_url": fake.base_url}},
            cache=False,
        )
    assert result.scores("r1", "exact_match") == [1.0, 1.0, 1.0]


@needs_mistralai
def test_a_predictor_written_once_answers_from_both_faces_and_inside_a_running_loop() -> None:
    """OpenAI's and Mistral's predictors had a blocking and an async twin of their asking;
    the blocking face now runs the async one without an event loop, and so works where one
    already runs (a notebook cell), and maps errors as the async one does."""
    import asyncio

    from finetune._loop import returned, without_waiting

    hi = [{"role": "user", "content": "hi"}]
    with OpenAIFake() as openai, MistralFake() as mistral:
        mistral.chat_responder = lambda model, messages: "mistral: hi"
        asked = [
            OpenAIPredictor("m", api_key=openai.api_key, base_url=openai.base_url),
            MistralPredictor("m", api_key=mistral.api_key, server_url=mistral.base_url),
        ]

        async def in_a_loop() -> list[str]:
            return [p.predict(hi) for p in asked] + [await p.apredict(hi) for p in asked]

        assert asyncio.run(in_a_loop()) == ["echo: hi", "mistral: hi"] * 2
        wrong = OpenAIPredictor("m", api_key="sk-wrong", base_url=openai.base_url)
        with pytest.raises(ft.AuthenticationError) as refused:
            wrong.predict(hi)
        assert "sk-wrong" not in str(refused.value)

    async def waits() -> None:
        await asyncio.sleep(0)

    assert without_waiting(returned(len)(hi)) == 1
    with pytest.raises(RuntimeError, match="waited on an event loop"):
        without_waiting(waits())


def test_a_server_url_without_v1_is_told_where_the_api_answers() -> None:
    """``ModelRef.openai_compatible("http://localhost:11434", ...)`` (Ollama's address, as
    its own docs write it) failed as "404 page not found" and nothing more."""
    import http.server

    class NotHere(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = b"404 page not found"  # Ollama's answer to a path it does not serve
            self.send_response(404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotHere)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    hi = [{"role": "user", "content": "hi"}]
    try:
        asked = ft.evaluation.predictor_for(ft.ModelRef.openai_compatible(url, "support"))
        with pytest.raises(ft.InvalidRequestError) as missed:
            asked.predict(hi)
        with_v1 = ft.evaluation.predictor_for(ft.ModelRef.openai_compatible(f"{url}/v1", "x"))
        with pytest.raises(ft.InvalidRequestError) as unknown:
            with_v1.predict(hi)
    finally:
        server.shutdown()
        server.server_close()
    assert str(missed.value) == (
        f"[openai-compatible] 404 page not found; OpenAI-compatible servers answer under /v1: "
        f"is the URL {url}/v1? (param: base_url)"
    )
    assert missed.value.param == "base_url" and "/v1" not in str(unknown.value)


def test_a_model_asked_one_prompt_answers_as_an_evaluation_asks_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Trying a tuned model on one question took a one-row dataset, a metric and
    ``result.predictions(...)[0]``: ``ref.ask`` asks it directly."""
    tuner = ft.Tuner("fake", model="base", registry=False)
    job = tuner.fit(_qa(12))
    job.wait()
    system, question, answer = (m.model_dump(exclude_none=True) for m in _qa(12)[3].messages)
    assert job.model.ask([system, question]) == answer["content"] == "4"  # as it was trained
    asked = question["content"]
    assert tuner.base_model.ask(asked) == asked  # an untuned fake repeats the question
    earlier = [{"role": "user", "content": "hello"}, {"role": "assistant", "content": "hi"}]
    assert asyncio.run(tuner.base_model.aask([*earlier, {"role": "user", "content": "x?"}])) == "x?"
    with pytest.raises(ValueError, match="ends with the assistant's turn"):
        job.model.ask(earlier)
    assert job.model.ask(_qa(12)[3]) == "4"  # an example: its prompt, as evaluate asks it
    with pytest.raises(ValueError, match="an example offers its own tools"):
        job.model.ask(_qa(12)[3], tools=[WEATHER_TOOL])
    with pytest.raises(TypeError, match="a user turn's text, or a conversation's turns"):
        job.model.ask([])
    with pytest.raises(ValueError, match=r"^ask's options: .*max_tokens"):
        job.model.ask(asked, max_tokens=5)
    with pytest.raises(ValueError, match=r"\(FakePredictor\) takes no tools"):
        job.model.ask(asked, tools=[WEATHER_TOOL])
    monkeypatch.delenv("TOGETHER_API_KEY", raising=False)
    with pytest.raises(ft.AuthenticationError, match=r"\(ref\.ask\(\.\.\., api_key=\.\.\.\)\)"):
        ft.ModelRef(backend="together", name="acct/m").ask(asked)  # told how ask takes a key


def test_a_model_asked_over_http_gets_its_shots_its_tools_and_retries(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with OpenAIFake(faults=Faults(rate=0.5, kinds=("429", "503"), seed=1)) as fake:
        fake.chat_responder = weather_model
        served = ft.ModelRef.openai_compatible(fake.base_url, "ft:served", api_key=fake.api_key)
        shown = served.with_few_shot(_qa(3), k=2)
        reply = shown.ask("Weather in City7?", tools=[WEATHER_TOOL])
        chats = [r for r in fake.requests if r.path.endswith("/chat/completions")]
        answered = served.ask(weather_data(2)[1])  # an example with its tools and their result
        assert answered == "It is 0 C in City0." and fake.requests[-1].body["tools"]
        base = ft.ModelRef.openai_compatible(fake.base_url, "base", api_key=fake.api_key)
        with caplog.at_level(logging.WARNING, logger="finetune"):
            cut = base.ask("Weather in City7?", max_tokens=2)  # "I cannot check the weather."
    assert cut == "I cannot" and "the reply stopped at max_tokens=2, cut short" in caplog.text
    assert reply == 'get_weather({"city": "City7"})'
    assert any(r.fault for r in chats) and chats[-1].fault is None  # retried to an answer
    asked = chats[-1].body
    assert asked["tools"] == [WEATHER_TOOL]
    assert [t["role"] for t in asked["messages"]] == ["user", "assistant"] * 2 + ["user"]
    assert fake.api_key not in repr(served)


def test_a_predictor_is_asked_whether_it_takes_tools_only_where_tools_are_offered() -> None:
    """``HFPredictor.supports_tools`` loads the model's tokenizer: each ``ref.ask`` paid
    0.25 s for it, and ``ft.evaluate`` asked it once a prediction, with no tools offered."""

    class Counting:
        name = "counting"
        asked = 0

        @property
        def supports_tools(self) -> bool:
            Counting.asked += 1
            return True

        def predict(self, messages: Any, tools: Any = None) -> str:
            return "1"

        async def apredict(self, messages: Any, tools: Any = None) -> str:
            return "1"

    ft.evaluate(_qa(3), {"c": Counting()}, [m.exact_match], cache=False)
    assert Counting.asked == 0
    ft.evaluate(weather_data(1), {"c": Counting()}, [m.exact_match], cache=False)
    assert Counting.asked > 0  # offered tools: asked whether it takes them


def test_finetune_ask_asks_an_openai_compatible_server_at_its_endpoint(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An exported model served by Ollama or llama.cpp's server (``acme-support:latest``)
    could be asked from Python only: the command took ``backend:model`` alone."""
    from finetune.cli import main

    with OpenAIFake() as fake:
        fake.chat_responder = lambda model, messages: f"{model} heard {messages[-1]['content']}"
        key = f"api_key={fake.api_key}"
        served = ["acme-support:latest", "hi", "--endpoint", fake.base_url, "--option", key]
        assert main(["ask", *served]) == 0
        assert capsys.readouterr().out == "acme-support:latest heard hi\n"
        named = ["openai-compatible:acme", "hi", "--endpoint", fake.base_url, "--option", key]
        assert main(["ask", *named]) == 0  # its backend named, as an eval config names it
        assert capsys.readouterr().out == "acme heard hi\n"
        monkeypatch.setattr("sys.stdin", io.StringIO("hi\n\n"))  # echo hi | finetune ask ... -
        assert main(["ask", named[0], "-", *named[2:]]) == 0
        assert capsys.readouterr().out == "acme heard hi\n"  # not the newlines echo adds
        printed = str(ft.ModelRef.openai_compatible(fake.base_url, "acme", api_key=fake.api_key))
        assert printed == f"openai-compatible:acme@{fake.base_url}"  # as results print it
        assert main(["ask", printed, "hi", "--option", key]) == 0
        assert capsys.readouterr().out == "acme heard hi\n"
        result = ft.evaluate(
            _qa(1),
            {"s": printed},
            m.exact_match,
            cache=False,
            predictor_options={"s": {"api_key": fake.api_key}},
        )
        assert result.predictions("s") == ["acme heard What is 0 + 1?"]
        assert main(["ask", *served[:-1], "api_key=sk-not-its-key"]) == 2
        said = capsys.readouterr().err  # the command's way to give the key, not Python's
        assert said.endswith("takes in --option api_key=...\n") and "predictor_opt" not in said
    assert main(["ask", "openai-compatible:acme", "hi"]) == 2
    assert "is served at a URL: give it as --endpoint URL" in capsys.readouterr().err
