"""Typed values shared by every backend: examples, hyperparameters, jobs, metrics, costs."""

from __future__ import annotations

import enum
import os
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, get_args

from pydantic import (
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.functional_validators import ModelWrapValidatorHandler

from finetune._errors import in_plain_words
from finetune._json_values import json_settings
from finetune._namespace import PublicNames, public_names
from finetune._numbers import is_whole, no_flag
from finetune._secret_fields import without_credentials
from finetune._synonyms import HYPERPARAMETER_SYNONYMS
from finetune._values import Value as _Value
from finetune._values import without_private as _without_private

if TYPE_CHECKING:
    from collections.abc import Mapping

    from finetune.export import ExportResult

__all__ = [
    "Auto",
    "ChatExample",
    "Checkpoint",
    "CompletionExample",
    "ContentPart",
    "CostEstimate",
    "Example",
    "ExampleKind",
    "FileRef",
    "FunctionCall",
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
    "Role",
    "Tool",
    "ToolCall",
]
__dir__: PublicNames = public_names(__name__)

Role = Literal["system", "user", "assistant", "tool"]
"""Who speaks a message."""
Auto = Literal["auto"]
"""A hyperparameter left for the provider to choose: ``"auto"``."""


class ContentPart(_Value):
    """One part of a multi-part message content (text, image URL, ...)."""

    model_config: ClassVar[ConfigDict] = ConfigDict(frozen=True, extra="allow", defer_build=True)
    type: str
    text: str | None = None


class FunctionCall(_Value):
    """The function an assistant asked to call, with its arguments as a JSON string."""

    name: str
    arguments: str


class ToolCall(_Value):
    """A tool call made by an assistant turn."""

    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class Tool(_Value):
    """A tool (function) the model may call, described by a JSON schema."""

    model_config: ClassVar[ConfigDict] = ConfigDict(frozen=True, extra="allow", defer_build=True)
    type: Literal["function"] = "function"
    function: dict[str, Any]


class Message(_Value):
    """One chat turn. ``weight`` (0 or 1) marks whether an assistant turn is trained on;
    ``reasoning_content``, an assistant turn's chain of thought before its ``content``, for a
    model that reasons (read from ``reasoning`` too)."""

    role: Role
    content: str | list[ContentPart] | None = None
    reasoning_content: str | None = None
    name: str | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None
    weight: Literal[0, 1] | None = None

    @property
    def text(self) -> str:
        """The content as plain text (parts joined)."""
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text or "" for part in self.content)


class ChatExample(_Value):
    """A conversation to learn from: the assistant turns are the targets."""

    kind: Literal["chat"] = "chat"
    messages: list[Message]
    tools: list[Tool] | None = None

    def __str__(self) -> str:
        return _example_text(self)


class CompletionExample(_Value):
    """A prompt and the completion the model should produce."""

    kind: Literal["completion"] = "completion"
    prompt: str
    completion: str

    def __str__(self) -> str:
        return f"prompt: {self.prompt}\ncompletion: {self.completion}"


class PreferenceExample(_Value):
    """A preference pair for DPO: the input conversation, a chosen and a rejected answer."""

    kind: Literal["preference"] = "preference"
    input: list[Message]
    chosen: list[Message]
    rejected: list[Message]
    tools: list[Tool] | None = None

    def __str__(self) -> str:
        return _example_text(self)


Example = Annotated[
    ChatExample | CompletionExample | PreferenceExample, Field(discriminator="kind")
]
"""One training example of any kind, told apart by its ``kind``."""
ExampleKind = Literal["chat", "completion", "preference"]
"""The kinds of example: chat, completion and preference (for DPO)."""
EXAMPLE_KINDS: tuple[str, ...] = get_args(ExampleKind)


def _example_text(example: ChatExample | PreferenceExample) -> str:
    """``print(example)``: its turns as ``role: text`` lines, a tool call as ``name({...})``."""
    from finetune.evaluation._prompts import example_text

    return example_text(example)


class _Settings(_Value):
    """Settings a person types (``ft.Hyperparameters(lr=...)``): a name they do not have is
    refused naming the one most likely meant, as a dict of them is by ``fit``, and a value
    of the wrong kind with what the setting must be, in one line."""

    @model_validator(mode="wrap")
    @classmethod
    def _name_meant(cls, data: Any, handler: ModelWrapValidatorHandler[Any]) -> Any:
        try:
            return handler(data)
        except ValidationError as error:
            plain = in_plain_words(cls, error.errors(), HYPERPARAMETER_SYNONYMS)
            raise ValidationError.from_exception_data(error.title, plain) from None


