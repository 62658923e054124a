"""Flows 2 and 3, Hogia Smart → shops: each shop gets what its customer's switches allow.

A push compares what the portal would write with what the shop has **now** (read in the
same run: by SKU, or the whole shop when many articles are looked at) and writes only the
fields that differ. So a price or a stock figure changed by hand in the shop is put back
by the next sync that looks at the article (the nightly full sync looks at all of them),
and the correction is logged with the old and the new value; an unchanged catalogue costs
reads only.

- Stock follows the stock rule (``integrations.catalog.stock``), asked again for every
  chunk just before it is written; a product that does not manage stock in the shop is
  never switched to managed stock (its count would start at the rule's figure and could
  take a sellable product off sale), and below zero is written only where the product
  sells on backorder.
- A variation's name is its parent's business: it is left alone.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation

from django.utils import formats
from django.utils.translation import gettext as _

from integrations.catalog.bindings import article_bind, binding_written, shop_catalog, shop_taxes
from integrations.catalog.stock import ShopStock, shop_stock_quantity, stock_reserved
from integrations.catalog.to_hogia import shop_products_all
from integrations.clients.woocommerce import BatchResult, WooCommerceClient
from integrations.errors import RemoteError
from integrations.logcontext import log_context
from integrations.mapping.articles import (
    NotMappable,
    ShopTaxes,
    Switches,
    content_hash,
    decimal_or_none,
    new_product_from_article,
    shop_fields_from_article,
)
from integrations.models import (
    ArticleBinding,
    Flow,
    FlowSettings,
    HogiaArticle,
    Shop,
    ShopCatalog,
    SyncLogEntry,
    SyncRun,
)
from integrations.rules import flow_switch_enabled
from integrations.services import sync_log, sync_run_finish, sync_run_start

Level = SyncLogEntry.Level

# Above this many SKUs to find in a shop, listing the whole shop (100 a page) costs fewer
# requests than asking for them by SKU (50 a request).
LIST_SHOP_ABOVE = 500


@dataclass
class ToShopPlan:
    switches: Switches
    create: bool
    only_send_to_webshop: bool
    skipped: list[str] = field(default_factory=list)
    # False while the shop's existing products are held (overwriting not yet accepted).
    update_existing: bool = True


def to_shop_plan(settings: FlowSettings) -> ToShopPlan:
    """What the customer's flow and switches (and package, today) let Hogia Smart write to the shops."""
    skipped: list[str] = []
    enabled: dict[str, bool] = {}
    for name in ("sync_prices", "sync_campaign_prices", "sync_stock"):
        on, reason = flow_switch_enabled(settings=settings, name=name)
        enabled[name] = on
        if not on and getattr(settings, name):
            # Ticked while the package allowed it, then the package was lowered.
            sync_log(
                customer=settings.customer,
                level=Level.WARNING,
                object_type="catalogue",
                message=_("Skipped: %(reason)s") % {"reason": reason},
            )
            skipped.append(reason)
    erp = settings.flow == Flow.ERP
    switches = Switches(
        name=erp and settings.sync_articles and settings.update_products,
        prices=enabled["sync_prices"],
        campaign=enabled["sync_campaign_prices"],
        stock=enabled["sync_stock"],
    )
    return ToShopPlan(
        switches=switches,
        create=erp and settings.sync_articles and settings.create_products,
        only_send_to_webshop=erp,
        skipped=skipped,
    )


# Articles looked at together: one read of their products, one stock reservation, batches of 100.
CHUNK = 500
BATCH = 100
PRICE_FIELDS = ("regular_price", "sale_price")
DATE_FIELDS = ("date_on_sale_from", "date_on_sale_to")
BACKORDERS_ALLOWED = ("yes", "notify")


