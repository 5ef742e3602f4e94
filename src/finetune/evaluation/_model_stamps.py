"""What a local model's cached answers are keyed by: the files they are read from, or the
Hub revision its cache holds, so that a model changed under the same name is asked again."""

from __future__ import annotations

import contextlib
import hashlib
from pathlib import Path

__all__ = ["model_stamp"]


def model_stamp(model: str) -> str:
    """A short stamp of what ``model`` (a folder, a ``.gguf`` file or a Hub id) answers with:
    it changes when the model does."""
    return _folder_stamp(Path(model)) if Path(model).exists() else _hub_stamp(model)


# the files of a model folder its answers depend on: weights, config (its context, its
# positions), tokenizer, chat template, and the generation config that says where one ends
_ANSWERS_READ_FROM = {".safetensors", ".bin", ".json", ".jinja", ".model", ".txt"}


def _folder_stamp(path: Path) -> str:
    """The size and time of each file a model's answers depend on (a GGUF file's own; an
    adapter's and its local base's): a folder edited in place (weights, a context, a chat
    template) is another predictor, whose answers no cache serves from before."""
    stamps = [
        f"{item.name}:{item.stat().st_size}:{item.stat().st_mtime_ns}"
        for item in _answer_files(path)
    ]
    return hashlib.sha256("|".join(stamps).encode()).hexdigest()[:12]


def _hub_stamp(model_id: str) -> str:
    """The revision of a Hub model that its cache holds: a newer revision downloaded under the
    same id is another predictor, as a folder edited in place is ("hub" where none is cached:
    it is downloaded at load)."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # the hf extra is missing: loading the model says so
        return "hub"
    with contextlib.suppress(ValueError):  # no Hub id: loading it says what is wrong
        found = try_to_load_from_cache(model_id, "config.json")
        if isinstance(found, str):  # .../snapshots/<commit>/config.json
            return f"hub-{Path(found).parent.name[:12]}"
    return "hub"


def _answer_files(path: Path, depth: int = 0) -> list[Path]:
    """The files a model's answers are read from: ``path``'s own, and a LoRA adapter's
    base's, where the base is a local folder (an adapter over an adapter, a few deep)."""
    from finetune.backends.hf._merge import adapter_base, is_adapter

    if not path.is_dir():
        return [path]
    found = (item for item in path.iterdir() if item.suffix in _ANSWERS_READ_FROM)
    files = sorted(item for item in found if item.is_file())
    if depth < 3 and is_adapter(path):
        with contextlib.suppress(OSError, ValueError, KeyError):  # loading it says what is wrong
            base = Path(adapter_base(path))
            files += _answer_files(base, depth + 1) if base.exists() else []
    return files
