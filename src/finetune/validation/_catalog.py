"""The versioned table of fine-tunable models: context limits, prices, default epochs."""

from __future__ import annotations

import functools
import json
import os
from importlib.resources import files
from typing import Any

__all__ = ["ModelInfo", "catalog", "default_epochs", "model_info"]

ENV_FILE = "FINETUNE_MODELS_FILE"


@functools.lru_cache(maxsize=2)
def _load(path: str | None) -> dict[str, Any]:
    if path:
        with open(path, encoding="utf-8") as handle:
            loaded: dict[str, Any] = json.load(handle)
            return loaded
    text = files("finetune").joinpath("data/models.json").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def catalog() -> dict[str, Any]:
    """The model table in use (``$FINETUNE_MODELS_FILE`` when set, else the bundled one)."""
    return _load(os.environ.get(ENV_FILE))


class ModelInfo(dict[str, Any]):
    """A catalog entry: ``context``, ``price`` (USD per 1M tokens) and ``low``/``high``."""


def model_info(target: str, model: str) -> ModelInfo | None:
    """The entry for ``model`` (a dated snapshot matches its alias prefix), or None."""
    table = catalog().get(target, {}).get("models", {})
    name = model.removeprefix("ft:").split(":")[0]
    if name in table:
        return ModelInfo(table[name])
    for known in sorted(table, key=len, reverse=True):
        if name.startswith(known) or known.startswith(name):
            return ModelInfo(table[known])
    return None


def default_epochs(target: str, examples: int) -> int:
    """The provider's documented rule for epochs='auto'.

    OpenAI: 3 epochs, raised so that epochs x examples >= 100 (at most 25 epochs), lowered so
    that it stays <= 25,000 (at least 1 epoch).
    """
    rule = catalog().get(target, {}).get("default_epochs", 1)
    if rule != "openai-heuristic":
        return int(rule)
    epochs = 3
    if examples and examples * epochs < 100:
        epochs = min(25, 100 // examples)
    elif examples * epochs > 25_000:
        epochs = max(1, 25_000 // examples)
    return epochs
