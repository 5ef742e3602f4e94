"""The front door: offline first steps, exactly one job per fit under any fault, and only
finetune's own errors, reproduced as a new user and as an adversary would meet them."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

import finetune as ft
from finetune.backends.mistral import MistralBackend
from finetune.backends.openai import OpenAIBackend
from finetune.backends.openai._backend import PROBE_FILE

from .conftest import chat, interruptible, needs_tiktoken, write_jsonl
from .fakes._server import Faults, Raw
from .fakes.mistral_fake import MistralFake
from .fakes.openai_fake import OpenAIFake, Phases

pytestmark = needs_tiktoken
MODEL = "gpt-4o-mini-2024-07-18"
ROOT = Path(__file__).resolve().parents[1]


def data(tag: str = "", n: int = 12) -> ft.Dataset:
    return ft.Dataset.from_records([chat(i, system=f"Agent {tag}".strip()) for i in range(n)])


def openai_tuner(server: OpenAIFake, **options: Any) -> ft.Tuner:
    settings = {"api_key": server.api_key, "base_url": server.base_url}
    return ft.Tuner("openai", model=MODEL, file_poll_interval=0.01, **{**settings, **options})


def creates(server: OpenAIFake) -> int:
    """Create requests, the organisation check (naming a file that does not exist) aside."""
    return len(
        [
            r
            for r in server.requests
            if (r.method, r.path) == ("POST", "/v1/fine_tuning/jobs")
            and r.body.get("training_file") != PROBE_FILE
        ]
    )


def run_python(code: str, env: dict[str, str] | None = None, timeout: float = 120) -> Any:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


# -- 1. offline first steps --------------------------------------------------------------------


def test_validate_and_estimate_need_no_key_and_import_no_sdk(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "train.jsonl", [chat(i) for i in range(20)])
    env = dict.fromkeys(("OPENAI_API_KEY", "MISTRAL_API_KEY", "TOGETHER_API_KEY"), "")
    done = run_python(
        f"""
        import sys
        import finetune as ft
        data = ft.Dataset.from_jsonl({str(path)!r})
        for name, model in [("openai", {MODEL!r}), ("mistral", "open-mistral-nemo"),
                            ("together", "meta-llama/Meta-Llama-3.1-8B-Instruct-Reference"),
                            ("fireworks", "accounts/fireworks/models/llama-v3p1-8b-instruct")]:
            tuner = ft.Tuner(name, model=model)
            assert tuner.validate(data).ok, name
            assert tuner.estimate(data).tokens_total > 0, name
        # provider SDKs and the training stack (mistral-common, which counts Mistral tokens
        # exactly, brings huggingface_hub and its HTTP client: that is not an SDK call)
        heavy = sorted(m for m in ("openai", "mistralai", "together", "fireworks", "torch",
                                   "transformers") if m in sys.modules)
        print(heavy)
        """,
        env,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_cli_validate_without_a_key(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "train.jsonl", [chat(i) for i in range(20)])
    env = {**os.environ, "OPENAI_API_KEY": ""}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "finetune.cli",
            "validate",
            str(path),
            "--backend",
            "openai",
            "--model",
            MODEL,
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "0 errors" in done.stdout or "no errors" in done.stdout.lower()


# -- 2. exactly one job per fit ----------------------------------------------------------------


def test_a_fake_job_of_an_earlier_process_is_neither_a_hint_nor_overwritten(
    tmp_path: Path,
) -> None:
    """A fake job lives in its process, and the next process's ids start again: the second
    run makes its own job, with no stale hint to drop, and both stay on record."""
    registry = str(tmp_path / "shared-registry.sqlite3")
    script = """
        import finetune as ft
        rows = [{"messages": [{"role": "user", "content": f"q{i}"},
                              {"role": "assistant", "content": f"a{i}"}]} for i in range(12)]
        tuner = ft.Tuner("fake", model="m", running=0.05)
        job = tuner.fit(ft.Dataset.from_records(rows))
        print(job.id, job.wait(poll_interval=0.01, timeout=10).status.value)
        """
    first = run_python(script, {"FINETUNE_REGISTRY": registry})
    second = run_python(script, {"FINETUNE_REGISTRY": registry})  # a new process, a new fake
    assert first.returncode == 0 and second.returncode == 0, second.stderr
    assert first.stdout.split() == second.stdout.split() == ["ftjob-fake-0001", "succeeded"]
    assert "stale" not in second.stderr
    assert len(ft.JobRegistry(registry).list()) == 2


def test_a_restarted_server_is_not_trusted_with_old_ids(caplog: pytest.LogCaptureFixture) -> None:
    """The registry's hint names a job the server no longer knows: dropped, never fatal."""
    with OpenAIFake() as server:
        port = server.port
        job = openai_tuner(server).fit(data())
        job.wait(poll_interval=0.02, timeout=10)
    with OpenAIFake(port=port) as fresh, caplog.at_level("WARNING", logger="finetune"):
        again = openai_tuner(fresh).fit(data())
        assert again.wait(poll_interval=0.02, timeout=10).status is ft.JobStatus.SUCCEEDED
        assert fresh.summary()["jobs"] == 1
    assert any("dropping the stale record" in r.getMessage() for r in caplog.records)


