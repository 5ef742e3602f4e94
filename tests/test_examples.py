"""The examples in examples/ run offline, as a user would run them."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
pytest.importorskip("trl")
pytestmark = pytest.mark.timeout(300)


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FINETUNE_CACHE_DIR": str(cwd / "cache")}
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=280
    )


@pytest.mark.parametrize("script", ["customer_service_tone.py", "strict_json.py"])
def test_example_script_shows_an_improvement(script: str, tmp_path: Path) -> None:
    done = _run([str(EXAMPLES / script), "--output", str(tmp_path / "out")], tmp_path)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "improved" in done.stdout
    if script == "customer_service_tone.py":  # the held-out question it asks, in the house tone
        before_the_table = done.stdout.split("| candidate")[0]
        assert re.search(r"^Thanks so much for writing, \w+! ", before_the_table, re.MULTILINE)
