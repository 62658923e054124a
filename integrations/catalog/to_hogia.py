"""Flows 1 and 3, shop → Hogia Smart: the shop's new and changed products become articles."""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Callable, Iterable, Iterator

from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from billing.models import Customer
from integrations.catalog.bindings import article_bind, shop_catalog, shop_taxes
from integrations.catalog.stock import hogia_opening_balance, stock_reserved
from integrations.clients.hogia_smart import HogiaSmartClient
from integrations.clients.woocommerce import WooCommerceClient
from integrations.errors import NotFound, RemoteError, RemoteRejected
from integrations.mapping.articles import NotMappable, ShopTaxes, article_from_product, content_hash
from integrations.models import (
    ArticleBinding,
    HogiaArticle,
    ProductChange,
    Shop,
    ShopCatalog,
    SyncLogEntry,
    SyncRun,
)
from integrations.services import RECORDED_FAILURES, failure_reason, sync_log, sync_run_finish, sync_run_start

Level = SyncLogEntry.Level

# Products changed in the shop while the previous sync ran carry a modified time before
# that sync's start: read this much before the watermark.
OVERLAP = timedelta(minutes=10)
# A deterministic sequenceId per customer and article number: a repeated create, by a
# retry, a resumed initial sync or another shop, returns the article created first.
ARTICLE_NAMESPACE = uuid.UUID("5c0d7a52-2f7e-4d0b-9e59-0f3b8a1c6d21")


def article_sequence_id(*, customer: Customer, number: str) -> uuid.UUID:
    return uuid.uuid5(ARTICLE_NAMESPACE, f"{customer.pk}:article:{number}")


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


def _shop_products_changed(
    *, shop: Shop, woo: WooCommerceClient, catalog: ShopCatalog, changes: list[ProductChange]
) -> Iterator[ShopProduct]:
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


def products_map(
    items: Iterable[ShopProduct], *, taxes: ShopTaxes, prices_include_tax: bool | None = None
) -> MappedProducts:
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
            article = article_from_product(
                item.product, taxes=taxes, parent=item.parent, prices_include_tax=prices_include_tax
            )
        except NotMappable as exc:
            mapped.unmappable.append({"sku": sku, "name": item.label, "reason": exc.reason})
            continue
        mapped.articles[sku] = (item, article)
    return mapped


def article_base(article: dict) -> dict:
    """The fields the shop is master of in flows 1 and 3 (prices and stock only seed a create)."""
    return {key: article[key] for key in ("number", "name", "unit", "vatPercent")}


def hogia_article_write(
    *, customer: Customer, hogia: HogiaSmartClient, article: dict, known: HogiaArticle | None
) -> tuple[str, dict]:
    """Create or update one article; returns ``("created"|"updated", answer)``.

    A create carries the deterministic sequenceId; a 409 (the number exists, made by
    hand or by another shop) turns into an update of that article.
    """
    base = article_base(article)
    if known is not None and known.hogia_id:
        return "updated", hogia.article_update(known.hogia_id, base)
    try:
        return "created", hogia.article_create(
            article, article_sequence_id(customer=customer, number=article["number"])
        )
    except RemoteRejected as exc:
        if exc.status != 409:
            raise
    existing = hogia.article_by_number(article["number"])
    if existing is None:
        raise RemoteError(
            f"Hogia Smart says article {article['number']} exists but cannot find it", system="Hogia Smart"
        )
    return "updated", hogia.article_update(str(existing["id"]), base)


def hogia_article_written(*, customer: Customer, number: str, answer: dict, written_hash: str) -> None:
    """Remember the article's id and what was written (never its values: the feed brings those)."""
    article, created = HogiaArticle.objects.get_or_create(
        customer=customer,
        number=number,
        defaults={"hogia_id": str(answer.get("id") or ""), "written_hash": written_hash},
    )
    if not created:
        HogiaArticle.objects.filter(pk=article.pk).update(
            hogia_id=str(answer.get("id") or article.hogia_id),
            written_hash=written_hash,
            updated_at=timezone.now(),
        )


