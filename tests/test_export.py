"""Export of local models: merged folders, GGUF files read back, LoRA GGUF, Ollama folders."""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
import shutil
import stat
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import finetune as ft
from finetune.cli import main as cli_main

pytestmark = pytest.mark.hf
pytest.importorskip("trl")
gguf = pytest.importorskip("gguf")

# the largest last-token logit difference allowed between the tuned model and its GGUF, per
# tensor type (docs/export.md has the figures measured on SmolLM2)
TOLERANCE = {"f32": 1e-4, "f16": 0.05, "bf16": 0.5, "q8_0": 1.0}


@pytest.fixture(scope="module")
def lora_registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The job registry ``lora_tiny``'s fit recorded its job and training rows in."""
    return tmp_path_factory.mktemp("lora-registry") / "registry.sqlite3"


@pytest.fixture(scope="module")
def lora_tiny(
    tmp_path_factory: pytest.TempPathFactory, tiny_base: str, rows: list[Any], lora_registry: Path
) -> str:
    """A LoRA adapter on the tiny base, trained through Tuner("hf") (folder of the adapter)."""
    from finetune.backends.hf import HFBackend

    backend = HFBackend(jobs_dir=tmp_path_factory.mktemp("lora-jobs"))
    tuner = ft.Tuner(backend, model=tiny_base, registry=lora_registry)
    job = tuner.fit(
        ft.Dataset.from_records(rows[:64]),
        hyperparameters=ft.Hyperparameters(epochs=2, batch_size=16, learning_rate=5e-3),
        options={"max_length": 128, "save_total_limit": 1},
    )
    job.wait(poll_interval=0.3, timeout=240)
    assert job.job.status is ft.JobStatus.SUCCEEDED, backend.worker_log(job.id)
    return job.model.name


def _prompts(rows: list[Any]) -> list[list[dict[str, str]]]:
    return [row["messages"][:2] for row in rows[300:305]]


def _last_logits(model: Any, tokenizer: Any, prompt: list[dict[str, str]]) -> Any:
    import torch

    ids = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, return_tensors="pt")
    ids = ids["input_ids"] if hasattr(ids, "keys") else ids
    with torch.no_grad():
        return model(ids).logits[0, -1], model.generate(ids, max_new_tokens=12, do_sample=False)


