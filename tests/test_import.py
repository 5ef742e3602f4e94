from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

HEAVY = ["torch", "transformers", "trl", "peft", "openai", "mistralai", "tiktoken", "httpx2"]


def test_import_finetune_pulls_no_heavy_module() -> None:
    script = f"import sys, finetune; print([m for m in {HEAVY!r} if m in sys.modules])"
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_public_names_are_documented() -> None:
    import finetune as ft

    missing = [
        n
        for n in ft.__all__
        if not n.startswith("_")
        and callable(getattr(ft, n, None))
        and not (getattr(ft, n).__doc__ or "").strip()
    ]
    assert missing == []


def test_the_metrics_import_as_ft_metrics_names_them() -> None:
    """`ft.metrics.exact_match` worked and `from finetune.metrics import exact_match` did not:
    "No module named 'finetune.metrics'"."""
    script = (
        "import finetune as ft\n"
        "from finetune.metrics import READY, exact_match\n"
        "import finetune.evaluation.metrics as same\n"
        "print(exact_match is ft.metrics.exact_match, ft.metrics is same, 'token_f1' in READY)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["True", "True", "True"]


def test_the_names_a_newcomer_tries_first_say_where_they_are() -> None:
    """``ft.validate(data)`` was "no attribute 'validate'. Did you mean: 'evaluate'?", a
    function that does something else."""
    import finetune as ft

    with pytest.raises(AttributeError, match=r"validate is a Tuner's: ft\.Tuner\(backend"):
        ft.validate  # noqa: B018
    with pytest.raises(AttributeError, match=r"from finetune\.export import export_model"):
        ft.export_model  # noqa: B018
    with pytest.raises(AttributeError, match=r"^module 'finetune' has no attribute 'nothing'$"):
        ft.nothing  # noqa: B018
    assert "validate" not in dir(ft)


PUBLIC_MODULES = [
    "finetune",
    "finetune.types",
    "finetune.validation",
    "finetune.registry",
    "finetune.evaluation",
    "finetune.metrics",
    "finetune.export",
    "finetune.lifecycle",
    "finetune.testing",
    "finetune.backends",
    "finetune.backends.base",
    "finetune.backends.http",
    "finetune.backends.payloads",
    "finetune.backends.hf",
]
BACKEND_CLASSES = [
    "finetune.backends.openai.OpenAIBackend",
    "finetune.backends.mistral.MistralBackend",
    "finetune.backends.together.TogetherBackend",
    "finetune.backends.fireworks.FireworksBackend",
]


def _resolved(path: str) -> object:
    import importlib

    try:
        return importlib.import_module(path)
    except ImportError:
        module, _, name = path.rpartition(".")
        return getattr(importlib.import_module(module), name)


def _reached_by(reference: str) -> list[object]:
    """What each ``::: path`` of the API reference renders: the object, and a module's
    members (those listed under its ``members:``, else its ``__all__``)."""
    import inspect

    reached: list[object] = []
    for block in reference.split("\n::: ")[1:]:
        path, *lines = block.splitlines()
        target = _resolved(path.strip())
        reached.append(target)
        if inspect.ismodule(target):
            listed = [line.strip()[2:] for line in lines if line.startswith("        - ")]
            reached += [getattr(target, name) for name in listed or target.__all__]
    return reached


def test_the_api_reference_reaches_every_public_name() -> None:
    """The reference had no entry for the exceptions a user catches, ``export_model``, the
    ``JobRegistry``, the backends' classes or the helpers ``docs/plugins.md`` points to."""
    import importlib
    import inspect
    from pathlib import Path

    reference = (Path(__file__).parents[1] / "docs" / "api.md").read_text(encoding="utf-8")
    reached = {id(thing) for thing in _reached_by(reference)}
    public = [
        f"{module}.{name}"
        for module in PUBLIC_MODULES
        for name in importlib.import_module(module).__all__
        if not name.startswith("__")
    ]
    unreached = [
        path
        for path in public + BACKEND_CLASSES
        if not inspect.ismodule(_resolved(path)) and id(_resolved(path)) not in reached
    ]
    assert unreached == []


def test_a_public_module_lists_its_names_not_the_ones_it_imports() -> None:
    """``ft.metrics.<Tab>`` in a notebook offered ``re``, ``json``, ``Counter`` and ``Any``
    among the metrics; ``dir()`` of every public module did the same."""
    import importlib
    import pkgutil
    from types import ModuleType

    import finetune

    modules = [
        importlib.import_module(found.name)
        for found in pkgutil.walk_packages(finetune.__path__, "finetune.")
        if not any(part.startswith("_") for part in found.name.split(".")[1:])
    ]
    for module in [finetune, *modules]:
        public = {name for name in dir(module) if not name.startswith("_")}
        imported = public - set(module.__all__)
        assert all(isinstance(getattr(module, name), ModuleType) for name in imported), (
            module.__name__,
            sorted(imported),
        )
    jedi = pytest.importorskip("jedi")
    offered = jedi.Interpreter("ft.metrics.", [{"ft": finetune}]).complete()
    names = {completion.name for completion in offered}
    assert "exact_match" in names and not names & {"re", "json", "Counter", "Any"}


CONSTRUCTED = [  # the classes a user builds with arguments of their own
    *BACKEND_CLASSES,
    "finetune.backends.hf.HFBackend",
    "finetune.evaluation.OpenAIPredictor",
    "finetune.evaluation.MistralPredictor",
    "finetune.evaluation.HFPredictor",
    "finetune.testing.FakeBackend",
]


@pytest.mark.parametrize("path", CONSTRUCTED)
def test_each_class_a_user_builds_documents_every_argument_it_takes(path: str) -> None:
    """``TogetherBackend(file_timeout=...)``, ``HFBackend(cancel_grace=...)``,
    ``OpenAIPredictor(max_tokens=...)`` and ``FakeBackend(steps=...)`` were in no docstring,
    and the API reference showed two arguments to a line as one, each "required"."""
    import inspect
    import re

    built = _resolved(path)
    assert inspect.isclass(built)
    doc = inspect.getdoc(built) or ""
    documented = set(re.findall(r"^    (\w+): ", doc.partition("\nArgs:\n")[2], re.MULTILINE))
    takes = {
        name
        for name, parameter in inspect.signature(built.__init__).parameters.items()
        if name != "self" and parameter.kind is not parameter.VAR_KEYWORD
    }
    assert takes and takes == documented


def test_the_local_backends_page_explains_every_option() -> None:
    """``quantization`` was in no row of the options table that ``LocalOptions`` points to."""
    from pathlib import Path

    from finetune.backends.hf import LocalOptions

    page = (Path(__file__).parents[1] / "docs" / "backends" / "hf.md").read_text("utf-8")
    table = page.partition("### Options")[2].partition("\n## ")[0]
    assert [name for name in LocalOptions.model_fields if f"`{name}`" not in table] == []


def test_a_dependency_installed_but_failing_to_import_is_told_apart_from_an_absent_one(
    tmp_path: Path,
) -> None:
    """gguf 0.10 imports sentencepiece without declaring it, and peft 0.17 a name that
    transformers 5 removed: each was told "gguf is not installed ... Install it with: pip
    install "finetune[hf]"", the command the user had just run. So was a version that lacks
    a name or a submodule of its own. On Python 3.10 a wheel without ``top_level.txt`` (most
    built today: openai's, pyarrow's) blocked or absent was "installed but cannot be
    imported"."""
    site = tmp_path / "site"
    for package, line in [
        ("brittle", "import a_module_nobody_ships"),
        ("fragile", "from json import a_name_json_lacks"),
        ("wheel_built", "NAME = 1"),
    ]:
        (site / package).mkdir(parents=True)
        (site / package / "__init__.py").write_text(f"{line}\n")
        info = site / f"{package}-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {package}\nVersion: 1.0\n")
        if package == "wheel_built":  # hatchling, flit, maturin: a RECORD, no top_level.txt
            (info / "RECORD").write_text(f"{package}/__init__.py,,\n{info.name}/METADATA,,\n")
        else:
            (info / "top_level.txt").write_text(f"{package}\n")
    (site / "spaced" / "inner").mkdir(parents=True)  # as backports.zstd: a namespace's module
    (site / "spaced" / "inner" / "__init__.py").write_text("")
    info = site / "spaced_inner-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: spaced.inner\nVersion: 1.0\n")
    (info / "RECORD").write_text("spaced/inner/__init__.py,,\n")
    script = textwrap.dedent(
        """
        import sys
        from finetune import MissingDependency

        def told(package):
            try:
                __import__(package.replace("-", "_"))
            except ImportError:
                return str(MissingDependency(package, "hf", purpose="to export GGUF files"))

        print(told("brittle"))
        print(told("fragile"))
        print(told("absent-thing"))
        sys.modules["brittle"] = None  # as a test blocks a package to act out its absence
        print(told("brittle"))
        sys.modules["wheel_built"] = None
        print(told("wheel_built"))
        del sys.modules["wheel_built"]
        sys.modules["spaced.inner"] = None
        print(told("spaced.inner"))
        for older in ("from wheel_built import NEWER_NAME", "import wheel_built.newer_module"):
            try:
                exec(older)
            except ImportError:
                print(MissingDependency("wheel_built", "hf", purpose="to export GGUF files"))
        """
    )
    environment = {**os.environ, "PYTHONPATH": str(site)}
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, env=environment
    )
    upgrade = (
        'Install what it lacks, or versions that fit together: pip install --upgrade "finetune[hf]"'
    )
    install = 'Install it with: pip install "finetune[hf]"'
    assert result.stdout.splitlines() == [
        "brittle is installed but cannot be imported to export GGUF files: No module named "
        f"'a_module_nobody_ships'. {upgrade}",
        "fragile is installed but cannot be imported to export GGUF files: cannot import name "
        f"'a_name_json_lacks' from 'json' ({json.__file__}). {upgrade}",
        f"absent-thing is not installed to export GGUF files. {install}",
        f"brittle is not installed to export GGUF files. {install}",
        f"wheel_built is not installed to export GGUF files. {install}",
        f"spaced.inner is not installed to export GGUF files. {install}",
        "wheel_built is installed but cannot be imported to export GGUF files: cannot import "
        f"name 'NEWER_NAME' from 'wheel_built' ({site / 'wheel_built' / '__init__.py'}). {upgrade}",
        "wheel_built is installed but cannot be imported to export GGUF files: No module named "
        f"'wheel_built.newer_module'. {upgrade}",
    ]
