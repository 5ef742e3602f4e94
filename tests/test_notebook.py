"""examples/notebook.ipynb as a person sees it: executed by a Jupyter kernel (nbclient), its
HTML outputs checked, and photographed by headless Chromium where one is installed."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.hf
nbformat = pytest.importorskip("nbformat")
pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
pytest.importorskip("trl")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from notebook_screenshots import execute, html_outputs, photograph  # noqa: E402


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the notebook ran."""
    return tmp_path_factory.mktemp("notebook")


@pytest.fixture(scope="module")
def pages(folder: Path) -> dict[str, str]:
    """The notebook's HTML outputs by picture name, executed offline once."""
    return html_outputs(execute(folder))


def test_the_notebook_records_its_job_in_its_own_folder(
    pages: dict[str, Any], folder: Path
) -> None:
    """The kernel is a child process: it gets its registry by name, not the user's."""
    from finetune.registry import JobRegistry

    records = JobRegistry(folder / "registry.sqlite3").list()
    assert [r.backend for r in records] == ["hf"] and records[0].status == "succeeded"


def test_the_job_view_shows_progress_and_a_loss_curve(pages: dict[str, Any]) -> None:
    job = pages["notebook-job"]  # the live view, as its last update left it
    assert "succeeded" in job and "step 460 / 460" in job
    assert "<svg" in job and "<polyline" in job and "train_loss" in job
    assert "model: <code>" in job


def test_the_evaluation_shows_intervals_and_coloured_verdicts(pages: dict[str, Any]) -> None:
    from finetune._html import GREEN, GREY

    evaluation = pages["notebook-evaluation"]
    assert evaluation.count("aria-label='0.") >= 6  # an interval bar per candidate and metric
    assert f"background:{GREEN};color:white;border-radius:4px;padding:1px 6px'>improved" in (
        evaluation
    )
    assert f"background:{GREY}" in evaluation  # "no evidence" where the CI includes 0


def test_user_text_is_escaped_and_findings_expand(pages: dict[str, Any]) -> None:
    report = pages["notebook-validation"]
    assert "&lt;script&gt;alert(&#x27;hi&#x27;)&lt;/script&gt;" in report
    assert "<script>" not in report
    assert "<details open><summary>" in report and "records:1" in report
    assert "<svg" in pages["notebook-metrics"]
    assert "USD" in pages["notebook-estimate"].split("breakdown")[0]  # the cost comes first


@pytest.mark.skipif(
    shutil.which("chromium") is None, reason="no chromium (apt-get install chromium)"
)
def test_chromium_renders_the_views(pages: dict[str, Any], tmp_path: Path) -> None:
    out, scratch = tmp_path / "images", tmp_path / "scratch"
    out.mkdir()
    scratch.mkdir()
    for name in ("notebook-job", "notebook-evaluation"):
        target = out / f"{name}.png"
        photograph(pages[name], target, shutil.which("chromium") or "chromium", scratch)
        picture = target.read_bytes()
        assert picture.startswith(b"\x89PNG") and len(picture) > 5000
    assert sorted(p.name for p in out.iterdir()) == ["notebook-evaluation.png", "notebook-job.png"]
