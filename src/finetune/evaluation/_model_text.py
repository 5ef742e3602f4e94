"""A model written as text, ``"backend:model"``, as ``str(ref)``, an eval config and the
command line write it."""

from __future__ import annotations

import re

from finetune.types import ModelRef

__all__ = ["model_named"]

_SERVED_AT = re.compile(r"(?P<name>.+)@(?P<url>https?://\S+)")  # str(ref) of a served model


def model_named(text: str) -> ModelRef | str:
    """``"openai:gpt-4.1-mini"`` as its ``ModelRef`` (``"gguf:path"`` a GGUF file's, and
    ``"openai-compatible:name@http://host/v1"`` a served model's, as ``str(ref)`` writes
    them); text that names no installed backend before its first colon stays text, for the
    predictor's refusal to show how to write it."""
    from finetune.backends import available_backends

    backend, _, name = text.partition(":")
    if not name.strip():
        return text
    if backend == "gguf":
        return ModelRef.gguf(name)
    if backend == "openai-compatible":
        served = _SERVED_AT.fullmatch(name)
        if served:
            return ModelRef.openai_compatible(served["url"], served["name"])
        raise ValueError(
            f"{text!r}: a model of an OpenAI-compatible server is "
            f"ft.ModelRef.openai_compatible(base_url, {name!r}), its URL given "
            f"(or {backend}:{name}@http://host/v1, as str(ref) writes it)"
        )
    return ModelRef(backend=backend, name=name) if backend in available_backends() else text
