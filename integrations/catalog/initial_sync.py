"""The initial catalogue sync, in either direction, for one shop.

Case 1 (``to_hogia``): the catalogue is in the shop, not in Hogia Smart: every product
and variation with a SKU becomes an article with that number (name, VAT, unit, price
excl. VAT, stock). Case 2 (``to_shop``): the catalogue is in Hogia Smart: every
article marked "send to webshop" becomes a simple product (often run long before the
other flows are switched on, so that the shop can add images and texts).

1. ``initial_sync_preview`` reads both sides and lists, for support to review before
   anything is written: SKUs that match, exist on one side only, are duplicated on a
   side, and products without a SKU. For the matches, when the customer's flow writes
   to the shop (flows 2 and 3), it lists what the periodic sync would change in each
   product: today's value in the shop and the value the portal would write. It creates
   one item per SKU to write.
2. ``initial_sync_run`` writes the items, keeps ``done``/``total`` and a heartbeat for
   the admin's progress page, binds the matches and leaves a report. A run that ends
   lets the periodic sync overwrite the shop's products: support has seen the
   differences (``integrations.catalog.overwrite``).

Resuming after a crash duplicates nothing: an item is marked "being written" before
its write; a Hogia create carries a sequenceId derived from the customer and the
number (a repeat returns the first article), and shop items that were being written
are looked up by SKU before anything is created again.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from datetime import timedelta
from decimal import Decimal
from typing import Any, Callable

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from billing.models import Feature
from billing.selectors import feature_refusal
from integrations.catalog.bindings import article_bind, binding_written, shop_catalog, shop_taxes
from integrations.catalog.hogia_feed import hogia_articles_record, jsonable
from integrations.catalog.overwrite import flow_writes_to_shop, shop_overwrite_allow
from integrations.catalog.stock import hogia_opening_balance, stock_reserved
from integrations.catalog.to_hogia import (
    ShopProduct,
    article_base,
    hogia_article_write,
    hogia_article_written,
    products_map,
    shop_products_all,
)
from integrations.catalog.to_shop import ShopProductNow, shop_fields_wanted, to_shop_plan
from integrations.clients.hogia_smart import HogiaSmartClient
from integrations.clients.woocommerce import WooCommerceClient
from integrations.connections import hogia_client, woocommerce_client
from integrations.errors import RemoteError, RemoteRejected
from integrations.logcontext import log_context
from integrations.mapping.articles import (
    NotMappable,
    Switches,
    content_hash,
    new_product_from_article,
    shop_fields_from_article,
)
from integrations.models import (
    ArticleBinding,
    FlowSettings,
    HogiaArticle,
    HogiaConnection,
    InitialSync,
    InitialSyncItem,
    Shop,
    ShopCatalog,
    SyncLogEntry,
    SyncRun,
)
from integrations.services import RECORDED_FAILURES, failure_reason, sync_log, sync_run_finish, sync_run_start

logger = logging.getLogger(__name__)

Direction = InitialSync.Direction
JobState = InitialSync.State
ItemState = InitialSyncItem.State
# A run that has shown no progress for this long is taken to have crashed: "run" resumes it.
STALE_AFTER = timedelta(minutes=2)
CHUNK = 100
# Lists in the preview and the report are cut here (counts are always complete).
LIST_LIMIT = 2000


# A job that stopped before its run started (its preview failed) has nothing to resume: it is
# previewed again, as a new one is. One that stopped in its run resumes where it was.
PREVIEWABLE = Q(state__in=[JobState.NEW, JobState.READY]) | Q(state=JobState.FAILED, started_at__isnull=True)
RUNNABLE = Q(state=JobState.READY) | Q(state=JobState.FAILED, started_at__isnull=False)


class InitialSyncRefused(Exception):
    """The job is not in a state that allows this step; the message says why."""


def initial_sync_create(*, shop: Shop, direction: str, requested_by: str = "") -> InitialSync:
    return InitialSync.objects.create(
        customer=shop.customer, shop=shop, direction=direction, requested_by=requested_by[:120]
    )


def _clients(job: InitialSync, woo: WooCommerceClient | None, hogia: HogiaSmartClient | None):
    connection = HogiaConnection.objects.filter(customer=job.customer).first()
    if connection is None and hogia is None:
        raise InitialSyncRefused(_("The customer has no Hogia Smart connection."))
    return (woo or woocommerce_client(shop=job.shop), hogia or hogia_client(connection=connection))


def _normalised(sku: str) -> str:
    return sku.strip().casefold()


# -- preview ------------------------------------------------------------------------------------


def initial_sync_preview(
    *, job_id: int, woo: WooCommerceClient | None = None, hogia: HogiaSmartClient | None = None
) -> InitialSync:
    """Read both sides and list what the run would do; writes nothing remote.

    A preview that fails stops the job (FAILED, with the reason, logged on the shop) and raises
    again; the job is then previewed again, it cannot run.
    """
    job = InitialSync.objects.select_related("shop", "customer").get(pk=job_id)
    with log_context(shop=job.shop_id, initial_sync=job.pk):
        return _preview_checked(job, woo=woo, hogia=hogia)


def _preview_checked(
    job: InitialSync, *, woo: WooCommerceClient | None, hogia: HogiaSmartClient | None
) -> InitialSync:
    if not InitialSync.objects.filter(PREVIEWABLE, pk=job.pk).exists():
        raise InitialSyncRefused(f"The sync is {job.get_state_display()}: a preview is made before the run.")
    try:
        return _preview(job, woo=woo, hogia=hogia)
    except RECORDED_FAILURES as exc:
        reason = _reason(exc)
        _job_failed(job, sources=PREVIEWABLE, reason=reason)
        sync_log(
            customer=job.customer,
            shop=job.shop,
            level=SyncLogEntry.Level.ERROR,
            object_type="initial_sync",
            object_ref=str(job.pk),
            message=f"Initial sync preview failed: {reason}. Make the preview again once that is put right.",
        )
        raise


def _preview(
    job: InitialSync, *, woo: WooCommerceClient | None, hogia: HogiaSmartClient | None
) -> InitialSync:
    woo, hogia = _clients(job, woo, hogia)
    catalog = shop_catalog(shop=job.shop)
    shop_items = list(shop_products_all(woo=woo))
    mapped = products_map(
        shop_items, taxes=shop_taxes(woo=woo), prices_include_tax=catalog.prices_include_tax
    )
    hogia_articles = list(hogia.articles_iter())

    by_normalised: dict[str, list[str]] = defaultdict(list)
    for article in hogia_articles:
        by_normalised[_normalised(str(article["number"]))].append(str(article["number"]))
    hogia_duplicated = {numbers[0]: numbers for numbers in by_normalised.values() if len(numbers) > 1}
    hogia_by_number = {
        str(a["number"]): a
        for a in hogia_articles
        if _normalised(str(a["number"])) not in {_normalised(n) for n in hogia_duplicated}
    }
    shop_skus = set(mapped.articles) | set(mapped.duplicated) | {u["sku"] for u in mapped.unmappable}

    match = [
        [sku, item.woo_id, item.parent_id]
        for sku, (item, _a) in sorted(mapped.articles.items())
        if sku in hogia_by_number
    ]
    only_in_shop = sorted(
        sku
        for sku in mapped.articles
        if sku not in hogia_by_number and _normalised(sku) not in {_normalised(n) for n in hogia_duplicated}
    )
    only_in_hogia = sorted(number for number in hogia_by_number if number not in shop_skus)
    not_for_webshop = sorted(n for n in only_in_hogia if not hogia_by_number[n].get("sendToWebshop"))
    shop_writes, differences, difference_counts = _shop_differences(
        job,
        woo=woo,
        catalog=catalog,
        matched=[(mapped.articles[sku][0], hogia_by_number[sku]) for sku, *_rest in match],
    )

    # The shop's stock read now excludes its open orders; the articles start with them added back.
    opening = (
        _reserved_stock(
            job=job, skus=[sku for sku in only_in_shop if "stockBalance" in mapped.articles[sku][1]]
        )
        if job.direction == Direction.TO_HOGIA
        else {}
    )
    with transaction.atomic():
        job.items.all().delete()
        if job.direction == Direction.TO_HOGIA:
            items = [
                InitialSyncItem(
                    job=job,
                    sku=sku,
                    source={
                        "article": jsonable(_opening(mapped.articles[sku][1], opening)),
                        "woo_id": mapped.articles[sku][0].woo_id,
                        "parent_id": mapped.articles[sku][0].parent_id,
                    },
                )
                for sku in only_in_shop
            ]
        else:
            items = [
                InitialSyncItem(job=job, sku=number, source={"article": jsonable(hogia_by_number[number])})
                for number in only_in_hogia
                if number not in set(not_for_webshop)
            ]
        InitialSyncItem.objects.bulk_create(items, batch_size=500)
        job.preview = {
            "counts": {
                "shop_products": len(shop_items),
                "hogia_articles": len(hogia_articles),
                "match": len(match),
                "only_in_shop": len(only_in_shop),
                "only_in_hogia": len(only_in_hogia),
                "duplicated_in_shop": len(mapped.duplicated),
                "duplicated_in_hogia": len(hogia_duplicated),
                "missing_sku": len(mapped.missing_sku),
                "not_for_webshop": len(not_for_webshop),
                "unmappable": len(mapped.unmappable),
                "to_write": len(items),
                **difference_counts,
            },
            "match": match[: LIST_LIMIT * 5],
            "only_in_shop": only_in_shop[:LIST_LIMIT],
            "only_in_hogia": only_in_hogia[:LIST_LIMIT],
            "duplicated_in_shop": dict(list(mapped.duplicated.items())[:LIST_LIMIT]),
            "duplicated_in_hogia": dict(list(hogia_duplicated.items())[:LIST_LIMIT]),
            "missing_sku": mapped.missing_sku[:LIST_LIMIT],
            "not_for_webshop": not_for_webshop[:LIST_LIMIT],
            "unmappable": mapped.unmappable[:LIST_LIMIT],
            "shop_writes": shop_writes,
            "shop_differences": differences[:LIST_LIMIT],
        }
        job.total, job.done, job.failed = len(items), 0, 0
        job.state, job.error = JobState.READY, ""
        job.previewed_at = timezone.now()
        job.save()
    return job


def _reason(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, InitialSyncRefused) else failure_reason(exc)


def _job_failed(job: InitialSync, *, sources: Q, reason: str) -> bool:
    """The job stops with the reason, if it is in one of ``sources``; says whether it did."""
    now = timezone.now()
    # The failure is the job's last sign of life: the admin home counts recent failures by it.
    stopped = bool(
        InitialSync.objects.filter(sources, pk=job.pk).update(
            state=JobState.FAILED, error=reason, heartbeat_at=now
        )
    )
    if stopped:
        job.state, job.error, job.heartbeat_at = JobState.FAILED, reason, now
    return stopped


def _opening(article: dict, reserved: dict[str, Decimal]) -> dict:
    if article["number"] not in reserved:
        return article
    return {
        **article,
        "stockBalance": hogia_opening_balance(
            shop_quantity=article["stockBalance"], reserved=reserved[article["number"]]
        ),
    }


def _reserved_stock(*, job: InitialSync, skus: list[str]) -> dict[str, Decimal]:
    """Per SKU, what the stock rule takes off Hogia's balance before it reaches the shop (or adds
    to the shop's figure when an article is created from it)."""
    return stock_reserved(customer=job.customer, skus=skus)


