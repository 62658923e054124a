"""The Hogia Smart article feed: articles changed after the rowversion watermark, recorded per customer."""
from __future__ import annotations

from decimal import Decimal
from typing import Iterable

from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from billing.models import Customer
from integrations.clients.hogia_smart import HogiaSmartClient
from integrations.models import ArticleBinding, CatalogState, HogiaArticle, Shop


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
        data = jsonable(article)
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


def jsonable(value):
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [jsonable(v) for v in value]
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
