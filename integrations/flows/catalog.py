"""Articles, prices and stock between the shops and Hogia Smart, in all three flows.

- Flows 1 and 3, shop → Hogia Smart (``articles_to_hogia``): products changed in the
  shop (``modified_after`` with an overlap, plus products named by webhooks) become
  articles with the same number (SKU); a variable product's variations become one
  flat article each. Products without a SKU are listed for support, never guessed at.
- Flows 2 and 3, Hogia Smart → shops (``hogia_changes_read`` + ``hogia_to_shop``):
  articles changed after the rowversion watermark are recorded per customer, newest
  ``rowVersion`` only (conditional UPDATE: an older page read late changes nothing),
  then every shop of the customer gets what its switches allow (flow 2: products
  created and/or updated, names; flows 2 and 3: prices, campaign prices, stock), found
  by SKU also when the SKU is a variation's, written through the batch endpoints.
- Nothing is written when the mapped payload hashes to what was last written.
- Stock pushed = Hogia's balance minus what the customer's shops sold that Hogia Smart
  has not invoiced yet (``reserved_quantities``): WooCommerce already took those off
  its own stock, and pushing Hogia's figure would sell them twice.

One catalogue sync per customer at a time (a claim on ``CatalogState``), so that a
slow run and the next one never push two versions of one article at once.
"""
from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import timedelta
from decimal import Decimal
from typing import Callable, Iterable, Iterator

from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from billing.models import Customer, Feature
from billing.selectors import feature_refusal
from integrations.clients.hogia_smart import HogiaSmartClient
from integrations.clients.woocommerce import BatchResult, WooCommerceClient
from integrations.connections import hogia_client, woocommerce_client
from integrations.errors import NotFound, RemoteError, RemoteRejected
from integrations.mapping.articles import (NotMappable, ShopTaxes, Switches, article_from_product,
                                           content_hash, decimal_or_none, new_product_from_article,
                                           shop_fields_from_article)
from integrations.models import (ArticleBinding, CatalogState, Flow, FlowSettings, HogiaArticle,
                                 HogiaConnection, OrderStockLines, OrderTransfer, ProductChange, Shop,
                                 ShopCatalog, SyncLogEntry, SyncRun)
from integrations.rules import flow_switch_enabled
from integrations.services import sync_log, sync_run_finish, sync_run_start

logger = logging.getLogger(__name__)

Level = SyncLogEntry.Level
TransferState = OrderTransfer.State

# Products changed in the shop while the previous sync ran carry a modified time before
# that sync's start: read this much before the watermark.
OVERLAP = timedelta(minutes=10)
CLAIM_SECONDS = 900
# Above this many SKUs to find in a shop, listing the whole shop (100 a page) costs fewer
# requests than asking for them by SKU (50 a request).
LIST_SHOP_ABOVE = 500
# Orders on their way to an invoice, whose stock WooCommerce has taken but Hogia Smart not.
RESERVING_TRANSFER_STATES = (TransferState.RECEIVED, TransferState.QUEUED, TransferState.TRANSFERRING,
                             TransferState.HELD, TransferState.NEEDS_ATTENTION)
# WooCommerce reduces stock when an order reaches one of these (wc_maybe_reduce_stock_levels).
STOCK_REDUCING_STATUSES = ("processing", "completed", "on-hold")
# A deterministic sequenceId per customer and article number: a repeated create, by a
# retry, a resumed initial sync or another shop, returns the article created first.
ARTICLE_NAMESPACE = uuid.UUID("5c0d7a52-2f7e-4d0b-9e59-0f3b8a1c6d21")


def article_sequence_id(*, customer: Customer, number: str) -> uuid.UUID:
    return uuid.uuid5(ARTICLE_NAMESPACE, f"{customer.pk}:article:{number}")


@dataclass
class CatalogReport:
    """What one catalogue sync did; ``writes`` counts records written in either system."""

    runs: list[SyncRun] = field(default_factory=list)
    writes_woo: int = 0
    writes_hogia: int = 0
    skipped: list[str] = field(default_factory=list)

    @property
    def writes(self) -> int:
        return self.writes_woo + self.writes_hogia


