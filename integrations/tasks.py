"""django-q2 tasks: each takes ids, loads, and calls one flow function.

They are wake-ups only: the state lives in the database, so a lost or repeated task
changes nothing (the sweeper re-queues what is due).
"""
from __future__ import annotations

import logging

from django_q.tasks import async_task

from integrations.errors import RemoteError
from integrations.flows.orders import order_transfer, orders_poll, quotas_release, transfers_due
from integrations.intake import shop_webhooks_reenable
from integrations.models import Shop, SyncLogEntry
from integrations.services import sync_log

logger = logging.getLogger(__name__)


def transfer_order(transfer_id: int) -> str:
    transfer = order_transfer(transfer_id=transfer_id)
    return transfer.state if transfer else "not due"


def sweep() -> int:
    """Every minute: wake a worker for each transfer that is due or whose worker died."""
    due = transfers_due()
    for transfer_id in due:
        async_task("integrations.tasks.transfer_order", transfer_id, group="order-transfer")
    return len(due)


def poll_shop(shop_id: int) -> int:
    shop = Shop.objects.select_related("customer").get(pk=shop_id)
    try:
        seen = orders_poll(shop=shop)
        if shop.registered_webhooks:
            shop_webhooks_reenable(shop=shop)
    except RemoteError as exc:
        sync_log(customer=shop.customer, shop=shop, level=SyncLogEntry.Level.WARNING,
                 message=f"Order poll failed, it runs again at the next interval: {exc}",
                 object_type="poll")
        return 0
    return seen


def poll_all_shops() -> int:
    """Every few minutes: one poll task per active shop of an active, unpaused customer."""
    shops = Shop.objects.filter(is_active=True, customer__is_active=True).exclude(
        customer__flow_settings__paused=True).values_list("pk", flat=True)
    for shop_id in shops:
        async_task("integrations.tasks.poll_shop", shop_id, group="order-poll")
    return len(shops)


def release_quotas() -> int:
    return quotas_release()


# -- catalogue: articles, prices and stock ----------------------------------------------------

def sync_catalog(customer_id: int, full: bool = False) -> str:
    from billing.models import Customer
    from integrations.flows.catalog import catalog_sync

    customer = Customer.objects.get(pk=customer_id)
    report = catalog_sync(customer=customer, full=full, triggered_by="schedule")
    return f"{report.writes} write(s); " + ("; ".join(report.skipped) or "ok")


def sync_all_catalogs(full: bool = False) -> int:
    """Every 5 minutes (changes) and nightly (``full``): one catalogue task per customer."""
    from integrations.flows.catalog import customers_due

    customers = customers_due()
    for customer_id in customers:
        async_task("integrations.tasks.sync_catalog", customer_id, full, group="catalog-sync")
    return len(customers)


def sync_all_catalogs_full() -> int:
    return sync_all_catalogs(full=True)


def run_initial_sync(job_id: int) -> str:
    from integrations.flows.initial_sync import initial_sync_run

    job = initial_sync_run(job_id=job_id)
    return job.state


def preview_initial_sync(job_id: int) -> str:
    from integrations.flows.initial_sync import initial_sync_preview

    job = initial_sync_preview(job_id=job_id)
    return job.state
