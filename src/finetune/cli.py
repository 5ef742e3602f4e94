"""The ``finetune`` command, over the public API only."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any

import finetune as ft
from finetune.backends import backend_class

__all__ = ["main"]


def _tuner(args: argparse.Namespace) -> ft.Tuner:
    return ft.Tuner(args.backend, model=getattr(args, "model", None))


def _cmd_validate(args: argparse.Namespace) -> int:
    tuner = _tuner(args)
    validation = ft.Dataset.from_jsonl(args.validation) if args.validation else None
    report = tuner.validate(ft.Dataset.from_jsonl(args.file), validation)
    print(report.to_json() if args.json else report.to_markdown())
    return 0 if report.ok else 1


def _cmd_estimate(args: argparse.Namespace) -> int:
    params = ft.Hyperparameters(epochs=args.epochs) if args.epochs else None
    cost = _tuner(args).estimate(ft.Dataset.from_jsonl(args.file), params)
    print(cost.model_dump_json(indent=2) if args.json else _cost_text(cost))
    return 0


def _cost_text(cost: ft.CostEstimate) -> str:
    price = "unknown" if cost.cost is None else f"{cost.cost:.2f} {cost.currency}"
    if cost.cost is None and cost.cost_low is not None:
        price = f"{cost.cost_low:.2f} - {cost.cost_high:.2f} {cost.currency}"
    lines = [
        f"{cost.backend} / {cost.model}: {cost.examples} examples",
        f"tokens: {cost.tokens_total} (p50 {cost.tokens_p50}, p95 {cost.tokens_p95}, "
        f"max {cost.tokens_max})",
        f"epochs: {cost.epochs}, billed tokens: {cost.billed_tokens}, cost: {price}",
        f"fits context: {cost.fits_context}, exact: {cost.exact}",
    ]
    return "\n".join(lines + [f"note: {n}" for n in cost.notes])


def _cmd_backends(args: argparse.Namespace) -> int:
    for name in ft.available_backends():
        try:
            caps: ft.Capabilities = getattr(backend_class(name), "capabilities")  # noqa: B009
            detail = (
                f"methods={','.join(sorted(caps.methods))} "
                f"kinds={','.join(sorted(caps.example_kinds))} "
                f"{'hosted' if caps.hosted else 'local'} pause_resume={caps.pause_resume}"
            )
        except ft.FinetuneError as exc:
            detail = f"unavailable: {exc}"
        except ImportError as exc:
            detail = f"unavailable: {exc}"
        print(f"{name:10} {detail}")
    return 0


def _cmd_jobs(args: argparse.Namespace) -> int:
    for record in ft.JobRegistry().list(backend=args.backend, limit=args.limit):
        print(
            f"{record.backend:8} {record.job_id:32} {record.status:10} "
            f"{record.base_model} -> {record.fine_tuned_model or '-'}"
        )
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    job = _tuner(args).job(args.job).job
    print(job.model_dump_json(indent=2, exclude={"raw"}))
    return 0


def _cmd_wait(args: argparse.Namespace) -> int:
    job = _tuner(args).job(args.job).wait(timeout=args.timeout, progress=True)
    print(f"{job.id} {job.status.value} {job.fine_tuned_model or ''}".rstrip())
    return 0


def _cmd_cancel(args: argparse.Namespace) -> int:
    job = _tuner(args).job(args.job).cancel()
    print(f"{job.id} {job.status.value}")
    return 0


def _cmd_events(args: argparse.Namespace) -> int:
    for event in _tuner(args).job(args.job).events():
        print(f"{event.created_at.isoformat()} {event.level:7} {event.message}")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="finetune", description="Validate data, fine-tune on any backend, check the result."
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    commands = parser.add_subparsers(dest="command", required=True)

    def command(name: str, handler: Callable[[argparse.Namespace], int], text: str) -> Any:
        sub = commands.add_parser(name, help=text, description=text)
        sub.set_defaults(handler=handler)
        return sub

    for name, handler, text in (
        ("validate", _cmd_validate, "check a JSONL file; exit code 1 when it has errors"),
        ("estimate", _cmd_estimate, "exact tokens, epochs and cost of training on a file"),
    ):
        sub = command(name, handler, text)
        sub.add_argument("file", help="training data (JSONL)")
        sub.add_argument("--backend", default="openai", help="backend name (default: openai)")
        sub.add_argument("--model", required=True, help="base model to fine-tune")
        sub.add_argument("--json", action="store_true", help="print JSON")
        if name == "validate":
            sub.add_argument("--validation", help="validation data (JSONL)")
        else:
            sub.add_argument("--epochs", type=int, help="epochs (default: provider's rule)")
    command("backends", _cmd_backends, "installed backends and their capabilities")
    jobs = command("jobs", _cmd_jobs, "jobs started from this machine (the local registry)")
    jobs.add_argument("--backend", help="only this backend")
    jobs.add_argument("--limit", type=int, default=50)
    for name, handler, text in (
        ("status", _cmd_status, "a job's current state"),
        ("wait", _cmd_wait, "wait for a job to end, with a progress bar"),
        ("cancel", _cmd_cancel, "cancel a job"),
        ("events", _cmd_events, "a job's log"),
    ):
        sub = command(name, handler, text)
        sub.add_argument("job", help="job id")
        sub.add_argument("--backend", required=True, help="backend the job runs on")
        if name == "wait":
            sub.add_argument("--timeout", type=float, help="seconds before giving up waiting")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; errors are one line (``--debug`` shows the traceback)."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING)
    try:
        code: int = args.handler(args)
    except (ft.FinetuneError, ValueError, OSError) as exc:
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
