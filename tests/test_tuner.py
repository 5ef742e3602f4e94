from __future__ import annotations

import asyncio
import inspect
import io
import itertools
import logging
import re
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

import finetune as ft
from finetune.backends import JobRequest
from finetune.dataset._formats import split_turns, turns_digest
from finetune.registry import _MIGRATIONS
from finetune.testing import FakeBackend, FakeFailure
from finetune.validation import TokenCounter

from .conftest import chat, needs_tiktoken, write_jsonl
from .fakes._server import child_env

FAST = {"validating": 0.01, "queued": 0.01, "running": 0.05, "steps": 5}


@pytest.fixture
def namespace(request: pytest.FixtureRequest) -> str:
    name = request.node.name
    FakeBackend.reset(name)
    return name


@pytest.fixture
def train() -> ft.Dataset:
    return ft.Dataset.from_records([chat(i) for i in range(20)])


def make_tuner(namespace: str, **options: object) -> ft.Tuner:
    return ft.Tuner("fake", model="base-1", namespace=namespace, **{**FAST, **options})


@needs_tiktoken
def test_a_fake_takes_a_context_limit_for_tests_of_examples_too_long(
    namespace: str, train: ft.Dataset
) -> None:
    """A fake's models had no context limit: code handling examples over one could not be
    tested without a provider, and every fake validation warned ``unchecked_context``."""
    assert "unchecked_context" in make_tuner(namespace).validate(train).counts
    tokens = make_tuner(namespace).estimate(train).tokens_max
    tight = make_tuner(namespace, context_limit=tokens - 1)
    report = tight.validate(train)
    assert "unchecked_context" not in report.counts and report.counts["too_many_tokens"] > 0
    assert f"over the limit of {tokens - 1}" in report.kept["too_many_tokens"][0].message
    estimate = tight.estimate(train)
    assert not estimate.fits_context and estimate.context_limit == tokens - 1
    with pytest.raises(ft.ValidationFailed, match="too_many_tokens"):
        tight.fit(train)
    roomy = make_tuner(namespace, context_limit=tokens).estimate(train)
    assert roomy.fits_context and "fits context: True" in str(roomy)


def test_fit_wait_succeeds(namespace: str, train: ft.Dataset) -> None:
    tuner = make_tuner(namespace)
    job = tuner.fit(train, suffix="support", hyperparameters=ft.Hyperparameters(epochs=2))
    assert job.status is ft.JobStatus.VALIDATING
    done = job.wait(poll_interval=0.01, timeout=5)
    assert done.status is ft.JobStatus.SUCCEEDED
    assert job.model == ft.ModelRef(
        backend="fake", name=f"ft:base-1:support:{job.id}", base_model="base-1", job_id=job.id
    )
    metrics = job.metrics()
    assert [p.step for p in metrics] == [1, 2, 3, 4, 5]
    assert metrics[-1].train_loss < metrics[0].train_loss  # type: ignore[operator]
    messages = [e.message for e in job.events()]
    assert messages[0] == "Created fine-tuning job"
    assert messages[-1] == "The job has successfully completed"
    assert job.checkpoints()
    assert done.hyperparameters.epochs == 2


def test_a_concatenation_of_files_trains_as_one_dataset(namespace: str, tmp_path: Path) -> None:
    """Both parts' rows are trained (the fake's model answers each part's questions), and an
    error in the second part is named by its own file and line before anything is sent."""
    first = write_jsonl(tmp_path / "orders.jsonl", [chat(i) for i in range(10)])
    second = write_jsonl(tmp_path / "returns.jsonl", [chat(i) for i in range(50, 60)])
    both = ft.Dataset.from_jsonl(first) + ft.Dataset.from_jsonl(second)
    job = make_tuner(namespace).fit(both)
    assert job.wait(poll_interval=0.01, timeout=5).status is ft.JobStatus.SUCCEEDED
    result = ft.evaluate(both, {"tuned": job.model}, ["exact_match"], cache=False)
    assert result.summary()["tuned"]["exact_match"].mean == 1.0
    broken = write_jsonl(tmp_path / "broken.jsonl", [chat(70), {"messages": []}])
    with pytest.raises(ft.ValidationFailed) as failed:
        make_tuner(namespace).fit(both + ft.Dataset.from_jsonl(broken))
    assert [(f.file, f.line) for f in failed.value.report.errors] == [("broken.jsonl", 2)]


def test_a_checkpoint_is_evaluated_as_the_jobs_model_is_asked(
    namespace: str, train: ft.Dataset
) -> None:
    """A checkpoint's ``model`` was a bare name: a ``ModelRef`` built by hand from it was asked
    with the environment's key and URL, not the Tuner's (a fake's: outside its namespace)."""
    job = make_tuner(namespace).fit(train)
    job.wait(poll_interval=0.01, timeout=5)
    first, *_ = saved = job.checkpoints()
    ref = job.checkpoint_model(first)
    assert ref == ft.ModelRef(backend="fake", name=first.model, base_model="base-1", job_id=job.id)
    assert ref.asked_with == job.model.asked_with == {"namespace": namespace}
    models = {f"step {c.step}": job.checkpoint_model(c) for c in saved}
    result = ft.evaluate(train[:4], models, ["exact_match"], cache=False)
    assert result.candidates == [f"step {c.step}" for c in saved]
    with pytest.raises(TypeError, match=r"one of job\.checkpoints"):
        job.checkpoint_model(first.model)  # type: ignore[arg-type]


def test_failed_job_raises_job_failed_with_provider_error(
    namespace: str, train: ft.Dataset
) -> None:
    failure = FakeFailure(code="invalid_file", message="line 3 is bad", after=0.01)
    job = make_tuner(namespace, fail=failure).fit(train)
    with pytest.raises(ft.JobFailed) as caught:
        job.wait(poll_interval=0.01, timeout=5)
    assert caught.value.job.status is ft.JobStatus.FAILED
    assert caught.value.job.error == ft.JobError(code="invalid_file", message="line 3 is bad")
    assert "invalid_file: line 3 is bad" in str(caught.value)
    with pytest.raises(ft.FinetuneError, match="no fine-tuned model"):
        _ = job.model


async def test_the_sdks_names_for_a_tuner_and_a_job_are_told_what_does_it_here(
    namespace: str, train: ft.Dataset
) -> None:
    """``tuner.train(ds)`` (TRL's), ``tuner.retrieve(id)`` and ``job.fine_tuned_model``
    (OpenAI's SDK), ``job.logs()``: "'Tuner' object has no attribute 'train'" alone."""
    tuner = make_tuner(namespace)
    job = tuner.fit(train)
    said = {
        (tuner, "train"): "here, tuner.fit(train, validation=...) validates, uploads and starts",
        (tuner, "retrieve"): "here, tuner.job(job_id) re-attaches to a job",
        (tuner, "list_jobs"): "here, tuner.jobs() lists this machine's jobs",
        (job, "fine_tuned_model"): "here, job.wait() waits for it to end, then job.model is",
        (job, "logs"): "here, job.events() is its log",
        (job, "stop"): "here, job.cancel() cancels it",
    }
    for (owner, name), cure in said.items():
        with pytest.raises(AttributeError) as caught:
            getattr(owner, name)
        assert str(caught.value).startswith(
            f"{type(owner).__name__!r} object has no attribute {name!r}: {cure}"
        )
        assert (caught.value.name, caught.value.obj) == (name, owner)
    async with ft.AsyncTuner("fake", model="base-1", namespace=namespace, **FAST) as again:
        with pytest.raises(AttributeError, match=r"'AsyncTuner' object .* here, tuner\.fit\("):
            again.train  # type: ignore[attr-defined]  # noqa: B018
        handle = await again.job(job.id)
        with pytest.raises(AttributeError, match=r"'AsyncJobHandle' object .* job\.events\(\)"):
            handle.logs  # type: ignore[attr-defined]  # noqa: B018
    with pytest.raises(AttributeError) as misspelt:
        job.cancle  # type: ignore[attr-defined]  # noqa: B018
    assert str(misspelt.value) == "'JobHandle' object has no attribute 'cancle'"
    assert not hasattr(job, "destroy") and not hasattr(tuner, "get")


def test_cancel(namespace: str, train: ft.Dataset) -> None:
    job = make_tuner(namespace, running=30).fit(train)
    cancelled = job.cancel()
    assert cancelled.status is ft.JobStatus.CANCELLED
    assert job.wait(poll_interval=0.01, timeout=1).status is ft.JobStatus.CANCELLED
    assert job.events()[-1].message == "Job cancelled"


def test_wait_timeout_leaves_job_running(namespace: str, train: ft.Dataset) -> None:
    job = make_tuner(namespace, running=30).fit(train)
    with pytest.raises(ft.WaitTimeout) as caught:
        job.wait(poll_interval=0.01, timeout=0.2)
    assert not caught.value.job.status.is_terminal
    assert "keeps running" in str(caught.value)
    job.cancel()


class StalledFake(FakeBackend):
    """A fake whose status reads follow ``reads`` once it is set: ``"late"`` answers after
    0.5 s with a status already old, ``"503"`` fails as a provider in an outage does, and
    ``"late 503"`` does both; an empty word, or the end of ``reads``, answers at once."""

    reads: Iterator[str] = iter(())

    def get_job(self, job_id: str) -> ft.Job:
        job = super().get_job(job_id)
        read = next(self.reads, "")
        if "late" in read:
            time.sleep(0.5)
        if "503" in read:
            raise ft.ServerError("service unavailable", backend=self.name, status_code=503)
        return job


@pytest.mark.parametrize("read", ["late", "late 503"], ids=["a late answer", "a late 503"])
def test_wait_looks_again_at_the_deadline_after_a_stall(
    namespace: str, train: ft.Dataset, read: str
) -> None:
    backend = StalledFake(namespace=namespace, **FAST)
    job = ft.Tuner(backend, model="base-1").fit(train)
    backend.reads = iter([read])  # the answer arrives after the deadline
    assert job.wait(poll_interval=0.01, timeout=0.3).status is ft.JobStatus.SUCCEEDED


