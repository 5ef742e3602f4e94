"""The argparse value types of the ``finetune`` command, and its parser: a bad value is one
line naming the flag, with exit code 2."""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from finetune._errors import closest_name
from finetune._json_text import json_from_text
from finetune._synonyms import HYPERPARAMETER_SYNONYMS
from finetune.backends._credentials import redact

__all__ = [
    "Parser",
    "key_names",
    "name_flag",
    "named",
    "non_negative_int",
    "option_setting",
    "or_auto",
    "parse_command_line",
    "positive_float",
    "positive_int",
    "reading_flags",
    "whole_number",
]


def whole_number(least: int) -> Callable[[str], int]:
    """An argparse type: a whole number of ``least`` or more."""

    def whole(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < least:
            raise argparse.ArgumentTypeError(f"must be at least {least}, not {value}")
        return value

    return whole


positive_int = whole_number(1)
non_negative_int = whole_number(0)


def option_setting(text: str) -> tuple[str, Any]:
    """An argparse type: ``KEY=VALUE``, a backend option; the value read as JSON where it is
    (``2048``, ``true``, ``0.1``, ``{"r": 8}``), else as the text it is (``cuda:0``)."""
    key, equals, value = text.partition("=")
    if not equals or not key.strip().isidentifier():
        raise argparse.ArgumentTypeError(
            f"is KEY=VALUE, a backend option such as max_length=2048, not {text!r}"
        )
    try:
        return key.strip(), json_from_text(value)
    except ValueError:
        return key.strip(), value


def or_auto(kind: Callable[[str], Any]) -> Callable[[str], Any]:
    """An argparse type that also takes ``auto``: the backend's own rule, named."""

    def value(text: str) -> Any:
        return "auto" if text.strip().lower() == "auto" else kind(text)

    return value


def name_flag(
    parser: argparse.ArgumentParser, flag: str, text: str, required: bool = False
) -> None:
    """A flag that names a backend or a model: never empty."""
    parser.add_argument(flag, required=required, type=named, help=text)


def named(text: str) -> str:
    """An argparse type: a name, never empty or blank (an unset shell variable, say)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("is empty: give a name")
    return text


def key_names(text: str) -> dict[str, str]:
    """An argparse type: key names, comma-separated (``messages,tools``), each perhaps with
    its new name (``question=prompt``), as a mapping of each key to its name."""
    from finetune._config_file import named_columns

    named = named_columns(text)
    if named is None:
        raise argparse.ArgumentTypeError(
            f"{text!r}: give key names, as messages,tools (question=prompt renames one)"
        )
    return named


def positive_float(text: str) -> float:
    """An argparse type: a finite number above 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"must be a finite number above 0, not {text}")
    return value


def reading_flags(parser: argparse.ArgumentParser) -> None:
    """``--columns``, ``--field``, ``--encoding`` and ``--deduplicate``: how a command reads
    its data files."""
    parser.add_argument(
        "--columns",
        type=key_names,
        help="keep only these keys of each row, comma-separated (messages,tools): a table's "
        "extra columns, such as id or source, left out; question=user renames one as it keeps "
        "it",
    )
    parser.add_argument(
        "--field",
        help="a JSON file whose object holds several lists: the key of the one that holds "
        "the examples (train), as datasets' field= takes it",
    )
    parser.add_argument(
        "--encoding",
        help="a CSV file's encoding (cp1252: Excel's 'CSV (Comma delimited)' on Windows); "
        "default UTF-8",
    )
    parser.add_argument(
        "--deduplicate",
        action="store_true",
        default=None,
        help="leave out the repeats of an example (validation's duplicate_example), the "
        "first of each kept, in the training and the validation data alike",
    )


