"""The production stack's parts as processes on loopback, for the fault suite (tests/faults) and
``benchmark scale``: a private PostgreSQL server, a Redis server, the web server (gunicorn), task
cluster hosts (``manage.py runworkers``) and the sandboxes, each a process (group) of its own that
a test can kill, stop or restart.

Nothing here is used by the portal itself. Every part listens on 127.0.0.1 only, on a free port,
and keeps its files (data, logs) in a folder the caller owns and removes.
"""

from __future__ import annotations

import http.client
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from base64 import urlsafe_b64encode
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
MANAGE = BASE_DIR / "manage.py"
PORT_WAIT_SECONDS = 30


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _tail(path: Path, lines: int) -> list[str]:
    try:
        return path.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return []


def _port_wait(port: int, *, seconds: float, alive=lambda: None, name: str = "") -> None:
    """Until something accepts connections on the port; ``alive()`` raises when the process died."""
    deadline = time.monotonic() + seconds
    while True:
        alive()
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{name or 'the process'} did not answer on port {port} within {seconds:g} s"
                )
            time.sleep(0.1)


# -- processes ---------------------------------------------------------------------------------


class Part:
    """One process (``manage.py <args>``, or ``command``) in its own process group, logging to
    ``folder/<name>.log``. ``with part:`` (or ``start()``) starts it and waits for its port;
    ``kill()`` signals the whole group at once (a crash: the cluster's forked workers die with
    it); ``stop()`` asks with SIGTERM and kills the group after ``grace`` seconds."""

    def __init__(
        self,
        name: str,
        args: list[str],
        *,
        folder: Path,
        env: dict | None = None,
        port: int | None = None,
        command: list[str] | None = None,
        grace: float = 30,
    ):
        self.name, self.args, self.port, self.grace = name, args, port, grace
        self.command = command or [sys.executable, str(MANAGE), *args]
        self.log = Path(folder) / f"{name}.log"
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.process: subprocess.Popen | None = None

    def start(self) -> Part:
        self.launch()
        return self.ready()

    def launch(self) -> None:
        """Start the process without waiting for it (start several, then ``ready()`` each)."""
        with open(self.log, "a") as log:
            self.process = subprocess.Popen(
                self.command,
                env=self.env,
                cwd=BASE_DIR,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def ready(self) -> Part:
        """Wait until it answers on its port (if it has one); stopped again if it never does."""
        try:
            if self.port:
                _port_wait(self.port, seconds=PORT_WAIT_SECONDS, alive=self.check, name=self.name)
        except BaseException:
            self.stop()
            raise
        return self

    def __enter__(self) -> Part:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def check(self) -> None:
        """Raise, with the end of its log, when the process has stopped."""
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(
                f"{self.name} stopped (exit code {self.process.returncode}); its log ends:\n"
                + "\n".join(_tail(self.log, 30))
            )

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the whole process group (the main process and every child it forked)."""
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, sig)
        except ProcessLookupError:
            pass
        if sig == signal.SIGKILL:
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # again if stop_all() sent it: harmless
            try:
                self.process.wait(timeout=self.grace)
            except subprocess.TimeoutExpired:
                pass
        # Whatever of the group is left (the cluster's forked workers too, or a main process
        # that hung after SIGTERM).
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=10)


def _as_root() -> bool:
    return os.geteuid() == 0


class PostgresServer:
    """A private, throw-away PostgreSQL server from Debian's binaries, like tests/postgres.sh:
    trust authentication for ``portal`` on 127.0.0.1, fsync off (nothing must survive a crash of
    the machine, only of the server). As root it runs as the user ``postgres`` (the server
    refuses root); then ``folder``'s parents must be traversable by that user."""

    def __init__(self, folder: Path, port: int | None = None):
        self.folder = Path(folder)
        self.port = port or free_port()
        self.url = f"postgres://portal@127.0.0.1:{self.port}/portal"
        candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
        if not candidates:
            raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql)")
        self.bindir = candidates[-1].parent
        self.data = self.folder / "data"
        self.log = self.folder / "server.log"
        self._initialised = False

    def _run(self, *command: str, check: bool = True) -> subprocess.CompletedProcess:
        prefix = ["runuser", "-u", "postgres", "--"] if _as_root() else []
        return subprocess.run([*prefix, *command], check=check, capture_output=True, text=True, timeout=120)

    def _initialise(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        if _as_root():
            subprocess.run(["id", "postgres"], check=True, capture_output=True)
            shutil.chown(self.folder, "postgres")
        if not (self.data / "PG_VERSION").exists():
            self._run(
                str(self.bindir / "initdb"),
                "-D",
                str(self.data),
                "-U",
                "portal",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
            )
            self._pg_ctl_start()
            self._run(
                str(self.bindir / "createdb"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                "portal",
                "portal",
            )
        else:
            self._pg_ctl_start()
        self._initialised = True

    def _pg_ctl_start(self) -> None:
        options = (
            f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c max_connections=300 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        result = self._run(
            str(self.bindir / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-w",
            "-t",
            "60",
            "-o",
            options,
            "start",
            check=False,
        )
        if result.returncode:
            raise RuntimeError(
                f"PostgreSQL did not start: {result.stderr.strip()}\n" + "\n".join(_tail(self.log, 20))
            )

    def start(self) -> None:
        if self._initialised:
            self._pg_ctl_start()
        else:
            self._initialise()

    def stop(self, mode: str = "fast") -> None:
        if self.data.exists():
            self._run(
                str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop", check=False
            )

    def restart(self, mode: str = "fast") -> None:
        """``pg_ctl restart -m fast``: every connection is cut; clients must reconnect."""
        self.stop(mode)
        self._pg_ctl_start()

    def __enter__(self) -> PostgresServer:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop("immediate")


class RedisServer:
    """``/usr/bin/redis-server`` (Debian's package) on a free port of 127.0.0.1, without
    persistence: a restart loses everything it held, as a crashed production Redis without
    AOF would."""

    BINARY = "/usr/bin/redis-server"

    def __init__(self, folder: Path, port: int | None = None):
        self.folder = Path(folder)
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        if not Path(self.BINARY).exists():
            raise RuntimeError("Redis is not installed (apt-get install redis-server)")
        self.part: Part | None = None

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        command = [
            self.BINARY,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.folder),
            "--daemonize",
            "no",
        ]
        self.part = Part("redis", [], folder=self.folder, port=self.port, command=command, grace=10)
        self.part.start()

    def stop(self) -> None:
        if self.part is not None:
            self.part.stop()

    def restart(self) -> None:
        self.stop()
        self.start()

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


class FrontProxy:
    """The TLS proxy in front of a web host, as in production, without the TLS: it forwards each
    request to ``127.0.0.1:target`` with ``X-Forwarded-Proto: https`` (so production mode does
    not redirect it to HTTPS) and hands back the answer. For clients the harness does not
    control, such as the WooCommerce sandbox's webhook deliveries; a thread of the caller's
    process (a few requests a second, not a load test)."""

    HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade"}

    def __init__(self, target: int, port: int | None = None):
        self.target = target
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server: ThreadingHTTPServer | None = None

    def _handler(self):
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # the web host logs the requests
                pass

            def _forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k: v for k, v in self.headers.items() if k.lower() not in proxy.HOP_BY_HOP}
                headers.update({"X-Forwarded-Proto": "https", "X-Forwarded-For": self.client_address[0]})
                try:
                    upstream = http.client.HTTPConnection("127.0.0.1", proxy.target, timeout=60)
                    upstream.request(self.command, self.path, body=body or None, headers=headers)
                    answer = upstream.getresponse()
                    status, content, answer_headers = answer.status, answer.read(), answer.getheaders()
                    upstream.close()
                except (OSError, http.client.HTTPException):
                    status, content, answer_headers = 502, b"bad gateway", []
                self.send_response(status)
                for name, value in answer_headers:
                    if name.lower() not in proxy.HOP_BY_HOP and name.lower() != "content-length":
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _forward

        return Handler

    def start(self) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        self.server.daemon_threads = True
        threading.Thread(
            target=self.server.serve_forever, name=f"front-proxy-{self.port}", daemon=True
        ).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def __enter__(self) -> FrontProxy:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


# -- the portal's processes --------------------------------------------------------------------


def _keys(folder: Path) -> dict[str, str]:
    """SECRET_KEY and PORTAL_ENCRYPTION_KEY of this stack: made once, shared by every host (as
    production's must be: a second host with its own key could not read the stored secrets)."""
    path = folder / "stack-keys.json"
    if not path.exists():
        keys = {
            "SECRET_KEY": secrets.token_urlsafe(50),
            "PORTAL_ENCRYPTION_KEY": urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        }
        path.write_text(json.dumps(keys))
        path.chmod(0o600)
    return json.loads(path.read_text())


def production_env(
    *,
    folder: Path,
    database_url: str,
    redis_url: str | None,
    public_url: str,
    extra: dict | None = None,
) -> dict[str, str]:
    """The environment of a production host of this stack (every host gets the same)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "PORTAL_ENV": "production",
        "DEBUG": "false",
        **_keys(folder),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DATABASE_URL": database_url,
        "PORTAL_PUBLIC_URL": public_url,
        "PORTAL_DATA_DIR": str(folder),
        "STATIC_ROOT": str(folder / "static"),
        "PYTHONUNBUFFERED": "1",
        "LOG_LEVEL": "INFO",
    }
    env.pop("REDIS_URL", None)  # the caller's own broker must not leak into the stack
    if redis_url:
        env["REDIS_URL"] = redis_url
    env.update(extra or {})
    return env


def web_host(*, folder: Path, name: str, port: int, env: dict) -> Part:
    """The portal's production web server: gunicorn with ``portal/gunicorn.conf.py``."""
    gunicorn = Path(sys.executable).with_name("gunicorn")
    return Part(
        name,
        [],
        folder=folder,
        port=port,
        env={**env, "PORTAL_BIND": f"127.0.0.1:{port}", "WEB_ACCESS_LOG": env.get("WEB_ACCESS_LOG", "")},
        command=[str(gunicorn), "-c", str(BASE_DIR / "portal" / "gunicorn.conf.py"), "portal.wsgi"],
    )


def cluster_host(*, folder: Path, name: str, env: dict, catch_up: bool = False) -> Part:
    """One host's task cluster and order stager (``manage.py runworkers``); without ``catch_up``
    it does not poll every shop when it starts."""
    return Part(name, ["runworkers", *([] if catch_up else ["--no-catch-up"])], folder=folder, env=env)


def sandbox(*, folder: Path, name: str, port: int, env: dict, demo: bool = True) -> Part:
    """``manage.py sandbox woocommerce|hogia`` (``name``) with its demo data."""
    return Part(
        name,
        ["sandbox", name, "--port", str(port), *(["--demo"] if demo else [])],
        folder=folder,
        port=port,
        env=env,
        grace=10,
    )


def stop_all(parts: list[Part], *, grace: float | None = None) -> None:
    """Stop several parts at once: SIGTERM to each, then ``stop()`` each (the waits overlap);
    ``grace`` instead of each part's own, for a teardown that needs no graceful end."""
    for part in parts:
        if part.running:
            part.process.send_signal(signal.SIGTERM)
    for part in parts:
        if grace is not None:
            part.grace = grace
        part.stop()


def migrate(env: dict) -> None:
    """``manage.py migrate --noinput``, and in production mode ``collectstatic`` beside it (the
    manifest storage needs it before the web server starts)."""
    commands = [["migrate", "--noinput"]]
    if env.get("PORTAL_ENV") == "production":
        commands.append(["collectstatic", "--noinput"])
    running = [
        (
            args,
            subprocess.Popen(
                [sys.executable, str(MANAGE), *args],
                env=env,
                cwd=BASE_DIR,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            ),
        )
        for args in commands
    ]
    failures = []
    for args, process in running:
        output, _ = process.communicate(timeout=600)
        if process.returncode:
            failures.append(f"manage.py {' '.join(args)} failed:\n{output[-3000:]}")
    if failures:
        raise RuntimeError("\n".join(failures))
