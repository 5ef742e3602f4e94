"""How long a local fit trains, told before it starts: at the pace (trained tokens a second)
of the latest job of this jobs folder that trained the same model the same way."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from finetune.backends.base import JobRequest
    from finetune.backends.hf._config import LocalOptions
    from finetune.backends.hf._jobdir import JobDir

__all__ = ["pace_notes"]

# the options that change how fast a token trains; the others (max_length, save_steps, ...)
# change what is trained or kept, not the pace
_SETUP = (
    "full_finetune",
    "quantization",
    "precision",
    "device",
    "attention",
    "packing",
    "gradient_checkpointing",
    "launcher",
    "num_processes",
    "num_machines",
    "strategy",
)


def pace_notes(
    jobs: Iterable[JobDir],
    request: JobRequest,
    alike: tuple[str, LocalOptions],
    tokens: int,
) -> list[str]:
    """A note of how long ``tokens`` train at the pace of the first of ``jobs`` (newest
    first) that succeeded on the same model folder (``alike``: it, as the job's config names
    the folder it loaded, however the model was given, and the fit's options), method and
    setup; none when no job is alike."""
    source, options = alike
    wanted = {name: getattr(options, name) for name in _SETUP}
    for job in jobs:
        pace = _pace_of(job, source, request.method, wanted)
        if pace is not None and tokens > 0:
            return [
                f"training: about {_duration(tokens / pace)} for {tokens:,} trained tokens at "
                f"the pace of {job.id} ({pace:,.0f} tokens a second), the latest job here that "
                "trained this model the same way; loading the model comes on top"
            ]
    return []


def _pace_of(job: JobDir, source: str, method: str, wanted: dict[str, Any]) -> float | None:
    """Trained tokens a second of a job alike that succeeded, else ``None``."""
    try:
        config, status = job.read_config(), job.read_status()
    except (OSError, ValueError):
        return None
    theirs = config.get("options") or {}
    alike = config.get("base_model") == source and config.get("method", "sft") == method
    if status.get("status") != "succeeded" or not alike:
        return None
    if any(theirs.get(name) != value for name, value in wanted.items()):
        return None
    tokens, last_run = status.get("trained_tokens"), _last_run(job)
    if not isinstance(tokens, (int, float)) or last_run is None:
        return None
    seconds, tokens_before = last_run
    return (tokens - tokens_before) / seconds if tokens > tokens_before else None


def _last_run(job: JobDir) -> tuple[float, int] | None:
    """How long the trainer's last run took (its ``train_runtime``, logged as the job ended:
    without loading the model or saving it), and the tokens trained before it, in the runs
    a resumed job's last one went on from."""
    last, resumed_at, run_began_at = None, 0, 0
    for event in job.events():
        data = event.get("data") or {}
        if "step" in data and "trained_tokens" in data:  # resuming from a checkpoint
            resumed_at = int(data["trained_tokens"])
        elif "max_steps" in data:  # a run's training started
            run_began_at, resumed_at = resumed_at, 0
        runtime = data.get("train_runtime")
        if isinstance(runtime, (int, float)) and runtime > 0:
            last = (float(runtime), run_began_at)
    return last


def _duration(seconds: float) -> str:
    """``40 s``, ``1 min 40 s``, ``25 min``, ``2 h 10 min``: as precise as a pace measured
    on another job allows (to 10 s under 10 minutes, to the minute beyond)."""
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    if seconds < 600:
        tens = round(seconds / 10)
        return f"{tens // 6} min {tens % 6 * 10} s" if tens % 6 else f"{tens // 6} min"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 90 else f"{minutes // 60} h {minutes % 60:02d} min"
