"""Backends: one package per provider, found by name (built-ins and ``finetune.backends``
entry points). ``HostedBackend`` is the base of a backend on a provider's HTTP API, and
``finetune.backends.http`` holds the helpers a plugin may use."""

from finetune._namespace import PublicNames, public_names
from finetune.backends._plugins import (
    ENTRY_POINT_GROUP,
    available_backends,
    backend_class,
    load_backend,
    register_backend,
)
from finetune.backends.base import (
    METADATA_KEY,
    Backend,
    BackendAdapter,
    BaseBackend,
    Capabilities,
    JobRequest,
    SyncBackend,
    as_async,
)
from finetune.backends.hosted import Connection, HostedBackend

__all__ = [
    "ENTRY_POINT_GROUP",
    "METADATA_KEY",
    "Backend",
    "BackendAdapter",
    "BaseBackend",
    "Capabilities",
    "Connection",
    "HostedBackend",
    "JobRequest",
    "SyncBackend",
    "as_async",
    "available_backends",
    "backend_class",
    "load_backend",
    "register_backend",
]
__dir__: PublicNames = public_names(__name__)
