"""Exact token counters: tiktoken for OpenAI, mistral-common for Mistral, approximate fallback."""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import marshal
import math
import sys
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from finetune._errors import InvalidRequestError, MissingDependency
from finetune._json_text import json_from_text
from finetune._paths import cache_dir

__all__ = [
    "ApproximateCounter",
    "ChatTemplateCounter",
    "MistralCounter",
    "TiktokenCounter",
    "TokenCounter",
    "counter_for",
    "no_chat_template",
    "openai_encoding_name",
    "reasoning_of",
    "template_messages",
    "text_of",
]

log = logging.getLogger("finetune")
_CACHE_LIMIT = 4096


@runtime_checkable
class TokenCounter(Protocol):
    """Counts the tokens a provider bills and trains on for one raw example."""

    name: str
    exact: bool

    def count_text(self, text: str) -> int:
        """Tokens of a bare string."""
        ...

    def count_example(self, record: dict[str, Any]) -> int:
        """Tokens of one training example as the provider formats it."""
        ...


def _messages_of(record: dict[str, Any]) -> list[Any]:
    if "messages" in record:
        return list(record["messages"] or [])
    if "preferred_output" in record:
        source = record.get("input") or {}
        return [*(source.get("messages") or []), *(record.get("preferred_output") or [])]
    if "chosen" in record:
        prompt = record.get("prompt") or record.get("input") or []
        chosen = record.get("chosen") or []
        return [*_as_list(prompt, "user"), *_as_list(chosen, "assistant")]
    return [
        {"role": "user", "content": record.get("prompt", "")},
        {"role": "assistant", "content": record.get("completion", "")},
    ]


def _as_list(value: Any, role: str) -> list[Any]:
    return [{"role": role, "content": value}] if isinstance(value, str) else list(value or [])


def text_of(content: Any) -> str:
    """A message's content as plain text: a string as it is, a list of parts' texts joined,
    anything else empty."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text") or "" for p in content if isinstance(p, dict))
    return ""


def template_messages(messages: list[Any]) -> list[dict[str, Any]]:
    """Raw messages as Hugging Face chat templates take them: text content, tool calls with
    their arguments as a mapping (transformers' convention: templates write them with
    ``tojson``), and a tool result's ``tool_call_id`` and ``name``."""
    out = []
    for message in messages:
        if not isinstance(message, dict):
            continue
        shaped: dict[str, Any] = {
            "role": message.get("role"),
            "content": text_of(message.get("content")),
        }
        calls = [_template_call(c) for c in message.get("tool_calls") or [] if isinstance(c, dict)]
        if calls:
            shaped["tool_calls"] = calls
        for key in ("tool_call_id", "name"):
            if message.get(key) is not None:
                shaped[key] = message[key]
        reasoning = reasoning_of(message)
        if reasoning:  # Qwen 3's, DeepSeek's and gpt-oss's templates read it
            shaped["reasoning_content"] = reasoning
        out.append(shaped)
    return out


def reasoning_of(message: dict[str, Any]) -> str:
    """An assistant turn's chain of thought (``reasoning_content``, or ``reasoning``); ""
    for none."""
    reasoning = message.get("reasoning_content")
    if reasoning is None:  # a table with both columns gives each row a null in one of them
        reasoning = message.get("reasoning")
    return reasoning if isinstance(reasoning, str) else ""


def _template_call(call: dict[str, Any]) -> dict[str, Any]:
    function = dict(call.get("function") or {})
    arguments = function.get("arguments")
    if isinstance(arguments, str):
        with contextlib.suppress(ValueError):  # validation names arguments that are not JSON
            function["arguments"] = json_from_text(arguments)
    return {**call, "function": function}


class _CachedCounter:
    """Caches the counts of strings seen twice (system prompts repeat in nearly every example).

    Unique strings are remembered only by hash, in a bounded set, so memory stays flat.
    """

    def __init__(self) -> None:
        self._cache: dict[str, int] = {}
        self._seen: set[int] = set()

    def _encode_len(self, text: str) -> int:
        raise NotImplementedError

    def count_text(self, text: str) -> int:
        """Tokens of a bare string (a string seen before is counted once)."""
        cached = self._cache.get(text)
        if cached is not None:
            return cached
        count = self._encode_len(text)
        key = hash(text)
        if key in self._seen:
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[text] = count
        else:
            if len(self._seen) >= 4 * _CACHE_LIMIT:
                self._seen.clear()
            self._seen.add(key)
        return count