@dataclass(slots=True)
class ShopProductNow:
    """The fields of a shop product (or variation) a push may write, as the shop has them now.

    Kept small on purpose: a full sync holds one per product of the shop.
    """

    woo_id: int
    parent_id: int | None
    name: str
    regular_price: str
    sale_price: str
    date_on_sale_from: str
    date_on_sale_to: str
    manage_stock: bool | str
    stock_quantity: int | None
    stock_status: str
    backorders: str

    @classmethod
    def of(cls, product: dict, parent_id: int | None = None) -> "ShopProductNow":
        if parent_id is None and product.get("type") == "variation":
            parent_id = int(product.get("parent_id") or 0) or None
        quantity = product.get("stock_quantity")
        return cls(
            woo_id=int(product["id"]),
            parent_id=parent_id,
            name=str(product.get("name") or ""),
            regular_price=str(product.get("regular_price") or ""),
            sale_price=str(product.get("sale_price") or ""),
            date_on_sale_from=_day_time(product.get("date_on_sale_from")),
            date_on_sale_to=_day_time(product.get("date_on_sale_to")),
            manage_stock=product.get("manage_stock", False),
            stock_quantity=None if quantity in (None, "") else int(quantity),
            stock_status=str(product.get("stock_status") or ""),
            backorders=str(product.get("backorders") or "no"),
        )

    @property
    def counts_stock(self) -> bool:
        # A variation answering "parent" takes its parent's count: writing one here would
        # switch on a count of its own.
        return self.manage_stock is True

    def same(self, name: str, wanted) -> bool:
        if name in PRICE_FIELDS:
            return _money(getattr(self, name)) == _money(wanted)
        if name in DATE_FIELDS:
            return getattr(self, name) == _day_time(wanted)
        if name == "manage_stock":
            return (self.manage_stock is True) == bool(wanted)
        return getattr(self, name) == wanted


def _day_time(value) -> str:
    return str(value or "")[:19]


def _money(value) -> Decimal | None:
    try:
        return decimal_or_none(value)
    except (InvalidOperation, ValueError):
        return None


def shop_fields_wanted(
    article: dict, now: ShopProductNow, *, switches: Switches, prices_include_tax: bool, reserved: Decimal
) -> tuple[dict, ShopStock | None]:
    """What the portal wants a product the shop has to show for a Hogia article, and the stock figure
    behind it (None when stock is not written). The periodic sync and the initial sync's preview
    both ask here, so that the preview lists exactly what the sync then writes."""
    if now.parent_id is not None:
        switches = replace(switches, name=False)
    stock = None
    if switches.stock and not now.counts_stock:
        switches = replace(switches, stock=False)  # never given a count it did not keep
    elif switches.stock and article.get("isStockArticle", True):
        stock = shop_stock_quantity(
            balance=decimal_or_none(article.get("stockBalance")) or Decimal(0),
            reserved=reserved,
            backorders_allowed=now.backorders in BACKORDERS_ALLOWED,
        )
    fields = shop_fields_from_article(
        article,
        switches=switches,
        prices_include_tax=prices_include_tax,
        stock_quantity=stock.quantity if stock else None,
    )
    return fields, stock


def shop_products_now(*, woo: WooCommerceClient, skus: list[str]) -> dict[str, ShopProductNow]:
    """The shop's products and variations with these SKUs, by SKU (50 SKUs a request)."""
    found: dict[str, ShopProductNow] = {}
    searchable = [s for s in skus if "," not in s and s.strip()]
    for product in woo.products_by_sku(searchable):
        sku = str(product.get("sku") or "").strip()
        if sku and sku not in found:
            found[sku] = ShopProductNow.of(product)
    return found


def shop_products_index(*, woo: WooCommerceClient) -> dict[str, ShopProductNow]:
    """Every product and variation of the shop, by SKU (100 a request)."""
    index: dict[str, ShopProductNow] = {}
    for item in shop_products_all(woo=woo):
        sku = str(item.product.get("sku") or "").strip()
        if sku and sku not in index:
            index[sku] = ShopProductNow.of(item.product, item.parent_id)
    return index


@dataclass
class _Update:
    binding: ArticleBinding
    now: ShopProductNow
    fields: dict
    digest: str
    row_version: int


