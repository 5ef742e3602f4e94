"""Config files of the ``finetune`` command (``train --config``, ``eval``): read, and checked
for keys they do not take."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from finetune._errors import FinetuneError, MissingDependency, closest_name

__all__ = ["config_path", "load_config", "refuse_unknown_keys"]


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


def config_path(source: str, key: str, value: Any) -> str:
    """A file named in a config file, as given: paths are read from the folder ``finetune``
    runs in. One that is not there is a one-line error naming the key, and the file of that
    name beside the config when there is one (a path written relative to the config)."""
    if not isinstance(value, str) or not value:
        raise FinetuneError(f'{source}: {key} is a file path, as "data.jsonl", not {value!r}')
    path = Path(value)
    if path.exists():
        return value
    folder = Path(source).parent
    beside = folder / path
    hint = ""
    if not path.is_absolute() and folder != Path() and beside.exists():
        hint = f"; {beside} exists: write that path, or run finetune in {folder}"
    raise FinetuneError(
        f"{source}: {key} = {value!r}: no such file in {Path.cwd()}, the folder the paths "
        f"of a config file are read from{hint}"
    )
