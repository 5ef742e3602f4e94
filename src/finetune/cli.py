"""The ``finetune`` command, over the public API only."""

from __future__ import annotations

import argparse
import io
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from platformdirs import user_data_dir

import finetune as ft
from finetune._arguments import (
    Parser,
    name_flag,
    named,
    non_negative_int,
    option_setting,
    or_auto,
    parse_command_line,
    positive_float,
    positive_int,
    reading_flags,
)
from finetune._cli_ask import add_ask_command
from finetune._cli_job_list import jobs_command
from finetune._cli_jobs import estimate_command, job_inputs
from finetune._cli_log import log_to_stderr, print_json
from finetune._cli_terms import for_the_command, in_cli_terms
from finetune._cli_watch import (
    Interrupted,
    add_job_commands,
    ended,
    job_named,
    local_backend,
    waited,
)
from finetune._config_file import (
    eval_data,
    eval_max_concurrency,
    eval_plan,
    load_config,
    shots_refusal,
)
from finetune._errors import did_you_mean
from finetune._namespace import PublicNames, public_names
from finetune._paths import check_writable
from finetune.backends._plugins import backend_class, shadowed_plugins

__all__ = ["main"]
__dir__: PublicNames = public_names(__name__)


def _cmd_validate(args: argparse.Namespace) -> int:
    job = job_inputs(args, "validate")
    report = job.tuner.validate(job.train, job.validation, options=job.settings.get("options"))
    if args.json:
        print_json(report.to_json())
    else:
        print(in_cli_terms(report.to_markdown()))
    return 0 if report.ok else 1


def _cmd_backends(args: argparse.Namespace) -> int:
    from finetune.lifecycle import lifecycle, status_text

    print(f"{'backend':10} {'status':19} what it trains")
    shadowed = shadowed_plugins()
    for name in ft.available_backends():
        status = status_text(name)
        try:
            caps = _declared_capabilities(name)
        except (ft.FinetuneError, ImportError) as exc:
            detail = f"unavailable: {exc}"
        else:
            detail = "capabilities known once built (a factory)"
            if caps is not None:
                detail = (
                    f"methods={','.join(sorted(caps.methods))} "
                    f"kinds={','.join(sorted(caps.example_kinds))} tools={caps.tools} "
                    f"{'hosted' if caps.hosted else 'local'} pause_resume={caps.pause_resume}"
                )
            if status == "-":
                status = "local" if caps is not None and not caps.hosted else "plugin"
        print(f"{name:10} {status:19} {detail}")
        for note in _backend_notes(name, shadowed.get(name, [])):
            print(f"{'':10} {'':19} {in_cli_terms(note)}")
        row = lifecycle(name)
        if row is not None and row.state != "open":
            print(f"{'':10} {'':19} {row.summary} ({row.source})")
    return 0


def _cmd_models(args: argparse.Namespace) -> int:
    from finetune._cli_models import cmd_models  # the model table only for this command

    return cmd_models(args)


def _cmd_cache(args: argparse.Namespace) -> int:
    from finetune._cli_cache import cmd_cache  # the evaluation package only for this command

    return cmd_cache(args)


def _backend_notes(name: str, unused: list[str]) -> list[str]:
    try:
        caps = _declared_capabilities(name)
    except (ft.FinetuneError, ImportError):
        return unused
    return [*(caps.notes if caps is not None else ()), *unused]


def _declared_capabilities(name: str) -> ft.Capabilities | None:
    """What a backend's class declares it can do; ``None`` for one registered as a factory
    function, which says so only once built."""
    caps = getattr(backend_class(name), "capabilities", None)
    return caps if isinstance(caps, ft.Capabilities) else None


def _cmd_demo(args: argparse.Namespace) -> int:
    from finetune.demo._run import run_demo

    output = args.output or str(Path(user_data_dir("finetune")) / "demo")
    outcome = run_demo(output, model=args.model, tiny=args.tiny, steps=args.steps)
    return 0 if outcome["comparison"].verdict == "improved" else 1


def _refuse_hosted_job(job_id: str, backend: str | None) -> None:
    """A job the registry knows on another backend only, or one named with another backend
    (``openai:ftjob-...``): its weights are the provider's."""
    backends = [backend] if backend else ft.JobRegistry().backends_of(job_id)
    if backends and "hf" not in backends:
        raise ft.FinetuneError(
            f"job {job_id!r} is on {' and '.join(backends)}, whose model stays with that "
            "provider: export writes the model of a local job (Tuner('hf'), hfjob-...) or of a "
            "model folder"
        )


