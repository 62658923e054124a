"""A plugin version run against the customer's last orders before it goes live.

For each order: the Hogia Smart invoice as the live mapping makes it today, and as this version
would make it, as a readable diff, and whether the VAT gate would block it. Nothing is written
anywhere and Hogia Smart is never called: the buyer's customer number is left as a
placeholder (no rule may set it), so a dry run costs only the reads of the orders.

The orders are read from the shops (the customer's last ``limit`` orders the portal has seen,
newest first); where a shop cannot be reached, from the last webhook delivery it sent for
the order.
"""

from __future__ import annotations

import difflib
import logging
import time
from datetime import date, timedelta
from decimal import Decimal

from django.utils import timezone
from django.utils.translation import gettext as _

from integrations.clients.base import json_loads
from integrations.connections import woocommerce_client
from integrations.errors import RemoteError
from integrations.mapping.invoices import InvoiceArticles, InvoiceBlocked
from integrations.models import (
    FlowSettings,
    LinesWithoutSku,
    OrderTransfer,
    PluginDryRun,
    PluginVersion,
    WebhookDelivery,
)
from integrations.orders.identity import invoice_reference
from integrations.plugins.apply import invoice_mapped
from integrations.plugins.rules import RuleError
from integrations.plugins.versions import live_plugin_version

logger = logging.getLogger(__name__)

DEFAULT_ORDERS = 50
BUYER = "(buyer)"  # stands in for the Hogia customer number, which a dry run does not look up


def plugin_dry_run(
    *,
    version: PluginVersion,
    by: str,
    limit: int = DEFAULT_ORDERS,
    orders: list[tuple[OrderTransfer, dict]] | None = None,
) -> PluginDryRun:
    """Run ``version`` against the last ``limit`` orders (or the given ``(transfer, order)`` pairs)."""
    started = time.perf_counter()
    settings = FlowSettings.objects.filter(customer_id=version.customer_id).first()
    pairs = orders if orders is not None else orders_recent(customer_id=version.customer_id, limit=limit)
    live = live_plugin_version(settings=settings)
    articles = (
        InvoiceArticles(
            **{k: getattr(settings, f"{k}_article_number") for k in ("freight", "fee", "discount")}
        )
        if settings
        else InvoiceArticles()
    )
    text_lines = bool(settings) and settings.lines_without_sku != LinesWithoutSku.BLOCK
    today = timezone.localdate()
    results = [
        _one(
            transfer, order, live=live, version=version, articles=articles, text_lines=text_lines, today=today
        )
        for transfer, order in pairs
    ]
    return PluginDryRun.objects.create(
        version=version,
        created_by=by,
        orders=len(results),
        changed=sum(1 for r in results if r["changed"]),
        blocked=sum(1 for r in results if r["blocked"]),
        results=results,
        seconds=Decimal(time.perf_counter() - started).quantize(Decimal("0.001")),
    )


def _one(
    transfer: OrderTransfer, order: dict, *, live, version, articles, text_lines: bool, today: date
) -> dict:
    def mapped(with_version):
        return invoice_mapped(
            order,
            version=with_version,
            articles=articles,
            text_lines_without_sku=text_lines,
            customer_number=BUYER,
            invoice_date=today,
            due_date=today + timedelta(days=30),
            result_unit=transfer.shop.result_unit or None,
            reference=invoice_reference(
                shop_name=transfer.shop.name,
                order_number=str(order.get("number") or order.get("id")),
                woo_order_id=transfer.woo_order_id,
            ),
        )

    result = {
        "transfer_id": transfer.pk,
        "order": transfer.order_number or str(transfer.woo_order_id),
        "shop": transfer.shop.name,
        "blocked_today": "",
        "blocked": "",
        "diff": "",
        "fired": [],
        "changed": False,
    }
    try:
        now = _text(mapped(live))
    except (InvoiceBlocked, RuleError, KeyError) as exc:
        now = ""
        result["blocked_today"] = exc.as_text() if isinstance(exc, InvoiceBlocked) else str(exc)
    try:
        after = mapped(version)
    except InvoiceBlocked as blocked:
        result["blocked"] = blocked.as_text()
        return result
    except (RuleError, KeyError) as exc:
        result["blocked"] = _("The plugin cannot map this order: %(error)s") % {"error": exc}
        return result
    text = _text(after)
    result["fired"] = after.fired
    result["diff"] = "\n".join(
        difflib.unified_diff(
            now.splitlines(),
            text.splitlines(),
            _("today"),
            _("version %(number)s") % {"number": version.number},
            lineterm="",
            n=2,
        )
    )
    result["changed"] = bool(result["diff"])
    return result


def _text(mapped) -> str:
    """The invoice as people read it: one field a line, lines numbered."""
    out = [
        f"{key}: {value}"
        for key, value in sorted(mapped.invoice.items())
        if key not in ("invoiceDate", "dueDate")
    ]
    for number, line in enumerate(mapped.lines, start=1):
        out.append(
            f"line {number}: "
            + " · ".join(
                f"{key} {line[key]}"
                for key in (
                    "articleNumber",
                    "description",
                    "quantity",
                    "unitPrice",
                    "vatPercent",
                    "discountPercent",
                    "unitType",
                )
                if key in line
            )
        )
    return "\n".join(out)


def orders_recent(*, customer_id: int, limit: int) -> list[tuple[OrderTransfer, dict]]:
    """The customer's last ``limit`` orders, newest first, as the shops have them now."""
    transfers = list(
        OrderTransfer.objects.filter(shop__customer_id=customer_id)
        .select_related("shop")
        .order_by("-created_at", "-id")[:limit]
    )
    by_shop: dict[int, list[OrderTransfer]] = {}
    for transfer in transfers:
        by_shop.setdefault(transfer.shop_id, []).append(transfer)
    found: dict[tuple[int, int], dict] = {}
    for shop_transfers in by_shop.values():
        shop = shop_transfers[0].shop
        ids = [t.woo_order_id for t in shop_transfers]
        try:
            orders = woocommerce_client(shop=shop).orders_iter(include=ids, orderby="id", per_page=100)
            found.update({(shop.pk, int(o["id"])): o for o in orders})
        except RemoteError as exc:
            logger.warning("dry run: shop %s could not be read (%s); using its last deliveries", shop.pk, exc)
            found.update(_delivered(shop_id=shop.pk, woo_order_ids=ids))
    return [
        (t, found[(t.shop_id, t.woo_order_id)]) for t in transfers if (t.shop_id, t.woo_order_id) in found
    ]


def _delivered(*, shop_id: int, woo_order_ids: list[int]) -> dict:
    orders = {}
    for delivery in WebhookDelivery.objects.filter(
        shop_id=shop_id, resource_id__in=woo_order_ids, outcome=WebhookDelivery.Outcome.ACCEPTED
    ).order_by("received_at"):
        try:
            orders[(shop_id, int(delivery.resource_id))] = json_loads(bytes(delivery.body))
        except (ValueError, TypeError):
            continue
    return orders