@pytest.mark.parametrize(
    "reads",
    [
        pytest.param(lambda: itertools.repeat("503"), id="every read fails"),
        pytest.param(lambda: iter(["late", "503"]), id="the last look fails"),
    ],
)
def test_wait_through_an_outage_ends_in_a_timeout_that_names_the_outage(
    namespace: str, train: ft.Dataset, reads: Callable[[], Iterator[str]]
) -> None:
    backend = StalledFake(namespace=namespace, **FAST)
    job = ft.Tuner(backend, model="base-1").fit(train)
    backend.reads = reads()
    with pytest.raises(ft.WaitTimeout) as caught:
        job.wait(poll_interval=0.01, timeout=0.3)
    assert caught.value.job.id == job.id
    assert isinstance(caught.value.__cause__, ft.ServerError)
    assert caught.value.__cause__.status_code == 503


def test_reattach_by_id_from_a_new_tuner(namespace: str, train: ft.Dataset) -> None:
    job = make_tuner(namespace).fit(train)
    other = make_tuner(namespace).job(job.id)
    assert other.id == job.id and not other.reattached  # fit found no earlier job
    assert other.wait(poll_interval=0.01, timeout=5).status is ft.JobStatus.SUCCEEDED


def test_hyperparameters_may_be_a_dict_of_their_fields(namespace: str, train: ft.Dataset) -> None:
    tuner = make_tuner(namespace, registry=False)
    job = tuner.fit(train, hyperparameters={"epochs": 2, "learning_rate_multiplier": 1.5})
    assert job.job.hyperparameters == ft.Hyperparameters(epochs=2, learning_rate_multiplier=1.5)
    assert tuner.estimate(train, {"epochs": 4}).epochs == 4
    with pytest.raises(
        ft.InvalidRequestError, match=r"'epoch' \(did you mean 'epochs'\?\)"
    ) as caught:
        tuner.fit(train, hyperparameters={"epoch": 2})
    assert caught.value.param == "hyperparameters.epoch" and "epochs, batch_size" in str(
        caught.value
    )
    with pytest.raises(
        ft.InvalidRequestError,
        match=r"LoRA has no field 'rank' \(did you mean 'r'\?\); its fields are r, alpha, dropout",
    ) as caught:
        tuner.fit(train, hyperparameters={"lora": {"rank": 8}})
    assert caught.value.param == "hyperparameters.lora.rank"
    with pytest.raises(ft.InvalidRequestError) as several:  # each named, not one a run
        tuner.fit(train, hyperparameters={"epochs": "x", "batch_size": 0, "lora": {"r": 0}})
    assert str(several.value).endswith(
        "(batch_size, lora.r are refused too) (param: hyperparameters.epochs)"
    )
    with pytest.raises(ft.InvalidRequestError) as misnamed:  # an unknown one with its meaning
        tuner.fit(train, hyperparameters={"epochs": "x", "lr": 3})
    assert "(lr (did you mean 'learning_rate'?) is refused too)" in str(misnamed.value)
    for theirs, ours in (("lr", "learning_rate"), ("num_train_epochs", "epochs")):
        with pytest.raises(ft.InvalidRequestError, match=f"'{theirs}' \\(did you mean '{ours}'"):
            tuner.estimate(train, {theirs: 3})  # TRL's names; difflib alone took lr for lora
        with pytest.raises(ft.InvalidRequestError) as misplaced:  # given as a backend's option
            ft.Tuner("hf", **{theirs: 3})
        said = f"'{theirs}' is no option of the hf backend: it is ft.Hyperparameters({ours}=...)"
        assert str(misplaced.value) == f"[hf] {said} (param: {theirs})"
    for backend, said in (  # the Tuner's own keyword, misspelt among the backend's options
        ("hf", "'modle' is no option of the hf backend: did you mean the Tuner's model=...?"),
        ("fake", "no option 'modle' (did you mean the Tuner's model=...?); it takes namespace"),
    ):
        with pytest.raises(ft.InvalidRequestError) as misspelt:
            ft.Tuner(backend, modle="m")
        assert str(misspelt.value).startswith(f"[{backend}] {said}")
    with pytest.raises(ft.InvalidRequestError, match=r"'max_seq_length' \(did you mean 'max_l"):
        ft.Tuner("hf", max_seq_length=128)  # an option's old name: the option it now is
    for theirs, ours in (("job_dir", "jobs_dir"), ("model_dir", "models_dir")):
        with pytest.raises(ft.InvalidRequestError) as misspelt:  # the backend's own keywords
            ft.Tuner("hf", **{theirs: "x"})  # model_dir: not the Tuner's model=
        assert f"no option '{theirs}' (did you mean '{ours}'?); its options are " in str(
            misspelt.value
        )
        assert f", {ours}, " in str(misspelt.value)
    from finetune.backends.hf import HFBackend
    from finetune.backends.hf._config import BACKEND_KEYWORDS, LocalOptions

    keywords = set(inspect.signature(HFBackend).parameters) - {"options"}
    assert keywords == set(BACKEND_KEYWORDS) and not keywords & set(LocalOptions.model_fields)
    for theirs, write in (  # torchrun's, accelerate's and transformers' names: no near match
        ("nproc_per_node", "num_processes=N (a process per GPU)"),
        ("gpus", "num_processes=N (a process per GPU)"),
        ("master_addr", "main_process_ip='...'"),
        ("bf16", "precision='bf16'"),
        ("load_in_4bit", "quantization='4bit'"),
    ):
        with pytest.raises(ft.InvalidRequestError) as misnamed:
            ft.Tuner("hf", **{theirs: 2})
        assert str(misnamed.value) == (
            f"[hf] '{theirs}' is no option of the hf backend: write {write} (param: {theirs})"
        )
    with pytest.raises(ft.InvalidRequestError) as caught:
        tuner.estimate(train, {"epochs": 0})
    assert caught.value.param == "hyperparameters.epochs"
    assert str(caught.value).startswith("epochs: not 0 (must be a whole number above 0, or 'auto')")
    with pytest.raises(ft.InvalidRequestError) as union:
        tuner.estimate(train, {"epochs": "many"})  # a union: what any of its types takes
    assert str(union.value).startswith("epochs: not 'many' (must be a whole number or 'auto')")
    with pytest.raises(TypeError, match="or a dict of its fields, not int"):
        tuner.fit(train, hyperparameters=3)  # type: ignore[arg-type]


def test_a_check_of_settings_together_is_said_as_it_is() -> None:
    """A model-level check has no field to name: its own message, not ``: not {...}``."""
    from pydantic import BaseModel, ValidationError, model_validator

    from finetune._errors import settings_problem

    class Clashing(BaseModel):
        a: int = 0

        @model_validator(mode="after")
        def _clash(self) -> Clashing:
            raise ValueError("a clashes with itself")

    with pytest.raises(ValidationError) as caught:
        Clashing(a=1)
    assert settings_problem(caught.value, {"": ("Clashing", ["a"])}) == (
        "a clashes with itself",
        "",
    )


