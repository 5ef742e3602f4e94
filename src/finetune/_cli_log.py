"""How the ``finetune`` command prints log lines: ``warning: ...``, each line once."""

from __future__ import annotations

import logging

__all__ = ["log_to_stderr", "not_printed_on_the_way"]


def log_to_stderr(debug: bool) -> None:
    """Log lines as a command says them (``warning: ...``); ``--debug`` adds time and logger."""
    handler = logging.StreamHandler()
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
        if debug
        else _CommandLineFormatter()
    )
    handler.addFilter(not_printed_on_the_way)
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
    """``warning: <message>``; another library's line also names that library."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's name)
        library = record.name.partition(".")[0]
        source = "" if library == "finetune" else f"{library}: "
        return f"{record.levelname.lower()}: {source}{record.message}"