def test_a_job_with_a_remembered_id_but_another_key_is_not_reattached() -> None:
    with OpenAIFake() as server:
        port = server.port
        mine = openai_tuner(server).fit(data())
    with OpenAIFake(port=port) as other:
        # someone else's job that happens to get the same id on this server
        other._new_file("theirs.jsonl", b"{}\n", "fine-tune")
        theirs = other._create_job(
            {
                "model": MODEL,
                "training_file": "file-000001abcdef",
                "metadata": {"finetune_key": "x"},
            }
        )
        assert theirs["id"] == mine.id
        again = openai_tuner(other).fit(data())
        assert again.id != theirs["id"]
        assert other.summary()["jobs"] == 2


def test_a_job_another_server_holds_is_not_found_with_where_the_registry_saw_it() -> None:
    with OpenAIFake() as first:
        job = openai_tuner(first).fit(data())
        seen_at = first.base_url
    with OpenAIFake() as second, pytest.raises(ft.JobNotFound) as raised:
        openai_tuner(second).job(job.id)
    said = str(raised.value)
    assert f"this machine's job registry has it from {seen_at}, with the key whose digest is " in (
        said
    )
    assert "sk-" not in said and "re-attach through a Tuner made for that one" in said


def test_two_processes_running_the_same_fit_make_one_job(tmp_path: Path) -> None:
    script = tmp_path / "fit.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import sys
            import finetune as ft
            rows = [{{"messages": [{{"role": "user", "content": f"q{{i}}"}},
                                  {{"role": "assistant", "content": f"a{{i}}"}}]}}
                    for i in range(12)]
            tuner = ft.Tuner("openai", model={MODEL!r}, api_key=sys.argv[1], base_url=sys.argv[2],
                             file_poll_interval=0.01)
            print(tuner.fit(ft.Dataset.from_records(rows)).id)
            """
        )
    )
    with OpenAIFake() as server:
        server.hold[("POST", "/v1/files")] = 1.0
        env = {**os.environ, "FINETUNE_REGISTRY": str(tmp_path / "registry.sqlite3")}
        command = [sys.executable, str(script), server.api_key, server.base_url]
        racers = [
            subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            for _ in range(2)
        ]
        outputs = [r.communicate(timeout=120) for r in racers]
        summary = server.summary()
    assert all(r.returncode == 0 for r in racers), [e.decode() for _, e in outputs]
    ids = {out.decode().strip() for out, _ in outputs}
    assert len(ids) == 1
    assert summary == {"files": 1, "distinct_files": 1, "jobs": 1, "distinct_keys": 1}


def test_an_unclear_create_is_looked_for_before_sending_again() -> None:
    with OpenAIFake() as server:
        server.ambiguous_creates = 1  # the job is made, the answer is a 502
        server.list_lag = 1.5  # and the list shows it only later
        job = openai_tuner(server, create_grace=10).fit(data())
        assert creates(server) == 1 and server.summary()["jobs"] == 1
        assert job.wait(poll_interval=0.02, timeout=10).status is ft.JobStatus.SUCCEEDED


def test_a_create_is_tried_as_many_times_as_the_backend_is_told() -> None:
    with OpenAIFake() as server:
        server.busy_creates = 2
        with pytest.raises(ft.ServerError, match="503"):
            openai_tuner(server, attempts=2, create_grace=0.05).fit(data())
        assert creates(server) == 2 and not server.jobs
        server.busy_creates = 2
        openai_tuner(server, attempts=3, create_grace=0.05).fit(data())
        assert creates(server) == 2 + 3 and len(server.jobs) == 1


def test_a_long_retry_after_is_raised_with_its_wait_not_ignored() -> None:
    faults = Faults(rate=1.0, kinds=("429",), retry_after="3600", only="/fine_tuning/jobs")
    with OpenAIFake(faults) as server:
        started = time.monotonic()
        with pytest.raises(ft.RateLimitError) as caught:
            openai_tuner(server).fit(data())
        took = time.monotonic() - started
    assert caught.value.retry_after == 3600
    assert creates(server) == 0 or creates(server) == 1
    assert took < 60


# -- 3. only our own errors --------------------------------------------------------------------

ODD_JOBS = {
    "truncated JSON": Raw(b'{"id": "ftjob-1", "status": "runn'),
    "no id": {"object": "fine_tuning.job", "status": "running", "model": MODEL},
    "an empty list": [],
    "null": None,
    "an HTML page": Raw(b"<html><body>Bad gateway</body></html>", "text/html"),
}


@pytest.mark.parametrize("shape", list(ODD_JOBS))
async def test_odd_openai_answers_are_server_errors(shape: str) -> None:
    with OpenAIFake() as server:
        server.rewrite = lambda method, path, status, payload: (
            (200, ODD_JOBS[shape]) if path.startswith("/v1/fine_tuning/jobs/") else None
        )
        backend = OpenAIBackend(api_key=server.api_key, base_url=server.base_url, attempts=1)
        with pytest.raises(ft.ServerError) as caught:
            await backend.get_job("ftjob-1")
        await backend.aclose()
    error = caught.value
    assert "[openai]" in str(error) and error.__context__ is None
    assert server.api_key not in str(error) and server.api_key not in str(error.__cause__)


async def test_live_shaped_openai_answers_map_cleanly() -> None:
    def live(method: str, path: str, status: int, payload: Any) -> Any:
        if path == "/v1/fine_tuning/jobs/ftjob-000002abcdef":
            return 200, {**payload, "created_at": "yesterday", "error": "boom", "metadata": ["a"]}
        if path.endswith("/checkpoints"):
            rows = [{"id": "c1", "step_number": "5", "metrics": {"type": "supervised", "x": None}}]
            return 200, {"object": "list", "data": rows, "has_more": False}
        return None

    with OpenAIFake() as server:
        tuner = openai_tuner(server)
        job = tuner.fit(data())
        server.rewrite = live
        seen = job.refresh()
        assert seen.created_at is None and seen.error == ft.JobError(message="boom")
        assert seen.metadata == {} and seen.raw is not None and seen.raw["metadata"] == ["a"]
        (checkpoint,) = job.checkpoints()
        assert checkpoint.step == 5 and checkpoint.metrics == {}


@pytest.mark.parametrize(
    "answer",
    [Raw(b'{"data": [{"id": '), [], {"object": "job.metadata", "cost": 1.0}],
    ids=["truncated", "list", "dry-run shape"],
)
async def test_odd_mistral_answers_are_server_errors(answer: Any) -> None:
    with MistralFake() as server:
        server.rewrite = lambda method, path, status, payload: (
            (200, answer) if path == "/v1/fine_tuning/jobs" else None
        )
        backend = MistralBackend(api_key=server.api_key, server_url=server.url, attempts=1)
        with pytest.raises(ft.ServerError) as caught:
            await backend.list_jobs()
        training = await backend.upload(data())
        request = ft.backends.JobRequest(
            base_model="open-mistral-nemo", training_file=training, idempotency_key="k"
        )
        with pytest.raises(ft.ServerError):
            await backend.create_job(request)
        await backend.aclose()
    assert "[mistral]" in str(caught.value) and caught.value.__context__ is None


def test_a_read_only_jobs_dir_is_a_storage_error() -> None:
    from finetune.backends.hf import HFBackend

    tuner = ft.Tuner(HFBackend(jobs_dir="/proc/finetune-jobs"), model="m", registry=False)
    with pytest.raises(ft.StorageError, match=r"/proc/finetune-jobs"):
        tuner.fit(data(), skip_validation=True)


def test_many_registries_opening_a_new_file_at_once_all_work(tmp_path: Path) -> None:
    """Eight Tuners in eight threads, each with its own handle on one new registry file: the
    switch to WAL mode was refused at once ("database is locked") in about 1 trial in 20."""
    import threading

    for trial in range(40):
        path = tmp_path / f"registry-{trial}.sqlite3"
        start = threading.Barrier(8)
        errors: list[BaseException] = []

        def look(
            path: Path = path,
            start: threading.Barrier = start,
            errors: list[BaseException] = errors,
        ) -> None:
            registry = ft.JobRegistry(path)
            start.wait()
            try:
                assert registry.find_by_key("fake", "key") is None
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=look) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == [], f"trial {trial}: {errors[0]}"


def test_a_corrupt_registry_is_a_registry_error(tmp_path: Path) -> None:
    broken = tmp_path / "registry.sqlite3"
    broken.write_bytes(b"this is not a database" * 100)
    tuner = ft.Tuner("fake", model="m", registry=ft.JobRegistry(broken), running=0.01)
    assert tuner.validate(data()).ok  # validation never touches the registry
    with pytest.raises(ft.RegistryError, match=r"registry\.sqlite3"):
        tuner.fit(data())
    env = {**os.environ, "FINETUNE_REGISTRY": str(broken)}
    done = subprocess.run(
        [sys.executable, "-m", "finetune.cli", "jobs"], env=env, capture_output=True, text=True
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_a_folder_given_as_the_registry_is_named_as_one_before_anything_is_made_beside_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite said "unable to open database file", with advice about disk space, and a fit
    first made a lock folder beside the folder (``registry="."``: a ``ValueError`` of
    pathlib's). A relative one is named by its absolute path: the file it names when given."""
    monkeypatch.chdir(tmp_path)
    says = "the job registry {} is a folder: give the path of a file in it, as {}"
    for given, shown in [("jobs", tmp_path / "jobs"), (".", tmp_path)]:
        (tmp_path / "jobs").mkdir(exist_ok=True)
        tuner = ft.Tuner("fake", model="m", registry=given, running=0.01)
        told = re.escape(says.format(shown, shown / "jobs.sqlite3"))
        with pytest.raises(ft.RegistryError, match=told):
            tuner.fit(data())
        with pytest.raises(ft.RegistryError, match=told):
            tuner.jobs()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["jobs"]
    env = {**os.environ, "FINETUNE_REGISTRY": str(tmp_path / "jobs")}
    done = subprocess.run(
        [sys.executable, "-m", "finetune.cli", "jobs"], env=env, capture_output=True, text=True
    )
    assert done.returncode == 2 and "is a folder: give the path of a file in it" in done.stderr


