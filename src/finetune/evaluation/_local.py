"""Local models as predictors: generation with transformers, each model loaded once per
process and freed when no evaluation uses it and others need the room."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import sys
import threading
import weakref
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, ClassVar

from finetune._errors import InvalidRequestError, MissingDependency
from finetune.evaluation._model_stamps import model_stamp
from finetune.evaluation._predictors import (
    TruncatedReply,
    a_seed,
    after_thinking,
    at_least_one,
)
from finetune.evaluation._prompts import Messages, a_plain_prompt
from finetune.evaluation._tools import Tools, format_tool_calls

__all__ = [
    "LEAVE_THEM_OUT",
    "RESPONSE_TEMPLATE_OPTION",
    "TEMPLATE_OPTION",
    "TOOLS_TEMPLATE_OPTION",
    "HFPredictor",
]


# where a local model's chat template is given (the command line writes its own way instead)
TEMPLATE_OPTION = (
    "ft.evaluate's predictor_options (for a candidate named 'base': "
    "predictor_options={'base': {'chat_template': template}})"
)
RESPONSE_TEMPLATE_OPTION = "predictor_options: {'response_template': {...}}"
TOOLS_TEMPLATE_OPTION = "predictor_options: {'chat_template': ...}"
# a prompt over the context: left out of the data (the command line says its own way)
LEAVE_THEM_OUT = "leave such examples out (data.filter(...))"
_LoadKey = tuple[str, str, str | None, bool]  # path, files' stamp, device, trust_remote_code


@dataclass
class _Loaded:
    """A loaded model, shared by the predictors of its folder; ``users`` are those that may
    still ask it (an evaluation closes its own when it ends)."""

    tokenizer: Any
    model: Any
    lock: threading.Lock = field(default_factory=threading.Lock)
    users: weakref.WeakSet[HFPredictor] = field(default_factory=weakref.WeakSet)


_LOAD_LOCK = threading.Lock()
_LOADED: OrderedDict[_LoadKey, _Loaded] = OrderedDict()  # least recently used first


def _make_room(keep: int) -> None:
    """Free the least recently used models no predictor holds until at most ``keep`` are
    loaded (models in use stay, whatever their number)."""
    idle = [key for key, loaded in _LOADED.items() if not loaded.users]
    freed = idle[: max(0, len(_LOADED) - keep)]
    for key in freed:
        del _LOADED[key]
    torch = sys.modules.get("torch")  # only where a model loaded it
    if freed and torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()  # hand the freed weights' memory back to the device


def _end_tokens(tokenizer: Any, model: Any, template: str | None) -> list[int]:
    """Every token that ends an answer: the tokenizer's end of text, those the model's
    generation config lists (Gemma ends a turn with ``<end_of_turn>``, named there alone) and,
    for chat prompts, the one the chat ``template`` closes a turn with, which a model tuned
    with it learned to write (a ChatML template on a tokenizer whose end of text is ``</s>``)."""
    from finetune.backends.hf._masks import turn_end_token

    listed = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ends = [tokenizer.eos_token_id, *(listed if isinstance(listed, list) else [listed])]
    if template != _PLAIN:  # a completion's prompt: no turn to close
        ends.append(turn_end_token(tokenizer, template))
    return list(dict.fromkeys(int(token) for token in ends if token is not None))


class HFPredictor:
    """Local generation with transformers: batched, greedy, seeded; LoRA adapters load too.

    A model is loaded once per process and shared by the predictors of its folder. Once no
    predictor uses it (``ft.evaluate`` closes its own when it ends), it stays loaded while no
    more than ``max_loaded`` models are, so the next evaluation of it starts at once; loading
    another frees the least recently used of them.

    A model whose tokenizer has a ``response_template`` (transformers' parser of what the
    model writes: its text and its tool calls), or that is given one as
    ``response_template``, takes tools: they are written into the prompt by its chat
    template, and its tool calls are read back with ``parse_response``.

    ``trust_remote_code`` lets transformers run code the model ships with; left unset, a
    local job's model is loaded with the flag its job trained with, any other without it.

    Args:
        path: a model folder (a local job's model, a LoRA adapter), a ``.gguf`` file or a
            Hub id; a path with nothing there, or a job's id, is refused here (an
            ``InvalidRequestError``), before anything is asked.
        max_new_tokens: the longest answer, in tokens (a longer one is cut and noted).
        batch_size: prompts generated together.
        seed: the seed of the generation.
        device: where the model runs (``cuda`` where there is one, else ``cpu``).
        trust_remote_code: run code the model ships with (see above).
        chat_template: a Jinja template to write prompts with, in place of the tokenizer's.
        response_template: transformers' parser of what the model writes (see above).
    """

    max_loaded: ClassVar[int] = 2
    """How many local models stay loaded when no evaluation is using them (the models of a
    running evaluation stay, whatever their number)."""

    def __init__(
        self,
        path: str,
        *,
        max_new_tokens: int = 64,
        batch_size: int = 16,
        seed: int = 0,
        device: str | None = None,
        trust_remote_code: bool | None = None,
        chat_template: str | None = None,
        response_template: dict[str, Any] | None = None,
    ) -> None:
        from finetune.backends.hf._models import check_source

        self.path = path
        self.max_new_tokens: int = at_least_one("max_new_tokens", max_new_tokens)
        self.batch_size: int = at_least_one("batch_size", batch_size)
        self.seed: int = a_seed(seed)
        check_source(path)  # a path with nothing there is told before any other model is asked
        self._device = device
        self._trust = _job_trusted(path) if trust_remote_code is None else trust_remote_code
        self._trained_on_completions = _job_trained_on_completions(path)  # asked so
        self._stamp = model_stamp(path)
        self.chat_template = chat_template
        """The Jinja template prompts are written with, in place of the tokenizer's own (a
        base model without one, tuned with the local backend's ``chat_template`` option)."""
        self.response_template: dict[str, Any] | None = _checked_parser(response_template)
        """transformers' parser of what the model writes, in place of its tokenizer's own
        ``response_template`` (a model whose tokenizer has none takes tools with it)."""
        self.name: str = f"hf:{path}:{self._stamp}:m{self.max_new_tokens}:s{seed}"
        if chat_template is not None:
            self.name += f":t{_digest(chat_template)}"
        elif self._trained_on_completions:  # a .gguf file's is known later; its stamp is
            self.name += ":plain"  # its own, and a file that says plain always did
        if response_template is not None:
            self.name += f":r{_digest(json.dumps(response_template, sort_keys=True))}"
        self._no_tools: str | None = None
        self._tokenizer_loaded: Any = None
        self._resolved: str | None = None

    def __repr__(self) -> str:
        return f"HFPredictor({self.path!r})"

    @property
    def supports_tools(self) -> bool:
        """Whether this model takes tools: its chat template writes them into the prompt, and
        its tool calls can be read (a ``response_template``, its tokenizer's or the one
        given). Loads the tokenizer, not the model."""
        return not self.tools_note

    @property
    def tools_note(self) -> str:
        """Why this model takes no tools, for ``ft.evaluate``'s refusal ('' when it takes
        them)."""
        if self._no_tools is None:
            self._no_tools = self._why_no_tools()
        return self._no_tools

    def _why_no_tools(self) -> str:
        from finetune.backends.hf._checks import writes_tools

        tokenizer = self._tokenizer()
        if (self.response_template or getattr(tokenizer, "response_template", None)) is None:
            return _NO_PARSER
        if not writes_tools(tokenizer, self.chat_template):
            return _NO_TOOLS_WRITTEN
        return ""

    def _tokenizer(self) -> Any:
        """The model's tokenizer, loaded once: ``supports_tools`` reads it, then the model
        is loaded with it (a .gguf file is converted once, then cached; a path that is no
        model is named)."""
        if self._tokenizer_loaded is None:
            from finetune.backends.hf._inputs import load_tokenizer

            self._tokenizer_loaded = load_tokenizer(self._folder(), self._trust, self.path)
        return self._tokenizer_loaded

    def _folder(self) -> str:
        """Where the model loads from, resolved once: a .gguf file is hashed to find its
        converted copy (converted on first use), which a multi-gigabyte file makes slow."""
        if self._resolved is None:
            from finetune.backends.hf._models import resolve

            self._resolved = resolve(self.path).path
        return self._resolved

    @staticmethod
    def loaded_models() -> list[str]:
        """The local models loaded in this process, least recently used first."""
        with _LOAD_LOCK:
            return [key[0] for key in _LOADED]

    def _load(self) -> _Loaded:
        # transformers' loading is not thread-safe (meta-device init), and candidates such as
        # "base" and "base few-shot" share one model: load each folder once, under one lock;
        # weights rewritten in place (a new stamp) are loaded again, never answered by the old.
        with _LOAD_LOCK:
            key = (self.path, self._stamp, self._device, self._trust)
            loaded = _LOADED.get(key)
            if loaded is None:
                for stale in [k for k in _LOADED if k[0] == key[0] and k[2:] == key[2:]]:
                    del _LOADED[stale]  # the same folder's earlier weights: free their memory
                _make_room(HFPredictor.max_loaded - 1)
                loaded = _LOADED[key] = _Loaded(*self._load_now())
            _LOADED.move_to_end(key)
            loaded.users.add(self)
            return loaded

    def close(self) -> None:
        """Let go of this predictor's model: it stays loaded for the next evaluation while no
        more than ``max_loaded`` models are; asking again takes it back."""
        with _LOAD_LOCK:
            for loaded in _LOADED.values():
                loaded.users.discard(self)
            _make_room(HFPredictor.max_loaded)

    async def aclose(self) -> None:
        """``close``, as ``ft.evaluate`` calls it when its run ends."""
        self.close()

    def _load_now(self) -> tuple[Any, Any]:
        try:
            import torch
        except ImportError as exc:
            raise MissingDependency("torch", "hf", purpose="for local models") from exc
        try:
            from transformers import AutoModelForCausalLM
        except ImportError as exc:
            raise MissingDependency("transformers", "hf", purpose="for local models") from exc
        device = _torch_device(self._device) if self._device else None
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        tokenizer = self._tokenizer()
        path = self._folder()
        tokenizer.padding_side = "left"
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        try:
            model = self._weights(path, AutoModelForCausalLM)
        except ValueError as exc:
            from finetune.backends.hf._inputs import needs_trust, untrusted_model
            from finetune.backends.hf._merge import adapter_base, is_adapter

            if needs_trust(exc):
                base = adapter_base(path) if is_adapter(path) else None
                raise untrusted_model(self.path, adapter_of=base) from None
            raise
        return tokenizer, model.to(device).eval()

    def _weights(self, path: str, auto_model: Any) -> Any:
        """The model's weights; a LoRA adapter loads over its base, merged."""
        from finetune._progress import no_library_bars_in_a_log
        from finetune.backends.hf._merge import is_adapter, quiet_peft

        if not is_adapter(path):
            with no_library_bars_in_a_log():
                return auto_model.from_pretrained(path, trust_remote_code=self._trust)
        from peft import AutoPeftModelForCausalLM

        # merged for generation: the same outputs, without the adapter's extra matmuls
        with quiet_peft(), no_library_bars_in_a_log():
            adapter = AutoPeftModelForCausalLM.from_pretrained(path, trust_remote_code=self._trust)
            return adapter.merge_and_unload()

    def predict_batch(self, prompts: list[Messages], tools: Tools | None = None) -> list[str]:
        """Replies to many prompts, ``batch_size`` at a time; with ``tools`` (or tool turns
        in the prompts), offered those tools, their tool calls read as calls. No reply
        depends on the prompts asked beside it: each is written with the template it alone
        calls for, and has the room its own length leaves in the context."""
        loaded = self._load()  # first: without torch, it names the extra that brings it
        by_template: dict[str | None, list[int]] = {}
        for i, prompt in enumerate(prompts):
            by_template.setdefault(self._template(loaded.tokenizer, prompt, tools), []).append(i)
        replies: dict[int, str] = {}
        with loaded.lock:  # a fast tokenizer's padding is state of its own: one caller at once
            for template, rows in by_template.items():
                answers = self._replies(loaded, [prompts[i] for i in rows], tools, template)
                replies.update(zip(rows, answers, strict=True))
        return [replies[i] for i in range(len(prompts))]

    def _replies(
        self, loaded: _Loaded, prompts: list[Messages], tools: Tools | None, template: str | None
    ) -> list[str]:
        """Replies to ``prompts``, all written with ``template``, ``batch_size`` at a time."""
        tokenizer, model = loaded.tokenizer, loaded.model
        plain = template == _PLAIN  # written as training wrote a prompt: special tokens added
        ends = _end_tokens(tokenizer, model, template)
        replies: list[str] = []
        for start in range(0, len(prompts), self.batch_size):
            chunk = prompts[start : start + self.batch_size]
            texts = [_prompt_text(tokenizer, p, tools, template) for p in chunk]
            answers: dict[int, str] = {}
            for rows, limit in _by_room(tokenizer, model, texts, self.max_new_tokens, plain):
                group = [texts[i] for i in rows]
                new = _generate(tokenizer, model, group, limit[0], ends, plain, self.seed)
                for i, text, row in zip(rows, group, new, strict=True):
                    read_calls = tools is not None or _has_tool_turns(chunk[i])
                    prefix = text if read_calls else None  # its calls are read as calls
                    answers[i] = self._reply(tokenizer, row, ends, limit, prefix, tools)
            replies += [answers[i] for i in range(len(texts))]
        return replies

    def _template(self, tokenizer: Any, prompt: Messages, tools: Tools | None) -> str | None:
        """The template ``prompt`` is written with: ours, else ``None`` for the tokenizer's
        own. A lone user turn, a completion example's prompt, is asked as its plain text
        (``_PLAIN``) by a model a local job trained on completions, which wrote its prompts
        so, and by one with no template (a base model); anything else such a model is asked
        is refused, naming the option."""
        if self.chat_template is not None:
            return self.chat_template
        own = getattr(tokenizer, "chat_template", None)
        plain = tools is None and a_plain_prompt(prompt)
        if plain and (self._asked_plain or not own):
            return _PLAIN
        if own:
            return None
        raise InvalidRequestError(
            f"the tokenizer of {self.path!r} has no chat template, so chat prompts cannot be "
            "written (a completion example's prompt is asked as its text); give the "
            f"model the template it was tuned with in {TEMPLATE_OPTION}",
            backend="hf",
            param="chat_template",
        )

    @functools.cached_property
    def _asked_plain(self) -> bool:
        """Whether a completion's prompt is asked as its text: by a model a local job trained
        on completions (known when made), or a .gguf file exported from one, which its
        converted copy says (read when first asked: the file says it only among metadata
        that takes seconds to parse)."""
        return self._trained_on_completions or _job_trained_on_completions(self._folder())

    def _reply(
        self,
        tokenizer: Any,
        tokens: list[int],
        ends: list[int],
        limit: tuple[int, str],
        prefix: str | None = None,
        tools: Tools | None = None,
    ) -> str:
        """A row of new tokens as text, up to its first end (read by the tokenizer's response
        parser, after the ``prefix`` prompt, where tools are in play); a row that used every
        new token its ``limit`` allowed without ending was cut there, by what it names."""
        end = next((i for i, token in enumerate(tokens) if token in ends), None)
        if prefix is None:
            decoded = tokenizer.decode(tokens[:end], skip_special_tokens=True)
            text: str = after_thinking(decoded).strip()
        else:
            text = _parsed_reply(tokenizer, tokens[:end], prefix, tools, self.response_template)
        if end is None and len(tokens) >= limit[0]:
            return TruncatedReply(text, limit[1])
        return text

    def predict(self, messages: Messages, tools: Tools | None = None) -> str:
        """The reply to ``messages`` (offered ``tools``, where given)."""
        return self.predict_batch([messages], tools)[0]

    async def apredict(self, messages: Messages, tools: Tools | None = None) -> str:
        """As ``predict``, in a worker thread."""
        return await asyncio.to_thread(self.predict, messages, tools)


