"""One script for every backend: validate, estimate, fit, wait, then read metrics and events.

Only the backend name and the model change between providers; credentials and endpoints come
from the environment (``OPENAI_API_KEY``, ``TOGETHER_API_KEY``, ``FIREWORKS_API_KEY`` and
``FIREWORKS_ACCOUNT_ID``, and their ``*_BASE_URL``), as in any application. From ``examples/``:

    python any_backend.py openai gpt-4.1-mini-2025-04-14 tickets.jsonl
    python any_backend.py together meta-llama/Meta-Llama-3.1-8B-Instruct-Reference tickets.jsonl
    python any_backend.py fireworks accounts/fireworks/models/llama-v3p1-8b-instruct tickets.jsonl
    python any_backend.py hf path/to/SmolLM2-135M-Instruct.Q4_1.gguf tickets.jsonl
    python any_backend.py fake any-model tickets.jsonl

(Mistral's fine-tuning API is retired: the same script says so before uploading anything.)
"""

from __future__ import annotations

import argparse

import finetune as ft


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").partition("\n")[0])
    parser.add_argument("backend")
    parser.add_argument("model")
    parser.add_argument("data", help="a JSONL file of chat examples")
    args = parser.parse_args()

    train, holdout = ft.Dataset.from_jsonl(args.data).split(test_size=0.2, seed=7)
    with ft.Tuner(args.backend, model=args.model) as tuner:
        tuner.validate(train, holdout).raise_for_errors()
        estimate = tuner.estimate(train, ft.Hyperparameters(epochs=2))
        print(f"tokens {estimate.tokens_total}, billed {estimate.billed_tokens}")
        job = tuner.fit(
            train,
            validation=holdout,
            hyperparameters=ft.Hyperparameters(epochs=2),
            suffix="any-backend",
        )
        done = job.wait(poll_interval=0.5, timeout=3600)
        print(f"status {done.status.value}")
        print(f"model {job.model}")
        events = len(job.events()) if tuner.backend.supports("list_events") else "n/a"
        print(f"metrics {len(job.metrics())} points, events {events}")


if __name__ == "__main__":
    main()