def shop_catalog(*, shop: Shop) -> ShopCatalog:
    catalog, _ = ShopCatalog.objects.get_or_create(shop=shop)
    return catalog


def _settings(customer: Customer) -> FlowSettings | None:
    return FlowSettings.objects.filter(customer=customer).select_related("customer").first()


def shop_taxes(*, woo: WooCommerceClient) -> ShopTaxes:
    """The shop's tax classes and rates from ``GET /taxes``.

    A failure propagates (the sync run fails and is repeated): guessing WooCommerce's
    default classes for a shop whose rates could not be read could book the wrong VAT.
    """
    return ShopTaxes.from_rates(woo.taxes())


# -- claim ------------------------------------------------------------------------------------

def _claim(customer: Customer) -> CatalogState | None:
    state, _ = CatalogState.objects.get_or_create(customer=customer)
    now = timezone.now()
    claimed = (CatalogState.objects.filter(pk=state.pk)
               .filter(Q(locked_until__isnull=True) | Q(locked_until__lt=now))
               .update(locked_until=now + timedelta(seconds=CLAIM_SECONDS)))
    if not claimed:
        return None
    state.refresh_from_db()
    return state


def _release(state: CatalogState, *, full: bool) -> None:
    now = timezone.now()
    state.locked_until = None
    state.last_sync_at = now
    fields = ["locked_until", "last_sync_at"]
    if full:
        state.last_full_sync_at = now
        fields.append("last_full_sync_at")
    state.save(update_fields=fields)


# -- the sync -----------------------------------------------------------------------------------

def catalog_sync(*, customer: Customer, full: bool = False, triggered_by: str = "",
                 woo_for: Callable[[Shop], WooCommerceClient] | None = None,
                 hogia: HogiaSmartClient | None = None) -> CatalogReport:
    """One catalogue sync of a customer in the directions its flow has.

    ``full`` reads every product and article instead of the changes (a nightly
    reconciliation and the benchmark's second run); unchanged ones are still not written.
    """
    report = CatalogReport()
    settings = _settings(customer)
    if settings is None:
        report.skipped.append("the customer has no flow settings")
        return report
    if settings.paused:
        report.skipped.append("the integration is paused")
        return report
    connection = HogiaConnection.objects.filter(customer=customer).first()
    if connection is None:
        report.skipped.append("the customer has no Hogia Smart connection")
        return report
    if settings.flow == Flow.COMBO:
        refusal = feature_refusal(customer=customer, feature=Feature.COMBO_FLOW, what="Flow 3 (Combo)")
        if refusal:
            sync_log(customer=customer, level=Level.WARNING, object_type="catalogue",
                     message=f"Catalogue sync skipped: {refusal}")
            report.skipped.append(refusal)
            return report
    state = _claim(customer)
    if state is None:
        report.skipped.append("another catalogue sync of the customer is running")
        return report
    try:
        hogia = hogia or hogia_client(connection=connection)
        woo_for = woo_for or (lambda shop: woocommerce_client(shop=shop))
        shops = list(Shop.objects.filter(customer=customer, is_active=True).select_related("customer"))
        if settings.flow in (Flow.ECOM, Flow.COMBO):
            if settings.sync_articles:
                for shop in shops:
                    run = articles_to_hogia(shop=shop, woo=woo_for(shop), hogia=hogia, full=full,
                                            flow=settings.flow, triggered_by=triggered_by)
                    report.runs.append(run)
                    report.writes_hogia += run.created_count + run.updated_count
            else:
                report.skipped.append("article sync is switched off")
        if settings.flow in (Flow.ERP, Flow.COMBO):
            plan = _to_shop_plan(settings)
            if plan.switches.any or plan.create:
                numbers = hogia_changes_read(customer=customer, hogia=hogia, state=state, full=full)
                reserved = (reserved_quantities(customer=customer, woo_for=woo_for)
                            if plan.switches.stock else {})
                for shop in shops:
                    # A shop that missed a push (it was down) catches up here, not only nightly.
                    behind = shop_lagging_numbers(shop=shop)
                    run = hogia_to_shop(shop=shop, numbers=list(dict.fromkeys(numbers + behind)),
                                        woo=woo_for(shop), plan=plan, reserved=reserved,
                                        triggered_by=triggered_by)
                    report.runs.append(run)
                    report.writes_woo += run.created_count + run.updated_count
            for reason in plan.skipped:
                report.skipped.append(reason)
    finally:
        _release(state, full=full)
    return report


