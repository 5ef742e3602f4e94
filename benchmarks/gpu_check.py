"""The GPU readiness check of local training (run by scripts/gpu-check.sh on a CUDA machine).

Usage: python benchmarks/gpu_check.py [--hidden 1024 --layers 16] [--steps 20] [--dry-run]

Builds a Llama-shaped model from a config (random weights: speed does not depend on them, and
nothing comes from a hub), then prints one table:

1. a raw PyTorch + PEFT loop under bf16 autocast (the baseline), tokens/s;
2. ``Tuner("hf")`` with no options (bf16 on a bf16 GPU), tokens/s and the ratio;
3. QLoRA: ``LoRA(quantize_4bit=True)`` (bitsandbytes), tokens/s and peak GPU memory;
4. a 2-process launch (``launcher="torchrun"``): on one GPU the two ranks train on CPU over
   gloo (NCCL refuses two ranks on one device), on two GPUs one rank each.

``--dry-run`` runs 1, 2 and 4 on the CPU with a small model, to check the script itself.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import finetune as ft
from finetune.demo import build_tiny_base, sample_dataset_path

RAW_LOOP = """
import json, sys, time
import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM, AutoTokenizer
base, data, steps, device = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
tokenizer = AutoTokenizer.from_pretrained(base)
model = AutoModelForCausalLM.from_pretrained(base).to(device)
model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05,
    target_modules="all-linear", task_type="CAUSAL_LM"))
rows = [json.loads(line) for line in open(data)]
encoded = [tokenizer.apply_chat_template(r["messages"], tokenize=True, return_dict=True)
    ["input_ids"] for r in rows]
optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-4)
tokens, started = 0, time.perf_counter()
for step in range(steps):
    chunk = [encoded[(step * 8 + i) % len(encoded)] for i in range(8)]
    width = max(map(len, chunk))
    ids = torch.tensor([c + [tokenizer.pad_token_id] * (width - len(c)) for c in chunk]).to(device)
    mask = torch.tensor([[1] * len(c) + [0] * (width - len(c)) for c in chunk]).to(device)
    tokens += int(mask.sum())
    with torch.autocast(device.split(":")[0], dtype=torch.bfloat16):
        labels = ids.masked_fill(mask == 0, -100)
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()
if device.startswith("cuda"):
    torch.cuda.synchronize()
print(json.dumps({"train_s": time.perf_counter() - started, "tokens": tokens}))
"""


def raw_loop(base: str, data_file: Path, steps: int, device: str) -> tuple[float, float]:
    done = subprocess.run(
        [sys.executable, "-c", RAW_LOOP, base, str(data_file), str(steps), device],
        check=True,
        capture_output=True,
        text=True,
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return float(result["train_s"]), float(result["tokens"])


def job(base: str, data: ft.Dataset, steps: int, **options: Any) -> dict[str, Any]:
    hyperparameters = ft.Hyperparameters(
        epochs=1, batch_size=8, seed=0, lora=options.pop("lora", None)
    )
    tuner = ft.Tuner("hf", model=base, registry=False)
    started = time.perf_counter()
    handle = tuner.fit(
        data,
        hyperparameters=hyperparameters,
        options={"max_steps": steps, "logging_steps": 5, **options},
        skip_validation=True,
    )
    handle.wait(poll_interval=0.2)
    wall = time.perf_counter() - started
    if handle.job.status is not ft.JobStatus.SUCCEEDED:
        return {"error": tuner.backend.worker_log(handle.id)[-2000:], "wall_s": wall}
    lines = Path(handle.job.raw["job_dir"], "events.jsonl").read_text().splitlines()
    events = [json.loads(x) for x in lines]
    summary = next(e["data"] for e in events if "train_runtime" in e.get("data", {}))
    return {
        "wall_s": wall,
        "train_s": float(summary["train_runtime"]),
        "tokens": float(handle.job.trained_tokens or 0),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hidden", type=int, default=1024)
    parser.add_argument("--layers", type=int, default=16)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--dry-run", action="store_true", help="CPU, small model, no QLoRA")
    args = parser.parse_args()
    import torch

    cuda = torch.cuda.is_available() and not args.dry_run
    if not cuda and not args.dry_run:
        sys.exit("no CUDA GPU here; pass --dry-run to check the script on CPU")
    hidden, layers = (128, 2) if args.dry_run else (args.hidden, args.layers)
    print(
        f"torch {torch.__version__}, CUDA {torch.version.cuda}, GPU: "
        f"{torch.cuda.get_device_name(0) if cuda else 'none'}, "
        f"bf16: {cuda and torch.cuda.is_bf16_supported()}, GPUs: {torch.cuda.device_count()}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["FINETUNE_HF_JOBS_DIR"] = str(Path(tmp) / "jobs")
        rows = [json.loads(line) for line in sample_dataset_path().open()]
        texts = [m["content"] for row in rows for m in row["messages"]]
        base = str(
            build_tiny_base(
                Path(tmp) / "base", texts, hidden_size=hidden, layers=layers, pretrain_steps=1
            )
        )
        data_file = Path(tmp) / "rows.jsonl"
        data_file.write_text("".join(json.dumps(r) + "\n" for r in rows))
        data = ft.Dataset.from_records(rows)
        raw_s, raw_tokens = raw_loop(base, data_file, args.steps, "cuda" if cuda else "cpu")
        runs: dict[str, dict[str, Any]] = {
            "Tuner('hf'), no options": job(base, data, args.steps),
        }
        if cuda:
            runs["QLoRA (quantize_4bit)"] = job(
                base, data, args.steps, lora=ft.LoRA(quantize_4bit=True)
            )
        processes = {"launcher": "torchrun", "num_processes": 2}
        if torch.cuda.device_count() < 2:
            processes["device"] = "cpu"
        runs["2 processes (torchrun)"] = job(base, data, args.steps, **processes)
        print(f"\n{hidden} hidden x {layers} layers, {args.steps} steps x batch 8, LoRA r=16")
        print("| run | wall s | train s | tokens/s | ratio to raw |")
        print("|---|---|---|---|---|")
        raw_rate = raw_tokens / raw_s
        print(f"| raw PyTorch+PEFT, bf16 autocast | - | {raw_s:.1f} | {raw_rate:.0f} | 1.00x |")
        for name, run in runs.items():
            if "error" in run:
                print(f"| {name} | FAILED: {run['error'][-300:]!r} | | | |")
                continue
            rate = run["tokens"] / run["train_s"]
            print(
                f"| {name} | {run['wall_s']:.1f} | {run['train_s']:.1f} | {rate:.0f} | "
                f"{rate / raw_rate:.2f}x |"
            )
        if cuda:
            peak = torch.cuda.max_memory_allocated() / 2**30
            print(f"peak GPU memory of this process: {peak:.1f} GiB")


if __name__ == "__main__":
    main()
