"""``finetune models``: the base models our table knows for each backend, with what one
example may hold and what training costs, before anything is spent; for ``hf``, the models
that train on this machine without a network."""

from __future__ import annotations

import argparse
import dataclasses
import json
from typing import Any

import finetune as ft
from finetune._words import size
from finetune.backends import backend_class
from finetune.lifecycle import lifecycle, status_text
from finetune.validation._catalog import PRICE_OPTION, old_prices_note, pricing, targets

__all__ = ["cmd_models"]

_LOCAL_NOTE = (
    "any Hugging Face Hub id, model folder or .gguf file; trains on your own hardware, with "
    "no provider bill (finetune demo trains SmolLM2-135M-Instruct)"
)


def cmd_models(args: argparse.Namespace) -> int:
    """Print the table, for every backend or for ``--backend``; ``--json`` as JSON."""
    sections = _sections(args.backend)
    if args.json:
        print(json.dumps(sections, indent=2))
        return 0
    for number, (backend, section) in enumerate(sections.items()):
        if number:
            print()
        for line in _described(backend, section):
            print(line)
    return 0


def _sections(backend: str | None) -> dict[str, dict[str, Any]]:
    table = targets()
    if backend is None:
        return {name: _section(name, section) for name, section in table.items()}
    if backend not in table:
        backend_class(backend)  # a name that is no backend: the closest ones
        raise ft.FinetuneError(
            f"our table knows no models of {backend!r}: it trains the models its provider "
            "names (see the provider's documentation)"
        )
    return {backend: _section(backend, table[backend])}


def _section(backend: str, section: dict[str, Any]) -> dict[str, Any]:
    models = section.get("models", {})
    dated, source = pricing(backend) if models else (None, None)  # no prices, no date of them
    local = {"local": _local_models()} if backend == "hf" else {}
    return {
        "status": status_text(backend),
        "pricing_date": dated,
        "source": source,
        "minimum_fee": section.get("minimum_fee"),
        "size_prices": section.get("size_prices", []),
        "models": {
            name: {
                **{key: entry.get(key) for key in ("context", "price", "low", "high")},
                "images": bool(entry.get("images")),
            }
            for name, entry in models.items()
        },
        **local,
    }


def _local_models() -> list[dict[str, Any]]:
    from finetune.backends.hf._local_models import local_models

    return [dataclasses.asdict(model) for model in local_models()]


def _described(backend: str, section: dict[str, Any]) -> list[str]:
    status = section["status"]
    lines = [backend if status in ("-", "open") else f"{backend} ({status})"]
    row = lifecycle(backend)
    if row is not None and row.state != "open":
        lines.append(f"  {row.summary} ({row.source})")
    if backend == "hf":
        return [*lines, f"  {_LOCAL_NOTE}", *_offline_lines(section["local"])]
    if not section["models"]:
        return [*lines, "  no models in our table"]
    width = max(len("model"), *(len(name) for name in section["models"]))
    lines.append(f"  {'model':{width}}  {'context':>9}  USD per 1M trained tokens")
    for name, entry in section["models"].items():
        context = f"{entry['context']:,}" if entry.get("context") else "?"
        images = "  (trains on images too)" if entry["images"] else ""
        lines.append(f"  {name:{width}}  {context:>9}  {_price(entry)}{images}")
    if section["size_prices"]:
        brackets = ", ".join(f"up to {up:g}B {price:.2f}" for up, price in section["size_prices"])
        lines.append(f"  other models, by the size their name gives: {brackets}")
    dated, source = section["pricing_date"], section["source"]
    if dated or source:
        lines.append(f"  prices of {dated or 'an unknown date'}: {source or 'no source given'}")
    if section["minimum_fee"]:
        lines.append(f"  plus a minimum fee of {section['minimum_fee']:.2f} USD per job")
    notes = old_prices_note(backend, dated, source)
    flag = "--price-per-million to finetune estimate"
    return lines + [f"  note: {note.replace(PRICE_OPTION, flag)}" for note in notes]


def _offline_lines(models: list[dict[str, Any]]) -> list[str]:
    """The models that train here without a network, each with what to pass as --model."""
    if not models:
        from finetune.backends.hf._local_models import install_hint

        return [f"  none here trains offline yet: {install_hint()}"]
    width = max(len(model["model"]) for model in models)
    lines = [f"  here, offline ({len(models)}; pass the first column as --model or model=):"]
    for model in models:
        lines.append(f"  {model['model']:{width}}  {size(model['bytes']):>7}  {model['note']}")
    return lines


def _price(entry: dict[str, Any]) -> str:
    if entry.get("price") is not None:
        return f"{entry['price']:.2f}"
    if entry.get("low") is not None and entry.get("high") is not None:
        return f"{entry['low']:.2f} to {entry['high']:.2f} (a range: estimates give both ends)"
    return "not published"
