"""The stock rule: what a shop shows is Hogia Smart's balance minus what the customer's shops
have sold and Hogia Smart has not booked yet.

    shop stock = Hogia balance − Σ pieces taken from stock by this customer's orders (any of
                 its shops) whose invoice does not exist in Hogia Smart yet

- *Taken from stock* is what WooCommerce itself recorded on each order line
  (``_reduced_stock``, in the REST and webhook payloads of WooCommerce 3.5 and later): set
  when the order reaches processing, on-hold or completed (``wc_maybe_reduce_stock_levels``,
  also for custom statuses that call it), lowered by a refund that restocks, removed when
  the order is cancelled or goes back to pending. So an on-hold bank-transfer order the
  portal does not transfer yet is subtracted, and a cancelled one is not.
- *Invoice exists*: from then on Hogia's balance counts the order itself, whatever the
  order waits for next (a credit invoice, support).
- It is recorded at every sighting of an order (webhook or poll), so it is as fresh as the
  portal's knowledge of the order, and each sync asks for it again at the moment it writes.
- A customer who has switched transferring orders off books them in Hogia Smart some other
  way the portal cannot see: nothing is subtracted for them.

Both the periodic sync (``to_shop``) and the initial sync call ``stock_reserved`` and
``shop_stock_quantity``; articles created in Hogia Smart from a shop's stock start at
``hogia_opening_balance``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal, InvalidOperation
from typing import Callable, Iterable

from django.utils import timezone

from billing.models import Customer
from integrations.clients.woocommerce import WooCommerceClient
from integrations.connections import woocommerce_client
from integrations.models import FlowSettings, OrderStockLines, OrderTransfer, Shop

# WooCommerce reduces stock when an order reaches one of these (wc_maybe_reduce_stock_levels);
# only used for an order whose lines carry no ``_reduced_stock`` at all (a WooCommerce older than 3.5).
STOCK_REDUCING_STATUSES = ("processing", "completed", "on-hold")
REDUCED_STOCK_KEY = "_reduced_stock"


def _line_meta(line: dict, key: str):
    for meta in line.get("meta_data") or []:
        if isinstance(meta, dict) and meta.get("key") == key:
            return meta.get("value")
    return None


def _pieces(value) -> Decimal | None:
    try:
        pieces = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return pieces if pieces.is_finite() else None


def order_stock_taken(order: dict) -> dict[str, str]:
    """Per SKU, the pieces the order has taken from the shop's stock now (as WooCommerce says)."""
    lines = [line for line in order.get("line_items") or [] if isinstance(line, dict)]
    recorded = any(_line_meta(line, REDUCED_STOCK_KEY) is not None for line in lines)
    reducing = str(order.get("status") or "") in STOCK_REDUCING_STATUSES
    taken: dict[str, Decimal] = defaultdict(Decimal)
    for line in lines:
        sku = str(line.get("sku") or "").strip()
        if not sku:
            continue
        value = _line_meta(line, REDUCED_STOCK_KEY)
        if value is None:
            # A line without it took nothing (its product does not manage stock), unless the
            # shop records it on no line at all: then the status is all there is to go by.
            if recorded or not reducing:
                continue
            value = line.get("quantity")
        pieces = _pieces(value)
        if pieces is not None and pieces > 0:
            taken[sku] += pieces
    return {sku: format(pieces, "f") for sku, pieces in taken.items()}


def order_stock_record(*, transfer_id: int, order: dict) -> bool:
    """Record what the order takes from stock now; True when it changed (the next sync looks at it)."""
    taken = order_stock_taken(order)
    existing = OrderStockLines.objects.filter(transfer_id=transfer_id).only("pk", "quantities").first()
    now = timezone.now()
    if existing is None:
        if not taken:
            return False
        OrderStockLines.objects.create(transfer_id=transfer_id, quantities=taken, read_at=now, changed_at=now)
        return True
    if existing.quantities == taken:
        return False
    OrderStockLines.objects.filter(pk=existing.pk).update(quantities=taken, read_at=now, changed_at=now)
    return True