class TiktokenCounter(_CachedCounter):
    """OpenAI chat counting: each message's tokens plus the documented per-message overhead."""

    exact = True
    tokens_per_message = 3
    tokens_per_name = 1
    reply_priming = 3

    def __init__(self, encoding: Any) -> None:
        super().__init__()
        self._encoding = encoding
        # the Rust encoder itself, without tiktoken's Python wrapper, when it is there
        core = getattr(encoding, "_core_bpe", None)
        self._encode = getattr(core, "encode_ordinary", encoding.encode_ordinary)
        self.name: str = f"tiktoken:{encoding.name}"
        self._role_tokens = {r: self._encode_len(r) for r in ("system", "user", "assistant")}

    def _encode_len(self, text: str) -> int:
        try:
            return len(self._encode(text))
        except UnicodeEncodeError:  # lone surrogates: the wrapper replaces them
            return len(self._encoding.encode_ordinary(text))

    @functools.cached_property
    def max_token_chars(self) -> int | None:
        """The most characters one token can cover (its byte length bounds it), so a text of
        ``n`` characters has at least ``n / max_token_chars`` tokens, known without encoding."""
        ranks = getattr(self._encoding, "_mergeable_ranks", None)
        return max(map(len, ranks), default=None) if ranks else None

    def count_plain(self, roles: list[str], texts: list[str]) -> int:
        """``count_example`` for a chat of plain system/user/assistant messages (as
        ``plain_chat`` reads them), without the walk. Only system prompts are looked up in the
        cache: user and assistant texts rarely repeat, so remembering them costs more than it
        saves."""
        total = self.reply_priming + self.tokens_per_message * len(texts)
        total += sum(map(self._role_tokens.__getitem__, roles))
        if roles[0] == "system" and roles.count("system") == 1:  # the usual shape, no loop
            try:
                rest = sum(map(len, map(self._encode, texts[1:])))
                return total + self.count_text(texts[0]) + rest
            except UnicodeEncodeError:
                pass  # lone surrogates: counted one by one below
        for role, text in zip(roles, texts, strict=True):
            total += self.count_text(text) if role == "system" else self._encode_len(text)
        return total

    def count_example(self, record: dict[str, Any]) -> int:
        """Tokens of one example as OpenAI counts a chat (each message's overhead, the
        reply's priming, the tools' definitions), or a prompt plus its completion."""
        if "messages" not in record and "prompt" in record and "completion" in record:
            return self.count_text(str(record["prompt"])) + self.count_text(
                str(record["completion"])
            )
        total = self.reply_priming
        count = self.count_text
        for message in _messages_of(record):
            if not isinstance(message, dict):
                continue
            total += self.tokens_per_message + count(text_of(message.get("content")))
            total += count(str(message.get("role", "")))
            if message.get("name"):
                total += self.tokens_per_name + count(str(message["name"]))
            for call in message.get("tool_calls") or []:
                total += count(json.dumps(call, sort_keys=True))
        source = record.get("input")
        tools = record.get("tools") or (source.get("tools") if isinstance(source, dict) else None)
        if tools:
            total += count(json.dumps(tools, sort_keys=True))
        return total


class MistralCounter:
    """Mistral counting with mistral-common's bundled tokenizers, in fine-tuning mode."""

    exact: bool = True

    def __init__(self, model: str) -> None:
        self._tokenizer, tokenizer_file, self.exact = _mistral_tokenizer(model)
        self.name: str = f"mistral-common:{tokenizer_file}"
        self._raw = self._tokenizer.instruct_tokenizer.tokenizer

    def count_text(self, text: str) -> int:
        """Tokens of a bare string, without the begin and end markers."""
        return len(self._raw.encode(text, bos=False, eos=False))

    def count_example(self, record: dict[str, Any]) -> int:
        """Tokens of one example as Mistral's tokenizer encodes the chat, tools included."""
        from mistral_common.protocol.instruct.request import ChatCompletionRequest

        messages = [_mistral_message(m) for m in _messages_of(record) if isinstance(m, dict)]
        request: Any = ChatCompletionRequest.model_validate(
            {"messages": messages, "tools": record.get("tools")}
        )
        return len(self._tokenizer.encode_chat_completion(request).tokens)


def _mistral_message(message: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in message.items() if k in ("role", "tool_calls", "tool_call_id", "name")}
    out["content"] = text_of(message.get("content"))
    if message.get("role") != "tool":
        out.pop("name", None)
    return out


_MISTRAL_TOKENIZERS = (
    ("open-mistral-nemo", "tekken_240718.json"),
    ("ministral", "tekken_240718.json"),
    ("mistral-small", "tekken_240718.json"),
    ("pixtral", "tekken_240911.json"),
    ("mistral-large-2411", "mistral_instruct_tokenizer_241114.model.v7"),
    ("mistral-large", "mistral_instruct_tokenizer_241114.model.v7"),
    ("codestral", "mistral_instruct_tokenizer_240323.model.v3"),
    ("open-mistral-7b", "mistral_instruct_tokenizer_240323.model.v3"),
    ("open-mixtral", "mistral_instruct_tokenizer_240323.model.v3"),
)


