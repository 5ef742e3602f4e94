"""What a local job trains on, checked before a worker starts: the training file the
backend wrote, its kind of examples against the method, and the model's tokenizer."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from finetune._errors import InvalidRequestError, MissingDependency, UnsupportedFeature
from finetune.backends.hf._config import LocalOptions
from finetune.backends.hf._models import looks_like_path
from finetune.types import FileRef

if TYPE_CHECKING:
    from finetune.backends.base import JobRequest

__all__ = [
    "check_method",
    "check_model",
    "check_packing",
    "example_kind",
    "load_tokenizer",
    "local_path",
    "needs_trust",
    "untrusted_model",
]


def local_path(ref: FileRef) -> str:
    """The path of a training file this backend wrote (any other file is refused)."""
    if ref.filename is None or not Path(ref.filename).exists():
        raise InvalidRequestError(
            f"training file {ref.id} is not a local file this backend wrote; "
            "pass a Dataset to fit()",
            backend="hf",
            param="training_file",
        )
    return ref.filename


def example_kind(ref: FileRef) -> str:
    """The kind of examples a training file holds, read from its first line."""
    from finetune.dataset._formats import detect_kind

    with open(local_path(ref), encoding="utf-8") as handle:
        first = handle.readline()
    return str(detect_kind(json.loads(first)))


def check_method(method: str, kind: str) -> None:
    """Refuse a trainer that cannot take this kind of examples."""
    if method == "sft" and kind == "preference":
        raise UnsupportedFeature(
            "the SFT trainer cannot take preference examples; use method='dpo'"
        )
    if method == "dpo" and kind != "preference":
        raise UnsupportedFeature(f"the DPO trainer needs preference examples, not {kind}")


def load_tokenizer(path: str, trust_remote_code: bool, spec: str) -> Any:
    """The model's tokenizer, or an error naming the model as the user wrote it."""
    try:
        from transformers import AutoTokenizer
    except ImportError as exc:
        raise MissingDependency("transformers", "hf", purpose="to train locally") from exc
    hub_id = not looks_like_path(spec)  # resolve() refused a path that is not there
    try:
        return AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as exc:
        if needs_trust(exc):
            raise untrusted_model(spec) from None
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        offline = " (with no network, HF_HUB_OFFLINE=1 skips the Hub and its retries)"
        raise InvalidRequestError(
            f"model {spec!r} could not be loaded: it is not a model folder or .gguf file "
            "here, and not a model the Hugging Face Hub or its cache has "
            f"({type(exc).__name__}: {reason}); pass the path of a local model folder or "
            f".gguf file{offline if hub_id else ''}",
            backend="hf",
            param="model",
        ) from None


def needs_trust(exc: Exception) -> bool:
    """Whether transformers refused to load a model because it runs code of its own."""
    return isinstance(exc, ValueError) and "trust_remote_code" in str(exc)


def untrusted_model(spec: str, adapter_of: str | None = None) -> InvalidRequestError:
    """The refusal of a model that ships its own code, saying where to allow it
    (``adapter_of``: the base that ships it, when ``spec`` is a LoRA adapter's folder)."""
    model = f"{spec!r}" if adapter_of is None else f"{spec!r} (a LoRA adapter of {adapter_of!r})"
    return InvalidRequestError(
        f"model {model} ships its own code, which transformers runs only with "
        "trust_remote_code=True; read that code, and if you trust it pass "
        "trust_remote_code=True (Tuner('hf', model=..., trust_remote_code=True), "
        "fit(options={'trust_remote_code': True}), or HFPredictor(..., trust_remote_code=True))",
        backend="hf",
        param="trust_remote_code",
    )


def check_model(tokenizer: Any, path: str, kind: str, options: LocalOptions) -> None:
    """Refuse chat examples for a model without a chat template."""
    if kind == "completion":
        return
    if getattr(tokenizer, "chat_template", None) is None:
        from finetune.validation._tokens import no_chat_template

        raise no_chat_template(path)


def check_packing(
    options: LocalOptions, request: JobRequest, context: Callable[[], int | None]
) -> None:
    """Refuse packing for DPO, which would ignore it, and SFT packing into rows longer than
    the model's ``context()`` (read only for a packed fit): each packed row is ``max_length``
    tokens, past the positions the model has (learned ones fail the worker mid-training with
    an IndexError; rotary ones were never trained there)."""
    if not options.packing:
        return
    if request.method != "sft":
        raise InvalidRequestError(
            "packing=True packs SFT examples into rows; TRL's DPO trains each preference pair "
            "in a row of its own and would ignore it: leave it off for a DPO fit "
            "(options={'packing': False})",
            backend="hf",
            param="packing",
        )
    limit = context()
    if limit is not None and options.max_length > limit:
        raise InvalidRequestError(
            f"packing=True fills rows of max_length={options.max_length} tokens, over the "
            f"context of {request.base_model} ({limit} tokens): set max_length={limit} or "
            "lower, or leave packing off",
            backend="hf",
            param="max_length",
        )
