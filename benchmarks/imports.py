"""What ``import finetune`` costs, against ``import openai``: medians of fresh processes.

Usage: python benchmarks/imports.py [--runs 5]

Each figure is the time of the import statement alone in a fresh interpreter (interpreter
start-up excluded), the median of ``--runs`` processes. Also shown: building
``Tuner("openai")``, which must import no provider SDK. Target: import finetune <= 0.25x
import openai.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys

CASES = {
    "import openai (baseline)": "import openai",
    "import finetune": "import finetune",
    "import finetune; Tuner('openai', model=...)": (
        "import finetune as ft; ft.Tuner('openai', model='gpt-4.1-mini-2025-04-14')"
    ),
}
TIMER = (
    "import time; started = time.perf_counter()\n{code}\n"
    "import sys; print(time.perf_counter() - started)\n"
    "assert 'openai' not in sys.modules or {baseline}, 'an SDK was imported'"
)


def timed(code: str, baseline: bool) -> float:
    script = TIMER.format(code=code, baseline=baseline)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    medians = {}
    for name, code in CASES.items():
        times = [timed(code, "baseline" in name) for _ in range(args.runs)]
        medians[name] = statistics.median(times)
    base = medians["import openai (baseline)"]
    print("case | median ms | ratio to import openai")
    print("---|---|---")
    for name, value in medians.items():
        print(f"{name} | {value * 1000:.1f} | {value / base:.2f}x")
    ratio = medians["import finetune"] / base
    print()
    print(
        f"import finetune: {ratio:.2f}x import openai (target <= 0.25x) "
        f"{'PASS' if ratio <= 0.25 else 'FAIL'}"
    )


if __name__ == "__main__":
    main()
