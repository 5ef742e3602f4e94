"""Ship a locally tuned model: merged weights, one GGUF file, a GGUF LoRA adapter, or an
Ollama folder. ``job.model.export(dest, format=...)`` or ``finetune export JOB --format ...``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from finetune._errors import StorageError, UnsupportedFeature, require_installed
from finetune._namespace import PublicNames, public_names
from finetune._paths import check_writable, file_in_the_way, no_room, room_left
from finetune._progress import stderr_open
from finetune._words import command_line, counted, size
from finetune.backends.hf._merge import adapter_base, is_adapter
from finetune.dataset import atomic_folder, atomic_write
from finetune.export._gguf import ARCHITECTURES, QUANTIZATIONS, ExportError
from finetune.export._ollama import ollama_name_problem

__all__ = [
    "ARCHITECTURES",
    "FORMATS",
    "QUANTIZATIONS",
    "ExportError",
    "ExportResult",
    "default_quantization",
    "export_model",
]
__dir__: PublicNames = public_names(__name__)

FORMATS = ("merged", "gguf", "gguf-adapter", "ollama")
"""What ``export_model`` writes: a merged Transformers folder, a GGUF file, a GGUF LoRA
adapter, or a GGUF file with an Ollama Modelfile."""
MARKER = "finetune_export.json"  # in a merged folder: what may be replaced by the next export
_SMALL = 1_000_000_000  # parameters under which quantizing changes too many greedy answers


@dataclass
class ExportResult:
    """What an export wrote, and how long it took."""

    format: str
    path: Path
    files: list[Path] = field(default_factory=list)
    quantization: str | None = None
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def bytes(self) -> int:
        """The size of everything written."""
        return sum(f.stat().st_size for f in self.files if f.exists())

    def __str__(self) -> str:
        what = f"{self.format} ({self.quantization})" if self.quantization else self.format
        return f"{what} -> {self.path} ({size(self.bytes)}, {self.seconds:.1f} s)"


def _named(model: Any) -> tuple[str, str]:
    """What a ``ModelRef`` (or a path) names, and the backend it is of."""
    if isinstance(model, (str, os.PathLike)):  # a Path's own .name is its last part
        return os.fspath(model), "hf"
    return str(getattr(model, "name", model)), getattr(model, "backend", "hf")


def _folder_of(model: Any) -> Path:
    """The local folder a ``ModelRef`` (or a path) names."""
    name, backend = _named(model)
    if backend not in ("hf", "gguf") or not Path(name).expanduser().exists():
        raise UnsupportedFeature(
            f"export works on local models (Tuner('hf') jobs, folders); {backend!r} keeps the "
            "weights on the provider's side"
        )
    from finetune.backends.hf._models import resolve

    folder = Path(resolve(str(_model_of_job(Path(name).expanduser()))).path)
    if not (folder / "config.json").is_file() and not is_adapter(folder):
        raise ExportError(
            f"{name}: not a model: export takes a model folder (config.json), a LoRA adapter "
            "folder (adapter_config.json), a GGUF file or a local job's model"
        )
    return folder


def _model_of_job(folder: Path) -> Path:
    """The model a local job's folder holds (its ``config.json`` is the job's, not a
    model's); any other folder as it is."""
    from finetune.backends.hf._jobdir import local_job_at

    job = local_job_at(folder)
    if job is None:
        return folder
    if not job.fine_tuned_model:
        raise ExportError(f"{folder}: a local job that is {job.status.value}: no model to export")
    return Path(job.fine_tuned_model)


def _parameters(folder: Path) -> int:
    from finetune.demo._model import _parameter_count

    return _parameter_count(folder)


def default_quantization(folder: str | os.PathLike[str]) -> str:
    """f16 for models under 1B parameters (q8_0 and 4-bit change a 135M model's greedy answers,
    measured), q8_0 above (half the size, answers within its tolerance)."""
    return "f16" if _parameters(Path(folder)) < _SMALL else "q8_0"


