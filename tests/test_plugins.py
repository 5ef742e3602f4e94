"""A third-party package adds a backend with nothing but an entry point."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

PLUGIN = '''
from finetune.testing import FakeBackend


class EchoBackend(FakeBackend):
    """A backend shipped by someone else."""

    name = "echo"
'''


@pytest.fixture(scope="module")
def installed_plugin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    source = tmp_path_factory.mktemp("plugin-src")
    (source / "echo_backend").mkdir()
    (source / "echo_backend" / "__init__.py").write_text(PLUGIN)
    (source / "pyproject.toml").write_text(
        textwrap.dedent(
            """
            [build-system]
            requires = ["setuptools>=61"]
            build-backend = "setuptools.build_meta"

            [project]
            name = "finetune-echo-backend"
            version = "0.0.1"

            [project.entry-points."finetune.backends"]
            echo = "echo_backend:EchoBackend"
            ghost = "echo_backend:GhostBackend"

            [tool.setuptools]
            packages = ["echo_backend"]
            """
        )
    )
    target = tmp_path_factory.mktemp("plugin-site")
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index"]
    command += ["--no-build-isolation", "--target", str(target), str(source)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0 and "setuptools" in result.stderr:
        pytest.skip("setuptools is not installed in this environment")
    assert result.returncode == 0, result.stderr
    return target


def test_plugin_found_by_entry_point(installed_plugin: Path) -> None:
    script = textwrap.dedent(
        """
        import finetune as ft
        assert "echo" in ft.available_backends(), ft.available_backends()
        tuner = ft.Tuner("echo", model="m", registry=False)
        print(type(tuner.backend.wrapped).__name__, tuner.backend_name)
        """
    )
    result = _run_beside(installed_plugin, script)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["EchoBackend", "echo"]


def test_an_entry_point_naming_what_its_module_lacks_says_so(installed_plugin: Path) -> None:
    """It failed with the AttributeError of a ``getattr`` inside finetune."""
    script = 'import finetune as ft\nft.Tuner("ghost", model="m", registry=False)'
    result = _run_beside(installed_plugin, script)
    assert result.stderr.strip().splitlines()[-1] == (
        "finetune._errors.FinetuneError: backend 'ghost' is registered by "
        "'echo_backend:GhostBackend', but echo_backend has no 'GhostBackend'; reinstall the "
        "package that provides it"
    )


def test_register_backend_refuses_what_is_no_backend_class() -> None:
    """Anything was registered; the first ``Tuner(name)`` then failed with "'NoneType' object
    has no attribute 'name'", or a fit uploaded the data before finding no ``create_job``."""
    import finetune as ft
    from finetune.backends import BaseBackend
    from finetune.testing import FakeBackend

    for factory in ("acme", None):
        with pytest.raises(TypeError, match=r"takes the backend's class .* not (str|NoneType)"):
            ft.register_backend("acme", factory)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"a backend object goes to ft.Tuner\(backend, model"):
        ft.register_backend("acme", FakeBackend())
    for name in ("", "acme:v2", " acme"):
        with pytest.raises(ValueError, match="a word without a colon or spaces around it"):
            ft.register_backend(name, FakeBackend)
    with pytest.raises(TypeError, match="a backend's name is text"):
        ft.register_backend(3, FakeBackend)  # type: ignore[arg-type]

    class Nameless:
        async def get_job(self, job_id: str) -> ft.Job:
            raise ft.JobNotFound(job_id)

    ft.register_backend("nameless", Nameless)
    with pytest.raises(TypeError) as caught:
        ft.Tuner("nameless", model="m", registry=False)
    assert str(caught.value) == (
        "backend 'nameless' made Nameless, which is no backend: it lacks name, capabilities "
        "(a backend has a name, capabilities and async upload, create_job and get_job; "
        "docs/plugins.md)"
    )
    uploads: list[str] = []

    class UploadsOnly(BaseBackend):
        name = "uploads-only"
        capabilities = ft.Capabilities(example_kinds=frozenset({"chat"}))

        async def upload(self, dataset: ft.Dataset, *, purpose: str = "train") -> ft.FileRef:
            uploads.append(purpose)
            return ft.FileRef(id="f", backend=self.name, name="f", bytes=1)

    ft.register_backend("uploads-only", UploadsOnly)
    tuner = ft.Tuner("uploads-only", model="m", registry=False)
    rows = [
        {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}
    ]
    with pytest.raises(TypeError, match="'uploads-only' cannot start a job: it lacks create_job"):
        tuner.fit(ft.Dataset.from_records(rows * 10), skip_validation=True)
    assert uploads == []  # nothing was sent before the refusal


def test_plugin_absent_without_the_package() -> None:
    import finetune as ft

    assert "echo" not in ft.available_backends()


def _run_beside(plugin: Path, script: str) -> subprocess.CompletedProcess[str]:
    """``script`` in a fresh Python that finds the installed ``plugin``."""
    return subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env={**_env(), "PYTHONPATH": str(plugin)},
        check=False,
    )


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


