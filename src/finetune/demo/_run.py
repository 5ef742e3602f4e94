"""``finetune demo``: validate, fine-tune and evaluate a tiny model, offline, on CPU."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["DEMO_RESPONSE_FORMAT", "run_demo"]

DEMO_RESPONSE_FORMAT = r"^Hello \w+! Order \d+: [a-z ]+\.$"


def _quiet_libraries() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        import transformers

        transformers.logging.set_verbosity_error()
        transformers.logging.disable_progress_bar()
    except ImportError:
        pass
    logging.getLogger("finetune").setLevel(logging.WARNING)


def run_demo(
    output_dir: str | os.PathLike[str],
    *,
    epochs: int = 20,
    holdout: int = 60,
    shots: int = 3,
    say: Callable[[str], Any] = print,
) -> dict[str, Any]:
    """Run the whole demo; returns where the model and the report went, and the comparison."""
    import finetune as ft
    from finetune.backends.hf import HFBackend
    from finetune.demo import build_tiny_base, sample_dataset_path

    _quiet_libraries()
    started = time.perf_counter()
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    data = ft.Dataset.from_jsonl(sample_dataset_path())
    train, test = data.split(test_size=holdout, seed=7)
    say(f"1/5 building the tiny base model in {out / 'base-model'} (offline, pre-trained briefly)")
    texts = [m.text for example in data for m in example.messages]  # type: ignore[union-attr]
    base = str(build_tiny_base(out / "base-model", texts, pretrain_steps=300))

    tuner = ft.Tuner(HFBackend(jobs_dir=out / "jobs"), model=base)
    say(f"2/5 validating {len(train)} training examples for the hf backend")
    report = tuner.validate(train)
    say("    " + report.summary().replace("\n", "\n    "))
    report.raise_for_errors()

    say(f"3/5 fine-tuning (full, {epochs} epochs) in a worker process")
    job = tuner.fit(
        train,
        hyperparameters=ft.Hyperparameters(epochs=epochs, batch_size=16, learning_rate=3e-3),
        options={"max_length": 128, "save_total_limit": 1},
    )
    job.wait(progress=True)
    losses = [p.train_loss for p in job.metrics() if p.train_loss is not None]
    say(f"    train loss {losses[0]:.2f} -> {losses[-1]:.2f}; model in {job.model.name}")

    say(f"4/5 evaluating base, base {shots}-shot and tuned on {len(test)} held-out examples")
    base_ref = tuner.base_model
    result = ft.evaluate(
        test,
        {
            "base": base_ref,
            f"base {shots}-shot": base_ref.with_few_shot(train, k=shots, seed=7),
            "tuned": job.model,
        },
        [
            ft.metrics.exact_match,
            ft.metrics.regex(DEMO_RESPONSE_FORMAT, name="house_format"),
            ft.metrics.token_f1,
        ],
        progress=True,
        cache=str(out / "predictions.sqlite3"),
        predictor_options={name: {"max_new_tokens": 32} for name in ("base", "tuned")},
    )
    table = result.to_markdown(baseline="base")
    result.to_json(out / "evaluation.json")
    (out / "evaluation.md").write_text(table + "\n", encoding="utf-8")
    comparison = result.compare("tuned", "base")
    say("5/5 results (mean [95% bootstrap CI]; deltas with paired-bootstrap CIs):\n")
    say(table)
    say(
        f"\n{comparison}\nmodel: {job.model.name}\nreport: {out / 'evaluation.md'} "
        f"(and evaluation.json)\njob: {job.id} under {out / 'jobs'}\n"
        f"took {time.perf_counter() - started:.0f} s"
    )
    return {
        "model": job.model.name,
        "report": str(out / "evaluation.md"),
        "comparison": comparison,
        "result": result,
    }
