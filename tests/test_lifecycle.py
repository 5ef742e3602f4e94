"""Providers that stopped or are stopping fine-tuning say so before anything is uploaded."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import pytest

import finetune as ft
from finetune import lifecycle
from finetune.backends.openai._backend import PROBE_FILE

from .conftest import chat, needs_tiktoken, write_jsonl
from .fakes.mistral_fake import MistralFake
from .fakes.openai_fake import OpenAIFake

pytestmark = needs_tiktoken


def dataset(n: int = 12) -> ft.Dataset:
    return ft.Dataset.from_records([chat(i) for i in range(n)])


def uploads(server: Any) -> list[Any]:
    return [r for r in server.requests if r.method == "POST" and r.path == "/v1/files"]


def test_mistral_410_is_provider_unavailable_with_nothing_uploaded() -> None:
    with MistralFake(retired=True) as server:
        tuner = ft.Tuner(
            "mistral", model="open-mistral-nemo", api_key=server.api_key, server_url=server.url
        )
        with pytest.raises(ft.ProviderUnavailable) as caught:
            tuner.fit(dataset())
        assert not uploads(server) and not server.files
    error = caught.value
    assert error.status_code == 410 and "retired" in str(error)
    assert any("mistralai/Mistral-Nemo-Instruct-2407" in a for a in error.alternatives)
    assert any('Tuner("together"' in a for a in error.alternatives)
    assert 'Tuner("hf", model="mistralai/Mistral-Nemo-Instruct-2407")' in str(error)


def test_mistral_unreachable_is_refused_before_any_upload_as_retired() -> None:
    nowhere = {"api_key": "k", "server_url": "http://127.0.0.1:9", "attempts": 2}
    tuner = ft.Tuner("mistral", model="open-mistral-nemo", first_wait=0.01, **nowhere)
    with pytest.raises(ft.ProviderUnavailable, match="could not be reached to check it live"):
        tuner.fit(dataset())


def test_estimates_say_when_a_provider_is_closing_or_retired(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with MistralFake() as server:
        options = {"api_key": server.api_key, "server_url": server.url}
        estimate = ft.Tuner("mistral", model="open-mistral-nemo", **options).estimate(dataset())
        assert not server.requests  # the table says retired: no upload, no dry run
    retired, skipped = estimate.notes[-2:]
    assert "410 Gone" in retired and "a fit is refused" in retired
    assert 'Tuner("hf", model="mistralai/Mistral-Nemo-Instruct-2407")' in retired
    assert "dry run was skipped" in skipped and estimate.tokens_total > 0
    openai = ft.Tuner("openai", model="gpt-4.1-mini-2025-04-14", api_key="sk-test")
    assert "2027-01-06" in openai.estimate(dataset()).notes[-1]
    assert "plan the move" in openai.estimate(dataset()).notes[-1]
    # the days it has left, as of the tests' today (2026-12-01): how soon to move
    assert openai.estimate(dataset()).notes[-1].startswith("36 days left: OpenAI stops")
    assert lifecycle.closing_text("openai", date(2027, 1, 5)).startswith("1 day left: ")
    monkeypatch.setattr(lifecycle, "today", lambda: date(2027, 1, 6))
    assert "a fit is refused" in openai.estimate(dataset()).notes[-1]
    assert lifecycle.estimate_note("together") is None and lifecycle.estimate_note("hf") is None
    assert lifecycle.estimate_note("fake") is None
    fake_notes = ft.Tuner("fake", model="m").estimate(dataset()).notes
    assert not any(said in note for note in fake_notes for said in ("refused", "plan the move"))


def test_a_mistral_fit_without_a_key_is_told_of_the_retirement_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("MISTRAL_API_KEY", raising=False)
    with MistralFake() as server:
        tuner = ft.Tuner("mistral", model="open-mistral-7b", server_url=server.url)
        with pytest.raises(ft.ProviderUnavailable, match="could not be checked live") as caught:
            tuner.fit(dataset())
        assert any("Mistral-7B-Instruct-v0.3" in a for a in caught.value.alternatives)
        anyway = ft.Tuner(
            "mistral", model="open-mistral-7b", server_url=server.url, allow_closed_provider=True
        )
        with pytest.raises(ft.AuthenticationError, match="MISTRAL_API_KEY"):
            anyway.fit(dataset())
        assert not server.requests


def test_existing_mistral_jobs_and_models_still_work() -> None:
    with MistralFake() as server:
        options = {"api_key": server.api_key, "server_url": server.url}
        tuner = ft.Tuner("mistral", model="open-mistral-nemo", **options)
        job = tuner.fit(dataset())
        model = job.wait(poll_interval=0.02, timeout=10).fine_tuned_model or ""
        server.retired = True  # the job API closes; what exists stays readable
        again = ft.Tuner("mistral", **options).job(job.id)
        assert again.status is ft.JobStatus.SUCCEEDED and again.metrics()
        assert tuner.run(tuner.backend.archive_model(model)) is True


def test_openai_refusing_the_organisation_is_provider_unavailable() -> None:
    with OpenAIFake() as server:
        server.refuse_fine_tuning = True
        tuner = ft.Tuner(
            "openai",
            model="gpt-4o-mini-2024-07-18",
            api_key=server.api_key,
            base_url=server.base_url,
        )
        with pytest.raises(ft.ProviderUnavailable) as caught:
            tuner.fit(dataset())
        assert not uploads(server) and not server.files and not server.jobs
        (probe,) = [r for r in server.requests if r.path == "/v1/fine_tuning/jobs"]
        assert probe.body["training_file"] == PROBE_FILE
    error = caught.value
    assert "not available for your organization" in str(error)  # OpenAI's own words
    assert error.status_code == 403 and error.alternatives


def test_openai_warns_until_its_closing_date_then_refuses(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from finetune.backends.openai import _backend

    monkeypatch.setattr(_backend, "_warned", set())
    with OpenAIFake() as server, caplog.at_level(logging.WARNING, logger="finetune"):
        options = {"api_key": server.api_key, "base_url": server.base_url}
        model = "gpt-4.1-mini-2025-04-14"
        ft.Tuner("openai", model=model, **options).fit(dataset())
        ft.Tuner("openai", model=model, **options).fit(dataset(13))
        warnings = [r.message for r in caplog.records if "2027-01-06" in r.message]
        assert len(warnings) == 1  # one line, once per process
        monkeypatch.setattr(lifecycle, "today", lambda: date(2027, 1, 6))
        with pytest.raises(ft.ProviderUnavailable, match="allow_closed_provider"):
            ft.Tuner("openai", model=model, **options).fit(dataset(14))
        assert len(uploads(server)) == 2
        late = ft.Tuner("openai", model=model, allow_closed_provider=True, **options)
        assert late.fit(dataset(14)).id  # the user knows better: it is tried


def test_the_command_tries_a_closed_provider_when_told_to(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Past OpenAI's date `finetune train` said to pass allow_closed_provider=True, which no
    command took: a user whose organisation OpenAI still served (dates move) could not train
    from the command line at all."""
    from finetune.cli import main

    data = write_jsonl(tmp_path / "train.jsonl", [chat(i) for i in range(12)])
    monkeypatch.setattr(lifecycle, "today", lambda: date(2027, 1, 6))
    with OpenAIFake() as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", server.api_key)
        train = ["train", str(data), "--backend", "openai", "--model", "gpt-4.1-mini-2025-04-14"]
        assert main(train) == 2
        said = capsys.readouterr().err
        assert "(finetune train --allow-closed-provider) if OpenAI still accepts" in said
        assert not uploads(server)
        assert main([*train, "--allow-closed-provider"]) == 0
        assert capsys.readouterr().out.startswith("ftjob-") and len(uploads(server)) == 1
    config = tmp_path / "train.toml"
    config.write_text(
        f'backend = "together"\nmodel = "m"\nfile = "{data}"\nallow_closed_provider = true\n'
    )
    assert main(["train", "--config", str(config)]) == 2
    assert capsys.readouterr().err.startswith(
        f"error: {config}: allow_closed_provider is for a provider with a closing date (openai "
        "(retired), mistral (retired)); the together backend takes no such setting"
    )
    config.write_text(config.read_text().replace("true", '"yes"'))
    assert main(["train", "--config", str(config)]) == 2
    assert "allow_closed_provider is true or false, not 'yes'" in capsys.readouterr().err


