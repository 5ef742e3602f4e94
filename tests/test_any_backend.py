"""The same user script runs unchanged on "openai", "mistral" and "fake" (name and model aside),
against the loopback fakes over real HTTP for the hosted two."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import chat, needs_tiktoken, write_jsonl
from .fakes.mistral_fake import MistralFake
from .fakes.openai_fake import OpenAIFake

SCRIPT = Path(__file__).resolve().parents[1] / "examples" / "any_backend.py"
pytestmark = needs_tiktoken


def run_script(backend: str, model: str, data: Path, env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), backend, model, str(data)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.mark.parametrize("backend", ["openai", "mistral", "fake"])
def test_the_same_script_runs_on_every_backend(backend: str, tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "tickets.jsonl", [chat(i) for i in range(30)])
    if backend == "fake":
        output = run_script("fake", "any-model", data, {})
    elif backend == "openai":
        with OpenAIFake() as server:
            env = {"OPENAI_API_KEY": server.api_key, "OPENAI_BASE_URL": server.base_url}
            output = run_script("openai", "gpt-4.1-mini-2025-04-14", data, env)
    else:
        with MistralFake() as server:
            env = {"MISTRAL_API_KEY": server.api_key, "MISTRAL_SERVER_URL": server.url}
            output = run_script("mistral", "open-mistral-nemo", data, env)
    lines = dict(line.split(" ", 1) for line in output.strip().splitlines())
    assert lines["status"] == "succeeded"
    assert lines["model"].startswith(f"{backend}:")
    assert int(lines["metrics"].split()[0]) > 0
