"""``make run``: the whole portal in the foreground, stopped together by Ctrl-C.

Starts the two sandboxes, the task cluster with its order stager (``runworkers``)
and the web server as child processes, after migrating and setting up the demo.
Ctrl-C, SIGTERM or a closed terminal stop the parts in the reverse order of their
start and end with "Stopped." and exit code 0. If a part dies on its own, the others
are stopped too and the command fails, so that a half-running portal never looks
healthy.
"""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
STOP_SECONDS = 20  # for all parts together; then what still runs is killed


def _wait_for_port(port: int, process: subprocess.Popen, stop_asked: list, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not stop_asked:
        if process.poll() is not None:
            raise CommandError(f"a part exited with code {process.returncode} while starting")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    if not stop_asked:
        raise CommandError(f"nothing answered on port {port} within {seconds:.0f} s")


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _stop_in_order(processes: list[tuple[str, subprocess.Popen]]) -> None:
    """Stop the parts last started first: the portal and the task cluster before the sandboxes
    they call, so that no last request or task fails on a sandbox already gone."""
    deadline = time.monotonic() + STOP_SECONDS
    for _name, process in reversed(processes):
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # its group: the task cluster's workers too
            process.wait()


class Command(BaseCommand):
    help = (
        "Run the portal with its task cluster and both sandboxes in the foreground (Ctrl-C stops everything)."
    )

    def _demo_connect(self) -> None:
        """Set the demo customer up as support would after onboarding, once: each connection
        tested (the support desk would otherwise show a working demo as "never tested") and the
        shops' webhooks pointed at this portal, so demo orders arrive live."""
        from integrations.errors import RemoteError
        from integrations.intake import shop_webhooks_register
        from integrations.models import HogiaConnection, Shop
        from integrations.sandboxes import demo
        from integrations.services import hogia_connection_test, shop_connection_test

        ours = {"customer__organisation_number": demo.HOGIA_ORGANIZATION_NUMBER}
        for connection in HogiaConnection.objects.filter(last_check_ok__isnull=True, **ours):
            report = hogia_connection_test(connection=connection, triggered_by="demo set-up")
            if not report.ok:
                self.stderr.write(f"The demo's Hogia Smart connection test failed: {report.summary}")
        for shop in Shop.objects.filter(**ours).select_related("customer"):
            if shop.last_check_ok is None:
                report = shop_connection_test(shop=shop, triggered_by="demo set-up")
                if not report.ok:
                    self.stderr.write(f"The connection test of {shop.name} failed: {report.summary}")
            if not shop.registered_webhooks:
                try:
                    shop_webhooks_register(shop=shop)
                except RemoteError as exc:
                    self.stderr.write(f"Could not register the webhooks of {shop.name}: {exc}")

    def add_arguments(self, parser):
        parser.add_argument("--no-demo", action="store_true", help="do not create the demo customer")

    def handle(self, *args, no_demo: bool, **options):
        ports = {
            "portal": settings.PORTAL_PORT,
            "WooCommerce sandbox": settings.WOO_SANDBOX_PORT,
            "Hogia Smart sandbox": settings.HOGIA_SANDBOX_PORT,
        }
        busy = [f"{name} ({port})" for name, port in ports.items() if not _port_free(port)]
        if busy:
            raise CommandError(
                f"port(s) already in use: {', '.join(busy)}. Stop what uses them, or choose others "
                f"with PORTAL_PORT, WOO_SANDBOX_PORT and HOGIA_SANDBOX_PORT."
            )

        quiet = io.StringIO()
        call_command("migrate", interactive=False, verbosity=0, stdout=quiet)
        call_command("setup_schedules", stdout=quiet)
        demo_lines = [] if no_demo else call_command("demo_setup", stdout=quiet).splitlines()

        manage = str(Path(settings.BASE_DIR) / "manage.py")
        data = Path(settings.DATA_DIR)
        parts = [
            (
                "WooCommerce sandbox",
                settings.WOO_SANDBOX_PORT,
                [
                    sys.executable,
                    manage,
                    "sandbox",
                    "woocommerce",
                    "--port",
                    str(settings.WOO_SANDBOX_PORT),
                    "--state-file",
                    str(data / "sandbox-woocommerce.json"),
                    "--demo",
                ],
            ),
            (
                "Hogia Smart sandbox",
                settings.HOGIA_SANDBOX_PORT,
                [
                    sys.executable,
                    manage,
                    "sandbox",
                    "hogia",
                    "--port",
                    str(settings.HOGIA_SANDBOX_PORT),
                    "--state-file",
                    str(data / "sandbox-hogia.json"),
                    "--demo",
                ],
            ),
            ("task cluster", None, [sys.executable, manage, "runworkers"]),
            (
                "portal",
                settings.PORTAL_PORT,
                [sys.executable, manage, "runserver", f"127.0.0.1:{settings.PORTAL_PORT}", "--noreload"],
            ),
        ]
        processes: list[tuple[str, subprocess.Popen]] = []
        stop_asked: list[int] = []

        def on_stop(signum, frame):
            stop_asked.append(signum)

        for signum in STOP_SIGNALS:
            signal.signal(signum, on_stop)
        failure = ""
        try:
            for name, port, command in parts:
                if stop_asked:
                    break
                # Each part in a process group of its own: a terminal's Ctrl-C reaches this
                # process only, which stops the parts in order, and a part that ends is then
                # always either told to or a failure.
                process = subprocess.Popen(command, stdin=subprocess.DEVNULL, process_group=0)
                processes.append((name, process))
                if port:
                    _wait_for_port(port, process, stop_asked)
            if not stop_asked:
                self._running(data=data, no_demo=no_demo, demo_lines=demo_lines)
            while not stop_asked:
                ended = next(((name, p) for name, p in processes if p.poll() is not None), None)
                if ended:
                    failure = f"{ended[0]} stopped (exit code {ended[1].returncode}); stopping the rest."
                    break
                time.sleep(0.5)
        finally:
            _stop_in_order(processes)
        if failure:
            raise CommandError(failure)
        self.stdout.write("Stopped.")

    def _running(self, *, data: Path, no_demo: bool, demo_lines: list[str]) -> None:
        if not no_demo:
            self._demo_connect()
        self.stdout.write(self.style.SUCCESS("\nThe portal is running (Ctrl-C stops everything):"))
        self.stdout.write(f"  portal and admin     http://127.0.0.1:{settings.PORTAL_PORT}/admin/")
        self.stdout.write(
            f"  WooCommerce sandbox  http://127.0.0.1:{settings.WOO_SANDBOX_PORT}/   "
            "(its stores, their keys and its controls)"
        )
        self.stdout.write(
            f"  Hogia Smart sandbox  http://127.0.0.1:{settings.HOGIA_SANDBOX_PORT}/   "
            "(its companies, API clients and controls)"
        )
        self.stdout.write(f"  data folder          {data}")
        for line in demo_lines:
            self.stdout.write(f"  {line}")
        if not no_demo:
            self.stdout.write(
                "  try it               .venv/bin/python manage.py demo_orders   (orders become "
                "invoices; see Order transfers in the admin)"
            )
        self.stdout.flush()
