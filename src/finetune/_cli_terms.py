"""What a message says in Python's terms, as the command line says it: a backend option,
given or advised, as ``--option KEY=VALUE``, a hyperparameter as its flag or its key in a
config file, a price of one's own as ``--price-per-million``, a Tuner to train on instead as
``--backend`` and ``--model``, an asked model's key and chat template as ``ask`` and ``eval``
take them."""

from __future__ import annotations

import re

from finetune.evaluation._cache import OTHER_CACHE
from finetune.evaluation._checks import SERVED_WITH_TOOLS, TO_A_FUNCTION
from finetune.evaluation._judging import JUDGE_ROOM
from finetune.evaluation._local import (
    LEAVE_THEM_OUT,
    RESPONSE_TEMPLATE_OPTION,
    TEMPLATE_OPTION,
    TOOLS_TEMPLATE_OPTION,
)
from finetune.evaluation._predictors import KEY_OPTION
from finetune.evaluation._run import OPTIONS_OF
from finetune.lifecycle import SAME_DATASET
from finetune.registry import NO_REGISTRY
from finetune.validation._catalog import PRICE_OPTION

__all__ = ["HYPERPARAMETER_FLAGS", "for_the_command", "in_cli_terms"]

# the hyperparameters ``train`` takes as flags (--learning-rate); the others from a config file
HYPERPARAMETER_FLAGS = ("epochs", "batch_size", "learning_rate", "learning_rate_multiplier", "seed")

# options={'full_finetune': True}, never fit(options=...), whose sentence says its flag itself
_OPTION = re.compile(r"(?<!fit\()options=\{'(\w+)': (True|False|-?[\d.]+|'[^']*'|\.\.\.)\}")
_EXTRA = re.compile(r"(?<!\()extra=\{'(\w+)': (N|\.\.\.|-?[\d.]+)\}")
# Tuner("hf", model="org/name"), Tuner("hf", model=<an open-weights model>), model=...
_TUNER = re.compile(r'Tuner\("([\w-]+)", model=(?:"([^"]*)"|(<[^>]*>|\.\.\.))\)')
# a local option in advice: "set max_length=512 or lower", "set launcher='ray', or drop ..."
_SET_OPTION = re.compile(r"\bset (\w+)=(?:'([^']*)'|(\d+))(?=[ ,.;)]|$)")
# an asked model's reply cut at its setting: "cut short: raise max_new_tokens"
_RAISE_SETTING = re.compile(r"\bcut short: raise (\w+)$")
# the model a local job made, Tuner('hf').job('hfjob-...').model, as each command names it
_JOB_MODEL = re.compile(r"Tuner\('hf'\)\.job\('(hfjob-[\w-]+)'\)\.model, or ")
_JOB_MODEL_WAYS = {
    "ask": r"finetune ask hf:\1, or ",
    "eval": r'job = "hf:\1" in a [candidates.NAME] table, or ',
}
# a model that ships its own code: "pass trust_remote_code=True (Tuner(...), fit(...), ...)"
_TRUST = re.compile(r"pass trust_remote_code=True \((?:[^()]|\([^()]*\))*\)")
_TRUST_WAYS = {
    "eval": "give its candidate options = { trust_remote_code = true } in its [candidates.NAME] "
    "table",
}


def in_cli_terms(text: str) -> str:
    """``text`` with its Python advice written as the command's flags and config keys."""
    text = text.replace(PRICE_OPTION, "--price-per-million")
    text = text.replace(SAME_DATASET, "the same data with")
    text = _TUNER.sub(lambda found: f"--backend {found[1]} --model {found[2] or found[3]}", text)
    text = _OPTION.sub(_option_flag, text)
    text = _SET_OPTION.sub(r"pass --option \1=\2\3", text)
    text = _RAISE_SETTING.sub(r"cut short: pass a larger --option \1=N", text)
    return _EXTRA.sub(r"\1 = \2 under [hyperparameters.extra] in a --config file", text)


