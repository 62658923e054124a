"""django-q2 tasks: each takes ids, loads, and calls one flow function.

They are wake-ups only: the state lives in the database, so a lost or repeated task
changes nothing (the sweeper re-queues what is due).

A failure nobody foresaw is recorded where support looks (a failed sync run, an error line in
the sync log on the customer or shop, a stopped initial sync) by the flow a task calls, or by
the task when its flow keeps no record; then it is raised again, so that django-q2 keeps the
task, with its traceback, as failed.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _
from django_q.exceptions import TimeoutException

from integrations.errors import RemoteError
from integrations.intake import shop_webhooks_reenable, webhook_order_take
from integrations.models import PaymentCapture, Shop, SyncLogEntry
from integrations.orders.attempt import order_transfer
from integrations.orders.poll import orders_poll
from integrations.orders.quota import held_release_all, quota_reconcile_all
from integrations.orders.wakeups import (
    deliveries_send,
    initial_syncs_wake_stale,
    transfers_sweep,
    transfers_wake_lost,
)
from integrations.services import failure_reason, sync_log
from integrations.taskqueue import task_enqueue

logger = logging.getLogger(__name__)


def transfer_order(transfer_id: int) -> str:
    transfer = order_transfer(transfer_id=transfer_id)
    return transfer.state if transfer else "not due"


def webhook_order(delivery_id: int) -> str:
    """An order delivery stored by the intake: record the order, and transfer it at once when it
    was queued (no second trip through the queue)."""
    seen = webhook_order_take(delivery_id=delivery_id)
    if seen is None or not seen.queued:
        return "recorded" if seen else "not taken"
    transfer = order_transfer(transfer_id=seen.transfer_id)
    return transfer.state if transfer else "not due"


def sweep() -> int:
    """Every minute: the backstop for lost wake-ups and for order deliveries whose task waits (the
    stager's work where none runs), and held orders the quota now allows; status pushes and
    capture checks that are due (the stager does these every few seconds); initial syncs that
    stopped making progress."""
    deliveries_send()
    woken = transfers_sweep() + transfers_wake_lost()
    held_release_all()
    status_work_wake_due()
    initial_syncs_wake_stale()
    return len(woken)


def status_work_wake_due() -> int:
    """Order status to the shops: due pushes, due capture checks, and the invoice feeds to read."""
    from integrations.orders.capture import captures_check_due
    from integrations.orders.invoice_status import invoice_feeds_wake_due
    from integrations.orders.shop_status import status_pushes_wake_due

    return len(status_pushes_wake_due()) + len(captures_check_due()) + len(invoice_feeds_wake_due())


def reconcile_quotas() -> int:
    """Every 15 minutes: orders' states and their quota places back in step (each repair logged)."""
    return quota_reconcile_all()


def poll_shop(shop_id: int) -> int:
    """Re-enable a webhook WooCommerce disabled, then read what the webhooks may have missed."""
    shop = Shop.objects.select_related("customer").get(pk=shop_id)
    try:
        if shop.registered_webhooks:
            shop_webhooks_reenable(shop=shop)
        seen = orders_poll(shop=shop)
    except RemoteError as exc:
        sync_log(
            customer=shop.customer,
            shop=shop,
            level=SyncLogEntry.Level.WARNING,
            message=_("Order poll failed, it runs again at the next interval: %(error)s") % {"error": exc},
            object_type="poll",
        )
        return 0
    except TimeoutException:
        sync_log(
            customer=shop.customer,
            shop=shop,
            level=SyncLogEntry.Level.WARNING,
            message=_(
                "Order poll stopped at its time limit; the next poll goes on from the last page it recorded."
            ),
            object_type="poll",
        )
        return 0
    except Exception as exc:
        sync_log(
            customer=shop.customer,
            shop=shop,
            level=SyncLogEntry.Level.ERROR,
            object_type="poll",
            message=f"Order poll failed: {failure_reason(exc)}. It runs again at the next interval.",
        )
        raise
    return seen


def poll_all_shops() -> int:
    """Every few minutes, and when the task cluster starts: one poll per active shop of an
    active, unpaused customer."""
    shops = (
        Shop.objects.filter(is_active=True, customer__is_active=True)
        .exclude(customer__flow_settings__paused=True)
        .values_list("pk", flat=True)
    )
    for shop_id in shops:
        task_enqueue("integrations.tasks.poll_shop", shop_id, group="order-poll")
    return len(shops)


# -- catalogue: articles, prices and stock ----------------------------------------------------


def sync_catalog(customer_id: int, full: bool = False, triggered_by: str = "schedule") -> str:
    """``triggered_by``: who asked ("schedule", or the support person who pressed the button),
    kept on every run of the sync and of the chunks that continue it."""
    from billing.models import Customer
    from integrations.catalog.sync import catalog_sync

    customer = Customer.objects.get(pk=customer_id)
    report = catalog_sync(
        customer=customer, full=full, triggered_by=triggered_by, seconds=settings.CATALOG_CHUNK_SECONDS
    )
    if report.more:  # cut at its time: the next chunk goes on where this one stopped
        task_enqueue(
            "integrations.tasks.sync_catalog", customer_id, False, triggered_by, group="catalog-sync"
        )
    return (
        f"{report.writes} write(s); "
        + ("; ".join(report.skipped) or "ok")
        + ("; continues in the next chunk" if report.more else "")
    )


def sync_all_catalogs(full: bool = False) -> int:
    """Every 5 minutes (changes) and nightly (``full``): one catalogue task per customer."""
    from integrations.catalog.sync import customers_due

    customers = customers_due()
    for customer_id in customers:
        task_enqueue("integrations.tasks.sync_catalog", customer_id, full, group="catalog-sync")
    return len(customers)


def sync_all_catalogs_full() -> int:
    return sync_all_catalogs(full=True)


def run_initial_sync(job_id: int) -> str:
    from integrations.catalog.initial_sync import initial_sync_run

    job = initial_sync_run(job_id=job_id, seconds=settings.CATALOG_CHUNK_SECONDS)
    if job.report.get("continues"):  # cut at its time: the next chunk goes on where this one stopped
        task_enqueue("integrations.tasks.run_initial_sync", job_id, group="initial-sync")
    return job.state


def preview_initial_sync(job_id: int) -> str:
    from integrations.catalog.initial_sync import initial_sync_preview

    job = initial_sync_preview(job_id=job_id)
    return job.state


# -- invoice status in Hogia Smart ---------------------------------------------------------------


def read_invoice_statuses(customer_id: int) -> str:
    from billing.models import Customer
    from integrations.orders.capture import payment_expiry_warnings
    from integrations.orders.invoice_status import invoice_statuses_read

    changed = invoice_statuses_read(customer=Customer.objects.get(pk=customer_id))
    warned = payment_expiry_warnings(customer_id=customer_id)
    return f"{changed} invoice(s) changed, {warned} authorisation warning(s)"


def push_order_statuses(transfer_id: int) -> str:
    """What Hogia Smart did with the order's invoice, to the shop (status, tracking, note, capture)."""
    from integrations.orders.shop_status import pushes_run

    return f"{pushes_run(transfer_id=transfer_id)} change(s) done"


def check_payment_capture(transfer_id: int) -> str:
    """Look again whether the payment plugin captured the order's payment."""
    from integrations.orders.capture import capture_check

    try:
        return capture_check(transfer_id=transfer_id)
    except RemoteError as exc:
        # The shop is away: look again in ten minutes (the claim already says so).
        PaymentCapture.objects.filter(transfer_id=transfer_id, state=PaymentCapture.State.PENDING).update(
            next_check_at=timezone.now() + timedelta(minutes=10)
        )
        return f"shop unavailable: {exc}"


def read_all_invoice_statuses() -> int:
    """Every 5 minutes: one task per customer with invoices the portal made."""
    from integrations.orders.invoice_status import customers_with_invoices

    customers = customers_with_invoices()
    for customer_id in customers:
        task_enqueue("integrations.tasks.read_invoice_statuses", customer_id, group="invoice-status")
    return len(customers)