def _cmd_export(args: argparse.Namespace) -> int:
    from finetune.export import export_model

    source: Any = args.job
    if not Path(args.job).exists():
        named = Path(args.job)
        if len(named.parts) > 1 and not named.name.startswith("hfjob-"):
            raise ft.FinetuneError(
                f"{args.job}: no such folder; export takes a model folder or a local job "
                "(hfjob-..., or its folder)"
            )
        backend, job_id = job_named(args.job, None)
        _refuse_hosted_job(job_id, backend)
        job = ft.Tuner(local_backend(job_id, args.jobs_dir)).job(job_id).job
        if not job.fine_tuned_model:
            raise ft.FinetuneError(f"job {job_id} is {job.status.value}: no model to export")
        source = job.fine_tuned_model
    default = {"gguf": ".", "gguf-adapter": ".", "merged": "merged", "ollama": "ollama"}
    result = export_model(
        source,
        args.output or default[args.format],
        format=args.format,
        quantization=args.quantization,
        name=args.name,
        create=args.create or False,
        say=print,
    )
    for note in result.notes:
        print(note)
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    inputs = job_inputs(args, "train")
    settings = inputs.settings
    try:
        job = inputs.tuner.fit(
            inputs.train,
            inputs.validation,
            hyperparameters=settings["hyperparameters"],
            method=settings.get("method", "sft"),
            suffix=settings.get("suffix"),
            options=settings.get("options"),
            skip_validation=settings.get("skip_validation", False),
            max_cost=settings.get("max_cost"),
        )
    except KeyboardInterrupt:
        raise Interrupted(
            "interrupted before a job was started, or before its start was told: `finetune "
            "jobs` lists it if it was; the same command again re-attaches to a job this one "
            "started rather than starting a second"
        ) from None
    print(f"{job.id} {job.status.value}")
    if job.reattached:
        print(
            f"the same fit (data, model, method, settings and suffix) started {job.id} "
            "before: re-attached to it, nothing uploaded or trained anew; another --seed or "
            "--suffix starts a new job",
            file=sys.stderr,
        )
    if args.wait:
        return ended(waited(job))
    if not job.status.is_terminal:
        print(_what_next(inputs.tuner, f"{job.job.backend}:{job.id}"), file=sys.stderr)
    return 0


def _what_next(tuner: ft.Tuner, named: str) -> str:
    """How to follow a job ``train`` started and left running: by its id, from another
    command, unless it lived in this process alone (a fake backend's)."""
    from finetune.backends.base import BackendAdapter
    from finetune.testing import FakeBackend

    backend = tuner.backend
    if isinstance(backend, BackendAdapter) and isinstance(backend.wrapped, FakeBackend):
        return (
            f"{named} ended with this command: a fake job lives in the process that made it "
            "(`finetune train --wait` runs one to its end)"
        )
    return (
        f"it runs on without this command: `finetune wait {named}` watches it (status, "
        "events, metrics and cancel take it too)"
    )


def _cmd_eval(args: argparse.Namespace) -> int:
    from finetune.evaluation._overlap import ShotsFromEvaluatedData

    args.config = args.config or args.config_flag
    config = load_config(args.config)
    if args.output:  # else found after the whole evaluation, which was paid for
        _check_eval_output(args.output)
    candidates, options, metrics, baseline = _eval_plan(args, config)
    max_concurrency = eval_max_concurrency(args.config, config)
    data, left_out = eval_data(args.config, config)
    for line in left_out:
        print(line, file=sys.stderr)
    try:
        result = ft.evaluate(
            data,
            candidates,
            metrics,
            max_concurrency=max_concurrency,
            progress=True,
            predictor_options=options,
            cache=not args.no_cache,
        )
    except ShotsFromEvaluatedData as shown:
        raise shots_refusal(args.config, config, data, shown.candidate, shown.indices) from None
    except KeyboardInterrupt:
        from finetune.evaluation._cache import default_cache_path

        if args.no_cache:
            raise Interrupted("interrupted: with --no-cache, no answer was kept") from None
        raise Interrupted(
            "interrupted: the answers received are kept in the prediction cache "
            f"({default_cache_path()}); the same command again asks only for the rest"
        ) from None
    print(result.to_markdown(baseline=baseline))
    if args.output:
        result.to_json(args.output)
    if args.fail_unless_improved is None or baseline is None:  # _eval_plan: both or neither
        return 0
    return _improved_on_every_metric(result, args.fail_unless_improved, baseline)


