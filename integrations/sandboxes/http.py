"""The small HTTP framework both sandboxes stand on.

Pure standard library, no Django: a sandbox is a stand-in for a remote system and
must behave like one (its own process, its own sockets), and it must be cheap
enough that a benchmark measures the portal, not the sandbox.

What every sandbox gets from here:
- a threaded HTTP/1.1 server with keep-alive (``SandboxServer``), startable in a
  background thread (tests) or in the foreground (``manage.py sandbox``);
- a regex router (``SandboxApp.route``);
- fault injection under ``/_sandbox/faults``: the next N calls fail with a status,
  are delayed, or have their connection dropped;
- request counting under ``/_sandbox/stats`` (benchmarks count requests with it);
- state kept in a JSON file so that a restart keeps the data (``state_file``);
- an HTML page on ``/`` for people: what the sandbox holds and its control routes.
"""

from __future__ import annotations

import html
import json
import logging
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable
from urllib.parse import parse_qs, urlsplit

logger = logging.getLogger(__name__)

SANDBOX_PREFIX = "/_sandbox/"


class _Headers:
    """Case-insensitive read-only view of the request headers."""

    def __init__(self, pairs: list[tuple[str, str]]):
        self._pairs = pairs
        self._map = {k.lower(): v for k, v in pairs}

    def get(self, name: str, default: str | None = None) -> str | None:
        return self._map.get(name.lower(), default)

    def __contains__(self, name: str) -> bool:
        return name.lower() in self._map

    def items(self) -> list[tuple[str, str]]:
        return list(self._pairs)


@dataclass
class SandboxRequest:
    method: str
    path: str  # without the query string
    query: dict[str, list[str]]
    headers: _Headers
    body: bytes
    raw_query: str = ""
    scheme: str = "http"
    host: str = ""
    params: dict[str, str] = field(default_factory=dict)  # filled by the router

    def arg(self, name: str, default: str | None = None) -> str | None:
        """One query parameter; ``name[]`` is accepted too (PHP arrays)."""
        values = self.query.get(name) or self.query.get(name + "[]")
        return values[-1] if values else default

    def args(self, name: str) -> list[str]:
        """A query parameter that may repeat (``status[]=a&status[]=b``) or be comma separated."""
        values = list(self.query.get(name, [])) + list(self.query.get(name + "[]", []))
        out: list[str] = []
        for value in values:
            out.extend(v for v in value.split(",") if v)
        return out

    def json(self, *, decimals: bool = False):
        if not self.body:
            return None
        if decimals:
            return json.loads(self.body.decode("utf-8"), parse_float=Decimal)
        return json.loads(self.body.decode("utf-8"))

    def form(self) -> dict[str, str]:
        return {k: v[-1] for k, v in parse_qs(self.body.decode("utf-8"), keep_blank_values=True).items()}

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}{self.path}"


@dataclass
class SandboxResponse:
    status: int = 200
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    content_type: str = "application/json; charset=UTF-8"


_DECIMAL_MARK = re.compile(r'"\\u0000D(-?[0-9.]+)\\u0000"')