# -- flows 1 and 3: shop → Hogia Smart ---------------------------------------------------------

@dataclass
class ShopProduct:
    product: dict
    parent: dict | None = None

    @property
    def woo_id(self) -> int:
        return int(self.product["id"])

    @property
    def parent_id(self) -> int | None:
        return int(self.parent["id"]) if self.parent else None

    @property
    def label(self) -> str:
        name = self.product.get("name") or ""
        if self.parent:
            name = f"{self.parent.get('name', '')} ({name})"
        return f"{name} (id {self.woo_id})"


def shop_products_all(*, woo: WooCommerceClient) -> Iterator[ShopProduct]:
    """Every simple product and every variation of the shop (variable parents are not articles)."""
    for product in woo.products_iter():
        if product.get("type") == "variable":
            for variation in woo.variations_iter(int(product["id"])):
                yield ShopProduct(variation, product)
        else:
            yield ShopProduct(product)


def _shop_products_changed(*, shop: Shop, woo: WooCommerceClient, catalog: ShopCatalog,
                           changes: list[ProductChange]) -> Iterator[ShopProduct]:
    since = catalog.products_synced_until - OVERLAP
    seen: set[int] = set()
    for product in woo.products_iter(modified_after=since):
        seen.add(int(product["id"]))
        if product.get("type") == "variable":
            for variation in woo.variations_iter(int(product["id"])):
                seen.add(int(variation["id"]))
                yield ShopProduct(variation, product)
        else:
            yield ShopProduct(product)
    parents: dict[int, dict] = {}
    for change in changes:
        if change.deleted or change.woo_id in seen:
            continue
        try:
            product = woo.product_get(change.woo_id)
        except NotFound:
            continue
        seen.add(change.woo_id)
        parent_id = int(product.get("parent_id") or 0)
        if product.get("type") == "variation" and parent_id:
            if parent_id not in parents:
                parents[parent_id] = woo.product_get(parent_id)
            yield ShopProduct(product, parents[parent_id])
        elif product.get("type") == "variable":
            for variation in woo.variations_iter(int(product["id"])):
                yield ShopProduct(variation, product)
        else:
            yield ShopProduct(product)


@dataclass
class MappedProducts:
    articles: dict[str, tuple[ShopProduct, dict]] = field(default_factory=dict)
    missing_sku: list[dict] = field(default_factory=list)
    duplicated: dict[str, list[str]] = field(default_factory=dict)
    unmappable: list[dict] = field(default_factory=list)


def products_map(items: Iterable[ShopProduct], *, taxes: ShopTaxes,
                 prices_include_tax: bool | None = None) -> MappedProducts:
    """Map products to articles; SKUs on two products are held back, not guessed at."""
    mapped = MappedProducts()
    owners: dict[str, list[ShopProduct]] = defaultdict(list)
    for item in items:
        sku = str(item.product.get("sku") or "").strip()
        if not sku:
            mapped.missing_sku.append({"id": item.woo_id, "name": item.label})
            continue
        owners[sku].append(item)
    for sku, items_for_sku in owners.items():
        if len({i.woo_id for i in items_for_sku}) > 1:
            mapped.duplicated[sku] = [i.label for i in items_for_sku]
            continue
        item = items_for_sku[0]
        try:
            article = article_from_product(item.product, taxes=taxes, parent=item.parent,
                                           prices_include_tax=prices_include_tax)
        except NotMappable as exc:
            mapped.unmappable.append({"sku": sku, "name": item.label, "reason": exc.reason})
            continue
        mapped.articles[sku] = (item, article)
    return mapped


def _article_base(article: dict) -> dict:
    """The fields the shop is master of in flows 1 and 3 (prices and stock only seed a create)."""
    return {key: article[key] for key in ("number", "name", "unit", "vatPercent")}