def test_backends_command_shows_each_providers_status() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "finetune.cli", "backends"],
        capture_output=True,
        text=True,
        env=os.environ,
        check=True,
    )
    rows = {line.split()[0]: line for line in done.stdout.splitlines() if line.strip()}
    assert "closing 2027-01-06" in rows["openai"]
    assert "retired" in rows["mistral"]
    assert rows["together"].split()[1] == "open" and rows["fireworks"].split()[1] == "open"
    assert rows["hf"].split()[1] == "local"


def test_the_lifecycle_table_after_openais_date() -> None:
    assert lifecycle.status_text("openai", date(2026, 11, 30)) == "closing 2027-01-06"
    assert lifecycle.status_text("openai", date(2027, 1, 6)) == "retired"
    assert lifecycle.status_text("together") == "open"
    assert lifecycle.status_text("hf") == "-"


def test_the_day_a_provider_closes_is_utcs_wherever_its_user_is() -> None:
    """A user far east of UTC was refused up to 14 hours before the closing day came in UTC;
    one far west could start jobs for 12 hours after it. The zone is chosen, by the hour,
    so that its date is not UTC's (POSIX ``ABC12`` is UTC-12, ``ABC-14`` UTC+14)."""
    zone = "ABC12" if datetime.now(timezone.utc).hour < 12 else "ABC-14"
    env = {k: v for k, v in os.environ.items() if k != "FINETUNE_TESTS_TODAY"} | {"TZ": zone}
    code = (
        "import datetime; from finetune import lifecycle; print(lifecycle.today(), "
        "datetime.date.today(), datetime.datetime.now(datetime.timezone.utc).date())"
    )
    said = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    ours, local, utc = said.stdout.split()
    assert local != utc and ours == utc


