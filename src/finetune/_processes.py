"""Whether a process still runs, told apart from a later one that reuses its pid; reaping
the ones this process started and does not wait for."""

from __future__ import annotations

import os
import subprocess
import threading
from pathlib import Path

__all__ = ["process_alive", "process_start_time", "reap_when_it_ends"]


def process_start_time(pid: int) -> int | None:
    """The kernel's start time of ``pid`` (Linux), to tell a reused pid from the worker."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] == "Z":
        return None
    return int(fields[19])


def process_alive(pid: int, start_time: int | None) -> bool:
    """Whether ``pid`` still runs and is the process that was started (not a reused pid)."""
    if Path("/proc").is_dir():
        current = process_start_time(pid)
        return current is not None and (start_time is None or current == start_time)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reap_when_it_ends(process: subprocess.Popen[bytes]) -> None:
    """Wait for ``process`` in a daemon thread: a worker meant to outlive the object that
    started it is reaped when it ends (no zombie), and ``Popen`` no longer warns "still
    running" when that object is dropped first (a ``ResourceWarning``, an error where
    warnings are). ``poll()`` still tells its exit code."""
    threading.Thread(
        target=process.wait, name=f"finetune-reaper-{process.pid}", daemon=True
    ).start()
