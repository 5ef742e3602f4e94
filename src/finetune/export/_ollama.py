"""An Ollama model folder: the GGUF file and a ``Modelfile`` (``FROM``, ``TEMPLATE`` in Ollama's
Go-template syntax for the chat formats it recognises, ``PARAMETER stop``, ``SYSTEM``)."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from finetune._errors import FinetuneError
from finetune._words import command_line

__all__ = [
    "FAMILIES",
    "PLAIN_TEMPLATE",
    "UNQUOTABLE_SYSTEM",
    "create_model",
    "default_system_prompt",
    "end_of_turn",
    "family_of",
    "modelfile",
    "ollama_name_problem",
    "quotable",
    "system_of",
    "trained_system_prompt",
]


@dataclass(frozen=True)
class ChatFormat:
    """A chat format: the exchange its templates render, its Ollama template, its stops."""

    name: str
    exchange: str  # how the probe's user turn "U" and reply "A" render in this format
    template: str
    stops: tuple[str, ...]


FAMILIES = (
    ChatFormat(
        "chatml",
        "<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\nA<|im_end|>",
        "{{ if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}"
        "{{ if .Prompt }}<|im_start|>user\n{{ .Prompt }}<|im_end|>\n{{ end }}"
        "<|im_start|>assistant\n{{ .Response }}<|im_end|>\n",
        ("<|im_end|>", "<|im_start|>"),
    ),
    ChatFormat(
        "llama-3",
        "<|start_header_id|>user<|end_header_id|>\n\nU<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\nA<|eot_id|>",
        "{{ if .System }}<|start_header_id|>system<|end_header_id|>\n\n{{ .System }}<|eot_id|>"
        "{{ end }}{{ if .Prompt }}<|start_header_id|>user<|end_header_id|>\n\n{{ .Prompt }}"
        "<|eot_id|>{{ end }}<|start_header_id|>assistant<|end_header_id|>\n\n"
        "{{ .Response }}<|eot_id|>",
        ("<|eot_id|>", "<|start_header_id|>"),
    ),
    ChatFormat(
        "gemma",
        "U<end_of_turn>\n<start_of_turn>model\nA<end_of_turn>",
        "<start_of_turn>user\n{{ if .System }}{{ .System }}\n\n{{ end }}{{ .Prompt }}"
        "<end_of_turn>\n<start_of_turn>model\n{{ .Response }}<end_of_turn>\n",
        ("<end_of_turn>", "<start_of_turn>"),
    ),
    ChatFormat(
        "phi-3",
        "<|user|>\nU<|end|>\n<|assistant|>\nA<|end|>",
        "{{ if .System }}<|system|>\n{{ .System }}<|end|>\n{{ end }}{{ if .Prompt }}<|user|>\n"
        "{{ .Prompt }}<|end|>\n{{ end }}<|assistant|>\n{{ .Response }}<|end|>\n",
        ("<|end|>", "<|user|>", "<|assistant|>"),
    ),
    ChatFormat(
        "mistral",
        "U [/INST]A</s>",
        "[INST] {{ if .System }}{{ .System }}\n\n{{ end }}{{ .Prompt }} [/INST]{{ .Response }}</s>",
        ("[INST]", "[/INST]", "</s>"),
    ),
)


_PROBE = [{"role": "user", "content": "U"}, {"role": "assistant", "content": "A"}]


def family_of(tokenizer: Any) -> ChatFormat | None:
    """The chat format the tokenizer's template renders, when it is one of ``FAMILIES``
    (recognised by rendering a probe exchange, not by reading the Jinja source)."""
    if not getattr(tokenizer, "chat_template", None):
        return None
    try:
        rendered = tokenizer.apply_chat_template(_PROBE, tokenize=False)
    except Exception:
        return None
    for family in FAMILIES:
        if family.exchange in rendered:
            return family
    return None


_SENTINEL = "\x00system\x00"  # a system prompt no template writes of its own


def default_system_prompt(tokenizer: Any) -> str | None:
    """The system prompt the tokenizer's chat template writes into a conversation that has
    none (SmolLM2's "You are a helpful AI assistant named SmolLM...", Qwen 2.5's): the text
    that stands where a given one would, or ``None`` where it writes none."""
    try:
        bare = tokenizer.apply_chat_template(_PROBE, tokenize=False)
        given = [{"role": "system", "content": _SENTINEL}, *_PROBE]
        told = tokenizer.apply_chat_template(given, tokenize=False)
    except Exception:  # a template without a system turn (Gemma's) raises: it writes none
        return None
    before, found, after = told.partition(_SENTINEL)
    fits = len(bare) > len(before) + len(after) and bare.startswith(before)
    if not found or not fits or not bare.endswith(after):
        return None
    return str(bare[len(before) : len(bare) - len(after)])


def system_of(row: dict[str, Any]) -> str:
    """The system prompt a training row (a chat's ``messages``, a preference pair's
    ``prompt``) starts with; ``""`` for none."""
    turns = row.get("messages") or row.get("prompt")
    first = turns[0] if isinstance(turns, list) and turns else None
    if not isinstance(first, dict) or first.get("role") != "system":
        return ""
    return str(first.get("content"))


def trained_system_prompt(seen: set[str], tokenizer: Any) -> str | None:
    """The system prompt every training example was trained with, for ``SYSTEM``: the one
    they all had (``seen``: each example's, ``""`` for none), or the template's default
    where none had one; ``None`` where they differ."""
    if len(seen) != 1:
        return None
    (system,) = seen
    return system or default_system_prompt(tokenizer)


def end_of_turn(tokenizer: Any) -> str | None:
    """The token that ends an assistant turn in this tokenizer's chat format, if recognised."""
    family = family_of(tokenizer)
    return family.stops[0] if family else None


UNQUOTABLE_SYSTEM = (
    'the trained system prompt holds """, which a Modelfile cannot quote (Ollama reads no '
    "escapes, and ends the text there): no SYSTEM line; send it as each request's system message"
)


def quotable(text: str) -> bool:
    """Whether a Modelfile's ``\"\"\"...\"\"\"`` holds ``text`` as it is: Ollama's parser
    reads no escapes, and ends the value at the first ``\"\"\"`` before a space."""
    return '"""' not in text


def _quoted(text: str) -> str:
    return '"""' + text + '"""'


PLAIN_TEMPLATE = "{{ .Prompt }}"
"""Ollama's template for a model trained on prompt/completion text: the prompt as it is."""


def modelfile(
    gguf_name: str,
    family: ChatFormat | None,
    system: str | None,
    *,
    adapter: str | None = None,
    plain: bool = False,
) -> str:
    """The Modelfile's text; ``adapter`` names a LoRA GGUF (then ``gguf_name`` is the base);
    ``plain``: the model trained on prompt/completion text, so a prompt is sent as its text,
    in no chat format (and with no system prompt, which such a prompt has no place for)."""
    lines = [f"FROM ./{gguf_name}"]
    if adapter:
        lines.append(f"ADAPTER ./{adapter}")
    if plain:
        lines.append("# trained on prompt/completion text: a prompt is sent as it is")
        lines.append(f"TEMPLATE {_quoted(PLAIN_TEMPLATE)}")
        lines.append("PARAMETER temperature 0")
        return "\n".join(lines) + "\n"
    if family is None:
        lines.append("# chat format not recognised: Ollama detects it from the GGUF's template")
    else:
        lines.append(f"# chat format: {family.name}")
        lines.append(f"TEMPLATE {_quoted(family.template)}")
        lines.extend(f'PARAMETER stop "{stop}"' for stop in family.stops)
    lines.append("PARAMETER temperature 0")
    if system and quotable(system):
        lines.append(f"SYSTEM {_quoted(system)}")
    elif system:
        lines.append(f"# {UNQUOTABLE_SYSTEM}")
    return "\n".join(lines) + "\n"


_PART = r"[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*"  # Ollama's characters; no two dots in a row
_OLLAMA_NAME = re.compile(
    rf"(?:{_PART}(?::\d+)?/)?(?:[A-Za-z0-9_-]+/)?{_PART}(?::{_PART})?"  # [host/][ns/]model[:tag]
)


def ollama_name_problem(name: str) -> str | None:
    """Why ``ollama create`` would refuse ``name``, if it would: the export is not made for
    a name Ollama rejects once it is written."""
    if _OLLAMA_NAME.fullmatch(name):
        return None
    return (
        f"{name!r} is no Ollama model name: letters, digits, '_', '-' and '.' (not two in a "
        "row), as model, model:tag or namespace/model:tag"
    )


def create_model(folder: Path, name: str) -> str:
    """Run ``ollama create NAME -f Modelfile`` in ``folder``; its output."""
    executable = shutil.which("ollama")
    if executable is None:
        create = command_line("ollama", "create", name, "-f", "Modelfile")
        raise FinetuneError(
            "no `ollama` executable on PATH; install Ollama, then run: "
            f"{command_line('cd', folder)} && {create}"
        )
    done = subprocess.run(
        [executable, "create", name, "-f", "Modelfile"],
        cwd=folder,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise FinetuneError(f"ollama create {name} failed: {(done.stderr or done.stdout)[-500:]}")
    return done.stdout
