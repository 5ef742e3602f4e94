"""Predictors: one interface over OpenAI, Mistral, local Hugging Face models and callables."""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from finetune._errors import FinetuneError, MissingDependency
from finetune.evaluation._prompts import Messages
from finetune.types import ModelRef

__all__ = [
    "CallablePredictor",
    "HFPredictor",
    "MistralPredictor",
    "OpenAIPredictor",
    "Predictor",
    "predictor_for",
]


@runtime_checkable
class Predictor(Protocol):
    """Answers a list of chat messages with text. ``name`` identifies it in the cache."""

    name: str

    def predict(self, messages: Messages) -> str:
        """The model's reply to ``messages``."""
        ...

    async def apredict(self, messages: Messages) -> str:
        """The model's reply to ``messages``, awaitable."""
        ...


class CallablePredictor:
    """Any function ``messages -> str`` (sync or async) as a predictor."""

    def __init__(self, function: Callable[[Messages], Any], name: str | None = None) -> None:
        self._function = function
        self.name = name or f"callable:{getattr(function, '__qualname__', repr(function))}"

    def predict(self, messages: Messages) -> str:
        result = self._function(messages)
        if inspect.isawaitable(result):
            raise TypeError(f"{self.name} is async; use aevaluate() or apredict()")
        return str(result)

    async def apredict(self, messages: Messages) -> str:
        result = self._function(messages)
        if inspect.isawaitable(result):
            result = await result
        return str(result)


class OpenAIPredictor:
    """Chat completions through the openai SDK (greedy by default)."""

    def __init__(
        self,
        model: str,
        *,
        client: Any = None,
        async_client: Any = None,
        api_key: str | None = None,
        base_url: str | None = None,
        max_tokens: int = 256,
        temperature: float = 0.0,
        seed: int | None = 0,
        max_retries: int = 2,
    ) -> None:
        try:
            import openai
        except ImportError as exc:  # pragma: no cover - openai is a core dependency
            raise MissingDependency("openai") from exc
        options: dict[str, Any] = {
            "api_key": api_key,
            "base_url": base_url,
            "max_retries": max_retries,
        }
        self._client = client or openai.OpenAI(**options)
        self._async_client = async_client or openai.AsyncOpenAI(**options)
        self.model = model
        self.name = f"openai:{model}:t{temperature}:m{max_tokens}:s{seed}"
        self._params: dict[str, Any] = {
            "max_tokens": max_tokens,
            "temperature": temperature,
            "seed": seed,
        }

    def __repr__(self) -> str:
        return f"OpenAIPredictor({self.model!r})"

    def predict(self, messages: Messages) -> str:
        reply = self._client.chat.completions.create(
            model=self.model,
            messages=messages,  # type: ignore[arg-type]
            **self._params,
        )
        return str(reply.choices[0].message.content or "")

    async def apredict(self, messages: Messages) -> str:
        reply = await self._async_client.chat.completions.create(
            model=self.model,
            messages=messages,  # type: ignore[arg-type]
            **self._params,
        )
        return str(reply.choices[0].message.content or "")


def _mistral_class() -> Any:
    try:
        from mistralai.client import Mistral
    except ImportError:
        try:
            from mistralai import Mistral
        except ImportError as exc:  # pragma: no cover - mistralai is a core dependency
            raise MissingDependency("mistralai") from exc
    return Mistral


class MistralPredictor:
    """Chat completions through the mistralai SDK (greedy by default)."""

    def __init__(
        self,
        model: str,
        *,
        client: Any = None,
        api_key: str | None = None,
        server_url: str | None = None,
        max_tokens: int = 256,
        temperature: float = 0.0,
        seed: int | None = 0,
    ) -> None:
        if client is None:
            key = api_key or os.environ.get("MISTRAL_API_KEY")
            client = _mistral_class()(api_key=key, server_url=server_url)
        self._client = client
        self.model = model
        self.name = f"mistral:{model}:t{temperature}:m{max_tokens}:s{seed}"
        self._params: dict[str, Any] = {
            "max_tokens": max_tokens,
            "temperature": temperature,
            "random_seed": seed,
        }

    def __repr__(self) -> str:
        return f"MistralPredictor({self.model!r})"

    def predict(self, messages: Messages) -> str:
        reply = self._client.chat.complete(model=self.model, messages=messages, **self._params)
        return _mistral_text(reply.choices[0].message.content)

    async def apredict(self, messages: Messages) -> str:
        reply = await self._client.chat.complete_async(
            model=self.model, messages=messages, **self._params
        )
        return _mistral_text(reply.choices[0].message.content)