def _job_config(folder: Path) -> dict[str, Any]:
    """The config of the local job whose model or merged model ``folder`` is; empty for any
    other folder (a checkpoint keeps its own name)."""
    from finetune.backends.hf._jobdir import job_config_of

    if folder.name not in ("model", "merged"):
        return {}
    return job_config_of(folder) or {}


def _refuse_untrusted(folder: Path, exc: ValueError) -> None:
    from finetune.backends.hf._inputs import needs_trust

    if needs_trust(exc):
        raise ExportError(
            f"{folder}: its base model ships its own code, which transformers runs only with "
            "trust_remote_code=True, and no local job recorded that you allowed it: export "
            "it from the job that trained it with trust_remote_code=True (its folder, or "
            "job.model)"
        ) from None


def _default_name(folder: Path, given: Path | None) -> str:
    """A job's model is named after its job; a GGUF file after the job its metadata names,
    else after itself (not the folder it was converted to); any other folder by its name."""
    from finetune.backends.hf._jobdir import job_id_behind

    job = _job_config(folder).get("job_id")
    if job:
        return str(job)
    if given is not None:
        return job_id_behind(folder) or given.stem
    return folder.name


def _given_file(model: Any) -> Path | None:
    """The GGUF file ``model`` names, as given; ``None`` for a folder or a job."""
    path = Path(_named(model)[0]).expanduser()
    return path if path.is_file() else None


def _beside_its_source(given: Path, dest: Path, name: str, quantization: str) -> str:
    """The default ``name`` of a GGUF file exported again: a tensor type its name states
    is the new one (``SmolLM2.Q4_1`` written in f16: ``SmolLM2.F16``), and where it would
    then write over itself, in its own folder, ``NAME-QUANTIZATION`` (``support-q8_0``)."""
    name = _STATED_TYPE.sub(lambda found: found[1] + _as_stated(quantization, found[2]), name)
    path = _gguf_path(dest, name)
    if path != dest and path.exists() and path.samefile(given):  # the name chose the path
        return f"{name}-{quantization}"
    return name


_STATED_TYPE = re.compile(r"([.-])(i?q\d\w*|b?f16|f32)$", re.IGNORECASE)  # .Q4_K_M, -f16


def _as_stated(quantization: str, stated: str) -> str:
    """``quantization`` in the case the name wrote its tensor type in (``Q8_0``, ``q8_0``)."""
    return quantization if stated == stated.lower() else quantization.upper()


def system_prompts(folder: Path) -> set[str]:
    """The system prompts the job's training examples had (``""`` for an example without
    one), as far as two differ; none when its training file is gone."""
    from finetune.export._ollama import system_of

    path = _job_config(folder).get("training_file")
    if not path or not Path(path).exists():
        return set()
    seen: set[str] = set()
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if not line.strip():
                continue
            seen.add(system_of(json.loads(line)))
            if len(seen) > 1:
                break
    return seen


def _quiet(_: str) -> None:
    """What an export without ``progress`` says: nothing (and no progress bar)."""


def _gguf_bar(tell: Any) -> Any:
    """What the GGUF writer reports to: ``tell`` when progress is asked and stderr can show
    its bar, else nothing."""
    return None if tell is _quiet or not stderr_open() else tell


