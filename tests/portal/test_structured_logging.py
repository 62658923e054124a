"""Structured logging (issue 12): one order followed through the log lines of its flows, end to
end through both sandboxes, and the log context itself (nesting, threads, the two formats)."""

from __future__ import annotations

import json
import logging
import threading
from urllib.parse import quote

import pytest

from integrations.logcontext import (
    JsonFormatter,
    LogContextFilter,
    PlainFormatter,
    current_log_context,
    log_context,
)
from integrations.models import FlowSettings, OrderTransfer
from integrations.orders.attempt import order_transfer
from integrations.orders.invoice_status import invoice_statuses_read
from integrations.orders.poll import orders_poll
from integrations.orders.shop_status import pushes_run
from integrations.services import shop_connection_test
from tests.integrations.helpers import connected_customer
from tests.integrations.test_order_status_to_shop import POSTNORD, hogia_sets, klarna_order, store_control


@pytest.fixture
def records(caplog):
    """Every record from here on, with the context filter on caplog's handler as LOGGING puts it
    on the console's; the flows' DEBUG lines (each remote call) included."""
    context = LogContextFilter()
    caplog.handler.addFilter(context)
    caplog.set_level(logging.DEBUG, logger="integrations")
    yield caplog
    caplog.handler.removeFilter(context)


def _portal_lines(records) -> list[logging.LogRecord]:
    """The portal's own lines: the sandboxes stand in for the remote systems and log as they do."""
    return [
        r
        for r in records
        if r.name.startswith("integrations.") and not r.name.startswith("integrations.sandboxes")
    ]


def _say(record: logging.LogRecord) -> str:
    return record.getMessage()


@pytest.mark.django_db
@pytest.mark.usefixtures("hogia_without_rate_limit")
def test_one_order_can_be_followed_through_its_log_lines_by_shop_order_and_transfer(
    woo_sandbox, hogia_sandbox, records
):
    customer, (shop, _second) = connected_customer(woo_sandbox, hogia_sandbox)
    store_control(shop, "POST", "settings", {"plugins": ["klarna", "shipment_tracking"]})
    assert shop_connection_test(shop=shop).ok
    shop.refresh_from_db()
    order = klarna_order(shop)
    billing = order["billing"]
    buyer = [billing["email"], quote(billing["email"]), f"{billing['first_name']} {billing['last_name']}"]
    assert all(buyer)  # the fixture has a buyer whose data could leak

    orders_poll(shop=shop)
    transfer = OrderTransfer.objects.get(shop=shop, woo_order_id=order["id"])
    start = len(records.records)
    order_transfer(transfer_id=transfer.pk)
    transfer.refresh_from_db()
    assert transfer.state == OrderTransfer.State.INVOICED and transfer.invoice_number
    attempt = records.records[start:]

    FlowSettings.objects.filter(customer=customer).update(order_status_to_shop=True)
    invoice_statuses_read(customer=customer)  # the invoice as created: nothing to do
    hogia_sets(hogia_sandbox, transfer, "Delivered", POSTNORD)
    invoice_statuses_read(customer=customer)
    start = len(records.records)
    assert pushes_run(transfer_id=transfer.pk)
    push = records.records[start:]

    # Every line of the attempt and of the status push names the shop, the order and the transfer.
    followed = _portal_lines(attempt) + _portal_lines(push)
    assert len(followed) >= 10  # the claim, each remote call, the invoice, the status, the capture
    for record in followed:
        assert (record.shop, record.order, record.transfer) == (
            shop.pk,
            transfer.order_number,
            transfer.pk,
        ), (
            record.name,
            _say(record),
        )
        assert f"shop={shop.pk} order={transfer.order_number} transfer={transfer.pk}" in record.context
    # One info line for each step that changed something elsewhere.
    steps = [_say(r) for r in followed if r.levelno == logging.INFO]
    assert f"invoice {transfer.invoice_number} created in Hogia Smart" in steps
    assert any(s.startswith("customer ") and "created in Hogia Smart" in s for s in steps), steps
    assert any(s.startswith("order status set to completed in the shop") for s in steps), steps
    assert "tracking written to the shop (shipment_tracking)" in steps
    assert "payment capture by klarna: captured" in steps

    # As JSON: one object per line, with the context's fields.
    formatter = JsonFormatter()
    for record in followed:
        line = json.loads(formatter.format(record))
        assert {"time", "level", "logger", "message", "host", "pid"} <= set(line)
        assert line["time"].endswith("Z")
        assert (line["shop"], line["order"], line["transfer"]) == (
            shop.pk,
            transfer.order_number,
            transfer.pk,
        )

    # No buyer's name or e-mail anywhere in the portal's lines, as text or as JSON.
    plain = PlainFormatter()
    for record in _portal_lines(records.records):
        written = plain.format(record) + formatter.format(record)
        for personal in buyer:
            assert personal not in written, (record.name, _say(record))


def test_nested_contexts_merge_and_end_with_their_block():
    with log_context(shop=3, order="1234"):
        with log_context(transfer=77, order="1235", push=None):
            assert current_log_context() == {"shop": 3, "order": "1235", "transfer": 77}
        assert current_log_context() == {"shop": 3, "order": "1234"}
    assert current_log_context() == {}
    with pytest.raises(ValueError, match="msg"):  # would overwrite the record's own message
        with log_context(msg="x"):
            pass


def test_the_filter_and_formatters_write_the_context_and_keep_a_callers_extra():
    logger = logging.getLogger("integrations.test")
    record = logger.makeRecord(logger.name, logging.INFO, __file__, 1, "invoice %s created", ("5",), None)
    with log_context(shop=3, order="12 34", transfer=77):
        assert LogContextFilter().filter(record)
    assert (record.shop, record.order, record.transfer) == (3, "12 34", 77)
    assert record.context == "shop=3 order=12_34 transfer=77"  # one token per field, for grep
    assert "integrations.test [shop=3 order=12_34 transfer=77]: invoice 5 created" in PlainFormatter().format(
        record
    )
    line = json.loads(JsonFormatter().format(record))
    assert (line["message"], line["level"], line["shop"], line["order"]) == (
        "invoice 5 created",
        "INFO",
        3,
        "12 34",
    )

    outside = logger.makeRecord(
        logger.name, logging.INFO, __file__, 1, "sweeper woke 2", (), None, extra={"shop": 9}
    )
    LogContextFilter().filter(outside)
    assert outside.shop == 9 and outside.context == ""
    assert PlainFormatter().format(outside).endswith("INFO integrations.test: sweeper woke 2")
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        import sys

        failed = logger.makeRecord(logger.name, logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    LogContextFilter().filter(failed)
    assert "RuntimeError: boom" in json.loads(JsonFormatter().format(failed))["exc_info"]


def test_contexts_do_not_leak_between_threads():
    entered, checked = threading.Event(), threading.Event()
    seen: dict[str, dict] = {}

    def first():
        with log_context(shop=1, transfer=10):
            entered.set()
            checked.wait(5)
            seen["first"] = current_log_context()

    def second():
        entered.wait(5)
        seen["second before"] = current_log_context()
        with log_context(shop=2):
            seen["second"] = current_log_context()
        checked.set()

    with log_context(customer=7):  # the starting thread's context is not a new thread's either
        threads = [threading.Thread(target=first), threading.Thread(target=second)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        assert current_log_context() == {"customer": 7}
    assert seen == {"second before": {}, "second": {"shop": 2}, "first": {"shop": 1, "transfer": 10}}