def _open_transfers(customer: Customer):
    return OrderTransfer.objects.filter(shop__customer=customer, hogia_invoice_id="")


def _backfill(customer: Customer, woo_for: Callable[[Shop], WooCommerceClient]) -> None:
    """Open orders recorded before their lines were (or whose record was reset): read them once."""
    missing = list(
        _open_transfers(customer)
        .filter(stock_lines__isnull=True, woo_status__in=STOCK_REDUCING_STATUSES)
        .select_related("shop")
        .order_by("shop_id", "woo_order_id")
    )
    by_shop: dict[int, list[OrderTransfer]] = defaultdict(list)
    for transfer in missing:
        by_shop[transfer.shop_id].append(transfer)
    for transfers in by_shop.values():
        woo = woo_for(transfers[0].shop)
        by_id = {t.woo_order_id: t for t in transfers}
        ids = list(by_id)
        for start in range(0, len(ids), 100):
            for order in woo.orders_iter(include=ids[start : start + 100], orderby="id"):
                transfer = by_id.get(int(order["id"]))
                if transfer is not None:
                    OrderStockLines.objects.get_or_create(
                        transfer=transfer, defaults={"quantities": order_stock_taken(order)}
                    )


def stock_reserved(
    *,
    customer: Customer,
    skus: Iterable[str] | None = None,
    woo_for: Callable[[Shop], WooCommerceClient] | None = None,
) -> dict[str, Decimal]:
    """Pieces per SKU that the customer's shops have taken and Hogia Smart has not invoiced yet.

    Asked again for every chunk a sync writes, so that an order recorded meanwhile counts.
    """
    if FlowSettings.objects.filter(customer=customer, transfer_orders=False).exists():
        return {}
    _backfill(customer, woo_for or (lambda shop: woocommerce_client(shop=shop)))
    wanted = set(skus) if skus is not None else None
    reserved: dict[str, Decimal] = defaultdict(Decimal)
    for quantities in (
        OrderStockLines.objects.filter(transfer__in=_open_transfers(customer))
        .values_list("quantities", flat=True)
        .iterator(chunk_size=2000)
    ):
        for sku, pieces in (quantities or {}).items():
            if wanted is None or sku in wanted:
                reserved[sku] += Decimal(pieces)
    return dict(reserved)


def stock_changed_skus(*, customer: Customer, since) -> set[str]:
    """SKUs of orders whose stock taken changed after ``since``: the sync pushes them again."""
    skus: set[str] = set()
    lines = OrderStockLines.objects.filter(transfer__shop__customer=customer)
    if since is not None:
        lines = lines.filter(changed_at__gte=since)
    for quantities in lines.values_list("quantities", flat=True).iterator(chunk_size=2000):
        skus.update(quantities or {})
    return skus


@dataclass(frozen=True)
class ShopStock:
    """What to write as a product's stock: ``quantity``, and why it is not Hogia's figure."""

    quantity: int
    balance: Decimal
    reserved: Decimal
    clamped: bool = False


def shop_stock_quantity(*, balance: Decimal, reserved: Decimal, backorders_allowed: bool) -> ShopStock:
    """Hogia's balance minus the reserved pieces, in whole pieces (WooCommerce counts pieces).

    Below zero only where the shop sells on backorder; otherwise 0: a negative count would
    make the shop show a debt of goods, and WooCommerce takes such a value without a word.
    """
    quantity = int((balance - reserved).to_integral_value(rounding=ROUND_FLOOR))
    if quantity < 0 and not backorders_allowed:
        return ShopStock(quantity=0, balance=balance, reserved=reserved, clamped=True)
    return ShopStock(quantity=quantity, balance=balance, reserved=reserved)


def hogia_opening_balance(*, shop_quantity, reserved: Decimal) -> Decimal:
    """The balance an article created in Hogia Smart from a shop starts with.

    The shop's figure already excludes its open orders; Hogia lowers its balance again when
    they are invoiced, so they are added back here instead of being subtracted twice.
    """
    return Decimal(int(shop_quantity or 0)) + reserved
