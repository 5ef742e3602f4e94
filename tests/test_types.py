from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, TypeAdapter, ValidationError

import finetune as ft
from finetune.types import Example, FunctionCall, Tool, ToolCall

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)

VALUES: list[BaseModel] = [
    ft.Message(role="user", content="hi"),
    ft.Message(
        role="assistant",
        tool_calls=[ToolCall(id="call1", function=FunctionCall(name="f", arguments="{}"))],
        weight=1,
    ),
    ft.ChatExample(
        messages=[ft.Message(role="user", content="a"), ft.Message(role="assistant", content="b")],
        tools=[Tool(function={"name": "f", "parameters": {"type": "object"}})],
    ),
    ft.CompletionExample(prompt="p", completion="c"),
    ft.PreferenceExample(
        input=[ft.Message(role="user", content="q")],
        chosen=[ft.Message(role="assistant", content="good")],
        rejected=[ft.Message(role="assistant", content="bad")],
    ),
    ft.Hyperparameters(epochs=3, batch_size="auto", learning_rate_multiplier=0.5, extra={"x": 1}),
    ft.LoRA(r=8, alpha=16),
    ft.FileRef(backend="openai", id="file-1", filename="a.jsonl", bytes=10),
    ft.ModelRef(backend="openai", name="ft:gpt:x", base_model="gpt", job_id="j"),
    ft.Job(
        id="j1",
        backend="fake",
        base_model="m",
        status=ft.JobStatus.FAILED,
        created_at=NOW,
        error=ft.JobError(code="bad", message="boom"),
        hyperparameters=ft.Hyperparameters(epochs=2),
        metadata={"k": "v"},
        raw={"id": "j1"},
    ),
    ft.JobEvent(created_at=NOW, message="started", level="info"),
    ft.MetricPoint(step=3, train_loss=0.5, valid_loss=0.6, extra={"tokens": 10.0}),
    ft.Checkpoint(id="c", step=3, model="m:ckpt", created_at=NOW, metrics={"loss": 0.1}),
    ft.CostEstimate(
        backend="openai",
        model="m",
        examples=10,
        tokens_total=100,
        tokens_p50=10,
        tokens_p95=12,
        tokens_max=15,
        epochs=3,
        billed_tokens=300,
        cost=0.01,
    ),
]


@pytest.mark.parametrize("value", VALUES, ids=lambda v: type(v).__name__)
def test_json_round_trip(value: BaseModel) -> None:
    again = type(value).model_validate_json(value.model_dump_json())
    assert again == value


@pytest.mark.parametrize("value", VALUES, ids=lambda v: type(v).__name__)
def test_a_value_hashes_as_it_compares(value: BaseModel) -> None:
    """A message with tool calls, a job, ``Hyperparameters`` with ``extra``: frozen, yet
    ``hash`` said "unhashable type: 'list'" (a set of messages, a grid search's dict keyed by
    its settings), while a message of plain text hashed."""
    again = type(value).model_validate_json(value.model_dump_json())
    assert hash(again) == hash(value) and {value, again} == {value}


def test_values_key_a_dict_by_what_they_hold() -> None:
    runs = {ft.Hyperparameters(epochs=2, extra={"n_evals": 1}): "a"}
    runs[ft.Hyperparameters(epochs=2, extra={"n_evals": 1.0})] = "b"  # 1 == 1.0, as in a dict
    runs[ft.Hyperparameters(epochs=2, extra={"n_evals": 2})] = "c"
    assert list(runs.values()) == ["b", "c"]
    assert ft.LoRA(r=8) != ft.Hyperparameters() and hash(ft.LoRA()) != hash(ft.LoRA(r=8))


def test_example_union_discriminates_on_kind() -> None:
    adapter: TypeAdapter[Example] = TypeAdapter(Example)
    parsed = adapter.validate_python({"kind": "completion", "prompt": "p", "completion": "c"})
    assert isinstance(parsed, ft.CompletionExample)


def test_values_are_frozen() -> None:
    message = ft.Message(role="user", content="hi")
    with pytest.raises(ValidationError):
        message.content = "changed"  # type: ignore[misc]


