"""The same user script runs unchanged on every backend (name and model aside), against the
loopback fakes over real HTTP for the hosted ones and the tiny model for the local one."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import re
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import unquote

import pytest

import finetune as ft

from .conftest import chat, mistralai_case, needs_tiktoken, write_jsonl
from .fakes._server import Faults
from .fakes.fireworks_fake import ACCOUNT, FireworksFake
from .fakes.mistral_fake import MistralFake
from .fakes.openai_fake import OpenAIFake
from .fakes.together_fake import TogetherFake

SCRIPT = Path(__file__).resolve().parents[1] / "examples" / "any_backend.py"
pytestmark = needs_tiktoken


def run_python(*arguments: str, env: dict[str, str] | None = None) -> str:
    """What a fresh interpreter printed, run with ``arguments`` and the variables ``env``."""
    done = subprocess.run(
        [sys.executable, *arguments],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


MISTRAL = mistralai_case("mistral")  # scripts/lowest.sh runs it in its Mistral round


def run_script(backend: str, model: str, data: Path, env: dict[str, str]) -> str:
    return run_python(str(SCRIPT), backend, model, str(data), env=env)


@pytest.mark.parametrize("backend", ["openai", "together", "fireworks", MISTRAL, "fake", "hf"])
def test_the_same_script_runs_on_every_backend(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    data = write_jsonl(tmp_path / "tickets.jsonl", [chat(i) for i in range(30)])
    if backend == "fake":
        output = run_script("fake", "any-model", data, {})
    elif backend == "hf":
        tiny = request.getfixturevalue("tiny_base")
        env = {"FINETUNE_HF_JOBS_DIR": str(tmp_path / "jobs")}
        output = run_script("hf", tiny, data, env)
    elif backend == "openai":
        with OpenAIFake() as server:
            env = {"OPENAI_API_KEY": server.api_key, "OPENAI_BASE_URL": server.base_url}
            output = run_script("openai", "gpt-4.1-mini-2025-04-14", data, env)
    elif backend == "together":
        with TogetherFake() as server:
            env = {"TOGETHER_API_KEY": server.api_key, "TOGETHER_BASE_URL": server.url}
            output = run_script("together", "Qwen/Qwen3-8B", data, env)
    elif backend == "fireworks":
        with FireworksFake() as server:
            env = {
                "FIREWORKS_API_KEY": server.api_key,
                "FIREWORKS_BASE_URL": server.url,
                "FIREWORKS_ACCOUNT_ID": ACCOUNT,
            }
            output = run_script("fireworks", "accounts/fireworks/models/qwen3-8b", data, env)
    else:  # Mistral as it answered before its job API was retired
        with MistralFake() as server:
            env = {"MISTRAL_API_KEY": server.api_key, "MISTRAL_SERVER_URL": server.url}
            output = run_script("mistral", "open-mistral-nemo", data, env)
    lines = dict(line.split(" ", 1) for line in output.strip().splitlines())
    assert lines["status"] == "succeeded"
    assert lines["model"].startswith(f"{backend}:")
    assert int(lines["metrics"].split()[0]) > 0


_HOSTED: dict[str, tuple[type[Any], str, Callable[[Any], dict[str, str]]]] = {
    "openai": (OpenAIFake, "gpt-4.1-mini-2025-04-14", lambda s: {"base_url": s.base_url}),
    "together": (TogetherFake, "Qwen/Qwen3-8B", lambda s: {"base_url": s.url}),
    "fireworks": (
        FireworksFake,
        "accounts/fireworks/models/qwen3-8b",
        lambda s: {"base_url": s.url, "account_id": ACCOUNT},
    ),
    "mistral": (MistralFake, "open-mistral-nemo", lambda s: {"server_url": s.url}),
}


@contextmanager
def _hosted(backend: str) -> Iterator[tuple[Any, ft.Tuner]]:
    """A hosted backend's fake and a Tuner on it."""
    fake, model, where = _HOSTED[backend]
    with fake() as server:
        settings = {"api_key": server.api_key, **where(server)}
        yield server, ft.Tuner(backend, model=model, registry=False, **settings)


@pytest.mark.parametrize("backend", ["openai", "together", "fireworks", MISTRAL])
def test_a_job_id_typed_by_a_user_reaches_no_other_resource(backend: str) -> None:
    """``finetune status ../files/file-1`` read the file on Together; an id with ``?`` added
    a query: every id now travels as one percent-encoded segment of the job's path."""
    with _hosted(backend) as (server, tuner):
        for crafted in ("../files/file-1", "ftjob-1?limit=1", "ftjob-1#x", "ftjob 1"):
            server.requests.clear()
            with pytest.raises(ft.JobNotFound):
                tuner.job(crafted)
            assert server.requests
            for request in server.requests:
                assert unquote(request.path.rsplit("/", 1)[-1]) == crafted, request.path
                assert not request.query
        server.requests.clear()
        for nothing in ("", "  ", ".", ".."):
            with pytest.raises(ValueError, match="a job id is text"):
                tuner.job(nothing)
        with pytest.raises(TypeError, match="a job id is text"):
            tuner.job(None)  # type: ignore[arg-type]
        assert server.requests == []


