"""What ``ft.evaluate`` refuses before any model is asked: candidates that are not named by
text, jobs that made no model yet, examples with no answer to compare with, tools a
candidate cannot take, and options it does not have."""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from finetune._errors import FinetuneError, add_note, did_you_mean, unexpected_keyword
from finetune.evaluation._lineage import job_without_model, model_of_job
from finetune.evaluation._model_text import model_named
from finetune.evaluation._predictors import Predictor, predictor_for
from finetune.evaluation._prompts import shows_non_text, uses_tools
from finetune.evaluation.metrics import Metric, needs_reference
from finetune.types import ChatExample, CompletionExample, Example, Job, PreferenceExample
from finetune.validation._rules import first_tool_use

__all__ = [
    "SERVED_WITH_TOOLS",
    "TO_A_FUNCTION",
    "as_examples",
    "as_models",
    "indexes",
    "made_predictor",
    "metric_names",
    "option_problem",
    "refuse_examples_with_no_reference",
    "refuse_predictors_without_images",
    "refuse_predictors_without_tools",
    "refuse_unknown_options",
    "refuse_unnamed_candidates",
]

# the ways to tools only Python has (the command line says its own, or none)
SERVED_WITH_TOOLS = "ft.ModelRef(backend='openai-compatible', ...)"
TO_A_FUNCTION = ", and to a function with a tools parameter"


def indexes(indices: list[int]) -> str:
    """The first five of ``indices``, as a message lists them (``1, 4, 9, ...``)."""
    return ", ".join(map(str, indices[:5])) + (", ..." if len(indices) > 5 else "")


def as_examples(dataset: Iterable[Any]) -> list[Example]:
    """The examples to evaluate: a ``Dataset``'s, or those given; rows that are not examples
    yet (dicts, as ``with_few_shot`` takes them) read as ``ft.Dataset.from_records`` reads
    them, one that no reader knows a ``DatasetError`` naming its place (from 1)."""
    from finetune.dataset import Dataset

    if not isinstance(dataset, Dataset | list | tuple):  # a DataFrame's are its rows
        dataset = Dataset.from_records(dataset, name="the data to evaluate")
    items = list(dataset)
    if all(isinstance(item, ChatExample | CompletionExample | PreferenceExample) for item in items):
        return items
    return list(Dataset.from_records(items, name="the data to evaluate"))


def refuse_unnamed_candidates(candidates: Mapping[Any, Any]) -> None:
    """A candidate's name heads its row in every table and key in the saved result: text,
    checked before anything is asked, not after every prediction has been paid for."""
    if not isinstance(candidates, Mapping):
        raise TypeError(
            f"candidates is a dict of names to candidates, not {type(candidates).__name__}: "
            "e.g. {'base': tuner.base_model, 'tuned': job.model}"
        )
    for name in candidates:
        if not isinstance(name, str):
            raise TypeError(
                f"a candidate's name is text, not {type(name).__name__} {name!r}: "
                "e.g. {'base': tuner.base_model, 'tuned': job.model}"
            )
        if not name.strip():
            raise ValueError(f"a candidate's name is blank ({name!r}): name it, e.g. 'tuned'")


def as_models(candidates: Mapping[str, Any]) -> dict[str, Any]:
    """Candidates with each job (a ``JobHandle``, an ``AsyncJobHandle`` or a ``Job``, or a
    ``ModelRef`` naming a job the registry knows, ``hf:hfjob-...``) read as the model it
    made, as ``{"tuned": job}`` is meant, and each ``"backend:model"`` text (``str(ref)``,
    an eval config's form) as its ``ModelRef``; a job that made none yet is refused, naming
    the candidate, before any model is asked."""
    from finetune._handle import JobView

    models = {}
    for name, candidate in candidates.items():
        job = candidate.job if isinstance(candidate, JobView) else candidate
        if isinstance(job, Job):
            if job.model is None:
                raise job_without_model(name, job)
            candidate = job.model
        if isinstance(candidate, str):
            candidate = model_named(candidate)
        models[name] = model_of_job(name, candidate)
    return models


def refuse_predictors_without_tools(
    resolved: dict[str, tuple[Predictor, list[Any] | None]], examples: Sequence[Example]
) -> None:
    """An example that uses tools is asked only of predictors that take tools: another one
    would drop them from the prompt, and its scores would mean nothing."""
    used = [i for i, example in enumerate(examples) if uses_tools(example)]
    if not used:
        return
    unable = [(n, p) for n, (p, _) in resolved.items() if not getattr(p, "supports_tools", False)]
    if not unable:
        return
    name, predictor = unable[0]
    place = _tool_use(examples[used[0]])
    why = getattr(predictor, "tools_note", None)
    raise ValueError(
        f"candidate {name!r} ({type(predictor).__name__}) takes no tools"
        f"{f': {why}' if why else ''}, and the example at "
        f"index {used[0]} uses them ({place}; {len(used)} of {len(examples)} do: index "
        f"{indexes(used)}). Tools go to OpenAI, Mistral, Together and Fireworks models, to a "
        "local model whose chat template writes them and that has a response_template (its "
        "tokenizer's, or one given), to an OpenAI-compatible server "
        f"(vLLM with --enable-auto-tool-choice, llama-server --jinja; {SERVED_WITH_TOOLS})"
        f"{TO_A_FUNCTION}"
    )