def test_a_registry_and_a_dataset_named_by_relative_paths_keep_their_files_after_a_cd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A notebook's ``%cd`` after ``Tuner(..., registry="runs/jobs.sqlite3")`` and
    ``Dataset.from_jsonl("train.jsonl")``: the next fit said "the job registry
    runs/jobs.sqlite3 cannot be used (OperationalError: no such table: jobs ...): free disk
    space or fix its permissions", having made ``runs/`` there, and the dataset "No such file
    or directory"."""
    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    (project / "runs").mkdir(parents=True)
    elsewhere.mkdir()
    data("cd").to_jsonl(project / "train.jsonl")
    monkeypatch.chdir(project)
    tuner = ft.Tuner("fake", model="m", registry="runs/jobs.sqlite3", running=0.01)
    train = ft.Dataset.from_jsonl("train.jsonl")
    first = tuner.fit(train).wait()
    monkeypatch.chdir(elsewhere)
    again = tuner.fit(train)
    assert again.reattached and again.id == first.id and len(train) == 12
    assert tuner.registry is not None and tuner.registry.path == project / "runs" / "jobs.sqlite3"
    assert train.path == str(project / "train.jsonl") and train.name == "train.jsonl"
    assert list(elsewhere.iterdir()) == []


def test_a_file_where_the_registry_or_cache_needs_a_folder_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``FINETUNE_CACHE_DIR`` (or a registry's folder) naming a file: "FileExistsError: File
    exists ... free disk space or fix its permissions", and ``finetune cache`` said that
    ``ft.evaluate`` would make the cache there."""
    from finetune.cli import main

    blocking = tmp_path / "settings"
    blocking.write_text("not a folder")
    said = f"{blocking} is a file, not a folder"
    tuner = ft.Tuner("fake", model="m", registry=blocking / "jobs.sqlite3", running=0.01)
    for call in (tuner.jobs, lambda: tuner.fit(data())):
        with pytest.raises(ft.FinetuneError, match=f"{re.escape(said)}: move it away") as caught:
            call()
        assert "free disk space" not in str(caught.value)
    monkeypatch.setenv("FINETUNE_CACHE_DIR", str(blocking))
    base = ft.Tuner("fake", model="m", registry=False).base_model
    with pytest.raises(ft.StorageError, match=re.escape(said)):
        ft.evaluate(data(), {"base": base}, [ft.metrics.exact_match])
    assert main(["cache"]) == 2
    assert said in capsys.readouterr().err
    assert blocking.read_text() == "not a folder"


def test_records_that_are_not_objects_are_named() -> None:
    dataset = ft.Dataset.from_records(["hello", chat(1)])  # type: ignore[list-item]
    report = ft.Tuner("fake", model="m", validation_target="hf").validate(dataset)
    assert report.lines("not_an_object") == [1]
    with pytest.raises(ft.DatasetError, match="records:1"):
        list(dataset)


def test_a_hub_table_with_extra_columns_is_told_to_keep_the_ones_it_trains_on() -> None:
    row = {"prompt": "q", "prompt_id": "abc", **chat(0)}  # ultrachat_200k's columns
    nested = chat(1)
    nested["messages"][1]["score"] = 5
    dataset = ft.Dataset.from_records([row, nested])
    report = ft.Tuner("fake", model="m", validation_target="hf").validate(dataset)
    said = {(f.line, f.field): f.message for f in report.errors if f.code == "unexpected_field"}
    assert said[(1, "prompt_id")].endswith(  # the columns to keep, named: a command to copy
        "(a table's extra columns: keep only those you train on, ds.select_columns(['messages']), "
        "or --columns messages on the command line)"
    )
    assert said[(2, "messages[1].score")].endswith("rename it to a known one")
    for record, message in ((row, said[(1, "prompt")]), (nested, said[(2, "messages[1].score")])):
        with pytest.raises(ft.DatasetError) as parsed:
            list(ft.Dataset.from_records([record]))
        assert str(parsed.value).endswith(message)  # fit says what validate says


def test_a_line_written_by_python_not_as_json_says_the_way_to_jsonl(tmp_path: Path) -> None:
    """NaN, True, a dict's repr, a comma after the object or two objects on a line were
    each "not valid JSON: unexpected character" and a column, with no word of the cause."""
    row = json.dumps(chat(0))
    lines = [
        row[:-1] + ', "score": NaN}',
        row[:-1] + ', "score": -Infinity}',
        row[:-1] + ', "kept": True}',
        str(chat(1)),
        row + ",",
        row + row,
        row[:-1] + ', "x": }',  # no hint when the cause is not one of these
    ]
    path = tmp_path / "python.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = ft.Tuner("fake", model="m").validate(ft.Dataset.from_jsonl(path))
    hints = [f.message.partition("; ")[2] for f in report.errors if f.code == "invalid_json"]
    nan = "NaN and Infinity are not JSON (Python's json.dumps writes them for such floats)"
    assert hints == [
        f"{nan}: write null, or leave the key out",
        f"{nan}: write null, or leave the key out",
        "True, False and None are Python's: JSON spells them true, false and null "
        "(json.dumps writes a dict so)",
        'JSON quotes with " only: this looks like a Python dict printed with print() or '
        "str(); write each row with json.dumps",
        "a comma after the object: a JSONL line holds one object, nothing between lines",
        "a second object on the line: JSONL takes one object per line",
        "",
    ]


def test_a_role_spelt_otherwise_is_told_the_one_meant_and_nothing_more() -> None:
    """``User``/``Assistant`` (or ShareGPT's ``human``/``gpt`` in ``messages``) were two
    unknown roles, and also "no assistant message to learn from"."""
    rows = [
        {"messages": [{"role": "User", "content": "q"}, {"role": "Assistant", "content": "a"}]},
        {"messages": [{"role": "human", "content": "q"}, {"role": "gpt", "content": "a"}]},
        {"messages": [{"role": "wizard", "content": "q"}, {"role": "assistant", "content": "a"}]},
    ]
    report = ft.Tuner("fake", model="m").validate(ft.Dataset.from_records(rows))
    roles = "role {!r} is not one of ['assistant', 'system', 'tool', 'user']{}"
    assert [(f.line, f.message) for f in report.errors if f.line] == [
        (1, roles.format("User", " (did you mean 'user'?)")),
        (1, roles.format("Assistant", " (did you mean 'assistant'?)")),
        (2, roles.format("human", " (did you mean 'user'?)")),
        (2, roles.format("gpt", " (did you mean 'assistant'?)")),
        (3, roles.format("wizard", "")),
    ]


def test_openai_developer_turns_and_sharegpt_keys_in_messages_are_told_the_cure() -> None:
    """OpenAI's ``developer`` turn got no suggestion; a message of ShareGPT's ``from`` and
    ``value`` was "role None is not one of [...]"; and reading either row (``ds[0]``, a
    ``for``) said pydantic's "Input should be 'system', ..." or "Field required", with no
    suggestion at all."""
    developer = {"role": "developer", "content": "Be brief."}
    rows = [
        {
            "messages": [
                developer,
                {"role": "user", "content": "q"},
                {"role": "assistant", "content": "a"},
            ]
        },
        {"messages": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}]},
    ]
    report = ft.Tuner("fake", model="m").validate(ft.Dataset.from_records(rows))
    told = {(f.line, f.field): f.message for f in report.errors if f.line}
    meant_system = " (did you mean 'system'?)"
    assert told[1, "messages[0].role"].endswith(meant_system)
    cohere = [{"role": "User", "content": "q"}, {"role": "Chatbot", "content": "a"}]
    llama = [{"role": "ipython", "content": "{}"}]
    others = ft.Tuner("fake", model="m").validate(
        ft.Dataset.from_records([{"messages": [*cohere, *llama]}])
    )
    assert [f.message.rpartition(" (")[2] for f in others.errors if f.code == "unknown_role"] == [
        "did you mean 'user'?)",
        "did you mean 'assistant'?)",
        "did you mean 'tool'?)",
    ]
    sharegpt = (
        ": 'from' and 'value' are ShareGPT's keys, read in a list named 'conversations' "
        "(ds.select_columns({'messages': 'conversations'}), or --columns "
        "messages=conversations on the command line)"
    )
    assert told[2, "messages[0].role"].endswith(sharegpt)
    with pytest.raises(ft.DatasetError) as developer_read:
        ft.Dataset.from_records(rows[:1])[0]
    assert str(developer_read.value).endswith(meant_system)
    with pytest.raises(ft.DatasetError) as sharegpt_read:
        ft.Dataset.from_records(rows[1:])[0]
    assert str(sharegpt_read.value).endswith(sharegpt)
    renamed = ft.Dataset.from_records(rows[1:]).select_columns({"messages": "conversations"})
    assert [m.role for m in renamed[0].messages] == ["user", "assistant"]
    with pytest.raises(
        ft.DatasetError, match=r"messages\[0\]\.role: .* \(did you mean 'user'\?\)$"
    ):
        ft.Dataset.from_records([{"messages": [{"role": "User", "content": "q"}]}])[0]


def test_a_conversation_or_a_role_column_under_another_name_is_told_its_rename() -> None:
    """lmsys-chat-1m's ``conversation`` (and a ``dialog`` of ShareGPT turns) was told that it
    held "a list of 2 objects, as a JSON file's object holding the examples does", which
    ``from_json`` would read as two examples; a ``bot`` or ``human`` column beside ``user``
    or ``assistant`` was told to keep only the other column, losing the answer."""
    turns = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]
    shared = [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}]
    rows = [
        ({"conversation": turns, "model": "vicuna-13b"}, {"conversation": "messages"}),
        ({"dialog": shared}, {"dialog": "conversations"}),
        ({"user": "q", "bot": "a"}, {"user": "user", "bot": "assistant"}),
        ({"human": "q", "Assistant": "a"}, {"Assistant": "Assistant", "human": "user"}),
    ]
    tuner = ft.Tuner("fake", model="m", registry=False)
    for row, renames in rows:
        report = tuner.validate(ft.Dataset.from_records([row]))
        cure = f"(ds.select_columns({renames!r}), or --columns "
        assert any(cure in f.message for f in report.errors), report.errors
        assert not any("JSON file" in f.message for f in report.errors)
        renamed = ft.Dataset.from_records([row]).select_columns(renames)
        assert [m.role for m in renamed[0].messages] == ["user", "assistant"]


def test_validate_rejects_exactly_what_fit_would() -> None:
    surrogate = chat(0)
    surrogate["messages"][1]["content"] = "broken \ud800 text"
    dumped = chat(1)
    dumped["messages"][2].update({"refusal": None, "audio": None, "annotations": []})
    valued = chat(2)
    valued["messages"][2]["refusal"] = "I cannot help with that."
    tuner = ft.Tuner("fake", model="m", namespace="validate-as-fit", running=0.01)
    rows = [chat(i) for i in range(3, 15)]

    report = tuner.validate(ft.Dataset.from_records([*rows, surrogate, dumped, valued]))
    assert report.lines("invalid_text") == [13]
    assert set(report.lines("unknown_field")) == {14}  # refusal, audio, annotations
    assert report.lines("unexpected_field") == [15]
    with pytest.raises(ft.ValidationFailed):
        tuner.fit(ft.Dataset.from_records([*rows, surrogate]))
    job = tuner.fit(ft.Dataset.from_records([*rows, dumped]))  # the empty keys are dropped
    assert job.wait(poll_interval=0.01, timeout=10).status is ft.JobStatus.SUCCEEDED
    with pytest.raises(ft.ValidationFailed, match="unexpected_field"):
        tuner.fit(ft.Dataset.from_records([*rows, valued]))


def test_a_row_far_over_the_limit_is_refused_without_counting(tmp_path: Path) -> None:
    huge = chat(0)
    huge["messages"][1]["content"] = "x" * 9_000_000  # one run of letters: slow to encode
    path = write_jsonl(tmp_path / "train.jsonl", [chat(i) for i in range(1, 12)] + [huge])
    report = ft.Tuner("openai", model=MODEL).validate(ft.Dataset.from_jsonl(path))
    (finding,) = report.errors
    assert finding.code == "too_many_tokens" and finding.line == 12
    assert "not counted exactly" in finding.message


# -- 4. the command line -----------------------------------------------------------------------


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "finetune.cli", *args],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(("typed", "meant"), [("opnai", "openai"), ("OpenAI", "openai")])
def test_unknown_backend_names_suggest_the_closest(typed: str, meant: str, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "t.jsonl", [chat(i) for i in range(12)])
    done = cli("validate", str(path), "--backend", typed, "--model", MODEL)
    assert done.returncode == 2 and f"Did you mean {meant!r}?" in done.stderr


@pytest.mark.parametrize(
    ("backend", "typed", "meant"),
    [
        ("fireworks", "account", "account_id"),
        ("openai", "api_kye", "api_key"),
        ("fake", "step", "steps"),
    ],
)
async def test_a_mistyped_backend_option_is_named_with_the_closest(
    backend: str, typed: str, meant: str
) -> None:
    with pytest.raises(ft.InvalidRequestError) as raised:
        ft.Tuner(backend, model="m", **{typed: 1})
    said = str(raised.value)
    assert said.startswith(f"[{backend}] no option {typed!r} (did you mean {meant!r}?)")
    assert raised.value.param == typed and isinstance(raised.value.__cause__, TypeError)
    with pytest.raises(ft.InvalidRequestError, match=f"did you mean {meant!r}"):
        ft.AsyncTuner(backend, model="m", **{typed: 1})
    hosted = backend != "fake"
    assert ("api_key" in said and "first_wait" in said) is hosted  # the base class's options


def test_a_type_error_of_a_backends_own_is_not_taken_for_a_mistyped_option() -> None:
    def broken(**options: Any) -> Any:
        raise TypeError("compute() got an unexpected keyword argument 'scale'")

    ft.register_backend("broken-for-test", broken)
    with pytest.raises(TypeError, match="compute"):
        ft.Tuner("broken-for-test", model="m", speed=2)


@pytest.mark.parametrize(
    "args",
    [
        ["estimate", "t.jsonl", "--backend", "openai", "--model", MODEL, "--epochs", "0"],
        ["estimate", "t.jsonl", "--backend", "openai", "--model", MODEL, "--epochs", "-3"],
        ["jobs", "--limit", "-1"],
        ["train", "t.jsonl", "--backend", "fake", "--model", "m", "--batch-size", "0"],
    ],
)
def test_out_of_range_numbers_are_one_line_errors(args: list[str]) -> None:
    done = cli(*args)
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    assert "at least 1" in done.stderr


def test_estimate_prints_json_despite_an_unreadable_row(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "t.jsonl", [chat(i) for i in range(12)] + ["{not json"])
    done = cli("estimate", str(path), "--backend", "openai", "--model", MODEL, "--json")
    assert done.returncode == 0, done.stderr
    estimate = json.loads(done.stdout)
    assert estimate["examples"] == 12
    assert any("could not be read" in note for note in estimate["notes"])


def test_ctrl_c_while_waiting_says_the_job_keeps_running() -> None:
    with OpenAIFake(phases=Phases(0, 0, 60)) as server:
        job = openai_tuner(server).fit(data())
        env = {**os.environ, "OPENAI_API_KEY": server.api_key, "OPENAI_BASE_URL": server.base_url}
        waiting = interruptible("wait", job.id, "--backend", "openai", env=env)
        deadline = time.monotonic() + 60
        while not any(r.path.endswith(job.id) for r in server.requests[-3:]):
            assert time.monotonic() < deadline
            time.sleep(0.1)
        time.sleep(0.5)
        waiting.send_signal(signal.SIGINT)
        _, stderr = waiting.communicate(timeout=30)
    assert waiting.returncode == 130
    assert "keeps running" in stderr and f"finetune cancel {job.id}" in stderr
    assert "Traceback" not in stderr
    assert stderr.count("stopped waiting") == 1, stderr  # the library's line is not repeated
    assert stderr.rstrip().endswith(f"`finetune cancel {job.id} --backend openai`"), stderr


def test_ctrl_c_while_train_starts_a_job_says_what_to_do_and_the_rerun_reattaches(
    tmp_path: Path,
) -> None:
    """Ctrl-C while the provider was creating the job printed "interrupted" alone: was a job
    started, and is it paid for? The same command again finds the job the provider made."""
    path = write_jsonl(tmp_path / "t.jsonl", [chat(i) for i in range(12)])
    args = ["train", str(path), "--backend", "openai", "--model", MODEL]
    with OpenAIFake(phases=Phases(0, 0, 60)) as server:
        env = {**os.environ, "OPENAI_API_KEY": server.api_key, "OPENAI_BASE_URL": server.base_url}
        server.hold[("POST", "/v1/fine_tuning/jobs")] = 8.0  # made, its answer held back
        training = interruptible(*args, env=env)
        deadline = time.monotonic() + 60
        while not server.jobs:
            assert time.monotonic() < deadline and training.poll() is None
            time.sleep(0.1)
        training.send_signal(signal.SIGINT)
        _, stderr = training.communicate(timeout=30)
        server.hold.clear()
        again = cli(*args, env=env)
    assert training.returncode == 130 and "Traceback" not in stderr, stderr
    assert "the same command again re-attaches to a job this one started" in stderr
    assert again.returncode == 0, again.stderr
    assert len(server.jobs) == 1 and "re-attached" in again.stderr


def test_ctrl_c_during_an_evaluation_says_the_answers_are_kept_and_the_rerun_uses_them(
    tmp_path: Path,
) -> None:
    """Ctrl-C in ``finetune eval`` said "interrupted": nothing about the answers paid for."""
    holdout = write_jsonl(tmp_path / "h.jsonl", [chat(i) for i in range(20)])
    config = tmp_path / "eval.toml"
    config.write_text(
        f'data = "{holdout}"\nmetrics = ["exact_match"]\nmax_concurrency = 1\n'
        '[candidates]\nbase = "openai:gpt-4.1-mini"\n'
    )
    with OpenAIFake() as server:

        def asked() -> int:
            return sum(r.path.endswith("/chat/completions") for r in server.requests)

        env = {
            **os.environ,
            "OPENAI_API_KEY": server.api_key,
            "OPENAI_BASE_URL": server.base_url,
            "FINETUNE_CACHE_DIR": str(tmp_path / "cache"),
        }
        server.chat_delay = 0.3
        evaluating = interruptible("eval", str(config), env=env)
        deadline = time.monotonic() + 60
        while asked() < 4:
            assert time.monotonic() < deadline and evaluating.poll() is None
            time.sleep(0.05)
        evaluating.send_signal(signal.SIGINT)
        _, stderr = evaluating.communicate(timeout=30)
        first, server.chat_delay = asked(), 0.0
        again = cli("eval", str(config), env=env)
        second = asked() - first
    assert evaluating.returncode == 130 and "Traceback" not in stderr, stderr
    cache = tmp_path / "cache" / "predictions.sqlite3"
    assert f"kept in the prediction cache ({cache}); the same command again asks" in stderr
    assert again.returncode == 0, again.stderr
    assert 0 < second <= 20 - (first - 1)  # one answer may have been on its way


def test_the_file_lock_waits_the_same_from_both_faces(tmp_path: Path) -> None:
    """``FileLock.acquire`` and ``acquire_async`` were twins of one waiting loop; both now run
    the one: each waits for the holder, and each gives up at its timeout."""
    import asyncio
    import threading

    from finetune._lock import FileLock

    path = tmp_path / "fit.lock"
    holder, waiter = FileLock(path, poll=0.01), FileLock(path, poll=0.01)
    holder.acquire()
    with pytest.raises(TimeoutError, match="held by another process"):
        waiter.acquire(timeout=0.05)
    with pytest.raises(TimeoutError, match="held by another process"):
        asyncio.run(waiter.acquire_async(timeout=0.05))
    threading.Timer(0.1, holder.release).start()
    waiter.acquire(timeout=10)
    threading.Timer(0.1, waiter.release).start()
    asyncio.run(holder.acquire_async(timeout=10))
    holder.release()


@pytest.mark.skipif(sys.platform == "win32", reason="Windows cannot remove a file held open")
def test_a_lock_file_goes_when_let_go_and_the_lock_still_excludes(tmp_path: Path) -> None:
    """Each fit and each uploaded file left a lock file in the cache folder for ever (and each
    converted model a hidden one beside it): the holder now removes it as it lets go, and
    holders taking turns through removed and re-made files still never overlap."""
    import threading

    from finetune._lock import FileLock

    path, counter = tmp_path / "locks" / "fit.lock", tmp_path / "counter"
    counter.write_text("0")
    inside: list[int] = []
    overlaps: list[int] = []

    def take_turns() -> None:
        lock = FileLock(path, poll=0.001)
        for _ in range(150):
            lock.acquire(timeout=60)
            inside.append(1)
            if len(inside) > 1:
                overlaps.append(len(inside))
            counter.write_text(str(int(counter.read_text()) + 1))
            inside.pop()
            lock.release()

    workers = [threading.Thread(target=take_turns) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert overlaps == []
    assert counter.read_text() == "600"
    assert list(path.parent.iterdir()) == []