def assert_same_model(folder: str, gguf_file: Path, rows: list[Any], tolerance: float) -> None:
    """The GGUF, loaded by transformers, tokenizes, scores and answers as the folder does."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    kwargs = {"gguf_file": gguf_file.name}
    back_tokenizer = AutoTokenizer.from_pretrained(str(gguf_file.parent), **kwargs)
    back = AutoModelForCausalLM.from_pretrained(str(gguf_file.parent), **kwargs).eval()
    for prompt in _prompts(rows):
        ours = tokenizer.apply_chat_template(prompt, add_generation_prompt=True)
        assert back_tokenizer.apply_chat_template(prompt, add_generation_prompt=True) == ours
        logits, answer = _last_logits(model, tokenizer, prompt)
        back_logits, back_answer = _last_logits(back, tokenizer, prompt)
        assert (logits - back_logits).abs().max().item() < tolerance
        if tolerance <= TOLERANCE["f16"]:
            assert back_answer.tolist() == answer.tolist()


@pytest.mark.parametrize("quantization", ["f32", "f16", "q8_0"])
def test_a_full_model_round_trips_through_gguf(
    tmp_path: Path, tuned_tiny: str, rows: list[Any], quantization: str
) -> None:
    ref = ft.ModelRef(backend="hf", name=tuned_tiny)
    result = ref.export(tmp_path / "tiny.gguf", quantization=quantization, name="acme-support")
    reader = gguf.GGUFReader(str(result.path))
    fields = {name: field.contents() for name, field in reader.fields.items()}
    assert fields["general.name"] == "acme-support"
    assert fields["general.architecture"] == "llama"
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tuned_tiny)
    assert fields["tokenizer.chat_template"] == tokenizer.chat_template
    assert fields["tokenizer.ggml.eos_token_id"] == tokenizer.eos_token_id
    names = {tensor.name for tensor in reader.tensors}
    assert {"token_embd.weight", "blk.0.attn_q.weight", "output_norm.weight"} <= names
    assert_same_model(tuned_tiny, result.path, rows, TOLERANCE[quantization])


def test_a_lora_job_exports_merged_then_gguf(
    tmp_path: Path,
    lora_tiny: str,
    rows: list[Any],
    lora_registry: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    merged = ft.ModelRef(backend="hf", name=lora_tiny).export(tmp_path / "merged", "merged")
    assert (merged.path / "model.safetensors").exists()
    assert (merged.path / "tokenizer.json").exists() and (merged.path / "config.json").exists()
    # evaluated on its training rows, the export is noted as its job's model was (it was not)
    trained = ft.Dataset.from_records(rows[:2])
    asked = {"merged": ft.ModelRef(backend="hf", name=str(merged.path))}
    options = {"merged": {"max_new_tokens": 1}}
    result = ft.evaluate(trained, asked, "exact_match", predictor_options=options, cache=False)
    assert result.trained_on == {"merged": [0, 1]}
    said: list[str] = []
    from finetune.export import export_model

    result = export_model(lora_tiny, tmp_path, format="gguf", say=said.append)
    job_id = Path(lora_tiny).parent.name
    assert result.path == tmp_path / f"{job_id}.gguf"  # named after the job, not a temp folder
    assert any(line.startswith("merged in") for line in said) and result.seconds > 0
    fields = gguf.GGUFReader(str(result.path)).fields
    assert fields["general.name"].contents() == fields["finetune.job"].contents() == job_id
    assert_same_model(str(merged.path), result.path, rows, TOLERANCE["f16"])
    # the GGUF file names its job, whose training rows the registry of its fit kept
    monkeypatch.setenv("FINETUNE_REGISTRY", str(lora_registry))
    asked = {"gguf": ft.ModelRef.gguf(str(result.path))}
    options = {"gguf": {"max_new_tokens": 1}}
    noted = ft.evaluate(trained, asked, "exact_match", predictor_options=options, cache=False)
    assert noted.trained_on == {"gguf": [0, 1]}
    # exported again from the GGUF file (another quantization, a merged folder), still its job's
    again = export_model(str(result.path), tmp_path / "again.gguf", quantization="q8_0")
    assert gguf.GGUFReader(str(again.path)).fields["finetune.job"].contents() == job_id
    from_gguf = export_model(str(again.path), tmp_path / "from-gguf", format="merged")
    asked = {"again": ft.ModelRef.gguf(str(again.path))}
    asked["folder"] = ft.ModelRef(backend="hf", name=str(from_gguf.path))
    options = {name: {"max_new_tokens": 1} for name in asked}
    noted = ft.evaluate(trained, asked, "exact_match", predictor_options=options, cache=False)
    assert noted.trained_on == {"again": [0, 1], "folder": [0, 1]}
    # and the lineage of each export is its job's, in Python and on the command line
    exports = (merged.path, result.path, again.path, from_gguf.path)
    for exported in exports:
        record = ft.JobRegistry().lineage(str(exported))
        assert record is not None and record.job_id == job_id, exported
    assert cli_main(["jobs", "--model", str(result.path)]) == 0
    # named after its job, not the folder it was converted to; beside itself, not over itself
    before = result.path.read_bytes()
    requantized = export_model(result.path, tmp_path, quantization="q8_0")
    assert requantized.path == tmp_path / f"{job_id}-q8_0.gguf"
    assert result.path.read_bytes() == before
    said.clear()  # a tensor type it cannot write: refused before the adapter is merged
    with pytest.raises(ft.FinetuneError, match=r"quantization 'Q4_K_M': use one of f32, f16"):
        export_model(lora_tiny, tmp_path / "q.gguf", quantization="Q4_K_M", say=said.append)
    assert said == [] and not (tmp_path / "q.gguf").exists()
    named = export_model(lora_tiny, tmp_path / "u.gguf", format="GGUF", quantization="Q8_0")
    assert named.path == tmp_path / "u.gguf"  # llama.cpp's upper case, read as ours


def test_a_gguf_file_exported_again_is_named_after_itself(tmp_path: Path, tiny_base: str) -> None:
    """It was named after the folder it was converted to (``base-6d24a2b7b944bd40.gguf``)."""
    from finetune.export import export_model

    source = export_model(tiny_base, tmp_path / "base.gguf").path
    elsewhere = export_model(source, tmp_path / "out", format="gguf")
    assert elsewhere.path == tmp_path / "out" / "base.gguf"
    fields = gguf.GGUFReader(str(elsewhere.path)).fields
    assert fields["general.name"].contents() == "base" and "finetune.job" not in fields
    beside = export_model(ft.ModelRef.gguf(str(source)), tmp_path, quantization="f32")
    assert beside.path == tmp_path / "base-f32.gguf"
    # a tensor type its name states is the one written (SmolLM2-135M-Instruct.Q4_1.gguf)
    assert export_model(beside.path, tmp_path / "out").path == tmp_path / "out" / "base-f16.gguf"
    stated = shutil.copyfile(source, tmp_path / "base.Q8_0.gguf")
    assert export_model(stated, tmp_path / "out").path == tmp_path / "out" / "base.F16.gguf"
    named = export_model(source, tmp_path, name="base")  # asked for by name: replaced
    assert named.path == source
    over = export_model(source, source, quantization="f32")  # asked for by path: replaced
    assert over.path == source
    assert gguf.GGUFReader(str(source)).fields["general.name"].contents() == "base"
    with pytest.raises(ft.FinetuneError) as refused:  # it named the folder it was converted to
        export_model(source, tmp_path / "lora", format="gguf-adapter")
    assert str(refused.value) == f"{source} is a full model, not a LoRA adapter; use format='gguf'"


def test_saved_weights_are_as_readable_as_the_files_beside_them(
    tmp_path: Path, lora_tiny: str
) -> None:
    """safetensors 0.8 writes through a temporary file of mode 0600 (its issue #782): the
    adapter, its checkpoints and a merged export were unreadable to a server run as another
    user (vLLM: "No adapter found"), while the tokenizer beside them was not."""
    merged = ft.ModelRef(backend="hf", name=lora_tiny).export(tmp_path / "merged", "merged")
    job = Path(lora_tiny).parent
    weights = [*Path(lora_tiny).glob("*.safetensors"), *merged.path.glob("*.safetensors")]
    weights += [*(job / "checkpoints").rglob("*.safetensors")]
    assert len(weights) >= 3
    for path in weights:
        beside = stat.S_IMODE((path.parent / "tokenizer_config.json").stat().st_mode)
        assert stat.S_IMODE(path.stat().st_mode) == beside, path


def _unrotate(weight: Any, heads: int) -> Any:
    rows, rest = weight.shape[0], weight.shape[1:]
    return weight.reshape(heads, rows // heads // 2, 2, *rest).swapaxes(1, 2).reshape(weight.shape)


def test_the_adapter_gguf_rebuilds_the_merged_weights(tmp_path: Path, lora_tiny: str) -> None:
    """W + alpha/r * B @ A, from the GGUF's own tensors, is the merged checkpoint's weight."""
    import numpy as np
    from safetensors.numpy import load_file

    ref = ft.ModelRef(backend="hf", name=lora_tiny)
    adapter = ref.export(tmp_path / "lora.gguf", "gguf-adapter")
    merged = ref.export(tmp_path / "merged", "merged")
    reader = gguf.GGUFReader(str(adapter.path))
    fields = {name: field.contents() for name, field in reader.fields.items()}
    assert (fields["general.type"], fields["adapter.type"]) == ("adapter", "lora")
    tensors = {t.name: np.array(t.data) for t in reader.tensors}
    settings = json.loads(Path(lora_tiny, "adapter_config.json").read_text())
    base = load_file(str(Path(settings["base_model_name_or_path"], "model.safetensors")))
    after = load_file(str(merged.path / "model.safetensors"))
    heads = json.loads(Path(settings["base_model_name_or_path"], "config.json").read_text())[
        "num_attention_heads"
    ]
    a = tensors["blk.0.attn_q.weight.lora_a"]
    b = _unrotate(tensors["blk.0.attn_q.weight.lora_b"], heads)
    scale = fields["adapter.lora.alpha"] / settings["r"]
    name = "model.layers.0.self_attn.q_proj.weight"
    rebuilt = base[name].astype("float32") + scale * b @ a
    assert np.abs(rebuilt - after[name].astype("float32")).max() < 1e-5


def _stand_in_ollama(folder: Path) -> Path:
    """An `ollama` executable that records its arguments and working folder."""
    record = folder / "ollama-calls.jsonl"
    script = folder / "ollama"
    script.write_text(
        f"#!{sys.executable}\nimport json, os, sys\n"
        f"with open({str(record)!r}, 'a') as f:\n"
        "    f.write(json.dumps({'args': sys.argv[1:], 'cwd': os.getcwd(),"
        " 'modelfile': open('Modelfile').read()}) + '\\n')\n"
        "print('success')\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return record


def test_an_ollama_folder_is_created_with_the_stand_in_executable(
    tmp_path: Path, lora_tiny: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    record = _stand_in_ollama(bin_dir)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    ref = ft.ModelRef(backend="hf", name=lora_tiny)
    result = ref.export(tmp_path / "ollama", "ollama", create="acme-support")
    modelfile = (result.path / "Modelfile").read_text()
    assert modelfile.startswith("FROM ./model.gguf\n")
    assert "TEMPLATE" not in modelfile  # the toy template is no known family
    assert any("not recognised" in note for note in result.notes)
    assert 'SYSTEM """You are the support assistant of Acme. Reply in the house format."""' in (
        modelfile
    )
    [call] = [json.loads(line) for line in record.read_text().splitlines()]
    assert call["args"] == ["create", "acme-support", "-f", "Modelfile"]
    assert Path(call["cwd"]) == result.path


def test_without_ollama_the_create_step_says_what_to_run(
    tmp_path: Path, lora_tiny: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no ollama here
    folder = tmp_path / "my model's folder"
    with pytest.raises(ft.FinetuneError, match="ollama create") as raised:
        ft.ModelRef(backend="hf", name=lora_tiny).export(folder, "ollama", create="acme")
    pasted = str(raised.value).split("then run: ")[1]  # as a shell reads it: the path one word
    words = ["cd", str(folder), "&&", "ollama", "create", "acme", "-f", "Modelfile"]
    assert shlex.split(pasted) == words


@pytest.mark.parametrize("name", ["chatml", "llama-3", "mistral-instruct", "gemma", "phi-3"])
def test_a_modelfile_has_the_template_and_stops_of_each_family(name: str) -> None:
    from finetune.export._ollama import family_of, modelfile
    from tests.chat_templates import FAMILIES, family_tokenizer

    spec = next(f for f in FAMILIES if f.name == name)
    family = family_of(family_tokenizer(spec))
    assert family is not None
    text = modelfile("model.gguf", family, "Be brief.")
    assert "TEMPLATE" in text and "{{ .Prompt }}" in text and "{{ .Response }}" in text
    assert f'PARAMETER stop "{spec.end_of_turn}"' in text
    assert 'SYSTEM """Be brief."""' in text
    docstrings = 'Write docstrings in """triple quotes""" always.'  # Ollama reads no escapes
    quoted = modelfile("model.gguf", family, docstrings)
    assert "SYSTEM" not in quoted.replace("no SYSTEM line", "") and "\\" not in quoted
    assert '# the trained system prompt holds """, which a Modelfile cannot quote' in quoted


def test_a_template_s_default_system_prompt_is_the_modelfile_s_when_the_data_had_none() -> None:
    """SmolLM2's and Qwen 2.5's templates write a system prompt of their own into every
    conversation that has none, so training saw it; the Modelfile had no ``SYSTEM``, and
    Ollama then sent the tuned model prompts without it."""
    from finetune.export._ollama import default_system_prompt, system_of, trained_system_prompt
    from tests.chat_templates import CHATML, FAMILIES, family_tokenizer

    default = (
        "{% if messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\nYou are a helpful "
        "AI assistant.<|im_end|>\\n' }}{% endif %}" + CHATML
    )
    smol = family_tokenizer(dataclasses.replace(FAMILIES[0], template=default))
    assert default_system_prompt(smol) == "You are a helpful AI assistant."
    for family in FAMILIES:  # their system turn is the data's alone
        assert default_system_prompt(family_tokenizer(family)) is None, family.name
    assert trained_system_prompt({""}, smol) == "You are a helpful AI assistant."
    assert trained_system_prompt({"Be brief."}, smol) == "Be brief."
    assert trained_system_prompt({"", "Be brief."}, smol) is None  # no one prompt to send
    assert trained_system_prompt({""}, family_tokenizer(FAMILIES[0])) is None
    system, user = {"role": "system", "content": "Be brief."}, {"role": "user", "content": "q"}
    answer = [{"role": "assistant", "content": "a"}]
    assert system_of({"messages": [system, user, *answer]}) == "Be brief."
    assert (
        system_of({"prompt": [system, user], "chosen": answer, "rejected": answer}) == "Be brief."
    )
    assert system_of({"prompt": [user], "chosen": answer, "rejected": answer}) == ""
    assert system_of({"prompt": "q", "completion": "a"}) == ""


def test_what_cannot_be_exported_is_named(tmp_path: Path, tuned_tiny: str) -> None:
    other = tmp_path / "gpt2"
    other.mkdir()
    config = json.loads(Path(tuned_tiny, "config.json").read_text())
    (other / "config.json").write_text(json.dumps({**config, "architectures": ["GPT2LMHeadModel"]}))
    with pytest.raises(ft.FinetuneError, match="LlamaForCausalLM, MistralForCausalLM"):
        ft.ModelRef(backend="hf", name=str(other)).export(tmp_path / "x.gguf")
    with pytest.raises(ft.UnsupportedFeature, match="local models"):
        ft.ModelRef(backend="openai", name="ft:gpt-4.1-mini:acme").export(tmp_path / "y.gguf")
    with pytest.raises(ft.FinetuneError, match="not a LoRA adapter"):
        ft.ModelRef(backend="hf", name=tuned_tiny).export(tmp_path / "z.gguf", "gguf-adapter")
    with pytest.raises(ft.FinetuneError, match="q8_0"):
        ft.ModelRef(backend="hf", name=tuned_tiny).export(tmp_path / "w.gguf", quantization="q4")
    ref = ft.ModelRef(backend="hf", name=tuned_tiny)  # each was ignored without a word
    with pytest.raises(ft.FinetuneError, match="quantization is for format 'gguf' or 'ollama'"):
        ref.export(tmp_path / "merged", "merged", quantization="q8_0")
    with pytest.raises(ft.FinetuneError, match="create runs `ollama create`, for format 'ol"):
        ref.export(tmp_path / "u.gguf", create="acme")
    for refused in ("Acme Support!", "acme..v2", "acme:"):  # ollama create refuses each
        with pytest.raises(ft.FinetuneError, match=f"{refused!r} is no Ollama model name"):
            ref.export(tmp_path / "ollama", "ollama", create=refused)
    assert not (tmp_path / "merged").exists() and not (tmp_path / "ollama").exists()
    data = tmp_path / "train.jsonl"
    data.write_text("{}\n")
    for not_a_model in (tmp_path, data):
        with pytest.raises(ft.FinetuneError, match=f"{not_a_model}: not a model"):
            ft.ModelRef(backend="hf", name=str(not_a_model)).export(tmp_path / "v.gguf")
    assert not list(tmp_path.glob("*.gguf")) and not list(tmp_path.glob(".*.tmp"))


@pytest.mark.parametrize(
    ("format", "absent", "adapter", "words"),
    [
        ("merged", "peft", True, "to merge a LoRA adapter"),  # it was a traceback
        ("gguf", "peft", True, "to merge a LoRA adapter"),
        ("gguf", "gguf", True, "to export GGUF files"),  # it merged, then failed
        ("gguf", "gguf", False, "to export GGUF files"),
        ("ollama", "transformers", False, "to export for Ollama"),  # it was a traceback
        ("gguf-adapter", "safetensors", True, "to export GGUF files"),
    ],
)
def test_an_export_without_a_package_it_needs_names_the_extra_before_any_work(
    format: str,
    absent: str,
    adapter: bool,
    words: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from finetune.export import export_model

    model = request.getfixturevalue("lora_tiny" if adapter else "tuned_tiny")
    monkeypatch.setitem(sys.modules, absent, None)  # as if not installed
    said: list[str] = []
    dest = tmp_path / "out"
    with pytest.raises(ft.MissingDependency) as refused:
        export_model(model, dest, format=format, say=said.append)
    assert str(refused.value) == (
        f'{absent} is not installed {words}. Install it with: pip install "finetune[hf]"'
    )
    assert said == [] and list(tmp_path.iterdir()) == []


def test_evaluate_runs_a_gguf_candidate_as_the_tuned_model(
    tmp_path: Path, tuned_tiny: str, rows: list[Any]
) -> None:
    exported = ft.ModelRef(backend="hf", name=tuned_tiny).export(tmp_path / "t.gguf", "gguf")
    test = ft.Dataset.from_records(rows[300:310])
    result = ft.evaluate(
        test,
        {
            "tuned": ft.ModelRef(backend="hf", name=tuned_tiny),
            "gguf": ft.ModelRef.gguf(str(exported.path)),
        },
        [ft.metrics.exact_match],
        predictor_options={"tuned": {"max_new_tokens": 16}, "gguf": {"max_new_tokens": 16}},
    )
    assert result.predictions("tuned") == result.predictions("gguf")


FULL_DISK_SCRIPT = textwrap.dedent(
    """
    import resource, signal, sys
    from pathlib import Path
    import finetune as ft
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit is then EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (65536, 65536))  # no file over 64 KiB: "full"
    model, out = ft.ModelRef(backend="hf", name=sys.argv[1]), Path(sys.argv[2])
    for format, dest in (("gguf", "m.gguf"), ("merged", "merged"), ("ollama", "ollama")):
        try:
            model.export(out / dest, format=format)
        except ft.FinetuneError as error:
            print(type(error).__name__, error)
    """
)


def test_a_full_disk_is_our_error_and_leaves_nothing_behind(tmp_path: Path, tiny_base: str) -> None:
    """A full disk raised a bare ``OSError`` (``32768 requested and 26128 written``) or a
    ``shutil.Error`` holding a list of tuples, and an Ollama export left its empty folder."""
    script, out = tmp_path / "export.py", tmp_path / "out"
    script.write_text(FULL_DISK_SCRIPT)
    out.mkdir()
    command = [sys.executable, str(script), tiny_base, str(out)]
    ran = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    said = ran.stdout.splitlines()
    assert len(said) == 3, ran.stderr
    for line, (format, dest) in zip(
        said, [("gguf", "m.gguf"), ("merged", "merged"), ("ollama", "ollama")], strict=True
    ):
        assert line.startswith(f"StorageError the {format} export to {out / dest} could not be")
        assert " free there); nothing was left in its place: free disk space, or give " in line
    assert "File too large" in said[1]  # the reason, not shutil's list of (source, copy, why)
    assert not list(out.iterdir())


def test_a_destination_that_cannot_be_written_is_refused_before_the_merge(
    tmp_path: Path, lora_tiny: str
) -> None:
    """A path under a file merged (or converted) for minutes, then failed on "Not a directory"
    with "free disk space" as advice (65 GB were free)."""
    from finetune.export import export_model

    (tmp_path / "notes").write_text("a file")
    for format in ("merged", "gguf", "gguf-adapter", "ollama"):
        told: list[str] = []
        with pytest.raises(ft.StorageError) as refused:
            export_model(lora_tiny, tmp_path / "notes" / "out", format=format, say=told.append)
        assert str(refused.value) == (
            f"cannot write {tmp_path / 'notes' / 'out'}: {tmp_path / 'notes'} is a file, not a "
            "folder; nothing was done: choose another path"
        )
        assert told == []  # no merge, no conversion
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes a read-only folder")
def test_a_read_only_destination_is_refused_before_the_merge(
    tmp_path: Path, lora_tiny: str
) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    with pytest.raises(ft.StorageError, match="is not writable by this user; nothing was done"):
        ft.ModelRef(backend="hf", name=lora_tiny).export(locked / "m.gguf")


def test_a_merged_export_never_deletes_what_it_did_not_write(
    tmp_path: Path, tuned_tiny: str
) -> None:
    ref = ft.ModelRef(backend="hf", name=tuned_tiny)
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "thesis.txt").write_text("years of work")
    with pytest.raises(ft.FinetuneError, match=r"holds 1 item \(thesis.txt\); a merged export"):
        ref.export(folder, "merged")
    a_file = tmp_path / "model.gguf"
    a_file.write_text("a file")
    for folder_format in ("merged", "ollama"):
        with pytest.raises(ft.FinetuneError, match=f"is a file; a {folder_format} export is a"):
            ref.export(a_file, folder_format)
        with pytest.raises(ft.FinetuneError, match=f"names a GGUF file; a {folder_format} export"):
            ref.export(tmp_path / "new.gguf", folder_format)  # was: a folder named new.gguf
    assert not (tmp_path / "new.gguf").exists()
    assert (folder / "thesis.txt").read_text() == "years of work" and a_file.read_text() == "a file"
    first = ref.export(tmp_path / "merged", "merged")
    again = ref.export(tmp_path / "merged", "merged")  # over its own earlier export: replaced
    assert first.path == again.path and (again.path / "config.json").exists()
    (tmp_path / "empty").mkdir()
    assert (ref.export(tmp_path / "empty", "merged").path / "model.safetensors").exists()


def test_a_gguf_export_replaces_no_file_it_did_not_write(tmp_path: Path, tuned_tiny: str) -> None:
    """``--output`` naming the base model's GGUF file (or any file) replaced it silently."""
    ref = ft.ModelRef(backend="hf", name=tuned_tiny)
    first = ref.export(tmp_path / "tiny.gguf")
    fields = gguf.GGUFReader(str(first.path)).fields
    assert fields["finetune.exporter"].contents() == f"finetune {ft.__version__}"
    assert ref.export(tmp_path / "tiny.gguf").path == first.path  # its own: replaced
    theirs = tmp_path / "base.gguf"
    writer = gguf.GGUFWriter(str(theirs), "llama")  # a GGUF file some other tool wrote
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.close()
    a_text = tmp_path / "notes.gguf"
    a_text.write_text("not a model")
    folder = tmp_path / "ollama"
    folder.mkdir()
    (folder / "model.gguf").write_bytes(theirs.read_bytes())
    their_modelfile = tmp_path / "theirs"  # an Ollama model of the user's, on another base
    their_modelfile.mkdir()
    (their_modelfile / "Modelfile").write_text("FROM llama3\nSYSTEM years of prompt work\n")
    listed = ((theirs, "gguf"), (a_text, "gguf"), (folder, "ollama"), (their_modelfile, "ollama"))
    for dest, format in listed:
        before = sorted((p.name, p.read_bytes()) for p in dest.parent.rglob("*") if p.is_file())
        with pytest.raises(ft.FinetuneError, match=r"is there already and no export of finetune"):
            ref.export(dest, format)
        after = sorted((p.name, p.read_bytes()) for p in dest.parent.rglob("*") if p.is_file())
        assert after == before  # refused before any work: nothing written, nothing left
    ours = ref.export(tmp_path / "ours", "ollama")
    assert ref.export(ours.path, "ollama").path == ours.path  # its own Modelfile: replaced


def test_a_merged_export_is_marked_as_ours_before_it_takes_its_place(
    tmp_path: Path, tuned_tiny: str, lora_tiny: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crash just after the folder swap must not leave an unmarked folder, which the next
    export would refuse to replace as if it held the user's own files."""
    marked_when_placed: dict[str, bool] = {}
    rename = Path.rename

    def watching(self: Path, target: Any) -> Any:
        if Path(target).parent == tmp_path:
            marked_when_placed[Path(target).name] = (self / "finetune_export.json").is_file()
        return rename(self, target)

    monkeypatch.setattr(Path, "rename", watching)
    ft.ModelRef(backend="hf", name=tuned_tiny).export(tmp_path / "full", "merged")
    ft.ModelRef(backend="hf", name=lora_tiny).export(tmp_path / "adapter", "merged")
    assert marked_when_placed == {"full": True, "adapter": True}


def test_the_cli_exports_a_job_by_its_id(
    tmp_path: Path, lora_tiny: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from finetune.cli import main

    job_dir = Path(lora_tiny).parent
    code = main(
        [
            "export",
            job_dir.name,
            "--jobs-dir",
            str(job_dir.parent),
            "--format",
            "merged",
            "--output",
            str(tmp_path / "m"),
        ]
    )
    out, said = capsys.readouterr()  # to a log: transformers' bars ran their frames together
    assert code == 0 and "exported merged" in out
    assert "Loading weights" not in said and "Writing model shards" not in said, said
    from transformers import AutoModelForCausalLM

    assert AutoModelForCausalLM.from_pretrained(str(tmp_path / "m")) is not None
    named = ["export", f"hf:{job_dir.name}", "--jobs-dir", str(job_dir.parent)]  # as progress
    assert main([*named, "--format", "merged", "--output", str(tmp_path / "m2")]) == 0
    assert (tmp_path / "m2" / "model.safetensors").exists()
    by_folder = tmp_path / "by-folder"  # the job's folder is its model, not a model folder
    assert main(["export", str(job_dir), "--format", "merged", "--output", str(by_folder)]) == 0
    assert not (by_folder / "events.jsonl").exists() and (by_folder / "model.safetensors").exists()
    from finetune.export import export_model

    assert export_model(job_dir, tmp_path / "api", format="merged").path == tmp_path / "api"
    assert (tmp_path / "api" / "model.safetensors").exists()
    capsys.readouterr()
    gguf_file = str(tmp_path / "m.gguf")
    upper = ["--format", "GGUF", "--quantization", "F16"]  # as llama.cpp's names are written
    assert main(["export", str(tmp_path / "m"), *upper, "--output", gguf_file]) == 0
    out, said = capsys.readouterr()  # to a log: gguf's own bar ran its frames into one line
    assert "writing 20 tensors to m.gguf" in out and "Writing" not in said and "\r" not in said


def test_converting_a_gguf_file_in_a_log_draws_no_bar(
    tmp_path: Path, tuned_tiny: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """transformers' GGUF loader draws its de-quantizing bar with tqdm itself, which its
    switch for bars does not reach: in a log, its frames ran into one line."""
    from transformers import modeling_gguf_pytorch_utils as loader

    from finetune.backends.hf._models import resolve
    from finetune.export import export_model

    gguf_file = export_model(tuned_tiny, tmp_path / "t.gguf", quantization="f32").path
    its_own = loader.tqdm
    capsys.readouterr()
    converted = resolve(str(gguf_file), tmp_path / "models")
    said = capsys.readouterr().err
    assert Path(converted.path, "config.json").exists()
    assert "de-quantizing" not in said and "\r" not in said, said
    assert loader.tqdm is its_own  # given back once done


def test_transformers_bars_stay_off_in_a_log_until_the_last_user_is_done() -> None:
    """Two local models loading at once (two candidates of one evaluation, in two threads):
    the first to finish turned transformers' bars back on under the other."""
    from transformers.utils import logging as transformers_logging

    from finetune._progress import no_library_bars_in_a_log

    was_on = transformers_logging.is_progress_bar_enabled()
    transformers_logging.enable_progress_bar()  # as a process starts, whatever an earlier
    try:  # test of this worker left them as
        first, second = no_library_bars_in_a_log(), no_library_bars_in_a_log()
        first.__enter__()
        second.__enter__()
        first.__exit__(None, None, None)  # the first load is done; the second is not
        assert not transformers_logging.is_progress_bar_enabled()
        second.__exit__(None, None, None)
        assert transformers_logging.is_progress_bar_enabled()
    finally:
        if not was_on:
            transformers_logging.disable_progress_bar()


@pytest.mark.skipif(
    __import__("importlib").util.find_spec("llama_cpp") is None,
    reason="llama-cpp-python not installed (optional: it compiles for ~20 minutes)",
)
def test_llama_cpp_server_answers_like_the_tuned_model(
    tmp_path: Path, tuned_tiny: str, rows: list[Any]
) -> None:  # pragma: no cover - runs only where llama_cpp is installed
    import socket
    import subprocess
    import time

    exported = ft.ModelRef(backend="hf", name=tuned_tiny).export(tmp_path / "t.gguf", "gguf")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(exported.path),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(5)
        test = ft.Dataset.from_records(rows[300:305])
        served = ft.ModelRef.openai_compatible(f"http://127.0.0.1:{port}/v1", "t")
        options = {"max_new_tokens": 12}
        result = ft.evaluate(
            test,
            {"tuned": ft.ModelRef(backend="hf", name=tuned_tiny), "served": served},
            [ft.metrics.exact_match],
            predictor_options={
                "tuned": options,
                "served": {"max_tokens": 12, "extra_body": {"repeat_penalty": 1.0}},
            },
        )
        assert result.predictions("tuned") == result.predictions("served")
    finally:
        server.terminate()