def hogia_article_write(*, customer: Customer, hogia: HogiaSmartClient, article: dict,
                        known: HogiaArticle | None) -> tuple[str, dict]:
    """Create or update one article; returns ``("created"|"updated", answer)``.

    A create carries the deterministic sequenceId; a 409 (the number exists, made by
    hand or by another shop) turns into an update of that article.
    """
    base = _article_base(article)
    if known is not None and known.hogia_id:
        return "updated", hogia.article_update(known.hogia_id, base)
    try:
        return "created", hogia.article_create(article, article_sequence_id(customer=customer,
                                                                             number=article["number"]))
    except RemoteRejected as exc:
        if exc.status != 409:
            raise
    existing = hogia.article_by_number(article["number"])
    if existing is None:
        raise RemoteError(f"Hogia Smart says article {article['number']} exists but cannot find it",
                          system="Hogia Smart")
    return "updated", hogia.article_update(str(existing["id"]), base)


def hogia_article_written(*, customer: Customer, number: str, answer: dict, written_hash: str) -> None:
    """Remember the article's id and what was written (never its values: the feed brings those)."""
    article, created = HogiaArticle.objects.get_or_create(
        customer=customer, number=number,
        defaults={"hogia_id": str(answer.get("id") or ""), "written_hash": written_hash})
    if not created:
        HogiaArticle.objects.filter(pk=article.pk).update(hogia_id=str(answer.get("id") or article.hogia_id),
                                                          written_hash=written_hash,
                                                          updated_at=timezone.now())


def _bind(shop: Shop, sku: str, *, woo_id: int, parent_id: int | None) -> ArticleBinding:
    binding, created = ArticleBinding.objects.get_or_create(
        shop=shop, sku=sku, defaults={"woo_id": woo_id, "woo_parent_id": parent_id})
    if not created and (binding.woo_id != woo_id or binding.woo_parent_id != parent_id):
        binding.woo_id, binding.woo_parent_id = woo_id, parent_id
        binding.written_hash = ""  # another product now: write it once
        binding.save(update_fields=["woo_id", "woo_parent_id", "written_hash", "updated_at"])
    return binding


def _log_mapping_problems(*, shop: Shop, run: SyncRun, mapped: MappedProducts) -> None:
    customer = shop.customer
    for item in mapped.missing_sku:
        sync_log(customer=customer, shop=shop, run=run, level=Level.WARNING, object_type="product",
                 object_ref=f"id {item['id']}",
                 message=f"Not transferred: {item['name']} has no SKU. Give it an article number in "
                         f"the shop; the portal does not guess one.")
    for sku, owners in mapped.duplicated.items():
        sync_log(customer=customer, shop=shop, run=run, level=Level.WARNING, object_type="product",
                 object_ref=sku,
                 message=f"Not transferred: SKU {sku} is used by {len(owners)} products in the shop "
                         f"({'; '.join(owners)}). Make it unique in the shop.")
    for item in mapped.unmappable:
        sync_log(customer=customer, shop=shop, run=run, level=Level.WARNING, object_type="product",
                 object_ref=item["sku"], message=f"Not transferred: {item['name']}: {item['reason']}")
    run.details = {**run.details,
                   "missing_sku": mapped.missing_sku[:200],
                   "duplicated_sku": dict(list(mapped.duplicated.items())[:200]),
                   "unmappable": mapped.unmappable[:200]}


