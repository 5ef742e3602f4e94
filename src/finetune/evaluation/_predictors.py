"""Predictors: one interface over OpenAI, Mistral, local Hugging Face models and callables."""

from __future__ import annotations

import hashlib
import logging
import math
import re
import urllib.parse
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from finetune._errors import (
    InvalidRequestError,
    MissingDependency,
    ServerError,
)
from finetune._loop import returned, without_waiting
from finetune._numbers import is_real, is_whole
from finetune.backends import backend_class
from finetune.backends._clients import OwnedClient
from finetune.backends.http import key_and_url, retrying
from finetune.evaluation._callable import CallablePredictor
from finetune.evaluation._lineage import api_trained_on
from finetune.evaluation._model_text import model_named
from finetune.evaluation._prompts import Messages, a_plain_prompt
from finetune.evaluation._sampling import Sampling
from finetune.evaluation._tools import Tools, format_tool_calls
from finetune.types import Example, ModelRef

if TYPE_CHECKING:
    from tenacity import AsyncRetrying

__all__ = [
    "KEY_OPTION",
    "MistralPredictor",
    "OpenAIPredictor",
    "Predictor",
    "TruncatedReply",
    "a_seed",
    "after_thinking",
    "as_reply",
    "at_least_one",
    "close_predictors",
    "predictor_for",
    "reply_of",
    "retrying_a_model",
]


class TruncatedReply(str):
    """A reply that stopped at its predictor's length limit, not where the model ended it.

    ``limit`` names the setting and its value (``"max_tokens=256"``). ``ft.evaluate`` scores
    it as it is and notes the cut answers on its result; a plugin's predictor returns one to
    say the same of its own replies.
    """

    limit: str

    def __new__(cls, text: str, limit: str) -> TruncatedReply:
        reply = super().__new__(cls, text)
        reply.limit = limit
        return reply

    def __reduce__(self) -> tuple[Any, ...]:
        return (TruncatedReply, (str(self), self.limit))


@runtime_checkable
class Predictor(Protocol):
    """Answers a list of chat messages with text. ``name`` identifies it in the cache.

    A predictor that can be offered tools says so with ``supports_tools = True`` and takes
    them as ``predict(messages, tools=...)``; it answers a tool call with its
    ``format_tool_calls`` text. ``ft.evaluate`` asks only such predictors about examples
    that use tools. One that sends a message's content parts as they are (an image beside
    the text) says so with ``supports_images = True``: only such predictors are asked about
    examples that show an image.
    """

    name: str

    def predict(self, messages: Messages) -> str:
        """The model's reply to ``messages``."""
        ...

    async def apredict(self, messages: Messages) -> str:
        """The model's reply to ``messages``, awaitable."""
        ...


log = logging.getLogger("finetune")
_OPENAI_URL = {"url_variable": "OPENAI_BASE_URL", "default_url": "https://api.openai.com/v1"}
_MISTRAL_URL = {"url_variable": "MISTRAL_SERVER_URL", "default_url": "https://api.mistral.ai"}
# where an evaluated (or asked) model's key goes: its predictor's options, not a Tuner
KEY_OPTION = "predictor_options={candidate: {'api_key': ...}} (ref.ask(..., api_key=...))"


def _key_hint(variable: str | None, url: str) -> str:
    """How to give an evaluated model's key: through its predictor's options (and the
    environment variable the predictor reads, when it reads one), not to a Tuner."""
    if variable is None:
        return f"Pass the key {url} takes in {KEY_OPTION}"
    return f"Set {variable} or pass the key in {KEY_OPTION}"


def at_least_one(name: str, value: Any) -> int:
    """A count of evaluation's (``max_concurrency``) or a predictor's (``max_tokens``,
    ``batch_size``) as an ``int``: a whole number of 1 or more, numpy's included, or a
    ``ValueError`` naming it, before anything is asked."""
    if not is_whole(value) or value < 1:
        raise ValueError(f"{name} must be a whole number of 1 or more, not {value!r}")
    return int(value)