@pytest.mark.parametrize("backend", ["openai", "together", "fireworks", MISTRAL])
def test_an_estimate_gives_no_figures_for_a_job_fit_would_refuse(backend: str) -> None:
    """An estimate of a job with options its backend does not take (a hyperparameter given as
    an option) gave figures, and ``finetune estimate`` passed a config ``train`` refused."""
    data = ft.Dataset.from_records([chat(i) for i in range(12)])
    with _hosted(backend) as (server, tuner):
        with pytest.raises(ft.UnsupportedFeature, match=r"'n_epochs' is ft\.Hyperparameters"):
            tuner.estimate(data, options={"n_epochs": 2})
        with pytest.raises(ft.UnsupportedFeature, match=r"'n_epochs' is ft\.Hyperparameters"):
            tuner.estimate_locally(data, options={"n_epochs": 2})
        with pytest.raises(ft.UnsupportedFeature, match=r"'n_epochs' is ft\.Hyperparameters"):
            tuner.fit(data, options={"n_epochs": 2})
        if "preference" not in tuner.capabilities.example_kinds:  # Mistral trains SFT alone
            pairs = [{"prompt": f"q{i}", "chosen": "a", "rejected": "b"} for i in range(12)]
            with pytest.raises(ft.UnsupportedFeature, match=r"does not train with method='dpo'"):
                tuner.estimate(ft.Dataset.from_records(pairs))
        assert not server.requests  # refused before anything was asked or uploaded


@pytest.mark.parametrize("backend", ["openai", "together", "fireworks", MISTRAL])
def test_a_server_that_cannot_be_reached_is_named(backend: str) -> None:
    """A typo in a ``*_BASE_URL`` (or a gateway that is down) was ``connection problem:
    Connection error.`` after every retry, naming no server."""
    _, model, where = _HOSTED[backend]
    with socket.socket() as closed:  # a port of this machine that nothing listens on
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}"
    settings = {"api_key": "k" * 40, **where(SimpleNamespace(url=url, base_url=url))}
    tuner = ft.Tuner(backend, model=model, registry=False, attempts=1, **settings)
    with pytest.raises(ft.ServerError, match=f"connection problem at {re.escape(url)}") as caught:
        tuner.remote_jobs()
    # the socket's words, which SDKs hid (Fireworks' behind "Request timed out."), and what
    # a refused connection means
    said = str(caught.value)
    assert re.search(r"\(\[Errno \d+\] .+\); nothing listens there: is the server", said), said