def _shop_differences(
    job: InitialSync, *, woo: WooCommerceClient, catalog: ShopCatalog, matched: list[tuple[ShopProduct, dict]]
) -> tuple[dict, list[dict], dict]:
    """What the periodic sync would change in the matched products: ``(shop_writes, differences, counts)``.

    ``shop_writes`` says whether the flow writes to the shop at all (and if not, why not). The
    values come from the very function the periodic sync writes with (``shop_fields_wanted``).
    """
    settings = FlowSettings.objects.filter(customer=job.customer).select_related("customer").first()
    if not flow_writes_to_shop(settings):
        return {"writes": False, "why_not": "flow_1" if settings else "no_flow_settings"}, [], {}
    plan = to_shop_plan(settings)
    if not plan.switches.any:
        return {"writes": False, "why_not": "switches_off"}, [], {}
    reserved = (
        _reserved_stock(job=job, skus=[str(article["number"]) for _item, article in matched])
        if plan.switches.stock
        else {}
    )
    differences: list[dict] = []
    counts = {"would_change": 0, "unchanged": 0, "stock_left_alone": 0, "match_not_written": 0}
    for item, article in matched:
        if plan.only_send_to_webshop and not (article.get("sendToWebshop") and article.get("isActive", True)):
            counts["match_not_written"] += 1
            continue
        now = ShopProductNow.of(item.product, item.parent_id)
        fields, _stock = shop_fields_wanted(
            article,
            now,
            switches=plan.switches,
            prices_include_tax=catalog.prices_include_tax,
            reserved=reserved.get(str(article["number"]), Decimal(0)),
        )
        changes = [
            {"field": name, "shop": _shown(getattr(now, name, None), name), "portal": _shown(value, name)}
            for name, value in fields.items()
            if not now.same(name, value)
        ]
        left_alone = plan.switches.stock and not now.counts_stock
        if left_alone:
            changes.append({"field": "stock_quantity", "shop": None, "portal": None, "left_alone": True})
            counts["stock_left_alone"] += 1
        counts["would_change" if len(changes) > int(left_alone) else "unchanged"] += 1
        if changes:
            differences.append({"sku": str(article["number"]), "product": item.label, "changes": changes})
    writes = {
        "writes": True,
        "switches": plan.switches.__dict__,
        "prices_include_tax": catalog.prices_include_tax,
    }
    return writes, differences, counts