@functools.lru_cache(maxsize=8)
def _mistral_tokenizer(model: str) -> tuple[Any, str, bool]:
    try:
        from mistral_common.protocol.instruct.validator import ValidationMode
        from mistral_common.tokens.tokenizers.mistral import MistralTokenizer
    except ImportError as exc:
        raise MissingDependency(
            "mistral-common", "mistral", purpose="for exact Mistral token counts"
        ) from exc
    name = model.removeprefix("ft:")
    match = next((f for prefix, f in _MISTRAL_TOKENIZERS if name.startswith(prefix)), None)
    tokenizer_file = match or "tekken_240718.json"
    path = MistralTokenizer._data_path() / tokenizer_file
    try:
        tokenizer = MistralTokenizer.from_file(str(path), mode=ValidationMode.finetuning)
    except ImportError as exc:
        raise MissingDependency(
            "mistral-common[sentencepiece]", "mistral", purpose=f"for {model}'s tokenizer"
        ) from exc
    return tokenizer, tokenizer_file, match is not None


class ApproximateCounter:
    """About four characters a token: used only when no exact tokenizer can be loaded."""

    exact = False

    def __init__(self, reason: str = "") -> None:
        self.name = "approximate"
        self.reason = reason

    def count_text(self, text: str) -> int:
        """A quarter of the characters, rounded up."""
        return math.ceil(len(text) / 4)

    def count_example(self, record: dict[str, Any]) -> int:
        """The messages' texts, plus 4 tokens a message and 3 for the reply."""
        total = 3
        for message in _messages_of(record):
            if isinstance(message, dict):
                total += 4 + self.count_text(text_of(message.get("content")))
                total += self.count_text(reasoning_of(message))
        return total


def openai_encoding_name(model: str) -> str:
    """The tiktoken encoding of an OpenAI model (fine-tuned names included)."""
    name = model.removeprefix("ft:").split(":")[0]
    if name.startswith(("gpt-3.5", "gpt-4-", "davinci-002", "babbage-002")) or name == "gpt-4":
        return "cl100k_base"
    return "o200k_base"


@functools.lru_cache(maxsize=4)
def _tiktoken_encoding(name: str) -> Any:
    try:
        import tiktoken
    except ImportError as exc:  # pragma: no cover - tiktoken is a core dependency
        raise MissingDependency("tiktoken") from exc
    # one copy per process (about 75 MB for o200k): tiktoken's own registry is shared both ways
    shared = getattr(sys.modules.get("tiktoken.registry"), "ENCODINGS", None)
    if isinstance(shared, dict) and name in shared:
        return shared[name]
    cached = _prepared_encoding(tiktoken, name)
    if cached is not None:
        return shared.setdefault(name, cached) if isinstance(shared, dict) else cached
    encoding = tiktoken.get_encoding(name)
    _remember_encoding(tiktoken, name)
    return encoding


def _prepared_path(tiktoken: Any, name: str) -> Path:
    """Where tiktoken's own constructor output for ``name`` is kept, ready to load (marshal
    is specific to the Python version, so it is part of the name)."""
    python = "".join(map(str, sys.version_info[:2]))
    version = getattr(tiktoken, "__version__", "0")
    return cache_dir() / "tiktoken" / f"{name}-tiktoken{version}-py{python}.marshal"


def _prepared_encoding(tiktoken: Any, name: str) -> Any:
    """The encoding built from our prepared copy (about 0.1 s faster than tiktoken's text
    file), or ``None`` when there is none or it is unreadable."""
    path = _prepared_path(tiktoken, name)
    try:
        spec = marshal.loads(path.read_bytes())
        return tiktoken.Encoding(**spec)
    except (OSError, ValueError, EOFError, TypeError, KeyError):
        return None


def _remember_encoding(tiktoken: Any, name: str) -> None:
    """Keep tiktoken's constructor output for ``name`` (ranks, pattern, special tokens) for the
    next process; a cache that cannot be written is skipped."""
    from tiktoken.registry import ENCODING_CONSTRUCTORS

    constructor = (ENCODING_CONSTRUCTORS or {}).get(name)
    if constructor is None:
        return
    path = _prepared_path(tiktoken, name)
    try:
        spec = constructor()
        from finetune.dataset import atomic_write

        with atomic_write(path) as handle:
            handle.write(marshal.dumps(spec))
    except (OSError, ValueError) as exc:
        log.debug("could not keep a prepared copy of %s: %s", name, exc)


