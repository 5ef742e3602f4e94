"""Customer-service tone: teach a model to answer in the house tone, then prove it helped.

Runs offline on CPU: a tiny base model is built on the spot (``finetune.demo``) and trained
through ``Tuner("hf")``. Swap ``Tuner("hf", model=...)`` for ``Tuner("together", model=...)``
or ``Tuner("fireworks", model=...)`` (hosted; ``finetune models`` lists what each trains) and
the rest of the script stays the same, but for ``options``, which are each backend's own.

    python examples/customer_service_tone.py [--epochs 12] [--output tone-example]
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path
from typing import Any

import finetune as ft
from finetune.demo import build_tiny_base, sample_dataset_path

TONE = r"^Thanks so much for writing, \w+! "


def warm_reply(row: dict[str, Any]) -> dict[str, Any]:
    """The same answer, in the warm house tone the brand wants."""
    user = row["messages"][1]["content"]
    name = user.split("this is ")[1].split(".")[0]
    answer = row["messages"][2]["content"].split(": ", 1)[1]
    reply = f"Thanks so much for writing, {name}! {answer[0].upper()}{answer[1:]}"
    return {"messages": [*row["messages"][:2], {"role": "assistant", "content": reply}]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--output", default="tone-example")
    args = parser.parse_args()
    out = Path(args.output)
    rows = [warm_reply(json.loads(line)) for line in sample_dataset_path().open()]
    random.Random(0).shuffle(rows)
    data = ft.Dataset.from_records(rows[:240])
    train, holdout = data.split(test_size=40, seed=1)

    texts = [m["content"] for row in rows for m in row["messages"]]
    base = build_tiny_base(out / "base-model", texts)
    tuner = ft.Tuner("hf", model=str(base), jobs_dir=out / "jobs")
    print(tuner.validate(train).summary())
    job = tuner.fit(
        train,
        hyperparameters=ft.Hyperparameters(epochs=args.epochs, batch_size=16, learning_rate=3e-3),
        options={"max_length": 128, "full_finetune": True},  # a toy model: train every weight
    )
    job.wait(progress=True)
    print(job.model.ask(holdout[0], max_new_tokens=48))  # one held-out question, to look at

    result = ft.evaluate(
        holdout,
        {
            "base": tuner.base_model,
            "few-shot": tuner.base_model.with_few_shot(train, k=3),
            "tuned": job.model,
        },
        [ft.metrics.regex(TONE, name="house_tone"), ft.metrics.token_f1],
        cache=str(out / "predictions.sqlite3"),
    )
    print(result.to_markdown(baseline="base"))
    comparison = result.compare("tuned", "base", "house_tone")
    print(comparison)
    raise SystemExit(0 if comparison.verdict == "improved" else 1)


if __name__ == "__main__":
    main()