class Parser(argparse.ArgumentParser):
    """Usage mistakes are one line on stderr and exit code 2; a command of another name is
    told the one meant."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {self.prog}: {_command_meant(message)} (see {self.prog} --help)\n")


# the command's flags as our Python API and other tools name them (by the name with its
# dashes as underscores), for the error that meets one
_FLAG_SYNONYMS = {
    **{name: meant.replace("_", "-") for name, meant in HYPERPARAMETER_SYNONYMS.items()},
    "target": "backend",
    "provider": "backend",
    "base_model": "model",
    "model_name": "model",
    "model_id": "model",
    "validation_file": "validation",
    "eval_file": "validation",
}


# the commands as other tools (and our Python API) name them
_COMMAND_SYNONYMS = {
    "evaluate": "eval",
    "evaluation": "eval",
    "fit": "train",
    "finetune": "train",
    "fine-tune": "train",
    "check": "validate",
    "cost": "estimate",
    "price": "estimate",
    "list": "jobs",
    "logs": "events",
    "stop": "cancel",
}


def parse_command_line(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> Any:
    """``parser.parse_args(argv)``, but a flag the command does not take is told the flag
    meant (``--lr``: ``--learning-rate``); each command's parser is its ``command_parser``."""
    args, extras = parser.parse_known_args(argv)
    if extras:
        command = getattr(args, "command_parser", parser)
        said = " ".join(_unshown(extras))
        meant = _flag_meant(extras, command) or _backend_flag_meant(extras, command)
        command.error(f"unrecognized arguments: {said}{meant}")
    return args


_SECRET_FLAG = re.compile(r"--[\w-]*(key|token|secret|password)[\w-]*", re.IGNORECASE)
_KEYS_ARE_READ = (
    " (the command reads each backend's key from the environment: OPENAI_API_KEY, "
    "TOGETHER_API_KEY, FIREWORKS_API_KEY; a Python Tuner takes api_key=...)"
)


def _unshown(extras: list[str]) -> list[str]:
    """``extras`` with the value of a flag named as a secret (``--api-key sk-...``,
    ``--token=...``) and anything key-like masked: a usage error never echoes a key."""
    shown = []
    for at, extra in enumerate(extras):
        name, equals, _ = extra.partition("=")
        if _SECRET_FLAG.fullmatch(name) and equals:
            extra = f"{name}=***"
        elif at and _SECRET_FLAG.fullmatch(extras[at - 1]) and not extra.startswith("-"):
            extra = "***"
        shown.append(redact(extra))
    return shown


def _flag_meant(extras: list[str], command: argparse.ArgumentParser) -> str:
    """`` (did you mean --x?)`` for the first unknown flag of ``extras``, or nothing."""
    flag = next((extra for extra in extras if extra.startswith("--")), None)
    if flag is None:
        return ""
    taken = [
        option[2:].replace("-", "_")
        for action in command._actions  # argparse keeps no public list of a parser's flags
        for option in action.option_strings
        if option.startswith("--") and option != "--help"
    ]
    if _SECRET_FLAG.fullmatch(flag.partition("=")[0]):
        return _KEYS_ARE_READ
    asked = flag[2:].partition("=")[0].replace("-", "_").lower()
    synonyms = {name: meant.replace("-", "_") for name, meant in _FLAG_SYNONYMS.items()}
    meant = closest_name(asked, taken, synonyms=synonyms)
    return f" (did you mean --{meant.replace('_', '-')}?)" if meant else ""


def _backend_flag_meant(extras: list[str], command: argparse.ArgumentParser) -> str:
    """`` (did you mean --backend together?)`` for a backend's name given without its flag
    (``finetune models together``) to a command that takes one, or nothing."""
    from finetune.backends import available_backends

    named = next((extra for extra in extras if extra in available_backends()), None)
    takes = any("--backend" in action.option_strings for action in command._actions)
    return f" (did you mean --backend {named}?)" if named and takes else ""


def _command_meant(message: str) -> str:
    """argparse's "invalid choice: 'evaluate' (choose from ...)" with the command meant."""
    found = re.match(r"argument command: invalid choice: '([^']*)' \(choose from (.*)\)$", message)
    if found is None:
        return message
    listed = found.group(2)  # quoted by older Pythons, bare by newer ones
    choices = re.findall(r"'([^']*)'", listed) or [choice.strip() for choice in listed.split(",")]
    meant = closest_name(found.group(1), choices, synonyms=_COMMAND_SYNONYMS)
    if meant is None:
        return message
    cut = found.end(1) + 1
    return f"{message[:cut]} (did you mean {meant}?){message[cut:]}"
