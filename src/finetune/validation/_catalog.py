"""The versioned table of fine-tunable models: context limits, prices, default epochs."""

from __future__ import annotations

import datetime
import functools
import json
import os
import re
from collections.abc import Mapping
from importlib.resources import files
from typing import Any

from finetune._errors import StorageError, closest_name
from finetune._numbers import is_amount, is_whole
from finetune._words import counted

__all__ = [
    "PRICE_OPTION",
    "ModelInfo",
    "catalog",
    "default_epochs",
    "model_info",
    "model_meant",
    "n_evals",
    "nearest_model",
    "no_price_note",
    "old_prices_note",
    "pricing",
    "size_price",
    "targets",
    "unknown_model_message",
    "untrained_images_message",
    "validation_passes",
]

ENV_FILE = "FINETUNE_MODELS_FILE"
PRICE_OPTION = "estimate(price_per_million=...)"  # the CLI writes its own flag in its place


@functools.lru_cache(maxsize=2)
def _load(path: str | None) -> dict[str, Any]:
    if path:
        try:
            with open(path, encoding="utf-8") as handle:
                loaded: Any = json.load(handle)
        except (OSError, ValueError) as exc:
            raise StorageError(f"{ENV_FILE}={path}: cannot be read ({exc})") from None
        if not isinstance(loaded, dict):
            raise StorageError(f"{ENV_FILE}={path}: not a JSON object of targets")
        return _checked_table(loaded, f"{ENV_FILE}={path}")
    text = files("finetune").joinpath("data/models.json").read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def _checked_table(table: dict[str, Any], shown: str) -> dict[str, Any]:
    """A table of one's own, every target's section checked where it is read, so that a
    wrong field is a ``StorageError`` naming it (``together.models.X.price``), not a
    ``TypeError`` in an estimate far away."""
    _check_date(table.get("pricing_date"), f"{shown}: pricing_date")
    for target, section in table.items():
        if not _is_target(target):
            continue
        where = f"{shown}: {target}"
        if not isinstance(section, dict):
            raise StorageError(
                f"{where} is an object of models, default_epochs, pricing_date and source, "
                f"not {type(section).__name__} {section!r:.60}"
            )
        models = section.get("models", {})
        if not isinstance(models, dict):
            raise StorageError(
                f"{where}.models is an object of model names, each with its context and "
                f"price, not {type(models).__name__} {models!r:.60}"
            )
        for name, entry in models.items():
            _check_entry(target, name, entry, shown)
        rule = section.get("default_epochs", 1)
        if rule != "openai-heuristic" and not (is_whole(rule) and rule >= 1):
            raise StorageError(
                f"{where}.default_epochs is a whole number of 1 or more, or "
                f"'openai-heuristic', not {rule!r}"
            )
        _check_brackets(section.get("size_prices", []), f"{where}.size_prices")
        fee = section.get("minimum_fee")
        if fee is not None and not is_amount(fee):
            raise StorageError(f"{where}.minimum_fee is USD per job, not {fee!r}")
        _check_date(section.get("pricing_date"), f"{where}.pricing_date")
    return table


def _check_brackets(brackets: Any, where: str) -> None:
    """Size brackets as ``[[16, 0.48], [69, 1.5]]``: up to so many billion parameters, USD
    per 1M tokens, the bounds rising."""
    pairs = brackets if isinstance(brackets, list) else [brackets]
    good = all(
        isinstance(pair, list)
        and len(pair) == 2
        and is_amount(pair[0])
        and pair[0] > 0
        and is_amount(pair[1])
        for pair in pairs
    )
    bounds = [pair[0] for pair in pairs] if good else []
    if not good or bounds != sorted(set(bounds)):
        raise StorageError(
            f"{where} is a list of [billions of parameters up to, USD per 1M tokens] pairs, "
            f"their bounds rising, as [[16, 0.48], [69, 1.5]], not {brackets!r:.60}"
        )


def _is_target(key: str) -> bool:
    """A key of the table that names a target, not a comment (``_comment``) or the date of
    every target's prices."""
    return not key.startswith("_") and key != "pricing_date"


