"""The browser tests' fixtures: one Chromium for the package, one browser context per person
and window, the portal's data, a screenshot of each window of a failed test (the page checks
take their own of each page they fail), and a summary line (tests, pages, wall time,
screenshots) at the end of the run."""

from __future__ import annotations

import os
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from billing.models import ServiceHourEntry
from integrations.models import Flow, OrderEvent, OrderTransfer, SyncRun
from tests.browser.helpers import BrowserThread, Visitor, chromium_path, stats
from tests.factories import (
    CustomerFactory,
    FlowSettingsFactory,
    HogiaConnectionFactory,
    ShopFactory,
    StaffFactory,
    SubscriptionFactory,
    UserFactory,
    package,
)


@pytest.fixture(autouse=True)
def _english():
    """Overrides tests/conftest.py's fixture of the same name: here the portal runs as configured,
    Swedish by default, so what it writes outside a request (timelines, the start package's line on
    the service account) is Swedish as in production, not English text on a Swedish page. Every
    visitor chooses its own language."""


@pytest.fixture(scope="package")
def chromium():
    path = chromium_path()
    if not os.access(path, os.X_OK):
        pytest.skip(f"no Chromium at {path}: install Debian's chromium (.ci/run does) or set CHROMIUM_PATH")
    browser = BrowserThread(path)
    yield browser
    browser.close()


@pytest.fixture
def open_browser(request, chromium, live_server):
    """``open_browser(language=…, width=…)``: a fresh context on the live server."""
    visitors: list[Visitor] = []
    request.node.browser_visitors = visitors

    def open_(*, language: str, width: int) -> Visitor:
        visitor = Visitor(
            chromium, base_url=live_server.url, language=language, width=width, name=request.node.name
        )
        visitors.append(visitor)
        return visitor

    yield open_
    for visitor in visitors:
        visitor.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call" and report.failed:
        for visitor in getattr(item, "browser_visitors", []):
            try:
                report.sections.append(("screenshot", str(visitor.screenshot())))
            except Exception as exc:  # the browser may be what failed; the report must still come
                report.sections.append(("screenshot", f"none: {type(exc).__name__}: {exc}"))
            if visitor.problems:  # found before the test failed on something else
                report.sections.append(("page checks", "\n".join(visitor.problems)))
    return report


_first_start: list[float] = []
_browser_tests: set[str] = set()


def pytest_runtest_setup(item):
    if item.get_closest_marker("browser"):
        _browser_tests.add(item.nodeid)
        if not _first_start:
            _first_start.append(time.monotonic())


def pytest_runtest_logreport(report):
    # The browser tests run one after the other: their wall time runs from the first one's
    # setup (Chromium's start) to the last one's teardown (its stop).
    if report.nodeid not in _browser_tests:
        return
    if report.when == "call":
        stats.tests += 1
    if report.when == "teardown" and _first_start:
        stats.seconds = time.monotonic() - _first_start[0]


def pytest_terminal_summary(terminalreporter):
    if not stats.tests:
        return
    terminalreporter.write_sep(
        "-",
        f"browser suite: {stats.tests} tests, {stats.pages} pages visited, {stats.seconds:.1f} s wall time",
    )
    for shot in stats.screenshots:
        terminalreporter.write_line(f"screenshot: {shot}")


@pytest.fixture
def portal_data():
    """A support login, and a customer with a login, two shops (long names, as phones meet
    them), 30 orders in six states (among them waiting out Hogia Smart's outage, and rejected
    by it, with the error texts the customer must not see), a sync run and the service account."""
    # Written as the portal writes outside a request (the worker, the sync): in its own language.
    with translation.override(settings.LANGUAGE_CODE):
        return _portal_data()


def _portal_data() -> dict:
    support = StaffFactory(username="support", first_name="Sara", last_name="Support")
    customer = CustomerFactory(name="Kaffe & Kakor Aktiebolag i Norrköping", key_account_manager=support)
    SubscriptionFactory(customer=customer, package=package("400"))
    FlowSettingsFactory(customer=customer, flow=Flow.COMBO)
    HogiaConnectionFactory(customer=customer)
    user = UserFactory(username="agda")
    customer.users.add(user)
    shop = ShopFactory(customer=customer, name="Kafébutiken med det långa namnet")
    ShopFactory(customer=customer, name="Nya butiken", catalog__overwrite_accepted_at=None)
    now = timezone.now()
    State = OrderTransfer.State
    # The texts an attempt writes (integrations/orders/attempt.py), with the portal's own words.
    rejected = _("%(system)s rejected the request: %(detail)s") % {
        "system": "Hogia Smart",
        "detail": "HTTP 400 {'errors': ['unknown article']}",
    }
    advice = _(
        "Create the article in Hogia Smart with the same article number as the shop's SKU "
        "(or correct the SKU in the shop), then retry the order."
    )
    orders = []
    for n, (state, error) in enumerate(
        [
            (State.INVOICED, ""),
            (State.QUEUED, "HTTP 503 injected fault"),
            (State.NEEDS_ATTENTION, rejected),
            (State.HELD, ""),
            (State.CREDITED, ""),
            (State.FILTERED, ""),
        ]
        * 5,
        start=1001,
    ):
        orders.append(
            OrderTransfer(
                shop=shop,
                woo_order_id=n,
                order_number=str(n),
                state=state,
                last_error=error,
                sequence_id=f"00000000-0000-4000-8000-{n:012d}",
                buyer=f"Långnamnsson Handelsbolag {n}",
                total=Decimal("123456.78"),
                currency="SEK",
                order_created_gmt=now,
                created_at=now,
                invoice_number=str(n + 5000) if state in (State.INVOICED, State.CREDITED) else "",
                attempts=1 if state in (State.QUEUED, State.NEEDS_ATTENTION) else 0,
                next_attempt_at=now + timedelta(minutes=10) if state == State.QUEUED else None,
                attention=advice if state == State.NEEDS_ATTENTION else "",
            )
        )
    orders = OrderTransfer.objects.bulk_create(orders)
    for order in orders[:3]:
        OrderEvent.objects.create(
            transfer=order,
            kind="received",
            message=_("Received by %(via)s: status %(label)s, queued for transfer.")
            % {"via": _("webhook"), "label": "processing"},
        )
    OrderEvent.objects.create(
        transfer=orders[1],
        kind="attempt_failed",
        message=_("%(what)s (%(error)s); next attempt at %(time)s (in %(wait).0f s, attempt %(attempt)d).")
        % {
            "what": _("%(system)s unavailable") % {"system": "Hogia Smart"},
            "error": "HTTP 503 injected fault",
            "time": "14:05:00",
            "wait": 30,
            "attempt": 1,
        },
    )
    OrderEvent.objects.create(
        transfer=orders[2],
        kind="needs_attention",
        message=" ".join(
            [
                _("%(system)s rejected the request: %(detail)s")
                % {"system": "Hogia Smart", "detail": "HTTP 400 unknown article SE-X-1234567890."},
                advice,
            ]
        ),
    )
    SyncRun.objects.create(
        customer=customer,
        shop=shop,
        kind=SyncRun.Kind.ARTICLES,
        outcome=SyncRun.Outcome.SUCCEEDED,
        finished_at=now,
    )
    ServiceHourEntry.objects.create(
        customer=customer,
        kind=ServiceHourEntry.Kind.TIME_SPENT,
        hours=Decimal("-1.5"),
        category=ServiceHourEntry.Category.QUALIFIED_SUPPORT,
        staff=support,
        note="Genomgång av momskoderna i Hogia Smart",
    )
    return {"support": support, "customer": customer, "user": user, "shop": shop, "orders": orders}