def test_what_a_fit_caches_stays_in_the_cache_folder_it_is_given(
    namespace: str, train: ft.Dataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no registry, a fit's lock lives in ``$FINETUNE_CACHE_DIR``, as the prediction
    cache does, not in the user's cache folder; its file goes once the fit has its job."""
    monkeypatch.setenv("FINETUNE_CACHE_DIR", str(tmp_path / "cache"))
    make_tuner(namespace, registry=False).fit(train, suffix="locks")
    assert (tmp_path / "cache" / "locks").is_dir()
    assert list((tmp_path / "cache" / "locks").iterdir()) == []


def test_rerun_of_same_fit_reattaches_instead_of_creating(
    namespace: str, train: ft.Dataset
) -> None:
    first = make_tuner(namespace).fit(train, suffix="x")
    second = make_tuner(namespace, registry=False).fit(train, suffix="x")
    assert second.id == first.id
    assert second.reattached and not first.reattached  # found by the provider's own list
    assert repr(second).endswith(" (re-attached)>") and "re-attached" not in repr(first)
    told = "re-attached: an earlier run of the same fit started this job"
    assert told in second._repr_html_() and told not in first._repr_html_()  # a notebook's
    assert make_tuner(namespace).fit(train, suffix="x").reattached  # by the registry
    backend = FakeBackend(namespace=namespace)
    assert backend.create_count == 1 and backend.upload_count == 1
    different = make_tuner(namespace).fit(train, suffix="y")
    assert different.id != first.id
    assert backend.upload_count == 1  # same file content reused


def test_a_key_of_ones_own_given_again_for_other_data_is_refused(
    namespace: str, train: ft.Dataset
) -> None:
    """It re-attached to the job trained on the first data, and said nothing."""
    first = make_tuner(namespace).fit(train, idempotency_key="run-1")
    assert make_tuner(namespace).fit(train, idempotency_key="run-1").id == first.id
    other = ft.Dataset.from_records([chat(i + 100) for i in range(12)])
    with pytest.raises(ft.InvalidRequestError, match=f"'run-1' made job {first.id} from other"):
        make_tuner(namespace).fit(other, idempotency_key="run-1")
    for blank in ("", " "):
        with pytest.raises(ValueError, match="idempotency_key is a name for this fit"):
            make_tuner(namespace).fit(train, idempotency_key=blank)
    assert FakeBackend(namespace=namespace).create_count == 1


def test_rerun_after_failure_creates_a_fresh_job(namespace: str, train: ft.Dataset) -> None:
    failing = make_tuner(namespace, fail=FakeFailure(after=0))
    first = failing.fit(train)
    with pytest.raises(ft.JobFailed):
        first.wait(poll_interval=0.01, timeout=5)
    second = make_tuner(namespace).fit(train)
    assert second.id != first.id
    assert second.wait(poll_interval=0.01, timeout=5).status is ft.JobStatus.SUCCEEDED


def test_registry_records_lineage(namespace: str, train: ft.Dataset) -> None:
    tuner = make_tuner(namespace)
    job = tuner.fit(train)
    job.wait(poll_interval=0.01, timeout=5)
    (record,) = tuner.jobs()
    assert record.job_id == job.id and record.status == "succeeded"
    assert record.train_fingerprint == train.fingerprint()
    lineage = ft.JobRegistry().lineage(job.model.name)
    assert lineage is not None and lineage.job_id == job.id
    assert record.method == lineage.method == "sft"


def test_the_registry_keeps_how_a_model_was_trained(namespace: str, tmp_path: Path) -> None:
    """A DPO model's lineage said its data and hyperparameters, not that it was DPO."""
    row = {"prompt": "2 + 2?", "chosen": "4.", "rejected": "Five."}
    pairs = ft.Dataset.from_records([row] * 12)
    job = make_tuner(namespace).fit(pairs, method="dpo", skip_validation=True)
    job.wait(poll_interval=0.01, timeout=5)
    lineage = ft.JobRegistry().lineage(job.model.name)
    assert lineage is not None and lineage.method == "dpo"
    path = tmp_path / "jobs.sqlite3"  # a registry of the version before: the method unknown
    with sqlite3.connect(path) as db:
        for script in _MIGRATIONS[:-1]:
            db.executescript(script)
        db.execute(f"PRAGMA user_version = {len(_MIGRATIONS) - 1}")
        db.execute(
            "INSERT INTO jobs (backend, job_id, base_model, status, created_at, updated_at) "
            "VALUES ('fake', ?, 'm', 'succeeded', 't', 't')",
            (job.id,),
        )
    db.close()
    earlier = ft.JobRegistry(path)
    assert earlier.get("fake", job.id).method is None  # type: ignore[union-attr]
    earlier.record(job.job)  # a later look at the job fills it in
    assert earlier.get("fake", job.id).method == "dpo"  # type: ignore[union-attr]


def test_a_local_job_seen_in_another_jobs_folder_is_named_with_the_tuner_that_reaches_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The default jobs folder's record ("hf") was named as 'hf' ("has it from 'hf'"), and
    the advice was a Tuner "made for that one": the folder is named, and the call to make."""
    from finetune.registry import seen_elsewhere

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))  # the user data dir here
    default = tmp_path / "data" / "finetune" / "hf-jobs"
    registry = ft.JobRegistry(tmp_path / "jobs.sqlite")
    for endpoint, folder in (("hf", default), (f"hf|{tmp_path / 'mine'}", tmp_path / "mine")):
        job = ft.Job(id=f"hfjob-{folder.name}", backend="hf", base_model="m", status="running")
        registry.record(job, endpoint=endpoint)
        missing = ft.JobNotFound(f"no local job {job.id!r}", backend="hf")
        said = str(seen_elsewhere(missing, registry, "hf|/elsewhere", job.id))
        assert f"registry has it from the jobs folder {folder} (another endpoint, " in said
        assert said.endswith(
            f": re-attach with Tuner('hf', jobs_dir={str(folder)!r}).job({job.id!r})"
        )


def test_a_tuner_s_repr_names_a_jobs_folder_of_its_own(tmp_path: Path) -> None:
    """Two local Tuners on two jobs folders read alike (``Tuner('hf', model='m')``); the one
    whose jobs are found only by naming its folder says it, as the call that makes it."""
    folder = (tmp_path / "jobs").resolve()
    mine = ft.Tuner("hf", model="m", jobs_dir=tmp_path / "jobs", registry=False)
    assert repr(mine) == f"Tuner('hf', model='m', jobs_dir={str(folder)!r})"
    assert repr(ft.AsyncTuner("hf", model="m", jobs_dir=folder, registry=False)).startswith(
        f"AsyncTuner('hf', model='m', jobs_dir={str(folder)!r}"
    )
    assert repr(ft.Tuner("hf", model="m", registry=False)) == "Tuner('hf', model='m')"


def test_a_job_another_account_holds_is_not_found_with_where_it_was_seen(
    namespace: str, train: ft.Dataset
) -> None:
    job = make_tuner(namespace).fit(train)
    job.wait(poll_interval=0.01, timeout=5)
    other = make_tuner(f"{namespace}-other")  # another account of the same provider
    with pytest.raises(ft.JobNotFound) as raised:
        other.job(job.id)
    seen = make_tuner(namespace).backend.identity
    assert f"this machine's job registry has it from {seen!r}" in str(raised.value)
    assert str(raised.value).startswith("[fake] ") and raised.value.backend == "fake"
    FakeBackend.reset(f"{namespace}-other")
    with pytest.raises(ft.JobNotFound) as raised:
        make_tuner(namespace).job("ftjob-fake-9999")  # never seen: the provider's word only
    assert "registry" not in str(raised.value)


def test_fake_job_ids_that_restart_are_kept_apart_in_the_registry(
    namespace: str, train: ft.Dataset
) -> None:
    """Fake job ids restart with each store (each process, each ``reset``): the registry
    must not fold a new ``ftjob-fake-0001`` into the record of an old one."""
    first = ft.Tuner("fake", model="base-a", namespace=namespace, **FAST).fit(train)
    first.wait(poll_interval=0.01, timeout=5)
    FakeBackend.reset(namespace)  # as a new process would start
    other = ft.Dataset.from_records([chat(i) for i in range(20, 40)])
    second = ft.Tuner("fake", model="base-b", namespace=namespace, **FAST).fit(other)
    second.wait(poll_interval=0.01, timeout=5)
    assert first.id == second.id == "ftjob-fake-0001"
    records = {
        (r.base_model, r.fine_tuned_model, r.train_fingerprint) for r in ft.JobRegistry().list()
    }
    assert records == {
        ("base-a", first.model.name, train.fingerprint()),
        ("base-b", second.model.name, other.fingerprint()),
    }
    assert ft.JobRegistry().lineage(first.model.name).base_model == "base-a"  # type: ignore[union-attr]


def test_the_registry_keeps_a_digest_of_each_training_row_not_the_rows(
    namespace: str, train: ft.Dataset
) -> None:
    job = make_tuner(namespace).fit(train)
    registry = ft.JobRegistry()
    kept = registry.training_rows("fake", job.id)
    assert kept is not None and len(kept) == 8 * len(train)
    expected = b"".join(turns_digest(split_turns(example)) for example in train)
    assert kept == expected
    files = [registry.path, registry.path.with_name(registry.path.name + "-wal")]
    assert all(b"Where is my order" not in f.read_bytes() for f in files if f.exists())
    again = make_tuner(namespace, registry=registry).fit(train, suffix="other")
    assert registry.training_rows("fake", again.id) == kept  # one copy per training set
    assert registry.training_rows("fake", "no-such-job") is None


def test_a_fit_whose_file_goes_before_its_rows_are_digested_still_returns_its_job(
    namespace: str, chat_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The digests are kept after the job exists: failing to keep them must not fail the fit
    (a re-run would re-attach, but the caller would have been told the fit failed)."""

    class RemovesItsFile(FakeBackend):
        def upload(self, dataset: ft.Dataset, *, purpose: str = "train") -> ft.FileRef:
            uploaded = super().upload(dataset, purpose=purpose)
            chat_file.unlink()  # a temporary file cleaned up once it was sent
            return uploaded

    tuner = ft.Tuner(RemovesItsFile(namespace=namespace, **FAST), model="base-1")
    with caplog.at_level("WARNING", logger="finetune"):
        job = tuner.fit(ft.Dataset.from_jsonl(chat_file))
    assert job.wait(poll_interval=0.01, timeout=5).status == ft.JobStatus.SUCCEEDED
    assert ft.JobRegistry().training_rows("fake", job.id) is None
    assert any("keeps no digests" in r.getMessage() for r in caplog.records)


def test_a_registry_of_an_earlier_version_gains_the_training_rows_table(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite3"
    with sqlite3.connect(path) as db:  # the schema as the three earlier migrations left it
        for script in _MIGRATIONS[:3]:
            db.executescript(script)
        db.execute("PRAGMA user_version = 3")
        db.execute(
            "INSERT INTO jobs (backend, job_id, base_model, status, created_at, updated_at, "
            "train_fingerprint) VALUES ('openai', 'ftjob-1', 'm', 'succeeded', 't', 't', 'fp')"
        )
    db.close()
    registry = ft.JobRegistry(path)
    assert registry.get("openai", "ftjob-1") is not None
    assert registry.training_rows("openai", "ftjob-1") is None
    registry.record_training_rows("fp", b"12345678")
    assert registry.training_rows("openai", "ftjob-1") == b"12345678"
    # rows kept before their kind was: kept again, they are given it, and it stays
    assert registry.training_kind("openai", "ftjob-1") is None
    assert not registry.has_training_rows("fp")  # so a fit keeps them again, with the kind
    registry.record_training_rows("fp", b"12345678", "completion")
    registry.record_training_rows("fp", b"12345678", "chat")
    assert registry.training_kind("openai", "ftjob-1") == "completion"
    assert registry.has_training_rows("fp")
    assert registry.training_rows("openai", "ftjob-1") == b"12345678"


def test_validation_errors_block_upload(namespace: str) -> None:
    bad = ft.Dataset.from_records(
        [chat(i) for i in range(12)] + [{"messages": [{"role": "user", "content": "only"}]}]
    )
    tuner = make_tuner(namespace)
    with pytest.raises(ft.ValidationFailed) as caught:
        tuner.fit(bad)
    assert "missing_assistant" in str(caught.value)
    assert FakeBackend(namespace=namespace).upload_count == 0


def test_suffix_too_long_or_blank_is_refused_before_sending(
    namespace: str, train: ft.Dataset
) -> None:
    with pytest.raises(ft.InvalidRequestError, match="at most 64"):
        make_tuner(namespace).fit(train, suffix="x" * 65)
    for blank in ("", "  "):  # `--suffix "$UNSET"`: a model named with nothing
        with pytest.raises(ft.InvalidRequestError, match="suffix is empty: give a name"):
            make_tuner(namespace).fit(train, suffix=blank)
    assert FakeBackend(namespace=namespace).upload_count == 0


def test_dpo_needs_preference_data(namespace: str, train: ft.Dataset) -> None:
    with pytest.raises(ft.UnsupportedFeature, match="preference"):
        make_tuner(namespace).fit(train, method="dpo")


def test_a_dpo_beta_on_an_sft_fit_is_refused_before_anything_is_sent(
    namespace: str, train: ft.Dataset
) -> None:
    tuner = make_tuner(namespace)
    with pytest.raises(ft.InvalidRequestError, match="beta is the DPO beta") as refused:
        tuner.fit(train, hyperparameters=ft.Hyperparameters(beta=0.1))
    assert refused.value.param == "hyperparameters.beta"
    assert FakeBackend(namespace=namespace).upload_count == 0 and not tuner.remote_jobs()


@needs_tiktoken
def test_an_estimate_is_priced_at_a_rate_given_and_says_how_when_it_knows_none(
    train: ft.Dataset,
) -> None:
    unpriced = ft.Tuner("openai", model="gpt-5-nano-2026-01-01", registry=False)
    unknown = unpriced.estimate(train)
    assert unknown.cost is None and not unknown.exact
    assert any("pass estimate(price_per_million=...)" in note for note in unknown.notes)
    priced = unpriced.estimate(train, price_per_million=3.0)
    assert priced.cost == round(priced.billed_tokens * 3e-6, 4) and priced.exact
    assert not any("price" in note for note in priced.notes)
    for wrong in (-1.0, float("inf"), "0.5", True):  # "0.5" was a '>=' TypeError, inf a cost
        with pytest.raises(ValueError, match="price_per_million must be 0 or more"):
            unpriced.estimate(train, price_per_million=wrong)  # type: ignore[arg-type]
    local = ft.Tuner("fake", model="base-1", registry=False).estimate(train)
    assert local.cost is None and local.exact
    assert any("no provider bill" in note for note in local.notes)


def test_an_estimate_of_too_few_examples_for_the_backend_says_a_fit_refuses_them() -> None:
    tuner = ft.Tuner("fake", model="base-1", registry=False)  # OpenAI's rules: 10 or more
    few = tuner.estimate(ft.Dataset.from_records([chat(i) for i in range(2)]))
    assert few.notes[0].startswith("a fit refuses this data: 2 examples, and openai needs at")
    with pytest.raises(ft.ValidationFailed, match="too_few_examples"):
        tuner.fit(ft.Dataset.from_records([chat(i) for i in range(2)]))


def test_pause_and_resume(namespace: str, train: ft.Dataset) -> None:
    """The registry follows each (``finetune jobs`` showed a paused job as running), and a
    job with no model is told what to do for one (a cancelled job was told to wait)."""
    tuner = make_tuner(namespace, running=30, validating=0, queued=0)
    job = tuner.fit(train)
    assert job.pause().status is ft.JobStatus.PAUSED
    assert tuner.jobs()[0].status == "paused"
    with pytest.raises(ft.FinetuneError, match=r"is paused and .* resume\(\) it, then wait"):
        job.model  # noqa: B018
    assert job.resume().status is ft.JobStatus.RUNNING
    assert tuner.jobs()[0].status == "running"
    with pytest.raises(ft.FinetuneError, match=r"is running and .* wait\(\) for it first$"):
        ft.evaluate(train, {"tuned": job}, ["exact_match"], cache=False)
    job.cancel()
    says = r"was cancelled and made no fine-tuned model; a checkpoint it saved may be evaluated"
    with pytest.raises(ft.FinetuneError, match=f"^job {job.id} {says}"):
        job.model  # noqa: B018
    with pytest.raises(ft.FinetuneError, match=f"^candidate 'tuned' is job {job.id}, which {says}"):
        ft.evaluate(train, {"tuned": job}, ["exact_match"], cache=False)


def test_a_fit_says_what_validation_warned_of_before_it_starts(
    namespace: str, train: ft.Dataset, caplog: pytest.LogCaptureFixture
) -> None:
    tuner = make_tuner(namespace)
    with caplog.at_level(logging.WARNING, logger="finetune"):
        tuner.fit(train)
    assert not [r for r in caplog.records if "validation" in r.getMessage()]
    leaky = ft.Dataset.from_records([chat(i) for i in range(3)])  # also in train
    with caplog.at_level(logging.WARNING, logger="finetune"):
        tuner.fit(train, validation=leaky)
    (said,) = [r.getMessage() for r in caplog.records if "do not stop" in r.getMessage()]
    assert said.startswith("validation found 3 warnings, which do not stop the fit:")
    assert "train_validation_leak x3 (first at validation records:1)" in said
    assert said.endswith(
        "validate lists them (tuner.validate, or finetune validate on the command line)"
    )
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="finetune"):  # one warning, in the singular
        tuner.fit(train, validation=leaky[:1], suffix="one")
    (said,) = [r.getMessage() for r in caplog.records if "not stop" in r.getMessage()]
    assert said.startswith("validation found 1 warning, which does not stop the fit:")
    assert said.endswith(
        "validate lists it (tuner.validate, or finetune validate on the command line)"
    )


def test_unknown_job_id(namespace: str) -> None:
    where = f"no job 'ftjob-nope' in namespace {namespace!r} .fake jobs live in the process"
    with pytest.raises(ft.JobNotFound, match=where):
        make_tuner(namespace).job("ftjob-nope")


def test_progress_bar(
    namespace: str, train: ft.Dataset, capsys: pytest.CaptureFixture[str]
) -> None:
    job = make_tuner(namespace).fit(train)
    job.wait(poll_interval=0.01, timeout=5, progress=True)
    shown = capsys.readouterr().err
    assert f"fake:{job.id}: succeeded [" in shown  # no steps reported: status and time so far
    assert make_tuner(namespace).job(f"fake:{job.id}").id == job.id  # the name shown re-attaches
    with pytest.raises(ft.JobNotFound, match=f"no job 'openai:{job.id}' in namespace"):
        make_tuner(namespace).job(f"openai:{job.id}")  # another backend's name is no id here
    assert "poll" not in shown


def test_progress_to_a_log_is_redrawn_when_the_status_changes_not_at_every_poll(
    namespace: str, train: ft.Dataset, capsys: pytest.CaptureFixture[str]
) -> None:
    """stderr captured is not a terminal, as in CI or a piped run: a long wait there must
    leave a few frames, not one per poll, each a line of its own (they were joined by
    carriage returns into one line, which only a terminal shows right)."""
    job = make_tuner(namespace, running=0.6).fit(train)
    job.wait(poll_interval=0.01, timeout=5, progress=True)
    shown = capsys.readouterr().err
    assert "\r" not in shown and shown.endswith("\n")
    frames = shown.splitlines()
    assert all(frame.startswith(f"fake:{job.id}: ") for frame in frames), frames
    statuses = ["validating", "queued", "running", "succeeded"]
    assert len(frames) <= len(statuses) + 2, frames  # + the first draw and the last, on close
    assert f"fake:{job.id}: succeeded [" in frames[-1]
    assert sum("succeeded" in frame for frame in frames) == 1, frames  # not drawn, then closed


def test_a_listing_limit_below_one_is_refused_everywhere(namespace: str) -> None:
    tuner = make_tuner(namespace)
    for listing in (tuner.remote_jobs, tuner.jobs):
        with pytest.raises(ValueError, match="limit must be at least 1, not 0"):
            listing(limit=0)
        # 2.5 reached SQLite, and came back as a RegistryError calling the file corrupt
        with pytest.raises(TypeError, match="limit is how many jobs to list, a whole number"):
            listing(limit=2.5)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("settings", "says"),
    [
        ({"poll_interval": 0}, "poll_interval must be more than 0"),
        ({"poll_interval": -1}, "poll_interval must be more than 0"),
        ({"timeout": -1}, "timeout must be 0 seconds or more"),
        ({"max_interval": -5}, "max_interval must be more than 0 seconds, not -5"),
        ({"timeout": "60"}, "timeout is a number of seconds, not '60'"),  # was: '>=' not ...
        ({"poll_interval": "5"}, "poll_interval is a number of seconds, not '5'"),
        ({"max_interval": True}, "max_interval is a number of seconds, not True"),
    ],
)
def test_wait_refuses_settings_that_would_hammer_or_never_poll(
    namespace: str, train: ft.Dataset, settings: dict[str, float], says: str
) -> None:
    job = make_tuner(namespace).fit(train)
    wrong = ValueError if " must be " in says else TypeError
    with pytest.raises(wrong, match=says):
        job.wait(**settings)  # type: ignore[arg-type]
    assert job.wait(timeout=5).status is ft.JobStatus.SUCCEEDED


