"""Beyond one machine: two "machines" on this one (torchrun, c10d rendezvous on 127.0.0.1,
one process each, gloo on CPU), and a local Ray cluster."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import finetune as ft
from finetune.backends.hf import HFBackend
from finetune.backends.hf._jobdir import process_tree
from finetune.backends.hf._launch import free_port

pytestmark = pytest.mark.hf
pytest.importorskip("trl")

# the loss of a step on two machines against one process with the same global batch: same
# examples, same order; only the order of floating-point sums differs
LOSS_TOLERANCE = 0.02


def _train(
    jobs_dir: Path, base: str, data: ft.Dataset, batch: int, steps: int = 0, **options: Any
) -> ft.JobHandle:
    tuner = ft.Tuner(HFBackend(jobs_dir=jobs_dir, **options), model=base, registry=False)
    settings = {"max_length": 96, "full_finetune": True, "logging_steps": 1}
    if steps:
        settings["max_steps"] = steps
    return tuner.fit(
        data,
        hyperparameters=ft.Hyperparameters(epochs=1, batch_size=batch, seed=3),
        options=settings,
    )


def _machine(rank: int, port: int, **more: Any) -> dict[str, Any]:
    return {
        "launcher": "torchrun",
        "num_machines": 2,
        "machine_rank": rank,
        "main_process_ip": "127.0.0.1",
        "main_process_port": port,
        "rdzv_backend": "c10d",
        **more,
    }


def _losses(job: ft.JobHandle) -> list[float]:
    return [p.train_loss for p in job.metrics() if p.train_loss is not None]


def test_two_machines_train_as_one_with_half_the_steps(
    tmp_path: Path, tiny_base: str, rows: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setenv("TMPDIR", str(temp))  # the workers' temporary folder
    data = ft.Dataset.from_records(rows[:64])
    single = _train(tmp_path / "single", tiny_base, data, batch=8)
    single.wait(poll_interval=0.3, timeout=240)
    assert single.job.status is ft.JobStatus.SUCCEEDED

    port = free_port()
    first = _train(tmp_path / "machine-0", tiny_base, data, batch=4, **_machine(0, port))
    second = _train(tmp_path / "machine-1", tiny_base, data, batch=4, **_machine(1, port))
    assert first.id == second.id  # both machines derive the job id from the fit
    first.wait(poll_interval=0.3, timeout=300)
    second.wait(poll_interval=0.3, timeout=60)
    main, other = (first, second) if first.job.raw.get("main_node") else (second, first)
    assert main.job.status is ft.JobStatus.SUCCEEDED and main.job.raw["world_size"] == 2
    steps = [p.step for p in main.metrics()]
    assert max(steps) == 8  # 64 examples / (4 per process x 2): half of 16 for one process
    assert max(p.step for p in single.metrics()) == 8  # one process, global batch 8
    for ours, reference in zip(_losses(main), _losses(single), strict=True):
        assert abs(ours - reference) < LOSS_TOLERANCE
    assert Path(main.model.name, "model.safetensors").exists()
    assert other.job.status is ft.JobStatus.SUCCEEDED and other.job.fine_tuned_model is None
    assert any("model is saved on 127.0.0.1" in e.message for e in other.events())
    # torch's elastic agent made a torchelastic_* folder in /tmp for every launch, and left it
    assert not list(temp.glob("torchelastic_*"))
    assert list(Path(main.job.raw["job_dir"], "launcher-logs").glob("hfjob-*"))


def test_a_machine_that_dies_fails_the_job_on_the_other(
    tmp_path: Path, tiny_base: str, rows: list[Any]
) -> None:
    data = ft.Dataset.from_records(rows[:64])
    port = free_port()
    more = {"collective_timeout": 60}
    first = _train(tmp_path / "m0", tiny_base, data, 2, 5000, **_machine(0, port, **more))
    second = _train(tmp_path / "m1", tiny_base, data, 2, 5000, **_machine(1, port, **more))
    deadline = time.monotonic() + 240
    while (first.refresh().raw or {}).get("step", 0) < 3 and time.monotonic() < deadline:
        time.sleep(0.3)
    victim, survivor = (second, first) if first.job.raw.get("main_node") else (first, second)
    worker = json.loads(Path(victim.job.raw["job_dir"], "worker.json").read_text())
    killed = time.monotonic()
    for pid in process_tree(worker["pid"]):  # the machine dies: its launcher and its worker
        os.kill(pid, signal.SIGKILL)
    with pytest.raises(ft.JobFailed):
        survivor.wait(poll_interval=0.3, timeout=150)
    assert survivor.job.status is ft.JobStatus.FAILED
    assert time.monotonic() - killed < 150  # no hang: the collective fails or times out
    error = survivor.job.error
    assert error is not None and "resume() on every machine" in error.message


@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="Ray is not installed")
def test_a_ray_cluster_that_is_not_there_fails_the_job_with_what_to_do(
    tmp_path: Path, tiny_base: str, rows: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``ray_address="auto"`` with no cluster running was a ``worker_lost`` job ("killed,
    crashed, out of disk or a restart") whose advice, resume(), fails the same way."""
    from ray._private.services import find_gcs_addresses  # "auto" joins any running here

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    deadline = time.monotonic() + 10  # a Ray instance shutting down (this file's is after)
    while find_gcs_addresses() and time.monotonic() < deadline:
        time.sleep(0.5)
    if find_gcs_addresses():
        pytest.skip("a Ray cluster runs on this machine, which ray_address='auto' would join")
    data = ft.Dataset.from_records(rows[:8])
    job = _train(tmp_path / "ray", tiny_base, data, batch=4, launcher="ray", ray_address="auto")
    with pytest.raises(ft.JobFailed):
        job.wait(poll_interval=0.3, timeout=120)
    error = job.job.error
    assert error is not None and error.code == "ray_unreachable"
    assert "ray_address='auto'" in error.message and "ray start --head" in error.message


