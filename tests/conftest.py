"""Shared fixtures: offline tiktoken cache, an isolated job registry, sample data."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared"
if "TIKTOKEN_CACHE_DIR" not in os.environ and (SHARED / "tiktoken").is_dir():
    os.environ["TIKTOKEN_CACHE_DIR"] = str(SHARED / "tiktoken")


def tiktoken_available() -> bool:
    """True when the o200k_base encoding loads (offline cache or network)."""
    try:
        import tiktoken

        tiktoken.get_encoding("o200k_base")
    except Exception:
        return False
    return True


needs_tiktoken = pytest.mark.skipif(
    not tiktoken_available(), reason="tiktoken encodings unavailable (no ../shared/tiktoken)"
)


@pytest.fixture(autouse=True)
def _isolated_registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FINETUNE_REGISTRY", str(tmp_path / "registry.sqlite3"))
    monkeypatch.setenv("FINETUNE_HF_JOBS_DIR", str(tmp_path / "hf-jobs"))


def chat(i: int, system: str = "You are a helpful support agent.") -> dict[str, Any]:
    """A small valid chat example, unique per ``i``."""
    return {
        "messages": [
            {"role": "system", "content": system},
            {"role": "user", "content": f"Where is my order #{i}?"},
            {"role": "assistant", "content": f"Order #{i} ships tomorrow."},
        ]
    }


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    """Write rows (dicts, or raw strings written as they are) one per line."""
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(row if isinstance(row, str) else json.dumps(row))
            handle.write("\n")
    return path


@pytest.fixture
def chat_file(tmp_path: Path) -> Path:
    """A JSONL file of 40 valid chat examples."""
    return write_jsonl(tmp_path / "train.jsonl", [chat(i) for i in range(40)])