def test_a_value_given_by_position_is_shown_the_call_by_name() -> None:
    """``ModelRef("openai", "ft:...")`` said pydantic's "BaseModel.__init__() takes 1
    positional argument but 3 were given", not how to write it."""
    with pytest.raises(TypeError, match=r"^ModelRef takes its fields by name, not 2 by position: "):
        ft.ModelRef("openai", "ft:x")  # type: ignore[misc]
    with pytest.raises(TypeError, match=r": ModelRef\(backend=\.\.\., name=\.\.\.\)$"):
        ft.ModelRef("openai", "ft:x")  # type: ignore[misc]
    with pytest.raises(TypeError, match=r"^Hyperparameters takes its fields by name.*\(\.\.\.\)$"):
        ft.Hyperparameters(3)  # type: ignore[misc]
    assert ft.ModelRef(backend="openai", name="ft:x").name == "ft:x"


def test_a_value_s_signature_names_its_fields_before_one_is_made() -> None:
    """``help(ft.Hyperparameters)``, a notebook's call tips and tools that build calls from
    ``inspect.signature`` read ``() -> None`` from a class pydantic builds on first use, until
    one was made; a fresh process reads every value class before any is."""
    script = (
        "import inspect, json, pydantic, finetune.types as types\n"
        "from finetune.backends.base import JobRequest\n"
        "classes = [c for n, c in vars(types).items() if isinstance(c, type) and not\n"
        "           n.startswith('_') and issubclass(c, pydantic.BaseModel)]\n"
        "shown = {c.__name__: [[p.name, p.kind.name] for p in\n"
        "         inspect.signature(c).parameters.values()] for c in [*classes, JobRequest]}\n"
        "print(json.dumps(shown))\n"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    shown = json.loads(run.stdout)
    from finetune.backends.base import JobRequest

    assert {"Hyperparameters", "Message", "Job", "CostEstimate", "JobRequest"} <= shown.keys()
    for name, parameters in shown.items():
        cls = JobRequest if name == "JobRequest" else getattr(ft.types, name)
        fields = [[field, "KEYWORD_ONLY"] for field in cls.model_fields]
        extra = [["fields", "VAR_KEYWORD"]] if cls.model_config.get("extra") == "allow" else []
        assert parameters == fields + extra, name


def test_status_terminal_flags() -> None:
    terminal = {s for s in ft.JobStatus if s.is_terminal}
    assert terminal == {ft.JobStatus.SUCCEEDED, ft.JobStatus.FAILED, ft.JobStatus.CANCELLED}


def test_hyperparameters_reject_non_positive_epochs() -> None:
    with pytest.raises(ValidationError):
        ft.Hyperparameters(epochs=0)


@pytest.mark.parametrize(
    "settings",
    [
        {"learning_rate_multiplier": 0},  # every provider refuses it, after the upload
        {"beta": -1.0},
        {"warmup": 1.5},  # a fraction of training, not a number of steps
        {"seed": -1},
        {"epochs": True},
        {"learning_rate": True},  # was 1.0: a YAML "yes" would have wrecked the model
        {"warmup": False},
        {"seed": True},
        {"lora": {"r": True}},
        {"lora": {"target_modules": []}},
        {"learning_rate": float("inf")},  # no trainer survives it; NaN is refused as well
        {"learning_rate_multiplier": float("inf")},
        {"beta": float("nan")},
    ],
)
def test_hyperparameters_refuse_what_no_trainer_takes(settings: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        ft.Hyperparameters(**settings)
    ft.Hyperparameters(learning_rate_multiplier="auto", beta=0.1, warmup=1, seed=0, epochs=3)


def test_extra_settings_are_the_json_a_provider_is_sent() -> None:
    """NumPy's numbers in ``extra`` were kept as they were, and ``fit`` then failed on
    "Unable to serialize unknown type: numpy.int64"; a set or NaN went on to the backend."""
    np = pytest.importorskip("numpy")
    params = ft.Hyperparameters(
        extra={"n_evals": np.int64(2), "ratio": np.float32(0.5), "steps": {"at": (1, np.int8(2))}}
    )
    assert params.extra == {"n_evals": 2, "ratio": 0.5, "steps": {"at": [1, 2]}}
    assert type(params.extra["n_evals"]) is int and type(params.extra["ratio"]) is float
    assert params.extra["steps"]["at"] == [1, 2] and type(params.extra["steps"]["at"][1]) is int
    refused = {
        "extra['tags'] is set {'a'}, not a JSON value": {"tags": {"a"}},
        "extra['curve'][1] is nan, which JSON cannot carry": {"curve": [0.1, float("nan")]},
        "extra['by_step'] has the key 3; JSON's keys are text": {"by_step": {3: 0.1}},
    }
    for message, extra in refused.items():
        with pytest.raises(ValidationError, match=re.escape(message)):
            ft.Hyperparameters(extra=extra)


def test_weight_only_zero_or_one() -> None:
    with pytest.raises(ValidationError):
        ft.Message(role="assistant", content="x", weight=2)  # type: ignore[arg-type]


def test_settings_typed_with_another_tools_name_say_which_field_is_meant() -> None:
    """``ft.Hyperparameters(lr=...)`` said only "Extra inputs are not permitted", where a dict
    given to ``fit`` named the field meant."""
    for make, field, said in (
        (
            lambda: ft.Hyperparameters(lr=1e-4),
            "lr",
            "Hyperparameters has no such field (did "
            "you mean 'learning_rate'?); its fields are epochs, batch_size, learning_rate",
        ),
        (lambda: ft.LoRA(rank=8), "rank", "LoRA has no such field (did you mean 'r'?)"),
        (lambda: ft.Hyperparameters(lora={"rank": 8}), "lora.rank", "LoRA has no such field"),
        (
            lambda: ft.Hyperparameters.model_validate({"num_train_epochs": 3}),
            "num_train_epochs",
            "(did you mean 'epochs'?)",
        ),
    ):
        with pytest.raises(ValidationError) as refused:
            make()
        (problem,) = refused.value.errors()
        assert ".".join(map(str, problem["loc"])) == field and problem["type"] == "extra_forbidden"
        assert said in problem["msg"]
    with pytest.raises(ValidationError) as both:
        ft.Hyperparameters(epochs=0, lr=1)  # the other problems stay as they were
    assert [p["type"] for p in both.value.errors()] == ["invalid_setting", "extra_forbidden"]
    assert both.value.errors()[0]["msg"] == "must be a whole number above 0, or 'auto'"


def test_a_setting_of_the_wrong_kind_says_what_it_must_be_in_one_line() -> None:
    """pydantic said a line for each type a setting may take, in its own words (``epochs``:
    "Input should be a valid integer, unable to parse string as an integer" and "Input should
    be 'auto'"), and ``greater than 0.0`` of a float's bound."""
    for make, field, said in (
        (lambda: ft.Hyperparameters(epochs="three"), "epochs", "must be a whole number or 'auto'"),
        (lambda: ft.Hyperparameters(beta=[1]), "beta", "must be a number or 'auto'"),
        (lambda: ft.Hyperparameters(learning_rate=0), "learning_rate", "must be above 0"),
        (lambda: ft.Hyperparameters(warmup=2), "warmup", "must be at most 1"),
        (lambda: ft.Hyperparameters(lora={"r": 0}), "lora.r", "must be above 0"),
        (
            lambda: ft.Hyperparameters(lora={"target_modules": "q_proj"}),
            "lora.target_modules",
            "must be a list or 'all-linear'",
        ),
        (
            lambda: ft.Hyperparameters(lora="yes"),
            "lora",
            "must be ft.LoRA(...) or a dict of its settings",
        ),
        (lambda: ft.LoRA(quantize_4bit="maybe"), "quantize_4bit", "must be true or false"),
    ):
        with pytest.raises(ValidationError) as refused:
            make()
        (problem,) = refused.value.errors()
        assert ".".join(map(str, problem["loc"])) == field
        assert problem["msg"] == said
    with pytest.raises(ft.InvalidRequestError) as option:
        ft.Tuner("hf", model="m", precision="bf8", registry=False)
    assert str(option.value).startswith(
        "[hf] precision: not 'bf8' (must be 'auto', 'bf16', 'fp16' or 'fp32')"
    )


def test_job_model_only_when_tuned() -> None:
    job = ft.Job(id="j", backend="fake", base_model="m", status=ft.JobStatus.RUNNING)
    assert job.model is None
    done = job.model_copy(update={"status": ft.JobStatus.SUCCEEDED, "fine_tuned_model": "ft:m"})
    assert done.model == ft.ModelRef(backend="fake", name="ft:m", base_model="m", job_id="j")


def test_job_repr_hides_raw_payload() -> None:
    job = ft.Job(id="j", backend="b", base_model="m", status="queued", raw={"x": "payload"})
    assert "payload" not in repr(job)
    assert "b job j" in job._repr_html_() and "payload" not in job._repr_html_()


def test_a_jobs_time_left_is_told_at_the_pace_of_its_current_run() -> None:
    """A local job paused at step 20 of 80 overnight, resumed 40 s ago and now at step 30,
    was shown "about 16h40m left": ten hours over 30 steps, as if it trained through the
    night. Its current run's pace (4 s a step) leaves 50 steps about 3 min 20 s."""
    from datetime import timedelta

    now = datetime.now(timezone.utc)
    raw = {"step": 30, "max_steps": 80}
    resumed = {**raw, "run_started_at": (now - timedelta(seconds=40)).isoformat()}
    job = ft.Job(
        id="j",
        backend="hf",
        base_model="m",
        status="running",
        started_at=now - timedelta(hours=10),
        raw={**resumed, "run_first_step": 20},
    )
    assert re.search(r"elapsed 10h00m, about 3m2\ds left", job._repr_html_())
    just = job.model_copy(update={"raw": {**resumed, "run_first_step": 30}})
    assert "<div>elapsed 10h00m</div>" in just._repr_html_()
    hosted = job.model_copy(update={"raw": raw})  # no run of its own: the job's whole time
    assert "about 16h40m left" in hosted._repr_html_()


def test_a_jobs_raw_payload_never_keeps_a_credential() -> None:
    """A provider may echo a key the job was made with (Fireworks' ``wandbConfig.apiKey``):
    the text of every field named as a credential is masked at any depth; other fields, a
    token count among them, are kept."""
    raw = {
        "wandbConfig": {"enabled": True, "apiKey": "w" * 40, "project": "p"},
        "integrations": [{"type": "wandb", "wandb": {"api_key": "k" * 40}}],
        "hf_api_token": "hf_" + "t" * 30,
        "client_secret": "s" * 20,
        "token_count": 1234,
        "password": None,
    }
    job = ft.Job(id="j", backend="b", base_model="m", status="queued", raw=raw)
    assert job.raw == {
        "wandbConfig": {"enabled": True, "apiKey": "***", "project": "p"},
        "integrations": [{"type": "wandb", "wandb": {"api_key": "***"}}],
        "hf_api_token": "***",
        "client_secret": "***",
        "token_count": 1234,
        "password": None,
    }
    assert raw["hf_api_token"].startswith("hf_")  # the caller's dict is left as it was


def test_a_key_given_in_extra_or_metadata_is_in_no_repr_and_no_registry_row(
    tmp_path: Path,
) -> None:
    """Together takes ``wandb_api_key`` among its create settings, so it may be given in
    ``Hyperparameters(extra=...)``: it was printed by every repr holding them (a job's,
    a request's) and saved in the job registry; the value itself still goes to the provider."""
    import sqlite3

    secret = "wandb-" + "k" * 36
    params = ft.Hyperparameters(epochs=1, extra={"wandb_api_key": secret, "n_evals": 2})
    tuner = ft.Tuner("fake", model="m", registry=tmp_path / "jobs.sqlite3")
    rows = [{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}]
    data = ft.Dataset.from_records(rows * 10)
    job = tuner.fit(data, hyperparameters=params, metadata={"api_key": secret})
    assert job.job.hyperparameters.extra["wandb_api_key"] == secret  # what the provider gets
    for shown in (repr(params), repr(job.job), repr(job), str(job.job)):
        assert secret not in shown
    assert "extra={'wandb_api_key': '***', 'n_evals': 2}" in repr(params)
    assert "metadata={'api_key': '***', 'finetune_key': 'ft-" in repr(job.job)
    with sqlite3.connect(tmp_path / "jobs.sqlite3") as db:
        saved = repr(db.execute("SELECT * FROM jobs").fetchall())
    assert secret not in saved and '"n_evals": 2' in saved
    from finetune.backends.base import JobRequest

    request = JobRequest(  # what a backend is handed, and a plugin may log
        base_model="m",
        training_file=ft.FileRef(backend="hf", id="f"),
        idempotency_key="k",
        hyperparameters=params,
        options={"trainer_args": {"hub_token": secret, "logging_steps": 5}},
    )
    assert secret not in repr(request) and "'logging_steps': 5" in repr(request)
    refused = [{"wandb_api_key": {secret}}, {"wandb_api_key": secret.encode()}]
    for extra in [*refused, {"wandb_api_key": secret, "n_evals": float("nan")}]:
        with pytest.raises(ValidationError) as caught:  # the error quoted the key, and its input
            ft.Hyperparameters(extra=extra)
        assert secret not in str(caught.value) and "extra[" in str(caught.value)
    with pytest.raises(ValidationError) as caught:  # a key given as if it were a setting
        ft.Hyperparameters(wandb_api_key=secret)  # type: ignore[call-arg]
    assert secret not in str(caught.value) and "input_value='***'" in str(caught.value)


def test_a_loss_gone_nan_breaks_the_curve_and_the_rest_is_still_drawn() -> None:
    """A diverging run logs NaN or infinite losses: they once made every coordinate of the
    line NaN (a browser then draws nothing) and a series of them read as no metrics at all."""
    nan, inf = float("nan"), float("inf")
    losses = [2.0, 1.5, nan, 1.0, 0.8, inf]
    series = ft.MetricSeries(
        [ft.MetricPoint(step=i + 1, train_loss=v) for i, v in enumerate(losses)]
    )
    html = series._repr_html_()
    lines = re.findall(r"points='([^']*)'", html)
    assert len(lines) == 2 and not any(n in "".join(lines) for n in ("nan", "inf"))
    assert ">2</text>" in html and ">0.8</text>" in html  # the y axis spans the finite losses
    assert "train_loss inf" in html  # the legend still tells the last loss as it is
    gone = ft.MetricSeries([ft.MetricPoint(step=1, train_loss=nan)])._repr_html_()
    assert "no metrics yet" not in gone and "1 point, last step 1" in gone and "nan" in gone


def test_amounts_of_money_keep_what_a_cent_would_hide() -> None:
    from finetune._words import money

    amounts = (0.0113, 0.004, 0.0000312, 0.5, 0.0, 0.349, 12.345, 1234.5)
    shown = [money(a, "USD") for a in amounts]
    assert shown == [
        "0.0113 USD",
        "0.004 USD",
        "0.0000312 USD",
        "0.5 USD",
        "0.00 USD",
        "0.349 USD",
        "12.35 USD",
        "1,234.50 USD",
    ]
    from finetune._words import size

    assert [size(n) for n in (512, 244_288, 5_400_000, 98_000_000, 2_500_000_000)] == [
        "512 B",
        "244 KB",
        "5.4 MB",
        "98 MB",
        "2.5 GB",
    ]
    local = ft.Tuner("fake", model="m", registry=False).estimate(
        ft.Dataset.from_records([{"prompt": "a", "completion": "b"}] * 12)
    )
    assert not local.hosted and "no provider bill (local training)" in local._repr_html_()
    assert "context unknown" in local._repr_html_()  # model m: no limit, nothing checked
    shown = str(local).splitlines()  # print(estimate): what finetune estimate prints
    assert shown[0] == "fake / m: 12 examples" and "fits context: unknown, exact: True" in shown
    assert "cost: no provider bill (local training)" in shown[2]
    assert [line.removeprefix("note: ") for line in shown[4:]] == local.notes
    within = local.model_copy(update={"context_limit": 4096})
    over = local.model_copy(update={"context_limit": 4, "examples_over_limit": 2})
    assert "context unknown" not in within._repr_html_() and "over the limit" not in (
        within._repr_html_()
    )
    assert "2 over the limit" in over._repr_html_()


def test_metric_series_says_its_latest_losses_and_tabulates_every_metric() -> None:
    """A local job's last point is the evaluation's: the repr keeps the last training loss
    (with its step), and ``to_pandas`` has a float column per metric, extras included."""
    from finetune._series import MetricSeries

    series = MetricSeries(
        [
            ft.MetricPoint(step=9, valid_loss=1.25, extra={"eval_runtime": 0.5}),
            ft.MetricPoint(step=5, train_loss=2.0, extra={"grad_norm": 1.5}),
        ]
    )
    assert repr(series) == (
        "<MetricSeries 2 points to step 9, train_loss 2 (step 5), valid_loss 1.25>"
    )
    assert repr(MetricSeries([])) == "<MetricSeries 0 points>"
    assert repr(MetricSeries([ft.MetricPoint(step=3, train_loss=2.5)])) == (
        "<MetricSeries 1 point to step 3, train_loss 2.5>"  # was "1 points"
    )
    # what a checkpoint saved at a step had seen: each metric's latest value up to it
    assert series.at(4) == {} and series.at(5) == series.at(8) == {"train_loss": 2.0}
    assert series.at(9) == {"train_loss": 2.0, "valid_loss": 1.25}
    pytest.importorskip("pandas")
    frame = series.to_pandas()
    assert list(frame.index) == [5, 9] and frame.loc[5, "grad_norm"] == 1.5
    assert frame.loc[9, "eval_runtime"] == 0.5 and frame["train_loss"].isna().tolist() == [
        False,
        True,
    ]
    assert {str(dtype) for dtype in frame.dtypes} == {"float64"}
    empty = MetricSeries([]).to_pandas()  # a job that has not logged yet
    assert empty.empty and "train_loss" in empty.columns


def test_metric_series_plots_its_losses_or_the_metrics_asked_for() -> None:
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    from finetune._series import MetricSeries

    series = MetricSeries(
        [
            ft.MetricPoint(step=1, train_loss=2.0, learning_rate=1e-4, extra={"grad_norm": 3.0}),
            ft.MetricPoint(step=2, train_loss=1.5, valid_loss=1.75, learning_rate=5e-5),
        ]
    )
    losses = series.plot()
    drawn = {line.get_label(): line.get_xydata().tolist() for line in losses.get_lines()}
    assert drawn == {"train_loss": [[1, 2.0], [2, 1.5]], "valid_loss": [[2, 1.75]]}
    assert losses.get_ylabel() == "loss" and losses.get_legend() is not None
    rate = series.plot(metrics="learning_rate")
    assert [line.get_label() for line in rate.get_lines()] == ["learning_rate"]
    assert rate.get_ylabel() == "value"
    norm = series.plot(metrics=["grad_norm"])  # a provider's own, from extra
    assert norm.get_lines()[0].get_xydata().tolist() == [[1, 3.0]]
    with pytest.raises(KeyError, match=r"no metric 'lr'"):
        series.plot(metrics=["lr"])
    empty = MetricSeries([]).plot()  # a job that has not logged yet: axes, no legend
    assert not empty.get_lines() and empty.get_legend() is None


def test_a_metric_column_misspelt_is_an_error_not_a_column_of_nothing() -> None:
    """``column("trainloss")`` gave ``[None, None]``: a plot of nothing, without a word."""
    from finetune._series import MetricSeries

    series = MetricSeries([ft.MetricPoint(step=1, train_loss=2.0, extra={"grad_norm": 1.5})])
    assert series.column("train_loss") == [2.0] and series.column("grad_norm") == [1.5]
    assert series.column("valid_loss") == [None]  # a standard metric this job did not report
    with pytest.raises(KeyError, match=r"no metric 'trainloss' \(did you mean 'train_loss'\?\)"):
        series.column("trainloss")
    assert MetricSeries([]).column("grad_norm") == []  # nothing logged yet: nothing to judge


def test_a_metric_series_indexed_by_a_name_gives_that_metric_across_steps() -> None:
    """``job.metrics()["train_loss"]``, as a Hugging Face dataset gives a column, raised
    "list indices must be integers or slices, not str"."""
    from finetune._series import MetricSeries

    points = [ft.MetricPoint(step=s, train_loss=1.0 / s, extra={"grad_norm": s}) for s in (1, 2)]
    series = MetricSeries(points)
    assert series["train_loss"] == [1.0, 0.5] and series["grad_norm"] == [1, 2]
    assert series["valid_loss"] == [None, None]
    assert series[0].step == 1 and len(series[1:]) == 1  # positions and slices as before
    with pytest.raises(KeyError, match=r"no metric 'trainloss' \(did you mean 'train_loss'\?\)"):
        series["trainloss"]


def test_metric_names_are_the_standard_ones_then_each_extra_once() -> None:
    """``names`` is the one order the table, the CSV and the error's list all use."""
    from finetune._series import MetricSeries

    series = MetricSeries(
        [
            ft.MetricPoint(step=1, extra={"grad_norm": 1.5, "train_loss": 2.0}),
            ft.MetricPoint(step=2, extra={"eval_runtime": 0.5}),
        ]
    )
    standard = [n for n in ft.MetricPoint.model_fields if n not in ("step", "extra")]
    assert series.names == [*standard, "eval_runtime", "grad_norm"]
    assert MetricSeries([]).names == standard


def _errors_as_raised() -> list[ft.FinetuneError]:
    from finetune._errors import DatasetError, RegistryError, StorageError, UnsupportedFeature
    from finetune.export import ExportError

    failed = ft.Job(
        id="j1",
        backend="fake",
        base_model="m",
        status="failed",
        error=ft.JobError(code="oom", message="out of memory"),
    )
    rows = [{"messages": [{"role": "user", "content": "q"}]}]
    report = ft.Tuner("fake", model="m", registry=False).validate(ft.Dataset.from_records(rows))
    return [
        DatasetError("bad role", file="a.jsonl", line=3, field="messages[0].role"),
        ft.ValidationFailed(report),
        UnsupportedFeature("no DPO"),
        ft.MissingDependency("trl", "hf", purpose="for local training"),
        ft.BackendNotFound("opnai", ["openai", "hf"]),
        ft.InvalidRequestError("bad model", backend="together", param="model", status_code=400),
        ft.RateLimitError("slow down", retry_after=3.0, backend="together", status_code=429),
        ft.ProviderUnavailable("gone", alternatives=["hf"], backend="mistral", status_code=410),
        RegistryError("registry"),
        StorageError("disk full"),
        ExportError("no GGUF for this architecture"),
        ft.JobFailed(failed),
        ft.WaitTimeout(failed, 5.0),
    ]


def test_a_job_its_events_and_checkpoints_print_as_lines_and_no_error_says_none() -> None:
    """``print(job)`` showed every field, ``raw`` aside; a failure with no code (OpenAI's
    ``error`` as a bare string) was told as ``None: the message`` by ``JobFailed``."""
    made = ft.Job(
        id="j1", backend="fake", base_model="m", status="succeeded", fine_tuned_model="ft:m:1"
    )
    assert str(made) == "j1 on fake (m): succeeded -> ft:m:1"
    # f"{job.status}" was "JobStatus.SUCCEEDED" on 3.11 and later, "succeeded" on 3.10
    assert f"{made.status}" == str(made.status) == "succeeded" == made.status
    running = ft.Job(id="j2", backend="openai", base_model="m", status="running")
    assert str(running) == "j2 on openai (m): running"
    bare = ft.JobError(message="the file has 3 bad lines")
    failed = ft.Job(id="j3", backend="openai", base_model="m", status="failed", error=bare)
    assert str(failed) == "j3 on openai (m): failed: the file has 3 bad lines"
    assert "None" not in str(ft.JobFailed(failed)) and "None" not in failed._repr_html_()
    when = datetime(2026, 12, 3, 15, 53, 1, tzinfo=timezone.utc)
    event = ft.JobEvent(created_at=when, level="warning", message="loss is NaN")
    assert str(event) == "2026-12-03T15:53:01+00:00 warning loss is NaN"  # as finetune events
    saved = ft.Checkpoint(id="c", step=30, model="ft:m:1:ckpt-30", metrics={"valid_loss": 0.25})
    assert str(saved) == "step 30: ft:m:1:ckpt-30 valid_loss=0.25"
    coded = ft.JobError(code="oom", message="out of memory")
    assert str(coded) == "oom: out of memory" and "oom: out of memory" in str(
        ft.JobFailed(failed.model_copy(update={"error": coded}))
    )


def test_an_example_prints_as_its_turns() -> None:
    """``print(data[0])`` (the README's) showed every field of every message, ``name=None,
    tool_calls=None, tool_call_id=None, weight=None`` included."""
    call = {"id": "c1", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
    chat = ft.ChatExample(
        messages=[
            ft.Message(role="user", content="Weather in Paris?"),
            ft.Message(role="assistant", tool_calls=[call]),
            ft.Message(role="tool", tool_call_id="c1", content='{"temp": 21}'),
            ft.Message(role="assistant", content="21 C."),
        ]
    )
    assert str(chat).splitlines() == [
        "user: Weather in Paris?",
        'assistant: get_weather({"city": "Paris"})',
        'tool: {"temp": 21}',
        "assistant: 21 C.",
    ]
    assert str(ft.CompletionExample(prompt="2+2=", completion="4")) == "prompt: 2+2=\ncompletion: 4"
    pair = ft.PreferenceExample(
        input=[ft.Message(role="user", content="q")],
        chosen=[ft.Message(role="assistant", content="good")],
        rejected=[ft.Message(role="assistant", content="bad")],
    )
    assert str(pair) == "user: q\nchosen: good\nrejected: bad"
    assert repr(pair).startswith("PreferenceExample(kind='preference', input=[Message(")
    photo = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0K"}}
    shown = [{"type": "text", "text": "What is this?"}, photo]
    seen = ft.ChatExample(
        messages=[
            ft.Message(role="user", content=shown),
            ft.Message(role="assistant", content="A cat."),
        ]
    )
    assert str(seen) == "user: What is this? [image]\nassistant: A cat."  # not its text alone


def test_every_error_survives_pickling_as_a_worker_process_sends_it() -> None:
    """``JobFailed``, ``ValidationFailed``, ``BackendNotFound`` and ``WaitTimeout`` could not be
    unpickled (their ``__init__`` was called again with their message), so one failed fit in
    a ``ProcessPoolExecutor`` broke the pool: every future, the good ones too, ended in
    ``BrokenProcessPool``."""
    import pickle

    for error in _errors_as_raised():
        back = pickle.loads(pickle.dumps(error))
        assert type(back) is type(error) and str(back) == str(error)
        assert back.__dict__ == error.__dict__, type(error).__name__
        assert isinstance(back, ft.FinetuneError)


POOL_SCRIPT = """
from concurrent.futures import ProcessPoolExecutor
import finetune as ft
from finetune.testing import FakeBackend, FakeFailure

def fit(fails):
    rows = [{"messages": [{"role": "user", "content": f"q{i}"},
                          {"role": "assistant", "content": f"a{i}"}]} for i in range(12)]
    backend = FakeBackend(fail=FakeFailure("oom", "out of memory") if fails else None)
    tuner = ft.Tuner(backend, model="base", registry=False)
    return tuner.fit(ft.Dataset.from_records(rows)).wait(poll_interval=0.01).status.value

if __name__ == "__main__":
    with ProcessPoolExecutor(2) as pool:
        for future in [pool.submit(fit, fails) for fails in (False, True, False)]:
            try:
                print(future.result(timeout=60))
            except ft.JobFailed as failed:
                print("JobFailed", failed.job.error.code)
"""


def test_one_failed_fit_in_a_process_pool_leaves_the_others_their_results(
    tmp_path: Path,
) -> None:
    import subprocess
    import sys

    script = tmp_path / "pool.py"
    script.write_text(POOL_SCRIPT)
    ran = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, check=False
    )
    assert ran.stdout.split() == ["succeeded", "JobFailed", "oom", "succeeded"], ran.stderr


def test_a_tuner_or_handle_sent_to_a_worker_says_what_to_send_instead() -> None:
    """``pool.submit(fit, tuner)`` failed with ``cannot pickle '_thread.lock' object``."""
    import pickle

    tuner = ft.Tuner("fake", model="m", registry=False)
    rows = [{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}]
    handle = tuner.fit(ft.Dataset.from_records(rows * 12), skip_validation=True)
    for face in (tuner, ft.AsyncTuner("fake", model="m", registry=False)):
        with pytest.raises(TypeError, match=r"objects hold connections: not pickled .* \(\.job\)"):
            pickle.dumps(face)
    with pytest.raises(TypeError, match=rf"send the job's id \('{handle.id}'\) and re-attach"):
        pickle.dumps(handle)
