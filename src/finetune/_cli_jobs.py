"""The job a ``train``, ``estimate`` or ``validate`` command describes: its ``--config``
file's settings with the flags over them, checked before anything is read or sent."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any

from pydantic import ValidationError

import finetune as ft
from finetune._cli_log import print_json
from finetune._cli_terms import HYPERPARAMETER_FLAGS, in_cli_terms
from finetune._cli_watch import jobs_dir_refused
from finetune._config_file import (
    TRAIN_KEYS,
    check_reading,
    columns_setting,
    config_path,
    datasets_of,
    listed,
    train_config,
)
from finetune._fit import hyperparameters_problem, over_budget
from finetune._numbers import is_amount
from finetune._tuner_inputs import check_method_fits, first_kind
from finetune._words import counted
from finetune.backends import backend_class
from finetune.backends._plugins import option_names
from finetune.backends.hosted import HostedBackend

__all__ = ["JobInputs", "estimate_command", "job_inputs", "job_settings"]


def job_settings(args: argparse.Namespace, command: str) -> dict[str, Any]:
    """The job ``train`` would start (``estimate`` prices it, ``validate`` checks it): the
    ``--config`` file's settings, the flags over them, checked before anything is read or
    sent."""
    settings: dict[str, Any] = train_config(args.config) if args.config else {}
    for name in TRAIN_KEYS:  # the flags override the file
        value = getattr(args, name, None)
        if value not in (None, []):  # argparse gives no FILE as []
            settings[name] = value
    if flagged := getattr(args, "option", None):  # each --option over the file's [options]
        settings["options"] = {**(settings.get("options") or {}), **dict(flagged)}
    hyper = dict(settings.get("hyperparameters") or {})
    for name in HYPERPARAMETER_FLAGS:
        value = getattr(args, name, None)
        if value is not None:
            hyper[name] = value
    try:
        settings["hyperparameters"] = ft.Hyperparameters.model_validate(hyper)
    except ValidationError as error:  # the flags were checked as they were read: the file's
        problem, _ = hyperparameters_problem(error)
        where = args.config or f"finetune {command}"
        raise ft.FinetuneError(f"{where}: [hyperparameters] {problem}") from None
    _refuse_a_backend_as_a_file(args)
    for required, given in (("backend", "--backend"), ("model", "--model"), ("file", "FILE")):
        if not settings.get(required):
            from finetune.validation._catalog import models_hint  # the table only when asked

            hint = models_hint(settings["backend"]) if required == "model" else ""
            raise ft.FinetuneError(
                f"{command} needs {required!r}: give {given}, or {required} in a --config "
                f"file{hint}"
            )
        if required == "backend":  # a misspelt one is named before the settings it lacks
            backend_class(settings["backend"])
            _refuse_backend_settings(settings, args, command)
    for switch in ("skip_validation", "deduplicate", "allow_closed_provider"):
        if not isinstance(settings.get(switch, False), bool):
            where = args.config or command
            raise ft.FinetuneError(f"{where}: {switch} is true or false, not {settings[switch]!r}")
    budget = settings.get("max_cost")
    if budget is not None and not is_amount(budget):
        where = args.config or command
        raise ft.FinetuneError(f"{where}: max_cost is USD, a number of 0 or more, not {budget!r}")
    for name in ("file", "validation"):
        if args.config and getattr(args, name, None) in (None, []) and name in settings:
            for path in listed(settings[name]):
                config_path(args.config, name, path)
    return settings


def _refuse_backend_settings(
    settings: dict[str, Any], args: argparse.Namespace, command: str
) -> None:
    """An option that sets up the backend itself (Fireworks' ``account_id``, hf's
    ``jobs_dir``, a key), given as a job's, named with the variable the command reads it
    from (the backend said only that a job takes no such option)."""
    backend = settings["backend"]
    factory = backend_class(backend)
    own = [name for name in settings.get("options") or {} if name in option_names(factory)]
    if not own:
        return
    name = own[0]
    flagged = dict(getattr(args, "option", None) or ())
    where = f"finetune {command} --option" if name in flagged else f"{args.config}: [options]"
    variable = _read_from_environment(factory).get(name)
    if name == "jobs_dir" and command == "train":
        how = f"pass --jobs-dir DIR, or set ${variable}"
    elif variable:
        how = f"the command reads it from ${variable}"
    else:
        how = f"only a Python Tuner takes it, ft.Tuner({backend!r}, {name}=...)"
    raise ft.FinetuneError(
        f"{where}: {name!r} sets up the {backend} backend itself, not a job: {how}"
    )


def _read_from_environment(factory: Any) -> dict[str, str]:
    """The variable each setting of a backend's own is read from (``account_id``:
    ``FIREWORKS_ACCOUNT_ID``), a hosted backend's key and API root among them."""
    # BaseBackend's attribute, which a sync backend (hf, a plugin's) may set too
    variables = dict(getattr(factory, "environment", None) or {})
    if isinstance(factory, type) and issubclass(factory, HostedBackend):
        root = factory.url_variable
        variables |= {"api_key": factory.key_variable, "base_url": root, factory.url_option: root}
    return variables