def test_the_command_says_the_alternatives_as_its_own_flags(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`finetune estimate` and `finetune train` told a command-line user to move to
    ``the same Dataset on Tuner("hf", model=...)``, which no command takes."""
    import io

    from finetune._cli_log import _CommandLineFormatter
    from finetune.backends.openai import _backend
    from finetune.cli import main

    data = write_jsonl(tmp_path / "train.jsonl", [chat(i) for i in range(12)])
    assert (
        main(["estimate", str(data), "--backend", "mistral", "--model", "open-mistral-nemo"]) == 0
    )
    said = capsys.readouterr().out
    assert (
        "instead: the same data with --backend hf --model mistralai/Mistral-Nemo-Instruct-2407 ("
        in said
    )
    assert "--backend together --model ... or --backend fireworks --model ..., which still" in said
    assert "Tuner(" not in said and "Dataset" not in said
    printed = io.StringIO()
    handler = logging.StreamHandler(printed)
    handler.setFormatter(_CommandLineFormatter())
    monkeypatch.setattr(_backend, "_warned", set())
    logging.getLogger("finetune").addHandler(handler)
    try:
        _backend._warn_closing_once()  # the warning `finetune train --backend openai` prints
    finally:
        logging.getLogger("finetune").removeHandler(handler)
    assert printed.getvalue().startswith("warning: 36 days left: OpenAI stops creating")
    assert "plan the move: the same data with --backend hf --model <an open-weights model> " in (
        printed.getvalue()
    )