def articles_to_hogia(*, shop: Shop, woo: WooCommerceClient, hogia: HogiaSmartClient, full: bool = False,
                      flow: int | None = None, triggered_by: str = "") -> SyncRun:
    """Flows 1 and 3: the shop's new and changed products become Hogia Smart articles."""
    customer = shop.customer
    run = sync_run_start(customer=customer, shop=shop, kind=SyncRun.Kind.ARTICLES, flow=flow,
                         triggered_by=triggered_by)
    run.details = {"direction": "shop → Hogia Smart", "full": full}
    catalog = shop_catalog(shop=shop)
    started = timezone.now()
    changes = list(ProductChange.objects.filter(shop=shop))
    try:
        taxes = shop_taxes(woo=woo)
        if full or catalog.products_synced_until is None:
            items = list(shop_products_all(woo=woo))
            run.details["full"] = True
        else:
            items = list(_shop_products_changed(shop=shop, woo=woo, catalog=catalog, changes=changes))
        _forget_deleted(shop=shop, changes=changes)
        mapped = products_map(items, taxes=taxes, prices_include_tax=catalog.prices_include_tax)
        run.read_count = len(items)
        _log_mapping_problems(shop=shop, run=run, mapped=mapped)
        run.skipped_count += len(mapped.missing_sku) + len(mapped.duplicated) + len(mapped.unmappable)
        known = {a.number: a for a in HogiaArticle.objects.filter(customer=customer,
                                                                    number__in=list(mapped.articles))}
        for sku, (item, article) in mapped.articles.items():
            digest = content_hash(_article_base(article))
            _bind(shop, sku, woo_id=item.woo_id, parent_id=item.parent_id)
            existing = known.get(sku)
            if existing is not None and existing.written_hash == digest:
                run.skipped_count += 1
                continue
            try:
                action, answer = hogia_article_write(customer=customer, hogia=hogia, article=article,
                                                     known=existing)
            except RemoteRejected as exc:
                run.failed_count += 1
                sync_log(customer=customer, shop=shop, run=run, level=Level.ERROR, object_type="article",
                         object_ref=sku, message=f"Hogia Smart refused article {sku}: {exc}",
                         details={"errors": exc.errors if isinstance(exc.errors, (dict, list)) else None})
                continue
            hogia_article_written(customer=customer, number=sku, answer=answer, written_hash=digest)
            if action == "created":
                run.created_count += 1
            else:
                run.updated_count += 1
    except RemoteError as exc:
        sync_log(customer=customer, shop=shop, run=run, level=Level.ERROR, object_type="catalogue",
                 message=f"Article sync stopped, it runs again at the next interval: {exc}")
        return sync_run_finish(run=run, error=str(exc))
    # Only after every product is written: a sync that stopped half-way is simply repeated.
    catalog.products_synced_until = started
    catalog.save(update_fields=["products_synced_until"])
    ProductChange.objects.filter(pk__in=[c.pk for c in changes], noted_at__lte=started).delete()
    return sync_run_finish(run=run)


def _forget_deleted(*, shop: Shop, changes: list[ProductChange]) -> None:
    # A deleted product frees its SKU in the shop; the Hogia article stays (it may be on invoices).
    deleted = [c.woo_id for c in changes if c.deleted]
    if deleted:
        ArticleBinding.objects.filter(shop=shop).filter(
            Q(woo_id__in=deleted) | Q(woo_parent_id__in=deleted)).delete()


# -- flows 2 and 3: Hogia Smart → shops --------------------------------------------------------

@dataclass
class ToShopPlan:
    switches: Switches
    create: bool
    only_send_to_webshop: bool
    skipped: list[str] = field(default_factory=list)


def _to_shop_plan(settings: FlowSettings) -> ToShopPlan:
    """What the customer's flow and switches (and package, today) let Hogia Smart write to the shops."""
    skipped: list[str] = []
    enabled: dict[str, bool] = {}
    for name in ("sync_prices", "sync_campaign_prices", "sync_stock"):
        on, reason = flow_switch_enabled(settings=settings, name=name)
        enabled[name] = on
        if not on and getattr(settings, name):
            # Ticked while the package allowed it, then the package was lowered.
            sync_log(customer=settings.customer, level=Level.WARNING, object_type="catalogue",
                     message=f"Skipped: {reason}")
            skipped.append(reason)
    erp = settings.flow == Flow.ERP
    switches = Switches(name=erp and settings.sync_articles and settings.update_products,
                        prices=enabled["sync_prices"], campaign=enabled["sync_campaign_prices"],
                        stock=enabled["sync_stock"])
    return ToShopPlan(switches=switches, create=erp and settings.sync_articles and settings.create_products,
                      only_send_to_webshop=erp, skipped=skipped)


