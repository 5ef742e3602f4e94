"""Config files of the ``finetune`` command (``train --config``, ``eval``): read, and checked
for keys they do not take."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from finetune._errors import FinetuneError, MissingDependency, closest_name

__all__ = ["load_config", "refuse_unknown_keys"]


def load_config(path: str) -> dict[str, Any]:
    """The settings of a TOML file (or YAML, with pyyaml installed) as a dict; a file that
    does not parse, or holds no table, is a one-line ``FinetuneError`` naming it."""
    text = Path(path).read_text(encoding="utf-8")
    if path.endswith((".yaml", ".yml")):
        try:
            import yaml
        except ImportError as exc:
            raise MissingDependency("pyyaml", purpose="for YAML config files") from exc
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise FinetuneError(f"{path}: not valid YAML: {exc}") from None
    else:
        if sys.version_info >= (3, 11):
            import tomllib
        else:  # pragma: no cover - Python 3.10
            import tomli as tomllib
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise FinetuneError(f"{path}: not valid TOML: {exc}") from None
    if not isinstance(data, dict):
        raise FinetuneError(f"{path}: the config file must hold a table of settings")
    return data


def refuse_unknown_keys(
    source: str, table: dict[str, Any], known: Iterable[str], where: str = ""
) -> None:
    """Refuse the keys of ``table`` that are not in ``known``, each with the closest known key:
    a mistyped key must not fall back silently to a default, and spend money on it."""
    allowed = sorted(known)
    unknown = sorted(set(table) - set(allowed))
    if not unknown:
        return
    named = ", ".join(_with_guess(key, allowed) for key in unknown)
    place = f" in {where}" if where else ""
    raise FinetuneError(
        f"{source}: unknown key{'s' if len(unknown) > 1 else ''} {named}{place}; "
        f"{where or 'the file'} takes {', '.join(allowed)}"
    )


def _with_guess(key: str, allowed: list[str]) -> str:
    close = closest_name(key, allowed)
    return f"{key!r} (did you mean {close!r}?)" if close else repr(key)
