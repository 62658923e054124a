"""``make run``: the whole portal in the foreground, stopped together by Ctrl-C.

Starts the two sandboxes, the task cluster with its order stager (``runworkers``)
and the web server as child
processes, after migrating and setting up the demo. If any part dies, the others
are stopped too, so that a half-running portal never looks healthy.
"""
from __future__ import annotations

import io
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError


def _wait_for_port(port: int, process: subprocess.Popen, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise CommandError(f"a part exited with code {process.returncode} while starting")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise CommandError(f"nothing answered on port {port} within {seconds:.0f} s")


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class _Terminated(Exception):
    """SIGTERM: unlike Ctrl-C in a terminal, it reached this process only."""


class Command(BaseCommand):
    help = ("Run the portal with its task cluster and both sandboxes in the foreground "
            "(Ctrl-C stops everything).")

    def _demo_webhooks(self) -> None:
        """Point the demo shops' webhooks at this portal, once, so demo orders arrive live."""
        from integrations.errors import RemoteError
        from integrations.intake import shop_webhooks_register
        from integrations.models import Shop
        from integrations.sandboxes import demo

        for shop in Shop.objects.filter(customer__organisation_number=demo.HOGIA_ORGANIZATION_NUMBER,
                                        registered_webhooks={}).select_related("customer"):
            try:
                shop_webhooks_register(shop=shop)
            except RemoteError as exc:
                self.stderr.write(f"Could not register the webhooks of {shop.name}: {exc}")

    def add_arguments(self, parser):
        parser.add_argument("--no-demo", action="store_true", help="do not create the demo customer")

    def handle(self, *args, no_demo: bool, **options):
        ports = {"portal": settings.PORTAL_PORT, "WooCommerce sandbox": settings.WOO_SANDBOX_PORT,
                 "Hogia Smart sandbox": settings.HOGIA_SANDBOX_PORT}
        busy = [f"{name} ({port})" for name, port in ports.items() if not _port_free(port)]
        if busy:
            raise CommandError(
                f"port(s) already in use: {', '.join(busy)}. Stop what uses them, or choose others "
                f"with PORTAL_PORT, WOO_SANDBOX_PORT and HOGIA_SANDBOX_PORT.")

        quiet = io.StringIO()
        call_command("migrate", interactive=False, verbosity=0, stdout=quiet)
        call_command("setup_schedules", stdout=quiet)
        demo_lines = [] if no_demo else call_command("demo_setup", stdout=quiet).splitlines()

        manage = str(Path(settings.BASE_DIR) / "manage.py")
        data = Path(settings.DATA_DIR)
        parts = [
            ("WooCommerce sandbox", settings.WOO_SANDBOX_PORT,
             [sys.executable, manage, "sandbox", "woocommerce", "--port", str(settings.WOO_SANDBOX_PORT),
              "--state-file", str(data / "sandbox-woocommerce.json"), "--demo"]),
            ("Hogia Smart sandbox", settings.HOGIA_SANDBOX_PORT,
             [sys.executable, manage, "sandbox", "hogia", "--port", str(settings.HOGIA_SANDBOX_PORT),
              "--state-file", str(data / "sandbox-hogia.json"), "--demo"]),
            ("task cluster", None, [sys.executable, manage, "runworkers"]),
            ("portal", settings.PORTAL_PORT,
             [sys.executable, manage, "runserver", f"127.0.0.1:{settings.PORTAL_PORT}", "--noreload"]),
        ]
        processes: list[tuple[str, subprocess.Popen]] = []
        # Ctrl-C in a terminal reaches every process of the group at once; a SIGTERM (or a
        # part dying) reaches only us, so then we pass the stop on.
        children_told = False

        def on_sigterm(signum, frame):
            raise _Terminated

        def stop_all():
            if not children_told:
                for _name, process in processes:
                    if process.poll() is None:
                        process.send_signal(signal.SIGINT)
            deadline = time.monotonic() + 20
            for _name, process in processes:
                try:
                    process.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    process.kill()

        signal.signal(signal.SIGTERM, on_sigterm)
        try:
            for name, port, command in parts:
                process = subprocess.Popen(command)
                processes.append((name, process))
                if port:
                    _wait_for_port(port, process)
            if not no_demo:
                self._demo_webhooks()
            self.stdout.write(self.style.SUCCESS("\nThe portal is running (Ctrl-C stops everything):"))
            self.stdout.write(f"  portal and admin     http://127.0.0.1:{settings.PORTAL_PORT}/admin/")
            self.stdout.write(f"  WooCommerce sandbox  http://127.0.0.1:{settings.WOO_SANDBOX_PORT}/"
                              f"wp-json/wc/v3/")
            self.stdout.write(f"  Hogia Smart sandbox  http://127.0.0.1:{settings.HOGIA_SANDBOX_PORT}/")
            self.stdout.write(f"  data folder          {data}")
            for line in demo_lines:
                self.stdout.write(f"  {line}")
            if not no_demo:
                self.stdout.write("  try it               .venv/bin/python manage.py demo_orders   (orders become "
                                  "invoices; see Order transfers in the admin)")
            self.stdout.flush()
            while True:
                for name, process in processes:
                    if process.poll() is not None:
                        raise CommandError(f"{name} stopped (exit code {process.returncode}); "
                                           f"stopping the rest.")
                time.sleep(0.5)
        except KeyboardInterrupt:
            children_told = True
            self.stdout.write("\nStopping…")
        except _Terminated:
            self.stdout.write("\nTerminated: stopping…")
        finally:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            stop_all()
