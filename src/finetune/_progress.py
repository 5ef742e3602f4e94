"""What ``wait(progress=True)`` shows: a tqdm bar in a terminal.

Training steps where the backend reports them (local jobs), else the number of polls, with
the status beside it; the bar ends full on a succeeded job.
"""

from __future__ import annotations

from typing import Any

from finetune.types import Job, JobStatus

__all__ = ["JobProgress"]


class JobProgress:
    """Shown only when asked; ``update`` after each poll, ``close`` at the end."""

    def __init__(self, enabled: bool, job: Job) -> None:
        self._bar: Any = None
        if enabled:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=None, desc=f"{job.backend}:{job.id}", unit="poll")

    def update(self, job: Job) -> None:
        """Show the job as just polled."""
        if self._bar is None:
            return
        step, total = _steps(job)
        if total:
            if self._bar.total != total:
                self._bar.total, self._bar.unit = total, "step"
            self._bar.n = total if job.status is JobStatus.SUCCEEDED else min(step or 0, total)
        else:
            self._bar.n += 1
        self._bar.set_postfix_str(job.status.value, refresh=False)
        self._bar.refresh()

    def close(self) -> None:
        """Leave the bar as it ends."""
        if self._bar is not None:
            self._bar.close()


def _steps(job: Job) -> tuple[int | None, int | None]:
    raw = job.raw or {}
    step, total = raw.get("step"), raw.get("max_steps")
    valid_total = total if isinstance(total, int) and total > 0 else None
    return (step if isinstance(step, int) else None), valid_total