def _log_mapping_problems(*, shop: Shop, run: SyncRun, mapped: MappedProducts) -> None:
    customer = shop.customer
    for item in mapped.missing_sku:
        sync_log(
            customer=customer,
            shop=shop,
            run=run,
            level=Level.WARNING,
            object_type="product",
            object_ref=f"id {item['id']}",
            message=_(
                "Not transferred: %(product)s has no SKU. Give it an article number in the shop; "
                "the portal does not guess one."
            )
            % {"product": item["name"]},
        )
    for sku, owners in mapped.duplicated.items():
        sync_log(
            customer=customer,
            shop=shop,
            run=run,
            level=Level.WARNING,
            object_type="product",
            object_ref=sku,
            message=_(
                "Not transferred: SKU %(sku)s is used by %(count)d products in the shop "
                "(%(products)s). Make it unique in the shop."
            )
            % {"sku": sku, "count": len(owners), "products": "; ".join(owners)},
        )
    for item in mapped.unmappable:
        sync_log(
            customer=customer,
            shop=shop,
            run=run,
            level=Level.WARNING,
            object_type="product",
            object_ref=item["sku"],
            message=_("Not transferred: %(product)s: %(reason)s")
            % {"product": item["name"], "reason": item["reason"]},
        )
    run.details = {
        **run.details,
        "missing_sku": mapped.missing_sku[:200],
        "duplicated_sku": dict(list(mapped.duplicated.items())[:200]),
        "unmappable": mapped.unmappable[:200],
    }


def articles_to_hogia(
    *,
    shop: Shop,
    woo: WooCommerceClient,
    hogia: HogiaSmartClient,
    full: bool = False,
    flow: int | None = None,
    triggered_by: str = "",
    stop: Callable[[], bool] = lambda: False,
) -> SyncRun:
    """Flows 1 and 3: the shop's new and changed products become Hogia Smart articles.

    ``stop`` says when the run's time is up: it ends there with ``details["more"]``, its
    watermark unmoved; the next run reads the same products and writes only what is left
    (what was written hashes the same). An article created from a product starts at the
    shop's stock plus what the shop's open orders took (``hogia_opening_balance``).
    """
    customer = shop.customer
    run = sync_run_start(
        customer=customer, shop=shop, kind=SyncRun.Kind.ARTICLES, flow=flow, triggered_by=triggered_by
    )
    run.details = {"direction": "shop → Hogia Smart", "full": full}
    started = timezone.now()
    try:
        catalog = shop_catalog(shop=shop)
        changes = list(ProductChange.objects.filter(shop=shop))
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
        known = {
            a.number: a
            for a in HogiaArticle.objects.filter(customer=customer, number__in=list(mapped.articles))
        }
        new_stock = [
            sku
            for sku, (_item, article) in mapped.articles.items()
            if sku not in known and "stockBalance" in article
        ]
        reserved = stock_reserved(customer=customer, skus=new_stock) if new_stock else {}
        for sku, (item, article) in mapped.articles.items():
            if stop():
                run.details["more"] = True
                break
            if sku in reserved:
                article = {
                    **article,
                    "stockBalance": hogia_opening_balance(
                        shop_quantity=article["stockBalance"], reserved=reserved[sku]
                    ),
                }
            digest = content_hash(article_base(article))
            article_bind(shop, sku, woo_id=item.woo_id, parent_id=item.parent_id)
            existing = known.get(sku)
            if existing is not None and existing.written_hash == digest:
                run.skipped_count += 1
                continue
            try:
                action, answer = hogia_article_write(
                    customer=customer, hogia=hogia, article=article, known=existing
                )
            except RemoteRejected as exc:
                run.failed_count += 1
                sync_log(
                    customer=customer,
                    shop=shop,
                    run=run,
                    level=Level.ERROR,
                    object_type="article",
                    object_ref=sku,
                    message=_("Hogia Smart refused article %(sku)s: %(error)s") % {"sku": sku, "error": exc},
                    details={"errors": exc.errors if isinstance(exc.errors, (dict, list)) else None},
                )
                continue
            hogia_article_written(customer=customer, number=sku, answer=answer, written_hash=digest)
            if action == "created":
                run.created_count += 1
            else:
                run.updated_count += 1
    except RemoteError as exc:
        sync_log(
            customer=customer,
            shop=shop,
            run=run,
            level=Level.ERROR,
            object_type="catalogue",
            message=_("Article sync stopped, it runs again at the next interval: %(error)s") % {"error": exc},
        )
        return sync_run_finish(run=run, error=str(exc))
    except RECORDED_FAILURES as exc:
        sync_run_finish(run=run, error=failure_reason(exc))
        raise
    if run.details.get("more"):
        return sync_run_finish(run=run)
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
            Q(woo_id__in=deleted) | Q(woo_parent_id__in=deleted)
        ).delete()


def product_change_note(*, shop: Shop, woo_id: int, deleted: bool = False) -> None:
    """A product webhook arrived: the next catalogue sync reads this product (flows 1 and 3)."""
    change, created = ProductChange.objects.get_or_create(
        shop=shop, woo_id=woo_id, defaults={"deleted": deleted}
    )
    if not created:
        change.deleted = deleted
        change.noted_at = timezone.now()
        change.save(update_fields=["deleted", "noted_at"])
