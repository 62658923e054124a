"""Filters for the portal's log configuration (``LOGGING`` in settings)."""

from __future__ import annotations

import logging


class QuietAssetRequests(logging.Filter):
    """Drops the development server's lines for static files and the favicon that were served.

    One admin page asks for a dozen static files and every browser for ``/favicon.ico``:
    the lines that matter (pages, webhooks, errors) drowned among them. A request for
    either that fails (4xx, 5xx) is still logged: a missing asset is a fault to see.
    """

    def __init__(self, static_url: str = "/static/"):
        super().__init__()
        self.static_prefix = "/" + static_url.lstrip("/")

    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status_code", None)
        request_line = str(record.args[0]) if isinstance(record.args, tuple) and record.args else ""
        parts = request_line.split(" ")
        path = parts[1] if len(parts) > 1 else ""
        if path.split("?", 1)[0] == "/favicon.ico" or path.startswith(self.static_prefix):
            return status is None or status >= 400
        return True


class QuietEnqueued(logging.Filter):
    """Drops django-q2's "Enqueued [queue] id" line, one per task queued.

    Every webhook delivery queues a task: a burst of a thousand deliveries wrote a thousand such
    lines (and writing them was a fiftieth of a delivery's CPU in the web server), which say
    nothing the delivery's own lines and the task's result do not. django-q2's other lines (a
    cluster starting, a task failing) stay.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.levelno <= logging.INFO and str(record.msg).startswith("Enqueued ["))