def test_a_tuner_collected_inside_the_executors_lock_closes_without_waiting(
    namespace: str, train: ft.Dataset
) -> None:
    """The collector may run a dropped Tuner's finalizer in a thread that is inside
    ``ThreadPoolExecutor.submit``, holding the lock the Tuner's own loop needs to close its
    backend (``asyncio.to_thread``). Waiting there stalled that thread 15 s per Tuner."""
    import threading
    from concurrent.futures import thread as futures_thread

    tuner = make_tuner(namespace)
    tuner.fit(train)  # its loop thread is running
    loop_thread = tuner._loop._thread
    assert loop_thread is not None
    finished = threading.Event()
    with futures_thread._global_shutdown_lock:  # type: ignore[attr-defined]
        collector = threading.Thread(target=lambda: (tuner._closer(), finished.set()))
        collector.start()
        collector.join(timeout=3)
        assert finished.is_set()
    loop_thread.join(timeout=10)
    assert not loop_thread.is_alive()  # the loop stopped itself once the backend was closed


_ASYNC_CLOSE = """
class Closing(BaseBackend):
    name = "closing"

    async def aclose(self):
        await asyncio.sleep(0.3)  # a connection pool closing
        open(CLOSED, "w").write("closed")
"""
_SYNC_CLOSE = """
class Closing(FakeBackend):  # a synchronous backend, closed in a worker thread until exit
    name = "closing"

    def close(self):
        open(CLOSED, "w").write("closed")
"""