def targets() -> dict[str, dict[str, Any]]:
    """Each target's section of the table in use (its models, prices and rules)."""
    return {key: section for key, section in catalog().items() if _is_target(key)}


def _check_date(value: Any, where: str) -> None:
    if value is None:
        return
    try:
        datetime.date.fromisoformat(value)
    except (TypeError, ValueError):
        raise StorageError(f"{where} is a date as 2025-06-01, not {value!r}") from None


def catalog() -> dict[str, Any]:
    """The model table in use (``$FINETUNE_MODELS_FILE`` when set, else the bundled one)."""
    return _load(os.environ.get(ENV_FILE))


def models_hint(backend: str) -> str:
    """How to find the models ``backend`` trains, for an error that lacks one."""
    section = catalog().get(backend)
    if isinstance(section, dict) and section.get("models"):
        return f" (finetune models --backend {backend} lists the ones our table knows)"
    return ""


def pricing(target: str) -> tuple[str | None, str | None]:
    """When ``target``'s prices were read (its section's date, else the table's) and where."""
    section = catalog().get(target, {})
    return section.get("pricing_date") or catalog().get("pricing_date"), section.get("source")


class ModelInfo(dict[str, Any]):
    """A catalog entry: ``context``, ``price`` (USD per 1M tokens), ``low``/``high``, and
    ``images`` (true where the provider trains the model on images)."""


def model_info(target: str, model: str) -> ModelInfo | None:
    """The entry for ``model``, or for the model it names another way: a fine-tuned ``ft:``
    name of it, its alias (``gpt-4.1-mini`` for ``gpt-4.1-mini-2025-04-14``, Together's name
    without ``-Reference``), a dated version of it (``open-mistral-nemo-2407``) or of a
    ``-latest`` entry (``ministral-8b-2410``). Never a mere prefix: ``gpt-4.1`` is not
    ``gpt-4.1-mini``. ``None`` when unknown, or when the versions it could name disagree."""
    table = catalog().get(target, {}).get("models", {})
    name = model.removeprefix("ft:").split(":")[0]
    if name in table:
        return ModelInfo(table[name])
    known = [known for known in table if _names_the_same(name, known)]
    if known and all(table[other] == table[known[0]] for other in known):
        return ModelInfo(table[known[0]])
    return None


def nearest_model(target: str, model: str) -> str | None:
    """The model of ``target``'s table that ``model`` most likely misspells (``None``: none
    is near); a model is also matched by its short name (``gpt-4o-mini`` for
    ``gpt-4o-mini-2024-07-18``) and by its last part (``qwen3-8b`` for
    ``accounts/fireworks/models/qwen3-8b``, ``Qwen3-8B`` for ``Qwen/Qwen3-8B``), and a name
    with a router's prefix by the rest (LiteLLM's ``together_ai/Qwen/Qwen3-8B``). A model of
    another size is never meant (``Llama-3.2-3B-Instruct`` is no misspelt 70B model)."""
    spelled: dict[str, str] = {}
    size = _sizes(model)
    for known in catalog().get(target, {}).get("models", {}):
        if size and _sizes(known) and _sizes(known) != size:
            continue
        last = known.rsplit("/", 1)[-1]
        for spelling in (known, _SHORT.sub("", known), last, _SHORT.sub("", last)):
            spelled.setdefault(spelling, known)
    name = model.removeprefix("ft:").split(":")[0]
    for asked in (name, name.partition("/")[2]):  # then without a router's prefix
        close = closest_name(asked, list(spelled), cutoff=0.8)
        if close is not None:
            return spelled[close]
    return None


# a parameter count in a model's name (3B, 8b, 1.5B, Fireworks' 1p5b, a mixture's 8x7B),
# never a mixture's active one (A22B)
_SIZE = re.compile(r"(?<![\w.])((?:\d+x)?\d+(?:[.p]\d+)?)b(?![a-z])", re.IGNORECASE)


