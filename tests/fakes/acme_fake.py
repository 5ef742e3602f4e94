"""A loopback fake of the made-up "Acme Tune" API that examples/acme_backend.py talks to."""

from __future__ import annotations

import itertools
import time
from typing import Any

from ._server import FakeServer, Faults, Reply


class AcmeFake(FakeServer):
    """Files and tunes; a tune trains for ``training`` seconds, then is done."""

    api_key = "acme-test-key-0123456789"

    def __init__(self, faults: Faults | None = None, training: float = 0.2) -> None:
        super().__init__(faults)
        self.training = training
        self.files: dict[str, dict[str, Any]] = {}
        self.tunes: dict[str, dict[str, Any]] = {}
        self.counter = itertools.count(1)

    def route(
        self, method: str, path: str, query: dict[str, str], body: Any, raw: bytes, headers: Any
    ) -> Any:
        with self.lock:
            parts = path.strip("/").split("/")
            match method, parts:
                case "POST", ["v1", "files"]:
                    file_id = f"file-{next(self.counter)}"
                    self.files[file_id] = {"id": file_id, "name": query["name"], "bytes": len(raw)}
                    return self.files[file_id]
                case "GET", ["v1", "files"]:
                    return {"data": [f for f in self.files.values() if f["name"] == query["name"]]}
                case "POST", ["v1", "tunes"]:
                    return self._create(body)
                case "GET", ["v1", "tunes"]:
                    key = query.get("client_key")
                    return {
                        "data": [
                            self._view(t) for t in self.tunes.values() if t["client_key"] == key
                        ]
                    }
                case "GET", ["v1", "tunes", tune_id]:
                    return self._view(self._tune(tune_id))
                case "POST", ["v1", "tunes", tune_id, "cancel"]:
                    tune = self._tune(tune_id)
                    tune["stopped"] = True
                    return self._view(tune)
        raise Reply(404, {"error": {"message": f"no route {method} {path}"}})

    def _create(self, body: dict[str, Any]) -> Any:
        if body.get("file") not in self.files:
            raise Reply(400, {"error": {"message": "unknown file", "param": "file"}})
        tune_id = f"tune-{next(self.counter)}"
        self.tunes[tune_id] = {
            **body,
            "id": tune_id,
            "started": time.monotonic(),
            "created": int(time.time()),
        }
        return self._view(self.tunes[tune_id])

    def _tune(self, tune_id: str) -> dict[str, Any]:
        if tune_id not in self.tunes:
            raise Reply(404, {"error": {"message": f"no tune {tune_id}"}})
        return self.tunes[tune_id]

    def _view(self, tune: dict[str, Any]) -> dict[str, Any]:
        done = time.monotonic() - tune["started"] >= self.training
        state = "stopped" if tune.get("stopped") else ("done" if done else "training")
        view = {k: v for k, v in tune.items() if k not in ("started", "stopped")}
        output = f"acme:{tune['model']}:{tune['id']}" if state == "done" else None
        return {**view, "state": state, "output_model": output}