_NO_PARSER = (
    "its tokenizer has no response_template, transformers' parser of a model's tool calls "
    f"(give the candidate one in {RESPONSE_TEMPLATE_OPTION}, save one "
    "with the model as tokenizer.response_template, or serve the model with tools)"
)
_NO_TOOLS_WRITTEN = (
    "its chat template does not write tool definitions, so the model would never see them "
    f"(give the candidate a template that does in {TOOLS_TEMPLATE_OPTION})"
)


def _torch_device(name: str) -> Any:
    """``name`` as torch's device, or an error naming the option before the model loads."""
    import torch

    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise InvalidRequestError(
            f"device {name!r} is no device torch knows: cpu, cuda, cuda:N, mps, ...",
            backend="hf",
            param="device",
        ) from None
    from finetune.backends.hf._launch import cuda_device_count, gpu_problem

    problem = gpu_problem(str(device), cuda_devices=cuda_device_count())
    if problem is not None:
        raise InvalidRequestError(problem, backend="hf", param="device")
    return device


def _generate(
    tokenizer: Any,
    model: Any,
    texts: list[str],
    most: int,
    ends: list[int],
    special: bool,
    seed: int,
) -> list[list[int]]:
    """The new tokens of each of ``texts``, generated together (greedy, seeded), ``most`` at
    the most; ``special``: the tokenizer's special tokens are added (a plain prompt's)."""
    import torch

    batch = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=special)
    batch = batch.to(model.device)
    torch.manual_seed(seed)
    with torch.no_grad():
        output = model.generate(
            **batch,
            max_new_tokens=most,
            do_sample=False,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=ends,
        )
    new: list[list[int]] = output[:, batch["input_ids"].shape[1] :].tolist()
    return new


