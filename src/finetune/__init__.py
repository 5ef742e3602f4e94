"""finetune: one provider-agnostic API to validate data, fine-tune and prove the result.

>>> import finetune as ft
>>> tuner = ft.Tuner("fake", model="base")          # or "openai", "together", "hf", a plugin

Importing the package imports nothing heavy: each public name is loaded on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from finetune import evaluation, validation
    from finetune._errors import (
        AuthenticationError,
        BackendError,
        BackendNotFound,
        DatasetError,
        FinetuneError,
        InvalidRequestError,
        JobFailed,
        JobNotFound,
        MissingDependency,
        PermissionDeniedError,
        ProviderUnavailable,
        RateLimitError,
        RegistryError,
        ServerError,
        StorageError,
        UnsupportedFeature,
        ValidationFailed,
        WaitTimeout,
    )
    from finetune._series import MetricSeries
    from finetune._sync import JobHandle, Tuner
    from finetune.backends import Capabilities, available_backends, register_backend
    from finetune.dataset import Dataset
    from finetune.evaluation import EvalResult, aevaluate, evaluate, metrics
    from finetune.registry import JobRecord, JobRegistry
    from finetune.tuner import AsyncJobHandle, AsyncTuner
    from finetune.types import (
        ChatExample,
        Checkpoint,
        CompletionExample,
        CostEstimate,
        FileRef,
        Hyperparameters,
        Job,
        JobError,
        JobEvent,
        JobStatus,
        LoRA,
        Message,
        MetricPoint,
        ModelRef,
        PreferenceExample,
    )
    from finetune.validation import ValidationReport

__version__ = "0.2.0"

_ERRORS = (
    "AuthenticationError",
    "BackendError",
    "BackendNotFound",
    "DatasetError",
    "FinetuneError",
    "InvalidRequestError",
    "JobFailed",
    "JobNotFound",
    "MissingDependency",
    "PermissionDeniedError",
    "ProviderUnavailable",
    "RateLimitError",
    "RegistryError",
    "ServerError",
    "StorageError",
    "UnsupportedFeature",
    "ValidationFailed",
    "WaitTimeout",
)
_TYPES = (
    "ChatExample",
    "Checkpoint",
    "CompletionExample",
    "CostEstimate",
    "FileRef",
    "Hyperparameters",
    "Job",
    "JobError",
    "JobEvent",
    "JobStatus",
    "LoRA",
    "Message",
    "MetricPoint",
    "ModelRef",
    "PreferenceExample",
)
_WHERE: dict[str, str] = {
    **dict.fromkeys(_ERRORS, "finetune._errors"),
    **dict.fromkeys(_TYPES, "finetune.types"),
    "MetricSeries": "finetune._series",
    "Tuner": "finetune._sync",
    "JobHandle": "finetune._sync",
    "AsyncTuner": "finetune.tuner",
    "AsyncJobHandle": "finetune.tuner",
    "Capabilities": "finetune.backends",
    "available_backends": "finetune.backends",
    "register_backend": "finetune.backends",
    "Dataset": "finetune.dataset",
    "EvalResult": "finetune.evaluation",
    "aevaluate": "finetune.evaluation",
    "evaluate": "finetune.evaluation",
    "metrics": "finetune.evaluation",
    "JobRecord": "finetune.registry",
    "JobRegistry": "finetune.registry",
    "ValidationReport": "finetune.validation",
}
_MODULES = ("evaluation", "validation")

__all__ = [
    "AsyncJobHandle",
    "AsyncTuner",
    "AuthenticationError",
    "BackendError",
    "BackendNotFound",
    "Capabilities",
    "ChatExample",
    "Checkpoint",
    "CompletionExample",
    "CostEstimate",
    "Dataset",
    "DatasetError",
    "EvalResult",
    "FileRef",
    "FinetuneError",
    "Hyperparameters",
    "InvalidRequestError",
    "Job",
    "JobError",
    "JobEvent",
    "JobFailed",
    "JobHandle",
    "JobNotFound",
    "JobRecord",
    "JobRegistry",
    "JobStatus",
    "LoRA",
    "Message",
    "MetricPoint",
    "MetricSeries",
    "MissingDependency",
    "ModelRef",
    "PermissionDeniedError",
    "PreferenceExample",
    "ProviderUnavailable",
    "RateLimitError",
    "RegistryError",
    "ServerError",
    "StorageError",
    "Tuner",
    "UnsupportedFeature",
    "ValidationFailed",
    "ValidationReport",
    "WaitTimeout",
    "__version__",
    "aevaluate",
    "available_backends",
    "evaluate",
    "evaluation",
    "metrics",
    "register_backend",
    "validation",
]


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        return importlib.import_module(f"finetune.{name}")
    where = _WHERE.get(name)
    if where is None:
        raise AttributeError(f"module 'finetune' has no attribute {name!r}")
    value = getattr(importlib.import_module(where), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