def _check_eval_output(given: str) -> None:
    """Refuse an ``--output`` that names a folder, or that cannot be written."""
    output = Path(given).expanduser()
    if given.endswith(("/", os.sep)) or output.is_dir():
        raise ft.FinetuneError(f"--output {given} is a folder: name a file, as {output}/r.json")
    check_writable(output)


def _eval_plan(
    args: argparse.Namespace, config: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, dict[str, Any]], list[Any], str | None]:
    """The eval config's plan (``eval_plan``), with ``--fail-unless-improved`` checked
    against it, before anything is asked."""
    candidates, options, metrics, baseline = eval_plan(args.config, config)
    gated = args.fail_unless_improved
    if gated is not None and gated not in candidates:
        guess = did_you_mean(gated, list(candidates)) or f"; candidates: {', '.join(candidates)}"
        raise ft.FinetuneError(
            f"{args.config}: --fail-unless-improved {gated!r} is no candidate of the file{guess}"
        )
    if gated is not None and (baseline is None or gated == baseline):
        raise ft.FinetuneError(
            f"{args.config}: --fail-unless-improved needs a candidate other than the baseline, "
            f"and a baseline = ... in the config; candidates: {', '.join(candidates)}; "
            f"baseline: {baseline}"
        )
    return candidates, options, metrics, baseline


def _improved_on_every_metric(result: ft.EvalResult, candidate: str, baseline: str) -> int:
    """0 when ``candidate`` improved on ``baseline`` on every metric, else 1, with a line on
    stderr for each metric where it did not; 1 too when it was fine-tuned on examples it was
    scored on, whose improvement proves nothing."""
    if result.trained_on.get(candidate):
        learned = len(result.trained_on[candidate])
        print(
            f"not trusted: {candidate!r} was fine-tuned on {learned} of the evaluated examples; "
            'evaluate it on data it was not trained on (exclude = "train.jsonl" in the config '
            "leaves out the examples of its training set)",
            file=sys.stderr,
        )
        return 1
    shortfalls = [
        comparison
        for comparison in (result.compare(candidate, baseline, m) for m in result.metrics)
        if comparison.verdict != "improved"
    ]
    for comparison in shortfalls:
        print(f"not improved: {comparison}", file=sys.stderr)
    return 1 if shortfalls else 0


_KINDS = "JSONL, a JSON array, CSV or Parquet; gzip, bzip2, xz or zstd too"
_FILE_HELP = (
    f"training data ({_KINDS}); several files are trained as one, one after another, each "
    "named in errors"
)
_VALIDATION_HELP = {
    "validate": f"validation data ({_KINDS}), checked too; repeat the flag for several files",
    "estimate": f"validation data ({_KINDS}): its tokens are counted, and billed where the "
    "provider bills them (together: one evaluation an epoch); repeat the flag for several "
    "files",
    "train": f"validation data ({_KINDS}); repeat the flag for several files, read as one",
}


_MAX_COST_HELP = {
    "estimate": "USD: exit 1 when the estimate is above it (train would refuse to start)",
    "train": "USD: refuse to start when the estimate is above it",
}
_CONFIG_HELP = {
    "validate": "the train config (TOML or YAML) whose job to check: its file, backend, "
    "model, validation and [options]; flags override it",
    "estimate": "the train config (TOML or YAML) whose job to price: its file, backend, "
    "model, validation, [hyperparameters] and [options]; flags override it",
}


def _option_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--option",
        action="append",
        type=option_setting,
        metavar="KEY=VALUE",
        help="a backend option (max_length=2048, device=cuda:0), over a config's [options]; "
        "repeat it for several",
    )


