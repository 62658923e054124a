"""Fixtures shared by the whole suite: the two sandboxes on real loopback sockets.

Each sandbox server starts once per test session (port 0: the OS picks a free one)
and is reset to its demo data before every test that asks for it, so tests never
see each other's records.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from integrations.sandboxes.hogia import HogiaSmartSandbox
from integrations.sandboxes.http import SandboxServer
from integrations.sandboxes.woocommerce import WooCommerceSandbox


@dataclass
class RunningSandbox:
    app: object
    server: SandboxServer

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def port(self) -> int:
        return self.server.port


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    # PBKDF2's deliberate slowness protects real logins; in tests it only costs time.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _english(settings):
    """The tests read the portal in English, its source language, and quote the English texts.

    Pages requested without a language and texts written outside a request (timelines, sync
    log, e-mails) are then English. The portal's default, Swedish, has its own tests
    (tests/portal/test_translations.py, which turns this off). Dates and amounts are in
    Swedish form in both languages.
    """
    settings.LANGUAGE_CODE = "en"


@pytest.fixture(scope="session")
def _woo_server():
    server = SandboxServer(WooCommerceSandbox(), port=0).start()
    yield RunningSandbox(server.app, server)
    server.stop()


@pytest.fixture(scope="session")
def _hogia_server():
    server = SandboxServer(HogiaSmartSandbox(), port=0).start()
    yield RunningSandbox(server.app, server)
    server.stop()


@pytest.fixture
def woo_sandbox(_woo_server) -> RunningSandbox:
    """The WooCommerce sandbox with the demo stores, fresh for this test."""
    app = _woo_server.app
    with app.lock:
        app.reset()
        app.seed_demo()
    app.faults.clear()
    return _woo_server


@pytest.fixture
def hogia_sandbox(_hogia_server) -> RunningSandbox:
    """The Hogia Smart sandbox with the demo company, fresh for this test."""
    app = _hogia_server.app
    with app.lock:
        app.reset()
        app.seed_demo()
    app.faults.clear()
    return _hogia_server


@pytest.fixture
def hogia_without_rate_limit(hogia_sandbox) -> RunningSandbox:
    """The Hogia sandbox with its rate limit off: for tests about something else (amounts,
    idempotency, order states); the rate limit has its own tests (test_rate_budget.py)."""
    import requests

    requests.post(
        f"{hogia_sandbox.url}/_sandbox/rate-limit", json={"requests": 0}, timeout=10
    ).raise_for_status()
    return hogia_sandbox