def a_seed(value: Any, *, optional: bool = False) -> Any:
    """A predictor's ``seed``, checked before anything is asked: a whole number (numpy's
    included), or ``None`` where ``optional`` (the server then samples as it will)."""
    if (value is None and optional) or is_whole(value):
        return value
    raise ValueError(f"seed must be a whole number, not {value!r}")


def _check_temperature(value: Any) -> None:
    if not (is_real(value) and 0 <= float(value) < math.inf):
        raise ValueError(f"temperature is a number of 0 or more, not {value!r}")


def _sampled_name(
    kind: str, url: str, model: str, temperature: float, max_tokens: int, seed: int | None
) -> str:
    """A remote predictor's name (its cache key): the endpoint, the model and the sampling."""
    return f"{kind}:{url}:{model}:t{temperature}:m{max_tokens}:s{seed}"


class OpenAIPredictor:
    """Chat completions through the openai SDK (greedy by default), on OpenAI or any
    OpenAI-compatible endpoint (vLLM, llama.cpp's server, Ollama's ``/v1``).

    The endpoint is part of ``name``, so the prediction cache never serves one server's
    answers for another's. Errors are finetune's own (``RateLimitError``, ``ServerError``...).
    Sampling parameters are always sent, so servers with other defaults (llama.cpp's
    ``repeat_penalty=1.1``) decode the same way. The SDK's own retries are off: ``evaluate``
    retries under finetune's one policy.

    Args:
        model: the model asked.
        client: an ``openai.OpenAI`` for ``predict`` to use instead of building one.
        async_client: an ``openai.AsyncOpenAI`` for ``apredict`` (left open when closing).
        api_key: the key (else ``OPENAI_API_KEY``; a server of one's own may need none).
        base_url: the API root (else ``OPENAI_BASE_URL``, else OpenAI's), ``/v1`` included.
        max_tokens: the longest answer, in tokens (a longer one is cut and noted).
        temperature: 0 for greedy answers.
        seed: the seed sent with each request, where the server takes one.
        extra_body: server-specific parameters sent with each request.
        provider: who serves the API, as its errors name it (``together`` for a Together
            model, ``openai-compatible`` for a server of one's own).
        organization: OpenAI's organisation (else ``OPENAI_ORG_ID``): a fine-tuned model is
            its organisation's.
        project: OpenAI's project (else ``OPENAI_PROJECT_ID``).
        api: ``chat``, or ``completions``, the legacy API that takes a completion example's
            prompt as its text (a model trained on prompt/completion text, served by vLLM or
            llama.cpp); OpenAI's completion models, ``babbage-002`` and ``davinci-002`` and
            their fine-tunes, which the chat endpoint refuses, are asked there by default.
    """

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
        extra_body: dict[str, Any] | None = None,
        provider: str = "openai",
        organization: str | None = None,
        project: str | None = None,
        api: str | None = None,
    ) -> None:
        max_tokens = at_least_one("max_tokens", max_tokens)
        _check_temperature(temperature)
        a_seed(seed, optional=True)
        self.model = model
        self.api: str = _api_for(model, api)
        """``chat`` (chat completions) or ``completions`` (a prompt's text)."""
        self.supports_tools: bool = self.api == "chat"
        self.supports_images: bool = self.api == "chat"  # the parts sent as they are
        self.provider = provider  # who serves the API, as its errors name it
        scope = {"organization": organization, "project": project}
        self._scope = {name: value for name, value in scope.items() if value}
        self._key, url = key_and_url(
            api_key, base_url, key_variable="OPENAI_API_KEY", **_OPENAI_URL
        )
        self.base_url: str = url
        self._key_hint = _key_hint("OPENAI_API_KEY" if api_key is None else None, self.base_url)
        self._client = client
        self._async_client = OwnedClient(self._new_async_client, async_client)
        self.name: str = _sampled_name(
            "openai", self.base_url, model, temperature, max_tokens, seed
        ) + (":completions" if self.api == "completions" else "")
        self._max_tokens = max_tokens
        official = self.base_url.rstrip("/") == _OPENAI_URL["default_url"]
        self._sampling = Sampling(
            max_tokens,
            temperature,
            seed,
            extra_body,
            completion_tokens=official and self.api == "chat",  # completions take max_tokens
        )
        if extra_body:
            self.name += (
                ":" + hashlib.sha256(repr(sorted(extra_body.items())).encode()).hexdigest()[:8]
            )

    def __repr__(self) -> str:
        return f"OpenAIPredictor({self.model!r}, base_url={self.base_url!r})"

    def _options(self) -> dict[str, Any]:
        # a local server needs no key, but the SDK insists on one
        options = {"api_key": self._key or "none", "base_url": self.base_url, "max_retries": 0}
        return {**options, **self._scope}

    def predict(self, messages: Messages, tools: Tools | None = None) -> str:
        """The reply (or the tools it calls), through a blocking client; a sampling parameter
        the model refuses by name is renamed or dropped, and the request sent again."""
        if self._client is None:
            self._client = _openai(self.provider).OpenAI(**self._options())
        create = returned(self._endpoint(self._client).create)
        return without_waiting(self._ask(create, messages, tools))

    async def apredict(self, messages: Messages, tools: Tools | None = None) -> str:
        """The reply (or the tools it calls), through an async client made in the running
        loop; a sampling parameter the model refuses is renamed or dropped, as in
        ``predict``."""
        client = await self._async_client.aget()
        return await self._ask(self._endpoint(client).create, messages, tools)

    def _new_async_client(self) -> Any:
        return _openai(self.provider).AsyncOpenAI(**self._options())

    def _endpoint(self, client: Any) -> Any:
        return client.completions if self.api == "completions" else client.chat.completions

    async def _ask(
        self, create: Callable[..., Awaitable[Any]], messages: Messages, tools: Tools | None
    ) -> str:
        """The asking, written once for both faces (``predict`` runs it ``without_waiting``)."""
        while True:
            request = self._request(messages, tools)
            try:
                return self._text(await create(**request))
            except Exception as exc:
                error = self._error(exc)
            if not self._sampling.adapt(error, request, self.model):
                raise error

    def _request(self, messages: Messages, tools: Tools | None) -> dict[str, Any]:
        """The request's body: the messages (and tools), or to the completions API the one
        prompt's text, which is all it takes."""
        sampling = self._sampling.body()
        if self.api == "chat":
            return {"model": self.model, "messages": messages, **sampling, **_offered(tools)}
        if tools or not a_plain_prompt(messages):
            raise InvalidRequestError(
                f"{self.model} is asked through the completions API, which takes a prompt's "
                "text: a completion example's prompt, not a conversation, few-shot turns or "
                "tools (ask a chat model with api='chat')",
                param="api",
            )
        return {"model": self.model, "prompt": messages[0]["content"], **sampling}

    def _error(self, exc: Exception) -> Exception:
        """The SDK's exception as ours; a server that cannot be reached is named."""
        from finetune.backends.openai import map_error

        hint, url = self._key_hint, self.base_url
        error = map_error(exc, self._key, key_hint=hint, provider=self.provider, url=url)
        if isinstance(error, InvalidRequestError) and error.status_code == 404:
            return error.with_note(_no_v1(url), param="base_url") if _no_v1(url) else error
        return error

    def _text(self, reply: Any) -> str:
        choices = getattr(reply, "choices", None)
        if not choices:
            raise ServerError(f"answered a {self.api} completion without choices: {reply!r:.200}")
        if self.api == "completions":
            return _marked(str(choices[0].text or ""), choices[0], self._max_tokens)
        message = choices[0].message
        if getattr(message, "tool_calls", None):
            return _marked(format_tool_calls(message.tool_calls), choices[0], self._max_tokens)
        # structured outputs answer a refusal in its own field, with no content: its words
        text = str(message.content or getattr(message, "refusal", None) or "")
        return _marked(text, choices[0], self._max_tokens)

    async def aclose(self) -> None:
        """Close the async client this predictor made (before its event loop ends; one made
        in an event loop that has ended is made again in the next)."""
        await self._async_client.aclose()