class ShopPush:
    """Brings one shop in line with recorded Hogia Smart articles, chunk by chunk, in one sync run."""

    def __init__(
        self,
        *,
        shop: Shop,
        woo: WooCommerceClient,
        plan: ToShopPlan,
        triggered_by: str = "",
        whole_shop: bool = False,
        catalog: ShopCatalog | None = None,
    ):
        self.shop, self.woo, self.plan = shop, woo, plan
        self.customer = shop.customer
        self.catalog = catalog or shop_catalog(shop=shop)
        self.whole_shop = whole_shop
        self.index: dict[str, ShopProductNow] | None = None
        self.taxes: ShopTaxes | None = None
        self.error: str | None = None
        switches = plan.switches
        kind = (
            SyncRun.Kind.ARTICLES
            if plan.create or switches.name
            else SyncRun.Kind.STOCK
            if switches.stock and not switches.prices
            else SyncRun.Kind.PRICES
        )
        self.run = sync_run_start(
            customer=self.customer,
            shop=shop,
            kind=kind,
            flow=Flow.ERP if plan.only_send_to_webshop else Flow.COMBO,
            triggered_by=triggered_by,
        )
        self.run.details = {
            "direction": "Hogia Smart → shop",
            "switches": switches.__dict__,
            "create": plan.create,
            "update_existing": plan.update_existing,
            "corrected": 0,
            "clamped": 0,
        }

    # -- reading the shop --

    def _products_now(self, numbers: list[str]) -> dict[str, ShopProductNow]:
        if self.index is None and self.whole_shop:
            self.index = shop_products_index(woo=self.woo)
        if self.index is not None:
            return {n: self.index[n] for n in numbers if n in self.index}
        return shop_products_now(woo=self.woo, skus=numbers)

    # -- one chunk --

    def push(self, numbers: list[str]) -> bool:
        """Bring these article numbers to the shop; False once the shop has failed in this run."""
        with log_context(shop=self.shop.pk, run=self.run.pk):
            return self._push(numbers)

    def _push(self, numbers: list[str]) -> bool:
        if self.error is not None:
            return False
        try:
            for start in range(0, len(numbers), CHUNK):
                chunk = numbers[start : start + CHUNK]
                if self.index is None and len(chunk) >= LIST_SHOP_ABOVE:
                    # Many to look at (a full feed page): listing the shop once serves every chunk after.
                    self.index = shop_products_index(woo=self.woo)
                self._push_chunk(chunk)
        except RemoteError as exc:
            self.error = str(exc)
            sync_log(
                customer=self.customer,
                shop=self.shop,
                run=self.run,
                level=Level.ERROR,
                object_type="catalogue",
                message=_("Sync to the shop stopped, it runs again at the next interval: %(error)s")
                % {"error": exc},
            )
            return False
        return True

    def _push_chunk(self, numbers: list[str]) -> None:
        articles = list(HogiaArticle.objects.filter(customer=self.customer, number__in=numbers))
        if self.plan.only_send_to_webshop:
            articles = [a for a in articles if a.data.get("sendToWebshop") and a.data.get("isActive", True)]
        if not articles:
            return
        self.run.read_count += len(articles)
        bindings = {
            b.sku: b
            for b in ArticleBinding.objects.filter(shop=self.shop, sku__in=[a.number for a in articles])
        }
        products = self._products_now([a.number for a in articles])
        reserved = (
            stock_reserved(customer=self.customer, skus=[a.number for a in articles])
            if self.plan.switches.stock
            else {}
        )
        updates: list[_Update] = []
        creates: list[tuple[HogiaArticle, dict, dict]] = []
        unchanged: list[ArticleBinding] = []
        for article in articles:
            now = products.get(article.number)
            binding = bindings.get(article.number)
            if now is None:
                if binding is not None and binding.woo_id:
                    # The product is gone from the shop, or has another SKU now: find it again.
                    ArticleBinding.objects.filter(pk=binding.pk).update(woo_id=None, written_hash="")
                self._plan_create(article, reserved, creates)
                continue
            if binding is None or binding.woo_id != now.woo_id or binding.woo_parent_id != now.parent_id:
                binding = article_bind(self.shop, article.number, woo_id=now.woo_id, parent_id=now.parent_id)
            if not self.plan.update_existing:
                self.run.skipped_count += 1
                continue
            wanted = self._wanted(article, now, reserved.get(article.number, Decimal(0)))
            digest = content_hash(wanted)
            changed = {name: value for name, value in wanted.items() if not now.same(name, value)}
            if not changed:
                self.run.skipped_count += 1
                if binding.written_hash != digest or binding.hogia_row_version < article.row_version:
                    binding.written_hash = digest
                    binding.hogia_row_version = max(binding.hogia_row_version, article.row_version)
                    unchanged.append(binding)
                continue
            updates.append(
                _Update(
                    binding=binding, now=now, fields=changed, digest=digest, row_version=article.row_version
                )
            )
        ArticleBinding.objects.bulk_update(unchanged, ["written_hash", "hogia_row_version"], batch_size=500)
        self._write_updates(updates)
        if creates:
            self._write_creates(creates)

    def _wanted(self, article: HogiaArticle, now: ShopProductNow, reserved: Decimal) -> dict:
        fields, stock = shop_fields_wanted(
            article.data,
            now,
            switches=self.plan.switches,
            prices_include_tax=self.catalog.prices_include_tax,
            reserved=reserved,
        )
        if stock is not None and stock.clamped and now.stock_quantity != 0:
            self.run.details["clamped"] += 1
            sync_log(
                customer=self.customer,
                shop=self.shop,
                run=self.run,
                level=Level.WARNING,
                object_type="product",
                object_ref=article.number,
                message=_(
                    "Hogia Smart's stock of %(number)s is %(balance)s (%(reserved)s sold in the shops "
                    "and not invoiced yet): the shop is given 0, since it does not sell this product "
                    "on backorder."
                )
                % {
                    "number": article.number,
                    "balance": formats.localize(stock.balance),
                    "reserved": formats.localize(stock.reserved),
                },
            )
        return fields

    def _plan_create(
        self,
        article: HogiaArticle,
        reserved: dict[str, Decimal],
        creates: list[tuple[HogiaArticle, dict, dict]],
    ) -> None:
        if not self.plan.create:
            self.run.skipped_count += 1
            return
        if self.taxes is None:
            self.taxes = shop_taxes(woo=self.woo)
        stock = None
        if self.plan.switches.stock and article.data.get("isStockArticle", True):
            stock = shop_stock_quantity(
                balance=decimal_or_none(article.data.get("stockBalance")) or Decimal(0),
                reserved=reserved.get(article.number, Decimal(0)),
                backorders_allowed=False,
            )
        quantity = stock.quantity if stock else None
        try:
            product = new_product_from_article(
                article.data,
                taxes=self.taxes,
                switches=self.plan.switches,
                prices_include_tax=self.catalog.prices_include_tax,
                stock_quantity=quantity,
            )
        except NotMappable as exc:
            self.run.failed_count += 1
            sync_log(
                customer=self.customer,
                shop=self.shop,
                run=self.run,
                level=Level.WARNING,
                object_type="article",
                object_ref=article.number,
                message=_("Not created in the shop: %(reason)s") % {"reason": exc.reason},
            )
            return
        fields = shop_fields_from_article(
            article.data,
            switches=self.plan.switches,
            prices_include_tax=self.catalog.prices_include_tax,
            stock_quantity=quantity,
        )
        creates.append((article, product, fields))

    # -- writing --

    def _write_updates(self, updates: list[_Update]) -> None:
        groups: dict[int | None, list[_Update]] = defaultdict(list)
        for update in updates:
            groups[update.now.parent_id].append(update)
        for parent_id, group in groups.items():
            for start in range(0, len(group), BATCH):
                self._write_batch(parent_id, group[start : start + BATCH])

    def _write_batch(self, parent_id: int | None, group: list[_Update]) -> None:
        body = [{"id": u.now.woo_id, **u.fields} for u in group]
        result = (
            self.woo.products_batch(update=body)
            if parent_id is None
            else self.woo.variations_batch(parent_id, update=body)
        )
        written = []
        for index in result.updated:
            update = group[index]
            written.append(update)
            self.run.updated_count += 1
            if update.binding.written_hash == update.digest:
                self._log_corrected(update)
            if self.index is not None:
                for name, value in update.fields.items():
                    if hasattr(update.now, name):
                        setattr(update.now, name, value if name != "manage_stock" else bool(value))
        for update in written:
            update.binding.written_hash = update.digest
            update.binding.hogia_row_version = max(update.binding.hogia_row_version, update.row_version)
        ArticleBinding.objects.bulk_update(
            [u.binding for u in written], ["written_hash", "hogia_row_version", "updated_at"], batch_size=500
        )
        _batch_errors(
            shop=self.shop, run=self.run, result=result, skus=[u.binding.sku for u in group], what="update"
        )
        stale = [group[e.index] for e in result.errors if e.code.endswith("invalid_id")]
        if stale:  # the product was deleted in the shop: find it again by SKU next time
            ArticleBinding.objects.filter(pk__in=[u.binding.pk for u in stale]).update(
                woo_id=None, written_hash=""
            )

    def _log_corrected(self, update: _Update) -> None:
        # What the portal wrote before is what it wants now, so the shop was changed since.
        self.run.details["corrected"] += 1
        changes = {
            name: {"shop": _shown(getattr(update.now, name, None)), "portal": _shown(value)}
            for name, value in update.fields.items()
        }
        listed = "; ".join(f"{name} {c['shop']} → {c['portal']}" for name, c in changes.items())
        sync_log(
            customer=self.customer,
            shop=self.shop,
            run=self.run,
            level=Level.WARNING,
            object_type="product",
            object_ref=update.binding.sku,
            message=_("%(sku)s had been changed in the shop and was put back: %(changes)s.")
            % {"sku": update.binding.sku, "changes": listed},
            details={"changes": changes},
        )

    def _write_creates(self, creates: list[tuple[HogiaArticle, dict, dict]]) -> None:
        for start in range(0, len(creates), BATCH):
            batch = creates[start : start + BATCH]
            result = self.woo.products_batch(create=[product for _article, product, _fields in batch])
            for index, product in result.created.items():
                article, _product, fields = batch[index]
                binding = article_bind(self.shop, article.number, woo_id=int(product["id"]), parent_id=None)
                binding_written(binding, digest=content_hash(fields), row_version=article.row_version)
                if self.index is not None:
                    self.index[article.number] = ShopProductNow.of(product)
                self.run.created_count += 1
            skus = [article.number for article, _product, _fields in batch]
            for error in result.errors:
                owner = error.data.get("resource_id") if isinstance(error.data, dict) else None
                if error.code == "product_invalid_sku" and owner:
                    # The SKU is in the shop after all (made meanwhile): bind it; the next sync updates it.
                    article_bind(self.shop, skus[error.index], woo_id=int(owner), parent_id=None)
            _batch_errors(shop=self.shop, run=self.run, result=result, skus=skus, what="create")

    def finish(self) -> SyncRun:
        return sync_run_finish(run=self.run, error=self.error or "")


def _shown(value) -> str:
    if value in (None, ""):
        return "–"
    return str(value)


def hogia_to_shop(
    *, shop: Shop, numbers: list[str], woo: WooCommerceClient, plan: ToShopPlan, triggered_by: str = ""
) -> SyncRun:
    """Bring one shop in line with the recorded Hogia Smart articles ``numbers`` in one run."""
    push = ShopPush(shop=shop, woo=woo, plan=plan, triggered_by=triggered_by)
    push.push(numbers)
    return push.finish()


def _batch_errors(*, shop: Shop, run: SyncRun, result: BatchResult, skus: list[str], what: str) -> None:
    for error in result.errors:
        run.failed_count += 1
        sku = skus[error.index] if error.index < len(skus) else "?"
        values = {"sku": sku, "error": f"{error.message} ({error.code})"}
        message = (
            _("The shop refused to create %(sku)s: %(error)s")
            if what == "create"
            else _("The shop refused to update %(sku)s: %(error)s")
        ) % values
        sync_log(
            customer=shop.customer,
            shop=shop,
            run=run,
            level=Level.ERROR,
            object_type="product",
            object_ref=sku,
            message=message,
            details={"code": error.code, "data": error.data if isinstance(error.data, dict) else None},
        )
