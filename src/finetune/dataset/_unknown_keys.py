"""Why a key we do not know is refused: the key most likely meant, the keys its owner takes,
and the cure; for a key of another tool's shape, what "remove it" would lose."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from typing import Any

from finetune._errors import closest_name
from finetune.dataset._community import ROLE_SYNONYMS
from finetune.dataset._functions import LEGACY_FUNCTIONS
from finetune.dataset._role_columns import renames_cure

__all__ = ["columns_kept", "prompt_named_otherwise", "unknown_key_message"]


_UNPAIRED_PREFERENCE = (
    "unknown key 'label' (true or false): TRL's unpaired preference data (for KTO) marks each "
    "completion good (true) or bad (false) so; finetune trains SFT and DPO, "
    "not KTO, and removing the key would train on the bad completions too: for SFT keep the "
    "rows labelled true and drop the column (ds.filter(lambda row: row['label'])"
    ".remove_columns('label')); for DPO, pair a good and a bad completion of one prompt as "
    "chosen and rejected"
)


def _other_shape_key(
    key: str,
    known: Collection[str],
    owner: str,
    *,
    top_level: bool,
    value: Any,
    kept: Sequence[str],
    columns: Collection[str],
) -> str | None:
    """Why a key of another tool's shape, which we read only whole, is refused here, where
    "remove it" would lose what it holds (KTO's labels, a second system prompt, a legacy
    function call); ``None`` for any other key."""
    if top_level and key == "label" and isinstance(value, bool) and "preference" not in owner:
        return _UNPAIRED_PREFERENCE
    if top_level and key == "system" and "messages" in known:
        return (
            "unknown key 'system': a system prompt beside the messages is read as their first "
            "turn, unless they begin with a system turn of their own, as these do: keep one"
        )
    if top_level and key == "system" and "prompt" in columns and "preference" in owner:
        return (
            "unknown key 'system': a system prompt beside a pair's prompt is read as its first "
            "turn, unless the prompt begins with a system turn of its own, as this one does: "
            "keep one"
        )
    if key == "function_call" and "tool_calls" in known:
        return f"unknown key 'function_call': {LEGACY_FUNCTIONS}"
    if top_level and "preference" in owner and "prompt" not in columns:
        named = prompt_named_otherwise(columns)
        if named and (key in _PROMPT_NAMES or key == "system"):
            return f"unknown key {key!r} holds a value: {named}"
    role = _role_column_meant(key, kept) if top_level and "messages" in known else None
    if role is not None:
        renames = {**{column: column for column in kept}, key: role}
        return (
            f"unknown key {key!r} holds a value (did you mean {role!r}?): a table's columns "
            f"named {', '.join(_ROLE_COLUMNS)} are read as the row's turns; rename the column "
            f"to {role!r} ({renames_cure(renames)})"
        )
    return None


_ROLE_COLUMNS = ("system", "user", "assistant")  # as _role_columns reads them
_PROMPT_NAMES = frozenset({"question", "instruction", "query"})


def prompt_named_otherwise(columns: Iterable[str]) -> str | None:
    """How to read a pair's question held under another tool's name (``question``, as in
    Intel/orca_dpo_pairs) as its ``prompt``; ``None`` for a row with none. ``columns``: the
    row's keys."""
    columns = list(columns)
    key = next((key for key in columns if key in _PROMPT_NAMES), None)
    if key is None:
        return None
    system = {"system": "system"} if "system" in columns else {}
    renames = {**system, key: "prompt", "chosen": "chosen", "rejected": "rejected"}
    cure = renames_cure(renames)
    return f"a preference example's question is its 'prompt'; rename it ({cure})"


def _role_column_meant(key: str, kept: Sequence[str]) -> str | None:
    """The role column a key misspells (``Asistant``, ``usr``), not one it only begins with
    (``user_id``, ``assistant_name``); or, in a row of role columns, the one another tool's
    name for it means (``human``, ``bot``) where the row has none of that role yet."""
    role = closest_name(key.lower(), list(_ROLE_COLUMNS), cutoff=0.8)
    if role is not None and abs(len(role) - len(key)) <= 2:
        return role
    named = ROLE_SYNONYMS.get(key.lower())
    roles = {column.lower() for column in kept} & set(_ROLE_COLUMNS)
    return named if roles and named in _ROLE_COLUMNS and named not in roles else None


def columns_kept(
    columns: Iterable[str],
    checked: Collection[str],
    known: Collection[str],
    ignored: Collection[str],
) -> list[str]:
    """The columns of a row as read (``conversations`` of a ShareGPT row) less the keys that
    its example as checked holds but does not take (``source``): what ``--columns`` keeps."""
    extras = {key for key in checked if key not in known and key not in ignored}
    return [key for key in columns if key not in extras and key not in ignored]


def unknown_key_message(
    key: str,
    known: Collection[str] = (),
    owner: str = "",
    *,
    top_level: bool = False,
    value: Any = None,
    kept: Sequence[str] = (),
    columns: Collection[str] = (),
) -> str:
    """Why a key holding ``value`` is refused, with the key it most likely meant or else the
    keys ``owner`` takes, and the cure (a table's extra columns, at the top; KTO's labels).
    ``kept``, the row's other columns (``columns_kept``): a key beside the one it resembles
    (``prompt_id`` beside ``prompt``) is an extra column, not a misspelling, and the cure
    names the columns to keep. ``columns``: all of the row's keys."""
    known_shape = _other_shape_key(
        key, known, owner, top_level=top_level, value=value, kept=kept, columns=columns
    )
    if known_shape is not None:
        return known_shape
    named = sorted(set(known) - {"kind"})
    close = closest_name(key, named)
    message = f"unknown key {key!r} holds a value"
    if close in kept:  # an extra column beside the key it resembles (prompt_id, prompt)
        message += "; remove it"
    elif close is not None:
        message += f" (did you mean {close!r}?); remove it or rename it to a known one"
    else:
        takes = f"; {owner} takes {', '.join(named)}" if named else ""
        message += f"{takes}; remove it or rename it to a known one"
    if top_level:
        how = f"ds.select_columns({list(kept)!r}), or --columns {','.join(kept)}" if kept else ""
        message += (
            " (a table's extra columns: keep only those you train on, "
            f"{how or 'ds.select_columns([...]), or --columns'} on the command line)"
        )
    return message