class LoRA(_Settings):
    """Low-rank adaptation settings: the local backend and Together take them all, Fireworks
    the rank; OpenAI and Mistral choose their own (and refuse them)."""

    r: int = Field(default=16, gt=0)
    alpha: int = Field(default=32, gt=0)
    dropout: float = Field(default=0.05, ge=0, lt=1)
    target_modules: list[str] | Literal["all-linear"] = "all-linear"
    quantize_4bit: bool = False

    @field_validator("r", "alpha", "dropout", mode="before")
    @classmethod
    def _not_a_flag(cls, value: object) -> object:
        return no_flag(value)

    @field_validator("target_modules")
    @classmethod
    def _some_modules(cls, value: list[str] | str) -> list[str] | str:
        if isinstance(value, list) and not value:
            raise ValueError("name at least one module, or leave the default 'all-linear'")
        return value


class Hyperparameters(_Settings):
    """Training settings mapped onto each backend's own names; ``None`` lets the backend decide.

    Provider-specific settings go in ``extra`` and are passed through unchanged.
    """

    model_config: ClassVar[ConfigDict] = ConfigDict(
        frozen=True, extra="forbid", defer_build=True, allow_inf_nan=False
    )
    epochs: int | Auto | None = None
    batch_size: int | Auto | None = None
    learning_rate: float | None = Field(default=None, gt=0)
    learning_rate_multiplier: float | Auto | None = None
    warmup: float | None = Field(
        default=None, ge=0, le=1, description="warmup as a fraction of training"
    )
    seed: int | None = Field(default=None, ge=0)
    beta: float | Auto | None = Field(default=None, description="DPO beta")
    lora: LoRA | None = None
    extra: dict[str, Any] = Field(default_factory=dict)

    @field_validator(
        "epochs",
        "batch_size",
        "learning_rate",
        "learning_rate_multiplier",
        "warmup",
        "seed",
        "beta",
        mode="before",
    )
    @classmethod
    def _not_a_flag(cls, value: object) -> object:
        return no_flag(value)

    @field_validator("extra", mode="before")
    @classmethod
    def _json_extra(cls, value: object) -> object:
        return json_settings(value, "extra")

    @field_validator("epochs", "batch_size")
    @classmethod
    def _positive(cls, value: int | str | None) -> int | str | None:
        if isinstance(value, int) and value <= 0:
            raise ValueError("must be a whole number above 0, or 'auto'")
        return value

    @field_validator("learning_rate_multiplier", "beta")
    @classmethod
    def _positive_number(cls, value: float | str | None) -> float | str | None:
        if isinstance(value, float) and not value > 0:
            raise ValueError("must be a number above 0, or 'auto'")
        return value


class JobStatus(str, enum.Enum):
    """Normalized job status, the same for every backend."""

    QUEUED = "queued"
    VALIDATING = "validating"
    RUNNING = "running"
    PAUSED = "paused"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        """True when the job will not change any more."""
        return self in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)

    def __str__(self) -> str:
        """The status's name, ``succeeded``, in ``print`` and f-strings on every Python
        (3.11 changed what they show of a ``str`` enum to ``JobStatus.SUCCEEDED``)."""
        return self.value


class JobError(_Value):
    """The provider's reason for a failed job."""

    code: str | None = None
    message: str
    param: str | None = None

    def __str__(self) -> str:
        return f"{self.code}: {self.message}" if self.code else self.message


class FileRef(_Value):
    """A data file known to a backend (uploaded file id, or a local path)."""

    backend: str
    id: str
    filename: str | None = None
    bytes: int | None = None
    status: str | None = None