def _decimals_to_markers(value):
    if isinstance(value, Decimal):
        return f"\x00D{value:f}\x00"
    if isinstance(value, dict):
        return {k: _decimals_to_markers(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_decimals_to_markers(v) for v in value]
    return value


def json_dumps(data, *, compact: bool = True) -> bytes:
    """Serialise with every ``Decimal`` written as a JSON number with its exact digits.

    Decimals travel through the fast C encoder as marked strings and are unquoted
    afterwards, so an amount never passes through a float.
    """
    text = json.dumps(
        _decimals_to_markers(data), ensure_ascii=False, separators=(",", ":") if compact else None
    )
    return _DECIMAL_MARK.sub(r"\1", text).encode("utf-8")


def json_response(data, status: int = 200, headers: list[tuple[str, str]] | None = None) -> SandboxResponse:
    return SandboxResponse(status=status, body=json_dumps(data), headers=list(headers or []))


def empty_response(status: int, headers: list[tuple[str, str]] | None = None) -> SandboxResponse:
    return SandboxResponse(status=status, body=b"", headers=list(headers or []), content_type="")


def html_table(headings: list[str], rows: list[list[str]]) -> str:
    """An HTML table of plain-text cells (escaped here)."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headings)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def readable_route(pattern: str) -> str:
    """A route's regex as a person writes the path: ``/_sandbox/(?P<org>[0-9a-f-]+)/articles``
    becomes ``/_sandbox/{org}/articles``."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("(?P<", i):
            name_end = pattern.index(">", i)
            out.append("{" + pattern[i + 4 : name_end] + "}")
            depth, i = 1, name_end + 1
            while depth:
                if pattern[i] == "\\":
                    i += 1
                elif pattern[i] == "(":
                    depth += 1
                elif pattern[i] == ")":
                    depth -= 1
                i += 1
        elif pattern[i] == "\\":
            out.append(pattern[i + 1])
            i += 2
        else:
            out.append(pattern[i])
            i += 1
    return "".join(out)


class DropConnection(Exception):
    """Raised by a handler (or the fault injector) to close the socket without any answer."""


@dataclass
class Fault:
    mode: str  # "status" | "delay" | "drop"
    status: int = 503
    seconds: float = 0.0
    retry_after: str | None = None
    body: object = None


class FaultInjector:
    """Queues faults for the next calls to the real API (never to ``/_sandbox/``)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._queue: list[tuple[Fault, int]] = []
        self.injected = 0

    def add(self, fault: Fault, count: int) -> None:
        with self._lock:
            self._queue.append((fault, count))

    def clear(self) -> None:
        with self._lock:
            self._queue.clear()

    def take(self) -> Fault | None:
        with self._lock:
            if not self._queue:
                return None
            fault, left = self._queue[0]
            if left <= 1:
                self._queue.pop(0)
            else:
                self._queue[0] = (fault, left - 1)
            self.injected += 1
            return fault

    def pending(self) -> list[dict]:
        with self._lock:
            return [
                {"mode": f.mode, "status": f.status, "seconds": f.seconds, "count": n} for f, n in self._queue
            ]


Handler = Callable[[SandboxRequest], SandboxResponse]


class SandboxApp:
    """Base of a sandbox: routing, faults, stats and state persistence.

    Subclasses register routes in ``__init__`` with ``self.route(...)`` and
    implement ``state_dump``/``state_load``/``reset``. All state changes happen
    under ``self.lock`` (one lock: the sandbox is a test double, not a database).
    """

    name = "sandbox"

    def __init__(self):
        self.lock = threading.RLock()
        self.faults = FaultInjector()
        self._routes: list[tuple[str, re.Pattern, Handler]] = []
        self.requests_served = 0
        self.requests_by_route: dict[str, int] = {}
        self._stats_lock = threading.Lock()
        self.state_version = 0  # bumped on every change; the server saves when it moves
        self.route("POST", r"/_sandbox/faults", self._faults_add)
        self.route("DELETE", r"/_sandbox/faults", self._faults_clear)
        self.route("GET", r"/_sandbox/faults", lambda r: json_response(self.faults.pending()))
        self.route("GET", r"/_sandbox/stats", self._stats)
        self.route("POST", r"/_sandbox/stats/reset", self._stats_reset)
        self.route("GET", r"/", self._index)

    # -- routing -----------------------------------------------------------------------------
    def route(self, method: str, pattern: str, handler: Handler) -> None:
        self._routes.append((method.upper(), re.compile("^" + pattern + "$"), handler))

    def changed(self) -> None:
        self.state_version += 1

    def dispatch(self, request: SandboxRequest) -> SandboxResponse:
        # The index page is for people, not part of either real API: like the controls, it is
        # neither counted nor given a queued fault.
        is_control = (
            request.path == "/" or request.path.startswith(SANDBOX_PREFIX) or "/_sandbox/" in request.path
        )
        if not is_control:
            with self._stats_lock:
                self.requests_served += 1
            fault = self.faults.take()
            if fault is not None:
                response = self._apply_fault(fault)
                if response is not None:
                    return response
        path_matched = False
        for method, pattern, handler in self._routes:
            match = pattern.match(request.path)
            if not match:
                continue
            path_matched = True
            if method != request.method and not (method == "PUT" and request.method == "PATCH"):
                continue
            request.params = {k: v for k, v in match.groupdict().items() if v is not None}
            if not is_control:
                key = f"{method} {pattern.pattern}"
                with self._stats_lock:
                    self.requests_by_route[key] = self.requests_by_route.get(key, 0) + 1
            return handler(request)
        return self.not_found(request, method_mismatch=path_matched)

    def not_found(self, request: SandboxRequest, *, method_mismatch: bool) -> SandboxResponse:
        return json_response({"error": "not found", "path": request.path}, 404)

    def _apply_fault(self, fault: Fault) -> SandboxResponse | None:
        if fault.mode == "drop":
            raise DropConnection()
        if fault.mode == "delay":
            time.sleep(fault.seconds)
            return None  # then served normally
        headers = []
        if fault.retry_after is not None:
            headers.append(("Retry-After", str(fault.retry_after)))
        body = fault.body if fault.body is not None else {"error": "injected fault", "status": fault.status}
        return json_response(body, fault.status, headers)

    # -- controls ----------------------------------------------------------------------------
    def _faults_add(self, request: SandboxRequest) -> SandboxResponse:
        data = request.json() or {}
        mode = data.get("mode", "status")
        if mode not in ("status", "delay", "drop"):
            return json_response({"error": "mode must be status, delay or drop"}, 400)
        fault = Fault(
            mode=mode,
            status=int(data.get("status", 503)),
            seconds=float(data.get("seconds", 0)),
            retry_after=None if data.get("retry_after") is None else str(data["retry_after"]),
            body=data.get("body"),
        )
        self.faults.add(fault, int(data.get("count", 1)))
        return json_response({"pending": self.faults.pending()}, 201)

    def _faults_clear(self, request: SandboxRequest) -> SandboxResponse:
        self.faults.clear()
        return json_response({"pending": []})

    def _stats(self, request: SandboxRequest) -> SandboxResponse:
        with self._stats_lock:
            return json_response(
                {
                    "requests": self.requests_served,
                    "by_route": dict(self.requests_by_route),
                    "faults_injected": self.faults.injected,
                }
            )

    # -- the index page ----------------------------------------------------------------------
    index_title = "Sandbox"

    def index_html(self, base: str) -> str:
        """What the sandbox holds, as HTML, for its page on ``/``; ``base`` is its address."""
        return ""

    def control_routes(self) -> list[tuple[str, str]]:
        """(method, path) of every control route, as registered."""
        return [
            (method, readable_route(pattern.pattern[1:-1]))
            for method, pattern, _ in self._routes
            if "_sandbox" in pattern.pattern
        ]

    def _index(self, request: SandboxRequest) -> SandboxResponse:
        base = f"{request.scheme}://{request.host}"
        controls = html_table(["method", "path"], [list(route) for route in self.control_routes()])
        title = html.escape(self.index_title)
        page = (
            f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{title}</title>'
            "<style>body{font-family:sans-serif;margin:2em}td,th{padding:.2em .8em;text-align:left;"
            "vertical-align:top}th{border-bottom:1px solid #999}</style></head><body>"
            f"<h1>{title}</h1>{self.index_html(base)}<h2>Controls</h2>"
            "<p>The sandbox's own routes, never part of the real API; the README's section "
            "<em>The sandboxes</em> says what each does.</p>"
            f"{controls}</body></html>"
        )
        return SandboxResponse(body=page.encode("utf-8"), content_type="text/html; charset=utf-8")

    def _stats_reset(self, request: SandboxRequest) -> SandboxResponse:
        with self._stats_lock:
            self.requests_served = 0
            self.requests_by_route.clear()
        return json_response({"requests": 0})

    # -- state -------------------------------------------------------------------------------
    def state_dump(self) -> dict:
        return {}

    def state_load(self, data: dict) -> None:
        return None


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "Sandbox/1.0"
    # Headers and body go out as two small writes; with Nagle on, the second waits ~40 ms
    # for an ACK on every kept-alive request.
    disable_nagle_algorithm = True
    app: SandboxApp  # set on the subclass made per server

    def log_message(self, format, *args):  # noqa: A002 - the stdlib's signature
        logger.debug("%s %s", self.address_string(), format % args)

    def _handle(self):
        split = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = SandboxRequest(
            method=self.command.upper(),
            path=split.path or "/",
            query=parse_qs(split.query, keep_blank_values=True),
            raw_query=split.query,
            headers=_Headers(list(self.headers.items())),
            body=body,
            scheme="https" if getattr(self.server, "is_tls", False) else "http",
            host=self.headers.get("Host", ""),
        )
        try:
            response = self.app.dispatch(request)
        except DropConnection:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        except Exception as exc:  # a sandbox bug must show as a 500, as a real server would
            logger.exception("sandbox %s failed on %s %s", self.app.name, self.command, self.path)
            response = json_response({"error": "internal sandbox error", "detail": str(exc)}, 500)
        self.send_response(response.status)
        if response.content_type:
            self.send_header("Content-Type", response.content_type)
        for name, value in response.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128
    is_tls = False


class SandboxServer:
    """Serves one ``SandboxApp`` on loopback; optionally keeps its state in a file."""

    def __init__(
        self,
        app: SandboxApp,
        host: str = "127.0.0.1",
        port: int = 0,
        state_file: str | Path | None = None,
        save_every: float = 2.0,
        ssl_context=None,
    ):
        self.app = app
        handler = type(f"{type(app).__name__}Handler", (_RequestHandler,), {"app": app})
        self.httpd = _Server((host, port), handler)
        if ssl_context is not None:
            self.httpd.socket = ssl_context.wrap_socket(self.httpd.socket, server_side=True)
            self.httpd.is_tls = True
        self.state_file = Path(state_file) if state_file else None
        self.save_every = save_every
        self._saved_version = -1
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        if self.state_file and self.state_file.exists():
            with self.app.lock:
                self.app.state_load(json.loads(self.state_file.read_text("utf-8"), parse_float=Decimal))
            self._saved_version = self.app.state_version

    @property
    def port(self) -> int:
        return self.httpd.server_address[1]

    @property
    def url(self) -> str:
        scheme = "https" if self.httpd.is_tls else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    def save_state(self) -> None:
        if not self.state_file or self.app.state_version == self._saved_version:
            return
        with self.app.lock:
            version = self.app.state_version
            data = json_dumps(self.app.state_dump(), compact=True)
        tmp = self.state_file.with_suffix(".tmp")
        tmp.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(data)
        tmp.replace(self.state_file)  # atomic: a crash never leaves half a file
        self._saved_version = version

    def _saver(self) -> None:
        while not self._stop.wait(self.save_every):
            try:
                self.save_state()
            except Exception:
                logger.exception("could not save %s state", self.app.name)

    def start(self) -> "SandboxServer":
        """Serve in background threads (tests, benchmarks)."""
        thread = threading.Thread(
            target=self.httpd.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"{self.app.name}-server",
            daemon=True,
        )
        thread.start()
        self._threads.append(thread)
        if self.state_file:
            saver = threading.Thread(target=self._saver, name=f"{self.app.name}-saver", daemon=True)
            saver.start()
            self._threads.append(saver)
        return self

    def serve_forever(self) -> None:
        """Serve in the foreground until interrupted (``manage.py sandbox``)."""
        if self.state_file:
            saver = threading.Thread(target=self._saver, daemon=True)
            saver.start()
        try:
            self.httpd.serve_forever(poll_interval=0.2)
        finally:
            self.stop()

    def stop(self) -> None:
        self._stop.set()
        try:
            self.save_state()
        finally:
            self.httpd.shutdown() if self._threads else None
            self.httpd.server_close()
