"""A Hugging Face checkpoint (or a LoRA adapter) written as one GGUF file, with ``gguf``'s
writer and tensor-name map: no compiler, no llama.cpp checkout.

Supported: the Llama family as llama.cpp names it (``LlamaForCausalLM``,
``MistralForCausalLM``) with a byte-level BPE tokenizer (SmolLM, Llama 3, Mistral's tekken
style, most recent models). The query and key projections are stored in llama.cpp's rotary
layout (each head's two halves interleaved), as its own converter and transformers' GGUF
reader expect.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from finetune._errors import FinetuneError, MissingDependency
from finetune._progress import to_a_log

log = logging.getLogger("finetune")

__all__ = ["ARCHITECTURES", "QUANTIZATIONS", "job_behind", "write_adapter_gguf", "write_gguf"]

ARCHITECTURES = ("LlamaForCausalLM", "MistralForCausalLM")
"""The architectures GGUF export writes: Llama's and Mistral's (SmolLM2 is a Llama)."""
QUANTIZATIONS = ("f32", "f16", "bf16", "q8_0")
"""The GGUF quantizations export writes itself, with no llama.cpp."""
_FILE_TYPES = {"f32": "ALL_F32", "f16": "MOSTLY_F16", "bf16": "MOSTLY_BF16", "q8_0": "MOSTLY_Q8_0"}


class ExportError(FinetuneError):
    """The model cannot be written in the asked format (its architecture, its tokenizer)."""


def _gguf() -> Any:
    try:
        import gguf
    except ImportError as exc:
        raise MissingDependency("gguf", "hf", purpose="to export GGUF files") from exc
    return gguf


PROMPT_FORMAT_KEY = "finetune.prompt_format"
"""Our key in a GGUF's metadata: ``plain`` where the model trained on prompt/completion text,
so a prompt is its text in no chat format (runtimes pass over keys they do not know; our
conversion of the file keeps it in its copy's ``finetune-source.json``)."""
EXPORTER_KEY = "finetune.exporter"  # in every file written here: what a later export may replace
JOB_KEY = "finetune.job"
"""Our key for the local job that trained the model (its id, no path): ``ft.evaluate`` finds
the rows it trained on in the job registry, to note scores on them."""


def job_behind(model: str | os.PathLike[str]) -> str | None:
    """The id of the local job that trained ``model``: a GGUF file our export wrote names it
    in its metadata (``JOB_KEY``), a folder in its job's config or its export's marker;
    ``None`` for anything else, a file that cannot be read included."""
    from finetune.backends.hf._jobdir import job_id_behind
    from finetune.export._gguf_header import GGUFHeaderError, string_fields

    path = Path(model).expanduser()
    if path.is_dir():
        return job_id_behind(path)
    if path.suffix.lower() != ".gguf" or not path.is_file():
        return None
    try:
        return string_fields(path, JOB_KEY)[JOB_KEY]
    except (GGUFHeaderError, OSError) as exc:
        log.debug("no job named in %s: %s", path, exc)
        return None


def _config(folder: Path) -> dict[str, Any]:
    config: dict[str, Any] = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    architecture = (config.get("architectures") or ["?"])[0]
    if architecture not in ARCHITECTURES:
        raise ExportError(
            f"cannot write {architecture} as GGUF: this exporter writes {', '.join(ARCHITECTURES)} "
            "(export format='merged' and convert it with llama.cpp's convert_hf_to_gguf.py)"
        )
    rope = config.get("rope_parameters") or config.get("rope_scaling") or {}
    if rope.get("rope_type", rope.get("type", "default")) not in ("default", None):
        raise ExportError(f"cannot write RoPE scaling {rope.get('rope_type')!r} as GGUF yet")
    return config


def _rope_theta(config: dict[str, Any]) -> float:
    rope = config.get("rope_parameters") or {}
    return float(rope.get("rope_theta") or config.get("rope_theta") or 10000.0)


def _head_dim(config: dict[str, Any]) -> int:
    return int(config.get("head_dim") or config["hidden_size"] // config["num_attention_heads"])


def to_rotary_layout(weight: Any, heads: int) -> Any:
    """Rows of a q/k projection (or a LoRA B) reordered into llama.cpp's rotary layout."""
    rows = weight.shape[0]
    rest = weight.shape[1:]
    halves = weight.reshape(heads, 2, rows // heads // 2, *rest)
    return halves.swapaxes(1, 2).reshape(weight.shape)


def _weights(folder: Path) -> Iterator[tuple[str, Any]]:
    """Every tensor of the checkpoint as a float32 numpy array."""
    from safetensors import safe_open

    files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise ExportError(f"no safetensors weights in {folder}")
    for file in files:
        with safe_open(str(file), "pt") as weights:
            for name in weights.keys():  # noqa: SIM118 - safe_open is not a mapping
                yield name, weights.get_tensor(name).float().numpy()


def _encode(gguf: Any, data: Any, quantization: str) -> tuple[Any, Any]:
    """The array to store and its GGML type: vectors stay f32, matrices as asked."""
    types = gguf.GGMLQuantizationType
    if data.ndim == 1 or quantization == "f32":
        return data, types.F32
    if quantization == "f16" or (quantization == "q8_0" and data.shape[-1] % 32):
        return data.astype("float16"), types.F16
    qtype = types.BF16 if quantization == "bf16" else types.Q8_0
    return gguf.quants.quantize(data, qtype), qtype


def write_gguf(
    folder: str | os.PathLike[str],
    dest: str | os.PathLike[str],
    *,
    quantization: str = "f16",
    name: str,
    origin: str | os.PathLike[str] | None = None,
    progress: Callable[[str], Any] | None = None,
    plain: bool = False,
    job: str | None = None,
) -> Path:
    """Write the checkpoint in ``folder`` as the GGUF file ``dest`` (temp file + rename).

    ``origin`` is the base model's folder when it differs (a merged adapter): a base converted
    from a GGUF file passes on that file's pre-tokenizer name. ``plain``: the model trained on
    prompt/completion text, which the file says under ``PROMPT_FORMAT_KEY``; ``job``: the
    local job that trained it, under ``JOB_KEY``."""
    gguf = _gguf()
    if quantization not in QUANTIZATIONS:
        raise ExportError(f"quantization {quantization!r}: use one of {', '.join(QUANTIZATIONS)}")
    source = Path(folder)
    config = _config(source)
    target = Path(dest)
    writer = gguf.GGUFWriter(None, "llama")
    _model_metadata(gguf, writer, config, name, quantization)
    _tokenizer_metadata(gguf, writer, source, int(config["vocab_size"]), Path(origin or source))
    if plain:
        writer.add_string(PROMPT_FORMAT_KEY, "plain")
    if job:
        writer.add_string(JOB_KEY, job)
    names = gguf.TensorNameMap(gguf.MODEL_ARCH.LLAMA, int(config["num_hidden_layers"]))
    tied = bool(config.get("tie_word_embeddings"))
    for hf_name, data in _weights(source):
        if tied and hf_name == "lm_head.weight":
            continue
        writer.add_tensor(*_tensor(gguf, names, hf_name, data, config, quantization))
    return _finish(writer, target, progress)


def _tensor(
    gguf: Any, names: Any, hf_name: str, data: Any, config: dict[str, Any], quantization: str
) -> tuple[str, Any, Any, Any]:
    gguf_name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
    if gguf_name is None:
        raise ExportError(f"tensor {hf_name} has no GGUF name in the llama layout")
    if hf_name.endswith("q_proj.weight"):
        data = to_rotary_layout(data, int(config["num_attention_heads"]))
    elif hf_name.endswith("k_proj.weight"):
        heads = config.get("num_key_value_heads") or config["num_attention_heads"]
        data = to_rotary_layout(data, int(heads))
    stored, qtype = _encode(gguf, data, quantization)
    return gguf_name, stored, None, qtype


def _finish(writer: Any, target: Path, progress: Callable[[str], Any] | None) -> Path:
    from finetune import __version__
    from finetune.dataset._atomic import temp_beside

    writer.add_string(EXPORTER_KEY, f"finetune {__version__}")
    staging = temp_beside(target)  # this export's own: two at once never write one file
    try:
        writer.write_header_to_file(staging)
        writer.write_kv_data_to_file()
        if progress is not None:
            progress(f"writing {len(writer.tensors[0])} tensors to {target.name}")
        # gguf's own tqdm bar redraws in place: in a log (CI, a file) the line above says it
        writer.write_tensors_to_file(progress=progress is not None and not to_a_log())
        writer.close()
        staging.replace(target)
    except BaseException:
        writer.close()
        staging.unlink(missing_ok=True)
        raise
    return target


def written_here(path: Path) -> bool:
    """Whether ``path`` is a GGUF file an export of ours wrote (``EXPORTER_KEY``)."""
    from finetune.export._gguf_header import GGUFHeaderError, string_fields

    try:
        return string_fields(path, EXPORTER_KEY)[EXPORTER_KEY] is not None
    except (GGUFHeaderError, OSError):  # not a GGUF file, or one cut short
        return False


def _model_metadata(
    gguf: Any, writer: Any, config: dict[str, Any], name: str, quantization: str
) -> None:
    writer.add_type("model")
    writer.add_name(name)
    writer.add_context_length(int(config.get("max_position_embeddings") or 2048))
    writer.add_embedding_length(int(config["hidden_size"]))
    writer.add_block_count(int(config["num_hidden_layers"]))
    writer.add_feed_forward_length(int(config["intermediate_size"]))
    writer.add_head_count(int(config["num_attention_heads"]))
    kv_heads = config.get("num_key_value_heads") or config["num_attention_heads"]
    writer.add_head_count_kv(int(kv_heads))
    writer.add_rope_dimension_count(_head_dim(config))
    writer.add_rope_freq_base(_rope_theta(config))
    writer.add_layer_norm_rms_eps(float(config.get("rms_norm_eps") or 1e-6))
    writer.add_vocab_size(int(config["vocab_size"]))
    writer.add_file_type(int(getattr(gguf.LlamaFileType, _FILE_TYPES[quantization])))
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)


def _pre_tokenizer(tokenizer_json: dict[str, Any], folder: Path) -> str:
    """llama.cpp's name for how the text is split before BPE (it refuses unknown names)."""
    from finetune.backends.hf._models import SOURCE_MARKER

    marker = folder / SOURCE_MARKER
    if marker.exists():  # converted from a GGUF file: keep what that file said
        original = json.loads(marker.read_text()).get("tokenizer_pre")
        if original:
            return str(original)
    pre = tokenizer_json.get("pre_tokenizer") or {}
    parts = pre.get("pretokenizers", [pre]) if pre.get("type") == "Sequence" else [pre]
    kinds = [part.get("type") for part in parts]
    if kinds == ["Digits", "ByteLevel"] and parts[0].get("individual_digits"):
        return "smollm"
    return "gpt2"


def _tokenizer_metadata(
    gguf: Any, writer: Any, folder: Path, vocab_size: int, origin: Path
) -> None:
    from transformers import AutoTokenizer

    tokenizer_json = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))
    model = tokenizer_json.get("model") or {}
    if model.get("type") != "BPE" or "ByteLevel" not in json.dumps(tokenizer_json["decoder"]):
        raise ExportError("only byte-level BPE tokenizers can be written as GGUF here")
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    by_id = {index: token for token, index in model["vocab"].items()}
    added = {entry["id"]: entry for entry in tokenizer_json.get("added_tokens", [])}
    tokens, types = [], []
    for index in range(vocab_size):
        entry = added.get(index)
        token = entry["content"] if entry else by_id.get(index, f"[PAD{index}]")
        tokens.append(token)
        if entry:
            types.append(
                gguf.TokenType.CONTROL if entry["special"] else gguf.TokenType.USER_DEFINED
            )
        else:
            types.append(gguf.TokenType.NORMAL if index in by_id else gguf.TokenType.UNUSED)
    merges = [m if isinstance(m, str) else " ".join(m) for m in model.get("merges", [])]
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(_pre_tokenizer(tokenizer_json, origin))
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(merges)
    _special_ids(writer, tokenizer)
    if tokenizer.chat_template:
        writer.add_chat_template(tokenizer.chat_template)


