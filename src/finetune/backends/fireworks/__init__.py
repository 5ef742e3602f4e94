"""The Fireworks AI backend: ``Tuner("fireworks", model=...)`` (``pip install
"finetune[fireworks]"``). ``_mapping`` converts payloads (pure functions); ``_backend`` does
the I/O through the ``fireworks-ai`` SDK."""

from finetune._namespace import PublicNames, public_names
from finetune.backends.fireworks._backend import FireworksBackend, map_error
from finetune.backends.fireworks._mapping import (
    CAPABILITIES,
    STATUS_MAP,
    create_body,
    job_from_payload,
    job_id_for,
)

__all__ = [
    "CAPABILITIES",
    "STATUS_MAP",
    "FireworksBackend",
    "create_body",
    "job_from_payload",
    "job_id_for",
    "map_error",
]
__dir__: PublicNames = public_names(__name__)
