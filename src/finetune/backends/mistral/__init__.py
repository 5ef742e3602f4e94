"""The Mistral backend: ``Tuner("mistral", model=...)`` (``pip install "finetune[mistral]"``).

Mistral's fine-tuning job API is retired (410 Gone): a fit raises ``ProviderUnavailable``
before uploading anything; reading jobs and managing fine-tuned models still work.
``_mapping`` converts payloads (pure functions); ``_backend`` does the I/O.
"""

from finetune._namespace import PublicNames, public_names
from finetune.backends.mistral._backend import MistralBackend, map_error
from finetune.backends.mistral._mapping import (
    CAPABILITIES,
    STATUS_MAP,
    checkpoints_from_payload,
    create_body,
    event_from_payload,
    file_ref,
    hyperparameters_body,
    job_from_payload,
    metrics_from_payload,
    same_fit,
    status_of,
    wandb_integrations,
    with_dry_run,
)

__all__ = [
    "CAPABILITIES",
    "STATUS_MAP",
    "MistralBackend",
    "checkpoints_from_payload",
    "create_body",
    "event_from_payload",
    "file_ref",
    "hyperparameters_body",
    "job_from_payload",
    "map_error",
    "metrics_from_payload",
    "same_fit",
    "status_of",
    "wandb_integrations",
    "with_dry_run",
]
__dir__: PublicNames = public_names(__name__)