class ModelRef(_Value):
    """A model on a backend: a hosted model name, a local path for the HF backend, a GGUF
    file, or a model behind any OpenAI-compatible endpoint (``endpoint`` is its base URL).

    An endpoint's API key is kept out of the repr and of ``model_dump``. Two refs are equal
    when they name the same model (their fields), however each is asked (``asked_with``,
    ``api_key``).
    """

    backend: str
    name: str
    base_model: str | None = None
    job_id: str | None = None
    endpoint: str | None = None
    note: str | None = Field(
        default=None, description="how the provider serves it, and what it costs"
    )
    few_shot: list[Example] | None = None
    _api_key: str | None = PrivateAttr(default=None)
    _asked_with: dict[str, Any] = PrivateAttr(default_factory=dict)
    _registry_file: str | None = PrivateAttr(default=None)  # where its job was recorded

    @classmethod
    def openai_compatible(cls, base_url: str, model: str, api_key: str | None = None) -> ModelRef:
        """A model served by any OpenAI-compatible endpoint (vLLM, llama.cpp's server,
        Ollama's ``/v1``, a hosted provider's inference API), for ``ft.evaluate``."""
        from finetune.backends.http import check_base_url

        check_base_url(base_url)
        ref = cls(backend="openai-compatible", name=model, endpoint=base_url.rstrip("/"))
        ref._api_key = api_key
        return ref

    @classmethod
    def gguf(cls, path: str) -> ModelRef:
        """A GGUF file, evaluated through transformers (dequantized) in this process."""
        return cls(backend="gguf", name=str(path))

    def export(
        self,
        dest: str | os.PathLike[str],
        format: str = "gguf",
        quantization: str | None = None,
        *,
        name: str | None = None,
        create: bool | str = False,
        progress: bool = False,
    ) -> ExportResult:
        """Write this local model as ``merged`` weights, one ``gguf`` file (``quantization``
        f16, bf16, q8_0 or f32; default f16 under 1B parameters), the LoRA ``gguf-adapter``,
        or an ``ollama`` folder (``create=True`` also runs ``ollama create``)."""
        from finetune.export import export_model

        return export_model(
            self,
            dest,
            format=format,
            quantization=quantization,
            name=name,
            create=create,
            say=print if progress else None,
        )

    def ask(
        self, prompt: str | Sequence[Any] | Example, *, tools: Any = None, **options: Any
    ) -> str:
        """This model's reply to ``prompt``, a user turn's text, a conversation's turns (dicts)
        or an example (its turns before its answer), asked as ``ft.evaluate`` asks it: its
        few-shot examples first, ``tools`` offered; ``options`` are its predictor's."""
        from finetune.evaluation._ask import ask

        return ask(self, prompt, tools, options)

    async def aask(
        self, prompt: str | Sequence[Any] | Example, *, tools: Any = None, **options: Any
    ) -> str:
        """``ask``, awaitable."""
        from finetune.evaluation._ask import aask

        return await aask(self, prompt, tools, options)

    @property
    def api_key(self) -> str | None:
        """The endpoint's key given to ``openai_compatible``, or the key of the Tuner whose
        model this is (never shown or saved)."""
        return self._api_key

    def __getstate__(self) -> dict[Any, Any]:
        return _without_private(super().__getstate__(), "_api_key", None)

    def _asked_as(
        self, connection: Mapping[str, Any], asked: Mapping[str, Any] | None = None
    ) -> ModelRef:
        """This ref, asked through a backend's ``connection_options`` (its key kept apart)
        and, for an untuned base model, with its ``predictor_options``."""
        given = dict(connection)
        self._api_key = given.pop("api_key", None) or None
        self._asked_with = {**given, **(asked or {})}
        return self

    @property
    def asked_with(self) -> dict[str, Any]:
        """The predictor options ``ft.evaluate`` asks this model with, under a candidate's
        own: ``tuner.base_model`` carries those its backend was built with (a local base
        model's ``chat_template`` and ``trust_remote_code``)."""
        return dict(self._asked_with)

    def with_few_shot(self, train: Any, k: int = 5, seed: int = 0) -> ModelRef:
        """A copy of this model prompted with ``k`` examples drawn from ``train`` (never eval):
        a ``Dataset``, a list of dicts or examples, or a pandas DataFrame of them; all of
        them when it has ``k`` or fewer, and a ``ValueError`` when it has none."""
        if not is_whole(k):
            raise TypeError(f"k is how many examples to show, a whole number, not {k!r}")
        if k < 0:
            raise ValueError(f"k is how many examples to show (0 or more), not {k!r}")
        from finetune.dataset import Dataset

        if not isinstance(train, Dataset):  # dicts or examples (a DataFrame's rows): as read
            train = Dataset.from_records(train, name="few-shot records")
        if k and not len(train):  # a "few-shot" row that is the base model under another name
            raise ValueError(
                f"with_few_shot(k={k}) has no example to show: {train.name} is empty; give it "
                "the training set (k=0 is the model as it is)"
            )
        return self.model_copy(update={"few_shot": list(train.sample(k, seed=seed))})

    def __str__(self) -> str:
        shots = f"+{len(self.few_shot)}-shot" if self.few_shot else ""
        where = f"@{self.endpoint}" if self.endpoint else ""
        return f"{self.backend}:{self.name}{where}{shots}"


class JobEvent(_Value):
    """A line of a job's log, oldest first."""

    created_at: datetime
    level: Literal["debug", "info", "warning", "error"] = "info"
    message: str
    id: str | None = None
    data: dict[str, Any] | None = None

    def __str__(self) -> str:
        return f"{self.created_at.isoformat()} {self.level:7} {self.message}"


class MetricPoint(_Value):
    """Training metrics at one step; missing values are ``None``."""

    step: int
    epoch: float | None = None
    train_loss: float | None = None
    train_accuracy: float | None = None
    valid_loss: float | None = None
    valid_accuracy: float | None = None
    learning_rate: float | None = None
    extra: dict[str, float] = Field(default_factory=dict)


