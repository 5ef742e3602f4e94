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


def test_a_gguf_file_trains_with_no_options(smollm2: str, rows: list[Any]) -> None:
    """The issue's acceptance line: LoRA, assistant-only loss, bf16 where the CPU has it."""
    tuner = ft.Tuner("hf", model=smollm2)
    job = tuner.fit(ft.Dataset.from_records(rows[:32]))
    job.wait(poll_interval=0.5, timeout=400)
    assert job.job.status is ft.JobStatus.SUCCEEDED, tuner.backend.worker_log(job.id)
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
