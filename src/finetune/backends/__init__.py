"""Backends: one module per provider, found by name through ``finetune.backends`` entry points."""

from finetune.backends.base import (
    ENTRY_POINT_GROUP,
    AsyncBackend,
    Backend,
    Capabilities,
    JobRequest,
    available_backends,
    backend_class,
    load_async_backend,
    load_backend,
    register_backend,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "AsyncBackend",
    "Backend",
    "Capabilities",
    "JobRequest",
    "available_backends",
    "backend_class",
    "load_async_backend",
    "load_backend",
    "register_backend",
]