def hogia_articles_record(*, customer: Customer, articles: Iterable[dict]) -> list[str]:
    """Record articles read from Hogia Smart, newest ``rowVersion`` only; returns the numbers
    whose values moved forward (an older snapshot than the one recorded changes nothing)."""
    batch = [a for a in articles if a.get("number")]
    if not batch:
        return []
    existing = {number: (pk, row_version) for pk, number, row_version in HogiaArticle.objects.filter(
        customer=customer, number__in=[a["number"] for a in batch]).values_list("pk", "number", "row_version")}
    moved: list[str] = []
    new_rows = []
    for article in batch:
        number, row_version = str(article["number"]), int(article.get("rowVersion") or 0)
        data = _jsonable(article)
        if number not in existing:
            new_rows.append(HogiaArticle(customer=customer, number=number, hogia_id=str(article.get("id") or ""),
                                         row_version=row_version, data=data))
            existing[number] = (None, row_version)
            moved.append(number)
            continue
        pk, known = existing[number]
        if pk is None or row_version <= known:
            continue
        # The conditional UPDATE is the guarantee; the comparison above only saves queries.
        if HogiaArticle.objects.filter(pk=pk, row_version__lt=row_version).update(
                row_version=row_version, data=data, hogia_id=str(article.get("id") or ""),
                updated_at=timezone.now()):
            moved.append(number)
    if new_rows:
        try:
            with transaction.atomic():
                HogiaArticle.objects.bulk_create(new_rows)
        except IntegrityError:  # a concurrent recorder inserted some: fall back to one by one
            for row in new_rows:
                hogia_articles_record(customer=customer, articles=[{**row.data, "number": row.number}])
    return moved


def _jsonable(value):
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def hogia_changes_read(*, customer: Customer, hogia: HogiaSmartClient, state: CatalogState,
                       full: bool = False, page: int = 500) -> list[str]:
    """Read the articles changed after the watermark (every article when ``full``); returns the
    numbers to bring to the shops (in a full read: all of them, so drift is corrected)."""
    source = hogia.articles_iter() if full else hogia.articles_changed_since(state.hogia_row_version)
    numbers: list[str] = []
    highest = state.hogia_row_version
    buffer: list[dict] = []

    def flush() -> None:
        moved = hogia_articles_record(customer=customer, articles=buffer)
        numbers.extend([str(a["number"]) for a in buffer if a.get("number")] if full else moved)
        buffer.clear()

    for article in source:
        highest = max(highest, int(article.get("rowVersion") or 0))
        buffer.append(article)
        if len(buffer) >= page:
            flush()
    flush()
    # Only after the whole feed is recorded; a failed read starts again from the old mark.
    if highest > state.hogia_row_version:
        state.hogia_row_version = highest
        state.save(update_fields=["hogia_row_version"])
    return list(dict.fromkeys(numbers))


def shop_lagging_numbers(*, shop: Shop) -> list[str]:
    """Articles recorded from Hogia Smart that this shop was brought up to date with before
    but has an older version of now: pushes that failed (the shop was down) or were cut
    short, which the feed's watermark has already moved past."""
    older = ArticleBinding.objects.filter(shop=shop, sku=OuterRef("number"), woo_id__isnull=False,
                                          hogia_row_version__gt=0,
                                          hogia_row_version__lt=OuterRef("row_version"))
    return list(HogiaArticle.objects.filter(customer=shop.customer).filter(Exists(older))
                .values_list("number", flat=True))


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


def shop_locate_skus(*, woo: WooCommerceClient, skus: list[str]) -> dict[str, tuple[int, int | None]]:
    """Where each SKU is in the shop: ``sku -> (product or variation id, parent id or None)``."""
    found: dict[str, tuple[int, int | None]] = {}
    if len(skus) > LIST_SHOP_ABOVE:
        wanted = set(skus)
        for item in shop_products_all(woo=woo):
            sku = str(item.product.get("sku") or "").strip()
            if sku in wanted and sku not in found:
                found[sku] = (item.woo_id, item.parent_id)
        return found
    searchable = [s for s in skus if "," not in s and s.strip()]
    for product in woo.products_by_sku(searchable):
        sku = str(product.get("sku") or "").strip()
        parent = int(product.get("parent_id") or 0) if product.get("type") == "variation" else 0
        if sku and sku not in found:
            found[sku] = (int(product["id"]), parent or None)
    return found


@dataclass
class _Write:
    binding: ArticleBinding
    fields: dict
    digest: str
    row_version: int


