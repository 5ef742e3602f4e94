"""Finding backends by name: built-ins, in-process registrations and ``finetune.backends``
entry points (how a plugin package adds one)."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from finetune._errors import (
    BackendNotFound,
    FinetuneError,
    InvalidRequestError,
    MissingDependency,
    closest_name,
    did_you_mean,
    unexpected_keyword,
)
from finetune._synonyms import TUNER_KEYWORDS
from finetune.backends.base import BaseBackend, as_async

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

__all__ = [
    "BUILTIN_BACKENDS",
    "ENTRY_POINT_GROUP",
    "available_backends",
    "backend_class",
    "load_backend",
    "option_names",
    "register_backend",
    "shadowed_plugins",
]

ENTRY_POINT_GROUP = "finetune.backends"
# the built-ins are found without scanning installed packages, which keeps start-up short
BUILTIN_BACKENDS = {
    "openai": "finetune.backends.openai:OpenAIBackend",
    "mistral": "finetune.backends.mistral:MistralBackend",
    "together": "finetune.backends.together:TogetherBackend",
    "fireworks": "finetune.backends.fireworks:FireworksBackend",
    "hf": "finetune.backends.hf:HFBackend",
    "fake": "finetune.testing:FakeBackend",
}
_registered: dict[str, Callable[..., Any]] = {}


def register_backend(name: str, factory: Callable[..., Any]) -> None:
    """Register a backend class in-process (entry points are the way for installed plugins);
    a name that is no plain word, or a ``factory`` that is not callable or is already a
    backend instance, is a ``TypeError`` or ``ValueError`` here, not an ``AttributeError``
    at the first ``Tuner(name)``."""
    if not isinstance(name, str):
        raise TypeError(f"a backend's name is text, such as 'acme', not {name!r}")
    if not name.strip() or ":" in name or name != name.strip():
        raise ValueError(
            f"a backend's name is a word without a colon or spaces around it, not {name!r} "
            '("backend:model" text is read up to its first colon)'
        )
    an_instance = not inspect.isclass(factory) and callable(getattr(factory, "get_job", None))
    if an_instance or not callable(factory):
        given = "; a backend object goes to ft.Tuner(backend, model=...) as it is"
        raise TypeError(
            f"register_backend({name!r}, ...) takes the backend's class (or a function that "
            f"makes one, given the Tuner's options), not {type(factory).__name__} "
            f"{factory!r:.60}{given if an_instance else ''}"
        )
    _registered[name] = factory


def _installed_entry_points() -> list[EntryPoint]:
    # importlib.metadata costs about 20 ms to import: only a name that is not built in needs it
    from importlib.metadata import entry_points

    return list(entry_points(group=ENTRY_POINT_GROUP))


def _provided_by(entry_point: EntryPoint) -> str:
    """``acme-tune 0.1 (acme_backend:AcmeBackend)``: the package and the object it names."""
    dist = entry_point.dist
    package = f"{dist.name} {dist.version}" if dist is not None else "a package"
    return f"{package} ({entry_point.value})"


def _one_entry_point(name: str) -> EntryPoint | None:
    """The installed plugin named ``name``; two packages that take the same name are an
    error, not a choice made by the order they were installed in."""
    found = [ep for ep in _installed_entry_points() if ep.name == name]
    if len(found) > 1:
        raise FinetuneError(
            f"{len(found)} installed packages name a backend {name!r}: "
            f"{' and '.join(_provided_by(ep) for ep in found)}; uninstall all but one, or "
            f"register the one to use in this process: ft.register_backend({name!r}, ...)"
        )
    return found[0] if found else None


def shadowed_plugins() -> dict[str, list[str]]:
    """A line for each installed plugin named like a built-in backend (never used: the name
    finds the built-in first), by the name it took, naming its package and object."""
    shadowed: dict[str, list[str]] = {}
    for ep in _installed_entry_points():
        if ep.name in BUILTIN_BACKENDS and ep.value != BUILTIN_BACKENDS[ep.name]:
            shadowed.setdefault(ep.name, []).append(
                f"not used: {_provided_by(ep)}, a plugin named like this built-in (it needs "
                "a name of its own)"
            )
    return shadowed


def available_backends() -> list[str]:
    """Names of every backend: built in, installed (entry points) or registered in-process."""
    return sorted(
        set(BUILTIN_BACKENDS) | {ep.name for ep in _installed_entry_points()} | set(_registered)
    )


def _load(name: str, target: str) -> Callable[..., Any]:
    module_name, _, attribute = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except MissingDependency:
        raise
    except ImportError as exc:
        raise FinetuneError(
            f"backend {name!r} is registered by {target!r} but could not be imported "
            f"({exc}); reinstall the package that provides it"
        ) from exc
    except Exception as exc:  # the plugin's own code failed as it ran: a SyntaxError, a bug
        raise FinetuneError(
            f"backend {name!r} is registered by {target!r}, which failed as it was imported "
            f"({type(exc).__name__}: {exc}); the package that provides it is broken: upgrade "
            "or reinstall it"
        ) from exc
    factory: Callable[..., Any] | None = getattr(module, attribute, None)
    if factory is None:
        raise FinetuneError(
            f"backend {name!r} is registered by {target!r}, but {module_name} has no "
            f"{attribute!r}; reinstall the package that provides it"
        )
    return factory


def backend_class(name: str) -> Callable[..., Any]:
    """The class (factory) registered as ``name``, without building it."""
    if name in _registered:
        return _registered[name]
    if name in BUILTIN_BACKENDS:
        return _load(name, BUILTIN_BACKENDS[name])
    found = _one_entry_point(name)
    if found is None:
        raise BackendNotFound(name, available_backends())
    return _load(name, found.value)


def load_backend(name: str, **options: Any) -> BaseBackend:
    """Build the backend registered as ``name`` with its options (api_key, base_url, ...),
    behind the async interface (a synchronous backend runs in worker threads). An option the
    backend does not take is an ``InvalidRequestError`` naming it, the closest option and
    the ones it takes."""
    factory = backend_class(name)
    try:
        backend = factory(**options)
    except TypeError as exc:
        wrong = unexpected_keyword(exc, options)
        if wrong is None:
            raise
        raise _unknown_option(name, wrong, option_names(factory)) from exc
    return as_async(backend, registered_as=name)


def option_names(factory: Callable[..., Any]) -> list[str]:
    """The keyword options ``factory`` (a backend class) takes, following ``**options`` up
    its classes' ``__init__`` methods, as far as their signatures say."""
    if isinstance(factory, type):
        inits = [vars(cls)["__init__"] for cls in factory.__mro__ if "__init__" in vars(cls)]
    else:
        inits = [factory]
    named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    names: list[str] = []
    for init in inits:
        try:
            parameters = list(inspect.signature(init).parameters.values())
        except (TypeError, ValueError):
            break
        names += [p.name for p in parameters if p.kind in named and p.name not in names]
        if all(p.kind is not inspect.Parameter.VAR_KEYWORD for p in parameters):
            break
    return [name for name in names if name != "self"]


def _unknown_option(name: str, wrong: str, known: list[str]) -> InvalidRequestError:
    guess = did_you_mean(wrong, known)
    tuners = closest_name(wrong, TUNER_KEYWORDS) if not guess else None
    if tuners:
        guess = f" (did you mean the Tuner's {tuners}=...?)"
    takes = f"; it takes {', '.join(known)}" if known else ""
    return InvalidRequestError(f"no option {wrong!r}{guess}{takes}", backend=name, param=wrong)
