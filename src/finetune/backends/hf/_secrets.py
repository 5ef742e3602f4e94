"""Credentials a local job is given: passed to its worker in the environment, never written
to the job folder (``config.json``), nor to the ``training_args.bin`` that TRL saves beside
the model and each checkpoint, a folder users share and push to the Hub."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from finetune._errors import InvalidRequestError
from finetune._secret_fields import names_a_credential

if TYPE_CHECKING:
    from finetune.backends.base import JobRequest
    from finetune.backends.hf._config import LocalOptions

__all__ = ["split_secrets"]

# TrainingArguments' one credential, and the variable huggingface_hub reads in its place
_HUB_TOKEN, _HUB_TOKEN_VARIABLE = "hub_token", "HF_TOKEN"


def split_secrets(
    request: JobRequest, options: LocalOptions
) -> tuple[list[dict[str, Any]], LocalOptions, dict[str, str]]:
    """The request's integrations and the job's options as saved in ``config.json`` (no
    credentials), and the credentials as environment variables for the worker: W&B reads
    ``WANDB_API_KEY``, the Hub ``HF_TOKEN`` (given as ``trainer_args={"hub_token": ...}``, as
    TRL takes it). In ``hyperparameters.extra`` (kept in the registry) a token is refused."""
    if _HUB_TOKEN in request.hyperparameters.extra:
        raise InvalidRequestError(
            "hyperparameters.extra['hub_token'] is a credential, and hyperparameters are kept "
            "in the job registry: give it as options trainer_args={'hub_token': ...}, or set "
            "HF_TOKEN in the environment; either reaches the worker, never a file",
            backend="hf",
            param="hyperparameters.extra.hub_token",
        )
    kept, env = _integrations(request.integrations)
    trainer_args = dict(options.trainer_args)
    token = trainer_args.pop(_HUB_TOKEN, None)
    if token is None:
        return kept, options, env
    env[_HUB_TOKEN_VARIABLE] = str(token)
    return kept, options.model_copy(update={"trainer_args": trainer_args}), env


def _integrations(
    integrations: list[dict[str, Any]],
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    kept, env = [], {}
    for item in integrations:
        nested: dict[str, Any] = item["wandb"] if isinstance(item.get("wandb"), dict) else {}
        keys = [v for k, v in {**item, **nested}.items() if _credential(k) and isinstance(v, str)]
        if item.get("type", "wandb") == "wandb" and keys and keys[-1]:
            env["WANDB_API_KEY"] = keys[-1]
        clean = {k: v for k, v in item.items() if not _credential(k)}
        if nested:
            clean["wandb"] = {k: v for k, v in nested.items() if not _credential(k)}
        kept.append(clean)
    return kept, env


def _credential(field: Any) -> bool:
    """A field named as a credential (``api_key``, ``apiKey``, ``WANDB_API_KEY``), or a
    token of any name."""
    return isinstance(field, str) and (names_a_credential(field) or "token" in field.lower())