@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="Ray is not installed")
def test_a_local_ray_cluster_trains_with_two_workers(
    tmp_path: Path, tiny_base: str, rows: list[Any]
) -> None:
    data = ft.Dataset.from_records(rows[:64])
    job = _train(tmp_path / "ray", tiny_base, data, batch=4, launcher="ray", num_processes=2)
    job.wait(poll_interval=0.5, timeout=400)
    assert job.job.status is ft.JobStatus.SUCCEEDED, HFBackend(
        jobs_dir=tmp_path / "ray"
    ).worker_log(job.id)
    assert job.job.raw["world_size"] == 2
    assert max(p.step for p in job.metrics()) == 8  # 64 / (4 x 2 workers)
    assert Path(job.model.name, "model.safetensors").exists()


def test_a_ray_whose_train_module_cannot_be_imported_fails_the_job_saying_so(
    tmp_path: Path, tiny_base: str, rows: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ray installed without what Ray Train imports: the job was ``worker_lost``."""
    broken = tmp_path / "site" / "ray"
    (broken / "train").mkdir(parents=True)
    (broken / "__init__.py").write_text("")
    (broken / "train" / "__init__.py").write_text(
        "raise ImportError(\"No module named 'pyarrow'\")"
    )
    paths = [str(tmp_path / "site"), os.environ.get("PYTHONPATH", "")]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, paths)))
    job = _train(tmp_path / "jobs", tiny_base, ft.Dataset.from_records(rows[:8]), 4, launcher="ray")
    with pytest.raises(ft.JobFailed):
        job.wait(poll_interval=0.2, timeout=60)
    error = job.job.error
    assert error is not None and error.code == "missing_dependency"
    assert "No module named 'pyarrow'" in error.message and "finetune[ray]" in error.message


def test_launcher_ray_without_ray_is_refused_before_the_job_starts(
    tmp_path: Path, tiny_base: str, rows: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *more: None if name == "ray" else real_find_spec(name, *more),
    )
    with pytest.raises(ft.MissingDependency, match=r"for launcher='ray'.*finetune\[ray\]"):
        _train(tmp_path / "ray", tiny_base, ft.Dataset.from_records(rows[:8]), 4, launcher="ray")
    assert not list((tmp_path / "ray").glob("hfjob-*"))


def test_generated_configs_say_what_they_do(tmp_path: Path) -> None:
    from finetune.backends.hf._config import parse_options
    from finetune.backends.hf._launch import accelerate_config_text, torchrun_arguments

    options = parse_options(_machine(1, 29500, rdzv_backend="static", num_processes=4))
    assert torchrun_arguments(tmp_path / "hfjob-x", options) == [
        "--nnodes", "2", "--log-dir", str(tmp_path / "hfjob-x" / "launcher-logs"),
        "--nproc_per_node", "4", "--node_rank", "1",
        "--master_addr", "127.0.0.1", "--master_port", "29500",
    ]  # fmt: skip
    c10d = parse_options(_machine(0, 29500))
    assert torchrun_arguments(tmp_path / "hfjob-x", c10d)[-6:] == [
        "--rdzv_backend", "c10d", "--rdzv_endpoint", "127.0.0.1:29500", "--rdzv_id", "hfjob-x",
    ]  # fmt: skip
    text = accelerate_config_text(
        parse_options(
            {**_machine(1, 29500), "launcher": "accelerate", "strategy": "deepspeed-zero3"}
        ),
        0,
    )
    for line in (
        "distributed_type: DEEPSPEED",
        "num_machines: 2",
        "machine_rank: 1",
        "main_process_ip: 127.0.0.1",
        "  zero_stage: 3",
        "  zero3_save_16bit_model: true",
    ):
        assert line in text.splitlines()
    fsdp = accelerate_config_text(
        parse_options({"launcher": "accelerate", "num_processes": 2, "strategy": "fsdp"}), 4242
    )
    for line in (
        "distributed_type: FSDP",
        "num_processes: 2",
        "main_process_port: 4242",
        "  fsdp_version: 2",
        "  fsdp_auto_wrap_policy: TRANSFORMER_BASED_WRAP",
    ):
        assert line in fsdp.splitlines()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"num_machines": 2, "launcher": "torchrun"}, "main_process_ip"),
        ({"num_machines": 2}, "launcher='torchrun'"),
        ({**_machine(2, 1)}, "machine_rank 2"),
        ({"launcher": "torchrun", "machine_rank": 1}, "machine_rank 1 is not below num_machines 1"),
        ({"save_total_limit": 0}, "save_total_limit: not 0"),
        ({"num_processes": 2}, "launcher="),
        ({"launcher": "accelerate", "strategy": "deepspeed-zero2"}, "needs CUDA"),
        ({"launcher": "accelerate", "strategy": "fsdp"}, "needs CUDA"),
        ({"strategy": "fsdp"}, "launcher='accelerate'"),
        ({"device": "cuda"}, "device='cuda' asks for a GPU, and torch sees no CUDA device"),
        ({"device": "cuda:0"}, "device='cuda:0' asks for a GPU, and torch sees no CUDA device"),
        ({"device": "cuda:1", "launcher": "torchrun"}, "picks one GPU for launcher='python'"),
        ({"quantization": "4bit"}, "bitsandbytes on a CUDA GPU, and torch sees none here"),
        ({"precision": "fp16"}, "precision='fp16' needs a CUDA GPU"),
        ({"precision": "fp16", "device": "cpu"}, "precision='fp16' needs a CUDA GPU"),
        ({"launcher": "accelerate", "accelerate_config": "none.yaml"}, "none.yaml': no such file"),
        ({"launcher": "accelerate", "accelerate_config": "."}, "a folder, not a file"),
        ({"accelerate_config": "my.yaml"}, "read by launcher='accelerate', not 'python'"),
        ({"ray_address": "auto"}, "ray_address is read by launcher='ray', not 'python'"),
        ({"launcher": "torchrun", "use_gpu": False}, "use_gpu is read by launcher='ray'"),
        ({"launcher": "torchrun", "main_process_ip": "10.0.0.1"}, "main_process_ip is read when"),
        ({"launcher": "accelerate", "main_process_port": 29500}, "main_process_port is read"),
        ({"launcher": "torchrun", "rdzv_backend": "c10d"}, "rdzv_backend is read when several"),
    ],
)
def test_impossible_placements_are_refused_before_anything_starts(
    tmp_path: Path, tiny_base: str, rows: list[Any], options: dict[str, Any], message: str
) -> None:
    import torch

    if torch.cuda.is_available() and "CUDA" in message:
        pytest.skip("this machine has CUDA")
    tuner = ft.Tuner(HFBackend(jobs_dir=tmp_path / "jobs"), model=tiny_base, registry=False)
    with pytest.raises(ft.InvalidRequestError, match=message):
        tuner.fit(ft.Dataset.from_records(rows[:8]), options=options, skip_validation=True)
    assert not (tmp_path / "jobs").exists() or not list((tmp_path / "jobs").glob("hfjob-*"))


def test_one_gpu_by_its_index_is_the_one_the_worker_sees() -> None:
    """``device="cuda:1"`` starts the worker with ``CUDA_VISIBLE_DEVICES`` naming that GPU
    (counted among those already visible), and is refused past the GPUs torch sees."""
    from finetune.backends.hf._config import parse_options
    from finetune.backends.hf._launch import check_device, device_environment

    one = parse_options({"device": "cuda:1"})
    assert device_environment(one, {}) == {"CUDA_VISIBLE_DEVICES": "1"}
    assert device_environment(one, {"CUDA_VISIBLE_DEVICES": "4, 6"}) == {
        "CUDA_VISIBLE_DEVICES": "6"
    }
    with pytest.raises(ft.InvalidRequestError, match="CUDA_VISIBLE_DEVICES=4 shows 1 device"):
        device_environment(one, {"CUDA_VISIBLE_DEVICES": "4"})
    for device in ("auto", "cpu", "cuda"):
        assert device_environment(parse_options({"device": device}), {}) == {}
    check_device(one, cuda_devices=2)
    with pytest.raises(ft.InvalidRequestError, match="sees 1 CUDA device here, cuda:0 to cuda:0"):
        check_device(one, cuda_devices=1)
    check_device(parse_options({"device": "cuda", "launcher": "ray"}), cuda_devices=0)  # use_gpu


def test_jobs_at_once_are_a_warning_on_the_cpu_only() -> None:
    """A GPU trains its own job (unless ``device="cpu"`` asks for the CPU), Ray places its
    own workers, and a process given ``OMP_NUM_THREADS`` has been given its share: none of
    them hears of the others."""
    from finetune.backends.hf._config import parse_options
    from finetune.backends.hf._launch import shared_cores_note, shares_cores

    auto, cpu = parse_options({}), parse_options({"device": "cpu"})
    said = shared_cores_note(["hfjob-a"])
    assert said.startswith("1 other local job (hfjob-a) still training")
    assert shares_cores(auto, cuda_devices=0, environ={})
    assert not shares_cores(auto, cuda_devices=1, environ={})
    assert shares_cores(cpu, cuda_devices=1, environ={})
    ray = parse_options({"launcher": "ray"})
    assert not shares_cores(ray, cuda_devices=0, environ={})
    assert not shares_cores(auto, cuda_devices=0, environ={"OMP_NUM_THREADS": "1"})


def test_a_deepspeed_strategy_without_deepspeed_names_the_package_itself(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """It said ``pip install "finetune[hf]"``, which does not install DeepSpeed."""
    from finetune.backends.hf._config import parse_options
    from finetune.backends.hf._launch import check_strategy

    monkeypatch.setitem(sys.modules, "deepspeed", None)  # as if not installed
    options = parse_options({"launcher": "accelerate", "strategy": "deepspeed-zero3"})
    with pytest.raises(ft.MissingDependency) as missing:
        check_strategy(options, cuda_available=True)  # as on a GPU machine
    assert str(missing.value) == (
        "deepspeed is not installed for strategy='deepspeed-zero3'. "
        "Install it with: pip install deepspeed"
    )


def test_qlora_is_refused_before_the_job_where_no_gpu_can_run_it(
    tmp_path: Path, tiny_base: str, rows: list[Any]
) -> None:
    """A LoRA with ``quantize_4bit`` started a job whose worker then failed: QLoRA loads the
    base with bitsandbytes, on a CUDA GPU only."""

    import torch

    from finetune.backends.hf._config import parse_options
    from finetune.backends.hf._launch import check_quantization

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    tuner = ft.Tuner(HFBackend(jobs_dir=tmp_path / "jobs"), model=tiny_base, registry=False)
    qlora = ft.Hyperparameters(lora=ft.LoRA(quantize_4bit=True))
    with pytest.raises(ft.InvalidRequestError, match=r"quantization='4bit' \(QLoRA\)") as caught:
        tuner.fit(ft.Dataset.from_records(rows[:8]), hyperparameters=qlora, skip_validation=True)
    assert caught.value.param == "quantization"
    assert not list((tmp_path / "jobs").glob("hfjob-*"))
    on_cpu = parse_options({"device": "cpu"})
    with pytest.raises(ft.InvalidRequestError, match="device='cpu' keeps it off the GPU"):
        check_quantization("8bit", on_cpu, cuda_devices=1)
    check_quantization(None, on_cpu, cuda_devices=0)  # full precision: nothing to check
    if importlib.util.find_spec("bitsandbytes") is None:
        with pytest.raises(ft.MissingDependency, match="pip install bitsandbytes"):
            check_quantization("4bit", parse_options({}), cuda_devices=1)