@pytest.mark.parametrize("backend", [_ASYNC_CLOSE, _SYNC_CLOSE], ids=["async", "sync"])
def test_a_tuner_left_open_at_exit_still_closes_its_backend(tmp_path: Path, backend: str) -> None:
    """At exit nothing else runs: the finalizer waits for the connections to close, and a
    synchronous backend is closed in place (no worker thread can start then)."""
    import subprocess
    import sys

    closed = tmp_path / "closed.txt"
    script = tmp_path / "left_open.py"
    script.write_text(
        "import asyncio\n"
        "import finetune as ft\n"
        "from finetune.backends import BaseBackend\n"
        "from finetune.testing import FakeBackend\n"
        f"CLOSED = {str(closed)!r}\n"
        f"{backend}\n"
        'ft.register_backend("closing", Closing)\n'
        'tuner = ft.Tuner("closing", model="m", registry=False)\n'
        "tuner.run(asyncio.sleep(0))  # its loop runs; the script ends without close()\n"
    )
    done = subprocess.run([sys.executable, str(script)], capture_output=True, timeout=120)
    assert (done.returncode, done.stderr.decode()) == (0, "")
    assert closed.read_text() == "closed"


def test_progress_with_no_stderr_is_no_bar_not_a_hang(tmp_path: Path) -> None:
    """Under pythonw, in a windowed app, or started with its stderr closed (`2>&-`), a process
    has `sys.stderr = None`: tqdm failed as it started and its half-made bar then deadlocked
    the garbage collector, so `wait(progress=True)` hung for good."""
    import subprocess
    import sys

    script = tmp_path / "no_stderr.py"
    script.write_text(
        "import sys\n"
        "sys.stderr = None\n"
        "import finetune as ft\n"
        "rows = [{'messages': [{'role': 'user', 'content': f'q{i}'},\n"
        "                      {'role': 'assistant', 'content': f'a{i}'}]} for i in range(12)]\n"
        "data = ft.Dataset.from_records(rows)\n"
        "tuner = ft.Tuner('fake', model='m', registry=False)\n"
        "print(tuner.fit(data).wait(progress=True, poll_interval=0.01).status.value)\n"
        "result = ft.evaluate(data, {'x': lambda m: 'a1'}, metrics=['exact_match'],\n"
        "                     progress=True, cache=False)\n"
        "print(result.summary()['x']['exact_match'].n)\n"
    )
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, timeout=60, env=child_env(tmp_path)
    )
    assert (done.returncode, done.stdout.decode().split()) == (0, ["succeeded", "12"])
    from finetune._progress import stderr_open

    closed = io.StringIO()
    closed.close()
    with pytest.MonkeyPatch.context() as patch:
        for stream in (None, closed):
            patch.setattr(sys, "stderr", stream)
            assert not stderr_open()


async def test_the_sync_face_works_inside_a_running_loop(namespace: str, train: ft.Dataset) -> None:
    # as in a notebook cell, where the kernel's event loop is running
    with make_tuner(namespace) as tuner:  # closed without any network call made
        assert tuner.validate(train).ok
    with make_tuner(namespace) as tuner:
        done = tuner.fit(train).wait(poll_interval=0.01, timeout=5)
        assert done.status is ft.JobStatus.SUCCEEDED


def test_both_faces_run_the_same_local_checks(namespace: str, train: ft.Dataset) -> None:
    """``validate`` and the local estimate are written once, for ``Tuner`` and
    ``AsyncTuner`` alike: the sync face kept a copy of ``validate``'s signature and had no
    ``estimate_locally``."""
    for name in ("validate", "estimate_locally"):
        assert getattr(ft.Tuner, name) is getattr(ft.AsyncTuner, name)
    with make_tuner(namespace) as tuner:
        local = tuner.estimate_locally(train, {"epochs": 2})
        assert local.epochs == 2 and local.tokens_total == tuner.estimate(train).tokens_total


async def test_async_fit_wait_succeeds(namespace: str, train: ft.Dataset) -> None:
    async with ft.AsyncTuner("fake", model="base-1", namespace=namespace, **FAST) as tuner:
        job = await tuner.fit(train)
        done = await job.wait(poll_interval=0.01, timeout=5)
        assert done.status is ft.JobStatus.SUCCEEDED
        assert job.model.name.startswith("ft:base-1")
        assert len(await job.metrics()) == 5
        assert await job.events()
        again = await tuner.job(job.id)
        assert again.status is ft.JobStatus.SUCCEEDED