def _sizes(name: str) -> set[str]:
    return {size.lower().replace("p", ".") for size in _SIZE.findall(name)}


# a mixture of experts' active parameters (A22B, a3b) or experts (Llama 4's 16E): its
# bracket is not the name's size
_ACTIVE = re.compile(r"(?<![a-z0-9])(a\d+(?:\.\d+)?b|\d+e)(?![a-z])", re.IGNORECASE)


def size_price(target: str, model: str) -> tuple[float, str] | None:
    """The rate of ``target``'s size bracket (``size_prices``) for a model its table lacks,
    read from the parameter count in its name (``Llama-3.2-3B-Instruct``: up to 16B), and the
    note that says so; ``None`` for a name of no single size, a mixture's, or one past the
    last bracket."""
    sizes = _sizes(model)
    if len(sizes) != 1 or _ACTIVE.search(model):
        return None
    (named,) = sizes
    if "x" in named:  # a mixture of experts (8x7B): not a dense model's bracket
        return None
    size = float(named)
    for up_to, price in catalog().get(target, {}).get("size_prices", []):
        if size <= up_to:
            return price, (
                f"{model} is not in our table{model_meant(target, model)}: priced at "
                f"{target}'s rate for models of up to {up_to:g}B parameters ({price:g} USD "
                f"per 1M tokens), as its name says {size:g}B; if it is another size, pass "
                f"{PRICE_OPTION}"
            )
    return None


def model_meant(target: str, model: str) -> str:
    """`` (did you mean X?)`` with the model of ``target``'s table that ``model`` most likely
    misspells, or nothing."""
    nearest = nearest_model(target, model)
    return f" (did you mean {nearest}?)" if nearest else ""


def untrained_images_message(target: str, model: str, images: int) -> str:
    """What a ``model_without_images`` warning says: the model is not one the table marks as
    trained on images, and which ones it marks."""
    table = catalog().get(target, {}).get("models", {})
    marked = [name for name, entry in table.items() if entry.get("images")]
    which = f"it marks {', '.join(marked)}" if marked else "it marks none"
    return (
        f"{counted(images, 'message')} {'shows' if images == 1 else 'show'} images, and "
        f"{model} is not a model {target} trains on images in {_table()} ({which}): {target} "
        "may refuse the file or the job. "
        f'A model that is: mark it "images": true in a table of your own in ${ENV_FILE}.'
    )


def unknown_model_message(target: str, model: str, limit: int | None) -> str:
    """What an ``unknown_model`` warning says: the model likely meant, and what the table's
    silence leaves unchecked (the context limit, when none was given)."""
    nearest = nearest_model(target, model)
    meant = f": did you mean {nearest}?" if nearest else "."
    unchecked = "" if limit else " No example was checked against a context limit."
    dated = pricing(target)[0]
    return (
        f"{model} is not one of {target}'s fine-tunable models in {_table()}"
        f"{f' (of {dated})' if dated else ''}{meant}{unchecked} A model newer than the "
        f"table: add it, with its context, to a table of your own in ${ENV_FILE}."
    )


def unchecked_context_message(target: str, model: str) -> str:
    """What an ``unchecked_context`` finding (and an estimate's note) says: no context limit
    is known for ``model``, so no example was checked against one."""
    return (
        f"no context limit is known for {model} ({_table()} has none for it under {target}, "
        "and none was given): no example was checked against one. A fit checks them against "
        "the limit the provider reports, where it reports one (Together), before anything is "
        f"uploaded; or add the model, with its context, to a table of your own in ${ENV_FILE}"
    )


def _check_entry(target: str, name: str, entry: Any, shown: str) -> None:
    """An entry of the table whose figures are numbers, or a ``StorageError`` naming the
    table, the entry and the field (a price of ``"5"`` would fail in a sum, far away)."""
    where = f"{shown}: {target}.models.{name}"
    if not isinstance(entry, dict):
        raise StorageError(f"{where} is not an object of context, price, low and high")
    context = entry.get("context")
    if context is not None and (type(context) is not int or context < 1):
        raise StorageError(f"{where}.context is a whole number of tokens, not {context!r}")
    for field in ("price", "low", "high"):
        if entry.get(field) is not None and not is_amount(entry[field]):
            raise StorageError(f"{where}.{field} is USD per 1M tokens, not {entry[field]!r}")
    if entry.get("images") not in (None, True, False):
        raise StorageError(f"{where}.images is true or false, not {entry['images']!r}")