_OPEN_WEIGHTS_TARGETS = {
    "together": (
        "Together trains open-weights models whose tokenizers are not bundled: counts are "
        "estimated at about 4 characters a token; with a key, an estimate adds Together's own "
        "count (estimate-price)"
    ),
    "fireworks": (
        "Fireworks trains open-weights models whose tokenizers are not bundled: counts are "
        "estimated at about 4 characters a token"
    ),
}


def counter_for(target: str, model: str) -> TokenCounter:
    """The best counter for a validation target and model; approximate (and logged) if offline."""
    if target == "mistral":
        try:
            return MistralCounter(model)
        except MissingDependency as exc:
            _warn_once(str(exc))
            return ApproximateCounter(str(exc))
    if target in _OPEN_WEIGHTS_TARGETS:
        return ApproximateCounter(_OPEN_WEIGHTS_TARGETS[target])
    encoding = openai_encoding_name(model)
    try:
        return TiktokenCounter(_tiktoken_encoding(encoding))
    except Exception as exc:
        reason = (
            f"tiktoken could not load the {encoding} encoding ({_why_not_loaded(exc)}); "
            "it downloads it on first use: connect once, or set TIKTOKEN_CACHE_DIR to a "
            "folder holding the cached file"
        )
        log.debug("loading the %s encoding failed", encoding, exc_info=exc)
        _warn_once(reason)
        return ApproximateCounter(reason)


def _why_not_loaded(exc: Exception) -> str:
    """The error in a few words: a failed download names its URL, not the connection pool's
    retry history that ``requests`` puts in its message (the whole error is logged at DEBUG)."""
    url = getattr(getattr(exc, "request", None), "url", None)
    if isinstance(exc, OSError) and isinstance(url, str):
        return f"{type(exc).__name__} fetching {url}"
    return f"{type(exc).__name__}: {exc}"


_warned: set[str] = set()


def _warn_once(reason: str) -> None:
    """Log why counts are approximate once a process: a sweep of fits, or a notebook that
    validates again, would repeat it each time (each report still says it)."""
    if reason not in _warned:
        _warned.add(reason)
        log.warning("%s; token counts are approximate", reason)


def no_chat_template(model: str) -> InvalidRequestError:
    """The refusal of chat examples for a local model whose tokenizer has no chat template."""
    return InvalidRequestError(
        f"the tokenizer of {model} has no chat template, so chat examples cannot be rendered: "
        "give it one, as Tuner('hf', model=..., chat_template=Path('chat.jinja').read_text()) "
        "or fit(options={'chat_template': ...}) (--option chat_template=\"$(cat chat.jinja)\" "
        "on the command line, or chat_template under [options] in a --config file), or train "
        "on completion data (prompt and completion need none)",
        backend="hf",
        param="chat_template",
    )


class ChatTemplateCounter:
    """Local models: tokens of the example rendered through the tokenizer's own chat template."""

    exact = True

    def __init__(self, tokenizer: Any, name: str = "") -> None:
        self._templated = getattr(tokenizer, "chat_template", None) is not None
        self._tokenizer = tokenizer
        self._model = name or type(tokenizer).__name__
        self.name: str = f"chat-template:{self._model}"

    @classmethod
    def from_pretrained(cls, path: str, *, trust_remote_code: bool = False) -> ChatTemplateCounter:
        """Load the tokenizer of a local model folder or hub id (needs ``finetune[hf]``)."""
        try:
            from transformers import AutoTokenizer
        except ImportError as exc:
            raise MissingDependency("transformers", "hf", purpose="for local models") from exc
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
        return cls(tokenizer, name=path)

    def count_text(self, text: str) -> int:
        """Tokens of a bare string, without special tokens."""
        return len(self._tokenizer(text, add_special_tokens=False)["input_ids"])

    @functools.cached_property
    def max_token_chars(self) -> int | None:
        """The most characters one vocabulary entry spells (a bound for skipping texts that
        are over the limit by length alone)."""
        try:
            vocab = self._tokenizer.get_vocab()
        except Exception:  # a tokenizer without a vocabulary listing: no shortcut
            return None
        return max(map(len, vocab), default=None) or None

    def count_example(self, record: dict[str, Any]) -> int:
        """Tokens of one example rendered with the chat template (tools included), or of a
        prompt plus its completion."""
        if "messages" not in record and "prompt" in record and "completion" in record:
            text = str(record["prompt"]) + str(record["completion"])
            return len(self._tokenizer(text)["input_ids"])
        if not self._templated:  # a base model's: raised, not reported on every row
            raise no_chat_template(self._model)
        messages = template_messages(_messages_of(record))
        tools = record.get("tools") or None
        rendered = self._tokenizer.apply_chat_template(messages, tools=tools, tokenize=True)
        if isinstance(rendered, dict) or hasattr(rendered, "keys"):
            rendered = rendered["input_ids"]
        return len(rendered)