def _by_room(
    tokenizer: Any, model: Any, texts: list[str], max_new_tokens: int, special: bool
) -> list[tuple[list[int], tuple[int, str]]]:
    """The prompts ``texts`` as groups asked together, each with how many new tokens it may
    have and what cuts them there: those with room for ``max_new_tokens`` before the model's
    context ends, together; each other alone, stopped where the context ends (past it a reply
    is noise, or an index error where positions are learned), so that no answer depends on
    the prompts asked beside it. A prompt that leaves no room at all is refused."""
    from finetune.backends.hf._checks import config_context

    asked = (max_new_tokens, f"max_new_tokens={max_new_tokens}")
    context = config_context(model.config)
    if context is None:
        return [(list(range(len(texts))), asked)]
    lengths = [len(ids) for ids in tokenizer(texts, add_special_tokens=special).input_ids]
    for position, tokens in enumerate(lengths):
        if tokens >= context:
            _refuse_a_prompt_over(context, tokens, position, len(texts))
    roomy = [i for i, tokens in enumerate(lengths) if context - tokens >= max_new_tokens]
    cut = f"the model's context of {context} tokens"
    tight = [([i], (context - lengths[i], cut)) for i in range(len(texts)) if i not in roomy]
    return ([(roomy, asked)] if roomy else []) + tight


