"""Logging to a file in the data dir, with passwords masked, so nothing writes over the screen."""

from __future__ import annotations

import logging
import logging.handlers
import re
from pathlib import Path

_URL_PASSWORD = re.compile(r"(amqps?://[^:/@\s]*:)[^@\s]+@")


class MaskPasswords(logging.Filter):
    """Replaces the password of any AMQP URL in a log record with ``****``."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record's message in place; never drops a record."""
        message = record.getMessage()
        masked = _URL_PASSWORD.sub(r"\1****@", message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


def configure_logging(data_dir: Path, level: int = logging.INFO) -> Path:
    """Send all logging to ``<data dir>/broker-sim.log`` (rotated at 1 MB); returns its path.

    Called by the CLI, never at import time. Connection failures that aiormq logs as errors are
    reported to the user as connection-state events instead, so the file is where they belong.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / "broker-sim.log"
    handler = logging.handlers.RotatingFileHandler(path, maxBytes=1_000_000, backupCount=2, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(MaskPasswords())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    return path
