"""Run one sandbox (a stand-in for WooCommerce or Hogia Smart) in the foreground."""

from __future__ import annotations

import signal
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from integrations.sandboxes.http import SandboxServer


def sandbox_app(name: str):
    if name == "woocommerce":
        from integrations.sandboxes.woocommerce import WooCommerceSandbox

        return WooCommerceSandbox()
    if name == "hogia":
        from integrations.sandboxes.hogia import HogiaSmartSandbox

        return HogiaSmartSandbox()
    raise CommandError(f"unknown sandbox {name!r}: woocommerce or hogia")


def _stop_once(signum, frame):
    # A second Ctrl-C (or the parent's SIGINT after the terminal's) must not cut short
    # the final save of the sandbox's state.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt


class Command(BaseCommand):
    help = "Serve the WooCommerce or Hogia Smart sandbox on loopback until interrupted."
    requires_system_checks = []  # a stand-in for a remote system: it uses neither database nor URLs

    def add_arguments(self, parser):
        parser.add_argument("name", choices=["woocommerce", "hogia"])
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument(
            "--port",
            type=int,
            default=None,
            help="default: WOO_SANDBOX_PORT (8101) or HOGIA_SANDBOX_PORT (8102)",
        )
        parser.add_argument(
            "--state-file", default="", help="keep the sandbox's data in this JSON file across restarts"
        )
        parser.add_argument(
            "--demo", action="store_true", help="load the demo data when there is no saved state"
        )

    def handle(self, *args, name, host, port, state_file, demo, **options):
        if port is None:
            port = settings.WOO_SANDBOX_PORT if name == "woocommerce" else settings.HOGIA_SANDBOX_PORT
        app = sandbox_app(name)
        restored = bool(state_file) and Path(state_file).exists()
        server = SandboxServer(app, host=host, port=port, state_file=state_file or None)
        if demo and not restored:
            with app.lock:
                app.seed_demo()
        signal.signal(signal.SIGINT, _stop_once)
        signal.signal(signal.SIGTERM, _stop_once)
        self.stdout.write(f"{name} sandbox on {server.url}/ (controls under /_sandbox/)")
        self.stdout.flush()
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