class Checkpoint(_Value):
    """An intermediate model saved during training."""

    id: str
    step: int
    model: str
    created_at: datetime | None = None
    metrics: dict[str, float] = Field(default_factory=dict)

    def __str__(self) -> str:
        figures = "".join(f" {name}={value:g}" for name, value in sorted(self.metrics.items()))
        return f"step {self.step}: {self.model}{figures}"


class Job(_Value):
    """A fine-tuning job as last seen; ``raw`` keeps the provider payload (never a credential)."""

    id: str
    backend: str
    base_model: str
    status: JobStatus
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    fine_tuned_model: str | None = None
    trained_tokens: int | None = None
    error: JobError | None = None
    method: Literal["sft", "dpo"] = "sft"
    hyperparameters: Hyperparameters = Field(default_factory=Hyperparameters)
    training_file: str | None = None
    validation_file: str | None = None
    suffix: str | None = None
    metadata: dict[str, str] = Field(default_factory=dict)
    raw: dict[str, Any] | None = Field(default=None, repr=False)
    _connection: dict[str, Any] = PrivateAttr(default_factory=dict)
    _registry_file: str | None = PrivateAttr(default=None)

    @field_validator("raw")
    @classmethod
    def _no_credentials(cls, raw: dict[str, Any] | None) -> dict[str, Any] | None:
        return without_credentials(raw) if raw else raw

    @property
    def model(self) -> ModelRef | None:
        """The fine-tuned model, once the job has succeeded, asked as the Tuner that saw the
        job reaches its provider (its key and API root)."""
        if self.fine_tuned_model is None:
            return None
        serving = (self.raw or {}).get("serving")
        return self._made(self.fine_tuned_model, note=serving if isinstance(serving, str) else None)

    def _made(self, name: str, note: str | None = None) -> ModelRef:
        """A model this job made (its own, or a checkpoint's), asked as the job is reached."""
        model = ModelRef(
            backend=self.backend, name=name, base_model=self.base_model, job_id=self.id, note=note
        )
        model._registry_file = self._registry_file
        return model._asked_as(self._connection)

    def _reached_through(self, connection: Mapping[str, Any], registry: str | None) -> Job:
        """A copy of this job (a backend may hand the same one to others), its model to be
        asked through a backend's ``connection_options``, its record read in ``registry``."""
        seen = self.model_copy()
        seen._connection = dict(connection)
        seen._registry_file = registry
        return seen

    def __getstate__(self) -> dict[Any, Any]:
        return _without_private(super().__getstate__(), "_connection", {})

    def _repr_html_(self) -> str:
        from finetune._html import job_html

        return job_html(self)

    def __str__(self) -> str:
        """One line: the job, its backend and base model, its status, and its model or error."""
        ended = f": {self.error}" if self.error else ""
        made = f" -> {self.fine_tuned_model}" if self.fine_tuned_model else ""
        return f"{self.id} on {self.backend} ({self.base_model}): {self.status.value}{made}{ended}"


class CostEstimate(_Value):
    """What a fit will cost before it runs: exact token counts and the price."""

    backend: str
    model: str
    examples: int
    tokens_total: int
    tokens_p50: int
    tokens_p95: int
    tokens_max: int
    epochs: int
    billed_tokens: int
    price_per_million: float | None = None
    currency: str = "USD"
    cost: float | None = None
    cost_low: float | None = None
    cost_high: float | None = None
    exact: bool = True
    context_limit: int | None = None
    examples_over_limit: int = 0
    pricing_date: str | None = None
    hosted: bool = Field(default=True, description="False for local training: no provider bills it")
    validation_tokens: int = Field(
        default=0, description="tokens of the validation set, when given"
    )
    validation_passes: int = Field(
        default=0, description="billed passes over the validation set (Together: n_evals)"
    )
    notes: list[str] = Field(default_factory=list)
    provider_figures: dict[str, Any] | None = None

    @property
    def fits_context(self) -> bool:
        """True when no example exceeds the model's context limit; also when no limit is
        known (``context_limit`` is ``None``, and a note says that nothing was checked)."""
        return self.examples_over_limit == 0

    def __str__(self) -> str:
        """The estimate in a few lines: examples, tokens, epochs, cost, notes."""
        from finetune._words import cost_text

        return cost_text(self)

    def with_notes(self, *notes: str) -> CostEstimate:
        """A copy with ``notes`` added after the ones it has."""
        return self.model_copy(update={"notes": [*self.notes, *notes]})

    def _repr_html_(self) -> str:
        from finetune._html import cost_html

        return cost_html(self)
