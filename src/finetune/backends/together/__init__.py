"""The Together AI backend: ``Tuner("together", model=...)`` (``pip install
"finetune[together]"``). ``_mapping`` converts payloads (pure functions); ``_backend`` does
the I/O through the ``together`` SDK."""

from finetune._namespace import PublicNames, public_names
from finetune.backends.together._backend import TogetherBackend, map_error
from finetune.backends.together._mapping import (
    CAPABILITIES,
    STATUS_MAP,
    create_body,
    job_from_payload,
    same_fit,
)

__all__ = [
    "CAPABILITIES",
    "STATUS_MAP",
    "TogetherBackend",
    "create_body",
    "job_from_payload",
    "map_error",
    "same_fit",
]
__dir__: PublicNames = public_names(__name__)
