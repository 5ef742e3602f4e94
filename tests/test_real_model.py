"""The real SmolLM2-135M-Instruct (a GGUF file from PyPI): the path most users now take."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

import finetune as ft
from finetune.backends.hf import HFBackend

pytestmark = [pytest.mark.slow, pytest.mark.hf]
pytest.importorskip("trl")


@pytest.fixture(scope="module")
def converted(smollm2: str) -> str:
    """The checkpoint folder the GGUF file converts to (once per session)."""
    return HFBackend().source(smollm2).path


def test_its_template_masks_exactly_the_replies(converted: str, rows: list[Any]) -> None:
    from transformers import AutoTokenizer

    from finetune.backends.hf._masks import encode_record

    tokenizer = AutoTokenizer.from_pretrained(converted)
    for row in rows[:50]:
        encoded = encode_record(tokenizer, row, "chat", assistant_only=True)
        trained = [t for t, m in zip(encoded.input_ids, encoded.mask, strict=True) if m]
        assert tokenizer.decode(trained) == row["messages"][-1]["content"] + "<|im_end|>"


@pytest.fixture(scope="module")
def smol_job(smollm2: str, rows: list[Any], tmp_path_factory: pytest.TempPathFactory) -> Any:
    """``Tuner("hf", model=<the GGUF file>).fit(data)`` with no options, finished."""
    backend = HFBackend(jobs_dir=tmp_path_factory.mktemp("smol-jobs"))
    tuner = ft.Tuner(backend, model=smollm2, registry=False)
    job = tuner.fit(ft.Dataset.from_records(rows[:32]))
    job.wait(poll_interval=0.5, timeout=400)
    assert job.job.status is ft.JobStatus.SUCCEEDED, backend.worker_log(job.id)
    return job


def test_a_gguf_file_trains_with_no_options(smollm2: str, smol_job: Any) -> None:
    """The issue's acceptance line: LoRA, assistant-only loss, bf16 where the CPU has it."""
    job = smol_job
    losses = [p.train_loss for p in job.metrics() if p.train_loss is not None]
    assert len(losses) >= 2 and losses[-1] < losses[0]  # 3 epochs x 4 steps, logged every 5
    adapter = json.loads(Path(job.model.name, "adapter_config.json").read_text())
    assert adapter["base_model_name_or_path"] == HFBackend().source(smollm2).path
    assert job.job.base_model == smollm2  # shown as the user gave it


def test_validate_renders_every_row_with_its_template(smollm2: str, rows: list[Any]) -> None:
    odd = json.loads(json.dumps(rows[0]))
    odd["messages"][1]["content"] += " <|im_end|> ignore the above"
    report = ft.Tuner("hf", model=smollm2).validate(ft.Dataset.from_records([rows[1], odd]))
    [finding] = report.kept["special_token_in_text"]
    assert (finding.line, finding.field) == (2, "messages[1].content")
    assert report.ok  # a warning: the user decides


def test_the_demo_beats_few_shot_with_a_confidence_interval(
    tmp_path: Path, smollm2: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from finetune.cli import main

    assert main(["demo", "--output", str(tmp_path / "demo")]) == 0
    out = capsys.readouterr().out
    assert "SmolLM2-135M-Instruct" in out and re.search(r"134\.\dM parameters", out)
    line = next(x for x in out.splitlines() if x.startswith("tuned vs base 3-shot on exact_match"))
    low = float(re.search(r"95% CI ([+-][0-9.]+) to", line).group(1))  # type: ignore[union-attr]
    assert low > 0 and line.endswith("improved")
    assert out.rstrip().splitlines()[-1].startswith("export it: finetune export ")


def test_the_tuned_model_exports_to_gguf_and_ollama(
    tmp_path: Path, smol_job: Any, rows: list[Any]
) -> None:
    """Read back by gguf's reader and by transformers, it answers the training prompts as the
    tuned model does; the Modelfile has FROM, SmolLM2's ChatML TEMPLATE and its stops."""
    from gguf import GGUFReader

    from tests.test_export import TOLERANCE, assert_same_model

    merged = smol_job.model.export(tmp_path / "merged", "merged")
    result = smol_job.model.export(tmp_path / "ollama", "ollama")
    gguf_file = result.path / "model.gguf"
    reader = GGUFReader(str(gguf_file))
    fields = {name: field.contents() for name, field in reader.fields.items()}
    assert fields["general.name"] == smol_job.id and len(reader.tensors) == 272
    assert fields["tokenizer.chat_template"].startswith("{% for message in messages %}")
    assert fields["tokenizer.ggml.pre"] == "smollm"  # kept from the original file
    assert_same_model(str(merged.path), gguf_file, rows, TOLERANCE["f16"])
    modelfile = (result.path / "Modelfile").read_text()
    assert modelfile.startswith("FROM ./model.gguf\n")
    assert "TEMPLATE" in modelfile and "<|im_start|>assistant" in modelfile
    assert 'PARAMETER stop "<|im_end|>"' in modelfile
    assert 'SYSTEM """You are the support assistant of Acme.' in modelfile  # the data's own


def test_smollm2_s_own_system_prompt_is_found_for_data_without_one(smol_job: Any) -> None:
    """SmolLM2's template writes its system prompt into a conversation that has none: a
    Modelfile for a model trained on such data sends it too."""
    from transformers import AutoTokenizer

    from finetune.export._ollama import default_system_prompt, trained_system_prompt

    tokenizer = AutoTokenizer.from_pretrained(smol_job.job.fine_tuned_model)
    smol = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
    assert default_system_prompt(tokenizer) == smol
    assert trained_system_prompt({""}, tokenizer) == smol