def _refuse_a_prompt_over(context: int, tokens: int, position: int, asked: int) -> None:
    """Refuse prompt ``position`` of the ``asked`` asked together: ``tokens`` long, it leaves
    no room in the model's ``context`` for any reply."""
    which = f"prompt {position + 1} of the {asked} asked together" if asked > 1 else "the prompt"
    than = "longer than" if tokens > context else "as long as"
    way_out = f"{LEAVE_THEM_OUT}, or ask a model with a longer context"
    said = f"{which} is {tokens} tokens, {than} the model's context of {context}"
    message = f"{said}: its reply would be noise; {way_out}"
    raise InvalidRequestError(message, backend="hf", param="messages")


def _job_trusted(path: str) -> bool:
    from finetune.backends.hf._jobdir import trusted_by_its_job

    return trusted_by_its_job(path)


def _job_trained_on_completions(path: str) -> bool:
    from finetune.backends.hf._jobdir import trained_on_completions

    return trained_on_completions(path)


def _checked_parser(template: dict[str, Any] | None) -> dict[str, Any] | None:
    """``template``, refused at once where transformers' response parser cannot take it
    (a name such as ``"chatml"``, an unknown key): it was only read on the first tool call."""
    if template is None:
        return None
    try:
        from transformers.utils.chat_parsing import ResponseParser
    except ImportError as exc:
        raise MissingDependency("transformers", "hf", purpose="for local models") from exc
    try:
        ResponseParser(template, prefix="")
    except (TypeError, ValueError) as exc:
        raise InvalidRequestError(
            f"response_template: {exc} (it is transformers' response_template, a dict: "
            "docs/evaluation.md shows one)",
            backend="hf",
            param="response_template",
        ) from None
    return template


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _has_tool_turns(messages: Messages) -> bool:
    return any(m.get("tool_calls") or m.get("role") == "tool" for m in messages)