def _option_flag(found: re.Match[str]) -> str:
    key, value = found.groups()
    value = {"True": "true", "False": "false"}.get(value, value.strip("'"))
    return f"--option {key}={value}"


# a predictor's options a command cannot give: a client object of one's own
_OBJECT_OPTIONS = ("client", "async_client")
_OPTIONS_LISTED = re.compile(r"(?<=its options are )[\w, ]+")
_PREDICTOR_CLASS = re.compile(r"\b[A-Z]\w*Predictor takes no option")  # Python's class

_PYTHON_ONLY = (
    " or pass api_key=... to the Tuner",
    " or pass account_id=...",
    NO_REGISTRY,
    OTHER_CACHE,
)
_COMMAND_WAYS = {  # what ask and eval take where Python takes a predictor option
    "ask": {
        LEAVE_THEM_OUT: "shorten the prompt",
        KEY_OPTION: "--option api_key=...",
        TEMPLATE_OPTION: '--option "chat_template=$(cat chat.jinja)"',
    },
    "eval": {
        LEAVE_THEM_OUT: "leave such examples out of the data file",
        KEY_OPTION: "options = { api_key = ... } under the model's [candidates.NAME] or "
        "[judge] table",
        TEMPLATE_OPTION: "options = { chat_template = ... } under the candidate's "
        "[candidates.NAME] table",
        OPTIONS_OF: "the options of candidate",
        JUDGE_ROOM: "options = { max_tokens = 1024 } in the [judge] table",
        RESPONSE_TEMPLATE_OPTION: "options = { response_template = {...} } under its "
        "[candidates.NAME] table",
        TOOLS_TEMPLATE_OPTION: "options = { chat_template = ... } under its [candidates.NAME] "
        "table",
        SERVED_WITH_TOOLS: 'backend = "openai-compatible" and its endpoint under [candidates.NAME]',
        TO_A_FUNCTION: "",
    },
}


def for_the_command(message: str, command: str) -> str:
    """An error less the ways out only Python has (the command reads keys from the env), its
    ``method='dpo'`` and ``format='gguf'`` said as the flags, ``--method dpo``, the Tuner's
    ``model=`` as ``--model``, an asked model's key and chat template as the command takes
    them, and a hyperparameter as its flag or config key."""
    for way in _PYTHON_ONLY:
        message = message.replace(way, "")
    for python_way, own_way in _COMMAND_WAYS.get(command, {}).items():
        message = message.replace(python_way, own_way)
    message = _OPTIONS_LISTED.sub(_options_a_command_gives, message)
    message = _PREDICTOR_CLASS.sub("the model takes no option", message)
    message = _JOB_MODEL.sub(_JOB_MODEL_WAYS.get(command, ""), message)
    message = _TRUST.sub(_TRUST_WAYS.get(command, "pass --option trust_remote_code=true"), message)
    message = in_cli_terms(message)
    message = message.replace("the Tuner's model=...", "--model")
    message = re.sub(r"(?:ft\.)?Hyperparameters\((\w+)=\.\.\.\)", _hyperparameter_flag, message)
    message = re.sub(
        r"'(\w+)' is ft\.Hyperparameters\(extra=\{'\1': \.\.\.\}\)",
        r"'\1' goes under [hyperparameters.extra] in a --config file",
        message,
    )
    return re.sub(r"\b(method|format)='([\w-]+)'", r"--\1 \2", message)


def _options_a_command_gives(found: re.Match[str]) -> str:
    return ", ".join(name for name in found[0].split(", ") if name not in _OBJECT_OPTIONS)


def _hyperparameter_flag(found: re.Match[str]) -> str:
    """A hyperparameter as the command takes it: its flag, or its key in a config file."""
    name = found.group(1)
    if name in HYPERPARAMETER_FLAGS:
        return f"the hyperparameter --{name.replace('_', '-')}"
    return f"the hyperparameter {name}, under [hyperparameters] in a --config file"
