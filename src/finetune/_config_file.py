"""Config files of the ``finetune`` command (``train --config``, ``eval``): read, checked for
keys they do not take, and an eval config's candidates read as models."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from finetune._config_reading import load_config
from finetune._errors import FinetuneError, did_you_mean
from finetune._numbers import is_whole
from finetune._words import counted

if TYPE_CHECKING:
    from finetune.dataset import Dataset
    from finetune.types import ModelRef

__all__ = [
    "config_path",
    "eval_candidate",
    "eval_data",
    "eval_max_concurrency",
    "eval_plan",
    "load_config",
    "refuse_unknown_keys",
    "refuse_wrong_types",
    "shots_refusal",
    "train_config",
]

TRAIN_KEYS = (
    "backend",
    "model",
    "file",
    "validation",
    "columns",
    "field",
    "encoding",
    "deduplicate",
    "suffix",
    "method",
    "skip_validation",
    "max_cost",
    "allow_closed_provider",
)
_TRAIN_TABLES = ("hyperparameters", "options")
# what the other config, or another tool, calls a key: an eval config's data is file here
_TRAIN_SYNONYMS = dict.fromkeys(("data", "train", "training_file", "train_file"), "file")
_TRAIN_SYNONYMS |= dict.fromkeys(("eval", "validation_file", "valid"), "validation")
_EVAL_SYNONYMS = {"file": "data", "holdout": "data", "test": "data", "eval": "data"}


def train_config(path: str) -> dict[str, Any]:
    """The settings of a ``train --config`` file, with a key it does not take, or text or a
    table of the wrong type, refused: a one-line error naming the file and the key."""
    from finetune._synonyms import HYPERPARAMETER_SYNONYMS
    from finetune.types import Hyperparameters

    settings = load_config(path)
    for key in sorted(set(settings) - set(TRAIN_KEYS + _TRAIN_TABLES)):
        meant = HYPERPARAMETER_SYNONYMS.get(key, key)
        if meant in Hyperparameters.model_fields:  # epochs = 3 above the table it belongs in
            raise FinetuneError(
                f"{path}: {key!r} is a hyperparameter: write {meant} under [hyperparameters]"
            )
    refuse_unknown_keys(
        path,
        settings,
        TRAIN_KEYS + _TRAIN_TABLES,
        synonyms=_TRAIN_SYNONYMS,
        advice="; a backend's options, such as hf's max_length, go under [options]",
    )
    text = ("backend", "model", "suffix", "method", "field", "encoding")
    refuse_wrong_types(path, settings, text=text, tables=_TRAIN_TABLES)
    table = settings.get("hyperparameters") or {}
    refuse_unknown_keys(
        path, table, Hyperparameters.model_fields, "[hyperparameters]", HYPERPARAMETER_SYNONYMS
    )
    return settings


def refuse_unknown_keys(
    source: str,
    table: dict[str, Any],
    known: Iterable[str],
    where: str = "",
    synonyms: Mapping[str, str] | None = None,
    advice: str = "",
) -> None:
    """Refuse the keys of ``table`` that are not in ``known``, each with the closest known key
    (``advice`` after the list): a mistyped key must not fall back silently to a default,
    and spend money on it."""
    allowed = sorted(known)
    unknown = sorted(set(table) - set(allowed))
    if not unknown:
        return
    named = ", ".join(repr(key) + did_you_mean(key, allowed, synonyms) for key in unknown)
    place = f" in {where}" if where else ""
    raise FinetuneError(
        f"{source}: unknown key{'s' if len(unknown) > 1 else ''} {named}{place}; "
        f"{where or 'the file'} takes {', '.join(allowed)}{advice}"
    )


def refuse_wrong_types(
    source: str,
    table: dict[str, Any],
    *,
    text: Iterable[str] = (),
    tables: Iterable[str] = (),
    where: str = "",
) -> None:
    """Refuse a key of ``table`` that holds text or a table, given anything else (``suffix =
    5``, ``options = "x"``): a one-line error naming the file and the key, before any work."""
    place = f"{where} " if where else ""  # a key holding null (an empty YAML section) is unset
    for key in text:
        if table.get(key) is not None and not isinstance(table[key], str):
            raise FinetuneError(f'{source}: {place}{key} is text, as "name", not {table[key]!r}')
    for key in tables:
        if table.get(key) is not None and not isinstance(table[key], dict):
            raise FinetuneError(
                f"{source}: {place}{key} is a table, as [{key}], not {table[key]!r}"
            )


def config_path(source: str, key: str, value: Any) -> str:
    """A file named in a config file (``~`` is the home folder): paths are read from the
    folder ``finetune`` runs in. One that is not there is a one-line error naming the key,
    and the file of that name beside the config when there is one (a path written relative
    to the config)."""
    if not isinstance(value, str) or not value:
        raise FinetuneError(f'{source}: {key} is a file path, as "data.jsonl", not {value!r}')
    path = Path(value).expanduser()
    if path.exists():
        return str(path)
    folder = Path(source).parent
    beside = folder / path
    hint = ""
    if not path.is_absolute() and folder != Path() and beside.exists():
        hint = f"; {beside} exists: write that path, or run finetune in {folder}"
    raise FinetuneError(
        f"{source}: {key} = {value!r}: no such file in {Path.cwd()}, the folder the paths "
        f"of a config file are read from{hint}"
    )


_CANDIDATE_KEYS = ("backend", "model", "job", "endpoint", "few_shot", "options")


def _job_named(where: str, spec: dict[str, Any]) -> dict[str, Any]:
    """A candidate table's ``job = "hf:hfjob-..."`` (a job this machine ran, read as the
    model it made) as its backend and model."""
    job = spec["job"]
    backend, colon, job_id = job.partition(":") if isinstance(job, str) else ("", "", "")
    if not (backend and colon and job_id):
        raise FinetuneError(f'{where}: job is "backend:id", as "hf:hfjob-...", not {job!r}')
    if spec.get("backend") is not None or spec.get("model") is not None:
        raise FinetuneError(f"{where}: job names the model: leave out backend and model")
    rest = {key: value for key, value in spec.items() if key != "job"}
    return {**rest, "backend": backend, "model": job_id}


def _backend_in_model(spec: dict[str, Any]) -> dict[str, Any]:
    """A table's ``model = "hf:/path/m"`` with no ``backend``: the candidate's text, read so."""
    from finetune.backends import available_backends

    named = spec.get("model")
    backend, _, model = named.partition(":") if isinstance(named, str) else ("", "", "")
    known = (*available_backends(), "gguf")
    return {**spec, "backend": backend, "model": model} if backend in known else spec


def eval_candidate(
    source: str,
    name: str,
    spec: Any,
    *,
    table: str | None = None,
    columns: dict[str, str] | None = None,
) -> tuple[ModelRef, dict[str, Any]]:
    """A candidate of an eval config and its predictor's options: ``"backend:model"`` or a
    table with ``backend`` and ``model`` (or ``job``, a job this machine ran), ``endpoint``
    (an ``openai-compatible`` server's URL),
    ``options`` and ``few_shot = {train = ..., k = ...}`` (its rows with the config's
    ``columns``). Another model of the file (the judge's) names its own ``table`` in
    errors."""
    from finetune.types import ModelRef

    where = f"{source}: {table}" if table else f"{source}: candidate {name!r}"
    table = table or f"[candidates.{name}]"
    if isinstance(spec, str):
        spec = dict(zip(("backend", "model"), spec.split(":", 1), strict=False))
    elif isinstance(spec, dict) and not spec.get("backend"):
        spec = _backend_in_model(spec)
    if isinstance(spec, dict):  # a misspelt key is named before what it leaves missing
        refuse_unknown_keys(source, spec, _CANDIDATE_KEYS, table)
    if isinstance(spec, dict) and spec.get("job") is not None:
        spec = _job_named(where, spec)
    if not isinstance(spec, dict) or not spec.get("backend") or not spec.get("model"):
        raise FinetuneError(
            f'{where} needs a backend and a model: "openai:gpt-4.1-mini" or a table with backend '
            '= ... and model = ... (or job = "hf:hfjob-...", a job this machine ran)'
        )
    refuse_wrong_types(source, spec, text=("backend", "model"), where=table)
    options = spec.get("options", {})
    if not isinstance(options, dict):
        raise FinetuneError(f"{where}: options is a table, as {{ max_tokens = 64 }}")
    endpoint = spec.get("endpoint")
    if (spec["backend"] == "openai-compatible") != isinstance(endpoint, str) or endpoint == "":
        raise FinetuneError(
            f'{where}: endpoint (a server\'s URL, as "http://127.0.0.1:8080/v1") '
            'goes with backend = "openai-compatible", and only with it'
        )
    if endpoint:
        ref = ModelRef.openai_compatible(endpoint, spec["model"])
    else:
        ref = ModelRef(backend=spec["backend"], name=spec["model"])
    shots = spec.get("few_shot")
    if shots:
        if not isinstance(shots, dict) or not shots.get("train"):
            raise FinetuneError(f'{where}: few_shot needs train = "file.jsonl"')
        refuse_unknown_keys(source, shots, ("train", "k"), f"[candidates.{name}] few_shot")
        k = shots.get("k", 5)
        if not is_whole(k) or k < 0:
            raise FinetuneError(
                f"{where}: few_shot k is how many examples to show, a whole number of 0 or "
                f"more, not {k!r}"
            )
        shown = config_path(source, f"[candidates.{name}] few_shot train", shots["train"])
        train = datasets_of([shown], columns)
        ref = ref.with_few_shot(train, k=k)
    return ref, options


_EVAL_KEYS = (
    "data",
    "exclude",
    "columns",
    "field",
    "encoding",
    "metrics",
    "judge",
    "baseline",
    "max_concurrency",
    "candidates",
)


def eval_data(source: str, config: dict[str, Any]) -> tuple[Dataset, list[str]]:
    """An eval config's ``data``, without the examples also in its ``exclude`` files (a
    training set: ``holdout.excluding(train)``), and a line for each file that took some;
    each file's rows with the config's ``columns`` alone, when it names them."""
    columns = columns_setting(source, config.get("columns"))
    paths = [config_path(source, "data", path) for path in listed(config["data"])]
    refuse_wrong_types(source, config, text=("field", "encoding"))
    field, encoding = config.get("field"), config.get("encoding")
    data = datasets_of(paths, columns, field=field, encoding=encoding)
    check_reading(source, paths, field, encoding)
    excluded = config.get("exclude", [])
    excluded = [excluded] if isinstance(excluded, str) else excluded
    if not isinstance(excluded, list):
        raise FinetuneError(
            f'{source}: exclude is a file path or a list of them, as "train.jsonl", not '
            f"{excluded!r}"
        )
    said, given = [], len(data)
    for value in excluded:
        before = len(data)
        data = data.excluding(datasets_of([config_path(source, "exclude", value)], columns))
        if len(data) < before:
            said.append(f"left out {before - len(data)} of the evaluated examples: also in {value}")
    if given and not len(data):
        raise FinetuneError(
            f"{source}: every example of data is also in exclude ({', '.join(map(str, excluded))})"
            ": nothing is left to evaluate; give data held out of training"
        )
    return data, said


def listed(value: Any) -> list[Any]:
    """A config's file or list of files, as a list (an empty list stays one bad value)."""
    return value if isinstance(value, list) and value else [value]


def datasets_of(
    paths: list[str],
    columns: dict[str, str] | None = None,
    *,
    field: str | None = None,
    encoding: str | None = None,
) -> Dataset:
    """One file's dataset, or several read one after another (``Dataset.concat``: a row
    keeps its own file and line in errors), with only the ``columns`` given; a JSON file's
    list under ``field``, a CSV file in its ``encoding``."""
    from finetune.dataset import Dataset

    parts = [data_file(path, field=field, encoding=encoding) for path in paths]
    whole = parts[0] if len(parts) == 1 else Dataset.concat(parts)
    return whole.select_columns(columns) if columns else whole


def named_columns(text: str) -> dict[str, str] | None:
    """Key names, comma-separated (``messages,tools``), each perhaps with its new name
    (``question=prompt``), as a mapping of each key to its name (``--columns``, a config's
    ``columns`` text); ``None`` when a name is empty or given twice."""
    pairs = [name.partition("=") for name in text.split(",")]
    named = {old.strip(): (new if sep else old).strip() for old, sep, new in pairs}
    if len(named) < len(pairs) or not all(old and new for old, new in named.items()):
        return None
    return named


def columns_setting(source: str, value: Any) -> dict[str, str] | None:
    """A config's ``columns``: the keys of each row to keep, a list of names (or text, as
    ``--columns`` takes it), or a table of them to new names; ``None`` when not given."""
    if value is None:
        return None
    names = (named_columns(value) or {}) if isinstance(value, str) else value
    if isinstance(names, list) and all(isinstance(name, str) for name in names):
        names = {name: name for name in names} if len(set(names)) == len(names) else {}
    if isinstance(names, dict) and names:
        named = {str(old).strip(): str(new).strip() for old, new in names.items()}
        if all(isinstance(new, str) for new in names.values()) and all(
            old and new for old, new in named.items()
        ):
            return named
    raise FinetuneError(
        f'{source}: columns is a list of key names, as ["messages", "tools"], or a table of '
        f'them to new names, as {{ question = "prompt" }}, not {value!r}'
    )


def data_file(path: str, *, field: str | None = None, encoding: str | None = None) -> Dataset:
    """A data file as the commands read it: CSV or TSV by its name (``.csv``, ``.tsv``,
    compressed or not; in its ``encoding``), else by its first bytes: Parquet, a JSON
    document (an array of examples, an object holding one: the list under ``field``) or
    JSONL (those two compressed or not)."""
    from finetune.dataset import Dataset
    from finetune.dataset._json_array import is_json_document
    from finetune.dataset._parquet import is_parquet

    if Path(path).expanduser().is_dir():
        raise FinetuneError(_folder_refusal(Path(path).expanduser()))
    if _is_csv(path):
        return Dataset.from_csv(path, encoding=encoding or "utf-8")
    if is_parquet(path):
        return Dataset.from_parquet(path)
    listed_under = field if field is not None and is_json_document(path) else None  # JSONL: none
    return Dataset.from_json(path, field=listed_under)


def _is_csv(path: str) -> bool:
    from finetune.dataset._sources import reader_for

    return reader_for(path) == "from_csv"


def check_reading(source: str, paths: list[str], field: str | None, encoding: str | None) -> None:
    """A ``field`` (``--field``) where no file is a JSON document, or an ``encoding`` where
    none is CSV, is a one-line error: read as they are, the files would ignore it."""
    from finetune.dataset._json_array import is_json_document

    if field is not None and not any(is_json_document(path) for path in paths):
        raise FinetuneError(
            f"{source}: field names the list of a JSON file's object that holds the examples "
            f"(--field train); none of {', '.join(paths)} is a JSON document"
        )
    if encoding is not None and not any(_is_csv(path) for path in paths):
        raise FinetuneError(
            f"{source}: encoding is a CSV file's (--encoding cp1252); none of "
            f"{', '.join(paths)} is one, and JSON, JSONL and Parquet files are read as UTF-8"
        )


def _folder_refusal(folder: Path) -> str:
    """What a command says of a folder given as a data file (a Hub dataset's ``data/``): the
    files it holds, and how to name them, since a folder's files may be several splits."""
    held = _data_names(folder)
    if not held:
        inner = [p for p in sorted(folder.iterdir()) if p.is_dir() and _data_names(p)]
        if inner:  # a Hub dataset's snapshot keeps its files in data/
            return (
                f"{folder}: is a folder, and holds no data file itself; {_folder_refusal(inner[0])}"
            )
        return f"{folder}: is a folder, and holds no data file (.jsonl, .json, .csv, .parquet)"
    if len(held) == 1:
        return f"{folder}: is a folder: name its data file, {folder / held[0]}"
    shown = ", ".join(held[:5]) + (f" and {len(held) - 5} more" if len(held) > 5 else "")
    first = next((name for name in held if name.startswith("train")), held[0])
    split, shard, _ = first.partition("-")
    several = (
        f"{folder / split}-*{Path(first).suffix} in a shell"  # a split's shards
        if shard
        else " ".join(str(folder / name) for name in held[:2])
    )
    return (
        f"{folder}: is a folder: name its data files, which may be several splits (it holds "
        f"{shown}); several are read as one, as {several}"
    )


def _data_names(folder: Path) -> list[str]:
    """The names of the data files ``folder`` holds (none where it cannot be read)."""
    from finetune.dataset._sources import is_data_name

    try:
        return sorted(p.name for p in folder.iterdir() if p.is_file() and is_data_name(p.name))
    except OSError:
        return []


def shots_refusal(
    source: str, config: dict[str, Any], data: Dataset, candidate: str, indices: list[int]
) -> FinetuneError:
    """The refusal of a candidate whose ``few_shot`` train file holds evaluated examples (at
    ``indices`` of ``data``), in the config's terms: the data file's lines, ``exclude``."""
    wanted = set(indices)
    rows = [r for at, r in enumerate(data.records()) if at in wanted]
    evaluated = [Path(str(path)).expanduser() for path in listed(config["data"])]
    one_file = len(evaluated) == 1  # else a row of several data files names its own
    places = [str(r.line) if one_file else f"{r.file}:{r.line}" for r in rows]
    where = ", ".join(places[:5]) + (", ..." if len(places) > 5 else "")
    if one_file:
        where = f"lines {where} of {evaluated[0].name}"
    shots = Path(str(config["candidates"][candidate]["few_shot"]["train"])).expanduser()
    other = f', or leave them out of data with exclude = "{shots.name}"'
    if shots.resolve() in {path.resolve() for path in evaluated}:  # no data would be left
        other = ""
    return FinetuneError(
        f"{source}: candidate {candidate!r} shows {counted(len(rows), 'evaluated example')} "
        f"({where}) in its few-shot prompt, answers included, from "
        f"its few_shot train file, {shots.name}: its scores would be inflated. Give few_shot "
        f"a file without them (the training split){other}"
    )


def eval_plan(
    source: str, config: dict[str, Any]
) -> tuple[dict[str, ModelRef], dict[str, dict[str, Any]], list[Any], str | None]:
    """The candidates, their predictor options, the metrics and the baseline of an eval
    config, checked before anything is asked."""
    refuse_unknown_keys(
        source,
        config,
        _EVAL_KEYS,
        synonyms=_EVAL_SYNONYMS,
        advice="; a candidate's predictor options (max_new_tokens, temperature) go in "
        "options = { ... } under [candidates.NAME]",
    )
    if not config.get("data") or not isinstance(config.get("candidates"), dict):
        raise FinetuneError(
            f'{source}: eval needs data = "holdout.jsonl" and a [candidates] table '
            "(see finetune eval --help and docs/cli.md)"
        )
    columns = columns_setting(source, config.get("columns"))
    parsed = {
        name: eval_candidate(source, name, spec, columns=columns)
        for name, spec in config["candidates"].items()
    }
    candidates = {name: ref for name, (ref, _) in parsed.items()}
    options = {name: given for name, (_, given) in parsed.items() if given}
    judge = config.get("judge")
    # a judge alone (no metrics key) is the one metric: exact match would hold a gate of
    # open-ended answers to a score they cannot reach
    metrics = _metrics(source, config.get("metrics", [] if judge else ["exact_match"]))
    if judge is not None:
        judges = judge if isinstance(judge, list) else [judge]  # [judge], or [[judge]] tables
        metrics += [_judge_metric(source, spec) for spec in judges]
        _refuse_one_column_twice(source, metrics)
    if not metrics:
        raise FinetuneError(
            f'{source}: metrics is empty: name some, e.g. ["exact_match", "token_f1"], or '
            "add a [judge]"
        )
    baseline = config.get("baseline")
    if baseline is not None and baseline not in candidates:
        raise FinetuneError(
            f"{source}: baseline {baseline!r} is not a candidate; candidates: "
            f"{', '.join(candidates)}"
        )
    return candidates, options, metrics, baseline


def _metrics(source: str, names: Any) -> list[Any]:
    """The ready metrics an eval config names (``metrics = ["exact_match", "token_f1"]``)."""
    from finetune.evaluation.metrics import by_name

    names = [names] if isinstance(names, str) else names
    if not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
        raise FinetuneError(
            f'{source}: metrics is a list of names, e.g. ["exact_match", "token_f1"], not {names!r}'
        )
    try:
        return [by_name(name) for name in names]
    except ValueError as error:
        raise FinetuneError(f"{source}: {error}") from None


_JUDGE_KEYS = ("backend", "model", "endpoint", "options", "rubric", "name")


def _refuse_one_column_twice(source: str, metrics: list[Any]) -> None:
    names = [metric.__name__ for metric in metrics]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise FinetuneError(
            f"{source}: two metrics would fill the column {twice[0]!r}: give each [[judge]] a "
            'name of its own, as name = "tone"'
        )


def _judge_metric(source: str, spec: Any) -> Any:
    """The ``llm_judge`` metric of an eval config's ``[judge]`` table (or of one of its
    ``[[judge]]`` tables): the model that grades, described as a candidate is (``backend``,
    ``model``, ``endpoint``, ``options``), the ``rubric`` it grades against and its column's
    ``name``."""
    from finetune.evaluation._checks import made_predictor
    from finetune.evaluation.metrics import llm_judge

    table = {} if isinstance(spec, str) else spec  # "backend:model": the default rubric
    if not isinstance(table, dict):
        raise FinetuneError(
            f'{source}: judge is "backend:model", or a table, as [judge] with backend = '
            '"openai", model = ... and rubric = "...", or a list of them ([[judge]]), not '
            f"{spec!r}"
        )
    refuse_unknown_keys(source, table, _JUDGE_KEYS, "[judge]")
    rubric = table.get("rubric", _DEFAULT_RUBRIC)
    if not isinstance(rubric, str) or not rubric.strip():
        raise FinetuneError(
            f'{source}: [judge] rubric is what a good answer does, as "Is the answer correct '
            f'and polite?", not {rubric!r}'
        )
    name = table.get("name", "llm_judge")
    if not isinstance(name, str) or not name.strip():
        raise FinetuneError(f'{source}: [judge] name is its column, as "tone", not {name!r}')
    described: Any = {key: value for key, value in table.items() if key not in ("rubric", "name")}
    if isinstance(spec, str):
        described = spec  # read as a candidate's text is
    model, options = eval_candidate(source, "judge", described, table="[judge]")
    grader = made_predictor(model, options, f"{source}: [judge] options", f"{source}: [judge]")
    return llm_judge(grader, rubric, name=name)


_DEFAULT_RUBRIC = "Is the answer correct and complete?"


def eval_max_concurrency(source: str, config: dict[str, Any]) -> int:
    """An eval config's ``max_concurrency`` (8 when not given), a whole number of 1 or more."""
    value = config.get("max_concurrency", 8)
    if not is_whole(value) or value < 1:
        raise FinetuneError(
            f"{source}: max_concurrency is a whole number of 1 or more, not {value!r}"
        )
    return int(value)