def _shown(value: Any, name: str):
    """A value as the shop shows it, for the preview's table (JSON: no Decimals)."""
    if name in ("date_on_sale_from", "date_on_sale_to"):
        return str(value)[:19] if value else None
    if name == "manage_stock":
        return value is True
    return jsonable(value)


# -- run ------------------------------------------------------------------------------------------


class _TimeUp(Exception):
    """The chunk's time is up: the job goes on in the next chunk."""


def _claim(job_id: int, *, stale_after: timedelta) -> bool:
    now = timezone.now()
    # A job whose last chunk ended on time ("continues") is taken at once by the next chunk.
    return bool(
        InitialSync.objects.filter(pk=job_id)
        .filter(
            RUNNABLE
            | Q(state=JobState.RUNNING, heartbeat_at__lt=now - stale_after)
            | Q(state=JobState.RUNNING, report__continues=True)
        )
        .update(state=JobState.RUNNING, heartbeat_at=now, error="")
    )


def initial_sync_run(
    *,
    job_id: int,
    woo: WooCommerceClient | None = None,
    hogia: HogiaSmartClient | None = None,
    stale_after: timedelta = STALE_AFTER,
    seconds: float | None = None,
) -> InitialSync:
    """Write what the preview listed; resumes a stopped or crashed run where it was.

    ``seconds``: stop after the chunk of items that passes this long and mark the job
    ``report["continues"]`` (still running) for the caller to run the next chunk; a run
    of 10,000 articles under Hogia's rate limit takes far longer than a task may.

    A remote failure stops the job (FAILED, with the reason, on its run and in the log); a
    failure nobody foresaw does the same and is raised again, for the task queue to keep.
    """
    shop_id = InitialSync.objects.filter(pk=job_id).values_list("shop_id", flat=True).first()
    with log_context(shop=shop_id, initial_sync=job_id):
        return _initial_sync_run(
            job_id=job_id, woo=woo, hogia=hogia, stale_after=stale_after, seconds=seconds
        )


