"""Which shop, order and transfer a log line is about, on every line of the flows.

A flow wraps its unit of work (an order's attempt, a webhook delivery, a status push, a
catalogue run) in ``log_context(shop=…, order=…, transfer=…)``; every line logged inside,
by the flow or by the clients it calls, carries those fields, so an operator can follow
one order through the logs of several hosts (``grep transfer=77``).

The context lives in a ``contextvars.ContextVar``: nested contexts merge (the inner one
wins on a field both name) and end with their ``with`` block, and a thread or a task
queue's worker starts with none of its caller's, so one order's fields never end up on
another's lines.

``LogContextFilter`` (on the handlers in ``LOGGING``) puts the fields on each record;
``PlainFormatter`` and ``JsonFormatter`` write them (``LOG_FORMAT=json``: one JSON object
per line, for a log collector). Only the stdlib: this module is imported while Django
configures logging, before any app is ready.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone

# No default: a shared default dict would be one object for every thread (each context sets a new dict).
_fields: contextvars.ContextVar[dict[str, object]] = contextvars.ContextVar("log_context")

# A record's own attributes: a context field of one of these names would overwrite what
# logging itself says (the message, the level, the process).
_RESERVED = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "context"}


@contextmanager
def log_context(**fields: object) -> Iterator[dict[str, object]]:
    """Put ``fields`` (shop, order, transfer, customer, run, push, delivery …) on every log line
    inside the block, together with those of the contexts around it. A field given as None is
    left out (an order not known yet); the value is logged as its ``str``."""
    clash = _RESERVED.intersection(fields)
    if clash:
        raise ValueError(f"log context fields clash with the log record's own: {sorted(clash)}")
    merged = {**_fields.get({}), **{name: value for name, value in fields.items() if value is not None}}
    token = _fields.set(merged)
    try:
        yield merged
    finally:
        _fields.reset(token)


def current_log_context() -> dict[str, object]:
    """The fields in force here (a copy)."""
    return dict(_fields.get({}))


def context_text(fields: dict[str, object]) -> str:
    """``shop=3 order=1234 transfer=77``: the form an operator greps for."""
    return " ".join(f"{name}={_flat(value)}" for name, value in fields.items())


def _flat(value: object) -> str:
    # One token per field: a value with a space (an order number from a plugin) would break a grep.
    return str(value).replace(" ", "_").replace("\n", "_")


class LogContextFilter(logging.Filter):
    """Puts the current context on each record: ``record.shop`` etc. and ``record.context``.

    On the handlers, not the loggers: a logger's filter sees only the lines of that logger,
    a handler's sees every line that reaches it. A field the caller passed in ``extra`` is kept.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        fields = _fields.get({})
        for name, value in fields.items():
            if not hasattr(record, name):
                setattr(record, name, value)
        record.context_fields = tuple(fields)
        record.context = context_text(fields)
        return True


class PlainFormatter(logging.Formatter):
    """The console's format, with the context between the logger's name and the message:
    ``2025-05-01 12:00:00,123 INFO integrations.orders.attempt [shop=3 order=1234 transfer=77] …``."""

    def __init__(self, fmt: str | None = None, datefmt: str | None = None, style: str = "%", **kwargs):
        super().__init__(
            fmt or "%(asctime)s %(levelname)s %(name)s%(context_part)s: %(message)s", datefmt, style
        )

    def formatMessage(self, record: logging.LogRecord) -> str:
        context = getattr(record, "context", "")
        record.context_part = f" [{context}]" if context else ""
        return super().formatMessage(record)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, host, pid, the
    context's fields, and the exception's traceback as text."""

    host = socket.gethostname()

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, tz=timezone.utc)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "host": self.host,
            "pid": record.process if record.process is not None else os.getpid(),
        }
        for name in getattr(record, "context_fields", ()):
            line[name] = _json_value(getattr(record, name, None))
        if record.exc_info:
            line["exc_info"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exc_info"] = record.exc_text
        if record.stack_info:
            line["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def _json_value(value: object) -> object:
    return value if isinstance(value, (int, float, bool, str)) or value is None else str(value)
