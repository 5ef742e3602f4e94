"""The OpenAI backend: ``Tuner("openai", model=...)`` (``pip install "finetune[openai]"``).

``_mapping`` converts payloads (pure functions); ``_backend`` does the I/O through the SDK.
"""

from finetune._namespace import PublicNames, public_names
from finetune.backends.openai._backend import OpenAIBackend, map_error
from finetune.backends.openai._mapping import (
    CAPABILITIES,
    STATUS_MAP,
    checkpoint_from_payload,
    create_params,
    event_from_payload,
    file_ref,
    job_from_payload,
    metrics_from_csv,
    metrics_from_events,
)

__all__ = [
    "CAPABILITIES",
    "STATUS_MAP",
    "OpenAIBackend",
    "checkpoint_from_payload",
    "create_params",
    "event_from_payload",
    "file_ref",
    "job_from_payload",
    "map_error",
    "metrics_from_csv",
    "metrics_from_events",
]
__dir__: PublicNames = public_names(__name__)
