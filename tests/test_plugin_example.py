"""examples/acme_backend.py, installed as a third-party plugin would be (an entry point in a
dist-info folder on the path), driven through its whole lifecycle against a loopback fake."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from .conftest import needs_tiktoken
from .fakes._server import Faults
from .fakes.acme_fake import AcmeFake

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "acme_backend.py"
pytestmark = needs_tiktoken

LIFECYCLE = """
import sys
import finetune as ft
assert "acme" in ft.available_backends()
rows = [{"messages": [{"role": "user", "content": f"q{i}"},
                      {"role": "assistant", "content": f"a{i}"}]} for i in range(12)]
data = ft.Dataset.from_records(rows)
tuner = ft.Tuner("acme", model="acme-small", api_key=sys.argv[1], base_url=sys.argv[2])
assert tuner.validate(data).ok
job = tuner.fit(data, hyperparameters=ft.Hyperparameters(epochs=2), suffix="support")
done = job.wait(poll_interval=0.05, timeout=30)
again = ft.Tuner("acme", model="acme-small", api_key=sys.argv[1], base_url=sys.argv[2],
                 registry=False).fit(data, hyperparameters=ft.Hyperparameters(epochs=2),
                                     suffix="support")
other = tuner.fit(data, suffix="second")
other.cancel()
try:
    job.pause()
except ft.UnsupportedFeature as exc:
    paused = str(exc)
try:
    tuner.job("tune-none")
    raise SystemExit("an unknown tune was no JobNotFound")
except ft.JobNotFound as exc:
    assert "tune-none" in str(exc), exc
print(done.status.value, job.model.name, again.id == job.id, other.status.value, paused)
"""


@pytest.fixture
def installed(tmp_path: Path) -> Path:
    """The example module and a dist-info naming it in the finetune.backends group."""
    site = tmp_path / "site"
    site.mkdir()
    shutil.copy(EXAMPLE, site / "acme_backend.py")
    info = site / "acme_tune-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-tune\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[finetune.backends]\nacme = acme_backend:AcmeBackend\n")
    return site


def test_the_example_plugin_runs_the_whole_lifecycle(installed: Path, tmp_path: Path) -> None:
    with AcmeFake(Faults(rate=0.2, kinds=("500", "503", "429"), retry_after="0.01")) as server:
        env = {
            **os.environ,
            "PYTHONPATH": str(installed),
            "FINETUNE_REGISTRY": str(tmp_path / "registry.sqlite3"),
        }
        done = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(LIFECYCLE), server.api_key, server.url],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        tunes = list(server.tunes.values())
        files = list(server.files.values())
    assert done.returncode == 0, done.stderr
    status, model, reattached, cancelled, paused = done.stdout.split(maxsplit=4)
    assert (status, reattached, cancelled) == ("succeeded", "True", "cancelled")
    assert model.startswith("acme:acme-small:")
    assert "cannot pause a job" in paused and "acme" in paused
    assert len(tunes) == 2 and len(files) == 1  # re-run re-attached; the file was reused
    assert tunes[0]["epochs"] == 2 and tunes[0]["suffix"] == "support"


def test_the_example_stays_under_150_lines() -> None:
    assert len(EXAMPLE.read_text().splitlines()) < 150