def _refuse_a_backend_as_a_file(args: argparse.Namespace) -> None:
    """``finetune train data.jsonl together``: a FILE that is a backend's name and no file
    here is told the flag it lacks, not that the backend is missing or the file not found."""
    from finetune.backends import available_backends

    for path in getattr(args, "file", None) or []:
        if path in available_backends() and not Path(path).exists():
            raise ft.FinetuneError(
                f"{path!r} is a backend, not a data file here: give it as --backend {path}"
            )


@dataclasses.dataclass(frozen=True)
class JobInputs:
    """What the job of ``train``, ``estimate`` or ``validate`` is made of."""

    tuner: ft.Tuner
    train: ft.Dataset
    validation: ft.Dataset | None
    settings: dict[str, Any]


def job_inputs(args: argparse.Namespace, command: str) -> JobInputs:
    """The Tuner and the data of the job a command describes, its settings checked first."""
    settings = job_settings(args, command)
    own = _past_closing(args, settings) | _jobs_folder(args, settings["backend"])
    tuner = ft.Tuner(settings["backend"], model=settings["model"], **own)
    _refuse_a_method_not_trained(args, settings, tuner)
    validation = settings.get("validation")
    source = args.config or f"finetune {command}"
    columns = columns_setting(source, settings.get("columns"))
    files, checked = listed(settings["file"]), listed(validation) if validation else []
    reading = {"field": settings.get("field"), "encoding": settings.get("encoding")}
    train = datasets_of(files, columns, **reading)  # a missing file is told first
    held_out = datasets_of(checked, columns, **reading) if validation else None
    check_reading(source, files + checked, **reading)
    if settings.get("method") is not None:  # validate and estimate refuse what train would
        check_method_fits(settings["method"], first_kind(train))
    if settings.get("deduplicate"):
        train = _without_repeats(train, "training")
        if held_out is not None:
            held_out = _without_repeats(held_out, "validation")
    return JobInputs(tuner, train, held_out, settings)


def _past_closing(args: argparse.Namespace, settings: dict[str, Any]) -> dict[str, bool]:
    """The backend's ``allow_closed_provider``, where ``--allow-closed-provider`` (or the
    config's key) asks to create jobs past the provider's closing date; a backend with no
    closing date to go past is told so, rather than the flag doing nothing."""
    if not settings.get("allow_closed_provider"):
        return {}
    from finetune.lifecycle import LIFECYCLE, status_text

    backend = settings["backend"]
    if "allow_closed_provider" not in option_names(backend_class(backend)):
        where = args.config or "--allow-closed-provider"
        closing = [
            f"{name} ({status_text(name)})" for name, r in LIFECYCLE.items() if r.state != "open"
        ]
        raise ft.FinetuneError(
            f"{where}: allow_closed_provider is for a provider with a closing date "
            f"({', '.join(closing)}); the {backend} backend takes no such setting"
        )
    return {"allow_closed_provider": True}


def _jobs_folder(args: argparse.Namespace, backend: str) -> dict[str, Any]:
    """``--jobs-dir``: the folder a local backend makes its jobs' folders in (hf's
    ``jobs_dir``); a backend without one is told so, rather than the flag doing nothing."""
    folder = getattr(args, "jobs_dir", None)
    if folder is None:
        return {}
    if "jobs_dir" not in option_names(backend_class(backend)):
        raise jobs_dir_refused(backend)
    return {"jobs_dir": folder}


def _without_repeats(data: ft.Dataset, role: str) -> ft.Dataset:
    """``data.deduplicated()``, with a line on stderr counting the repeats left out."""
    unique = data.deduplicated()
    repeats = len(data) - len(unique)
    if repeats:
        left_out = counted(repeats, "repeated example")
        print(f"--deduplicate: {left_out} of the {role} data left out", file=sys.stderr)
    return unique


def _refuse_a_method_not_trained(
    args: argparse.Namespace, settings: dict[str, Any], tuner: ft.Tuner
) -> None:
    """A ``method`` given that the backend does not train, named where it was given (its
    flag, or the config file's key), by ``validate`` and ``estimate`` too: the job they
    check would be refused."""
    method, trained = settings.get("method"), sorted(tuner.capabilities.methods)
    if method is None or method in trained:
        return
    flagged = getattr(args, "method", None)
    given = f"--method {method}" if flagged else f'method = "{method}" ({args.config})'
    raise ft.UnsupportedFeature(
        f"backend {tuner.backend_name!r} does not train with {given}; it supports {trained}"
    )


def estimate_command(args: argparse.Namespace) -> int:
    """``finetune estimate``: the figures of the job ``train`` would start, then exit 1 when
    they are above ``--max-cost`` (or the config's ``max_cost``), as ``train`` would refuse."""
    job = job_inputs(args, "estimate")
    cost = job.tuner.estimate(
        job.train,
        job.settings["hyperparameters"],
        price_per_million=args.price_per_million,
        validation=job.validation,
        options=job.settings.get("options"),
    )
    if args.json:
        print_json(cost.model_dump_json(indent=2))
    else:
        print(in_cli_terms(str(cost)))
    budget = job.settings.get("max_cost")
    problem = over_budget(cost, budget) if budget is not None else None
    if problem is None:
        return 0
    print(f"error: {problem}: finetune train refuses to start it", file=sys.stderr)
    return 1
