"""Flows 2 and 3, Hogia Smart → shops: each shop gets what its customer's switches allow."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field, replace
from decimal import Decimal

from integrations.catalog.bindings import ShopWrite, article_bind, binding_written, shop_catalog, shop_taxes
from integrations.catalog.to_hogia import shop_products_all
from integrations.clients.woocommerce import BatchResult, WooCommerceClient
from integrations.errors import RemoteError
from integrations.mapping.articles import (NotMappable, ShopTaxes, Switches, content_hash,
                                           new_product_from_article, shop_fields_from_article)
from integrations.models import (ArticleBinding, Flow, FlowSettings, HogiaArticle, Shop, ShopCatalog,
                                 SyncLogEntry, SyncRun)
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
    # False while the shop's existing products are held (overwrite not yet accepted).
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
            sync_log(customer=settings.customer, level=Level.WARNING, object_type="catalogue",
                     message=f"Skipped: {reason}")
            skipped.append(reason)
    erp = settings.flow == Flow.ERP
    switches = Switches(name=erp and settings.sync_articles and settings.update_products,
                        prices=enabled["sync_prices"], campaign=enabled["sync_campaign_prices"],
                        stock=enabled["sync_stock"])
    return ToShopPlan(switches=switches, create=erp and settings.sync_articles and settings.create_products,
                      only_send_to_webshop=erp, skipped=skipped)


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
                   "create": plan.create, "update_existing": plan.update_existing}
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
                 run: SyncRun) -> tuple[list[ShopWrite], list[tuple[HogiaArticle, dict, dict]]]:
    writes: list[ShopWrite] = []
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
            bindings[sku] = article_bind(shop, sku, woo_id=woo_id, parent_id=parent_id)
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
        if not plan.update_existing:
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
        writes.append(ShopWrite(binding=binding, fields=fields, digest=digest, row_version=article.row_version))
    ArticleBinding.objects.bulk_update(current, ["hogia_row_version"], batch_size=500)
    return writes, creates


def _batch_errors(*, shop: Shop, run: SyncRun, result: BatchResult, skus: list[str], what: str) -> None:
    for error in result.errors:
        run.failed_count += 1
        sku = skus[error.index] if error.index < len(skus) else "?"
        sync_log(customer=shop.customer, shop=shop, run=run, level=Level.ERROR, object_type="product",
                 object_ref=sku, message=f"The shop refused to {what} {sku}: {error.message} ({error.code})",
                 details={"code": error.code, "data": error.data if isinstance(error.data, dict) else None})


def _write_updates(*, shop: Shop, woo: WooCommerceClient, writes: list[ShopWrite], run: SyncRun) -> None:
    simple = [w for w in writes if not w.binding.is_variation]
    by_parent: dict[int, list[ShopWrite]] = defaultdict(list)
    for write in writes:
        if write.binding.is_variation:
            by_parent[int(write.binding.woo_parent_id)].append(write)
    groups: list[tuple[int | None, list[ShopWrite]]] = [(None, simple)] if simple else []
    groups += list(by_parent.items())
    for parent_id, group in groups:
        body = [{"id": int(w.binding.woo_id), **w.fields} for w in group]
        result = (woo.products_batch(update=body) if parent_id is None
                  else woo.variations_batch(parent_id, update=body))
        for index in result.updated:
            binding_written(group[index])
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
        binding = article_bind(shop, article.number, woo_id=int(product["id"]), parent_id=None)
        binding_written(ShopWrite(binding=binding, fields=fields, digest=content_hash(fields),
                               row_version=article.row_version))
        run.created_count += 1
    skus = [article.number for article, _product, _fields in creates]
    for error in result.errors:
        owner = error.data.get("resource_id") if isinstance(error.data, dict) else None
        if error.code == "product_invalid_sku" and owner:
            # The SKU is in the shop after all (made meanwhile): bind it; the next sync updates it.
            article_bind(shop, skus[error.index], woo_id=int(owner), parent_id=None)
    _batch_errors(shop=shop, run=run, result=result, skus=skus, what="create")