async def test_async_fit_and_estimate_validate_off_the_event_loop(
    namespace: str, train: ft.Dataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Validating a large file takes seconds to minutes: a server's loop must not stall."""
    import threading

    where: list[threading.Thread] = []
    for name in ("validate", "estimate_locally"):
        counted = getattr(ft.AsyncTuner, name)

        def spied(self: ft.AsyncTuner, *args: Any, _real: Any = counted, **kwargs: Any) -> Any:
            where.append(threading.current_thread())
            return _real(self, *args, **kwargs)

        monkeypatch.setattr(ft.AsyncTuner, name, spied)
    async with ft.AsyncTuner("fake", model="b", namespace=namespace, **FAST) as tuner:
        await tuner.estimate(train)
        await tuner.fit(train)
    assert len(where) == 2 and threading.current_thread() not in where


async def test_async_jobs_reads_the_registry_off_the_event_loop(
    namespace: str, train: ft.Dataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    readers: list[threading.Thread] = []
    listed = ft.JobRegistry.list

    def spied(self: ft.JobRegistry, *args: Any, **kwargs: Any) -> Any:
        readers.append(threading.current_thread())
        return listed(self, *args, **kwargs)

    monkeypatch.setattr(ft.JobRegistry, "list", spied)
    async with ft.AsyncTuner("fake", model="b", namespace=namespace, **FAST) as tuner:
        job = await tuner.fit(train)
        (record,) = await tuner.jobs(limit=5)
    assert record.job_id == job.id
    assert readers and threading.current_thread() not in readers
    unrecorded = ft.AsyncTuner("fake", model="b", namespace=namespace, registry=False)
    assert await unrecorded.jobs() == []
    with pytest.raises(ValueError, match="limit must be at least 1"):
        await unrecorded.jobs(limit=0)


async def test_async_failure_cancel_timeout(namespace: str, train: ft.Dataset) -> None:
    failing = ft.AsyncTuner("fake", model="b", namespace=namespace, fail=FakeFailure(), **FAST)
    job = await failing.fit(train)
    with pytest.raises(ft.JobFailed):
        await job.wait(poll_interval=0.01, timeout=5)
    slow = ft.AsyncTuner("fake", model="c", namespace=namespace, **{**FAST, "running": 30})
    job = await slow.fit(train)
    with pytest.raises(ft.WaitTimeout):
        await job.wait(poll_interval=0.01, timeout=0.2)
    assert (await job.cancel()).status is ft.JobStatus.CANCELLED


async def test_async_rerun_reattaches(namespace: str, train: ft.Dataset) -> None:
    first = await ft.AsyncTuner("fake", model="b", namespace=namespace, **FAST).fit(train)
    results = await asyncio.gather(
        *(
            ft.AsyncTuner("fake", model="b", namespace=namespace, **FAST).fit(train)
            for _ in range(3)
        )
    )
    assert {r.id for r in results} == {first.id}
    assert not first.reattached and all(r.reattached for r in results)


def test_threaded_async_wrapper_for_sync_only_backends(namespace: str, train: ft.Dataset) -> None:
    class SyncOnly(FakeBackend):
        name = "sync-only"

    ft.register_backend("sync-only", SyncOnly)

    async def run() -> ft.Job:
        tuner = ft.AsyncTuner("sync-only", model="m", namespace=namespace, **FAST)
        job = await tuner.fit(train)
        return await job.wait(poll_interval=0.01, timeout=5)

    assert asyncio.run(run()).status is ft.JobStatus.SUCCEEDED


def test_a_plugins_check_request_refuses_an_estimate_and_a_fit_before_any_upload(
    namespace: str, train: ft.Dataset
) -> None:
    """``check_request``, the plugin hook that refuses with no network call what a create
    request cannot carry: ``estimate`` gives no figures for such a job, and the default
    ``preflight`` refuses its fit before the upload."""
    asked: list[dict[str, Any]] = []

    class NoColours(FakeBackend):
        def check_request(self, request: JobRequest) -> None:
            asked.append(dict(request.options))
            if "colour" in request.options:
                raise ft.UnsupportedFeature("no-colours takes no colour")

    backend = NoColours(namespace=namespace, **FAST)
    tuner = ft.Tuner(backend, model="m", registry=False)
    with pytest.raises(ft.UnsupportedFeature, match="takes no colour"):
        tuner.estimate(train, options={"colour": "red"})
    with pytest.raises(ft.UnsupportedFeature, match="takes no colour"):
        tuner.fit(train, options={"colour": "red"})
    assert backend.upload_count == 0 and backend.create_count == 0
    assert tuner.estimate(train, options={"size": 3}).examples == len(train)
    job = tuner.fit(train, options={"size": 3}).wait(poll_interval=0.01)
    assert job.status is ft.JobStatus.SUCCEEDED
    assert {"size": 3} in asked and backend.create_count == 1


def test_a_quote_hook_is_given_the_validation_set_and_options_where_it_takes_them(
    namespace: str, train: ft.Dataset
) -> None:
    """A provider whose quote covers its evaluations is given the validation set; a hook
    written without that parameter is still called as before; an invalid validation set is
    never sent to be priced."""
    seen: list[tuple[str, int | None]] = []

    class QuotesEvaluations(FakeBackend):
        def refine_estimate(
            self,
            dataset: ft.Dataset,
            estimate: ft.CostEstimate,
            hyperparameters: ft.Hyperparameters,
            *,
            validation: ft.Dataset | None = None,
        ) -> ft.CostEstimate:
            seen.append(("new", None if validation is None else len(validation)))
            return estimate.with_notes("quoted")

    class QuotesOptions(FakeBackend):
        def refine_estimate(
            self,
            dataset: ft.Dataset,
            estimate: ft.CostEstimate,
            hyperparameters: ft.Hyperparameters,
            **keywords: Any,
        ) -> ft.CostEstimate:
            return estimate.with_notes(f"given {sorted(keywords.items())}")

    given = ft.Tuner(QuotesOptions(namespace=namespace), model="m", registry=False)
    assert (
        "given [('options', {'full': True})]" in given.estimate(train, options={"full": True}).notes
    )
    assert "given []" in given.estimate(train, options={}).notes
    old_hook = ft.Tuner(QuotesEvaluations(namespace=namespace), model="m", registry=False)
    assert "quoted" in old_hook.estimate(train, options={"full": True}).notes  # not given them
    seen.clear()

    class QuotesTraining(FakeBackend):
        def refine_estimate(
            self,
            dataset: ft.Dataset,
            estimate: ft.CostEstimate,
            hyperparameters: ft.Hyperparameters,
        ) -> ft.CostEstimate:
            seen.append(("old", None))
            return estimate.with_notes("quoted")

    holdout = ft.Dataset.from_records([chat(i) for i in range(50, 53)])
    for backend in (QuotesEvaluations, QuotesTraining):
        tuner = ft.Tuner(backend(namespace=namespace), model="m", registry=False)
        assert "quoted" in tuner.estimate(train, validation=holdout).notes
        assert "quoted" in tuner.estimate(train).notes
    assert seen == [("new", 3), ("new", None), ("old", None), ("old", None)]
    broken = ft.Dataset.from_records([{"messages": [{"role": "user", "content": "no answer"}]}])
    tuner = ft.Tuner(QuotesEvaluations(namespace=namespace), model="m", registry=False)
    skipped = tuner.estimate(train, validation=broken)
    assert len(seen) == 4 and "quoted" not in skipped.notes
    assert any("the provider's quote was skipped: 1 validation error" in n for n in skipped.notes)


def test_an_estimate_carries_the_notes_a_backend_adds_of_the_job_it_prices(
    namespace: str, train: ft.Dataset
) -> None:
    """A backend had no way to add a line of its own to an estimate short of a provider's
    quote (``refine_estimate``), which ``estimate_locally`` never asks and which needs data
    without errors: the local backend had nowhere to say how long training takes."""

    class TellsItsPace(FakeBackend):
        def estimate_notes(self, request: JobRequest, estimate: ft.CostEstimate) -> list[str]:
            hyper = request.hyperparameters
            return [
                f"{request.method} of {request.base_model}, {hyper.epochs} epochs, "
                f"{request.options}: {estimate.billed_tokens} tokens"
            ]

    tuner = ft.Tuner(TellsItsPace(namespace=namespace), model="m", registry=False)
    params = ft.Hyperparameters(epochs=2)
    billed = tuner.estimate_locally(train, params).billed_tokens
    for estimate in (tuner.estimate_locally, tuner.estimate):
        notes = estimate(train, params, options={"size": 3}).notes
        assert notes[-1] == f"sft of m, 2 epochs, {{'size': 3}}: {billed} tokens"
    plain = ft.Tuner(FakeBackend(namespace=namespace), model="m", registry=False)
    assert plain.estimate_locally(train, params).notes == notes[:-1]  # by default: none


def test_a_token_counter_is_given_the_fits_options_where_it_takes_them(
    namespace: str, train: ft.Dataset
) -> None:
    """``validate``, ``estimate`` and ``fit`` count with the counter the fit's options ask
    for; a counter written without ``options`` is still called as before."""
    asked: list[Any] = []

    class CountsPerOptions(FakeBackend):
        def token_counter(
            self, model: str, options: Mapping[str, Any] | None = None
        ) -> TokenCounter:
            asked.append(options)
            return super().token_counter(model)

    tuner = ft.Tuner(CountsPerOptions(namespace=namespace, **FAST), model="m", registry=False)
    tuner.validate(train, options={"template": "a"})
    tuner.estimate(train, options={"template": "b"})
    tuner.estimate(train)
    tuner.fit(train, options={"template": "c"}).wait(poll_interval=0.01, timeout=5)
    assert asked == [{"template": "a"}, {"template": "b"}, None, {"template": "c"}]
    old = ft.Tuner(FakeBackend(namespace=namespace), model="m", registry=False)
    assert old.validate(train, options={"template": "a"}).ok


def test_a_backends_predictor_options_go_with_its_base_model(
    namespace: str, train: ft.Dataset
) -> None:
    """``tuner.base_model`` carries how the backend asks it (a sync plugin's hook, through
    the adapter), and so do its few-shot copies; a backend without the hook gives none
    but how it is reached (a fake's namespace)."""

    class AskedAsBuilt(FakeBackend):
        def predictor_options(self) -> dict[str, Any]:
            return {"chat_template": "{{ messages }}"}

    tuner = ft.Tuner(AskedAsBuilt(namespace=namespace, **FAST), model="m", registry=False)
    reached = {"namespace": namespace}
    assert tuner.base_model.asked_with == {**reached, "chat_template": "{{ messages }}"}
    assert tuner.base_model.with_few_shot(train, k=2).asked_with == tuner.base_model.asked_with
    plain = ft.Tuner(FakeBackend(namespace=namespace), model="m", registry=False)
    assert plain.base_model.asked_with == reached


def test_unknown_backend_lists_the_installed_ones() -> None:
    with pytest.raises(ft.BackendNotFound) as caught:
        ft.Tuner("nope")
    assert "fake" in caught.value.available and "openai" in str(caught.value)


def test_tuner_without_model_says_how(namespace: str, train: ft.Dataset, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r'model="\.\.\."\)$'):
        ft.Tuner("fake", namespace=namespace).fit(train)
    with pytest.raises(ValueError, match=r"\(finetune models --backend together lists the ones"):
        ft.Tuner("together", api_key="k" * 20).estimate_locally(train)


def test_backend_that_cannot_be_imported_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from importlib.metadata import EntryPoint

    import finetune.backends._plugins as base

    broken = EntryPoint("broken", "finetune_no_such_module:Backend", base.ENTRY_POINT_GROUP)
    monkeypatch.setattr(base, "_installed_entry_points", lambda: [broken])
    with pytest.raises(ft.FinetuneError, match="could not be imported"):
        ft.Tuner("broken")


@pytest.mark.parametrize(
    ("source", "said"),
    [
        ("import sys\nfrom __future__ import annotations\n", "SyntaxError: from __future__"),
        ("raise RuntimeError('no config file')\n", "RuntimeError: no config file"),
    ],
)
def test_a_plugin_whose_code_fails_as_it_is_imported_is_named_as_broken(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    source: str,
    said: str,
) -> None:
    """Only an ``ImportError`` was told: a plugin with a ``SyntaxError`` (or any error at
    import) crashed ``finetune backends`` itself with a traceback, hiding every other one."""
    from importlib.metadata import EntryPoint

    import finetune.backends._plugins as base
    from finetune.cli import main

    module = f"broken_plugin_{len(said)}"
    (tmp_path / f"{module}.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    broken = EntryPoint("broken", f"{module}:Backend", base.ENTRY_POINT_GROUP)
    monkeypatch.setattr(base, "_installed_entry_points", lambda: [broken])
    with pytest.raises(ft.FinetuneError) as caught:
        ft.Tuner("broken")
    assert str(caught.value).startswith(
        f"backend 'broken' is registered by '{module}:Backend', which failed as it was "
        f"imported ({said}"
    )
    assert str(caught.value).endswith(
        "the package that provides it is broken: upgrade or reinstall it"
    )
    assert main(["backends"]) == 0
    listed = capsys.readouterr().out
    assert "broken     -                   unavailable: backend 'broken'" in listed
    assert "\nfake " in listed  # the others are still listed


def test_ctrl_c_lets_the_coroutine_s_finally_blocks_end_before_it_is_raised() -> None:
    """``run`` promised that Ctrl-C cancels the coroutine "(its finally blocks run)", but
    re-raised at once: a progress bar's last line came after the command's "stopped
    waiting" message. A coroutine that never started is not waited for."""
    import _thread
    import asyncio
    import signal
    import threading

    from finetune._loop import LoopThread

    loop = LoopThread("test-loop")
    ended: list[str] = []

    async def waiting() -> None:
        try:
            await asyncio.sleep(30)
        finally:
            await asyncio.sleep(0.3)  # a bar closing, a file flushed
            ended.append("finally")

    # a suite started in the background ignores SIGINT, and interrupt_main then does nothing
    handler = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        threading.Timer(0.3, _thread.interrupt_main).start()
        with pytest.raises(KeyboardInterrupt):
            loop.run(waiting())
    finally:
        signal.signal(signal.SIGINT, handler)
    assert ended == ["finally"]
    loop.close()


def test_a_loop_closed_from_its_own_thread_finishes_the_last_coroutine() -> None:
    """A Tuner collected on its own loop thread still closes its connections there."""
    import asyncio
    import threading

    from finetune._loop import LoopThread

    loop = LoopThread("test-loop")
    closed = threading.Event()

    async def close_connections() -> None:
        await asyncio.sleep(0.05)
        closed.set()

    async def collected_here() -> threading.Thread:
        loop.close(close_connections())
        return threading.current_thread()

    thread = loop.run(collected_here())
    assert closed.wait(5)
    thread.join(5)
    assert not thread.is_alive() and not loop.started


def test_close_from_another_thread_cancels_a_wait_there_and_the_job_goes_on(
    namespace: str, train: ft.Dataset
) -> None:
    """A thread waiting on a job when another closed the Tuner waited forever (its call was
    left on a stopped loop), and the process could not exit."""
    import threading

    tuner = make_tuner(namespace, running=30.0)
    job = tuner.fit(train)
    said: list[BaseException] = []

    def wait_there() -> None:
        try:
            job.wait(poll_interval=0.05)
        except BaseException as error:
            said.append(error)

    waiter = threading.Thread(target=wait_there)
    waiter.start()
    time.sleep(0.3)
    tuner.close()
    waiter.join(timeout=10)
    assert not waiter.is_alive()
    assert isinstance(said[0], RuntimeError)
    assert "its Tuner was closed by another thread while this call ran" in str(said[0])
    assert job.refresh().status is ft.JobStatus.RUNNING  # the job goes on; the handle works
    tuner.close()


def test_close_leaves_a_backends_own_tasks_to_its_aclose() -> None:
    """Only the calls threads wait on are cancelled: a task a backend (or its SDK) runs on the
    loop for itself is still there for its ``aclose`` to stop."""
    import asyncio

    from finetune.backends import BaseBackend

    stopped: list[str] = []

    class Pooled(BaseBackend):
        name = "pooled"

        async def open_pool(self) -> None:
            self._stop = asyncio.Event()
            self._pool = asyncio.create_task(self._stop.wait())

        async def aclose(self) -> None:
            self._stop.set()
            await self._pool  # cancelled before this ran, it would raise here
            stopped.append("cleanly")

    tuner = ft.Tuner(Pooled(), model="m", registry=False)
    tuner.run(tuner.backend.open_pool())
    tuner.close()
    assert stopped == ["cleanly"]


def test_a_lock_that_cannot_be_made_names_the_setting_that_moves_it(
    namespace: str, train: ft.Dataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each said "point FINETUNE_REGISTRY elsewhere", also where the registry has no part:
    a Tuner without one (its locks are in the cache folder) and a GGUF model's conversion."""
    registry = tmp_path / "jobs.sqlite3"
    (tmp_path / "jobs.sqlite3.locks").write_text("a file where the locks folder goes")
    with pytest.raises(
        ft.StorageError, match="not a folder: move it away, or point FINETUNE_REGISTRY at a file"
    ):
        make_tuner(namespace, registry=registry).fit(train)
    monkeypatch.setenv("FINETUNE_CACHE_DIR", str(tmp_path / "jobs.sqlite3.locks" / "cache"))
    with pytest.raises(ft.StorageError, match="or point FINETUNE_CACHE_DIR at a writable folder"):
        make_tuner(namespace, registry=False).fit(train)


def test_a_call_whose_loop_thread_ends_under_it_raises_instead_of_waiting_forever() -> None:
    import asyncio

    from finetune._loop import LoopThread

    loop = LoopThread("test-loop")

    async def stop_the_loop_under_me() -> None:
        asyncio.get_running_loop().stop()  # as a crash of the loop thread would leave it
        await asyncio.sleep(3600)

    with pytest.raises(RuntimeError, match="loop thread stopped before this call ended"):
        loop.run(stop_the_loop_under_me())


def test_a_tuner_used_again_after_close_still_closes_when_dropped(namespace: str) -> None:
    """A call after close() reopens the loop thread and connections; dropping the Tuner
    then closes them, as it does for a Tuner never closed."""
    import gc
    import threading

    closes: list[str] = []

    class Counted(FakeBackend):
        name = "counted"

        def close(self) -> None:
            closes.append("closed")

    ft.register_backend("counted", Counted)
    tuner = ft.Tuner("counted", model="m", namespace=namespace, registry=False)
    tuner.remote_jobs()
    tuner.close()
    assert closes == ["closed"]
    assert tuner.remote_jobs() == []
    thread = next(t for t in threading.enumerate() if t.name == "finetune-counted")
    del tuner
    gc.collect()
    thread.join(5)
    assert not thread.is_alive()
    assert closes == ["closed", "closed"]


def test_a_registry_given_as_a_path_keeps_the_jobs_in_that_file(
    namespace: str, train: ft.Dataset, tmp_path: Path
) -> None:
    """``registry="runs/jobs.sqlite"`` was kept as the string and broke at the first fit
    (``'str' object has no attribute 'locks_dir'``), once validation had run."""
    where = tmp_path / "runs" / "jobs.sqlite"
    for given in (str(where), where):
        tuner = make_tuner(namespace, registry=given)
        assert tuner.registry is not None and tuner.registry.path == where
    job = tuner.fit(train)
    assert [record.job_id for record in ft.JobRegistry(where).list()] == [job.id]
    with pytest.raises(TypeError, match="registry is a JobRegistry, the path of its file, or"):
        make_tuner(namespace, registry=5)


def test_a_tuner_takes_a_model_path_and_refuses_wrong_arguments_where_they_are_given(
    namespace: str, train: ft.Dataset, tmp_path: Path
) -> None:
    """``model=Path(...)`` (a local folder or GGUF file) broke the first call with
    ``'PosixPath' object has no attribute 'startswith'``; ``model=5`` and a backend class
    failed the same way, later; ``create_grace="5"`` and ``-1`` were kept."""
    tuner = ft.Tuner("fake", tmp_path / "base-folder", namespace=namespace, **FAST)
    assert tuner.model == str(tmp_path / "base-folder")
    assert tuner.fit(train).job.base_model == str(tmp_path / "base-folder")
    refusals: list[tuple[dict[str, Any], type[Exception], str]] = [
        ({"create_grace": "5"}, TypeError, "create_grace is a number of seconds, not '5'"),
        ({"create_grace": -1}, ValueError, "create_grace is 0 seconds or more, not -1"),
    ]
    for settings, error, says in refusals:
        with pytest.raises(error, match=says):
            make_tuner(namespace, **settings)
    with pytest.raises(TypeError, match=r"model is the base model's name or path \(or a job's "):
        ft.Tuner("fake", 5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"backend FakeBackend is a class: give an instance"):
        ft.Tuner(FakeBackend, model="base")
    with pytest.raises(TypeError, match=r"backend is a backend's name .* not int 5"):
        ft.Tuner(5, model="base")


def test_a_model_name_pasted_with_white_space_around_it_is_refused_naming_both(
    tmp_path: Path,
) -> None:
    """``model="gpt-4.1-mini\\n"`` (a shell variable, a config value) went to the provider,
    or was looked for as a folder: "not a model folder or .gguf file here"."""
    for given in ("gpt-4.1-mini\n", " demo/base-model", "m "):
        with pytest.raises(ValueError, match=re.escape(f"give {given.strip()!r}")):
            ft.Tuner("fake", model=given)
    tuner = ft.Tuner("fake", model="m")
    with pytest.raises(ValueError, match="has white space around it"):
        tuner.model = "m\t"
    with pytest.raises(ValueError, match="no model given"):
        ft.Tuner("hf", model="   ").validate(ft.Dataset.from_records([]))
    spaced = tmp_path / "a model "  # a folder named so is taken as it is
    spaced.mkdir()
    assert ft.Tuner("fake", model=str(spaced)).model == str(spaced)


def test_a_job_s_model_is_a_base_model_to_train_further(namespace: str, train: ft.Dataset) -> None:
    """``ft.Tuner("hf", model=job.model)``, to train a tuned model further (a local adapter,
    an OpenAI ``ft:`` model), was ``TypeError: model is the base model's name or path, not
    ModelRef``: the docs said to pass ``job.model``."""
    first = make_tuner(namespace).fit(train)
    first.wait(poll_interval=0.01)
    tuner = ft.Tuner("fake", first.model, namespace=namespace, **FAST)
    assert tuner.model == first.model.name
    assert tuner.fit(train).job.base_model == first.model.name
    assert tuner.validate(train, model=first.model).ok
    assert ft.Tuner("hf", model=ft.ModelRef.gguf("/m/a.gguf")).model == "/m/a.gguf"
    served = ft.ModelRef.openai_compatible("http://127.0.0.1:9/v1", "acme")
    refusals = [
        ("hf", first.model, r"is on fake: Tuner\('hf'\) trains the models hf holds \(train it "),
        ("fake", first.model.with_few_shot(train, k=2), r"is a few-shot prompt: train the model"),
        ("hf", served, r"served at http://127.0.0.1:9/v1, where nothing is trained"),
    ]
    for backend, model, says in refusals:
        with pytest.raises(ValueError, match=says):
            ft.Tuner(backend, model=model)


@pytest.mark.parametrize(
    ("keywords", "says"),
    [
        ({"skip_validation": "no"}, "skip_validation is True or False, not str 'no'"),
        ({"suffix": 5}, "suffix is text, not int 5"),
        ({"metadata": "team=search"}, "metadata is a dict of text to text, not str"),
        ({"options": "fast"}, "options is a dict of the backend's options, not str"),
        ({"integrations": "wandb"}, r"integrations is a list of dicts, as \[\{'type': 'wandb'"),
        ({"integrations": ["wandb"]}, r"integrations is a list of dicts"),
        ({"validation": [{"prompt": "q", "completion": "a"}]}, r"validation is a ft.Dataset, not"),
        (  # a fraction to hold out, as other tools take it
            {"validation": 0.1},
            r"not float: to hold some out, train, valid = data\.split\(test_size=0\.1, seed=0\)",
        ),
        (  # second, as estimate(data, hyperparameters) takes them
            {"validation": ft.Hyperparameters(epochs=2)},
            r"not Hyperparameters: the second argument is the validation set, and settings go "
            r"by name: fit\(train, hyperparameters=\.\.\.\)",
        ),
        (
            {"validation": ft.LoRA(r=8)},
            r"not LoRA: .* fit\(train, hyperparameters=ft\.Hyperparameters\(lora=\.\.\.\)\)",
        ),
        ({"validation": {"epochs": 2}}, r"not dict: the second argument is the validation set"),
    ],
)
def test_a_fit_keyword_of_the_wrong_type_is_a_type_error_naming_it(
    namespace: str, train: ft.Dataset, keywords: dict[str, Any], says: str
) -> None:
    """``skip_validation="no"`` skipped validation (a string is true); the others failed as
    ``AttributeError``, ``dict()``'s ``ValueError`` or pydantic's five-error dump."""
    tuner = make_tuner(namespace)
    with pytest.raises(TypeError, match=says):
        tuner.fit(train, **keywords)
    assert FakeBackend(namespace=namespace).upload_count == 0 and not tuner.remote_jobs()


@pytest.mark.parametrize(
    ("keywords", "says"),
    [
        ({"epochs": 3}, "['epochs'] ('epochs' is ft.Hyperparameters(epochs=...)); it takes"),
        ({"lr": 1e-4}, "['lr'] ('lr' is ft.Hyperparameters(learning_rate=...)); it takes"),
        ({"sufix": "x"}, "['sufix'] (did you mean 'suffix'?); it takes"),
        ({"validation_file": "x"}, "['validation_file'] (did you mean 'validation'?); it takes"),
    ],
)
def test_a_fit_keyword_it_does_not_take_is_shown_what_was_meant(
    namespace: str, train: ft.Dataset, keywords: dict[str, Any], says: str
) -> None:
    """``fit(train, epochs=3)`` was told only the list of the keywords fit takes."""
    tuner = make_tuner(namespace)
    with pytest.raises(
        TypeError, match=re.escape(f"fit() got unexpected keyword argument(s) {says}")
    ):
        tuner.fit(train, **keywords)
    assert FakeBackend(namespace=namespace).upload_count == 0


@pytest.mark.parametrize(
    ("call", "says"),
    [
        (
            lambda tuner, data: tuner.estimate(data, epochs=3),
            "estimate() got unexpected keyword argument(s) ['epochs'] "
            "('epochs' is ft.Hyperparameters(epochs=...)); it takes ['hyperparameters', 'model', "
            "'options', 'price_per_million', 'validation']",
        ),
        (
            lambda tuner, data: tuner.estimate_locally(data, price_per_milion=1.0),
            "estimate_locally() got unexpected keyword argument(s) ['price_per_milion'] "
            "(did you mean 'price_per_million'?)",
        ),
        (
            lambda tuner, data: tuner.validate(data, validation_set=data),
            "validate() got unexpected keyword argument(s) ['validation_set'] "
            "(did you mean 'validation'?); it takes ['model', 'options', 'validation']",
        ),
        (  # validate takes no hyperparameters: none is suggested
            lambda tuner, data: tuner.validate(data, epochs=3),
            "validate() got unexpected keyword argument(s) ['epochs']; it takes",
        ),
    ],
)
async def test_estimate_and_validate_keywords_they_do_not_take_are_shown_what_was_meant(
    namespace: str, train: ft.Dataset, call: Any, says: str
) -> None:
    """``tuner.estimate(train, epochs=3)`` was Python's bare "got an unexpected keyword
    argument 'epochs'", where ``fit`` said ``ft.Hyperparameters(epochs=...)``."""
    with pytest.raises(TypeError, match=re.escape(says)):
        call(make_tuner(namespace), train)
    async with ft.AsyncTuner("fake", model="m", namespace=namespace) as tuner:
        with pytest.raises(TypeError, match=re.escape(says)):
            await _awaited(call(tuner, train))


async def _awaited(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


def test_a_first_row_of_no_kind_is_a_validation_error_among_the_others(namespace: str) -> None:
    """A fit whose first row was no example (a Dolly row) raised that row's error alone
    (before this release, "the dataset is empty"), never the report of every row."""
    dolly = {"instruction": "Sum them.", "response": "4", "category": "qa"}
    rows = [dolly, *(chat(i) for i in range(20)), {**dolly, "instruction": "Again."}]
    tuner = make_tuner(namespace)
    with pytest.raises(ft.ValidationFailed) as failed:
        tuner.fit(ft.Dataset.from_records(rows))
    assert failed.value.report.lines("unknown_format") == [1, 22]
    with pytest.raises(ft.DatasetError, match=r"^records:1: cannot tell the example kind"):
        tuner.fit(ft.Dataset.from_records(rows), skip_validation=True)
    with pytest.raises(ft.DatasetError, match="the dataset is empty"):
        tuner.fit(ft.Dataset.from_records([]))
    assert FakeBackend(namespace=namespace).upload_count == 0 and not tuner.remote_jobs()


def test_data_given_as_a_path_or_a_list_is_shown_how_to_make_a_dataset(
    namespace: str, train: ft.Dataset, tmp_path: Path
) -> None:
    """``tuner.validate("data.jsonl")`` was ``'str' object has no attribute 'name'``, and
    ``ft.evaluate("data.jsonl", ...)`` read the path's characters as examples."""
    tuner = make_tuner(namespace)
    path = str(tmp_path / "data.jsonl")
    from_path = re.escape(f"not str: ft.Dataset.from_jsonl({path!r})")
    for call in (tuner.validate, tuner.estimate, tuner.fit):
        with pytest.raises(TypeError, match=from_path):
            call(path)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match=r"not list: ft.Dataset.from_records\(rows\)"):
            call(list(train))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=f"the data to evaluate is a ft.Dataset, {from_path}"):
        ft.evaluate(path, {"echo": lambda messages: "x"}, "exact_match", cache=False)  # type: ignore[arg-type]


def test_numpy_whole_numbers_are_taken_where_python_ones_are(
    namespace: str, train: ft.Dataset, tmp_path: Path
) -> None:
    """A count computed in a notebook is often NumPy's: ``jobs(limit=np.int64(3))`` was a
    RegistryError blaming the file's permissions (SQLite cannot bind it), and
    ``attempts=np.int64(3)`` was refused as not 1 or more."""
    np = pytest.importorskip("numpy")
    tuner = make_tuner(namespace)
    job = tuner.fit(train)
    assert [r.job_id for r in tuner.jobs(limit=np.int64(3))] == [job.id]
    assert [j.id for j in tuner.remote_jobs(limit=np.int64(3))] == [job.id]
    hosted = ft.Tuner("openai", model="gpt-4.1-mini-2025-04-14", api_key="k", attempts=np.int64(3))
    assert hosted.backend.attempts == 3 and type(hosted.backend.attempts) is int
    data = tmp_path / "train.jsonl"
    train.to_jsonl(data)
    assert len(ft.Dataset.from_jsonl(data, max_line_bytes=np.int64(10_000))) == len(train)
    assert list(train.split(0.25, seed=np.int64(7))[1]) == list(train.split(0.25, seed=7)[1])
    assert list(train.sample(np.int64(3), seed=np.int64(2))) == list(train.sample(3, seed=2))
    with pytest.raises(TypeError, match="seed is a whole number, not '7'"):
        train.sample(3, seed="7")  # type: ignore[arg-type]
    priced = tuner.estimate(train, price_per_million=np.float32(2.0))  # was "not 0 or more"
    assert priced == tuner.estimate(train, price_per_million=2.0)
    waits = {"first_wait": np.int64(1), "retry_after_cap": np.float32(30.0)}  # were refused
    ft.Tuner("openai", model="gpt-4.1-mini-2025-04-14", api_key="k", **waits).close()
    numpy_extra = ft.Hyperparameters(extra={"max_steps": np.int64(2)})  # was a serializer error
    assert tuner.fit(train, hyperparameters=numpy_extra).job.hyperparameters == numpy_extra


@pytest.mark.parametrize(("seen", "status"), [(400, "running"), (460, "succeeded")])
def test_a_bar_that_joins_a_job_late_counts_no_speed_from_the_steps_done_before(
    seen: int, status: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """``finetune wait`` on a job half done, or a demo re-run that re-attaches to its ended
    job, showed ``37132.02step/s`` and no time left: the steps done before it looked, as if
    made in the instant since it started."""
    from finetune._progress import JobProgress

    job = ft.Job(
        id="hfjob-late",
        backend="hf",
        base_model="m",
        status=ft.JobStatus(status),
        raw={"step": seen, "max_steps": 460},
    )
    bar = JobProgress(True, job)
    bar.update(job)
    bar.close()
    last = capsys.readouterr().err.splitlines()[-1]
    assert f"{seen}/460" in last and "?step/s" in last, last


def test_a_bar_in_a_log_for_a_job_already_ended_is_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``finetune wait`` on an ended job, its stderr a log, printed the waiting frame
    (``succeeded [00:00]``) and then the final one."""
    from finetune._progress import JobProgress

    raw = {"step": 5, "max_steps": 5}
    job = ft.Job(id="j", backend="hf", base_model="m", status=ft.JobStatus.SUCCEEDED, raw=raw)
    bar = JobProgress(True, job)
    bar.update(job)
    bar.close()
    assert capsys.readouterr().err.splitlines() == [
        "hf:j: 100%|██████████| 5/5 [00:00<?, ?step/s, succeeded]"
    ]
    running = job.model_copy(update={"status": ft.JobStatus.RUNNING})
    bar = JobProgress(True, running)  # a running job's first frame is drawn as it is made
    assert capsys.readouterr().err == "hf:j: running [00:00]\n"
    bar.close()


def test_a_bar_times_the_steps_from_when_it_first_saw_them(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A bar made while the job was queued counted the minutes of queueing and model loading
    as the time of the steps it saw after: ``14/14 [00:06, 2.09s/step]`` for a job that made
    a step every half second."""
    from finetune._progress import JobProgress

    def job(status: str, step: int | None = None) -> ft.Job:
        raw = {} if step is None else {"step": step, "max_steps": 100}
        return ft.Job(id="j", backend="hf", base_model="m", status=ft.JobStatus(status), raw=raw)

    bar = JobProgress(True, job("queued"))
    clock = [0.0]
    bar._bar._time = lambda: clock[0]  # type: ignore[union-attr]
    bar._bar.start_t = bar._bar.last_print_t = 0.0  # type: ignore[union-attr]
    clock[0] = 100.0  # queued, then the model loads: no steps yet
    bar.update(job("running", 10))  # its first count, at step 10
    clock[0] = 110.0
    bar.update(job("running", 20))
    bar.close()  # a log's last frame
    last = capsys.readouterr().err.splitlines()[-1]
    assert "20/100 [00:10<01:20,  1.00step/s, running]" in last, last
