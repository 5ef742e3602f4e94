"""finetune: one provider-agnostic API to validate data, fine-tune and prove the result.

>>> import finetune as ft
>>> tuner = ft.Tuner("fake", model="base")          # or "openai", "mistral", "hf", a plugin
"""

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
    RateLimitError,
    ServerError,
    UnsupportedFeature,
    ValidationFailed,
    WaitTimeout,
)
from finetune._series import MetricSeries
from finetune.backends import Capabilities, available_backends, register_backend
from finetune.dataset import Dataset
from finetune.evaluation import EvalResult, aevaluate, evaluate, metrics
from finetune.registry import JobRecord, JobRegistry
from finetune.tuner import AsyncJobHandle, AsyncTuner, JobHandle, Tuner
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

__version__ = "0.1.0"

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
    "RateLimitError",
    "ServerError",
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