@pytest.mark.parametrize("backend", ["openai", "together", "fireworks", MISTRAL])
def test_an_async_tuner_serves_one_asyncio_run_after_another(
    backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A script (or a test) that runs each step in its own ``asyncio.run`` could not close
    its AsyncTuner ("RuntimeError: Event loop is closed": the client's connections were the
    first loop's), and a dropped client logged that error from the SDK's own clean-up."""
    fake, model, where = _HOSTED[backend]
    rows = [chat(i) for i in range(12)]
    closed_provider = {"allow_closed_provider": True} if backend == "mistral" else {}
    with fake() as server:
        settings = {"api_key": server.api_key, **where(server), **closed_provider}
        tuner = ft.AsyncTuner(backend, model=model, registry=False, **settings)
        job = asyncio.run(tuner.fit(ft.Dataset.from_records(rows)))
        seen = [asyncio.run(job.refresh()).id for _ in range(2)]
        asyncio.run(tuner.aclose())
        gc.collect()  # a client let go of is closed, not left to close itself as it is freed
    assert seen == [job.id, job.id]
    assert [r.getMessage() for r in caplog.records if r.levelname == "ERROR"] == []


def _data_uploads(server: Any) -> list[str]:
    """The requests that send a data file: a file's create, or a Fireworks dataset's upload."""
    sends = [r.path for r in server.requests if r.method == "POST"]
    return [path for path in sends if path.endswith(("/v1/files", ":upload"))]


@pytest.mark.parametrize("backend", ["openai", "together", "fireworks", MISTRAL])
def test_fits_running_at_once_on_the_same_data_upload_it_once(backend: str) -> None:
    """A sweep (the same data, a fit per setting, run from threads) uploaded the data once a
    fit: each looked for the file before any had sent it. The fits share one Tuner's loop,
    and one runs on a second Tuner (a loop of its own)."""
    data = ft.Dataset.from_records([chat(i) for i in range(12)])
    fake, model, where = _HOSTED[backend]
    with fake() as server:
        settings = {"api_key": server.api_key, **where(server)}
        tuners = [ft.Tuner(backend, model=model, registry=False, **settings) for _ in range(2)]
        with ThreadPoolExecutor(4) as pool:
            fits = [pool.submit(tuners[i // 3].fit, data, suffix=f"sweep{i}") for i in range(4)]
            jobs = {fit.result().id for fit in fits}
        for tuner in tuners:
            tuner.close()
        assert len(jobs) == 4
        assert len(_data_uploads(server)) == 1, _data_uploads(server)


def test_fits_in_processes_at_once_on_the_same_data_upload_it_once(tmp_path: Path) -> None:
    """A sweep run as commands at once (``finetune train data.jsonl --suffix lr1 &`` ...)
    uploaded the data once a process while the first upload was still on its way."""
    data = write_jsonl(tmp_path / "tickets.jsonl", [chat(i) for i in range(12)])
    slow_files = Faults(rate=1.0, kinds=("slow",), only="/v1/files", slow_seconds=1.5)
    with OpenAIFake(faults=slow_files) as server:
        env = {
            **os.environ,
            "OPENAI_API_KEY": server.api_key,
            "OPENAI_BASE_URL": server.base_url,
            "FINETUNE_CACHE_DIR": str(tmp_path / "cache"),
        }
        model = "gpt-4.1-mini-2025-04-14"
        train = [sys.executable, "-m", "finetune", "train", str(data), "--backend", "openai"]
        sweep = [
            subprocess.Popen(
                [*train, "--model", model, "--suffix", f"sweep{i}"],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for i in range(3)
        ]
        said = [fit.communicate(timeout=120) for fit in sweep]
        assert [fit.returncode for fit in sweep] == [0, 0, 0], said
        assert len(server.jobs) == 3
        assert len(_data_uploads(server)) == 1, _data_uploads(server)


# Run in a fresh interpreter: records, for each import of the SDK's top module, whether it was
# made in the thread that runs the event loop, while the loop's first call reaches the server.
_FIRST_CALL = """
import asyncio, importlib.abc, json, sys, threading

import finetune as ft

sdk, face, backend, model = sys.argv[1:5]
settings = json.loads(sys.argv[5])
on_the_loop = []


class Watch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == sdk:
            on_the_loop.append(threading.current_thread() is threading.main_thread())


async def first_call():
    turns = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    data = ft.Dataset.from_records([{"messages": turns}] * 3)
    async with ft.AsyncTuner(backend, model=model, registry=False, **settings) as tuner:
        if face == "predictor":
            base = {"base": tuner.base_model}
            await ft.evaluation.aevaluate(data, base, ["exact_match"], cache=False)
        elif face == "job":
            try:
                await tuner.job("ftjob-nobody-started")
            except ft.JobNotFound:
                pass
        else:
            await tuner.backend.upload(data)


sys.meta_path.insert(0, Watch())
asyncio.run(first_call())
print(json.dumps(on_the_loop))
"""


@pytest.mark.parametrize(
    ("backend", "face"),
    [
        *[(backend, "backend") for backend in ("openai", "together", "fireworks")],
        mistralai_case("mistral", "backend"),
        ("openai", "predictor"),  # Together and Fireworks are asked through the openai SDK
        mistralai_case("mistral", "predictor"),
        mistralai_case("mistral", "job"),  # Mistral's job calls go through httpx
    ],
)
def test_the_first_call_of_a_process_imports_its_sdk_off_the_event_loop(
    backend: str, face: str
) -> None:
    """The first request of an ``AsyncTuner`` (or of an async predictor) imported the SDK on
    the caller's event loop, holding up its other tasks for some 0.2 to 0.6 s."""
    fake, model, where = _HOSTED[backend]
    sdk = "httpx" if face == "job" else "mistralai" if backend == "mistral" else backend
    with fake() as server:
        settings = {"api_key": server.api_key, **where(server)}
        printed = run_python("-c", _FIRST_CALL, sdk, face, backend, model, json.dumps(settings))
        assert server.requests
    assert json.loads(printed) == [False]


def test_tasks_asking_at_once_for_a_client_not_yet_made_share_one() -> None:
    """Clients made in worker threads for tasks asking at once: one is kept for all, each
    other is closed at once, not left open."""
    import time

    from finetune.backends._clients import OwnedClient

    made: list[object] = []
    closed: list[object] = []

    def make() -> object:
        time.sleep(0.05)  # long enough for every task to be waiting for its own
        made.append(client := object())
        return client

    async def close(client: object) -> None:
        closed.append(client)

    async def ask_at_once() -> list[object]:
        owned = OwnedClient(make, close=close)
        return list(await asyncio.gather(*(owned.aget() for _ in range(4))))

    given = asyncio.run(ask_at_once())
    assert len(set(map(id, given))) == 1
    assert len(made) >= 2
    assert sorted(map(id, closed)) == sorted(id(c) for c in made if c is not given[0])