def export_model(
    model: Any,
    dest: str | os.PathLike[str],
    *,
    format: str = "gguf",
    quantization: str | None = None,
    name: str | None = None,
    create: bool | str = False,
    say: Callable[[str], Any] | None = None,
) -> ExportResult:
    """Write ``model`` (a local ``ModelRef`` or folder: a full model or a LoRA adapter) to
    ``dest`` in ``format``: ``merged`` (a folder), ``gguf`` (a file, or ``dest/NAME.gguf``),
    ``gguf-adapter`` (the LoRA alone) or ``ollama`` (a folder with the GGUF and a Modelfile;
    ``create=True`` or a name also runs ``ollama create``)."""
    format = _one_of("format", format, FORMATS)
    if quantization is not None:  # checked before a merge that may take minutes
        quantization = _one_of("quantization", quantization, QUANTIZATIONS)
    if quantization is not None and format not in ("gguf", "ollama"):  # else silently unused
        raise ExportError(f"quantization is for format 'gguf' or 'ollama'; {format!r} has none")
    if create and format != "ollama":
        raise ExportError(f"create runs `ollama create`, for format 'ollama', not {format!r}")
    if isinstance(create, str) and (problem := ollama_name_problem(create)):
        raise ExportError(problem)
    started = time.perf_counter()
    target = Path(dest).expanduser()
    check_writable(target)  # else found after a merge or a conversion of minutes
    folder = _folder_of(model)
    if format == "gguf-adapter" and not is_adapter(folder):  # named as given, not as cached
        raise ExportError(
            f"{_named(model)[0]} is a full model, not a LoRA adapter; use format='gguf'"
        )
    _require_packages(format, folder)
    given = _given_file(model)
    chosen = name or _default_name(folder, given)
    if name is None and given is not None and format == "gguf":
        chosen = _beside_its_source(
            given, target, chosen, quantization or default_quantization(folder)
        )
    tell = say or _quiet
    writer = {
        "merged": _merged,
        "gguf": _gguf_file,
        "gguf-adapter": _adapter_file,
        "ollama": _ollama_folder,
    }[format]
    try:
        result = writer(folder, target, quantization, chosen, create, tell)
    except OSError as exc:  # a full disk, a quota, a read-only or vanished folder
        raise _not_written(exc, target, format) from None
    result.seconds = time.perf_counter() - started
    tell(f"exported {result}")
    return result


def _require_packages(format: str, folder: Path) -> None:
    """Refuse at once, naming the extra, where a package the export needs is absent: before
    a merge of minutes, and rather than a traceback midway."""
    adapter = is_adapter(folder)
    if adapter and format != "gguf-adapter":  # merged first
        merging = ["torch", "transformers", "peft"]
        require_installed(merging, "hf", purpose="to merge a LoRA adapter")
    needed = []
    if format in ("gguf", "ollama"):
        needed = ["gguf", "safetensors", "torch", "transformers"]  # tensors, tokenizer
    elif format == "gguf-adapter":  # a full model was refused for what it is
        needed = ["gguf", "safetensors", "torch"]
    purpose = "to export for Ollama" if format == "ollama" else "to export GGUF files"
    require_installed(needed, "hf", purpose=purpose)


def _one_of(setting: str, given: object, choices: tuple[str, ...]) -> str:
    """``given`` as one of ``choices``, in any case (llama.cpp writes ``Q8_0``)."""
    if isinstance(given, str) and given.lower() in choices:
        return given.lower()
    raise ExportError(f"{setting} {given!r}: use one of {', '.join(choices)}")


def _not_written(exc: OSError, dest: Path, format: str) -> StorageError:
    """The export's ``OSError`` (or ``shutil.Error``, a list of them) as one line saying what
    failed, how much room is left there (a short write names no reason: "32768 requested
    and 26128 written"), and what to do."""
    copied = isinstance(exc, shutil.Error) and exc.args and isinstance(exc.args[0], list)
    # shutil.Error holds a list of (source, copy, why): the first file's reason, not its paths
    why = str(exc.args[0][0][2]).split(": '")[0] if copied else exc.strerror or str(exc)
    full = copied or exc.errno is None or no_room(exc)  # no errno: a short write
    if blocking := file_in_the_way(dest):
        why, full = f"{why}: {blocking} is a file, not a folder", False
    return StorageError(
        f"the {format} export to {dest} could not be written ({why}"
        f"{room_left(dest) if full else ''}); nothing was left in its place: "
        f"{'free disk space, or ' if full else ''}give another destination"
    )


