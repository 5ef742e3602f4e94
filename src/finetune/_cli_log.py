"""How the ``finetune`` command prints log lines (``warning: ...``, each line once) and JSON."""

from __future__ import annotations

import json
import logging
import sys

from finetune._cli_terms import in_cli_terms
from finetune.backends._masked_logs import without_secrets

__all__ = ["log_to_stderr", "not_printed_on_the_way", "print_json"]


def log_to_stderr(debug: bool) -> None:
    """Log lines as a command says them (``warning: ...``); ``--debug`` adds time and logger."""
    handler = logging.StreamHandler()
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
        if debug
        else _CommandLineFormatter()
    )
    handler.addFilter(not_printed_on_the_way)
    handler.addFilter(without_secrets)
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING, handlers=[handler])


def not_printed_on_the_way(record: logging.LogRecord) -> bool:
    """Whether no logger between the record's and the root has a handler of its own, which
    printed the line already (huggingface_hub's does, and still passes the line on)."""
    logger: logging.Logger | None = logging.getLogger(record.name)
    while logger is not None and logger is not logging.root:
        if logger.handlers:
            return False
        if not logger.propagate:
            return True
        logger = logger.parent
    return True


class _CommandLineFormatter(logging.Formatter):
    """``warning: <message>``, our advice in the command's terms; another library's line also
    names that library."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's name)
        library = record.name.partition(".")[0]
        if library == "finetune":
            return f"{record.levelname.lower()}: {in_cli_terms(record.message)}"
        return f"{record.levelname.lower()}: {library}: {record.message}"


def print_json(text: str) -> None:
    """Print JSON text; where the output's encoding lacks one of its characters (a file on
    Windows, ``PYTHONIOENCODING=ascii``), as JSON's own ``\\u00e9`` escapes, which every
    reader decodes, not Python's ``\\xe9``, which would make it invalid JSON."""
    try:
        text.encode(sys.stdout.encoding or "utf-8")
    except (UnicodeEncodeError, LookupError):
        text = json.dumps(json.loads(text), indent=2)
    print(text)
