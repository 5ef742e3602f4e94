from __future__ import annotations

import json
from pathlib import Path

import pytest

from finetune.cli import main

from .conftest import chat, needs_tiktoken, write_jsonl

MODEL = "gpt-4.1-mini-2025-04-14"


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
def test_estimate(chat_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["estimate", str(chat_file), "--backend", "fake", "--model", MODEL]) == 0
    assert "billed tokens" in capsys.readouterr().out


def test_errors_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "missing.jsonl", "--backend", "fake", "--model", MODEL]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: missing.jsonl: no such file") and "Traceback" not in err


def test_backends_lists_fake(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["backends"]) == 0
    assert "fake" in capsys.readouterr().out


def test_unknown_backend(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "j1", "--backend", "nope"]) == 2
    assert "Installed backends" in capsys.readouterr().err
