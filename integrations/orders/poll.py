"""The safety net under the webhooks: read the orders the shop changed since the last poll.

WooCommerce's webhooks get lost (deliveries are never retried, a webhook is disabled
after repeated failures): every few minutes, when the task cluster starts, and right
after a disabled webhook was found, each shop is asked for its orders changed after a
watermark. The watermark moves after every page, so a poll that is stopped half-way
(its time limit, a restart) goes on from there next time instead of reading its whole
backlog again.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.utils import timezone

from integrations.clients.woocommerce import MAX_PER_PAGE, WooCommerceClient
from integrations.connections import woocommerce_client
from integrations.logcontext import log_context
from integrations.models import Shop
from integrations.orders.payload import order_usable
from integrations.orders.seen import gmt, order_seen

logger = logging.getLogger(__name__)

# The poll re-reads this much before its watermark: orders committed in the shop while
# the previous poll ran carry a modified time before that poll's watermark.
POLL_OVERLAP = timedelta(minutes=10)
# WooCommerce before 5.8 ignores modified_after silently (woocommerce#30585).
MODIFIED_AFTER_SINCE = (5, 8)


def _version_tuple(version: str) -> tuple[int, ...]:
    parts = []
    for piece in version.split(".")[:3]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


def _watermark_save(shop: Shop, until) -> None:
    if until is not None and (shop.orders_synced_until is None or until > shop.orders_synced_until):
        shop.orders_synced_until = until
        Shop.objects.filter(pk=shop.pk).update(orders_synced_until=until)


def orders_poll(*, shop: Shop, woo: WooCommerceClient | None = None, per_page: int = MAX_PER_PAGE) -> int:
    """Find orders whose webhook never came; returns how many it recorded (unusable ones are
    logged for support and skipped)."""
    with log_context(shop=shop.pk):
        seen = _orders_poll(shop=shop, woo=woo or woocommerce_client(shop=shop), per_page=per_page)
        if seen:
            logger.info("order poll recorded %d order(s) the webhooks may have missed", seen)
    return seen


def _orders_poll(*, shop: Shop, woo: WooCommerceClient, per_page: int) -> int:
    started = timezone.now()
    since = (shop.orders_synced_until or shop.created_at) - POLL_OVERLAP
    seen = 0
    if shop.store_version and _version_tuple(shop.store_version) < MODIFIED_AFTER_SINCE:
        # Too old for modified_after: newest first, stop once past the watermark; the
        # watermark can only move once the newest orders are all read.
        for order in woo.orders_iter(orderby="modified", order="desc", per_page=per_page):
            modified = gmt(order.get("date_modified_gmt")) if isinstance(order, dict) else None
            if modified is not None and modified < since:
                break
            if order_usable(shop=shop, order=order, via="poll"):
                order_seen(shop=shop, order=order, via="poll")
                seen += 1
        _watermark_save(shop, started)
        return seen
    last_modified = None
    for read, order in enumerate(
        woo.orders_iter(modified_after=since, orderby="modified", order="asc", per_page=per_page), start=1
    ):
        if order_usable(shop=shop, order=order, via="poll"):
            order_seen(shop=shop, order=order, via="poll")
            seen += 1
        modified = gmt(order.get("date_modified_gmt")) if isinstance(order, dict) else None
        if modified is not None:
            last_modified = min(modified, started)
        if read % per_page == 0:  # a page is recorded: a stopped poll goes on from here
            _watermark_save(shop, last_modified)
    _watermark_save(shop, started)
    return seen
