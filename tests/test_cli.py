from __future__ import annotations

import csv
import importlib.util
import json
import logging
import os
import re
import shlex
import subprocess
import sys
import time
import warnings
from datetime import date
from pathlib import Path
from typing import Any

import pytest

import finetune as ft
from finetune.cli import main
from finetune.demo._run import DEMO_RESPONSE_FORMAT
from finetune.testing import FakeBackend

from .conftest import chat, interruptible, needs_tiktoken, write_config, write_jsonl

MODEL = "gpt-4.1-mini-2025-04-14"
# what train prints of a fake job just started: it ends 0.14 s later, sooner on a busy machine
STARTED = {"validating", "queued", "running", "succeeded"}


@needs_tiktoken
def test_validate_ok_and_json(chat_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(chat_file), "--backend", "fake", "--model", MODEL]) == 0
    assert "Validation OK" in capsys.readouterr().out
    assert main(["validate", str(chat_file), "--model", MODEL, "--backend", "fake", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["ok"] is True


@needs_tiktoken
def test_validate_errors_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = [chat(i) for i in range(10)] + [{"messages": [{"role": "user", "content": "x"}]}]
    path = write_jsonl(tmp_path / "bad.jsonl", rows)
    assert main(["validate", str(path), "--backend", "fake", "--model", MODEL]) == 1
    assert "missing_assistant" in capsys.readouterr().out


@needs_tiktoken
def test_several_files_are_checked_and_trained_as_one_each_named_in_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One file was all a command took: two were joined with `cat` first, and an error then
    named a line of the joined file."""
    first = write_jsonl(tmp_path / "orders.jsonl", [chat(i) for i in range(10)])
    second = write_jsonl(
        tmp_path / "returns.jsonl", [chat(20), {"messages": [{"role": "user", "content": "x"}]}]
    )
    flags = ["--backend", "fake", "--model", MODEL, "--json"]
    assert main(["validate", str(first), str(second), *flags]) == 1
    report = json.loads(capsys.readouterr().out)
    [found] = report["codes"]["missing_assistant"]["findings"]
    assert (found["file"], found["line"], report["errors"]) == ("returns.jsonl", 2, 1)
    assert report["examples"] == 12
    config = tmp_path / "train.toml"
    config.write_text(
        f'backend = "fake"\nmodel = "{MODEL}"\nfile = ["{first}", "{first}"]\n'
        "[hyperparameters]\nepochs = 1\n"
    )
    assert main(["estimate", "--config", str(config), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["examples"] == 20
    assert main(["train", "--config", str(config), "--wait"]) == 0
    assert "succeeded" in capsys.readouterr().out
    config.write_text(f'backend = "fake"\nmodel = "{MODEL}"\nfile = ["{first}", 5]\n')
    assert main(["validate", "--config", str(config)]) == 2
    assert 'file is a file path, as "data.jsonl", not 5' in capsys.readouterr().err


@needs_tiktoken
def test_deduplicate_leaves_out_the_repeats_validation_reports(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``duplicate_example`` told the cure in Python alone (``ds.deduplicated()``): a user
    of the command line had to write a script, or train on the repeats."""
    rows = [chat(i % 12) for i in range(18)]  # 12 examples, 6 repeats
    train = write_jsonl(tmp_path / "train.jsonl", rows)
    held = write_jsonl(tmp_path / "held.jsonl", [chat(30), chat(30), chat(31)])
    flags = ["--backend", "fake", "--model", MODEL, "--json"]
    assert main(["validate", str(train), *flags]) == 0
    assert json.loads(capsys.readouterr().out)["codes"]["duplicate_example"]["count"] == 6
    assert main(["validate", str(train), *flags, "--deduplicate"]) == 0
    out, err = capsys.readouterr()
    assert "duplicate_example" not in json.loads(out)["codes"]
    assert err == "--deduplicate: 6 repeated examples of the training data left out\n"
    both = ["--validation", str(held), "--deduplicate"]
    assert main(["estimate", str(train), *flags, *both]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["examples"] == 12
    assert "1 repeated example of the validation data left out" in err
    config = tmp_path / "train.toml"
    config.write_text(
        f'backend = "fake"\nmodel = "{MODEL}"\nfile = "{train}"\ndeduplicate = true\n'
    )
    assert main(["train", "--config", str(config), "--wait"]) == 0
    (record,) = ft.Tuner("fake", model=MODEL).jobs(limit=1)
    unique = ft.Dataset.from_jsonl(train).deduplicated()
    assert len(unique) == 12 and record.train_fingerprint == unique.fingerprint()
    config.write_text(config.read_text().replace("= true", '= "yes"'))
    assert main(["train", "--config", str(config)]) == 2
    assert "deduplicate is true or false, not 'yes'" in capsys.readouterr().err


@needs_tiktoken
def test_several_validation_files_are_read_as_one_each_named_in_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--validation`` took one file (a second flag replaced the first) and a config's
    ``validation`` one path: two validation sets were joined with ``cat`` first."""
    train = write_jsonl(tmp_path / "train.jsonl", [chat(i) for i in range(10)])
    unanswered = {"messages": [{"role": "user", "content": "x"}]}
    held = write_jsonl(tmp_path / "held.jsonl", [chat(20), chat(21), unanswered])
    late = write_jsonl(tmp_path / "late.jsonl", [chat(30), {**unanswered, "id": 1}])
    flags = ["--backend", "fake", "--model", MODEL, "--json"]
    both = ["--validation", str(held), "--validation", str(late)]
    assert main(["validate", str(train), *both, *flags]) == 1
    report = json.loads(capsys.readouterr().out)
    found = report["codes"]["missing_assistant"]["findings"]
    assert [(f["file"], f["line"]) for f in found] == [("held.jsonl", 3), ("late.jsonl", 2)]
    write_jsonl(held, [chat(20), chat(21), chat(22)])
    assert main(["estimate", str(train), *both, *flags]) == 0
    assert json.loads(capsys.readouterr().out)["validation_tokens"] > 0
    write_jsonl(late, [chat(30), chat(31)])
    config = tmp_path / "train.toml"
    config.write_text(
        f'backend = "fake"\nmodel = "{MODEL}"\nfile = "{train}"\n'
        f'validation = ["{held}", "{late}"]\n[hyperparameters]\nepochs = 1\n'
    )
    assert main(["train", "--config", str(config), "--wait"]) == 0
    assert "succeeded" in capsys.readouterr().out
    (record,) = ft.Tuner("fake", model=MODEL).jobs(limit=1)
    joined = ft.Dataset.concat([ft.Dataset.from_jsonl(held), ft.Dataset.from_jsonl(late)])
    assert record.validation_fingerprint == joined.fingerprint()
    config.write_text(config.read_text().replace(f'"{late}"', '"gone.jsonl"'))
    assert main(["validate", "--config", str(config)]) == 2
    assert "validation = 'gone.jsonl': no such file" in capsys.readouterr().err


@needs_tiktoken
def test_an_estimate_names_the_command_that_lists_what_it_could_not_count(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Its note sent a command-line user to ``tuner.validate()``, a Python call."""
    path = tmp_path / "cut.jsonl"
    path.write_text(json.dumps(chat(0)) + "\n{not json\n")
    assert main(["estimate", str(path), "--backend", "fake", "--model", "base-1"]) == 0
    (note,) = [line for line in capsys.readouterr().out.splitlines() if "not counted" in line]
    assert "1 line that could not be read" in note and "(finetune validate) names them" in note


@needs_tiktoken
def test_estimate(chat_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["estimate", str(chat_file), "--backend", "fake", "--model", "base-1"]) == 0
    local = capsys.readouterr().out
    assert "billed tokens" in local and "cost: no provider bill (local training)" in local
    assert "fits context: unknown" in local  # no limit known for base-1: nothing was checked
    known = ["estimate", str(chat_file), "--backend", "fake", "--model", "gpt-4.1-mini-2025-04-14"]
    assert main(known) == 0 and "fits context: True" in capsys.readouterr().out
    local_args = ["estimate", str(chat_file), "--backend", "fake", "--model", "base-1"]
    assert main([*local_args, "--validation", str(chat_file)]) == 0
    lines = capsys.readouterr().out.splitlines()
    (note,) = [line for line in lines if line.startswith("note: validation: ")]
    assert "bill" not in note  # no provider bill to be in or out of
    args = ["estimate", str(chat_file), "--backend", "openai", "--model", "gpt-5-nano-2026-01-01"]
    assert main([*args, "--json", "--price-per-million", "2.5"]) == 0
    priced = json.loads(capsys.readouterr().out)
    assert priced["price_per_million"] == 2.5 and 0 < priced["cost"] < 1
    assert main([*args, "--price-per-million", "2.5"]) == 0  # 1.05 cents: not "0.01 USD"
    assert f"cost: {priced['cost']:.3g} USD\n" in capsys.readouterr().out
    assert main(args) == 0
    unpriced = capsys.readouterr().out
    assert "cost: unknown" in unpriced and "pass --price-per-million," in unpriced
    assert main([*args, "--validation", str(chat_file)]) == 0
    counted_only = capsys.readouterr().out
    assert "note: validation: " in counted_only and "not in the billed tokens" in counted_only
    together = ["estimate", str(chat_file), "--backend", "together", "--model", "m", "--json"]
    assert main([*together, "--validation", str(chat_file), "--epochs", "3"]) == 0
    billed = json.loads(capsys.readouterr().out)
    assert billed["validation_passes"] == 3
    assert billed["billed_tokens"] == 3 * billed["tokens_total"] + 3 * billed["validation_tokens"]


def test_estimate_takes_the_hyperparameter_flags_of_train_and_checks_them_as_it_does(
    chat_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A ``finetune train`` line with its verb changed to ``estimate`` was "unrecognized
    arguments: --batch-size 4", and a hyperparameter train refuses could not be checked."""
    openai = ["--backend", "openai", "--model", "gpt-4.1-mini-2025-04-14"]
    flags = ["--batch-size", "4", "--learning-rate-multiplier", "2", "--seed", "7"]
    assert main(["estimate", str(chat_file), *openai, *flags, "--epochs", "2"]) == 0
    assert "epochs: 2," in capsys.readouterr().out
    for verb in ("estimate", "train"):  # refused alike, in the command's own terms
        assert main([verb, str(chat_file), *openai, "--learning-rate", "0.001"]) == 2
        said = capsys.readouterr().err
        assert "set the hyperparameter --learning-rate-multiplier" in said, said
        assert main([verb, str(chat_file), *openai, "--batch-size", "999"]) == 2
        assert "OpenAI takes batch_size from 1 to 256, not 999" in capsys.readouterr().err


def test_errors_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "missing.jsonl", "--backend", "fake", "--model", MODEL]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: missing.jsonl: no such file") and "Traceback" not in err


def test_jobs_says_where_it_looked_when_there_are_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FINETUNE_REGISTRY", str(tmp_path / "jobs.sqlite3"))
    assert main(["jobs", "--backend", "openai"]) == 0
    out, err = capsys.readouterr()
    assert out == "" and f"no jobs on openai in {tmp_path / 'jobs.sqlite3'}" in err
    assert main(["jobs", "--backend", "openia"]) == 0  # a misspelt backend is said to be one
    err = capsys.readouterr().err
    assert "no jobs on openia" in err and "not a backend here (did you mean 'openai'?)" in err


def test_jobs_says_when_each_job_was_created_in_local_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The list, newest first, said nothing of when: two fits of a morning were told apart
    by their ids alone."""
    from datetime import datetime, timezone

    monkeypatch.setenv("FINETUNE_REGISTRY", str(tmp_path / "jobs.sqlite3"))
    created = datetime(2026, 12, 4, 0, 20, 49, tzinfo=timezone.utc)
    ft.JobRegistry().record(
        ft.Job(
            id="ftjob-d", backend="openai", base_model="gpt", status="running", created_at=created
        )
    )
    assert main(["jobs"]) == 0
    local = created.astimezone().strftime("%Y-%m-%d %H:%M")
    assert f"ftjob-d{' ' * 25} running    {local}  gpt -> -" in capsys.readouterr().out
    dpo = ft.Job(id="ftjob-p", backend="openai", base_model="gpt", status="succeeded", method="dpo")
    ft.JobRegistry().record(dpo.model_copy(update={"fine_tuned_model": "ft:gpt:p"}))
    assert main(["jobs"]) == 0
    assert "gpt -> ft:gpt:p (dpo)\n" in capsys.readouterr().out  # how it was trained
    assert main(["jobs", "--model", "ft:gpt:p"]) == 0
    assert json.loads(capsys.readouterr().out)["method"] == "dpo"


def test_a_job_on_a_plugin_no_longer_installed_is_told_so(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The registry knew the job's backend, a plugin since uninstalled: ``status tune-2`` said
    only "no backend named 'acme'", and ``status acme:tune-2`` (as progress lines print it)
    that the job "was not started from this machine"."""
    ft.JobRegistry().record(
        ft.Job(id="tune-2", backend="acme", base_model="small", status="running")
    )
    for named in ("tune-2", "acme:tune-2"):
        assert main(["status", named]) == 2
        said = capsys.readouterr().err
        assert said.startswith(
            "error: job 'tune-2' runs on 'acme' (this machine's registry says), a backend not "
            "installed here: install the package that provides it, its plugin (installed: "
        )
        assert "fake, " in said and "not started from this machine" not in said
    assert main(["status", "tune-3"]) == 2  # one it does not know, as before
    assert "'tune-3' is not in this machine's job registry" in capsys.readouterr().err


def test_a_lineage_is_found_by_the_model_folder_as_written_or_by_the_job_id(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``finetune jobs --model hfjob-1/model/`` (relative, a final slash), ``--model
    hfjob-1`` and the job's folder were "no job in the registry made ...": the registry holds
    the absolute path of the model, and the job's id."""
    monkeypatch.setenv("FINETUNE_REGISTRY", str(tmp_path / "jobs.sqlite3"))
    model = tmp_path / "hfjob-1" / "model"
    model.mkdir(parents=True)
    job = ft.Job(id="hfjob-1", backend="hf", base_model="b", status="succeeded")
    ft.JobRegistry().record(job.model_copy(update={"fine_tuned_model": str(model)}))
    monkeypatch.chdir(tmp_path)
    folders = ("./hfjob-1", "hfjob-1/", str(tmp_path / "hfjob-1"))  # the job's folder, too
    for asked in ("hfjob-1/model/", "./hfjob-1/model", "hfjob-1", "hf:hfjob-1", *folders):
        assert main(["jobs", "--model", asked]) == 0, asked
        assert json.loads(capsys.readouterr().out)["fine_tuned_model"] == str(model)
    assert ft.JobRegistry().lineage("hfjob-1/model/") is not None  # evaluate's look-up too
    assert main(["jobs", "--model", "hfjob-2"]) == 2
    assert "no job in the registry made 'hfjob-2'" in capsys.readouterr().err


def test_jobs_marks_a_local_model_whose_folder_is_gone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """It listed a deleted job folder's model as if it were there to evaluate or export."""
    monkeypatch.setenv("FINETUNE_REGISTRY", str(tmp_path / "jobs.sqlite3"))
    kept, deleted = tmp_path / "kept", tmp_path / "deleted"
    kept.mkdir()
    registry = ft.JobRegistry()
    for name, model in (("a", kept), ("b", deleted)):
        done = ft.Job(
            id=f"hfjob-{name}",
            backend="hf",
            base_model="base",
            status="succeeded",
            fine_tuned_model=str(model),
        )
        registry.record(done)
    registry.record(
        ft.Job(
            id="ftjob-c",
            backend="openai",
            base_model="gpt",
            status="succeeded",
            fine_tuned_model="ft:gpt:c",
        )
    )
    assert main(["jobs"]) == 0
    lines = {line.split()[1]: line for line in capsys.readouterr().out.splitlines()}
    assert lines["hfjob-b"].endswith(f"-> {deleted} (no longer here)")
    assert lines["hfjob-a"].endswith(f"-> {kept}") and lines["ftjob-c"].endswith("-> ft:gpt:c")


def test_a_reader_that_stops_early_ends_the_command_quietly() -> None:
    import subprocess
    import sys

    registry = ft.JobRegistry()
    for i in range(3000):  # about 200 KB of output: more than a pipe holds
        registry.record(
            ft.Job(id=f"ftjob-{i:05d}", backend="openai", base_model=MODEL, status="succeeded")
        )
    command = [sys.executable, "-m", "finetune.cli", "jobs", "--limit", "3000"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as reader:
        assert reader.stdout is not None and reader.stdout.readline().startswith(b"openai")
        reader.stdout.close()  # as `finetune jobs | head -1` does
        reader.wait(timeout=60)
        assert reader.stderr is not None
        assert (reader.returncode, reader.stderr.read()) == (141, b"")


def _toml_too_deep() -> str:
    """Python's tomllib, and tomli run as Python (the backport 3.10 reads TOML with), recurse
    until the stack runs out; tomli's compiled wheels stop at 400 levels in words of their own."""
    if sys.version_info < (3, 11):
        import tomli._parser

        if not tomli._parser.__file__.endswith(".py"):
            return "TOML inline arrays/tables are nested"
    return "nested too deeply for Python's parser"


TOML_TOO_DEEP = _toml_too_deep()


@pytest.mark.parametrize(
    ("config", "says"),
    [
        ('metrics = ["exact_match"]\n', 'eval needs data = "holdout.jsonl" and a [candidates]'),
        (  # a train config's name for its data: it said the config had no data
            'file = "h.jsonl"\n[candidates]\nb = "openai:m"\n',
            "unknown key 'file' (did you mean 'data'?); the file takes baseline, ",
        ),
        ('data = "h.jsonl"\n[candidates]\nbase = "openai"\n', "candidate 'base' needs a"),
        ('data = "h.jsonl"\n[candidates.base]\nbackend = "openai"\n', "candidate 'base' needs"),
        (  # it said the candidate needed a model
            'data = "h"\n[candidates.b]\nbackend = "openai"\nmodle = "m"\n',
            "unknown key 'modle' (did you mean 'model'?) in [candidates.b]; [candidates.b] takes ",
        ),
        (
            'data = "h"\n[judge]\nbackend = "openai"\nmdoel = "m"\n[candidates]\nb = "fake:m"\n',
            "unknown key 'mdoel' (did you mean 'model'?) in [judge]; [judge] takes backend, ",
        ),
        ('data = "h.jsonl\n', "not valid TOML: "),
        ("data = " + "[" * 5000 + "]" * 5000 + "\n", f"not valid TOML: {TOML_TOO_DEEP}"),
        ('data = "h"\nmetrics = ["regex"]\n[candidates]\nb = "openai:m"\n', "by name, one of"),
        ('data = "h"\nbaseline = "base"\n[candidates]\nb = "openai:m"\n', "'base' is not a"),
        (  # a predictor option above the candidates: "unknown key" and nothing more
            'data = "h"\nmax_new_tokens = 64\n[candidates]\nb = "openai:m"\n',
            "; a candidate's predictor options (max_new_tokens, temperature) go in options = "
            "{ ... } under [candidates.NAME]\n",
        ),
        (
            'data = "h"\nbasline = "b"\n[candidates]\nb = "openai:m"\n',
            "unknown key 'basline' (did you mean 'baseline'?); the file takes baseline, ",
        ),
        (
            'data = "h"\n[candidates.b]\nbackend = "openai"\nmodel = "m"\nfewshot = 3\n',
            "unknown key 'fewshot' (did you mean 'few_shot'?) in [candidates.b]; [candidates.b] "
            "takes backend, endpoint, few_shot, job, model, options",
        ),
        (
            'data = "h"\n[candidates.b]\nbackend = "openai"\nmodel = "m"\nendpoint = "http://x"\n',
            "candidate 'b': endpoint (a server's URL, as \"http://127.0.0.1:8080/v1\") goes with "
            'backend = "openai-compatible", and only with it',
        ),
        (
            'data = "h"\n[candidates]\nb = "openai-compatible:llama3"\n',
            'endpoint (a server\'s URL, as "http://127.0.0.1:8080/v1") goes with backend',
        ),
        (
            'data = "h"\n[candidates.b]\nbackend = "openai"\nmodel = "m"\noptions = 64\n',
            "candidate 'b': options is a table, as { max_tokens = 64 }",
        ),
        (
            'data = "h"\n[candidates.b]\nbackend = "openai"\nmodel = "m"\n'
            '[candidates.b.few_shot]\ntrain = "t.jsonl"\nkk = 3\n',
            "unknown key 'kk' (did you mean 'k'?) in [candidates.b] few_shot",
        ),
        (
            'data = "h"\n[candidates.b]\nbackend = 5\nmodel = "m"\n',
            'eval.toml: [candidates.b] backend is text, as "name", not 5\n',
        ),
        (
            'data = "h"\n[candidates.b]\nbackend = "openai"\nmodel = "m"\n'
            '[candidates.b.few_shot]\ntrain = "t.jsonl"\nk = "3"\n',
            "candidate 'b': few_shot k is how many examples to show, a whole number of 0 or "
            "more, not '3'",
        ),
        (
            'data = "h"\nmax_concurrency = "8"\n[candidates]\nb = "fake:m"\n',
            "eval.toml: max_concurrency is a whole number of 1 or more, not '8'",
        ),
        (
            'data = "h"\nmetrics = []\n[candidates]\nb = "fake:m"\n',
            'eval.toml: metrics is empty: name some, e.g. ["exact_match", "token_f1"], or add a '
            "[judge]",
        ),
        (
            'data = "h"\nmetrics = [3]\n[candidates]\nb = "fake:m"\n',
            'eval.toml: metrics is a list of names, e.g. ["exact_match", "token_f1"], not [3]',
        ),
        (
            'data = "h"\njudge = 5\n[candidates]\nb = "fake:m"\n',
            'eval.toml: judge is "backend:model", or a table, as [judge] with backend = ',
        ),
        (
            'data = "h"\n[judge]\nbackend = "openai"\n[candidates]\nb = "fake:m"\n',
            "eval.toml: [judge] needs a backend and a model",
        ),
        (
            'data = "h"\n[judge]\nbackend = "fake"\nmodel = "m"\nrubric = 5\n'
            '[candidates]\nb = "fake:m"\n',
            "eval.toml: [judge] rubric is what a good answer does, as ",
        ),
        (
            'data = "h"\n[judge]\nbackend = "fake"\nmodel = "m"\nfew_shot = { train = "t" }\n'
            '[candidates]\nb = "fake:m"\n',
            "unknown key 'few_shot' in [judge]; [judge] takes backend, endpoint, model, name, "
            "options, "
            "rubric",
        ),
        (
            'data = "h"\n[judge]\nbackend = "openai-compatible"\nmodel = "m"\n'
            'endpoint = "http://127.0.0.1:9/v1"\noptions = { max_tokenz = 3 }\n'
            '[candidates]\nb = "fake:m"\n',
            "eval.toml: [judge] options: the model takes no option 'max_tokenz' (did you "
            "mean 'max_tokens'?); its options are api_key, base_url, ",  # no client objects
        ),
        (
            'data = "h"\nmetrics = ["exact_matc"]\n[candidates]\nb = "fake:m"\n',
            "eval.toml: metric 'exact_matc' (did you mean 'exact_match'?): by name, one of bleu",
        ),
    ],
)
def test_a_bad_eval_config_is_one_line_naming_what_is_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], config: str, says: str
) -> None:
    path = tmp_path / "eval.toml"
    path.write_text(config)
    assert main(["eval", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path}: ") and says in err and "Traceback" not in err


def test_a_config_file_that_cannot_be_read_is_named_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """It was Python's ``[Errno 2] No such file or directory: 'train.toml'``."""
    binary = tmp_path / "latin.toml"
    binary.write_bytes(b'model = "caf\xe9"\n')
    cases = [
        (["train", "--config", str(tmp_path / "train.toml")], "train.toml: no such file; check"),
        (["eval", str(tmp_path / "eval.yaml")], "eval.yaml: no such file; check the path"),
        (["estimate", "--config", str(tmp_path)], ": a folder, not a config file"),
        (["validate", "--config", str(binary)], "latin.toml: not UTF-8 text (byte 12)"),
    ]
    for command, says in cases:
        assert main(command) == 2
        err = capsys.readouterr().err
        assert says in err and "Errno" not in err and err.count("\n") == 1, err


def test_a_config_path_that_is_not_there_points_at_the_file_beside_the_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Paths in a config are read from where finetune runs; one written relative to the
    config is named, with the way out, before anything is uploaded or asked."""
    folder = tmp_path / "configs"
    folder.mkdir()
    write_jsonl(folder / "holdout.jsonl", [chat(i) for i in range(12)])
    (folder / "eval.toml").write_text('data = "holdout.jsonl"\n[candidates]\nb = "fake:base"\n')
    (folder / "train.toml").write_text('backend = "fake"\nmodel = "m"\nfile = "holdout.jsonl"\n')
    (folder / "gone.toml").write_text('data = "nowhere.jsonl"\n[candidates]\nb = "fake:base"\n')
    monkeypatch.chdir(tmp_path)
    for command in (["eval", "configs/eval.toml"], ["train", "--config", "configs/train.toml"]):
        assert main(command) == 2
        key = "data" if command[0] == "eval" else "file"
        assert capsys.readouterr().err == (
            f"error: {command[-1]}: {key} = 'holdout.jsonl': no such file in {tmp_path}, the "
            "folder the paths of a config file are read from; configs/holdout.jsonl exists: "
            "write that path, or run finetune in configs\n"
        )
    assert main(["eval", "configs/gone.toml"]) == 2
    assert capsys.readouterr().err.endswith("the folder the paths of a config file are read from\n")
    monkeypatch.chdir(folder)
    assert main(["eval", "eval.toml"]) == 0  # the fake base model repeats each question


def test_backends_lists_each_with_what_it_trains(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["backends"]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines()}
    assert "tools=True" in rows["openai"] and "tools=True" in rows["hf"]
    assert "a job created with --option auto_start=false stops at VALIDATED" in out  # not options=
    assert "job.model" not in out  # Fireworks' and Together's serving notes said it
    assert "ft.evaluate (finetune eval) asks the job's model through the inference API" in out
    assert rows["fake"][:3] == ["local", "methods=dpo,sft", "kinds=chat,completion,preference"]


def test_backends_lists_a_backend_registered_as_a_factory_function(
    capsys: pytest.CaptureFixture[str],
) -> None:
    ft.register_backend("made-by-a-function", lambda **options: FakeBackend(**options))
    assert main(["backends"]) == 0
    (row,) = [line for line in capsys.readouterr().out.splitlines() if "made-by-a-function" in line]
    assert row.split()[1:] == ["plugin", "capabilities", "known", "once", "built", "(a", "factory)"]
    assert ft.Tuner("made-by-a-function", model="m").capabilities.pause_resume


def test_models_lists_what_each_backend_trains_and_what_it_costs(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A newcomer asked for ``--model`` had nowhere to learn the names a backend trains."""
    from finetune import lifecycle

    monkeypatch.setattr(lifecycle, "today", lambda: date(2026, 12, 3))
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "\nopenai (closing 2027-01-06)\n" in f"\n{out}"
    assert re.search(r"\n  gpt-4\.1-mini-2025-04-14 +65,536  5\.00\n", out)
    assert re.search(r"\n  gpt-4o-2024-08-06 +65,536  25\.00  \(trains on images too\)\n", out)
    assert "\nmistral (retired)\n  Mistral's fine-tuning job API answers 410 Gone" in out
    assert re.search(r"\n  mistral-small-latest +32,768  1\.00 to 4\.00 \(a range", out)
    assert "\n  plus a minimum fee of 4.00 USD per job\n" in out
    assert "\nhf\n  any Hugging Face Hub id, model folder or .gguf file" in out
    assert "note: our together prices date from 2025-11-01, 397 days ago" in out
    assert "\n  other models, by the size their name gives: up to 16B 0.48, up to 69B 1.50, " in out
    # a command line's advice: its flag, not Python's estimate(price_per_million=...)
    assert "(or pass --price-per-million to finetune estimate)" in out and "(price_" not in out
    assert main(["models", "--backend", "together", "--json"]) == 0
    (together,) = json.loads(capsys.readouterr().out).values()
    assert together["status"] == "open" and together["pricing_date"] == "2025-11-01"
    assert together["size_prices"] == [[16, 0.48], [69, 1.5], [100, 2.9]]
    assert together["models"]["Qwen/Qwen3-8B"] == {
        "context": 32768,
        "price": 0.48,
        "low": None,
        "high": None,
        "images": False,
    }
    mine = tmp_path / "models.json"
    mine.write_text(json.dumps({"acme": {"models": {"acme-1": {"context": 4096, "price": 2}}}}))
    monkeypatch.setenv("FINETUNE_MODELS_FILE", str(mine))
    assert main(["models"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "acme",
        "  model     context  USD per 1M trained tokens",
        "  acme-1      4,096  2.00",
    ]
    monkeypatch.delenv("FINETUNE_MODELS_FILE")
    assert main(["models", "--backend", "togther"]) == 2
    assert "Did you mean 'together'?" in capsys.readouterr().err
    assert main(["models", "--backend", "fake"]) == 2
    assert "our table knows no models of 'fake'" in capsys.readouterr().err
    data = tmp_path / "train.jsonl"
    data.write_text(json.dumps({"messages": [{"role": "user", "content": "hi"}]}) + "\n")
    assert main(["estimate", str(data), "--backend", "together"]) == 2
    assert capsys.readouterr().err.endswith(
        "in a --config file (finetune models --backend together lists the ones our table knows)\n"
    )


def test_unknown_backend(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "j1", "--backend", "nope"]) == 2
    assert "Installed backends" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        ('sufix = "cli"\n', "unknown key 'sufix' (did you mean 'suffix'?); the file takes "),
        (  # an eval config's name for its data: difflib alone found nothing
            'data = "more.jsonl"\n',
            "unknown key 'data' (did you mean 'file'?); the file takes ",
        ),
        (
            "[hyperparamters]\nepochs = 2\n",
            "unknown key 'hyperparamters' (did you mean 'hyperparameters'?)",
        ),
        (
            'skip_validation = "yes"\n',
            "skip_validation is true or false, not 'yes'",
        ),
        (
            "[hyperparameters]\nepochz = 2\n",
            "unknown key 'epochz' (did you mean 'epochs'?) in [hyperparameters]",
        ),
        (  # another tool's name: difflib alone said 'lora'
            "[hyperparameters]\nlr = 0.001\n",
            "unknown key 'lr' (did you mean 'learning_rate'?) in [hyperparameters]",
        ),
        (  # TOML writes infinity as inf: a value out of range is one line, not pydantic's
            "[hyperparameters]\nlearning_rate = inf\n",
            "[hyperparameters] learning_rate: not inf (must be a finite number)\n",
        ),
        ("[hyperparameters.lora]\nrank = 4\n", "[hyperparameters] LoRA has no field 'rank'"),
        (  # every refused setting named at once, not one run at a time
            '[hyperparameters]\nepochs = "three"\nbatch_size = 0\n',
            "epochs: not 'three' (must be a whole number or 'auto') (batch_size is refused too)\n",
        ),
        (  # a hyperparameter above its table: it was "unknown key 'epochs'"
            "epochs = 3\n",
            "'epochs' is a hyperparameter: write epochs under [hyperparameters]\n",
        ),
        ("n_epochs = 3\n", "'n_epochs' is a hyperparameter: write epochs under [hyperparameters]"),
        (  # a backend's option above its table
            "max_length = 2048\n",
            "; a backend's options, such as hf's max_length, go under [options]\n",
        ),
        ("suffix = 5\n", 'suffix is text, as "name", not 5\n'),
        ("method = true\n", 'method is text, as "name", not True\n'),
        ('options = "x"\n', "options is a table, as [options], not 'x'\n"),
        ("hyperparameters = 5\n", "hyperparameters is a table, as [hyperparameters], not 5\n"),
    ],
)
def test_a_mistyped_train_config_key_starts_no_job(
    chat_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: str, says: str
) -> None:
    """A typo must not fall back silently to a default and spend money on it."""
    config = tmp_path / "train.toml"
    config.write_text(f'backend = "fake"\nmodel = "{MODEL}"\nfile = "{chat_file}"\n{extra}')
    assert main(["train", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {config}: ") and says in err
    assert main(["jobs", "--backend", "fake", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_a_method_the_backend_does_not_train_is_refused_by_every_command_of_the_job(
    chat_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``validate`` and ``estimate`` of a config whose method the backend does not train
    passed it; ``train`` then named it as a flag, ``--method ppo``, that was never given."""
    config = tmp_path / "train.toml"
    config.write_text(
        f'backend = "fake"\nmodel = "{MODEL}"\nfile = "{chat_file}"\nmethod = "ppo"\n'
    )
    for command in ("validate", "estimate", "train"):
        assert main([command, "--config", str(config)]) == 2
        assert capsys.readouterr().err == (
            f"error: backend 'fake' does not train with method = \"ppo\" ({config}); it supports "
            "['dpo', 'sft']\n"
        )
    assert (
        main(["train", str(chat_file), "--backend", "mistral", "--model", "m", "--method", "dpo"])
        == 2
    )
    assert "backend 'mistral' does not train with --method dpo; it supports ['sft']" in (
        capsys.readouterr().err
    )


def test_train_makes_a_local_job_in_the_jobs_dir_it_is_given(
    tiny_base: str, rows: list[Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``status``, ``wait``, ``export`` and the other job commands take ``--jobs-dir``, but
    ``train`` did not: "unrecognized arguments", and ``--option jobs_dir=...`` was refused
    for the environment variable alone."""
    data = write_jsonl(tmp_path / "chat.jsonl", rows[:8])
    local = ["--backend", "hf", "--model", tiny_base, "--epochs", "1"]
    runs = tmp_path / "runs"
    assert main(["train", str(data), *local, "--jobs-dir", str(runs), "--wait"]) == 0
    [job] = [folder.name for folder in runs.glob("hfjob-*")]
    assert f"{job} succeeded {runs / job / 'model'}" in capsys.readouterr().out
    assert main(["status", job]) == 0  # found where it was made
    assert json.loads(capsys.readouterr().out)["status"] == "succeeded"
    fake = ["--backend", "fake", "--model", MODEL, "--jobs-dir", str(runs)]
    assert main(["train", str(data), *fake]) == 2
    assert capsys.readouterr().err == "error: --jobs-dir is where hf jobs live, not fake jobs\n"


def test_a_setting_of_the_backend_given_as_a_job_option_names_where_the_command_reads_it(
    chat_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--option account_id=acme`` was "Fireworks takes no options; got ['account_id']", and
    hf's ``jobs_dir`` was missing from the list of the options hf takes: both set up the
    backend, which the command builds from the environment."""
    fireworks = ["--backend", "fireworks", "--model", "accounts/fireworks/models/llama-v3p1-8b"]
    for option, variable in (
        ("account_id=acme", "$FIREWORKS_ACCOUNT_ID"),
        ("api_key=sk-secret-123", "$FIREWORKS_API_KEY"),
        ("base_url=http://127.0.0.1:9", "$FIREWORKS_BASE_URL"),
    ):
        assert main(["estimate", str(chat_file), *fireworks, "--option", option]) == 2
        name = option.partition("=")[0]
        assert capsys.readouterr().err == (
            f"error: finetune estimate --option: {name!r} sets up the fireworks backend itself, "
            f"not a job: the command reads it from {variable}\n"
        )
    config = tmp_path / "train.toml"
    config.write_text(
        f'backend = "hf"\nmodel = "m"\nfile = "{chat_file}"\n[options]\njobs_dir = "runs"\n'
    )
    assert main(["train", "--config", str(config)]) == 2
    assert capsys.readouterr().err == (
        f"error: {config}: [options]: 'jobs_dir' sets up the hf backend itself, not a job: pass "
        "--jobs-dir DIR, or set $FINETUNE_HF_JOBS_DIR\n"
    )
    validate = ["validate", str(chat_file), "--backend", "fake", "--model", MODEL]
    assert main([*validate, "--option", "context_limit=5"]) == 2
    assert capsys.readouterr().err.endswith(
        "'context_limit' sets up the fake backend itself, not a job: only a Python Tuner takes "
        "it, ft.Tuner('fake', context_limit=...)\n"
    )
    assert not (tmp_path / "runs").exists()


def test_an_empty_yaml_section_of_a_train_config_is_unset(
    chat_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("yaml")
    config = tmp_path / "train.yaml"  # every hyperparameter commented out: the key holds null
    config.write_text(f"backend: fake\nmodel: {MODEL}\nfile: {chat_file}\nhyperparameters:\n")
    assert main(["train", "--config", str(config)]) == 0
    assert capsys.readouterr().out.split()[1] in ("queued", "running", "validating")


def test_a_config_nested_too_deeply_is_named_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A YAML config nested past the parser's recursion printed a RecursionError's
    traceback (TOML's: the eval config case above)."""
    pytest.importorskip("yaml")
    config = tmp_path / "train.yaml"
    config.write_text("backend: fake\noptions:\n  x: " + "[" * 5000 + "]" * 5000 + "\n")
    assert main(["validate", "--config", str(config)]) == 2
    assert capsys.readouterr().err.startswith(f"error: {config}: not valid YAML: nested too deeply")


@needs_tiktoken
def test_train_from_a_toml_config_and_wait(
    chat_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "train.toml"
    config.write_text(
        f'backend = "fake"\nmodel = "{MODEL}"\nfile = "{chat_file}"\nsuffix = "cli"\n'
        "[hyperparameters]\nepochs = 2\n"
    )
    assert main(["train", "--config", str(config), "--wait"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1].split()[1] == "succeeded" and ":cli:" in lines[-1]
    assert main(["jobs", "--backend", "fake"]) == 0
    assert "succeeded" in capsys.readouterr().out
    assert main(["jobs", "--backend", "fake", "--json"]) == 0
    (record,) = json.loads(capsys.readouterr().out)
    assert record["status"] == "succeeded" and record["hyperparameters"]["epochs"] == 2
    model = lines[-1].split()[2]
    assert main(["jobs", "--model", model]) == 0
    lineage = json.loads(capsys.readouterr().out)
    assert lineage["fine_tuned_model"] == model and len(lineage["train_fingerprint"]) == 64
    assert main(["train", str(chat_file), "--backend", "fake"]) == 2
    assert "train needs 'model': give --model, or model in a --config file" in (
        capsys.readouterr().err
    )


def test_a_local_job_is_looked_for_without_a_registry_that_cannot_be_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Asked for the job's folder, a corrupt registry must not hide the job's own error."""
    broken = tmp_path / "broken.sqlite3"
    broken.write_text("not a database")
    monkeypatch.setenv("FINETUNE_REGISTRY", str(broken))
    assert main(["status", "hfjob-20261203-000000-00000000", "--backend", "hf"]) == 2
    assert "no local job 'hfjob-20261203-000000-00000000' under" in capsys.readouterr().err


def test_job_commands_find_the_backend_in_the_registry(
    chat_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["train", str(chat_file), "--backend", "fake", "--model", MODEL]) == 0
    job_id = capsys.readouterr().out.split()[0]
    assert main(["status", job_id]) == 0
    assert json.loads(capsys.readouterr().out)["backend"] == "fake"
    assert main(["wait", job_id]) == 0 and "succeeded" in capsys.readouterr().out
    assert main(["cancel", job_id]) == 0
    out, err = capsys.readouterr()
    assert out.split()[1] == "succeeded"
    assert err == f"job {job_id} had already ended (succeeded): nothing to cancel\n"
    assert main(["pause", job_id]) == 0  # the fake pauses and resumes: said as a cancel is
    out, err = capsys.readouterr()
    assert out.split()[1] == "succeeded"
    assert err == f"job {job_id} had already ended (succeeded): nothing to pause\n"
    assert main(["events", job_id]) == 0 and capsys.readouterr().out.strip()
    assert main(["status", "ftjob-elsewhere"]) == 2
    error = capsys.readouterr().err
    assert "'ftjob-elsewhere' is not in this machine's job registry" in error
    assert "registry.sqlite3" in error and "--backend" in error
    ft.JobRegistry().record(
        ft.Job(id=job_id, backend="openai", base_model=MODEL, status=ft.JobStatus.QUEUED)
    )
    assert main(["cancel", job_id]) == 2
    assert "is on fake and openai; choose with --backend" in capsys.readouterr().err


def test_wait_exits_1_when_the_job_made_no_model(
    chat_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`finetune wait JOB && finetune export JOB` stops at wait for a cancelled or paused job."""
    tuner = ft.Tuner(FakeBackend(running=60), model=MODEL)  # the CLI's "fake" sees its jobs
    cancelled = tuner.fit(ft.Dataset.from_jsonl(chat_file), suffix="cancelled")
    cancelled.cancel()
    assert main(["wait", cancelled.id]) == 1
    captured = capsys.readouterr()
    assert captured.out.split()[1] == "cancelled"
    assert f"job {cancelled.id} made no model: it was cancelled" in captured.err
    paused = tuner.fit(ft.Dataset.from_jsonl(chat_file), suffix="paused")
    while paused.refresh().status is not ft.JobStatus.RUNNING:  # 0.04 s of validating, queued
        time.sleep(0.01)
    paused.pause()
    assert main(["wait", paused.id]) == 1
    assert f"it is paused (`finetune resume {paused.id} --backend fake`)" in capsys.readouterr().err
    assert main(["resume", paused.id]) == 0
    assert capsys.readouterr().out.split() == [paused.id, "running"]
    paused.cancel()  # not 60 s of running


def test_a_jobs_metrics_checkpoints_and_pause_from_the_command_line(
    chat_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """What ``handle.metrics()``, ``checkpoints()`` and ``pause()`` give in Python, without
    Python: a CSV to plot or diff, and the checkpoint names to evaluate."""
    tuner = ft.Tuner(FakeBackend(running=60), model=MODEL)  # the CLI's "fake" sees its jobs
    running = tuner.fit(ft.Dataset.from_jsonl(chat_file), suffix="running")
    assert main(["metrics", running.id]) == 0
    out, err = capsys.readouterr()
    assert out == "step\n" and err.startswith(f"job {running.id} has reported no metrics yet (")
    assert main(["checkpoints", running.id, "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out) == [] and f"job {running.id} has saved no checkpoint (" in err
    while running.refresh().status is not ft.JobStatus.RUNNING:
        time.sleep(0.01)
    assert main(["pause", running.id]) == 0
    assert capsys.readouterr().out.split() == [running.id, "paused"]
    assert running.refresh().status is ft.JobStatus.PAUSED
    running.cancel()

    done = ft.Tuner("fake", model=MODEL).fit(ft.Dataset.from_jsonl(chat_file)).wait()
    assert main(["metrics", done.id]) == 0
    rows = list(csv.reader(capsys.readouterr().out.splitlines()))
    points = ft.Tuner("fake").job(done.id).metrics()
    assert rows[0] == ["step", "epoch", "train_loss", "valid_loss"]  # columns with a value
    assert len(rows) == len(points) + 1 and len(points) > 1
    assert rows[-1] == [
        str(points[-1].step),
        *(repr(v) for v in (points[-1].epoch, points[-1].train_loss, points[-1].valid_loss)),
    ]
    assert main(["metrics", done.id, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == points.to_records()
    assert main(["checkpoints", done.id]) == 0
    saved = ft.Tuner("fake").job(done.id).checkpoints()
    lines = capsys.readouterr().out.splitlines()
    assert [line.split() for line in lines] == [[str(c.step), c.model] for c in saved] != []


def test_a_metric_of_whole_numbers_is_written_as_integers(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """TRL's ``num_tokens`` (a float in its logs) was written ``434500.0``; NaN stays NaN."""
    from finetune._cli_watch import _write_csv

    points = [
        ft.MetricPoint(step=5, epoch=0.5, train_loss=2.0, extra={"num_tokens": 217250.0}),
        ft.MetricPoint(step=10, epoch=1.0, train_loss=float("nan"), extra={"num_tokens": 434500.0}),
    ]
    _write_csv(ft.MetricSeries(points))
    assert capsys.readouterr().out.splitlines() == [
        "step,epoch,train_loss,num_tokens",
        "5,0.5,2.0,217250",
        "10,1.0,nan,434500",
    ]


def test_a_job_named_as_its_progress_line_prints_it(
    chat_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``wait --progress`` names a job ``fake:ftjob-...``; copied into ``finetune status``,
    that was "not started from this machine"."""
    done = ft.Tuner("fake", model=MODEL).fit(ft.Dataset.from_jsonl(chat_file)).wait()
    assert main(["status", f"fake:{done.id}"]) == 0
    assert json.loads(capsys.readouterr().out)["id"] == done.id
    assert main(["metrics", f"fake:{done.id}", "--backend", "fake"]) == 0
    assert capsys.readouterr().out.startswith("step,epoch,train_loss")
    assert main(["status", f"fake:{done.id}", "--backend", "openai"]) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: job 'fake:{done.id}' is on fake, not on --backend openai"
    )
    assert main(["export", f"fake:{done.id}"]) == 2
    assert f"job {done.id!r} is on fake, whose model stays" in capsys.readouterr().err
    assert main(["status", f"nobackend:{done.id}"]) == 2  # not a backend: the id as given
    assert (
        f"job 'nobackend:{done.id}' is not in this machine's job registry"
        in capsys.readouterr().err
    )


def test_an_eval_config_names_a_job_candidate_in_a_table_with_its_options(
    chat_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``[candidates.tuned]`` with ``job = "fake:ftjob-..."`` (the way to give a job's model
    predictor options) was "needs a backend and a model"."""
    done = ft.Tuner("fake", model=MODEL).fit(ft.Dataset.from_jsonl(chat_file)).wait()
    config = tmp_path / "eval.toml"
    head = f'data = "{chat_file}"\nmetrics = ["exact_match"]\n[candidates.base]\n'
    head += f'backend = "fake"\nmodel = "{MODEL}"\n[candidates.tuned]\n'
    config.write_text(head + f'job = "fake:{done.id}"\noptions = {{ namespace = "default" }}\n')
    assert main(["eval", str(config), "--output", str(tmp_path / "r.json")]) == 0
    saved = json.loads((tmp_path / "r.json").read_text())
    assert saved["candidates"] == ["base", "tuned"]
    for bad, says in [
        (f'job = "{done.id}"', f'job is "backend:id", as "hf:hfjob-...", not {done.id!r}'),
        (f'job = "fake:{done.id}"\nmodel = "m"', "job names the model: leave out backend and"),
    ]:
        config.write_text(head + bad + "\n")
        assert main(["eval", str(config)]) == 2
        assert says in capsys.readouterr().err
    config.write_text(head)  # a table of neither
    assert main(["eval", str(config)]) == 2
    assert 'or job = "hf:hfjob-...", a job this machine ran' in capsys.readouterr().err


def test_an_eval_config_table_s_model_may_name_its_backend_as_the_text_does(
    chat_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``[candidates.shots]`` with ``model = "fake:m"`` (the candidate's text, moved into a
    table for its few_shot or options) was "needs a backend and a model"."""
    config = tmp_path / "eval.toml"
    head = f'data = "{chat_file}"\nmetrics = ["exact_match"]\n[candidates]\nbase = "fake:{MODEL}"\n'
    train = write_jsonl(tmp_path / "shots.jsonl", [chat(100 + i) for i in range(3)])
    shots = f'[candidates.shots]\nmodel = "fake:{MODEL}"\nfew_shot = {{ train = "{train}" }}\n'
    config.write_text(head + shots)
    output = tmp_path / "r.json"
    assert main(["eval", str(config), "--output", str(output)]) == 0
    saved = json.loads(output.read_text())
    assert saved["candidates"] == ["base", "shots"]
    config.write_text(head + '[candidates.local]\nmodel = "llama3:8b"\n')  # no backend's name
    assert main(["eval", str(config)]) == 2
    assert "candidate 'local' needs a backend and a model" in capsys.readouterr().err


def test_a_local_job_given_as_a_model_is_told_how_each_command_names_it(
    chat_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``model = "hf:hfjob-..."`` in an eval config's table (and ``finetune ask hf:hf:...``,
    ``train --model hfjob-...``) was told to give "Tuner('hf').job('hfjob-...').model", and
    the eval config only after its other candidates had all been asked."""
    job = "hfjob-20261206-000000-0a1b2c3d"
    config = tmp_path / "eval.toml"
    config.write_text(
        f'data = "{chat_file}"\nmetrics = ["exact_match"]\n[candidates.base]\n'
        f'backend = "fake"\nmodel = "{MODEL}"\n[candidates.tuned]\n'
        f'backend = "hf"\nmodel = "hf:{job}"\n'
    )
    assert main(["eval", str(config)]) == 2
    said = f"error: [hf] model 'hf:{job}' is a local job's id, not a model: give the model it made"
    folder = f"or its folder: finetune status {job} (param: model)"
    assert capsys.readouterr().err == (  # nothing asked: no progress line before it
        f"{said}, job = \"hf:{job}\" in a [candidates.NAME] table, {folder} (candidate 'tuned')\n"
    )
    judged = f'data = "{chat_file}"\n[candidates]\nbase = "fake:{MODEL}"\n'
    config.write_text(judged + f'[judge]\nbackend = "hf"\nmodel = "{tmp_path / "gone"}"\n')
    assert main(["eval", str(config)]) == 2
    assert capsys.readouterr().err == (  # was told after every candidate had been asked
        f"error: [hf] model '{tmp_path / 'gone'}' could not be loaded: no such folder or .gguf "
        f"file; check the path (param: model) ({config}: [judge])\n"
    )
    assert main(["ask", f"hf:hf:{job}", "hi"]) == 2
    assert capsys.readouterr().err == f"{said}, finetune ask hf:{job}, {folder}\n"
    assert main(["train", str(chat_file), "--backend", "hf", "--model", job]) == 2
    assert capsys.readouterr().err == (
        f"error: [hf] model '{job}' is a local job's id, not a model: give the model it made, "
        f"its folder: finetune status {job} (param: model)\n"
    )


def test_a_local_option_in_advice_is_the_flag_that_sets_it(
    tiny_base: str, rows: list[Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``validate`` told the command line to "set max_length=512 or lower", and ``train`` to
    "set launcher='ray'": Python's words, for options the command sets with ``--option``."""
    long = json.loads(json.dumps(rows[0]))
    long["messages"][-1]["content"] = " ".join(["order"] * 700)
    data = write_jsonl(tmp_path / "long.jsonl", [long])
    local = ["--backend", "hf", "--model", tiny_base]
    assert main(["validate", str(data), *local]) == 1
    said = capsys.readouterr().out
    assert ": pass --option max_length=512 or lower to cut it at the context" in said
    short = write_jsonl(tmp_path / "short.jsonl", rows[:8])
    assert main(["train", str(short), *local, "--option", "ray_address=auto"]) == 2
    assert capsys.readouterr().err.startswith(
        "error: [hf] ray_address is read by launcher='ray', not 'python': pass --option "
        "launcher=ray, or drop ray_address"
    )
    assert not list(tmp_path.glob("hf-jobs/hfjob-*"))  # refused before any job


def test_an_option_of_an_asked_model_is_said_as_the_command_takes_it(
    tiny_base: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """``finetune ask hf:... --option max_tokens=3`` said "HFPredictor takes no option", a
    class the command line never shows, and a reply cut short said to "raise
    max_new_tokens", Python's words."""
    assert main(["ask", f"hf:{tiny_base}", "hi", "--option", "max_tokens=3"]) == 2
    assert capsys.readouterr().err.startswith(
        "error: ask's options: the model takes no option 'max_tokens' (did you mean "
        "'max_new_tokens'?); its options are max_new_tokens, "
    )
    import subprocess

    command = [sys.executable, "-m", "finetune.cli", "ask", f"hf:{tiny_base}", "Where is order 12?"]
    done = subprocess.run(
        [*command, "--option", "max_new_tokens=1"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == (  # it said to "raise max_new_tokens"
        "warning: the reply stopped at max_new_tokens=1, cut short: pass a larger --option "
        "max_new_tokens=N\n"
    )


def test_a_prompt_over_a_local_context_is_told_the_command_s_way_out(
    tiny_base: str, rows: list[Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``ask`` and ``eval`` were told to "leave such examples out (data.filter(...))"."""
    words = "word " * 700  # the tiny model's context: 512
    assert main(["ask", f"hf:{tiny_base}", words]) == 2
    assert "its reply would be noise; shorten the prompt, or ask" in capsys.readouterr().err
    long = json.loads(json.dumps(rows[0]))
    long["messages"][1]["content"] = words
    data = write_jsonl(tmp_path / "long.jsonl", [long])
    config = tmp_path / "eval.toml"
    config.write_text(f'data = "{data}"\n[candidates]\nbase = "hf:{tiny_base}"\n')
    assert main(["eval", str(config), "--no-cache"]) == 2
    assert "noise; leave such examples out of the data file, or" in capsys.readouterr().err


def test_a_model_that_ships_its_own_code_is_told_how_each_command_trusts_it(
    tiny_base: str, chat_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The command line was told to pass "Tuner('hf', model=..., trust_remote_code=True),
    fit(options={'trust_remote_code': True}), or HFPredictor(..., trust_remote_code=True)"."""
    from .test_hf_backend import _with_its_own_config_code

    model = _with_its_own_config_code(tiny_base, tmp_path / "remote", context=48)
    said = f"error: [hf] model {model!r} ships its own code, which transformers runs only with "
    said += "trust_remote_code=True; read that code, and if you trust it "
    for command in (
        ["validate", str(chat_file), "--backend", "hf", "--model", model],
        ["ask", f"hf:{model}", "hi"],
    ):
        assert main(command) == 2
        assert capsys.readouterr().err == (
            f"{said}pass --option trust_remote_code=true (param: trust_remote_code)\n"
        )
    config = tmp_path / "eval.toml"
    config.write_text(f'data = "{chat_file}"\n[candidates]\nremote = "hf:{model}"\n')
    assert main(["eval", str(config)]) == 2
    assert (
        capsys.readouterr()
        .err.splitlines()[-1]
        .startswith(
            f"{said}give its candidate options = {{ trust_remote_code = true }} in its "
            "[candidates.NAME] table (param: trust_remote_code)"
        )
    )
    options = "options = { trust_remote_code = true, max_new_tokens = 2 }"
    config.write_text(
        f'data = "{chat_file}"\n[candidates.remote]\nbackend = "hf"\nmodel = "{model}"\n{options}\n'
    )
    assert main(["eval", str(config), "--no-cache"]) == 0, capsys.readouterr().err


def test_preference_data_trained_without_dpo_is_told_the_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The command said "train with method='dpo', not 'sft'", a keyword no command takes."""
    data = tmp_path / "pref.jsonl"
    row = {"prompt": "2 + 2?", "chosen": "4.", "rejected": "Five."}
    data.write_text(json.dumps(row) + "\n", encoding="utf-8")
    assert main(["train", str(data), "--backend", "fake", "--model", MODEL]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: preference examples (chosen/rejected) train with --method dpo, not with sft "
        "(the default)"
    )
    with pytest.raises(ft.UnsupportedFeature, match=r"with method='dpo', not with sft"):
        ft.Tuner("fake", model=MODEL).fit(ft.Dataset.from_jsonl(data))


def test_validate_and_estimate_take_the_method_train_takes_and_refuse_what_it_refuses(
    tmp_path: Path, chat_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``finetune validate prefs.jsonl ... --method dpo``, the train command's line with its
    verb changed, was "unrecognized arguments: --method dpo"; and a config's ``method`` that
    the data cannot train with passed ``validate`` and ``estimate`` and failed ``train``."""
    data = tmp_path / "pref.jsonl"
    row = {"prompt": "2 + 2?", "chosen": "4.", "rejected": "Five."}
    data.write_text((json.dumps(row) + "\n") * 10, encoding="utf-8")  # openai's minimum
    job = ["--backend", "fake", "--model", MODEL]
    for command in ("validate", "estimate"):
        assert main([command, str(data), *job, "--method", "dpo"]) == 0, capsys.readouterr()
        assert main([command, str(data), *job, "--method", "sft"]) == 2
        assert capsys.readouterr().err.strip() == (
            "error: preference examples (chosen/rejected) train with --method dpo, not with sft "
            "(the default)"
        )
        config = tmp_path / "train.toml"
        config.write_text(f'backend = "fake"\nmodel = "{MODEL}"\nfile = "{chat_file}"\n')
        assert main([command, "--config", str(config), "--method", "dpo"]) == 2
        assert capsys.readouterr().err.strip() == (
            "error: --method dpo needs preference examples (chosen/rejected)"
        )


def test_an_export_error_names_the_format_as_the_flag(
    tiny_base: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``finetune export`` of a full model as an adapter said "use format='gguf'"."""
    adapter = ["export", tiny_base, "--format", "gguf-adapter", "--output", str(tmp_path / "a")]
    assert main(adapter) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: {tiny_base} is a full model, not a LoRA adapter; use --format gguf"
    )
    named = tmp_path / "m.gguf"
    assert main(["export", tiny_base, "--format", "merged", "--output", str(named)]) == 2
    assert (
        capsys.readouterr()
        .err.strip()
        .endswith(
            "a merged export is a folder: give a folder path, or --format gguf for one GGUF file"
        )
    )


def test_an_error_offers_no_way_out_that_only_python_has(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """ "pass api_key=... to the Tuner" is nothing a command line can do."""
    monkeypatch.delenv("TOGETHER_API_KEY", raising=False)
    assert main(["status", "ft-1", "--backend", "together"]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: [together] no Together API key. Set TOGETHER_API_KEY"
    )
    monkeypatch.setenv("FIREWORKS_API_KEY", "fw-test")
    monkeypatch.delenv("FIREWORKS_ACCOUNT_ID", raising=False)
    assert main(["status", "j-1", "--backend", "fireworks"]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: [fireworks] no Fireworks account id: set FIREWORKS_ACCOUNT_ID (param: account_id)"
    )
    monkeypatch.delenv("FIREWORKS_API_KEY")
    assert main(["status", "j-1", "--backend", "fireworks"]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: [fireworks] no Fireworks account id: set FIREWORKS_ACCOUNT_ID; no API key "
        "either: set FIREWORKS_API_KEY (param: account_id)"
    )


def test_an_eval_that_fails_names_the_candidate_and_the_example(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from .fakes.openai_fake import OpenAIFake

    data = write_jsonl(tmp_path / "holdout.jsonl", [chat(0)])
    config = tmp_path / "eval.toml"
    config.write_text(f'data = "{data}"\n[candidates]\nbase = "openai:gpt-4.1-mini"\n')
    with OpenAIFake() as fake:
        monkeypatch.setenv("OPENAI_BASE_URL", fake.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong-key-0123456789abcdef")
        assert main(["eval", str(config)]) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("error: [openai]") and "wrong-key" not in last
    assert last.endswith("(while candidate 'base' predicted the example at index 0)")


def test_a_damaged_registry_or_cache_is_told_in_the_command_s_terms(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A command-line user was told to "pass registry=False to the Tuner" and "cache=False"."""
    damaged = tmp_path / "damaged.sqlite3"
    damaged.write_text("not a database")
    monkeypatch.setenv("FINETUNE_REGISTRY", str(damaged))
    assert main(["jobs"]) == 2
    assert capsys.readouterr().err.endswith(
        "move it away; or set FINETUNE_REGISTRY to another path\n"
    )
    monkeypatch.delenv("FINETUNE_REGISTRY")
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "predictions.sqlite3").write_text("not a database")
    monkeypatch.setenv("FINETUNE_CACHE_DIR", str(tmp_path / "cache"))
    data = write_jsonl(tmp_path / "holdout.jsonl", [chat(i) for i in range(2)])
    config = tmp_path / "eval.toml"
    config.write_text(
        f'data = "{data}"\nmetrics = ["exact_match"]\n'
        '[candidates.echo]\nbackend = "fake"\nmodel = "base"\n'
    )
    assert main(["eval", str(config)]) == 2
    assert capsys.readouterr().err.endswith(
        "move it away; or set FINETUNE_CACHE_DIR to use another\n"
    )


def test_an_eval_config_is_told_where_a_local_model_gets_what_tools_need(
    tiny_base: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A local candidate refused tool examples told a config's author to give
    ``predictor_options: {'response_template': ...}`` or an ``ft.ModelRef``, or a function."""
    from .conftest import weather_data

    data = weather_data(2).to_jsonl(tmp_path / "tools.jsonl")
    config = tmp_path / "eval.toml"
    config.write_text(
        f'data = "{data}"\nmetrics = ["exact_match"]\n'
        f'[candidates.local]\nbackend = "hf"\nmodel = "{tiny_base}"\n'
    )
    assert main(["eval", str(config)]) == 2
    said = capsys.readouterr().err
    assert "takes no tools: its tokenizer has no response_template" in said
    assert "(give the candidate one in options = { response_template = {...} } under its " in said
    assert 'backend = "openai-compatible" and its endpoint under [candidates.NAME])' in said
    assert "predictor_options" not in said and "ft." not in said and "function" not in said


def test_an_eval_config_gives_each_candidate_its_predictor_options(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A local server by its endpoint, sampling settings per candidate, a fake model."""
    from .fakes.openai_fake import OpenAIFake

    monkeypatch.setenv("FINETUNE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai-must-not-travel")
    data = write_jsonl(tmp_path / "holdout.jsonl", [chat(i) for i in range(3)])
    config = tmp_path / "eval.toml"
    with OpenAIFake() as server:
        server.chat_responder = lambda model, messages: f"{model} answers"
        config.write_text(
            f'data = "{data}"\nmetrics = ["exact_match"]\n'
            '[candidates.served]\nbackend = "openai-compatible"\nmodel = "llama3"\n'
            f'endpoint = "{server.base_url}/"\n'
            f'options = {{ max_tokens = 7, seed = 3, api_key = "{server.api_key}" }}\n'
            '[candidates.echo]\nbackend = "fake"\nmodel = "base"\n'
        )
        monkeypatch.setenv("HOME", str(tmp_path))
        for folder in (str(tmp_path), f"{tmp_path}/new/", "~"):  # were found after every question
            assert main(["eval", str(config), "--output", folder]) == 2
            assert "is a folder: name a file, as " in capsys.readouterr().err
        assert main(["eval", str(config), "--output", f"{data}/result.json"]) == 2
        assert f"{data} is a file, not a folder; nothing was done" in capsys.readouterr().err
        assert not server.requests and not (tmp_path / "new").exists()
        output = tmp_path / "result.json"
        assert main(["eval", "--config", str(config), "--output", str(output)]) == 0  # as train
        chats = [r for r in server.requests if r.path.endswith("/chat/completions")]
        assert main(["eval", str(config)]) == 0  # every answer from the prediction cache
        assert main(["eval", str(config), "--no-cache"]) == 0  # new weights, the same name
        asked = [r for r in server.requests if r.path.endswith("/chat/completions")]
        assert len(asked) == len(chats) + 3
        config.write_text(config.read_text().replace("max_tokens", "max_tokenz"))
        assert main(["eval", str(config)]) == 2
    assert len(chats) == 3
    assert {(r.body["max_tokens"], r.body["seed"], r.body["model"]) for r in chats} == {
        (7, 3, "llama3")
    }
    assert "sk-openai-must-not-travel" not in str([r.raw for r in chats])
    saved = json.loads(output.read_text())
    assert saved["candidates"] == ["served", "echo"]
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error: the options of candidate 'served': ")  # the config's word
    assert err.endswith(
        "the model takes no option 'max_tokenz' (did you mean 'max_tokens'?); its options "
        "are api_key, base_url, max_tokens, temperature, seed, extra_body, provider, "
        "organization, project, api"  # not client, async_client: Python's objects
    )


def test_eval_can_fail_a_pipeline_unless_a_candidate_improved(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from .fakes.openai_fake import OpenAIFake

    data = write_jsonl(tmp_path / "holdout.jsonl", [chat(i) for i in range(12)])
    config = tmp_path / "eval.toml"
    config.write_text(
        f'data = "{data}"\nmetrics = ["exact_match", "token_f1"]\nbaseline = "base"\n'
        '[candidates]\nbase = "openai:base-model"\nagain = "openai:base-model-copy"\n'
        'tuned = "openai:ft:base-model:acme::abc123"\n'
    )

    def answer(model: str, messages: list[dict[str, Any]]) -> str:
        order = messages[-1]["content"].removeprefix("Where is my order #").removesuffix("?")
        return f"Order #{order} ships tomorrow." if model.startswith("ft:") else "No idea."

    gate = ["eval", str(config), "--fail-unless-improved"]
    with OpenAIFake() as fake:
        fake.chat_responder = answer
        monkeypatch.setenv("OPENAI_BASE_URL", fake.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", fake.api_key)
        assert main([*gate, "tuned"]) == 0
        assert capsys.readouterr().err.count("not improved") == 0
        assert main([*gate, "again"]) == 1
        shortfalls = [
            line for line in capsys.readouterr().err.splitlines() if "not improved" in line
        ]
        assert [line.split(":")[1].strip() for line in shortfalls] == [
            "again vs base on exact_match",
            "again vs base on token_f1",
        ]
        assert all(line.endswith(": no evidence") for line in shortfalls)
        asked = len(fake.requests)
        assert main([*gate, "base"]) == 2
        assert "--fail-unless-improved needs a candidate other than the baseline" in (
            capsys.readouterr().err
        )
        assert main([*gate, "tunde"]) == 2  # a misspelt one was told of baselines
        err = capsys.readouterr().err
        assert (
            "--fail-unless-improved 'tunde' is no candidate of the file (did you mean 'tuned'?)"
            in err
        )
        assert main([*gate, "nobody"]) == 2
        assert "'nobody' is no candidate of the file; candidates: base, " in capsys.readouterr().err
        assert len(fake.requests) == asked  # refused before any candidate was asked


def test_an_eval_config_grades_with_its_judge_and_gates_on_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Open-ended answers need a judge; a config could name ready metrics only."""
    from .fakes.openai_fake import OpenAIFake

    monkeypatch.setenv("FINETUNE_CACHE_DIR", str(tmp_path / "cache"))
    data = write_jsonl(tmp_path / "holdout.jsonl", [chat(i) for i in range(12)])
    config = tmp_path / "eval.toml"

    def answer(model: str, messages: list[dict[str, Any]]) -> str:
        asked = messages[-1]["content"]
        if model == "grader":
            assert "Rubric: Does it say when the order ships?" in asked
            return "Grade: 5" if "Answer to grade:\nShips tomorrow" in asked else "Grade: 1"
        return "Ships tomorrow." if model.startswith("ft:") else "No idea."

    output = tmp_path / "result.json"
    with OpenAIFake() as fake:
        fake.chat_responder = answer
        monkeypatch.setenv("OPENAI_BASE_URL", fake.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", fake.api_key)
        judge = (
            'backend = "openai-compatible"\nmodel = "grader"\n'
            f'endpoint = "{fake.base_url}"\noptions = {{ api_key = "{fake.api_key}" }}\n'
            'rubric = "Does it say when the order ships?"\n'
        )
        head = f'data = "{data}"\nbaseline = "base"\n'
        candidates = (
            '[candidates]\nbase = "openai:base-model"\ntuned = "openai:ft:base-model:acme::abc"\n'
        )
        config.write_text(f"{head}[judge]\n{judge}{candidates}")
        gate = ["--fail-unless-improved", "tuned", "--output", str(output)]
        assert main(["eval", str(config), *gate]) == 0
        graded = [r for r in fake.requests if r.body and r.body.get("model") == "grader"]
        saved = json.loads(output.read_text())
        assert saved["metrics"] == ["llm_judge"] and len(graded) == 24
        scores = {(row["candidate"], row["llm_judge"]) for row in saved["rows"]}
        assert scores == {("base", 0.0), ("tuned", 1.0)}
        assert "llm_judge" in capsys.readouterr().out
        config.write_text(f"{head}[[judge]]\n{judge}[[judge]]\n{judge}{candidates}")
        assert main(["eval", str(config)]) == 2
        assert "two metrics would fill the column 'llm_judge': give each [[judge]] a name" in (
            capsys.readouterr().err
        )
        named = f'[[judge]]\nname = "ships"\n{judge}[[judge]]\n{judge}'
        config.write_text(f"{head}{named}{candidates}")
        assert main(["eval", str(config), "--output", str(output)]) == 0  # from the cache
        assert len([r for r in fake.requests if r.body and r.body.get("model") == "grader"]) == 24
        assert json.loads(output.read_text())["metrics"] == ["ships", "llm_judge"]
        fake.chat_responder = lambda model, messages: "Grade: 4" if model == "grader" else "?"
        config.write_text(f'{head}judge = "openai:grader"\n{candidates}')  # as a candidate is
        assert main(["eval", str(config), "--output", str(output)]) == 0
        asked = [r.body for r in fake.requests if r.body and r.body.get("model") == "grader"]
        monkeypatch.setenv("OPENAI_API_KEY", "sk-not-its-key-0000")
        config.write_text(f'{head}judge = "openai:grader-2"\n{candidates}')  # not cached
        assert main(["eval", str(config)]) == 2  # the key's place in the config, not Python's
        said = capsys.readouterr().err
        assert "Set OPENAI_API_KEY or pass the key in options = { api_key = ... } under" in said
    assert "Rubric: Is the answer correct and complete?" in asked[-1]["messages"][-1]["content"]
    rows = json.loads(output.read_text())["rows"]
    assert {row["llm_judge"] for row in rows} == {0.75} and len(rows) == 24


def test_an_eval_config_leaves_out_the_examples_of_a_training_set(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A model scored on its own training rows was "not trusted", with advice in Python's
    terms (``holdout.excluding(train)``) that a config could not follow."""
    train = write_jsonl(tmp_path / "train.jsonl", [chat(i) for i in range(20)])
    holdout = write_jsonl(tmp_path / "holdout.jsonl", [chat(i) for i in range(10, 30)])
    tuner = ft.Tuner("fake", model="base")
    job = tuner.fit(ft.Dataset.from_jsonl(train))
    tuned = job.wait(poll_interval=0.01, timeout=10).fine_tuned_model
    config = tmp_path / "eval.toml"
    body = (
        f'data = "{holdout}"\nbaseline = "base"\n'
        f'[candidates]\nbase = "fake:base"\ntuned = "fake:{tuned}"\n'
    )
    config.write_text(body)
    out = tmp_path / "result.json"
    gate = ["eval", str(config), "--output", str(out), "--fail-unless-improved", "tuned"]
    assert main(gate) == 1
    err = capsys.readouterr().err
    assert "not trusted: 'tuned' was fine-tuned on 10 of the evaluated examples" in err
    assert 'exclude = "train.jsonl" in the config' in err
    config.write_text(f'exclude = "{train}"\n' + body)
    main(gate)
    err = capsys.readouterr().err
    assert f"left out 10 of the evaluated examples: also in {train}" in err
    assert "not trusted" not in err
    assert ft.EvalResult.from_json(out).trained_on == {}  # 10 unseen examples were scored
    config.write_text("exclude = 3\n" + body)
    assert main(gate) == 2
    assert "exclude is a file path or a list of them" in capsys.readouterr().err
    # all of data left out: said in the config's terms ("nothing to evaluate: give at least
    # one example and one candidate, e.g. {'base': tuner.base_model, ...}" before)
    rest = write_jsonl(tmp_path / "rest.jsonl", [chat(i) for i in range(20, 30)])
    config.write_text(f'exclude = ["{train}", "{rest}"]\n' + body)  # 10 in each
    assert main(gate) == 2
    assert capsys.readouterr().err == (
        f"error: {config}: every example of data is also in exclude ({train}, {rest}): "
        "nothing is left to evaluate; give data held out of training\n"
    )


def test_an_eval_config_whose_shots_hold_evaluated_examples_is_told_in_its_own_terms(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The refusal said "train, holdout = data.split(...); ref.with_few_shot(train, k)" and
    gave positions from 0, which a config's user could not follow."""
    data = write_jsonl(tmp_path / "holdout.jsonl", [chat(i) for i in range(10, 30)])
    shots = write_jsonl(tmp_path / "shots.jsonl", [chat(i) for i in range(12)])
    config = tmp_path / "eval.toml"
    body = (
        f'data = "{data}"\n[candidates]\nbase = "fake:base"\n'
        f'[candidates.few]\nbackend = "fake"\nmodel = "base"\n'
        f'few_shot = {{ train = "{shots}", k = 12 }}\n'
    )
    config.write_text(body)
    assert main(["eval", str(config)]) == 2
    err = capsys.readouterr().err
    assert (
        f"{config}: candidate 'few' shows 2 evaluated examples (lines 1, 2 of holdout.jsonl)" in err
    )
    assert "its few_shot train file, shots.jsonl" in err
    assert 'or leave them out of data with exclude = "shots.jsonl"' in err
    assert "data.split" not in err and "with_few_shot" not in err
    config.write_text(f'exclude = "{shots}"\n' + body)
    assert main(["eval", str(config)]) == 0
    assert f"left out 2 of the evaluated examples: also in {shots}" in capsys.readouterr().err
    more = write_jsonl(tmp_path / "more.jsonl", [chat(i) for i in (40, 11, 41)])
    config.write_text(body.replace(f'data = "{data}"', f'data = ["{data}", "{more}"]'))
    assert main(["eval", str(config)]) == 2  # several data files: each row names its own
    err = capsys.readouterr().err
    assert "shows 2 evaluated examples (holdout.jsonl:1, more.jsonl:2)" in err  # 11 twice: once
    config.write_text(f'exclude = "{shots}"\n' + config.read_text())
    out = tmp_path / "result.json"
    assert main(["eval", str(config), "--output", str(out)]) == 0
    assert len(ft.EvalResult.from_json(out).predictions("base")) == 20  # 23 less 3 shown


def test_eval_from_a_config_on_the_tiny_model(
    tiny_base: str,
    rows: list[dict[str, object]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("FINETUNE_CACHE_DIR", str(tmp_path / "cache"))
    data = write_jsonl(tmp_path / "holdout.jsonl", rows[:8])
    train = write_jsonl(tmp_path / "train.jsonl", rows[8:20])
    config = tmp_path / "eval.toml"
    config.write_text(
        f'data = "{data}"\nmetrics = ["exact_match", "token_f1"]\nbaseline = "base"\n'
        f'[candidates.base]\nbackend = "hf"\nmodel = "{tiny_base}"\n'
        f'[candidates.few]\nbackend = "hf"\nmodel = "{tiny_base}"\n'
        f'few_shot = {{ train = "{train}", k = 2 }}\n'
    )
    output = tmp_path / "result.json"
    assert main(["eval", str(config), "--output", str(output)]) == 0
    assert json.loads(output.read_text())["candidates"] == ["base", "few"]
    config.write_text(config.read_text().replace(str(train), str(data)))  # shots = evaluated
    assert main(["eval", str(config)]) == 2
    assert "candidate 'few' shows 2 evaluated examples" in capsys.readouterr().err


@pytest.mark.timeout(300)
def test_tiny_demo_prints_the_three_way_comparison(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("trl")
    as_it_was = _logging_state()
    (tmp_path / "notes.txt").write_text("mine")
    assert main(["demo", "--tiny", "--output", str(tmp_path / "notes.txt")]) == 2
    assert "notes.txt is a file; the demo writes a folder" in capsys.readouterr().err  # [Errno 17]
    assert main(["demo", "--tiny", "--output", str(tmp_path / "notes.txt" / "demo")]) == 2
    assert "notes.txt is a file, not a folder; nothing was done" in capsys.readouterr().err
    demo = tmp_path / "the demo's $HOME"  # the last line's command still runs as printed
    assert main(["demo", "--tiny", "--output", str(demo)]) == 0
    out = capsys.readouterr().out
    assert "| base vs base 3-shot | exact_match |" in out
    assert "tuned vs base 3-shot on exact_match" in out and ": improved" in out
    assert (demo / "evaluation.md").exists()
    command = shlex.split(out.rstrip().splitlines()[-1].removeprefix("export it: "))
    assert command[:2] == ["finetune", "export"] and str(demo / "jobs") in command
    asked = shlex.split(out.rstrip().splitlines()[-2].removeprefix("ask it: "))
    assert asked[:3] == ["finetune", "ask", f"hf:{command[2]}"] and "--system" in asked
    assert main(asked[1:]) == 0  # the tuned model answers a held-out question in the house format
    assert re.match(DEMO_RESPONSE_FORMAT, capsys.readouterr().out.strip())
    monkeypatch.chdir(tmp_path)  # where the user's shell would write the file
    assert main(command[1:]) == 0
    assert list(tmp_path.glob("*.gguf"))
    assert "re-attached" not in out
    assert main(["demo", "--tiny", "--output", str(demo)]) == 0  # trained once is enough
    assert f"re-attached to {command[2]}, trained by an earlier run" in capsys.readouterr().out
    # quiet while it ran, and as it was after: the finetune logger was left at ERROR, and
    # transformers' bars off, for whatever the process (a tool, the next test) did next
    assert _logging_state() == as_it_was


@pytest.mark.hf
def test_ctrl_c_during_the_demo_cancels_its_job(tmp_path: Path) -> None:
    """Ctrl-C while the demo trained left its worker training on every core, for a demo no
    one watched any more."""
    import signal

    pytest.importorskip("trl")
    demo = tmp_path / "demo"
    running = interruptible("demo", "--tiny", "--output", str(demo), merged=True)
    deadline = time.monotonic() + 120
    while not list(demo.glob("jobs/hfjob-*/metrics.jsonl")):  # training has begun
        assert time.monotonic() < deadline and running.poll() is None
        time.sleep(0.2)
    running.send_signal(signal.SIGINT)
    out, _ = running.communicate(timeout=60)
    (job,) = demo.glob("jobs/hfjob-*")
    assert running.returncode == 130 and "Traceback" not in out, out
    assert f"the demo's job {job.name} is cancelled" in out
    assert json.loads((job / "status.json").read_text())["status"] == "cancelled"


def test_the_demo_keeps_the_warning_filters_its_imports_add() -> None:
    """Restoring the warning filters wholesale would drop those torch and numpy add as they
    are imported during the demo, along with the demo's own."""
    from finetune.demo._run import _no_future_warnings_of_transformers

    with warnings.catch_warnings():  # this test's own filters go when it ends
        with _no_future_warnings_of_transformers():
            warnings.filterwarnings("ignore", "a library's own", UserWarning, "somelib")
        found = [(f[0], getattr(f[1], "pattern", None), f[2], f[3]) for f in warnings.filters]
    assert ("ignore", "a library's own", UserWarning, re.compile("somelib")) in found
    assert not any(rule[2] is FutureWarning and "transformers" in str(rule[3]) for rule in found)


def _logging_state() -> tuple[int, int, bool, bool]:
    from transformers.utils import logging as transformers_logging

    def hides_transformers_future_warnings(rule: Any) -> bool:
        action, _, category, module, _ = rule
        return action == "ignore" and category is FutureWarning and "transformers" in str(module)

    return (
        logging.getLogger("finetune").level,
        transformers_logging.get_verbosity(),
        transformers_logging.is_progress_bar_enabled(),
        any(hides_transformers_future_warnings(rule) for rule in warnings.filters),
    )


@needs_tiktoken
def test_an_option_flag_sets_a_backend_option_over_the_configs(
    chat_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A backend option (``max_length``, ``full_finetune``, ``device``) could only come from
    a config file's [options]: no flag of train, estimate or validate took one."""
    config = tmp_path / "train.toml"
    config.write_text(
        'backend = "together"\nmodel = "meta-llama/Meta-Llama-3.1-8B-Instruct-Reference"\n'
        f'file = "{chat_file}"\n[options]\nfull_finetune = true\n'
    )
    full_rates = "a full fine-tune has higher rates"
    assert main(["estimate", "--config", str(config), "--json"]) == 0
    assert any(full_rates in note for note in json.loads(capsys.readouterr().out)["notes"])
    flagged = ["estimate", "--config", str(config), "--option", "full_finetune=false", "--json"]
    assert main(flagged) == 0  # the flag over the file, read as JSON's false
    assert not any(full_rates in note for note in json.loads(capsys.readouterr().out)["notes"])
    together = ["--backend", "together", "--model", "meta-llama/Meta-Llama-3.1-8B-Instruct"]
    assert main(["estimate", str(chat_file), *together, "--option", "full_finetune=true"]) == 0
    assert full_rates in capsys.readouterr().out
    assert main(["estimate", str(chat_file), *together, "--option", "n_checkpoints=2"]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: Together takes only ['full_finetune']; got ['n_checkpoints'] "
        "('n_checkpoints' goes under [hyperparameters.extra] in a --config file)"
    )
    local = ["validate", str(chat_file), "--backend", "hf", "--model", "./m", "--option"]
    for option, told in (
        ("lr=0.001", "the hyperparameter --learning-rate"),
        ("warmup=0.1", "the hyperparameter warmup, under [hyperparameters] in a --config file"),
    ):  # not "ft.Hyperparameters(learning_rate=...)", which no command takes
        assert main([*local, option]) == 2
        name = option.partition("=")[0]
        assert capsys.readouterr().err.strip() == (
            f"error: [hf] '{name}' is no option of the hf backend: it is {told} (param: {name})"
        )
    with pytest.raises(SystemExit) as stopped:
        main(["train", str(chat_file), "--backend", "fake", "--option", "max_length"])
    assert stopped.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "error: finetune train: argument --option: is KEY=VALUE, a backend option such as "
        "max_length=2048, not 'max_length' (see finetune train --help)"
    )


def test_validate_refuses_an_option_that_train_would_refuse(
    chat_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``finetune validate --option modle=x`` (or a config's [options]) said "Validation OK",
    and the pipeline's ``train`` then refused the option: Python's ``validate`` the same."""
    together = ["--backend", "together", "--model", "meta-llama/Meta-Llama-3.1-8B-Instruct"]
    assert main(["validate", str(chat_file), *together, "--option", "modle=x"]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: Together takes only ['full_finetune']; got ['modle']"
    )
    assert main(["validate", str(chat_file), *together, "--option", "full_finetune=true"]) == 0
    fireworks = ft.Tuner("fireworks", model="accounts/f/models/m", registry=False)
    with pytest.raises(ft.UnsupportedFeature, match=r"^Fireworks takes no options; got \['x'\]"):
        fireworks.validate(ft.Dataset.from_jsonl(chat_file), options={"x": 1})
    empty = ft.Dataset.from_records([])  # no kind to plan a job with: the report says so
    assert not fireworks.validate(empty, options={"x": 1}).ok
    local = ["validate", str(chat_file), "--backend", "hf", "--model", "./m", "--option"]
    assert main([*local, "model=./other"]) == 2  # the Tuner's keyword, which is a flag here
    assert capsys.readouterr().err.strip() == (
        "error: [hf] 'model' is no option of the hf backend: did you mean --model? (param: model)"
    )


def test_validate_and_estimate_name_their_backend(capsys: pytest.CaptureFixture[str]) -> None:
    """No default: OpenAI's rules for a local model, or for anyone after 2027-01-06, mislead."""
    for command in ("validate", "estimate"):
        assert main([command, "data.jsonl", "--model", "./my-model"]) == 2
        says = f"{command} needs 'backend': give --backend, or backend in a --config file"
        assert says in capsys.readouterr().err
    for command in ("validate", "estimate", "train"):  # a misspelt backend before the rest
        assert main([command, "data.jsonl", "--backend", "opnai"]) == 2
        assert "no backend named 'opnai'. Did you mean 'openai'?" in capsys.readouterr().err


@needs_tiktoken
def test_estimate_prices_the_job_a_train_config_would_start(
    chat_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``finetune estimate --config`` reads the file ``train --config`` reads: the price of
    the job it would start, its options included (a full fine-tune on Together costs more)."""
    config = tmp_path / "train.toml"
    config.write_text(
        'backend = "together"\nmodel = "meta-llama/Meta-Llama-3.1-8B-Instruct-Reference"\n'
        f'file = "{chat_file}"\nsuffix = "s"\n[hyperparameters]\nepochs = 3\n'
        "[options]\nfull_finetune = true\n"
    )
    assert main(["estimate", "--config", str(config), "--json"]) == 0
    full = json.loads(capsys.readouterr().out)
    assert full["epochs"] == 3 and full["billed_tokens"] == 3 * full["tokens_total"]
    assert any("a full fine-tune has higher rates" in note for note in full["notes"])
    assert main(["estimate", "--config", str(config), "--epochs", "1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["epochs"] == 1  # the flag over the file
    assert main(["validate", "--config", str(config), "--json"]) == 0  # the same job, checked
    assert json.loads(capsys.readouterr().out)["examples"] == full["examples"]
    config.write_text(config.read_text().replace("full_finetune = true", "packing = false"))
    assert main(["estimate", "--config", str(config)]) == 2
    assert "Together takes only ['full_finetune']; got ['packing']" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["train", "d.jsonl", "--lr", "1e-4"], "--lr 1e-4 (did you mean --learning-rate?)"),
        (["train", "d.jsonl", "--base-model", "m"], "--base-model m (did you mean --model?)"),
        (["validate", "d.jsonl", "--target", "hf"], "--target hf (did you mean --backend?)"),
        (["estimate", "d.jsonl", "--provider=hf"], "--provider=hf (did you mean --backend?)"),
        (["train", "d.jsonl", "--num-train-epochs", "3"], "(did you mean --epochs?)"),
        (["train", "d.jsonl", "--sufix", "x"], "--sufix x (did you mean --suffix?)"),
        (["validate", "d.jsonl", "--zzz"], "arguments: --zzz (see finetune validate --help)"),
        (["models", "together"], "together (did you mean --backend together?)"),
        (["jobs", "openai", "--limit", "3"], "openai (did you mean --backend openai?)"),
        (["evaluate", "c.toml"], "invalid choice: 'evaluate' (did you mean eval?) (choose from"),
    ],
)
def test_a_flag_or_command_of_another_name_is_told_the_one_meant(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--lr``, ``--target`` (as ``validate(target=...)`` names it), ``--base-model``, a
    backend named without ``--backend`` and ``finetune evaluate`` were "unrecognized" or
    "invalid choice" with no suggestion, and sent to ``finetune --help``, not the command's."""
    with pytest.raises(SystemExit) as stopped:
        main(argv)
    assert stopped.value.code == 2
    assert says in capsys.readouterr().err


@pytest.mark.parametrize(
    "flags",
    [
        ["--api-key", "sk-proj-abcdefghijklmnopqrstuvwxyz123456"],
        ["--api-key=sk-proj-abcdefghijklmnopqrstuvwxyz123456"],
        ["--wandb-key", "0123456789abcdef0123456789abcdef01234567"],
        ["--token", "hf_abcdefghijklmnopqrstuvwxyz"],
    ],
)
def test_a_key_given_as_a_flag_is_never_echoed_and_is_told_where_keys_go(
    flags: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """``finetune train data --api-key sk-...`` printed the key back in "unrecognized
    arguments", to the terminal and any log of it."""
    with pytest.raises(SystemExit):
        main(["train", "d.jsonl", "--backend", "fake", "--model", "m", *flags])
    said = capsys.readouterr().err
    secret = flags[-1].rpartition("=")[2]
    assert secret not in said and secret[-12:] not in said and "***" in said
    assert "the command reads each backend's key from the environment" in said


def test_a_command_meant_is_found_whichever_way_python_lists_the_choices() -> None:
    """Newer Pythons list argparse's choices bare (``choose from eval, train``), older ones
    quoted; the command meant is told either way."""
    from finetune._arguments import _command_meant

    for listed in ("'validate', 'eval', 'train'", "validate, eval, train"):
        said = _command_meant(
            f"argument command: invalid choice: 'evaluate' (choose from {listed})"
        )
        assert said.startswith("argument command: invalid choice: 'evaluate' (did you mean eval?)")


def test_a_json_file_s_list_and_a_csv_file_s_encoding_are_named_by_flags(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The cure of a JSON file holding several lists, and of a cp1252 CSV file, was Python
    (``Dataset.from_json(..., field=...)``, ``from_csv(..., encoding=...)``) no command could
    run: ``--field`` and ``--encoding`` (and a config's ``field``, ``encoding``) take them."""
    rows = [chat(i) for i in range(12)]
    splits = tmp_path / "splits.json"
    splits.write_text(json.dumps({"train": rows[:10], "test": rows[10:]}))
    excel = tmp_path / "excel.csv"
    excel.write_bytes(b"user;assistant\r\n" + "Un café ?;Oui.\r\n".encode("cp1252") * 10)
    fake = ["--backend", "fake", "--model", MODEL, "--json"]
    for path, flag in ((splits, ["--field", "train"]), (excel, ["--encoding", "cp1252"])):
        assert main(["validate", str(path), *fake]) == 1
        assert f"or {' '.join(flag)} on the command line" in capsys.readouterr().out
        for command in ("validate", "estimate"):
            assert main([command, str(path), *flag, *fake]) == 0
            assert json.loads(capsys.readouterr().out)["examples"] == 10
    config = write_config(
        tmp_path / "train.toml",
        backend="fake",
        model=MODEL,
        file=splits,
        field="train",
        validation=splits,
    )
    assert main(["estimate", "--config", str(config), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["examples"] == 10
    evaluated = tmp_path / "eval.toml"
    evaluated.write_text(f'data = "{splits}"\nfield = "test"\n[candidates]\nb = "fake:m"\n')
    assert main(["eval", str(evaluated), "--output", str(tmp_path / "r.json")]) == 0
    assert len(json.loads((tmp_path / "r.json").read_text())["example_keys"]) == 2
    for flags, says in (
        (["--field", "train", str(excel)], "field names the list of a JSON file's object"),
        (["--encoding", "cp1252", str(splits)], "encoding is a CSV file's (--encoding cp1252)"),
    ):
        assert main(["validate", *flags, *fake]) == 2
        assert says in capsys.readouterr().err


def test_version_prints_the_installed_version(capsys: pytest.CaptureFixture[str]) -> None:
    """`finetune --version` said "the following arguments are required: command"."""
    with pytest.raises(SystemExit) as stopped:
        main(["--version"])
    assert stopped.value.code == 0
    assert capsys.readouterr().out == f"finetune {ft.__version__}\n"


@pytest.mark.parametrize(
    ("flag", "says"),
    [
        (["--seed", "-1"], "argument --seed: must be at least 0, not -1"),
        (["--epochs", "0"], "argument --epochs: must be at least 1, not 0"),
        (
            ["--learning-rate", "inf"],
            "argument --learning-rate: must be a finite number above 0, not inf",
        ),
        (["--batch-size", "two"], "argument --batch-size: 'two' is not a whole number"),
        (["--model", ""], "argument --model: is empty: give a name"),
        (["--backend", " "], "argument --backend: is empty: give a name"),
        (["--suffix", ""], "argument --suffix: is empty: give a name"),
    ],
)
def test_a_bad_train_flag_is_one_line_before_anything_runs(
    flag: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["train", "data.jsonl", "--backend", "fake", "--model", MODEL, *flag])
    assert stopped.value.code == 2
    assert capsys.readouterr().err == f"error: finetune train: {says} (see finetune train --help)\n"


@needs_tiktoken
def test_train_refuses_to_start_above_its_max_cost(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """--max-cost, or max_cost in the config: a job the estimate prices above it is never
    started, nothing uploaded; ``estimate`` exits 1 on it, as a pipeline's check."""
    from .fakes.openai_fake import OpenAIFake

    data = write_jsonl(tmp_path / "train.jsonl", [chat(i) for i in range(12)])
    model = "gpt-4.1-mini-2025-04-14"
    with OpenAIFake() as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", server.api_key)
        flags = [str(data), "--backend", "openai", "--model", model]
        assert main(["train", *flags, "--max-cost", "0.001"]) == 2
        err = capsys.readouterr().err.strip().splitlines()[-1]
        assert err.startswith("error: [openai] the estimate, 0.0168 USD, is above max_cost=0.001")
        config = write_config(tmp_path / "train.toml", backend="openai", model=model, max_cost=1)
        assert main(["train", str(data), "--config", str(config), "--max-cost", "0.01"]) == 2
        assert "is above max_cost=0.01 USD" in capsys.readouterr().err  # the flag over the file
        assert main(["estimate", str(data), "--config", str(config), "--max-cost", "0.01"]) == 1
        priced, err = capsys.readouterr()
        assert "cost: 0.0168 USD" in priced and err.strip().endswith(
            "is above max_cost=0.01 USD (fewer epochs or examples, or a cheaper model, cost "
            "less): finetune train refuses to start it"
        )
        assert main(["estimate", str(data), "--config", str(config)]) == 0  # within its 1 USD
        wrong = write_config(tmp_path / "wrong.toml", backend="openai", model=model, max_cost="5")
        for command in ("estimate", "train"):
            assert main([command, str(data), "--config", str(wrong)]) == 2
            assert capsys.readouterr().err.strip() == (
                f"error: {wrong}: max_cost is USD, a number of 0 or more, not '5'"
            )
        assert not server.requests
        assert main(["train", str(data), "--config", str(config)]) == 0
        assert capsys.readouterr().out.startswith("ftjob-")


def test_train_flags_take_auto_where_hyperparameters_do(
    chat_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    auto = ["--epochs", "auto", "--batch-size", "Auto", "--learning-rate-multiplier", "auto"]
    assert main(["train", str(chat_file), "--backend", "fake", "--model", MODEL, *auto]) == 0
    job_id = capsys.readouterr().out.split()[0]
    assert main(["jobs", "--backend", "fake", "--json"]) == 0
    (record,) = json.loads(capsys.readouterr().out)
    assert record["job_id"] == job_id
    assert record["hyperparameters"] == {
        "epochs": "auto",
        "batch_size": "auto",
        "learning_rate_multiplier": "auto",
    }


def test_every_option_of_every_command_says_what_it_is() -> None:
    from finetune.cli import _parser

    commands = next(a for a in _parser()._actions if a.dest == "command").choices
    options = [
        (name, action)
        for name, command in commands.items()
        for action in command._actions
        if action.option_strings
    ]
    assert options and all(a.help for _, a in options), [
        f"{name} {a.option_strings[0]}" for name, a in options if not a.help
    ]


def test_every_command_is_documented() -> None:
    from finetune.cli import _parser

    page = (Path(__file__).resolve().parents[1] / "docs" / "cli.md").read_text()
    commands = next(a for a in _parser()._actions if a.dest == "command").choices
    assert commands, "the parser has subcommands"
    for name in commands:
        assert f"`finetune {name}" in page, name


def test_a_warning_reads_as_a_command_line_says_it(tmp_path: Path) -> None:
    import subprocess

    data = write_jsonl(tmp_path / "train.jsonl", [{**chat(i), "note": None} for i in range(12)])
    command = [sys.executable, "-m", "finetune.cli", "train", str(data)]
    done = subprocess.run(
        [*command, "--backend", "fake", "--model", "m"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    said, next_step = done.stderr.splitlines()
    assert said.startswith("warning: validation found 12 warnings, which do not stop the fit:")
    assert "unknown_field x12 (first at" in said and "finetune validate on the command line" in said
    job_id, _ = done.stdout.split()  # what a script reads; what to do next on stderr
    assert next_step == (  # not `finetune wait`, which would find no job: it lived here
        f"fake:{job_id} ended with this command: a fake job lives in the process that made it "
        "(`finetune train --wait` runs one to its end)"
    )
    # Asked about from another process, it is told as what it is, not as a job of another
    # endpoint or account to re-attach to (the registry keeps the store it lived in).
    asked = [sys.executable, "-m", "finetune.cli"]
    refreshed = subprocess.run([*asked, "jobs", "--refresh"], capture_output=True, text=True)
    assert refreshed.stderr.splitlines()[0] == (
        "warning: 1 fake job not read again: a fake job lives in the process that made it"
    )
    status = subprocess.run([*asked, "status", f"fake:{job_id}"], capture_output=True, text=True)
    assert status.returncode == 2 and "registry" not in status.stderr, status.stderr
    assert "(fake jobs live in the process that made them)" in status.stderr


def test_train_says_when_the_same_fit_re_attached_to_its_earlier_job(
    chat_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A second ``train`` of the same data and settings printed the first job's id as if it
    had started it: nothing said that nothing was trained anew, or how to train again."""
    command = ["train", str(chat_file), "--backend", "fake", "--model", MODEL, "--wait"]
    assert main(command) == 0
    job_id = capsys.readouterr().out.split()[0]
    assert main(command) == 0
    out, err = capsys.readouterr()
    assert out.split()[0] == job_id
    assert (
        f"the same fit (data, model, method, settings and suffix) started {job_id} before: "
        "re-attached to it, nothing uploaded or trained anew; another --seed or --suffix "
        "starts a new job"
    ) in err
    assert main([*command, "--seed", "2"]) == 0
    out, err = capsys.readouterr()
    assert out.split()[0] != job_id and "re-attached" not in err


def test_train_skips_validation_only_when_told(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [chat(i) for i in range(12)]
    rows[3]["messages"].pop()  # no assistant turn: an error
    data = write_jsonl(tmp_path / "train.jsonl", rows)
    command = ["train", str(data), "--backend", "fake", "--model", MODEL]
    assert main(command) == 2
    err = capsys.readouterr().err
    assert "train.jsonl:4" in err and "(finetune train --skip-validation)" in err
    assert main([*command, "--skip-validation"]) == 0
    assert capsys.readouterr().out.split()[1] in STARTED
    config = tmp_path / "train.toml"
    config.write_text(f'backend = "fake"\nmodel = "m2"\nfile = "{data}"\nskip_validation = true\n')
    assert main(["train", "--config", str(config)]) == 0


def test_a_config_file_may_name_its_files_under_the_home_folder_with_a_tilde(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    write_jsonl(tmp_path / "train.jsonl", [chat(i) for i in range(12)])
    (tmp_path / "train.toml").write_text(
        f'backend = "fake"\nmodel = "{MODEL}"\nfile = "~/train.jsonl"\n'
    )
    assert main(["train", "--config", "~/train.toml"]) == 0
    assert capsys.readouterr().out.split()[1] in STARTED


def test_a_line_a_library_prints_itself_is_not_printed_again() -> None:
    """huggingface_hub prints its warnings with a handler of its own and passes them on."""
    import logging

    from finetune._cli_log import not_printed_on_the_way

    printing = logging.getLogger("printing_library")
    printing.addHandler(logging.NullHandler())
    try:
        for name, passed_on in (("printing_library.http", False), ("quiet_library", True)):
            record = logging.LogRecord(name, logging.WARNING, __file__, 1, "retrying", (), None)
            assert not_printed_on_the_way(record) is passed_on
    finally:
        printing.handlers.clear()


def test_debug_lines_mask_keys_and_a_signed_upload_urls_signature() -> None:
    """``--debug`` shows httpx's lines, which name the signed URLs Together and Fireworks give."""
    import logging

    from finetune.backends._masked_logs import without_secrets

    signed = "https://bucket.test/up/file-1?X-Amz-Signature=0f3a9c2b7d1e4f5a6b8c&limit=20"
    record = logging.LogRecord(
        "httpx", logging.INFO, __file__, 1, 'HTTP Request: %s %s "%s"', ("PUT", signed, "200"), None
    )
    assert without_secrets(record) is True
    line = record.getMessage()
    assert (
        line == 'HTTP Request: PUT https://bucket.test/up/file-1?X-Amz-Signature=***&limit=20 "200"'
    )
    keyed = logging.LogRecord(
        "openai", logging.DEBUG, __file__, 1, "key %s", ("sk-proj-abcdefghijklmnop",), None
    )
    without_secrets(keyed)
    assert "abcdefghijklmnop" not in keyed.getMessage()
    try:  # an SDK logs the redirect it was given with its traceback (exc_info=True)
        raise RuntimeError(f"Redirect location: '{signed}'")
    except RuntimeError:
        failed = logging.LogRecord("sdk", logging.DEBUG, __file__, 1, "got", (), sys.exc_info())
    without_secrets(failed)
    shown = logging.Formatter().format(failed)
    assert "X-Amz-Signature=***&limit=20" in shown and "0f3a9c2b7d1e" not in shown


def test_debug_lines_mask_the_values_of_fields_named_as_secrets() -> None:
    """An SDK's debug line shows the request's body: Together's carries ``wandb_api_key``, a
    40-character hex key that looks like no provider's key."""
    import logging

    from finetune.backends._masked_logs import without_secrets

    wandb = "0123456789abcdef0123456789abcdef01234567"
    options = {"json_data": {"model": "m", "wandb_api_key": wandb, "n_epochs": 2}}
    lines = [
        ("Request options: %s", (options,)),
        ("%s", (f'{{"wandbConfig": {{"apiKey": "{wandb}", "project": "p"}}}}',)),
        ("%s", (f"WANDB_API_KEY={wandb} client_secret: {wandb}; password='{wandb}'",)),
        ("%s", ({"hf_api_token": wandb, "hub_token": wandb},)),  # Together's, TRL's
    ]
    for message, args in lines:
        record = logging.LogRecord("together", logging.DEBUG, __file__, 1, message, args, None)
        without_secrets(record)
        assert wandb[:12] not in record.getMessage()
    record = logging.LogRecord("x", logging.DEBUG, __file__, 1, "%s", (options,), None)
    without_secrets(record)
    assert (
        "'n_epochs': 2" in record.getMessage() and "'wandb_api_key': '***'" in record.getMessage()
    )
    kept = "{'api_key': None, 'max_tokens': 512, 'token_count': 5, 'tokenizer': 'x'}"
    record = logging.LogRecord("x", logging.DEBUG, __file__, 1, kept, (), None)
    without_secrets(record)
    assert record.getMessage() == kept


def test_the_demo_takes_a_model_or_tiny_not_both(capsys: pytest.CaptureFixture[str]) -> None:
    """--tiny built its toy model and ignored --model, without a word."""
    with pytest.raises(SystemExit) as stopped:
        main(["demo", "--tiny", "--model", "HuggingFaceTB/SmolLM2-135M-Instruct"])
    assert stopped.value.code == 2
    assert "argument --model: not allowed with argument --tiny" in capsys.readouterr().err
    from finetune.demo._run import run_demo

    with pytest.raises(ValueError, match="give model= or tiny=True, not both"):
        run_demo("unused", model="some/model", tiny=True)


def _skip_unless_the_rest_is_installed(packages: list[str], absent: str) -> None:
    """Skip where one of ``packages``, checked in order before ``absent``, is not installed (a
    set-up without the ``hf`` extra): the error would name that one."""
    before = packages[: packages.index(absent)] if absent in packages else packages
    lacking = [name for name in before if not importlib.util.find_spec(name)]
    if lacking:
        pytest.skip(f"{', '.join(lacking)} not installed: the error names the first, not {absent}")


@pytest.mark.parametrize(
    ("absent", "tiny"), [("trl", False), ("gguf", False), ("tokenizers", True)]
)
def test_the_demo_without_the_hf_extra_says_so_before_it_starts(
    absent: str,
    tiny: bool,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``pip install finetune`` then ``finetune demo``: it printed its first step, fetched
    SmolLM2's 98 MB and converted them, then failed on the missing package."""
    _skip_unless_the_rest_is_installed(
        ["torch", "transformers", "trl", "peft", "datasets", "accelerate", "tokenizers"], absent
    )
    monkeypatch.setitem(sys.modules, absent, None)  # as if not installed
    demo = tmp_path / "demo"
    assert main(["demo", "--output", str(demo), *(["--tiny"] if tiny else [])]) == 2
    out, err = capsys.readouterr()
    assert out == ""  # no step begun
    assert err == (
        f"error: {absent} is not installed for the demo, which trains locally. "
        'Install it with: pip install "finetune[hf]"\n'
    )
    assert not demo.exists()


def test_a_demo_that_fails_before_writing_leaves_no_folder_it_made(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``finetune demo --model ./no-such-model`` left an empty output folder behind."""
    pytest.importorskip("transformers")
    missing = tmp_path / "no-such-model"
    for output, kept in ((tmp_path / "new" / "demo", False), (tmp_path / "mine", True)):
        if kept:
            output.mkdir()
        assert main(["demo", "--model", str(missing), "--output", str(output)]) == 2
        out, err = capsys.readouterr()
        assert out == "1/5 base model\n"
        assert f"model {str(missing)!r} could not be loaded: no such folder" in err
        assert output.is_dir() is kept  # a folder the user made is theirs
    assert (tmp_path / "new").is_dir()  # the parent it made is left: only the demo's own goes


@pytest.mark.parametrize("absent", ["torch", "transformers"])
def test_a_local_model_asked_without_the_hf_extra_names_it(
    absent: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without torch, ``finetune ask hf:...`` (and ``ft.evaluate``) ended in a traceback."""
    _skip_unless_the_rest_is_installed(["torch", "transformers"], absent)
    monkeypatch.setitem(sys.modules, absent, None)
    (tmp_path / "never-loaded").mkdir()  # a folder that is there: the model is never read
    assert main(["ask", f"hf:{tmp_path / 'never-loaded'}", "hi"]) == 2
    assert capsys.readouterr().err == (
        f"error: {absent} is not installed for local models. "
        'Install it with: pip install "finetune[hf]"\n'
    )


def test_export_of_a_hosted_job_says_its_model_stays_with_the_provider(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """It said there was no local job of that id under the hf jobs folder."""
    rows = [{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}]
    job = ft.Tuner("fake", model="b").fit(ft.Dataset.from_records(rows * 10))
    assert main(["export", job.id]) == 2
    err = capsys.readouterr().err
    assert f"job {job.id!r} is on fake, whose model stays with that provider" in err


def test_a_folder_that_is_not_there_is_named_as_a_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``finetune export ./merged-model`` (a typo, or a folder not made yet) and a job folder
    that is gone were "no local job './merged-model' under ~/.local/share/finetune/hf-jobs;
    for a job created under another folder, give the job's folder as its id": it was given."""
    model, job = tmp_path / "merged-model", tmp_path / "jobs" / "hfjob-20261205-000000-0000"
    assert main(["export", str(model)]) == 2
    assert capsys.readouterr().err == (
        f"error: {model}: no such folder; export takes a model folder or a local job "
        "(hfjob-..., or its folder)\n"
    )
    for command in (["export", str(job)], ["status", str(job)]):
        assert main(command) == 2
        said = capsys.readouterr().err
        gone = f"no local job folder {job} (a job's folder holds its config.json)"
        assert said == f"error: [hf] {gone}\n"


def test_a_model_folder_given_as_a_job_is_named_as_not_a_job(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A model's folder holds a ``config.json`` too: ``finetune status ./SmolLM2`` (or
    ``delete``, ``metrics``, ``Tuner("hf").job(...)``) ended in ``KeyError: 'base_model'``."""
    model = tmp_path / "SmolLM2"
    model.mkdir()
    (model / "config.json").write_text('{"model_type": "llama"}', encoding="utf-8")
    (model / "model.safetensors").write_bytes(b"weights")
    said = (
        f"{model} is not a local job's folder: its config.json is not one a fit wrote (a "
        f"model's folder has one too: ask that model with finetune ask hf:{model}, evaluate "
        f'it as ModelRef(backend="hf", name={str(model)!r}), or export it with finetune '
        f"export {model})"
    )
    for command in ("status", "metrics", "events", "delete"):
        assert main([command, str(model), "--backend", "hf"]) == 2
        assert capsys.readouterr().err == f"error: [hf] {said}\n"
    with pytest.raises(ft.JobNotFound) as raised:
        ft.Tuner("hf", jobs_dir=tmp_path / "jobs").job(str(model))
    assert str(raised.value) == f"[hf] {said}"
    assert sorted(path.name for path in model.iterdir()) == ["config.json", "model.safetensors"]


def test_a_report_quoting_what_the_output_cannot_encode_is_printed_all_the_same(
    tmp_path: Path,
) -> None:
    """Sent to a file on Windows (cp1252), or under ``PYTHONIOENCODING=ascii``, a report that
    quoted a row's text was ``error: 'ascii' codec can't encode character`` and exit code 2."""
    data = tmp_path / "u.jsonl"
    row = {
        "messages": [{"role": "usér", "content": "héllo 😀"}, {"role": "assistant", "content": "a"}]
    }
    data.write_text(json.dumps(row, ensure_ascii=False) + "\n", encoding="utf-8")
    command = [
        sys.executable,
        "-m",
        "finetune.cli",
        "validate",
        str(data),
        "--backend",
        "fake",
        "--model",
        "m",
    ]
    env = {**os.environ, "PYTHONIOENCODING": "ascii"}
    text = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    assert text.returncode == 1, text.stderr
    assert "| `unknown_role` | error | 1 | 1 | role 'us\\xe9r' is not one of" in text.stdout
    as_json = subprocess.run([*command, "--json"], capture_output=True, env=env, check=False)
    assert as_json.returncode == 1, as_json.stderr
    report = json.loads(as_json.stdout)  # JSON's own escapes, never Python's \xe9
    (finding,) = report["codes"]["unknown_role"]["findings"]
    assert finding["message"].startswith("role 'usér' is not one of")


def test_the_cache_command_shows_prunes_and_clears_the_prediction_cache(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from finetune.evaluation import CallablePredictor

    monkeypatch.setenv("FINETUNE_CACHE_DIR", str(tmp_path / "cache"))
    assert main(["cache"]) == 0
    assert "no prediction cache at" in capsys.readouterr().out
    assert not (tmp_path / "cache").exists()  # looking made nothing
    echo = CallablePredictor(lambda messages: "yes", name="echo")  # named: cached
    ft.evaluate(
        ft.Dataset.from_records([chat(i) for i in range(3)]), {"echo": echo}, ["exact_match"]
    )
    assert main(["cache"]) == 0
    assert "predictions.sqlite3: 3 predictions, " in capsys.readouterr().out
    assert main(["cache", "--prune-days", "30"]) == 0
    out = capsys.readouterr().out
    assert "removed 0 predictions stored more than 30 days ago" in out and ": 3 predictions" in out
    assert main(["cache", "--clear"]) == 0
    out = capsys.readouterr().out
    assert "removed 3 predictions\n" in out and ": 0 predictions, " in out
    assert main(["cache", "--path", str(tmp_path / "elsewhere.sqlite3")]) == 0
    assert "no prediction cache at" in capsys.readouterr().out
    assert main(["cache", "--path", str(tmp_path)]) == 2  # not "no prediction cache ... yet"
    assert f"the prediction cache {tmp_path} is a folder: give" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["validate", "d.jsonl", "together"],
        ["train", "d.jsonl", "together", "--model", "m"],
        ["estimate", "d.jsonl", "together", "--backend", "fake", "--model", "m"],
    ],
)
def test_a_backend_given_as_a_data_file_is_told_its_flag(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: Any
) -> None:
    """``finetune train data.jsonl together`` said "train needs 'backend'", and with
    ``--backend`` given, that no file ``together`` exists."""
    monkeypatch.chdir(tmp_path)
    write_jsonl(tmp_path / "d.jsonl", [chat("q", "a")] * 10)
    assert main(argv) == 2
    assert capsys.readouterr().err == (
        "error: 'together' is a backend, not a data file here: give it as --backend together\n"
    )
    (tmp_path / "together").write_text((tmp_path / "d.jsonl").read_text())  # a file of its name
    assert "is a backend" not in (main(argv), capsys.readouterr().err)[1]