def _initial_sync_run(
    *, job_id: int, woo, hogia, stale_after: timedelta, seconds: float | None
) -> InitialSync:
    until = None if seconds is None else time.monotonic() + seconds
    if not _claim(job_id, stale_after=stale_after):
        job = InitialSync.objects.get(pk=job_id)
        raise InitialSyncRefused(
            _(
                "The sync is %(state)s; it runs after a preview, once (a stopped run is "
                "resumed by running it again)."
            )
            % {"state": job.get_state_display()}
        )
    job = InitialSync.objects.select_related("shop", "customer").get(pk=job_id)
    run = None
    try:
        run = _segment_start(job)
        time_up = (lambda: time.monotonic() >= until) if until is not None else (lambda: False)
        woo, hogia = _clients(job, woo, hogia)
        if job.direction == Direction.TO_HOGIA:
            _run_to_hogia(job, hogia=hogia, run=run, time_up=time_up)
        else:
            _run_to_shop(job, woo=woo, run=run, time_up=time_up)
        _bind_matches(job)
        _finish(job, run=run)
    except _TimeUp:
        _progress(job)
        job.report = {**job.report, "continues": True}
        job.save(update_fields=["report"])
        sync_run_finish(run=run)
    except (RemoteError, InitialSyncRefused) as exc:
        _run_stopped(job, run=run, reason=_reason(exc))
    except RECORDED_FAILURES as exc:
        _run_stopped(job, run=run, reason=_reason(exc))
        raise
    return job