def _merged(
    folder: Path, dest: Path, quantization: str | None, name: str, create: Any, tell: Any
) -> ExportResult:
    from finetune.backends.hf._jobdir import trusted_by_its_job
    from finetune.backends.hf._merge import write_merged

    _check_replaceable(dest)
    with atomic_folder(dest) as staging:
        if is_adapter(folder):
            tell("merging the LoRA adapter into its base (at the base's stored precision)")
            try:
                write_merged(folder, staging, trust_remote_code=trusted_by_its_job(folder))
            except ValueError as exc:
                _refuse_untrusted(folder, exc)
                raise
        else:
            shutil.copytree(folder, staging, ignore=shutil.ignore_patterns("training_args.bin"))
        # marked before the swap: a folder in place is always known as our own export
        (staging / MARKER).write_text(json.dumps({"format": "merged", "from": str(folder)}))
    return ExportResult("merged", dest, sorted(p for p in dest.iterdir() if p.is_file()))


def _refuse_a_file(dest: Path, format: str) -> None:
    """A folder export to a file, or to a new path named like one (``m.gguf``, where
    ``format='gguf'`` was meant), is refused before any work."""
    if dest.is_file() or (dest.suffix.lower() == ".gguf" and not dest.is_dir()):
        what = "is a file" if dest.is_file() else "names a GGUF file"
        raise ExportError(
            f"{dest} {what}; a {format} export is a folder: give a folder path, or "
            "format='gguf' for one GGUF file"
        )


def _check_replaceable(dest: Path) -> None:
    """A merged export replaces its folder whole: refuse, before any work, a file or a folder
    holding anything but an earlier merged export, so that nothing of the user's is deleted."""
    _refuse_a_file(dest, "merged")
    if not dest.is_dir() or (dest / MARKER).is_file():
        return
    held = sorted(entry.name for entry in dest.iterdir())
    if held:
        raise ExportError(
            f"{dest} holds {counted(len(held), 'item')} ({', '.join(held[:3])}"
            f"{', ...' if len(held) > 3 else ''}); a merged export replaces its folder whole, "
            "so it writes only to a new or empty folder, or over an earlier merged export: "
            f"give a new path, such as {dest / 'merged'}"
        )


def _gguf_target(dest: Path, name: str) -> Path:
    """The GGUF file an export writes (``dest``, or ``dest/NAME.gguf``), refused before any
    work where a file is there that no export of ours wrote (a base model, say)."""
    from finetune.export._gguf import written_here

    target = _gguf_path(dest, name)
    if target.is_dir() or (target.exists() and not written_here(target)):
        raise _not_ours(target, "path")
    return target


def _gguf_path(dest: Path, name: str) -> Path:
    """``dest`` where it names a GGUF file, else ``dest/NAME.gguf``."""
    return dest if dest.suffix.lower() == ".gguf" else dest / f"{name}.gguf"


def _not_ours(path: Path, other: str) -> ExportError:
    """The refusal to replace what stands at ``path``: no export of ours wrote it."""
    return ExportError(
        f"{path} is there already and no export of finetune's wrote it (a model of yours, "
        f"perhaps): give another {other}, or remove it first to replace it"
    )


def _gguf_file(
    folder: Path, dest: Path, quantization: str | None, name: str, create: Any, tell: Any
) -> ExportResult:
    from finetune.backends.hf._jobdir import job_id_behind, trained_on_completions
    from finetune.export._gguf import write_gguf

    target = _gguf_target(dest, name)
    with tempfile.TemporaryDirectory(dir=target.parent if target.parent.exists() else None) as tmp:
        source = folder
        if is_adapter(folder):
            clock = time.perf_counter()
            source = _merged(folder, Path(tmp) / "merged", None, name, False, tell).path
            tell(f"merged in {time.perf_counter() - clock:.1f} s")
        chosen = quantization or default_quantization(source)
        if quantization is None and chosen == "f16":
            tell("f16: under 1B parameters, q8_0 and 4-bit change greedy answers (docs/export.md)")
        if chosen not in QUANTIZATIONS:
            raise ExportError(f"quantization {chosen!r}: use one of {', '.join(QUANTIZATIONS)}")
        clock = time.perf_counter()
        write_gguf(
            source,
            target,
            quantization=chosen,
            name=name,
            origin=_origin(folder),
            progress=_gguf_bar(tell),
            plain=trained_on_completions(folder),
            job=job_id_behind(folder),
        )
        tell(f"wrote {target.name} in {time.perf_counter() - clock:.1f} s")
    return ExportResult("gguf", target, [target], chosen)