def _special_ids(writer: Any, tokenizer: Any) -> None:
    ids = {
        "bos": tokenizer.bos_token_id,
        "eos": tokenizer.eos_token_id,
        "unk": tokenizer.unk_token_id,
        "pad": tokenizer.pad_token_id,
    }
    adders = {
        "bos": writer.add_bos_token_id,
        "eos": writer.add_eos_token_id,
        "unk": writer.add_unk_token_id,
        "pad": writer.add_pad_token_id,
    }
    for role, index in ids.items():
        if index is not None:
            adders[role](int(index))
    from finetune.export._ollama import end_of_turn

    stop = end_of_turn(tokenizer)
    if stop is not None and stop in tokenizer.get_vocab():
        writer.add_eot_token_id(int(tokenizer.convert_tokens_to_ids(stop)))
    probe = tokenizer("a")["input_ids"]
    writer.add_add_bos_token(bool(probe) and probe[0] == tokenizer.bos_token_id)
    writer.add_add_eos_token(False)


def write_adapter_gguf(
    adapter: str | os.PathLike[str],
    base: str | os.PathLike[str],
    dest: str | os.PathLike[str],
    *,
    name: str,
    progress: Callable[[str], Any] | None = None,
) -> Path:
    """A LoRA adapter alone as GGUF (llama.cpp's adapter layout: ``<tensor>.lora_a`` and
    ``.lora_b``, ``adapter.lora.alpha``), for Ollama's ``ADAPTER`` line next to ``FROM`` base."""
    gguf = _gguf()
    config = _config(Path(base))
    settings = json.loads(Path(adapter, "adapter_config.json").read_text(encoding="utf-8"))
    writer = gguf.GGUFWriter(None, "llama")
    writer.add_type("adapter")
    writer.add_name(name)
    writer.add_string("adapter.type", "lora")
    writer.add_float32("adapter.lora.alpha", float(settings.get("lora_alpha") or settings["r"]))
    names = gguf.TensorNameMap(gguf.MODEL_ARCH.LLAMA, int(config["num_hidden_layers"]))
    for peft_name, data in _weights(Path(adapter)):
        writer.add_tensor(*_adapter_tensor(gguf, names, peft_name, data, config))
    return _finish(writer, Path(dest), progress)


def _adapter_tensor(
    gguf: Any, names: Any, peft_name: str, data: Any, config: dict[str, Any]
) -> tuple[str, Any, Any, Any]:
    module, _, part = peft_name.removeprefix("base_model.model.").rpartition(".lora_")
    side = part.split(".")[0].lower()  # "a" or "b"
    gguf_name = names.get_name(module + ".weight", try_suffixes=(".weight",))
    if gguf_name is None or side not in ("a", "b"):
        raise ExportError(f"adapter tensor {peft_name} has no GGUF name in the llama layout")
    if side == "b" and module.endswith("q_proj"):
        data = to_rotary_layout(data, int(config["num_attention_heads"]))
    elif side == "b" and module.endswith("k_proj"):
        heads = config.get("num_key_value_heads") or config["num_attention_heads"]
        data = to_rotary_layout(data, int(heads))
    return f"{gguf_name}.lora_{side}", data, None, gguf.GGMLQuantizationType.F32
