"""``launcher="ray"``: the same worker, run by Ray Train's ``TorchTrainer`` on a Ray cluster.

``python -m finetune.backends.hf._ray JOB_DIR [--resume]`` is the job's process on this
machine: it joins the cluster (``ray_address``, or a local Ray instance), starts
``num_processes`` training workers with ``ScalingConfig(num_workers=..., use_gpu=...)``, and
each runs ``_worker.main`` on the job directory, which therefore must be on storage every
worker reaches (one machine, or a shared filesystem). Status, metrics, cancel and the model go
through that directory, as for every other launcher.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Any

from finetune.backends.hf._config import TrainingConfig
from finetune.backends.hf._jobdir import JobDir
from finetune.backends.hf._launch import cuda_available

__all__ = ["main"]


def _train_loop(settings: dict[str, Any]) -> None:
    """One Ray Train worker: the ranks Ray assigned, then the ordinary worker."""
    from ray import train

    from finetune.backends.hf._worker import main as worker_main

    context = train.get_context()
    os.environ.update(
        RANK=str(context.get_world_rank()),
        LOCAL_RANK=str(context.get_local_rank()),
        WORLD_SIZE=str(context.get_world_size()),
        LOCAL_WORLD_SIZE=str(context.get_local_world_size()),
        NODE_RANK=str(context.get_node_rank()),
    )
    code = worker_main([settings["job_dir"], *settings["flags"]])
    if code != 0:
        raise RuntimeError(f"the training worker of rank {context.get_world_rank()} failed")


def main(argv: list[str]) -> int:
    """Run the job in ``argv[0]`` on Ray; the exit code of the whole run."""
    job = JobDir(Path(argv[0]))
    try:
        import ray
        from ray.train import RunConfig, ScalingConfig
        from ray.train.torch import TorchTrainer
    except ImportError as exc:  # fit checked that ray is installed; Ray Train's needs may lack
        job.mark_failed(
            "missing_dependency",
            f"launcher='ray' needs Ray Train, which cannot be imported here ({exc}): "
            "pip install 'finetune[ray]', then resume()",
        )
        return 1
    # cancel and pause reach the workers through the job directory, at the end of a step
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    options = TrainingConfig.model_validate(job.read_config()).options
    use_gpu = options.use_gpu if options.use_gpu is not None else cuda_available()
    try:
        ray.init(address=options.ray_address, ignore_reinit_error=True, log_to_driver=True)
    except Exception as exc:  # Ray raises ConnectionError, RuntimeError, ValueError, ...
        job.mark_failed("ray_unreachable", _not_joined(options.ray_address, exc))
        return 1
    trainer = TorchTrainer(
        _train_loop,
        train_loop_config={"job_dir": str(job.path), "flags": argv[1:]},
        scaling_config=ScalingConfig(num_workers=options.num_processes, use_gpu=use_gpu),
        run_config=RunConfig(name=job.id, storage_path=str(job.path / "ray")),
    )
    try:
        trainer.fit()
    except Exception as exc:  # the workers recorded their own failure in the job directory
        print(f"Ray Train run failed: {exc}", file=sys.stderr)
        return 1
    finally:
        ray.shutdown()
    return 0


def _not_joined(address: str | None, exc: Exception) -> str:
    where = f"join the Ray cluster at ray_address={address!r}" if address else "start Ray here"
    return (
        f"could not {where} ({type(exc).__name__}: {exc}); start a cluster (`ray start "
        "--head`) or name one that runs, or leave ray_address unset for a local Ray instance, "
        "then resume()"
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