def _segment_start(job: InitialSync) -> SyncRun:
    """The claimed job's run of this chunk, with its start, resume count and rate segment noted."""
    now = timezone.now()
    resumed = job.started_at is not None
    job.started_at = job.started_at or now
    continuing = bool(job.report.pop("continues", False))
    job.report = {
        **job.report,
        "resumed": job.report.get("resumed", 0) + (1 if resumed and not continuing else 0),
    }
    if not continuing:  # the rate shown is the segment's since support last ran it
        job.report.update({"segment_started_at": now.isoformat(), "segment_started_done": job.done})
    job.save(update_fields=["started_at", "report"])
    run = sync_run_start(
        customer=job.customer, shop=job.shop, kind=SyncRun.Kind.INITIAL_SYNC, triggered_by=job.requested_by
    )
    run.details = {"initial_sync": job.pk, "direction": job.direction, "resumed": resumed}
    return run


def _run_stopped(job: InitialSync, *, run: SyncRun | None, reason: str) -> None:
    _progress(job)
    if _job_failed(job, sources=Q(state=JobState.RUNNING), reason=reason):
        message = f"Initial sync stopped: {reason}. Run it again to resume where it stopped."
    else:  # it had ended (done) when the failure came
        message = f"Initial sync failed after it was {job.get_state_display()}: {reason}."
    sync_log(
        customer=job.customer,
        shop=job.shop,
        run=run,
        level=SyncLogEntry.Level.ERROR,
        object_type="initial_sync",
        object_ref=str(job.pk),
        message=message,
    )
    if run is not None:
        sync_run_finish(run=run, error=reason)


def _progress(job: InitialSync) -> None:
    job.done = job.items.filter(state=ItemState.DONE).count()
    job.failed = job.items.filter(state=ItemState.FAILED).count()
    job.heartbeat_at = timezone.now()
    job.save(update_fields=["done", "failed", "heartbeat_at"])


def _run_to_hogia(
    job: InitialSync, *, hogia: HogiaSmartClient, run: SyncRun, time_up: Callable[[], bool] = lambda: False
) -> None:
    customer = job.customer
    # Items that were being written when the last run stopped are simply written again:
    # their create carries the same sequenceId, so Hogia Smart returns the first article.
    job.items.filter(state=ItemState.SENDING).update(state=ItemState.PENDING)
    known = {a.number: a for a in HogiaArticle.objects.filter(customer=customer)}
    for chunk in _pending_chunks(job, time_up):
        for item in chunk:
            item.state = ItemState.SENDING
            item.save(update_fields=["state"])
            article = _article_numbers(item.source["article"])
            try:
                action, answer = hogia_article_write(
                    customer=customer, hogia=hogia, article=article, known=known.get(item.sku)
                )
            except RemoteRejected as exc:
                item.state, item.message = ItemState.FAILED, f"Hogia Smart refused it: {exc}"
                item.save(update_fields=["state", "message"])
                run.failed_count += 1
                continue
            hogia_article_written(
                customer=customer,
                number=item.sku,
                answer=answer,
                written_hash=content_hash(article_base(article)),
            )
            article_bind(
                job.shop, item.sku, woo_id=item.source["woo_id"], parent_id=item.source.get("parent_id")
            )
            item.state, item.hogia_id = ItemState.DONE, str(answer.get("id") or "")
            item.message = _("created") if action == "created" else _("existed in Hogia Smart: updated")
            item.save(update_fields=["state", "hogia_id", "message"])
            # Per article: Hogia's rate limit makes each one take a while, and the admin shows it.
            InitialSync.objects.filter(pk=job.pk).update(done=F("done") + 1, heartbeat_at=timezone.now())
            if action == "created":
                run.created_count += 1
            else:
                run.updated_count += 1
        _progress(job)


