"""What ``wait(progress=True)`` shows: a tqdm bar in a terminal, a live job view in a notebook.

In a terminal: training steps where the backend reports them (local jobs), else the status and
the time so far; the bar ends full on a succeeded job. In Jupyter (a kernel is running) one
HTML view is displayed and updated in place: status, step / total, time left, losses and their
curve, and how the job ended. ``CountingBar`` counts what ``evaluate`` and the judges have
done (predictions, grades).
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, TextIO

from finetune._words import duration
from finetune.types import Job, JobStatus

if TYPE_CHECKING:
    from finetune._series import MetricSeries

__all__ = [
    "LOG_REDRAW_SECONDS",
    "CountingBar",
    "JobProgress",
    "bar_stream",
    "in_notebook",
    "no_library_bars_in_a_log",
    "stderr_open",
    "to_a_log",
]

# Progress written to a log (a file, a pipe, CI) is redrawn at most this often, and when a
# job's status changes: a long run leaves a few lines there, not one per poll.
LOG_REDRAW_SECONDS = 30.0


def to_a_log() -> bool:
    """Whether progress goes to a file or a pipe rather than a terminal or a notebook."""
    if in_notebook():
        return False
    try:
        return not sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced by an object without it, or closed
        return True


class _LogLines:
    """Where a progress bar writes in a log: each frame on a line of its own. A terminal
    redraws one line in place with carriage returns, which a log file keeps as one line
    that only a terminal shows right (``grep`` and ``less`` show every frame run together)."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self.encoding = getattr(stream, "encoding", None)  # tqdm picks its bar's characters

    def write(self, text: str) -> int:
        frame = text.replace("\r", "").rstrip()  # tqdm pads a shorter frame with spaces
        if frame:
            self._stream.write(frame + "\n")
        return len(text)

    def flush(self) -> None:
        self._stream.flush()


def bar_stream() -> Any:
    """What a tqdm bar writes to: stderr, or in a log (``to_a_log``) a line per frame."""
    return _LogLines(sys.stderr) if to_a_log() else sys.stderr


class _LibraryBars:
    """Who has transformers' bars off: they come back when the last of them is done (two
    models loading at once, in two threads), and only if they were on before the first."""

    lock = threading.Lock()
    users = 0
    restore = False
    own_tqdm: Any = None  # the GGUF loader's tqdm while it is replaced by a silent one


def _silent_tqdm(*args: Any, **kwargs: Any) -> Any:
    from tqdm.auto import tqdm

    return tqdm(*args, **{**kwargs, "disable": True})


def _gguf_loader() -> Any:
    """transformers' GGUF loader, which draws its de-quantizing bar with tqdm itself, out of
    reach of ``disable_progress_bar`` (``None`` where it cannot be imported)."""
    try:
        from transformers import modeling_gguf_pytorch_utils
    except ImportError:
        return None
    return modeling_gguf_pytorch_utils if hasattr(modeling_gguf_pytorch_utils, "tqdm") else None


@contextlib.contextmanager
def no_library_bars_in_a_log() -> Iterator[None]:
    """transformers' own bars (loading weights, writing shards, de-quantizing a GGUF file),
    off while progress goes to a log, where their frames run into one line; our own lines
    say what is done there."""
    if not to_a_log():
        yield
        return
    from transformers.utils import logging as transformers_logging

    loader = _gguf_loader()
    with _LibraryBars.lock:
        if _LibraryBars.users == 0:
            _LibraryBars.restore = transformers_logging.is_progress_bar_enabled()
            transformers_logging.disable_progress_bar()
            if loader is not None:
                _LibraryBars.own_tqdm, loader.tqdm = loader.tqdm, _silent_tqdm
        _LibraryBars.users += 1
    try:
        yield
    finally:
        with _LibraryBars.lock:
            _LibraryBars.users -= 1
            if _LibraryBars.users == 0:
                if loader is not None and _LibraryBars.own_tqdm is not None:
                    loader.tqdm, _LibraryBars.own_tqdm = _LibraryBars.own_tqdm, None
                if _LibraryBars.restore:
                    transformers_logging.enable_progress_bar()


def stderr_open() -> bool:
    """Whether a progress bar has somewhere to go: ``sys.stderr`` is ``None`` under pythonw,
    in a windowed app, and in a process started with its stderr closed (``2>&-``, some
    daemons), where tqdm fails as it starts, and its half-made bar then deadlocks the
    garbage collector."""
    stream = sys.stderr
    return stream is not None and not getattr(stream, "closed", False)


def in_notebook() -> bool:
    """Whether this code runs in a Jupyter kernel (JupyterLab, VS Code, nbclient)."""
    if "ipykernel" not in sys.modules:
        return False
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