APIS = ("chat", "completions")


def _no_v1(url: str) -> str:
    """For a 404 from a server whose URL has no ``/v1``: where OpenAI-compatible servers
    (vLLM, Ollama, LM Studio) answer, which the URL may have left out."""
    if "/v1" in urllib.parse.urlsplit(url).path:
        return ""
    return f"; OpenAI-compatible servers answer under /v1: is the URL {url}/v1?"


def _api_for(model: str, api: str | None) -> str:
    """The API asked: the one given, else ``completions`` for OpenAI's completion models
    and their fine-tunes (``ft:babbage-002:org::id``), else ``chat``."""
    if api is None:
        from finetune.validation._rules import TARGETS

        base = model.split(":")[1] if model.startswith("ft:") else model
        return "completions" if base in TARGETS["openai"].completion_models else "chat"
    if api not in APIS:
        raise ValueError(f"api is 'chat' or 'completions', not {api!r}")
    return api


def _offered(tools: Tools | None) -> dict[str, Any]:
    """The request's ``tools``, sent only when the example offers some."""
    return {"tools": tools} if tools else {}


def _openai(provider: str) -> Any:
    try:
        import openai
    except ImportError as exc:
        models = "OpenAI models" if provider == "openai" else f"{provider} models"
        through = "" if provider == "openai" else " (asked through the openai SDK)"
        purpose = f"to evaluate {models}{through}"
        raise MissingDependency("openai", "openai", purpose=purpose) from exc
    return openai