def _pending_chunks(job: InitialSync, time_up: Callable[[], bool]):
    """The items still to write, ``CHUNK`` at a time; at least one chunk before the time is up."""
    first = True
    while True:
        chunk = list(job.items.filter(state=ItemState.PENDING).order_by("id")[:CHUNK])
        if not chunk:
            return
        if not first and time_up():
            raise _TimeUp
        first = False
        yield chunk


def _article_numbers(stored: dict) -> dict:
    """An article kept as JSON text, with its numbers as Decimals again (Hogia takes JSON numbers)."""
    article = dict(stored)
    for key in ("vatPercent", "stockBalance"):
        if key in article:
            article[key] = Decimal(str(article[key]))
    if "prices" in article:
        article["prices"] = {k: Decimal(str(v)) for k, v in article["prices"].items() if v is not None}
    return article


def _shop_switches(job: InitialSync) -> Switches:
    """The whole catalogue is copied: prices always; campaign prices and stock if the package has them."""
    customer = job.customer
    return Switches(
        prices=True,
        campaign=feature_refusal(customer=customer, feature=Feature.PRICE_STRUCTURES, what="Campaign prices")
        is None,
        stock=feature_refusal(customer=customer, feature=Feature.STOCK, what="Stock") is None,
    )


def _run_to_shop(
    job: InitialSync, *, woo: WooCommerceClient, run: SyncRun, time_up: Callable[[], bool] = lambda: False
) -> None:
    shop = job.shop
    catalog = shop_catalog(shop=shop)
    taxes = shop_taxes(woo=woo)
    switches = _shop_switches(job)
    settings = FlowSettings.objects.filter(customer=job.customer).first()
    plan_switches = to_shop_plan(settings).switches if settings else switches
    # Items that were being written when the last run stopped may exist in the shop already.
    sending = list(job.items.filter(state=ItemState.SENDING))
    if sending:
        found = {str(p.get("sku")): p for p in woo.products_by_sku([i.sku for i in sending])}
        for item in sending:
            product = found.get(item.sku)
            if product is not None:
                _shop_item_done(
                    job,
                    item,
                    product_id=int(product["id"]),
                    plan_switches=plan_switches,
                    prices_include_tax=catalog.prices_include_tax,
                    message=_("created (found after a restart)"),
                )
            else:
                item.state = ItemState.PENDING
                item.save(update_fields=["state"])
        _progress(job)
    for chunk in _pending_chunks(job, time_up):
        payloads, sent = [], []
        for item in chunk:
            try:
                payloads.append(
                    new_product_from_article(
                        item.source["article"],
                        taxes=taxes,
                        switches=switches,
                        prices_include_tax=catalog.prices_include_tax,
                    )
                )
                sent.append(item)
            except NotMappable as exc:
                item.state, item.message = ItemState.FAILED, exc.reason
                item.save(update_fields=["state", "message"])
                run.failed_count += 1
        InitialSyncItem.objects.filter(pk__in=[i.pk for i in sent]).update(state=ItemState.SENDING)
        result = woo.products_batch(create=payloads)
        for index, product in result.created.items():
            _shop_item_done(
                job,
                sent[index],
                product_id=int(product["id"]),
                plan_switches=plan_switches,
                prices_include_tax=catalog.prices_include_tax,
                message=_("created"),
            )
            run.created_count += 1
        for error in result.errors:
            item = sent[error.index]
            owner = error.data.get("resource_id") if isinstance(error.data, dict) else None
            if error.code == "product_invalid_sku" and owner:
                _shop_item_done(
                    job,
                    item,
                    product_id=int(owner),
                    plan_switches=None,
                    prices_include_tax=True,
                    message=_("already in the shop: bound, not changed"),
                )
                continue
            item.state, item.message = ItemState.FAILED, f"{error.message} ({error.code})"
            item.save(update_fields=["state", "message"])
            run.failed_count += 1
        _progress(job)


