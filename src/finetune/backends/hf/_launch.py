"""How a local job's processes start: torchrun's arguments, accelerate's generated config (one
or many machines; DDP, FSDP or DeepSpeed ZeRO), and the checks made before anything starts."""

from __future__ import annotations

import socket
from collections.abc import Mapping
from pathlib import Path
from typing import NoReturn

from finetune._errors import InvalidRequestError, require_installed
from finetune._words import counted
from finetune.backends.hf._config import LocalOptions, check_precision, gpu_index

__all__ = [
    "accelerate_config_text",
    "check_device",
    "check_fp16",
    "check_launch",
    "check_placement",
    "check_quantization",
    "check_strategy",
    "cuda_available",
    "cuda_device_count",
    "device_environment",
    "free_port",
    "gpu_problem",
    "launcher_log_dir",
    "shared_cores_note",
    "shares_cores",
    "torchrun_arguments",
    "write_accelerate_config",
]


def free_port() -> int:
    """A TCP port free on this machine now (for a one-machine rendezvous)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def shares_cores(options: LocalOptions, *, cuda_devices: int, environ: Mapping[str, str]) -> bool:
    """Whether this job trains on the CPU with torch's thread per core, so that others
    training there at the same time overrun the cores. Not on a GPU, on a Ray cluster (which
    places its own workers), or where ``OMP_NUM_THREADS`` shares the cores out."""
    on_cpu = cuda_devices == 0 or options.device == "cpu"
    return options.launcher != "ray" and "OMP_NUM_THREADS" not in environ and on_cpu


def shared_cores_note(training: list[str]) -> str:
    """What a job started beside others still ``training`` on this CPU should know: two at
    once overrun the cores and each runs many times slower."""
    return (
        f"{counted(len(training), 'other local job')} ({', '.join(training)}) still "
        "training on this machine's CPU: with a thread per core each, jobs at once run many "
        "times slower than one after the other (docs/backends/hf.md, 'Two local jobs on one "
        "CPU'); wait for it, or give each process its share with OMP_NUM_THREADS"
    )


def launcher_log_dir(job_dir: Path) -> Path:
    """Where torch's elastic agent (under torchrun and accelerate) keeps its files for the job:
    in the job folder, where they go with it, not a ``torchelastic_*`` folder it would make in
    /tmp for every launch and never remove."""
    return job_dir / "launcher-logs"


def torchrun_arguments(job_dir: Path, options: LocalOptions) -> list[str]:
    """``torch.distributed.run`` arguments: standalone on one machine; on several, the static
    rendezvous (machine_rank 0 holds rank 0) or c10d's elastic one, keyed by the job id."""
    processes = ["--log-dir", str(launcher_log_dir(job_dir))]
    processes += ["--nproc_per_node", str(options.num_processes)]
    if options.num_machines == 1:
        return ["--standalone", *processes]
    endpoint = f"{options.main_process_ip}:{options.main_process_port}"
    machines = ["--nnodes", str(options.num_machines), *processes]
    if options.rdzv_backend == "c10d":
        rendezvous = ["--rdzv_backend", "c10d", "--rdzv_endpoint", endpoint]
        return [*machines, *rendezvous, "--rdzv_id", job_dir.name]
    return [
        *machines,
        "--node_rank",
        str(options.machine_rank),
        "--master_addr",
        str(options.main_process_ip),
        "--master_port",
        str(options.main_process_port),
    ]


def check_launch(options: LocalOptions) -> int:
    """The CUDA devices a job of ``options`` would see here, after refusing a placement,
    strategy, device or precision this machine cannot run."""
    check_placement(options)
    devices = cuda_device_count()
    check_strategy(options, cuda_available=devices > 0)
    check_device(options, cuda_devices=devices)
    check_fp16(options, cuda_devices=devices)
    return devices


def check_placement(options: LocalOptions) -> None:
    """Refuse a multi-machine or multi-process setup that cannot start, before anything runs."""
    problem = _placement_problem(options)
    if problem is not None:
        message, param = problem
        raise InvalidRequestError(message, backend="hf", param=param)
    if options.launcher == "ray":
        require_installed(["ray"], "ray", purpose="for launcher='ray' (Ray Train)")


def _placement_problem(options: LocalOptions) -> tuple[str, str] | None:
    if options.num_machines > 1:
        if options.launcher not in ("torchrun", "accelerate"):
            return "num_machines > 1 needs launcher='torchrun' or 'accelerate'", "launcher"
        if not options.main_process_ip or not options.main_process_port:
            return (
                "num_machines > 1 needs main_process_ip and main_process_port: the address "
                "every machine can reach on the machine of rank 0",
                "main_process_ip",
            )
    if options.machine_rank >= options.num_machines:  # with 1, each machine trains alone
        return (
            f"machine_rank {options.machine_rank} is not below num_machines "
            f"{options.num_machines}: set num_machines to how many machines train together",
            "machine_rank",
        )
    if options.num_processes > 1 and options.launcher == "python":
        return "num_processes > 1 needs launcher='accelerate', 'torchrun' or 'ray'", "num_processes"
    return _unread_option_problem(options) or _accelerate_config_problem(options)


