"""Structured logs: one line per event, ``key=value`` pairs or JSON objects.

Call sites pass context as ``extra``::

    log.warning("poll failed", extra={"source": "p101", "error": "timeout"})

and get ``ts=2026-11-26T12:00:00.123Z level=warning logger=isthmus.gateway
event="poll failed" source=p101 error=timeout`` (or the same as a JSON object).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any, TextIO

# Attributes every LogRecord has; anything else on a record came from ``extra``.
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    out: dict[str, Any] = {
        "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        + f".{int(record.msecs):03d}Z",
        "level": record.levelname.lower(),
        "logger": record.name,
        "event": record.getMessage(),
    }
    for key, value in record.__dict__.items():
        if key not in _STANDARD and not key.startswith("_"):
            out[key] = value
    if record.exc_info and record.exc_info[1] is not None:
        out["error"] = f"{type(record.exc_info[1]).__name__}: {record.exc_info[1]}"
    return out


def _kv(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    if not text or any(c in text for c in ' "=\n\t'):
        return json.dumps(text)
    return text


class KeyValueFormatter(logging.Formatter):
    """``key=value`` pairs, values quoted when they contain spaces, quotes or ``=``."""

    def format(self, record: logging.LogRecord) -> str:
        return " ".join(f"{k}={_kv(v)}" for k, v in _fields(record).items())


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(_fields(record), default=str)


def setup(level: str = "INFO", fmt: str = "kv", stream: TextIO | None = None) -> None:
    """Route the ``isthmus`` loggers to ``stream`` (stderr) in the chosen format."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else KeyValueFormatter())
    root = logging.getLogger("isthmus")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False
    # The protocol libraries log through the same handler, errors only: their own
    # reconnect chatter is reported by our sessions, once, with context.
    for name in ("pymodbus", "asyncua", "aiomqtt"):
        library = logging.getLogger(name)
        library.handlers[:] = [handler]
        library.setLevel(logging.ERROR)
        library.propagate = False
