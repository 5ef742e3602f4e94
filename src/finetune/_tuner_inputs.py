"""What a Tuner is built with, how it waits and what a fit trains on, checked where it is
given: a wrong type is a ``TypeError`` naming the argument, never an ``AttributeError`` at the
first fit."""

from __future__ import annotations

import inspect
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from finetune._errors import DatasetError, UnsupportedFeature
from finetune._numbers import is_real
from finetune.registry import JobRegistry
from finetune.types import ModelRef

if TYPE_CHECKING:
    from finetune.backends.base import BaseBackend
    from finetune.dataset import Dataset

__all__ = [
    "RegistryChoice",
    "check_backend_object",
    "check_datasets",
    "check_method_fits",
    "check_seconds",
    "first_kind",
    "model_name",
    "registry_for",
]

RegistryChoice = JobRegistry | str | os.PathLike[str] | bool | None
"""What ``Tuner(registry=...)`` takes: a registry, its file's path, ``False`` for none, or the
default one (``None``)."""


def registry_for(registry: RegistryChoice) -> JobRegistry | None:
    """The job registry a Tuner keeps its jobs in, or ``None`` when it keeps none."""
    if registry is False:
        return None
    if registry is None or registry is True:
        return JobRegistry()
    if isinstance(registry, str | os.PathLike):
        return JobRegistry(registry)
    if not isinstance(registry, JobRegistry):
        raise TypeError(
            "registry is a JobRegistry, the path of its file, or False for none, "
            f"not {type(registry).__name__} {registry!r}"
        )
    return registry


def model_name(model: Any, backend: BaseBackend) -> str | None:
    """A base model as its name: text, a path (a local folder or GGUF file) as text, or a
    ``ModelRef`` of a model ``backend`` holds (``job.model``, to train it further).

    On a backend that trains here, a model that names a file or folder here is its absolute
    path: the same model whatever the working directory, in the fit's idempotency key (two
    projects' ``./base`` are two models), the job's record and the Tuner's repr."""
    if model is None:
        return model
    if isinstance(model, str | os.PathLike):
        name = _without_stray_spaces(str(os.fspath(model)))
        return name if backend.capabilities.hosted else _path_here(name)
    if isinstance(model, ModelRef):
        return _trained_further(model, backend.name)
    raise TypeError(
        "model is the base model's name or path (or a job's model), not "
        f"{type(model).__name__} {model!r}"
    )


def _without_stray_spaces(model: str) -> str:
    """``model`` as given (blank: none); a name pasted with a space or a line end around it
    (a config's value, a shell variable) is refused naming both, where no file has that very
    name."""
    if not model.strip():
        return ""  # none given
    if model != model.strip() and not os.path.exists(model):
        raise ValueError(f"model {model!r} has white space around it: give {model.strip()!r}")
    return model


def _path_here(name: str) -> str:
    """``name`` as an absolute path where it names a file or folder here, else as it is."""
    path = os.path.expanduser(name)
    return os.path.abspath(path) if os.path.exists(path) else name


def _trained_further(model: ModelRef, backend: str) -> str:
    """The name of a model a job made, to be trained on: one on this backend, as it is."""
    if model.endpoint:
        where = f"model {model} is served at {model.endpoint}, where nothing is trained"
        raise ValueError(f"{where}: give a Tuner a model its backend holds")
    if model.few_shot:
        raise ValueError(f"model {model} is a few-shot prompt: train the model, {model.name!r}")
    holders = {model.backend, "hf"} if model.backend == "gguf" else {model.backend}
    if backend not in holders:
        raise ValueError(
            f"model {model} is on {model.backend}: Tuner({backend!r}) trains the models "
            f"{backend} holds (train it further with Tuner({model.backend!r}, model=...))"
        )
    return model.name


def check_backend_object(backend: Any) -> None:
    """A backend given as an object is an instance with the backend's calls, not its class."""
    if inspect.isclass(backend):
        raise TypeError(
            f"backend {backend.__name__} is a class: give an instance, {backend.__name__}(...), "
            "or a backend's name"
        )
    if not callable(getattr(backend, "get_job", None)):
        raise TypeError(
            "backend is a backend's name ('openai', 'hf', ...; `finetune backends` lists them) "
            f"or a backend object, not {type(backend).__name__} {backend!r:.60}"
        )


def check_seconds(**given: Any) -> None:
    """Each of ``given`` that is set is a number of seconds (text or ``True`` is refused)."""
    for name, value in given.items():
        if value is not None and not is_real(value):
            raise TypeError(f"{name} is a number of seconds, not {value!r}")


def check_datasets(dataset: Any, validation: Any, what: str = "dataset") -> None:
    """The data a Tuner is given is a ``Dataset`` (and so is ``validation``, when given)."""
    from finetune.dataset import require_dataset

    require_dataset(dataset, what)
    if validation is not None:
        _refuse_settings_as_validation(validation)
        require_dataset(validation, "validation")


def _refuse_settings_as_validation(value: Any) -> None:
    """Hyperparameters given second, as ``estimate`` takes them: ``fit``'s second argument is
    the validation set, and the settings go by name."""
    from finetune.types import Hyperparameters, LoRA

    if isinstance(value, LoRA):
        meant = "hyperparameters=ft.Hyperparameters(lora=...)"
    elif isinstance(value, Hyperparameters | Mapping):
        meant = "hyperparameters=..."
    else:
        return
    raise TypeError(
        f"validation is a ft.Dataset, not {type(value).__name__}: the second argument is the "
        f"validation set, and settings go by name: fit(train, {meant})"
    )


def check_method_fits(method: str, kind: str | None) -> None:
    """Refuse examples of ``kind`` that ``method`` does not train (pairs are DPO's alone)."""
    if method == "dpo" and kind not in (None, "preference"):
        raise UnsupportedFeature("method='dpo' needs preference examples (chosen/rejected)")
    if method == "sft" and kind == "preference":
        raise UnsupportedFeature(
            "preference examples (chosen/rejected) train with method='dpo', not with sft "
            "(the default)"
        )


def first_kind(train: Dataset) -> str | None:
    """The training set's kind; ``None`` where its first row is no example (or cannot be
    read), which validation then names with every other problem. An empty set is refused."""
    try:
        return train.kind
    except DatasetError as error:
        if error.line is None:
            raise
        return None
