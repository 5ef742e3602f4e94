"""A config file's settings: its text read, then parsed as TOML (or YAML), each failure a
one-line error naming the file."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from finetune._errors import FinetuneError, MissingDependency

__all__ = ["load_config"]

_TOO_DEEP = "nested too deeply for Python's parser"


def load_config(path: str) -> dict[str, Any]:
    """The settings of a TOML file (or YAML, with pyyaml installed) as a dict; a file that
    does not parse, or holds no table, is a one-line ``FinetuneError`` naming it."""
    text = _config_text(path)
    if path.endswith((".yaml", ".yml")):
        try:
            import yaml
        except ImportError as exc:
            raise MissingDependency("pyyaml", purpose="for YAML config files") from exc
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise FinetuneError(f"{path}: not valid YAML: {exc}") from None
        except RecursionError:
            raise FinetuneError(f"{path}: not valid YAML: {_TOO_DEEP}") from None
    else:
        if sys.version_info >= (3, 11):
            import tomllib
        else:  # pragma: no cover - Python 3.10
            import tomli as tomllib
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise FinetuneError(f"{path}: not valid TOML: {exc}") from None
        except RecursionError:  # tomllib, and tomli run as Python, nest until the stack runs out
            raise FinetuneError(f"{path}: not valid TOML: {_TOO_DEEP}") from None
    if not isinstance(data, dict):
        raise FinetuneError(f"{path}: the config file must hold a table of settings")
    return data


def _config_text(path: str) -> str:
    """A config file's text, or a one-line ``FinetuneError`` naming the file and what is
    wrong with it (no such file, a folder, not UTF-8 text)."""
    file = Path(path).expanduser()
    if file.is_dir():
        raise FinetuneError(f"{path}: a folder, not a config file")
    try:
        return file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FinetuneError(f"{path}: no such file; check the path") from None
    except UnicodeDecodeError as exc:
        raise FinetuneError(
            f"{path}: not UTF-8 text (byte {exc.start}): save the config file as UTF-8"
        ) from None
    except OSError as exc:
        raise FinetuneError(f"{path}: cannot be read ({exc.strerror or exc})") from None