_PLAIN = "\0plain"  # no chat template: a completion's prompt, asked as its text


def _prompt_text(
    tokenizer: Any, messages: Messages, tools: Tools | None, template: str | None = None
) -> str:
    """The prompt as the chat template (``template``, else the tokenizer's) writes it; tool
    calls with their arguments as a mapping, as templates take them (``_PLAIN``: the one
    user turn's text)."""
    if template == _PLAIN:
        return str(messages[0]["content"])
    if tools is None and not _has_tool_turns(messages):
        text: str = tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, tokenize=False, chat_template=template
        )
        return text
    from finetune.validation._tokens import template_messages

    shaped = template_messages(messages)
    written: str = tokenizer.apply_chat_template(
        shaped, tools=tools, add_generation_prompt=True, tokenize=False, chat_template=template
    )
    return written


def _parsed_reply(
    tokenizer: Any,
    tokens: list[int],
    prefix: str,
    tools: Tools | None,
    schema: dict[str, Any] | None = None,
) -> str:
    """What the model wrote, read by its response parser (``schema``, else its tokenizer's):
    its tool calls as their ``format_tool_calls`` text, else its text."""
    message = tokenizer.parse_response(tokens, schema, prefix=prefix, tools=tools)
    calls = message.get("tool_calls") if isinstance(message, dict) else None
    if calls:
        return format_tool_calls(calls)
    content = message.get("content") if isinstance(message, dict) else None
    return str(content or "").strip()