def hogia_to_shop(*, shop: Shop, numbers: list[str], woo: WooCommerceClient, plan: ToShopPlan,
                  reserved: dict[str, Decimal], triggered_by: str = "") -> SyncRun:
    """Flows 2 and 3: bring one shop in line with the recorded Hogia Smart articles ``numbers``."""
    customer = shop.customer
    settings_flow = Flow.ERP if plan.only_send_to_webshop else Flow.COMBO
    kind = (SyncRun.Kind.ARTICLES if plan.create or plan.switches.name else
            SyncRun.Kind.STOCK if plan.switches.stock and not plan.switches.prices else SyncRun.Kind.PRICES)
    run = sync_run_start(customer=customer, shop=shop, kind=kind, flow=settings_flow,
                         triggered_by=triggered_by)
    run.details = {"direction": "Hogia Smart → shop", "switches": plan.switches.__dict__,
                   "create": plan.create}
    catalog = shop_catalog(shop=shop)
    try:
        writes, creates = _plan_writes(shop=shop, numbers=numbers, woo=woo, plan=plan, reserved=reserved,
                                       catalog=catalog, run=run)
        _write_updates(shop=shop, woo=woo, writes=writes, run=run)
        if creates:
            _write_creates(shop=shop, woo=woo, creates=creates, run=run)
    except RemoteError as exc:
        sync_log(customer=customer, shop=shop, run=run, level=Level.ERROR, object_type="catalogue",
                 message=f"Sync to the shop stopped, it runs again at the next interval: {exc}")
        return sync_run_finish(run=run, error=str(exc))
    return sync_run_finish(run=run)


def _plan_writes(*, shop: Shop, numbers: list[str], woo: WooCommerceClient, plan: ToShopPlan,
                 reserved: dict[str, Decimal], catalog: ShopCatalog,
                 run: SyncRun) -> tuple[list[_Write], list[tuple[HogiaArticle, dict, dict]]]:
    writes: list[_Write] = []
    creates: list[tuple[HogiaArticle, dict, dict]] = []
    current: list[ArticleBinding] = []  # nothing to write, but now known to be this new
    taxes: ShopTaxes | None = None
    articles: list[HogiaArticle] = []
    bindings: dict[str, ArticleBinding] = {}
    for start in range(0, len(numbers), 900):
        chunk = numbers[start:start + 900]
        articles += HogiaArticle.objects.filter(customer=shop.customer, number__in=chunk)
        bindings.update((b.sku, b) for b in ArticleBinding.objects.filter(shop=shop, sku__in=chunk))
    if plan.only_send_to_webshop:
        articles = [a for a in articles if a.data.get("sendToWebshop") and a.data.get("isActive", True)]
    run.read_count += len(articles)
    unbound = [a.number for a in articles if a.number not in bindings or not bindings[a.number].woo_id]
    if unbound:
        for sku, (woo_id, parent_id) in shop_locate_skus(woo=woo, skus=unbound).items():
            bindings[sku] = _bind(shop, sku, woo_id=woo_id, parent_id=parent_id)
    for article in articles:
        binding = bindings.get(article.number)
        held = reserved.get(article.number, Decimal(0))
        if binding is None or not binding.woo_id:
            if plan.create:
                if taxes is None:
                    taxes = shop_taxes(woo=woo)
                try:
                    product = new_product_from_article(article.data, taxes=taxes, switches=plan.switches,
                                                       prices_include_tax=catalog.prices_include_tax,
                                                       reserved=held)
                except NotMappable as exc:
                    run.failed_count += 1
                    sync_log(customer=shop.customer, shop=shop, run=run, level=Level.WARNING,
                             object_type="article", object_ref=article.number,
                             message=f"Not created in the shop: {exc.reason}")
                    continue
                fields = shop_fields_from_article(article.data, switches=plan.switches,
                                                  prices_include_tax=catalog.prices_include_tax,
                                                  reserved=held)
                creates.append((article, product, fields))
            else:
                run.skipped_count += 1
            continue
        switches = replace(plan.switches, name=False) if binding.is_variation else plan.switches
        if not switches.any:
            run.skipped_count += 1
            continue
        fields = shop_fields_from_article(article.data, switches=switches,
                                          prices_include_tax=catalog.prices_include_tax, reserved=held)
        digest = content_hash(fields)
        if digest == binding.written_hash or binding.hogia_row_version > article.row_version:
            run.skipped_count += 1
            if binding.hogia_row_version < article.row_version:
                binding.hogia_row_version = article.row_version
                current.append(binding)
            continue
        writes.append(_Write(binding=binding, fields=fields, digest=digest, row_version=article.row_version))
    ArticleBinding.objects.bulk_update(current, ["hogia_row_version"], batch_size=500)
    return writes, creates


