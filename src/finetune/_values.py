"""The base of the library's typed values (``finetune.types``): immutable, compared by their
fields, made with each field given by name."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from finetune._secret_fields import without_credentials

__all__ = ["CredentialsMasked", "Value", "without_private"]


class _SignatureOnceBuilt:
    """The ``__signature__`` of a model class that pydantic builds on first use
    (``defer_build``): until then, ``inspect.signature`` (``help()``, a notebook's call tips)
    read the first built class above it, ``() -> None``. Read, it builds the class and gives
    pydantic's signature with each field taken by name, as ``Value`` takes them."""

    def __get__(self, instance: object, owner: type[BaseModel]) -> inspect.Signature:
        if instance is not None:  # an instance's signature is its __call__'s, as pydantic has it
            raise AttributeError("__signature__")
        owner.model_rebuild()  # pydantic then sets the class's own signature, in place of this
        if vars(owner).get("__signature__") is self:  # it set none: inspect reads __init__
            raise AttributeError("__signature__")
        generated = owner.__signature__
        parameters = [
            parameter.replace(kind=inspect.Parameter.KEYWORD_ONLY)
            if parameter.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
            else parameter
            for parameter in generated.parameters.values()
            if parameter.kind is not inspect.Parameter.VAR_POSITIONAL
        ]
        shown = generated.replace(parameters=parameters)
        owner.__signature__ = shown
        return shown


class CredentialsMasked(BaseModel):
    """A model whose repr shows the text of each entry of a dict field named as a credential
    as ``***`` (``extra={"wandb_api_key": ...}``, which Together takes; ``hub_token``)."""

    __signature__: ClassVar[inspect.Signature]

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        """A class built on first use gets a signature that builds it when read."""
        super().__pydantic_init_subclass__(**kwargs)
        if not cls.__pydantic_complete__:
            cls.__signature__ = _SignatureOnceBuilt()  # type: ignore[assignment]

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        for name, value in super().__repr_args__():
            yield name, without_credentials(value) if isinstance(value, dict) else value


class Value(CredentialsMasked):
    """A value of ours: immutable, and, unless it says otherwise, with no fields but its own."""

    model_config: ClassVar[ConfigDict] = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    def __init__(self, /, *by_position: Any, **fields: Any) -> None:
        """A value of these fields, each given by name; one given by position is a
        ``TypeError`` showing the call to write (pydantic's said only how many were given)."""
        if by_position:
            named = ", ".join(
                f"{name}=..."
                for name, field in type(self).model_fields.items()
                if field.is_required()
            )
            raise TypeError(
                f"{type(self).__name__} takes its fields by name, not {len(by_position)} by "
                f"position: {type(self).__name__}({named or '...'})"
            )
        super().__init__(**fields)

    def __eq__(self, other: object) -> bool:
        """The same value: the same type and fields (what a value carries privately, such as
        how a model is asked, is not part of it)."""
        if not isinstance(other, Value):
            return NotImplemented
        return type(self) is type(other) and self.__dict__ == other.__dict__

    def __hash__(self) -> int:
        """The hash of the same fields, lists and dicts among them (a ``set`` of messages with
        tool calls, ``Hyperparameters`` as a dict's keys), so equal values hash alike."""
        return hash((type(self), _hashable(self.__dict__)))


def _hashable(value: Any) -> Any:
    """``value`` with its dicts and lists, at any depth, as frozensets and tuples."""
    if isinstance(value, dict):
        return frozenset((key, _hashable(item)) for key, item in value.items())
    if isinstance(value, (list, tuple)):
        return tuple(_hashable(item) for item in value)
    return value


def without_private(state: dict[Any, Any], name: str, empty: Any) -> dict[Any, Any]:
    """A pickled value's state with its private attribute ``name`` ``empty``: it holds a key,
    and a pickle is written to disk or sent to another process, which takes its key itself."""
    private = state.get("__pydantic_private__")
    if private and name in private:
        state = {**state, "__pydantic_private__": {**private, name: empty}}
    return state
