from __future__ import annotations

import subprocess
import sys

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
    import pytest

    import finetune as ft

    with pytest.raises(AttributeError, match=r"validate is a Tuner's: ft\.Tuner\(backend"):
        ft.validate  # noqa: B018
    with pytest.raises(AttributeError, match=r"from finetune\.export import export_model"):
        ft.export_model  # noqa: B018
    with pytest.raises(AttributeError, match=r"^module 'finetune' has no attribute 'nothing'$"):
        ft.nothing  # noqa: B018
    assert "validate" not in dir(ft)