def _parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="finetune", description="Validate data, fine-tune on any backend, check the result."
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    parser.add_argument("--version", action="version", version=f"finetune {ft.__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    def command(name: str, handler: Callable[[argparse.Namespace], int], text: str) -> Any:
        sub = commands.add_parser(name, help=text, description=text)
        sub.set_defaults(handler=handler, command_parser=sub)
        return sub

    for name, handler, text in (
        ("validate", _cmd_validate, "check training data; exit 1 on errors"),
        ("estimate", estimate_command, "exact tokens, epochs and cost of training on the data"),
    ):
        sub = command(name, handler, text)
        sub.add_argument("file", nargs="*", default=None, help=_FILE_HELP)
        name_flag(sub, "--backend", "the backend whose rules apply: hf, together, ...")
        name_flag(sub, "--model", "base model to fine-tune")
        sub.add_argument("--json", action="store_true", help="print JSON")
        sub.add_argument("--validation", action="append", help=_VALIDATION_HELP[name])
        reading_flags(sub)
        sub.add_argument("--config", help=_CONFIG_HELP[name])
        _method_flag(sub)
        _option_flag(sub)
        if name == "estimate":  # a train command line estimated as it is
            _hyperparameter_flags(sub)
            sub.add_argument(
                "--price-per-million",
                type=positive_float,
                help="USD per million billed tokens (default: our dated price table)",
            )
            sub.add_argument("--max-cost", type=positive_float, help=_MAX_COST_HELP["estimate"])
    command("backends", _cmd_backends, "installed backends and their capabilities")
    models = command("models", _cmd_models, "base models, context and training prices we know")
    name_flag(models, "--backend", "only this backend's models")
    models.add_argument("--json", action="store_true", help="print JSON")
    cache = command("cache", _cmd_cache, "the prediction cache: its file and size; pruning it")
    cache.add_argument("--path", help="another cache file (default: $FINETUNE_CACHE_DIR's)")
    emptied = cache.add_mutually_exclusive_group()
    emptied.add_argument(
        "--prune-days", type=positive_float, help="remove predictions older than N days"
    )
    emptied.add_argument("--clear", action="store_true", help="remove every prediction")
    demo = command(
        "demo", _cmd_demo, "validate, fine-tune (LoRA) and evaluate SmolLM2-135M on CPU, offline"
    )
    demo.add_argument("--output", help="folder for the model and report (default: user data)")
    base = demo.add_mutually_exclusive_group()  # --tiny builds its own base model
    base.add_argument(
        "--model",
        type=named,
        help="base model instead of SmolLM2: a folder, a .gguf file or a Hub id",
    )
    base.add_argument(
        "--tiny", action="store_true", help="a toy model built on the spot (no download)"
    )
    demo.add_argument("--steps", type=positive_int, default=None, help="training steps")
    export = command("export", _cmd_export, "write a local job's model as merged, GGUF or Ollama")
    export.add_argument("job", help="a local job id (hfjob-... or hf:hfjob-...) or a model folder")
    export.add_argument(
        "--format",
        default="gguf",
        type=str.lower,
        choices=("merged", "gguf", "gguf-adapter", "ollama"),
        help="gguf: one file for llama.cpp (default); merged: a Hugging Face folder; "
        "gguf-adapter: the LoRA adapter alone; ollama: a GGUF file and a Modelfile",
    )
    export.add_argument(
        "--quantization",
        type=str.lower,
        choices=("f32", "f16", "bf16", "q8_0"),
        help="GGUF tensor type (Q8_0 as llama.cpp writes it, too)",
    )
    export.add_argument("--output", help="file or folder to write (default: here)")
    export.add_argument("--name", help="model name in the GGUF metadata (default: the job id)")
    export.add_argument("--jobs-dir", help="where local jobs live (default: the user data dir)")
    export.add_argument(
        "--create", nargs="?", const=True, help="ollama: also run `ollama create [NAME]`"
    )
    train = command("train", _cmd_train, "validate, upload and start a fine-tuning job")
    train.add_argument("file", nargs="*", default=None, help=_FILE_HELP)
    train.add_argument("--config", help="a TOML or YAML file with the same settings")
    name_flag(train, "--backend", "backend name")
    name_flag(train, "--model", "base model")
    train.add_argument("--validation", action="append", help=_VALIDATION_HELP["train"])
    reading_flags(train)
    _method_flag(train)
    name_flag(train, "--suffix", "a name part for the tuned model")
    _hyperparameter_flags(train)
    train.add_argument("--max-cost", type=positive_float, help=_MAX_COST_HELP["train"])
    _option_flag(train)
    train.add_argument(
        "--jobs-dir",
        help="hf: the folder the job's folder is made in (default: $FINETUNE_HF_JOBS_DIR, "
        "else the user data dir)",
    )
    train.add_argument("--wait", action="store_true", help="wait for the job, with a progress bar")
    train.add_argument(
        "--skip-validation",
        action="store_true",
        default=None,
        help="send the data even where validation finds errors",
    )
    train.add_argument(
        "--allow-closed-provider",
        action="store_true",
        default=None,
        help="try to create the job where our table says the provider closed to new jobs "
        "(finetune backends shows which) and you know it still accepts yours",
    )
    evaluate = command("eval", _cmd_eval, "evaluate candidates on a dataset (config file)")
    config_file = evaluate.add_mutually_exclusive_group(required=True)
    config_file.add_argument(
        "config",
        nargs="?",
        help="a TOML or YAML file: data, candidates, metrics, [judge] (docs/cli.md)",
    )
    config_file.add_argument(
        "--config", dest="config_flag", help="the same file, as train and estimate take it"
    )
    evaluate.add_argument("--output", help="write the result as JSON here")
    evaluate.add_argument(
        "--no-cache",
        action="store_true",
        help="ask every model again and keep no answer (a server now serving new weights "
        "under a name it served before)",
    )
    evaluate.add_argument(
        "--fail-unless-improved",
        metavar="CANDIDATE",
        help="exit 1 unless CANDIDATE improves on the config's baseline on every metric "
        "(verdict 'improved': interval above 0 and p < 0.05), e.g. to gate a CI pipeline",
    )
    jobs = command("jobs", jobs_command, "jobs started from this machine (the local registry)")
    name_flag(jobs, "--backend", "only this backend")
    jobs.add_argument("--limit", type=positive_int, default=50, help="newest first (50)")
    jobs.add_argument("--json", action="store_true", help="a JSON list of the records")
    jobs.add_argument(
        "--refresh",
        action="store_true",
        help="ask each provider about its jobs not ended (local jobs are read again always)",
    )
    name_flag(jobs, "--model", "lineage: the job and data fingerprints that made MODEL")
    add_job_commands(command)
    add_ask_command(command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; errors are one line (``--debug`` shows the traceback)."""
    _never_fail_on_an_unencodable_character()
    args = parse_command_line(_parser(), argv)
    log_to_stderr(debug=args.debug)
    try:
        code: int = args.handler(args)
    except Interrupted as stopped:
        print(stopped, file=sys.stderr)
        return 130
    except BrokenPipeError:
        return _reader_gone()
    except (ft.FinetuneError, ValueError, OSError) as exc:
        if args.debug:
            raise
        notes = "".join(f" ({note})" for note in getattr(exc, "__notes__", ()))
        print(f"error: {for_the_command(str(exc), args.command)}{notes}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return code


def _never_fail_on_an_unencodable_character() -> None:
    """Print a character the output's encoding lacks as ``\\xe9``: a report quoting a row's
    emoji or CJK text, sent to a file on Windows (cp1252) or under ``PYTHONIOENCODING=ascii``,
    was an ``error: 'charmap' codec can't encode ...`` in place of the report."""
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(errors="backslashreplace")


def _hyperparameter_flags(command: argparse.ArgumentParser) -> None:
    """``--epochs``, ``--batch-size``, ...: the hyperparameters ``train`` and ``estimate``
    take as flags (a job estimated is checked as ``train`` checks it)."""
    for flag, kind, text in (
        ("--epochs", or_auto(positive_int), "epochs (default: auto, the backend's rule)"),
        ("--batch-size", or_auto(positive_int), "examples per step, or auto"),
        ("--learning-rate", positive_float, "the learning rate, where the backend takes one"),
        (
            "--learning-rate-multiplier",
            or_auto(positive_float),
            "a factor on the backend's default learning rate, or auto",
        ),
        ("--seed", non_negative_int, "0 or more, for a run that can be repeated"),
    ):
        command.add_argument(flag, type=kind, help=text)


def _method_flag(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--method", choices=["sft", "dpo"], help="sft (the default) or dpo (preference data)"
    )


def _reader_gone() -> int:
    """The reader of our output went away (``finetune jobs | head``): stop quietly, with the
    status a shell gives a process killed by SIGPIPE, and nothing left to flush at exit."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return 141


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
