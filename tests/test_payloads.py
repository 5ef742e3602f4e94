"""The payload readers and the HostedBackend plumbing every hosted backend shares."""

from __future__ import annotations

import logging
import re
from typing import Any

import pytest

import finetune as ft
from finetune.backends import HostedBackend
from finetune.backends.payloads import (
    metric_points,
    refuse_hyperparameters,
    same_value,
    status_from,
    status_table,
    wandb_settings,
    with_figures,
)


def test_a_status_table_groups_states_under_ours_and_an_unknown_one_reads_as_running(
    caplog: pytest.LogCaptureFixture,
) -> None:
    table = status_table(queued=("PENDING",), failed=("ERROR", "USER_ERROR"))
    assert table == {
        "PENDING": ft.JobStatus.QUEUED,
        "ERROR": ft.JobStatus.FAILED,
        "USER_ERROR": ft.JobStatus.FAILED,
    }
    assert status_from("Acme", "USER_ERROR", table) is ft.JobStatus.FAILED
    with caplog.at_level(logging.WARNING, logger="finetune"):
        assert status_from("Acme", "WARMING_UP", table) is ft.JobStatus.RUNNING
    assert "unknown Acme job status 'WARMING_UP'" in caplog.text


def test_metric_rows_become_points_in_step_order_with_unknown_columns_kept() -> None:
    rows: list[dict[str, Any]] = [
        {"step": "2", "loss": "0.5", "tokens": 64, "phase": "train"},
        {"step": 1, "loss": 0.9, "eval_loss": None},
        {"loss": 0.1},
        {"step": 2, "loss": 0.4, "tokens": 80},
    ]
    points = metric_points(rows, {"loss": "train_loss", "eval_loss": "valid_loss"})
    assert [(p.step, p.train_loss, p.valid_loss) for p in points] == [
        (1, 0.9, None),
        (2, 0.4, None),
    ]
    assert points[1].extra == {"tokens": 80.0}


def test_wandb_settings_take_both_shapes_and_refuse_other_integrations() -> None:
    nested = {"type": "wandb", "wandb": {"project": "p", "entity": "e"}}
    flat = {"project": "q", "api_key": "k"}
    assert wandb_settings("Acme", [nested, flat]) == [
        {"project": "p", "entity": "e"},
        {"project": "q", "api_key": "k"},
    ]
    with pytest.raises(ft.UnsupportedFeature, match="Acme supports only wandb") as caught:
        wandb_settings("Acme", [{"type": "mlflow", "token": "mlflow-0123456789"}])
    assert "'mlflow'" in str(caught.value) and "0123456789" not in str(caught.value)


def test_a_hyperparameter_without_a_field_is_refused_by_name() -> None:
    params = ft.Hyperparameters(batch_size=8, seed=3, epochs=2)
    with pytest.raises(ft.UnsupportedFeature) as caught:
        refuse_hyperparameters("Acme", params, ["batch_size", "seed", "beta"], "epochs only")
    assert str(caught.value).endswith("Acme takes no batch_size, seed; it takes epochs only")
    refuse_hyperparameters("Acme", ft.Hyperparameters(batch_size="auto"), ["batch_size"], "x")


def test_provider_figures_keep_the_fields_asked_for_and_add_notes() -> None:
    chats = [
        {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "ok"}]}
    ]
    local = ft.AsyncTuner("fake", model="fake-model").estimate_locally(
        ft.Dataset.from_records(chats)
    )
    estimate = local.model_copy(update={"notes": ["ours"]})
    quoted = with_figures(estimate, {"price": 2.5, "debug": "x", "limit": None}, ["price", "limit"])
    assert quoted.provider_figures == {"price": 2.5}
    assert quoted.notes == ["ours"]
    noted = with_figures(estimate, {"price": 1}, notes=["Acme quotes 1 USD"])
    assert noted.notes == ["ours", "Acme quotes 1 USD"]


def test_same_value_allows_float_rounding_only() -> None:
    assert same_value(0.1 + 0.2, 0.3)
    assert not same_value(0.31, 0.3)
    assert same_value("auto", "auto") and not same_value(None, 1)


class AcmeHosted(HostedBackend):
    """The smallest HostedBackend: only the class attributes."""

    name = "acme"
    title = "Acme"
    key_variable = "ACME_API_KEY"
    url_variable = "ACME_BASE_URL"
    default_url = "https://api.acme.test/"


def test_a_hosted_backend_reads_its_key_and_url_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ACME_API_KEY", "sk-acme-secret-0123456789")
    backend = AcmeHosted()
    assert repr(backend) == "AcmeHosted(base_url='https://api.acme.test')"
    assert "sk-acme" not in backend.identity and backend.identity.startswith("https://api.acme")
    assert AcmeHosted(base_url="http://127.0.0.1:9/").identity.startswith("http://127.0.0.1:9|")
    monkeypatch.delenv("ACME_API_KEY")
    with pytest.raises(ft.AuthenticationError, match="Set ACME_API_KEY or pass api_key"):
        AcmeHosted()._sdk_client()