_WAITING = "{desc}: {unit} [{elapsed}]"
_NOT_YET = 1e9  # seconds: a delay that holds back the first draw, lifted on close


class CountingBar:
    """A tqdm bar of ``total`` things done (``evaluate``'s predictions, a judge's grades),
    shown only when ``enabled`` and stderr is open; written to a log, at most every 30 s."""

    def __init__(self, enabled: bool, total: int, desc: str, unit: str) -> None:
        self._bar: Any = None
        self._to_log = to_a_log()
        if enabled and stderr_open():
            from tqdm.auto import tqdm

            # in a log, a frame is a line: no bar below another (tqdm's cursor moves)
            paced = {"mininterval": LOG_REDRAW_SECONDS, "position": 0} if self._to_log else {}
            self._bar = tqdm(total=total, desc=desc, unit=unit, file=bar_stream(), **paced)

    def advance(self, count: int = 1) -> None:
        """Count ``count`` more done."""
        if self._bar is None:
            return
        if self._to_log and self._bar.n + count >= self._bar.total:
            self._bar.n += count  # close() draws the last frame: in a log, once
            return
        self._bar.update(count)

    def close(self) -> None:
        """Draw the last frame and let go of the stream."""
        if self._bar is not None:
            self._bar.close()


class JobProgress:
    """Shown only when asked; ``update`` after each poll, ``close`` at the end."""

    def __init__(self, enabled: bool, job: Job) -> None:
        self._bar: Any = None
        self._display: Any = None
        self._started = time.time()
        self._drawn: tuple[JobStatus, float] | None = None  # the status and time last drawn
        self._to_log = to_a_log()
        self.wants_metrics = False
        if not enabled:
            return
        if in_notebook():
            from IPython.display import display

            self._display = display(self._html(job, None), display_id=True)  # type: ignore[no-untyped-call]
            self.wants_metrics = True
            return
        if not stderr_open():
            return
        from tqdm.auto import tqdm

        # a log gets an ended job's one line on close, not also the first frame of its wait
        ended_in_a_log = self._to_log and job.status.is_terminal
        # until the backend reports steps: the status and the time so far, no count of polls
        self._bar = tqdm(
            total=None,
            desc=f"{job.backend}:{job.id}",
            unit=job.status.value,
            bar_format=_WAITING,
            file=bar_stream(),
            delay=_NOT_YET if ended_in_a_log else 0,
        )
        self._drawn = (job.status, time.monotonic())  # tqdm draws the bar as it is made

    def update(self, job: Job, metrics: MetricSeries | None = None) -> None:
        """Show the job as just polled (and, in a notebook, its metrics so far)."""
        if self._display is not None:
            self._display.update(self._html(job, metrics))
            return
        if self._bar is None:
            return
        step, total = _steps(job)
        if total:
            done = total if job.status is JobStatus.SUCCEEDED else min(step or 0, total)
            if self._bar.total != total:
                self._bar.total, self._bar.unit, self._bar.bar_format = total, "step", None
                # steps done before this wait saw the job are no speed of ours (a job joined
                # half way, or ended, showed thousands of steps a second and no time left),
                # nor is the time it waited queued or loading the model: the bar times the
                # steps from here
                self._bar.initial = done
                self._bar.start_t = self._bar.last_print_t = self._bar._time()
            self._bar.n = done
            self._bar.set_postfix_str(job.status.value, refresh=False)
        else:  # no steps to count: the status, and the provider's estimate of the time left
            told = (job.raw or {}).get("seconds_left")
            left = f", about {duration(told)} left" if isinstance(told, int) else ""
            self._bar.unit = f"{job.status.value}{left}"
        if self._redraw_due(job.status):
            self._bar.refresh()

    def _redraw_due(self, status: JobStatus) -> bool:
        now = time.monotonic()
        if self._to_log and status.is_terminal:  # close() draws the last frame, once
            return False
        if self._to_log and self._drawn is not None:
            last_status, at = self._drawn
            if status is last_status and now - at < LOG_REDRAW_SECONDS:
                return False
        self._drawn = (status, now)
        return True

    def _html(self, job: Job, metrics: MetricSeries | None) -> Any:
        from IPython.display import HTML

        from finetune._html import job_html

        return HTML(job_html(job, metrics, started=self._started))  # type: ignore[no-untyped-call]

    def close(self) -> None:
        """Leave the bar (or the view) as it ends."""
        if self._bar is not None:
            self._bar.delay = 0  # drawn at last, where it was held back
            self._bar.close()


def _steps(job: Job) -> tuple[int | None, int | None]:
    raw = job.raw or {}
    step, total = raw.get("step"), raw.get("max_steps")
    valid_total = total if isinstance(total, int) and total > 0 else None
    return (step if isinstance(step, int) else None), valid_total