def _table() -> str:
    path = os.environ.get(ENV_FILE)
    return f"{ENV_FILE}={path}" if path else "the bundled model table"


def _names_the_same(name: str, known: str) -> bool:
    """One is the other plus a version, or ``name`` is a dated version of ``known``'s family."""
    for short, long in ((name, known), (known, name)):
        if long.startswith(short) and _VERSION.fullmatch(long.removeprefix(short)):
            return True
    family = known.removesuffix("-latest")
    return (
        family != known and name.startswith(family) and bool(_DATED.fullmatch(name[len(family) :]))
    )


_VERSION = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{4}|Reference)")
_DATED = re.compile(r"-\d{4}")
_SHORT = re.compile(rf"({_VERSION.pattern}|-latest)$")


def n_evals(extra: Mapping[str, Any], epochs: int) -> int:
    """How many times Together evaluates the validation set: ``extra["n_evals"]``, else one
    evaluation an epoch (Together's own default, 0, would never use the file)."""
    value: Any = extra.get("n_evals")
    return int(value) if is_whole(value) else epochs


def validation_passes(target: str, extra: Mapping[str, Any], epochs: int) -> int:
    """How many passes over the validation set the provider bills: Together's ``n_evals``;
    0 where our table bills training tokens only."""
    if catalog().get(target, {}).get("billed_validation") != "n_evals":
        return 0
    return n_evals(extra, epochs)


def bills_padding(target: str, extra: Mapping[str, Any]) -> bool:
    """Whether the provider bills every training example at ``max_seq_length`` tokens, filled
    or not: Together with ``extra={"packing": False}`` (packing is its default)."""
    rule = catalog().get(target, {}).get("billed_unpacked")
    return rule == "max_seq_length" and extra.get("packing") is False


def default_epochs(target: str, examples: int) -> int:
    """The provider's documented rule for epochs='auto'.

    OpenAI: 3 epochs, raised so that epochs x examples >= 100 (at most 25 epochs), lowered so
    that it stays <= 25,000 (at least 1 epoch).
    """
    rule = catalog().get(target, {}).get("default_epochs", 1)
    if rule != "openai-heuristic":
        return int(rule)
    epochs = 3
    if examples and examples * epochs < 100:
        epochs = min(25, 100 // examples)
    elif examples * epochs > 25_000:
        epochs = max(1, 25_000 // examples)
    return epochs


def old_prices_note(target: str, dated: str | None, source: str | None) -> list[str]:
    """A note when the table's prices are over 180 days old (in UTC days, as the providers'
    closing dates are counted): prices change."""
    from finetune.lifecycle import today

    try:
        age = (today() - datetime.date.fromisoformat(dated or "")).days
    except ValueError:
        return []
    if age <= _PRICES_KEEP_DAYS:
        return []
    where = source.split(" (")[0] if source else "the provider's price page"
    return [
        f"our {target} prices date from {dated}, {age} days ago, and may have changed: check "
        f"{where} before you spend (or pass {PRICE_OPTION})"
    ]


_PRICES_KEEP_DAYS = 180


def no_price_note(target: str, model: str, hosted: bool) -> str:
    """Why an estimate has no cost: local training, or a model our table does not price (and
    the model of the table it may misspell)."""
    if not hosted:
        return (
            f"trains on your own hardware: no provider bill ({PRICE_OPTION} "
            "prices the billed tokens at a rate of your own)"
        )
    return (
        f"no published training price for {model} in our table{model_meant(target, model)}: pass "
        f"{PRICE_OPTION}, or a table of your own in ${ENV_FILE}"
    )
