"""Start a Prism mock server for a provider's OpenAPI spec, or skip cleanly when absent."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT.parent / "shared" / "specs"


def prism_binary() -> str | None:
    """``$PRISM_BIN``, the copy .ci/run installs, or ``prism`` on PATH."""
    candidates = [os.environ.get("PRISM_BIN"), str(ROOT / ".ci/node/node_modules/.bin/prism")]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return candidate
    return shutil.which("prism")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def prism_server(spec_name: str) -> Iterator[str]:
    """The base URL of a Prism mock serving ``shared/specs/<spec_name>``."""
    spec = SPECS / spec_name
    binary = prism_binary()
    if not spec.is_file():
        pytest.skip(f"{spec} is absent")
    if binary is None:
        pytest.skip("Prism is not installed (npm install @stoplight/prism-cli, or set PRISM_BIN)")
    port = _free_port()
    process = subprocess.Popen(
        [binary, "mock", "-h", "127.0.0.1", "-p", str(port), str(spec)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                httpx.get(url, timeout=1)
                break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.skip("Prism did not start")
                time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def refused_by_prism(prism: str, requests: list[Any], *, strip_prefix: str = "") -> list[Any]:
    """Replay recorded requests against Prism; those it answers 404 or 422, with its reason."""
    refused = []
    with httpx.Client(base_url=prism, timeout=30) as client:
        for request in requests:
            response = client.request(
                request.method,
                request.path.removeprefix(strip_prefix),
                params=request.query,
                content=request.raw or None,
                headers={
                    "Authorization": "Bearer test",
                    "Content-Type": request.content_type or "application/json",
                },
            )
            if response.status_code in (404, 422):
                refused.append((request.method, request.path, request.body, response.text[:8000]))
    return refused