def _shop_item_done(
    job: InitialSync,
    item: InitialSyncItem,
    *,
    product_id: int,
    plan_switches: Switches | None,
    prices_include_tax: bool,
    message: str,
) -> None:
    binding = article_bind(job.shop, item.sku, woo_id=product_id, parent_id=None)
    # Record what the shop now has, so the periodic sync writes only real changes later.
    recorded = hogia_articles_record(customer=job.customer, articles=[item.source["article"]])
    article = HogiaArticle.objects.filter(customer=job.customer, number=item.sku).first()
    if (
        plan_switches is not None
        and plan_switches.any
        and article is not None
        and (recorded or article.row_version == int(item.source["article"].get("rowVersion") or 0))
    ):
        fields = shop_fields_from_article(
            item.source["article"], switches=plan_switches, prices_include_tax=prices_include_tax
        )
        binding_written(
            binding,
            digest=content_hash(fields),
            row_version=int(item.source["article"].get("rowVersion") or 0),
        )
    item.state, item.woo_id, item.message = ItemState.DONE, product_id, message
    item.save(update_fields=["state", "woo_id", "message"])


def _bind_matches(job: InitialSync) -> None:
    for sku, woo_id, parent_id in job.preview.get("match", []):
        ArticleBinding.objects.get_or_create(
            shop=job.shop, sku=sku, defaults={"woo_id": woo_id, "woo_parent_id": parent_id}
        )


def _finish(job: InitialSync, *, run: SyncRun) -> None:
    _progress(job)
    failures = list(job.items.filter(state=ItemState.FAILED).values("sku", "message")[:LIST_LIMIT])
    counts = job.preview.get("counts", {})
    now = timezone.now()
    job.state = JobState.DONE
    job.finished_at = now
    job.report = {
        **job.report,
        "written": job.done,
        "failed": job.failed,
        "failures": failures,
        "bound_matches": counts.get("match", 0),
        "left_out": {
            key: counts.get(key, 0)
            for key in (
                "duplicated_in_shop",
                "duplicated_in_hogia",
                "missing_sku",
                "not_for_webshop",
                "unmappable",
            )
        },
        "seconds": round((now - job.started_at).total_seconds(), 1),
    }
    job.save(update_fields=["state", "finished_at", "report"])
    run.read_count = job.total
    run.details = {**run.details, "report": {k: v for k, v in job.report.items() if k != "failures"}}
    sync_log(
        customer=job.customer,
        shop=job.shop,
        run=run,
        level=SyncLogEntry.Level.WARNING if job.failed else SyncLogEntry.Level.INFO,
        object_type="initial_sync",
        object_ref=str(job.pk),
        message=_(
            "Initial sync done: %(done)d of %(total)d written, %(failed)d failed, %(bound)d matching "
            "SKUs bound."
        )
        % {"done": job.done, "total": job.total, "failed": job.failed, "bound": counts.get("match", 0)},
    )
    sync_run_finish(run=run)
    with log_context(run=run.pk):
        logger.info(
            "initial sync done (%s): %d of %d article(s) written, %d failed",
            job.direction,
            job.done,
            job.total,
            job.failed,
        )
    if (job.preview.get("shop_writes") or {}).get("writes"):
        # Support saw what the periodic sync would change in the matched products, then ran this.
        shop_overwrite_allow(
            shop=job.shop,
            by=_("%(by)s (initial sync #%(job)d)") % {"by": job.requested_by or _("support"), "job": job.pk},
        )


# -- progress, for the admin --------------------------------------------------------------------


def initial_sync_progress(*, job: InitialSync) -> dict:
    """``done``/``total``, items per second in the current (or last) run segment and seconds left.

    ``percent`` is None until a preview has said what there is to write.
    """
    from django.utils.dateparse import parse_datetime

    progress = {
        "done": job.done,
        "failed": job.failed,
        "total": job.total,
        "rate": None,
        "eta_seconds": None,
        "percent": None,
    }
    if job.total:
        progress["percent"] = round(100 * (job.done + job.failed) / job.total, 1)
    elif job.previewed_at is not None:  # the preview found nothing to write: nothing is left
        progress["percent"] = 100.0
    started = parse_datetime(job.report.get("segment_started_at") or "") if job.report else None
    until = job.heartbeat_at if job.state == JobState.RUNNING else (job.finished_at or job.heartbeat_at)
    if started and until and until > started:
        written = job.done - int(job.report.get("segment_started_done") or 0)
        rate = written / (until - started).total_seconds()
        progress["rate"] = round(rate, 2)
        left = job.total - job.done - job.failed
        if rate > 0 and job.state == JobState.RUNNING:
            progress["eta_seconds"] = round(left / rate)
    return progress
