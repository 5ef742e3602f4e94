"""The local backend: TRL + PEFT training in a worker process, one directory per job."""

from finetune._namespace import PublicNames, public_names
from finetune.backends.hf._backend import HFBackend
from finetune.backends.hf._config import LocalOptions
from finetune.backends.hf._jobdir import default_jobs_dir

__all__ = ["HFBackend", "LocalOptions", "default_jobs_dir"]
__dir__: PublicNames = public_names(__name__)