_THINKING = re.compile(r"\s*<think>.*?</think>\s*", re.DOTALL)


def after_thinking(text: str) -> str:
    """A reply without the think block a reasoning model writes before its answer (Qwen 3,
    DeepSeek R1 locally, or served without a reasoning parser): the answer is what follows
    it, and a reply cut inside it has none."""
    found = _THINKING.match(text)
    if found:
        return text[found.end() :]
    return "" if text.lstrip().startswith("<think>") else text


def _marked(text: str, choice: Any, max_tokens: int) -> str:
    """A chat API's reply (its answer, after any think block), marked as cut when it stopped
    at ``max_tokens`` (``finish_reason`` "length")."""
    text = after_thinking(text)
    if getattr(choice, "finish_reason", None) == "length":
        return TruncatedReply(text, f"max_tokens={max_tokens}")
    return text


def _mistral_class() -> Any:
    try:
        from mistralai.client import Mistral
    except ImportError:
        try:
            from mistralai import Mistral
        except ImportError as exc:
            raise MissingDependency(
                "mistralai", "mistral", purpose="to evaluate Mistral models"
            ) from exc
    return Mistral


class MistralPredictor:
    """Chat completions through the mistralai SDK (greedy by default); the server URL is part
    of ``name`` (and so of the cache key).

    Args:
        model: the model asked.
        client: a ``mistralai.Mistral`` to use instead of building one.
        api_key: the key (else ``MISTRAL_API_KEY``).
        server_url: the API root (else ``MISTRAL_SERVER_URL``, else Mistral's).
        max_tokens: the longest answer, in tokens (a longer one is cut and noted).
        temperature: 0 for greedy answers.
        seed: the ``random_seed`` sent with each request.
    """

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
        max_tokens = at_least_one("max_tokens", max_tokens)
        _check_temperature(temperature)
        a_seed(seed, optional=True)
        self._key, url = key_and_url(
            api_key, server_url, key_variable="MISTRAL_API_KEY", **_MISTRAL_URL
        )
        self.server_url: str = url
        self._key_hint = _key_hint("MISTRAL_API_KEY" if api_key is None else None, self.server_url)
        # the SDK's class looked up now: a missing one is told before any model is asked
        self._sdk: Any = _mistral_class() if client is None else None
        self._client = OwnedClient(self._new_client, client, _close_mistral)
        self.model = model
        self.name: str = _sampled_name(
            "mistral", self.server_url, model, temperature, max_tokens, seed
        )
        self._params: dict[str, Any] = {"max_tokens": max_tokens, "temperature": temperature}
        self._params["random_seed"] = seed

    supports_tools = True
    supports_images = True  # the parts sent as they are (a vision model reads the image)

    def __repr__(self) -> str:
        return f"MistralPredictor({self.model!r})"

    def _text(self, reply: Any) -> str:
        choice = reply.choices[0]
        calls = getattr(choice.message, "tool_calls", None)
        text = format_tool_calls(calls) if calls else _mistral_text(choice.message.content)
        return _marked(text, choice, self._params["max_tokens"])

    def _new_client(self) -> Any:
        return self._sdk(api_key=self._key, server_url=self.server_url)

    def predict(self, messages: Messages, tools: Tools | None = None) -> str:
        """The reply (or the tools it calls), through a blocking call."""
        complete = returned(self._client.get().chat.complete)
        return without_waiting(self._ask(complete, messages, tools))

    async def apredict(self, messages: Messages, tools: Tools | None = None) -> str:
        """The reply (or the tools it calls), awaitable."""
        client = await self._client.aget()
        return await self._ask(client.chat.complete_async, messages, tools)

    async def aclose(self) -> None:
        """Close the client this predictor made (before its event loop ends; one first used
        in an event loop that has ended is made again in the next)."""
        await self._client.aclose()

    async def _ask(
        self, complete: Callable[..., Awaitable[Any]], messages: Messages, tools: Tools | None
    ) -> str:
        """The asking, written once for both faces (``predict`` runs it ``without_waiting``)."""
        from finetune.backends.mistral import map_error

        try:
            reply = await complete(
                model=self.model, messages=messages, **self._params, **_offered(tools)
            )
            return self._text(reply)
        except Exception as exc:
            error = map_error(exc, (self._key,), key_hint=self._key_hint)
        raise error