def test_a_plugin_naming_its_sdk_logger_keeps_httpx_lines_masked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``logged_through = ("acme._base_client",)``, as the plugin guide says to add one,
    replaced httpx's loggers: each URL httpx logged, a signed upload URL too, went unmasked."""
    from finetune.backends._masked_logs import without_secrets

    class AcmeWithSdk(AcmeHosted):
        logged_through = ("acme._base_client",)

    for name in ("httpx", "httpx2", "acme._base_client"):  # as in a process that made none yet
        monkeypatch.setattr(logging.getLogger(name), "filters", [])
    AcmeWithSdk(api_key="sk-acme-secret-0123456789")
    for name in ("httpx", "httpx2", "acme._base_client"):
        assert without_secrets in logging.getLogger(name).filters, name
    record = logging.LogRecord(
        "httpx",
        logging.INFO,
        "",
        0,
        "PUT %s",
        ("https://s.test/f?X-Amz-Signature=" + "abc123def" * 8,),
        None,
    )
    without_secrets(record)
    assert "abc123def" not in record.getMessage()


@pytest.mark.parametrize("backend", ["openai", "mistral", "together", "fireworks"])
def test_a_base_url_holding_a_password_is_refused_without_repeating_it(
    backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The SDK would send it in place of the key, and the URL is in reprs and the registry."""
    url = "https://alice:hunter2pw@proxy.test/v1"
    says = r"the URL https://\*\*\*@proxy.test/v1 holds credentials .* api_key=\.\.\. \(or set "
    with pytest.raises(ValueError, match=says) as caught:
        ft.Tuner(backend, model="m", api_key="k", base_url=url)
    assert "hunter2pw" not in str(caught.value) and "alice" not in str(caught.value)
    variable = ft.Tuner(backend, model="m").backend.url_variable
    monkeypatch.setenv(variable, url)
    with pytest.raises(ValueError, match="holds credentials"):
        ft.Tuner(backend, model="m", api_key="k")
    with pytest.raises(ValueError, match=r"holds credentials .* ACME_API_KEY"):  # a plugin's
        AcmeHosted(api_key="k", base_url=url)
    with pytest.raises(ValueError, match=r"http://\*\*\*@127\.0\.0\.1:8080/v1 holds credentials"):
        ft.ModelRef.openai_compatible("http://bob:pw@127.0.0.1:8080/v1", "llama")


@pytest.mark.parametrize("backend", ["openai", "mistral", "together", "fireworks"])
def test_a_base_url_with_a_query_is_refused_without_its_values(
    backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The SDKs write each request's path after the base URL: ``/v1?api-version=2024`` sent
    Together's calls to ``/v1?api-version=2024/v1/fine-tunes`` and Mistral's to ``/v1``, and a
    token in the query was shown in every connection error."""
    url = "https://gateway.test/v1?api-version=2024&token=tok-hunter2"
    says = (
        r"the URL https://gateway.test/v1\?api-version=\.\.\.&token=\.\.\. has a query or "
        r"fragment after its path: .* give the API root alone \(https://gateway.test/v1\)"
    )
    with pytest.raises(ValueError, match=says) as caught:
        ft.Tuner(backend, model="m", api_key="k", base_url=url)
    assert "hunter2" not in str(caught.value) and "2024" not in str(caught.value)
    monkeypatch.setenv(ft.Tuner(backend, model="m").backend.url_variable, "http://h/v1#part")
    with pytest.raises(ValueError, match=r"the URL http://h/v1#\.\.\. has a query or fragment"):
        ft.Tuner(backend, model="m", api_key="k")
    with pytest.raises(ValueError, match=r"'localhost:8080/v1\?key=\.\.\.' is not a server's"):
        ft.ModelRef.openai_compatible("localhost:8080/v1?key=hunter2", "llama")
    with pytest.raises(ValueError, match=r"the URL http://h/v1\? has a query"):
        ft.evaluation.OpenAIPredictor("m", api_key="k", base_url="http://h/v1?")


@pytest.mark.parametrize(
    "url", ["localhost:8080/v1", "api.together.ai", "ftp://host/v1", "http:///v1"]
)
def test_a_base_url_that_is_no_server_address_is_refused_before_any_retry(url: str) -> None:
    """``localhost:8080/v1`` (no scheme) was taken, then every call failed as a connection
    problem after five retries, the URL named nowhere."""
    says = f"{re.escape(repr(url))} is not a server's URL: give one as http://"
    with pytest.raises(ValueError, match=says):
        ft.ModelRef.openai_compatible(url, "llama")
    with pytest.raises(ValueError, match=says):
        ft.Tuner("together", model="m", api_key="k", base_url=url)