async def test_a_retry_returns_what_done_finds_instead_of_calling_again() -> None:
    """``call_with_retries(done=...)``: after a lost answer, the lookup decides."""
    import finetune as ft
    from finetune.backends.http import call_with_retries

    sent: list[str] = []
    made: list[str] = []

    async def create() -> str:
        sent.append("create")
        if len(sent) == 2:
            made.append("job-2")  # the second try makes the job; its answer is lost
        if len(sent) <= 2:
            raise ft.ServerError("connection reset after the request", backend="acme")
        return "job-3"

    async def done() -> str | None:
        return made[0] if made else None

    found = await call_with_retries(create, 5, first=0.01, done=done)
    assert (found, sent) == ("job-2", ["create", "create"])
    sent.clear()
    with pytest.raises(ft.InvalidRequestError):
        await call_with_retries(
            lambda: _refused(sent), 5, first=0.01, done=done
        )  # not retryable: one try, no lookup
    assert sent == ["create"]


def test_a_2xx_answer_that_is_no_readable_json_is_a_server_error() -> None:
    """``json_answer``: a body that is not JSON, or JSON nested past Python's parser (a broken
    proxy's answer, which raised ``RecursionError``), is a ``ServerError`` naming the
    status."""
    import finetune as ft
    from finetune.backends.http import json_answer

    assert json_answer("acme", 200, '{"id": "job-1"}') == {"id": "job-1"}
    for body in ("<html>", "[" * 5000):
        with pytest.raises(ft.ServerError, match="answered HTTP 200 with a body that is not"):
            json_answer("acme", 200, body)


async def _refused(sent: list[str]) -> str:
    import finetune as ft

    sent.append("create")
    raise ft.InvalidRequestError("bad", backend="acme")


def _dist_info(site: Path, package: str, entry_points: str) -> None:
    """A package installed in ``site`` as far as ``importlib.metadata`` can tell."""
    info = site / f"{package.replace('-', '_')}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {package}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[finetune.backends]\n{entry_points}\n")


def test_a_plugin_named_like_a_built_in_is_shown_as_not_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A plugin called ``openai`` was never loaded, and nothing anywhere said so."""
    import finetune as ft
    from finetune.backends.openai import OpenAIBackend
    from finetune.cli import main

    _dist_info(tmp_path, "openai-clone", "openai = finetune.testing:FakeBackend")
    monkeypatch.syspath_prepend(str(tmp_path))
    tuner = ft.Tuner("openai", model="gpt-4.1-mini-2025-04-14", api_key="k" * 20, registry=False)
    assert isinstance(tuner.backend, OpenAIBackend)  # the name finds the built-in
    assert main(["backends"]) == 0
    listed = capsys.readouterr().out.splitlines()
    unused = [line.strip() for line in listed if "not used" in line]
    assert unused == [
        "not used: openai-clone 1.0 (finetune.testing:FakeBackend), a plugin named like this "
        "built-in (it needs a name of its own)"
    ]
    assert listed.index(next(line for line in listed if "not used" in line)) > next(
        i for i, line in enumerate(listed) if line.startswith("openai ")
    )


def test_two_packages_naming_one_backend_are_an_error_naming_both(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The one installed last was used, silently: which code ran depended on install order."""
    import finetune as ft
    from finetune.cli import main
    from finetune.testing import FakeBackend

    _dist_info(tmp_path / "a", "acme-tune", "acme = finetune.testing:FakeBackend")
    _dist_info(tmp_path / "b", "acme-next", "acme = acme_next:Backend")
    monkeypatch.syspath_prepend(str(tmp_path / "a"))
    monkeypatch.syspath_prepend(str(tmp_path / "b"))
    assert ft.available_backends().count("acme") == 1
    with pytest.raises(ft.FinetuneError) as caught:
        ft.Tuner("acme", model="m", registry=False)
    told = str(caught.value)
    assert told.startswith("2 installed packages name a backend 'acme': ")
    assert "acme-tune 1.0 (finetune.testing:FakeBackend)" in told
    assert "acme-next 1.0 (acme_next:Backend)" in told
    assert told.endswith(
        "uninstall all but one, or register the one to use in this process: "
        "ft.register_backend('acme', ...)"
    )
    assert main(["backends"]) == 0
    assert "acme       -                   unavailable: 2 installed packages name a backend" in (
        capsys.readouterr().out
    )
    ft.register_backend("acme", FakeBackend)  # the way out it names; conftest forgets it after
    assert isinstance(ft.Tuner("acme", model="m", registry=False).backend.wrapped, FakeBackend)


async def test_a_dataset_in_a_providers_format_is_a_temporary_file_sync_or_async(
    tmp_path: Path,
) -> None:
    """``provider_file`` and ``written`` hand a plugin the file ``to_jsonl`` would write, in
    a folder of its own that is gone once the block ends, also when the block fails."""
    import finetune as ft
    from finetune.backends.http import provider_file, written

    data = ft.Dataset.from_records([{"prompt": "2+2?", "completion": "4"}] * 2)
    expected = data.to_jsonl(tmp_path / "openai.jsonl", format="openai").read_bytes()
    with provider_file(data, "openai") as path:
        assert path.name == "data.jsonl" and path.read_bytes() == expected
    assert not path.parent.exists()
    seen: list[Path] = []
    with pytest.raises(RuntimeError, match="the upload failed"):
        _upload_failing(provider_file(data, lambda example: {"n": 1}), seen)
    assert seen and not seen[0].parent.exists()
    async with written(data, "openai") as same:
        assert same.read_bytes() == expected and same.parent != path.parent
    assert not same.parent.exists()


def _upload_failing(file: contextlib.AbstractContextManager[Path], seen: list[Path]) -> None:
    with file as path:
        text = path.read_text()
        assert text == '{"n":1}\n' * 2  # a plugin's own format, compact
        seen.append(path)
        raise RuntimeError("the upload failed")
