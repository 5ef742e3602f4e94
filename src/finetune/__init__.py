"""finetune: one provider-agnostic API to validate data, fine-tune and prove the result.

>>> import finetune as ft
>>> tuner = ft.Tuner("fake", model="base")          # or "openai", "together", "hf", a plugin

Importing the package imports nothing heavy: each public name is loaded on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from finetune import evaluation as evaluation
    from finetune import validation as validation
    from finetune._errors import (
        AuthenticationError as AuthenticationError,
    )
    from finetune._errors import (
        BackendError as BackendError,
    )
    from finetune._errors import (
        BackendNotFound as BackendNotFound,
    )
    from finetune._errors import (
        DatasetError as DatasetError,
    )
    from finetune._errors import (
        FinetuneError as FinetuneError,
    )
    from finetune._errors import (
        InvalidRequestError as InvalidRequestError,
    )
    from finetune._errors import (
        JobFailed as JobFailed,
    )
    from finetune._errors import (
        JobNotFound as JobNotFound,
    )
    from finetune._errors import (
        MissingDependency as MissingDependency,
    )
    from finetune._errors import (
        PermissionDeniedError as PermissionDeniedError,
    )
    from finetune._errors import (
        ProviderUnavailable as ProviderUnavailable,
    )
    from finetune._errors import (
        RateLimitError as RateLimitError,
    )
    from finetune._errors import (
        RegistryError as RegistryError,
    )
    from finetune._errors import (
        ServerError as ServerError,
    )
    from finetune._errors import (
        StorageError as StorageError,
    )
    from finetune._errors import (
        UnsupportedFeature as UnsupportedFeature,
    )
    from finetune._errors import (
        ValidationFailed as ValidationFailed,
    )
    from finetune._errors import (
        WaitTimeout as WaitTimeout,
    )
    from finetune._fit import FitOptions as FitOptions
    from finetune._handle import AsyncJobHandle as AsyncJobHandle
    from finetune._series import MetricSeries as MetricSeries
    from finetune._sync import JobHandle as JobHandle
    from finetune._sync import Tuner as Tuner
    from finetune.backends import Capabilities as Capabilities
    from finetune.backends import available_backends as available_backends
    from finetune.backends import register_backend as register_backend
    from finetune.dataset import Dataset as Dataset
    from finetune.evaluation import EvalResult as EvalResult
    from finetune.evaluation import aevaluate as aevaluate
    from finetune.evaluation import evaluate as evaluate
    from finetune.evaluation import metrics as metrics
    from finetune.registry import JobRecord as JobRecord
    from finetune.registry import JobRegistry as JobRegistry
    from finetune.tuner import AsyncTuner as AsyncTuner
    from finetune.types import (
        ChatExample as ChatExample,
    )
    from finetune.types import (
        Checkpoint as Checkpoint,
    )
    from finetune.types import (
        CompletionExample as CompletionExample,
    )
    from finetune.types import (
        CostEstimate as CostEstimate,
    )
    from finetune.types import (
        FileRef as FileRef,
    )
    from finetune.types import (
        Hyperparameters as Hyperparameters,
    )
    from finetune.types import (
        Job as Job,
    )
    from finetune.types import (
        JobError as JobError,
    )
    from finetune.types import (
        JobEvent as JobEvent,
    )
    from finetune.types import (
        JobStatus as JobStatus,
    )
    from finetune.types import (
        LoRA as LoRA,
    )
    from finetune.types import (
        Message as Message,
    )
    from finetune.types import (
        MetricPoint as MetricPoint,
    )
    from finetune.types import (
        ModelRef as ModelRef,
    )
    from finetune.types import (
        PreferenceExample as PreferenceExample,
    )
    from finetune.validation import ValidationReport as ValidationReport


__version__ = "0.2.0"

# each public name and the module it lives in, loaded on first use (PEP 562)
_EXPORTS = {
    "finetune._errors": (
        "AuthenticationError BackendError BackendNotFound DatasetError FinetuneError "
        "InvalidRequestError JobFailed JobNotFound MissingDependency PermissionDeniedError "
        "ProviderUnavailable RateLimitError RegistryError ServerError StorageError "
        "UnsupportedFeature ValidationFailed WaitTimeout"
    ),
    "finetune.types": (
        "ChatExample Checkpoint CompletionExample CostEstimate FileRef Hyperparameters Job "
        "JobError JobEvent JobStatus LoRA Message MetricPoint ModelRef PreferenceExample"
    ),
    "finetune._fit": "FitOptions",
    "finetune._series": "MetricSeries",
    "finetune._sync": "JobHandle Tuner",
    "finetune._handle": "AsyncJobHandle",
    "finetune.tuner": "AsyncTuner",
    "finetune.backends": "Capabilities available_backends register_backend",
    "finetune.dataset": "Dataset",
    "finetune.evaluation": "EvalResult aevaluate evaluate metrics",
    "finetune.registry": "JobRecord JobRegistry",
    "finetune.validation": "ValidationReport",
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names.split()}
_MODULES = ("evaluation", "validation")

__all__ = sorted([*_WHERE, *_MODULES, "__version__"])


# names a newcomer tries first, which live on a Tuner or in a module of their own
_ELSEWHERE = {
    "validate": "a Tuner's: ft.Tuner(backend, model=...).validate(data), or "
    "finetune.validation.validate(data, target=..., model=...) with no Tuner",
    "estimate": "a Tuner's: ft.Tuner(backend, model=...).estimate(data)",
    "fit": "a Tuner's: ft.Tuner(backend, model=...).fit(data)",
    "export_model": "in finetune.export: from finetune.export import export_model",
}


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        return importlib.import_module(f"finetune.{name}")
    where = _WHERE.get(name)
    if where is None:
        hint = f"; {name} is {_ELSEWHERE[name]}" if name in _ELSEWHERE else ""
        raise AttributeError(f"module 'finetune' has no attribute {name!r}{hint}")
    value = getattr(importlib.import_module(where), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
