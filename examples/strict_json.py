"""Strict JSON output: turn support messages into a JSON ticket the back office can parse.

Runs offline on CPU through ``Tuner("hf")`` with a tiny base model built on the spot; the
evaluation checks that every answer is valid JSON, matches a schema, and has the right fields.

    python examples/strict_json.py [--epochs 15] [--output json-example]
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path
from typing import Any

import finetune as ft
from finetune.demo import build_tiny_base, sample_dataset_path

SYSTEM = "Return the ticket as JSON with the keys name, order and action."
ACTIONS = {
    "replacement": "replace",
    "ships": "expedite",
    "refund": "refund",
    "address": "update_address",
    "cancelled": "cancel",
}
SCHEMA = {
    "type": "object",
    "required": ["name", "order", "action"],
    "properties": {
        "name": {"type": "string"},
        "order": {"type": "string", "pattern": "^[0-9]+$"},
        "action": {"enum": sorted(ACTIONS.values())},
    },
    "additionalProperties": False,
}


def ticket(row: dict[str, Any]) -> dict[str, Any]:
    """The support example as a JSON extraction example."""
    user = row["messages"][1]["content"]
    reply = row["messages"][2]["content"]
    name = user.split("this is ")[1].split(".")[0]
    order = reply.split("Order ")[1].split(":")[0]
    action = next(value for key, value in ACTIONS.items() if key in reply)
    answer = json.dumps({"name": name, "order": order, "action": action})
    return {
        "messages": [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": user},
            {"role": "assistant", "content": answer},
        ]
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--output", default="json-example")
    args = parser.parse_args()
    out = Path(args.output)
    rows = [ticket(json.loads(line)) for line in sample_dataset_path().open()]
    random.Random(0).shuffle(rows)
    train, holdout = ft.Dataset.from_records(rows[:300]).split(test_size=40, seed=1)

    texts = [m["content"] for row in rows for m in row["messages"]]
    base = build_tiny_base(out / "base-model", texts)
    tuner = ft.Tuner("hf", model=str(base), jobs_dir=out / "jobs")
    job = tuner.fit(
        train,
        hyperparameters=ft.Hyperparameters(epochs=args.epochs, batch_size=16, learning_rate=3e-3),
        options={"max_length": 128, "full_finetune": True},  # a toy model: train every weight
    )
    job.wait(progress=True)

    metrics: list[ft.metrics.Metric] = [ft.metrics.json_valid, ft.metrics.json_fields]
    try:
        metrics.append(ft.metrics.json_schema(SCHEMA))
    except ft.MissingDependency as missing:  # jsonschema comes with finetune[eval]
        print(f"skipping json_schema: {missing}")
    result = ft.evaluate(
        holdout,
        {"base": tuner.base_model, "tuned": job.model},
        metrics,
        cache=str(out / "predictions.sqlite3"),
        predictor_options={"base": {"max_new_tokens": 40}, "tuned": {"max_new_tokens": 40}},
    )
    print(result.to_markdown(baseline="base"))
    comparison = result.compare("tuned", "base", "json_valid")
    print(comparison)
    raise SystemExit(0 if comparison.verdict == "improved" else 1)


if __name__ == "__main__":
    main()