def _origin(folder: Path) -> Path:
    """The base model a tuned folder came from (its GGUF conversion notes live there)."""
    if is_adapter(folder):
        return Path(adapter_base(folder))
    base = _job_config(folder).get("base_model")
    return Path(base) if base and Path(base).is_dir() else folder


def _adapter_file(
    folder: Path, dest: Path, quantization: str | None, name: str, create: Any, tell: Any
) -> ExportResult:
    from finetune.export._gguf import write_adapter_gguf

    target = _gguf_target(dest, f"{name}-lora")
    write_adapter_gguf(folder, adapter_base(folder), target, name=name, progress=_gguf_bar(tell))
    return ExportResult("gguf-adapter", target, [target], "f32")


def _ollama_folder(
    folder: Path, dest: Path, quantization: str | None, name: str, create: Any, tell: Any
) -> ExportResult:
    from finetune.export._ollama import create_model

    _refuse_a_file(dest, "ollama")
    _refuse_a_modelfile_of_another(dest)
    made = not dest.exists()
    dest.mkdir(parents=True, exist_ok=True)
    try:
        result = _fill_ollama_folder(folder, dest, quantization, name, tell)
    except BaseException:
        if made:  # no empty or half-filled folder of ours is left where the user looks
            shutil.rmtree(dest, ignore_errors=True)
        raise
    if create:  # the folder stays whatever this gives: its error says what to run there
        tag = create if isinstance(create, str) else _ollama_name(name)
        tell(command_line("ollama", "create", tag, "-f", "Modelfile"))
        result.notes.append(create_model(dest, tag).strip() or f"created {tag}")
    return result


def _refuse_a_modelfile_of_another(dest: Path) -> None:
    """A ``Modelfile`` is replaced only beside the ``model.gguf`` of an earlier export of ours:
    any other (a model of the user's, on another base) is refused before any work."""
    from finetune.export._gguf import written_here

    if (dest / "Modelfile").exists() and not written_here(dest / "model.gguf"):
        raise _not_ours(dest / "Modelfile", "folder")


def _fill_ollama_folder(
    folder: Path, dest: Path, quantization: str | None, name: str, tell: Any
) -> ExportResult:
    from transformers import AutoTokenizer

    from finetune.backends.hf._jobdir import trained_on_completions
    from finetune.export._ollama import (
        UNQUOTABLE_SYSTEM,
        family_of,
        modelfile,
        quotable,
        trained_system_prompt,
    )

    model = _gguf_file(folder, dest / "model.gguf", quantization, name, False, tell)
    if trained_on_completions(folder):
        text = modelfile("model.gguf", None, None, plain=True)
        notes = ["trained on prompt/completion text: TEMPLATE sends a prompt as it is"]
    else:
        tokenizer = AutoTokenizer.from_pretrained(str(folder))
        family = family_of(tokenizer)
        system = trained_system_prompt(system_prompts(folder), tokenizer)
        text = modelfile("model.gguf", family, system)
        notes = [] if family else ["chat format not recognised: no TEMPLATE, Ollama detects it"]
        if system and not quotable(system):
            notes.append(UNQUOTABLE_SYSTEM)
    with atomic_write(dest / "Modelfile") as handle:
        handle.write(text.encode("utf-8"))
    result = ExportResult("ollama", dest, [model.path, dest / "Modelfile"], model.quantization)
    result.notes = notes
    return result


def _ollama_name(name: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "._-" else "-" for c in name.lower())
    return cleaned.strip("-.") or "finetuned"
