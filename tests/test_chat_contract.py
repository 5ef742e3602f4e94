"""Contract tests of the chat requests an evaluation sends, against the providers' specs.

Prism answers any body on OpenAI's and Together's ``/chat/completions`` (it checks no request
there), so these bodies are validated against the specs' request schemas with ``jsonschema``;
Mistral's chat requests go through Prism in test_mistral_contract.py.
"""

from __future__ import annotations

import copy
import functools
from typing import Any

import pytest

import finetune as ft
from finetune.evaluation import metrics as m

from .conftest import weather_data, weather_model
from .fakes.openai_fake import OpenAIFake
from .prism import SPECS

yaml = pytest.importorskip("yaml")
jsonschema = pytest.importorskip("jsonschema")
pytest.importorskip("referencing")  # jsonschema before 4.18 has no registry of specs


@functools.cache
def _validator(spec_name: str, schema: str) -> Any:
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT202012

    path = SPECS / spec_name
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    spec = yaml.safe_load(path.read_text())
    registry = Registry().with_resource(
        "spec", Resource.from_contents(spec, default_specification=DRAFT202012)
    )
    return jsonschema.Draft202012Validator(
        {"$ref": f"spec#/components/schemas/{schema}"}, registry=registry
    )


def _problems(spec_name: str, schema: str, body: dict[str, Any]) -> list[str]:
    return [error.message[:300] for error in _validator(spec_name, schema).iter_errors(body)]


def _sent_chats(model: str) -> list[dict[str, Any]]:
    """The chat bodies an evaluation with and without tools sends, through the real SDK."""
    with OpenAIFake() as fake:
        fake.chat_responder = weather_model
        options = {"api_key": fake.api_key, "base_url": fake.base_url}
        plain = ft.Dataset.from_records(
            [
                {
                    "messages": [
                        {"role": "user", "content": "Hi?"},
                        {"role": "assistant", "content": "Hi."},
                    ]
                }
            ]
        )
        for data in (plain, weather_data(1)):
            tuned = ft.ModelRef(backend="openai", name=model)
            ft.evaluate(
                data, {"c": tuned}, m.exact_match, predictor_options={"c": options}, cache=False
            )
        return [r.body for r in fake.requests if r.path.endswith("/chat/completions")]


def test_openai_chat_requests_follow_the_spec() -> None:
    bodies = _sent_chats("ft:gpt-4.1-mini:acme::w")
    assert any("tools" in body for body in bodies) and any("tools" not in body for body in bodies)
    for body in bodies:
        assert _problems("openai-openapi.yaml", "CreateChatCompletionRequest", body) == []


def test_together_chat_requests_follow_the_spec() -> None:
    """Known spec bug: Together's ``ToolChoice``, its response's tool call, is also the schema
    of a request's, and requires the ``index`` a response numbers calls with; a request's call
    has none in OpenAI's API, which Together's follows. It is added before the check."""
    for body in _sent_chats("acme/Llama-3-8b-w"):
        indexed = copy.deepcopy(body)
        for message in indexed["messages"]:
            for index, call in enumerate(message.get("tool_calls") or []):
                call["index"] = index  # the known spec bug above, and only it
        assert _problems("together-openapi.yaml", "ChatCompletionRequest", indexed) == []


def test_the_schemas_refuse_what_they_forbid() -> None:
    """The checks above mean something: a tool result that names no call, and a turn of no
    known role, are refused by both specs (and a tool without a name by OpenAI's)."""
    body = next(b for b in _sent_chats("ft:gpt-4.1-mini:acme::w") if "tools" in b)
    orphan = {**body, "messages": [{"role": "tool", "content": "x"}]}
    unknown = {**body, "messages": [{"role": "robot", "content": "x"}]}
    for spec, schema in (
        ("openai-openapi.yaml", "CreateChatCompletionRequest"),
        ("together-openapi.yaml", "ChatCompletionRequest"),
    ):
        assert _problems(spec, schema, orphan) and _problems(spec, schema, unknown)
    nameless = {**body, "tools": [{"type": "function", "function": {"parameters": {}}}]}
    assert _problems("openai-openapi.yaml", "CreateChatCompletionRequest", nameless)


def test_completion_requests_follow_the_specs() -> None:
    """A completion model (babbage-002's fine-tune) and a model asked with
    ``api="completions"`` send the legacy completions body that OpenAI's and Together's
    specs describe (the prompt's text; no messages)."""
    data = ft.Dataset.from_records([{"prompt": "Order 1:", "completion": "ships."}])
    with OpenAIFake() as fake:
        options = {"api_key": fake.api_key, "base_url": fake.base_url}
        tuned = ft.ModelRef(backend="openai", name="ft:babbage-002:acme::w")
        ft.evaluate(
            data, {"c": tuned}, m.exact_match, predictor_options={"c": options}, cache=False
        )
        [body] = [r.body for r in fake.requests if r.path.endswith("/v1/completions")]
    assert body["prompt"] == "Order 1:" and "messages" not in body
    assert _problems("openai-openapi.yaml", "CreateCompletionRequest", body) == []
    assert _problems("together-openapi.yaml", "CompletionRequest", body) == []
    assert _problems("openai-openapi.yaml", "CreateCompletionRequest", {"prompt": "x"})
