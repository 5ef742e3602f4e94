"""The local backend: TRL + PEFT training in a worker process, one directory per job."""

from finetune.backends.hf._backend import HFBackend, default_jobs_dir
from finetune.backends.hf._config import LocalOptions

__all__ = ["HFBackend", "LocalOptions", "default_jobs_dir"]