def _mistral_text(content: Any) -> str:
    if isinstance(content, list):
        return "".join(getattr(chunk, "text", "") or "" for chunk in content)
    return str(content or "")


async def reply_of(predictor: Predictor, messages: Messages, tools: Messages | None) -> str:
    """The predictor's reply to ``messages`` as ``as_reply`` reads it; the tools go only to a
    predictor that takes them (the refusals of ``ft.evaluate`` and ``ask`` saw to the rest).
    No tools, no question asked of the predictor: a local one loads its tokenizer to answer."""
    if tools and getattr(predictor, "supports_tools", False):
        reply = await predictor.apredict(messages, tools=tools)  # type: ignore[call-arg]
    else:
        reply = await predictor.apredict(messages)
    return as_reply(predictor, reply)


def as_reply(predictor: Predictor, reply: object) -> str:
    """A predictor's reply as the text scored, cached and saved. It must be a ``str`` (a
    plugin's ``None`` was scored as "" and cached as "None"). A lone surrogate, half of a
    UTF-16 pair that a JSON escape can carry and UTF-8 cannot, becomes U+FFFD, as a UTF-8
    decoder shows broken bytes (the cache and ``to_json`` failed on it)."""
    if not isinstance(reply, str):
        raise TypeError(
            f"predictor {predictor.name!r} returned {type(reply).__name__} {reply!r:.60}, not "
            "the reply's text (a str)"
        )
    try:
        reply.encode("utf-8")
    except UnicodeEncodeError:
        mended = reply.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
        return TruncatedReply(mended, reply.limit) if isinstance(reply, TruncatedReply) else mended
    return reply


def retrying_a_model(attempts: int) -> AsyncRetrying:
    """The retries of a prediction or of a judge's request: the one policy, from 0.25 s up
    to 8 s between tries, as ``blocking_call_with_retries`` waits for a judge asked alone."""
    return retrying(attempts, first=0.25, cap=8.0)