def _unread_option_problem(options: LocalOptions) -> tuple[str, str] | None:
    """An option the chosen launch never reads: it was ignored, and the job trained alone on
    this machine where its author meant a cluster or several machines."""
    ray = {"ray_address": options.ray_address is not None, "use_gpu": options.use_gpu is not None}
    name = _first_given(ray) if options.launcher != "ray" else None
    if name is not None:
        return (
            f"{name} is read by launcher='ray', not {options.launcher!r}: set launcher='ray', "
            f"or drop {name}",
            name,
        )
    machines = {
        "main_process_ip": options.main_process_ip is not None,
        "main_process_port": options.main_process_port is not None,
        "rdzv_backend": options.rdzv_backend != "static",
    }
    name = _first_given(machines) if options.num_machines == 1 else None
    if name is not None:
        return (
            f"{name} is read when several machines train together, and num_machines is 1: "
            f"set num_machines (and machine_rank on each machine), or drop {name}",
            name,
        )
    return None


def _first_given(given: Mapping[str, bool]) -> str | None:
    return next((name for name, was_given in given.items() if was_given), None)


def _accelerate_config_problem(options: LocalOptions) -> tuple[str, str] | None:
    """A config file of one's own is read by ``accelerate launch`` alone, and must be there:
    the launcher failed on a missing one once the job had started."""
    path = options.accelerate_config
    if path is None:
        return None
    if options.launcher != "accelerate":
        return (
            f"accelerate_config is read by launcher='accelerate', not {options.launcher!r}: "
            "set launcher='accelerate', or drop accelerate_config",
            "accelerate_config",
        )
    if not Path(path).is_file():
        why = "a folder, not a file" if Path(path).is_dir() else "no such file"
        return f"accelerate_config={path!r}: {why}", "accelerate_config"
    return None


def check_strategy(options: LocalOptions, *, cuda_available: bool) -> None:
    """Refuse a sharding strategy this machine or launch cannot run, naming why."""
    if options.strategy == "ddp":
        return
    if options.accelerate_config:
        raise InvalidRequestError(
            f"strategy={options.strategy!r} writes an accelerate config, but accelerate_config= "
            "gives your own: drop one",
            backend="hf",
            param="strategy",
        )
    if options.launcher != "accelerate":
        raise InvalidRequestError(
            f"strategy={options.strategy!r} runs through launcher='accelerate'",
            backend="hf",
            param="launcher",
        )
    if not cuda_available or options.device == "cpu":
        raise InvalidRequestError(
            f"strategy={options.strategy!r} needs CUDA GPUs: DeepSpeed ZeRO runs on GPUs only, and "
            "accelerate's FSDP plugin places the shards on CUDA devices; on CPU use the default "
            "strategy='ddp'",
            backend="hf",
            param="strategy",
        )
    if options.strategy.startswith("deepspeed"):
        require_installed(["deepspeed"], None, purpose=f"for strategy={options.strategy!r}")


def accelerate_config_text(options: LocalOptions, port: int) -> str:
    """The accelerate config a job gets when it brings none (shown in docs/backends/hf.md)."""
    many = options.num_processes * options.num_machines > 1
    # MULTI_GPU selects accelerate's torchrun-based launcher; without CUDA the worker trains on
    # CPU over gloo (accelerate 1.15's MULTI_CPU type expects mpirun and starts one process)
    kind = {"fsdp": "FSDP", "deepspeed-zero2": "DEEPSPEED", "deepspeed-zero3": "DEEPSPEED"}.get(
        options.strategy, "MULTI_GPU" if many else "NO"
    )
    several = options.num_machines > 1
    lines = [
        "compute_environment: LOCAL_MACHINE",
        f"distributed_type: {kind}",
        f"num_processes: {options.num_processes * options.num_machines}",
        f"num_machines: {options.num_machines}",
        f"machine_rank: {options.machine_rank}",
        f"main_process_ip: {options.main_process_ip if several else '127.0.0.1'}",
        f"main_process_port: {options.main_process_port if several else port}",
        f"mixed_precision: '{'bf16' if kind != 'MULTI_GPU' and kind != 'NO' else 'no'}'",
        "dynamo_config: {}",
        f"rdzv_backend: {options.rdzv_backend}",
        "same_network: true",
    ]
    return "\n".join(lines + _strategy_lines(options)) + "\n"


def _strategy_lines(options: LocalOptions) -> list[str]:
    if options.strategy == "fsdp":
        return [
            "fsdp_config:",
            "  fsdp_version: 2",
            "  fsdp_auto_wrap_policy: TRANSFORMER_BASED_WRAP",
            "  fsdp_reshard_after_forward: true",
            "  fsdp_state_dict_type: FULL_STATE_DICT",
            "  fsdp_cpu_ram_efficient_loading: true",
            "  fsdp_offload_params: false",
        ]
    if options.strategy.startswith("deepspeed"):
        stage = options.strategy[-1]
        lines = [
            "deepspeed_config:",
            f"  zero_stage: {stage}",
            f"  gradient_accumulation_steps: {options.gradient_accumulation_steps}",
            "  gradient_clipping: 1.0",
            "  offload_optimizer_device: none",
            "  offload_param_device: none",
        ]
        if stage == "3":
            lines += ["  zero3_init_flag: true", "  zero3_save_16bit_model: true"]
        return lines
    return []