def _record_written(write: _Write) -> None:
    # Conditional: a binding already at a newer Hogia version keeps its record.
    ArticleBinding.objects.filter(pk=write.binding.pk, hogia_row_version__lte=write.row_version).update(
        written_hash=write.digest, hogia_row_version=write.row_version, updated_at=timezone.now())


def _batch_errors(*, shop: Shop, run: SyncRun, result: BatchResult, skus: list[str], what: str) -> None:
    for error in result.errors:
        run.failed_count += 1
        sku = skus[error.index] if error.index < len(skus) else "?"
        sync_log(customer=shop.customer, shop=shop, run=run, level=Level.ERROR, object_type="product",
                 object_ref=sku, message=f"The shop refused to {what} {sku}: {error.message} ({error.code})",
                 details={"code": error.code, "data": error.data if isinstance(error.data, dict) else None})


def _write_updates(*, shop: Shop, woo: WooCommerceClient, writes: list[_Write], run: SyncRun) -> None:
    simple = [w for w in writes if not w.binding.is_variation]
    by_parent: dict[int, list[_Write]] = defaultdict(list)
    for write in writes:
        if write.binding.is_variation:
            by_parent[int(write.binding.woo_parent_id)].append(write)
    groups: list[tuple[int | None, list[_Write]]] = [(None, simple)] if simple else []
    groups += list(by_parent.items())
    for parent_id, group in groups:
        body = [{"id": int(w.binding.woo_id), **w.fields} for w in group]
        result = (woo.products_batch(update=body) if parent_id is None
                  else woo.variations_batch(parent_id, update=body))
        for index in result.updated:
            _record_written(group[index])
            run.updated_count += 1
        _batch_errors(shop=shop, run=run, result=result, skus=[w.binding.sku for w in group], what="update")
        stale = [group[e.index] for e in result.errors if e.code.endswith("invalid_id")]
        if stale:  # the product was deleted in the shop: find it again by SKU next time
            ArticleBinding.objects.filter(pk__in=[w.binding.pk for w in stale]).update(woo_id=None,
                                                                                      written_hash="")


def _write_creates(*, shop: Shop, woo: WooCommerceClient, creates: list[tuple[HogiaArticle, dict, dict]],
                   run: SyncRun) -> None:
    result = woo.products_batch(create=[product for _article, product, _fields in creates])
    for index, product in result.created.items():
        article, _product, fields = creates[index]
        binding = _bind(shop, article.number, woo_id=int(product["id"]), parent_id=None)
        _record_written(_Write(binding=binding, fields=fields, digest=content_hash(fields),
                               row_version=article.row_version))
        run.created_count += 1
    skus = [article.number for article, _product, _fields in creates]
    for error in result.errors:
        owner = error.data.get("resource_id") if isinstance(error.data, dict) else None
        if error.code == "product_invalid_sku" and owner:
            # The SKU is in the shop after all (made meanwhile): bind it; the next sync updates it.
            _bind(shop, skus[error.index], woo_id=int(owner), parent_id=None)
    _batch_errors(shop=shop, run=run, result=result, skus=skus, what="create")


# -- webhooks -----------------------------------------------------------------------------------

def product_change_note(*, shop: Shop, woo_id: int, deleted: bool = False) -> None:
    """A product webhook arrived: the next catalogue sync reads this product (flows 1 and 3)."""
    change, created = ProductChange.objects.get_or_create(shop=shop, woo_id=woo_id,
                                                          defaults={"deleted": deleted})
    if not created:
        change.deleted = deleted
        change.noted_at = timezone.now()
        change.save(update_fields=["deleted", "noted_at"])


def customers_due() -> list[int]:
    """Customers whose catalogue the periodic sync looks at."""
    return list(Customer.objects.filter(
        is_active=True, flow_settings__paused=False, hogia_connection__isnull=False,
        shops__is_active=True).distinct().values_list("pk", flat=True))