async def _close_mistral(sdk: Any) -> None:
    from finetune.backends.mistral._backend import close_sdk

    await close_sdk(sdk)


async def close_predictors(predictors: Iterable[Predictor]) -> None:
    """Close the clients the predictors opened, while their event loop still runs."""
    for predictor in predictors:
        closer = getattr(predictor, "aclose", None)
        if closer is not None:
            await closer()


def is_cacheable(predictor: Predictor) -> bool:
    """Whether a predictor's answers may be reused from another run (not an unnamed
    function's: see ``CallablePredictor``)."""
    return not isinstance(predictor, CallablePredictor) or predictor.named


def predictor_for(candidate: Any, *, what: str = "candidate", **options: Any) -> Predictor:
    """The predictor for a ``ModelRef`` (its backend's ``predictor``) or its text
    (``"openai:gpt-4.1-mini"``), a ``Predictor``, or a callable; ``what`` it is (a
    ``candidate``, a ``judge``) names it in the error for anything else."""
    if isinstance(candidate, str):
        candidate = model_named(candidate)
    if isinstance(candidate, ModelRef):
        return _predictor_of(candidate, options)
    if isinstance(candidate, Predictor):
        return candidate
    if callable(candidate):
        return CallablePredictor(candidate)
    if isinstance(candidate, str):
        from finetune.backends import available_backends

        rubric = " (the judge comes first, then the rubric)" if what == "judge" else ""
        raise TypeError(
            f'a {what} given as text is "backend:model", as "openai:gpt-4.1-mini" (backends: '
            f"{', '.join(available_backends())}), not {candidate!r}; or "
            f"ft.ModelRef(backend=..., name={candidate!r}){rubric}"
        )
    tuner = hasattr(candidate, "base_model") and hasattr(candidate, "fit")
    hint = ": a tuner's untuned model is tuner.base_model, a job's tuned one job.model"
    raise TypeError(
        f'a {what} is a ModelRef or its "backend:model" text, a Predictor or a function, '
        f"not {type(candidate).__name__}{hint if tuner else ''}"
    )


def _predictor_of(model: ModelRef, options: dict[str, Any]) -> Predictor:
    """A ``ModelRef``'s predictor: an OpenAI-compatible server's, else the one its backend
    class gives (``BaseBackend.predictor``; a GGUF file is a local ``hf`` model)."""
    if model.backend == "openai-compatible":
        # never an OpenAI key from the environment to another server; one given here is used
        server = {"base_url": model.endpoint, "api_key": model.api_key or "none"}
        given: dict[str, Any] = {**server, "provider": "openai-compatible", **options}
        return OpenAIPredictor(model.name, **given)
    backend = "hf" if model.backend == "gguf" else model.backend
    ask = _backend_hook(backend, "predictor")
    if ask is None:
        from finetune.backends.base import no_predictor

        raise no_predictor(backend)
    key = {"api_key": model.api_key} if model.api_key else {}
    asked = {**model.asked_with, **key, **options}
    if "api" not in asked and getattr(backend_class(backend), "chat_api", None):
        asked.update(api_trained_on(model))
    found: Predictor = ask(model.name, **asked)
    return found


def trained_on(candidate: Any, options: dict[str, Any]) -> Iterable[Example] | None:
    """The examples a candidate's model was fine-tuned on, as far as its backend can tell
    (``BaseBackend.trained_on``); ``None`` for anything else."""
    if not isinstance(candidate, ModelRef) or candidate.backend in ("openai-compatible", "gguf"):
        return None
    ask = _backend_hook(candidate.backend, "trained_on")
    return None if ask is None else ask(candidate.name, **{**candidate.asked_with, **options})


def _backend_hook(backend: str, hook: str) -> Callable[..., Any] | None:
    """One of a backend class's evaluation hooks (``predictor``, ``trained_on``), found on the
    class (evaluating builds no backend); a class without it, as a plain plugin may be,
    gives ``None``."""
    found: Callable[..., Any] | None = getattr(backend_class(backend), hook, None)
    return found