def refuse_predictors_without_images(
    resolved: dict[str, tuple[Predictor, list[Any] | None]], examples: Sequence[Example]
) -> None:
    """An example (or a few-shot prompt's shot) that shows an image is asked only of
    predictors that send it: another one would ask its text alone, and score an answer given
    without the image."""
    shown = [i for i, example in enumerate(examples) if shows_non_text(example)]
    for name, (predictor, shots) in resolved.items():
        if getattr(predictor, "supports_images", False):
            continue
        shot = next((i for i, s in enumerate(shots or []) if shows_non_text(s)), None)
        if not shown and shot is None:
            continue
        where = (
            f"the example at index {shown[0]} shows an image (a content part that is not "
            f"text; {len(shown)} of {len(examples)} do: index {indexes(shown)})"
            if shown
            else f"its few-shot prompt's shot {shot} shows an image"
        )
        raise ValueError(
            f"candidate {name!r} ({type(predictor).__name__}) reads text only, and {where}: it "
            "would answer without the image. Images go to OpenAI, Mistral, Together and "
            "Fireworks chat models, to an OpenAI-compatible server, and to a function; "
            "evaluate a local model on text examples (dataset.filter(...) leaves the others out)"
        )


def _tool_use(example: Example) -> str | None:
    """Where an example that ``uses_tools`` first uses them (``messages[1].tool_calls``)."""
    return first_tool_use(example.model_dump(mode="json", exclude_none=True))


def refuse_examples_with_no_reference(references: list[str], metrics: list[Metric]) -> None:
    """Scoring against an empty reference gives numbers that mean nothing."""
    comparing = [m.__name__ for m in metrics if needs_reference(m)]
    missing = [i for i, answer in enumerate(references) if not answer.strip()]
    if not comparing or not missing:
        return
    where = indexes(missing)
    verb = "compares" if len(comparing) == 1 else "compare"
    raise ValueError(
        f"the examples at index {where} ({len(missing)} of {len(references)}) end with no answer "
        f"(no assistant reply after the prompt, or an empty one), and {', '.join(comparing)} "
        f"{verb} the prediction with it: their scores would mean nothing. Evaluate on examples "
        "that end with the expected answer, or with metrics that need none (json_valid, regex, "
        "json_schema, your own)"
    )


def refuse_unknown_options(
    options: Mapping[str, Any], takes: Sequence[str], candidates: Mapping[str, Any]
) -> None:
    """A keyword ``evaluate`` does not take is a ``TypeError`` naming those it ``takes``; a
    model's own setting (``max_tokens``) is shown where it goes: per candidate."""
    unknown = sorted(set(options) - set(takes))
    if not unknown:
        return
    settings = _model_settings()
    setting = next((name for name in unknown if name in settings), None)
    if setting is None:
        hint = did_you_mean(unknown[0], list(takes))
    else:
        per_candidate = {name: {setting: options[setting]} for name in candidates}
        hint = f" ({setting} is a model's own setting: predictor_options={per_candidate!r:.200})"
    raise TypeError(
        f"evaluate() got unexpected keyword argument(s) {unknown}{hint}; it takes {sorted(takes)}"
    )


def _model_settings() -> set[str]:
    """The options our predictors take (``max_tokens``, ``max_new_tokens``, ...)."""
    from finetune.evaluation._local import HFPredictor
    from finetune.evaluation._predictors import MistralPredictor, OpenAIPredictor

    kinds = (HFPredictor, MistralPredictor, OpenAIPredictor)
    return {name for kind in kinds for name in list(inspect.signature(kind).parameters)[1:]}


def metric_names(metrics: Sequence[Metric]) -> list[str]:
    """The metrics' names, their columns in the result: unique and not empty. Two lambdas
    are both ``<lambda>``, and a ``functools.partial`` has no name: said with the cure."""
    names = [getattr(m, "__name__", "") for m in metrics]
    if len(set(names)) == len(names) and all(names):
        return names
    hint = ""
    if "<lambda>" in names or not all(names):
        hint = (
            "; a lambda is named '<lambda>' and a functools.partial has no name: write each as "
            "a def named as its column should read, or set its __name__, or give the metrics "
            "as a dict of names: {'short': lambda p, r: len(p) < 9, ...}"
        )
    raise ValueError(f"metric names must be unique and non-empty: {names}{hint}")


def option_problem(error: TypeError, options: Mapping[str, Any]) -> str | None:
    """What a predictor said of an option among ``options`` it does not take (a ``TypeError``
    from making it): one of ours names the closest it takes, and all of them (``max_tokens``
    is OpenAI's; a local model's is ``max_new_tokens``). ``None`` when the error is about
    something else."""
    from finetune import evaluation

    option = unexpected_keyword(error, options)
    if option is None:
        return None
    found = re.match(r"(\w+)\.__init__\(\)", str(error))
    predictor = getattr(evaluation, found.group(1), None) if found else None
    if not isinstance(predictor, type):
        return str(error)
    taken = list(inspect.signature(predictor).parameters)[1:]  # after the model
    return (
        f"{predictor.__name__} takes no option {option!r}{did_you_mean(option, taken)}; "
        f"its options are {', '.join(taken)}"
    )


def made_predictor(
    candidate: Any, options: dict[str, Any], options_of: str, asked: str, *, named: bool = True
) -> Predictor:
    """``predictor_for(candidate, **options)``, an option it does not take named as one of
    ``options_of`` (``predictor_options of candidate 'tuned'``) and a value it refuses as
    ``asked``'s (``candidate 'tuned'``); our own errors keep their type, with ``asked`` in a
    note where ``named`` (a local model's folder that is not there)."""
    try:
        return predictor_for(candidate, **options)
    except FinetuneError as exc:
        if named:
            add_note(exc, asked)
        raise
    except TypeError as exc:
        why = option_problem(exc, options)
        if why is None:
            raise
        raise ValueError(f"{options_of}: {why}") from None
    except ValueError as exc:  # a setting out of range
        if type(exc) is not ValueError:
            raise
        raise ValueError(f"{asked}: {exc}") from None
