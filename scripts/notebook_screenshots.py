"""Execute examples/notebook.ipynb and photograph its HTML outputs with headless Chromium.

Usage: python scripts/notebook_screenshots.py [--out docs/images]

The pictures in docs/notebooks.md come from this script: the real rendering of the real
outputs (Debian: ``apt-get install chromium``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHOTS = {  # cell source start -> picture name
    "messy = ": "notebook-validation",
    'ft.Tuner("openai"': "notebook-estimate",
    "job = tuner.fit(": "notebook-job",
    "job.metrics()": "notebook-metrics",
    "result = ft.evaluate(": "notebook-evaluation",
}


def execute(folder: Path) -> object:
    """The notebook, executed in ``folder`` (offline: the toy model and local data); its
    jobs are recorded in ``folder/registry.sqlite3``, never in the user's registry."""
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(ROOT / "examples" / "notebook.ipynb", as_version=4)
    client = NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(folder)}}
    )
    client.execute(env={**os.environ, "FINETUNE_REGISTRY": str(folder / "registry.sqlite3")})
    return notebook


def html_outputs(notebook: object) -> dict[str, str]:
    """The last HTML output of each photographed cell, by picture name."""
    found = {}
    for cell in notebook.cells:  # type: ignore[attr-defined]
        name = next((n for start, n in SHOTS.items() if cell.source.startswith(start)), None)
        pages = [
            o["data"]["text/html"]
            for o in cell.get("outputs", [])
            if "text/html" in o.get("data", {})
        ]
        if name and pages:
            found[name] = pages[-1]
    return found


def photograph(html: str, target: Path, browser: str, pages: Path, size: str = "760,420") -> None:
    """Render one output as a page in ``pages`` (a scratch folder) and save its screenshot."""
    page = pages / f"{target.stem}.html"
    page.write_text(f"<html><body style='margin:8px;background:white'>{html}</body></html>")
    subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         f"--window-size={size}", f"--screenshot={target}", page.as_uri()],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default=str(ROOT / "docs" / "images"))
    args = parser.parse_args()
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        raise SystemExit("no chromium here: apt-get install chromium")
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("FINETUNE_REGISTRY", str(Path(tmp) / "registry.sqlite3"))
        for name, html in html_outputs(execute(Path(tmp))).items():
            photograph(html, out / f"{name}.png", browser, Path(tmp))
            print(out / f"{name}.png")


if __name__ == "__main__":
    main()
