"""The stock rule: what a shop shows is Hogia's balance minus what the shops sold that Hogia has not booked."""
from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import Callable

from billing.models import Customer
from integrations.clients.woocommerce import WooCommerceClient
from integrations.connections import woocommerce_client
from integrations.models import OrderStockLines, OrderTransfer, Shop

TransferState = OrderTransfer.State

# Orders on their way to an invoice, whose stock WooCommerce has taken but Hogia Smart not.
RESERVING_TRANSFER_STATES = (TransferState.RECEIVED, TransferState.QUEUED, TransferState.TRANSFERRING,
                             TransferState.HELD, TransferState.NEEDS_ATTENTION)
# WooCommerce reduces stock when an order reaches one of these (wc_maybe_reduce_stock_levels).
STOCK_REDUCING_STATUSES = ("processing", "completed", "on-hold")


def reserved_quantities(*, customer: Customer,
                        woo_for: Callable[[Shop], WooCommerceClient] | None = None) -> dict[str, Decimal]:
    """Quantity per SKU sold in any of the customer's shops and not yet invoiced in Hogia Smart.

    Those orders are in a state on the way to an invoice (received, queued, transferring,
    held by the quota, needing attention) and in a WooCommerce status that has reduced
    stock. Each order's lines are read from the shop once and kept.
    """
    woo_for = woo_for or (lambda shop: woocommerce_client(shop=shop))
    transfers = list(OrderTransfer.objects.filter(
        shop__customer=customer, state__in=RESERVING_TRANSFER_STATES,
        woo_status__in=STOCK_REDUCING_STATUSES).select_related("shop", "stock_lines"))
    missing: dict[int, list[OrderTransfer]] = defaultdict(list)
    for transfer in transfers:
        if not hasattr(transfer, "stock_lines"):
            missing[transfer.shop_id].append(transfer)
    for shop_transfers in missing.values():
        shop = shop_transfers[0].shop
        by_id = {t.woo_order_id: t for t in shop_transfers}
        woo = woo_for(shop)
        ids = list(by_id)
        for start in range(0, len(ids), 100):
            for order in woo.orders_iter(include=ids[start:start + 100], orderby="id"):
                quantities: dict[str, str] = {}
                for line in order.get("line_items") or []:
                    sku = str(line.get("sku") or "").strip()
                    if sku:
                        quantities[sku] = format(Decimal(quantities.get(sku, "0"))
                                                 + Decimal(str(line.get("quantity") or 0)), "f")
                transfer = by_id.get(int(order["id"]))
                if transfer is not None:
                    lines, _ = OrderStockLines.objects.get_or_create(transfer=transfer,
                                                                     defaults={"quantities": quantities})
                    transfer.stock_lines = lines
    reserved: dict[str, Decimal] = defaultdict(Decimal)
    for transfer in transfers:
        lines = getattr(transfer, "stock_lines", None)
        for sku, quantity in (lines.quantities if lines else {}).items():
            reserved[sku] += Decimal(quantity)
    return dict(reserved)