def _mistral_text(content: Any) -> str:
    if isinstance(content, list):
        return "".join(getattr(chunk, "text", "") or "" for chunk in content)
    return str(content or "")


_LOAD_LOCK = threading.Lock()
_LOADED: dict[tuple[str, str | None, bool], tuple[Any, Any, threading.Lock]] = {}


def _weights_stamp(path: Path) -> str:
    stamps = [
        f"{item.name}:{item.stat().st_size}:{item.stat().st_mtime_ns}"
        for item in sorted(path.glob("*.safetensors"))
    ]
    return hashlib.sha256("|".join(stamps).encode()).hexdigest()[:12]


class HFPredictor:
    """Local generation with transformers: batched, greedy, seeded; LoRA adapters load too."""

    def __init__(
        self,
        path: str,
        *,
        max_new_tokens: int = 64,
        batch_size: int = 16,
        seed: int = 0,
        device: str | None = None,
        trust_remote_code: bool = False,
    ) -> None:
        self.path = path
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size
        self.seed = seed
        self._device = device
        self._trust = trust_remote_code
        stamp = _weights_stamp(Path(path)) if Path(path).is_dir() else "hub"
        self.name = f"hf:{path}:{stamp}:m{max_new_tokens}:s{seed}"

    def __repr__(self) -> str:
        return f"HFPredictor({self.path!r})"

    def _load(self) -> tuple[Any, Any, threading.Lock]:
        # transformers' loading is not thread-safe (meta-device init), and candidates such as
        # "base" and "base few-shot" share one model: load each folder once, under one lock.
        with _LOAD_LOCK:
            key = (self.path, self._device, self._trust)
            if key not in _LOADED:
                _LOADED[key] = (*self._load_now(), threading.Lock())
            return _LOADED[key]

    def _load_now(self) -> tuple[Any, Any]:
        try:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError as exc:
            raise MissingDependency("transformers", "hf", purpose="for local models") from exc
        device = self._device or ("cuda" if torch.cuda.is_available() else "cpu")
        tokenizer = AutoTokenizer.from_pretrained(self.path, trust_remote_code=self._trust)
        tokenizer.padding_side = "left"
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        if (Path(self.path) / "adapter_config.json").exists():
            from peft import AutoPeftModelForCausalLM

            model = AutoPeftModelForCausalLM.from_pretrained(self.path)
        else:
            model = AutoModelForCausalLM.from_pretrained(self.path, trust_remote_code=self._trust)
        return tokenizer, model.to(device).eval()

    def predict_batch(self, prompts: list[Messages]) -> list[str]:
        """Replies to many prompts, ``batch_size`` at a time."""
        import torch

        tokenizer, model, lock = self._load()
        with lock:
            replies: list[str] = []
            for start in range(0, len(prompts), self.batch_size):
                chunk = prompts[start : start + self.batch_size]
                texts = [
                    tokenizer.apply_chat_template(p, add_generation_prompt=True, tokenize=False)
                    for p in chunk
                ]
                batch = tokenizer(
                    texts, return_tensors="pt", padding=True, add_special_tokens=False
                ).to(model.device)
                torch.manual_seed(self.seed)
                with torch.no_grad():
                    output = model.generate(
                        **batch,
                        max_new_tokens=self.max_new_tokens,
                        do_sample=False,
                        pad_token_id=tokenizer.pad_token_id,
                        eos_token_id=tokenizer.eos_token_id,
                    )
                new = output[:, batch["input_ids"].shape[1] :]
                replies.extend(
                    text.strip() for text in tokenizer.batch_decode(new, skip_special_tokens=True)
                )
            return replies

    def predict(self, messages: Messages) -> str:
        return self.predict_batch([messages])[0]

    async def apredict(self, messages: Messages) -> str:
        return await asyncio.to_thread(self.predict, messages)


def predictor_for(candidate: Any, **options: Any) -> Predictor:
    """The predictor for a ``ModelRef`` (by its backend), a ``Predictor``, or a callable."""
    if isinstance(candidate, ModelRef):
        backend = candidate.backend
        if backend == "openai":
            return OpenAIPredictor(candidate.name, **options)
        if backend == "mistral":
            return MistralPredictor(candidate.name, **options)
        if backend == "hf":
            return HFPredictor(candidate.name, **options)
        raise FinetuneError(
            f"no predictor for models of backend {backend!r}; pass a Predictor or a function "
            "messages -> str as the candidate"
        )
    if isinstance(candidate, Predictor):
        return candidate
    if callable(candidate):
        return CallablePredictor(candidate)
    raise TypeError(
        f"a candidate is a ModelRef, a Predictor or a function, not {type(candidate).__name__}"
    )