def write_accelerate_config(job_dir: Path, options: LocalOptions) -> Path:
    """Write the generated config as ``accelerate.yaml`` in the job directory."""
    path = job_dir / "accelerate.yaml"
    path.write_text(accelerate_config_text(options, free_port()))
    return path


def cuda_available() -> bool:
    """Whether torch is installed and sees a CUDA device."""
    return cuda_device_count() > 0


def cuda_device_count() -> int:
    """How many CUDA devices torch sees here (0 without torch, a driver or a CUDA build)."""
    try:
        import torch
    except ImportError:
        return 0
    return int(torch.cuda.device_count()) if torch.cuda.is_available() else 0


def check_device(options: LocalOptions, *, cuda_devices: int) -> None:
    """Refuse a ``device`` this machine or launch cannot give, before anything runs: a GPU
    asked for by name is never quietly swapped for the CPU."""
    device, index = options.device, gpu_index(options.device)
    if index is not None and options.launcher != "python":
        _refuse_device(
            f"device={device!r} picks one GPU for launcher='python'; launcher="
            f"{options.launcher!r} starts a process on each GPU it sees: choose them with "
            "CUDA_VISIBLE_DEVICES"
        )
    if options.launcher == "ray":  # Ray: use_gpu, its nodes
        return
    problem = gpu_problem(device, cuda_devices=cuda_devices)
    if problem is not None:
        cure = "; device='auto' trains on the CPU where there is none" if not cuda_devices else ""
        _refuse_device(problem + cure)


def gpu_problem(device: str, *, cuda_devices: int) -> str | None:
    """Why the GPU ``device`` names (``cuda``, ``cuda:N``) is not here, if it is not: for a
    local job's device and a local model's alike."""
    if not device.startswith("cuda"):
        return None
    if cuda_devices == 0:
        return (
            f"device={device!r} asks for a GPU, and torch sees no CUDA device here (a CPU build "
            "of torch, no driver, or CUDA_VISIBLE_DEVICES empty)"
        )
    index = gpu_index(device)
    if index is not None and index >= cuda_devices:
        return (
            f"device={device!r}: torch sees {counted(cuda_devices, 'CUDA device')} here, "
            f"cuda:0 to cuda:{cuda_devices - 1}"
        )
    return None


def check_quantization(wanted: str | None, options: LocalOptions, *, cuda_devices: int) -> None:
    """QLoRA (``wanted``: ``"4bit"`` or ``"8bit"``) loads the base with bitsandbytes on a
    CUDA GPU: refused before the job starts where there is none, or bitsandbytes is missing
    (the worker failed on it once started)."""
    if wanted is None or options.launcher == "ray":  # Ray: the GPUs are its nodes'
        return
    if not _on_a_gpu(options, cuda_devices):
        where = "device='cpu' keeps it off the GPU" if cuda_devices else "torch sees none here"
        raise InvalidRequestError(
            f"quantization={wanted!r} (QLoRA) loads the model with bitsandbytes on a CUDA GPU, "
            f"and {where}; train a LoRA in full precision (drop quantization and "
            "quantize_4bit) or on a GPU",
            backend="hf",
            param="quantization",
        )
    require_installed(["bitsandbytes"], None, purpose=f"for quantization={wanted!r} (QLoRA)")


def check_fp16(options: LocalOptions, *, cuda_devices: int) -> None:
    """``precision="fp16"`` refused before the job starts where it would train on the CPU
    (the worker failed on it once started)."""
    if options.launcher != "ray":  # Ray: the precision its nodes' GPUs allow
        check_precision(options.precision, cuda=_on_a_gpu(options, cuda_devices))


def _on_a_gpu(options: LocalOptions, cuda_devices: int) -> bool:
    """Whether this machine's job trains on a CUDA GPU, as the worker decides."""
    return cuda_devices > 0 and options.device != "cpu"


def _refuse_device(message: str) -> NoReturn:
    raise InvalidRequestError(message, backend="hf", param="device")


def device_environment(options: LocalOptions, environ: Mapping[str, str]) -> dict[str, str]:
    """What the worker's environment adds for ``device``: ``cuda:N`` as the one device it
    sees (``CUDA_VISIBLE_DEVICES``; N counts among the devices already visible there)."""
    index = gpu_index(options.device)
    if index is None:
        return {}
    visible = [d.strip() for d in environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()]
    if visible and index >= len(visible):
        _refuse_device(
            f"device={options.device!r}: CUDA_VISIBLE_DEVICES={','.join(visible)} shows "
            f"{counted(len(visible), 'device')} to torch, cuda:0 to cuda:{len(visible) - 1}"
        )
    return {"CUDA_VISIBLE_DEVICES": visible[index] if visible else str(index)}
