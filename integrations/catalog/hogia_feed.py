"""The Hogia Smart article feed: articles changed after the rowversion watermark, recorded per customer."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Iterable, Iterator

from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from billing.models import Customer
from integrations.clients.hogia_smart import HogiaSmartClient
from integrations.models import ArticleBinding, HogiaArticle, Shop

# Hogia Smart's largest page: the feed is read, recorded and brought to the shops in these.
FEED_PAGE = 500


def hogia_articles_record(*, customer: Customer, articles: Iterable[dict]) -> list[str]:
    """Record articles read from Hogia Smart, newest ``rowVersion`` only; returns the numbers
    whose values moved forward (an older snapshot than the one recorded changes nothing)."""
    batch = [a for a in articles if a.get("number")]
    if not batch:
        return []
    existing = {
        number: (pk, row_version)
        for pk, number, row_version in HogiaArticle.objects.filter(
            customer=customer, number__in=[a["number"] for a in batch]
        ).values_list("pk", "number", "row_version")
    }
    moved: list[str] = []
    new_rows = []
    for article in batch:
        number, row_version = str(article["number"]), int(article.get("rowVersion") or 0)
        data = jsonable(article)
        if number not in existing:
            new_rows.append(
                HogiaArticle(
                    customer=customer,
                    number=number,
                    hogia_id=str(article.get("id") or ""),
                    row_version=row_version,
                    data=data,
                )
            )
            existing[number] = (None, row_version)
            moved.append(number)
            continue
        pk, known = existing[number]
        if pk is None or row_version <= known:
            continue
        # The conditional UPDATE is the guarantee; the comparison above only saves queries.
        if HogiaArticle.objects.filter(pk=pk, row_version__lt=row_version).update(
            row_version=row_version,
            data=data,
            hogia_id=str(article.get("id") or ""),
            updated_at=timezone.now(),
        ):
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


@dataclass
class FeedPage:
    numbers: list[str]
    highest: int


def hogia_feed_pages(
    *, customer: Customer, hogia: HogiaSmartClient, after: int, page: int = FEED_PAGE
) -> Iterator[FeedPage]:
    """The articles changed after rowVersion ``after``, oldest change first, recorded a page at a
    time. The caller moves its watermark to a page's ``highest`` once it has brought the page
    to the shops, so a run cut short reads that page again; every number of a page is
    returned (recorded already or not), since the shops may not have it yet."""
    buffer: list[dict] = []
    for article in hogia.articles_changed_since(after, page_size=page):
        buffer.append(article)
        if len(buffer) >= page:
            yield _recorded(customer, buffer)
            buffer = []
    if buffer:
        yield _recorded(customer, buffer)


def _recorded(customer: Customer, articles: list[dict]) -> FeedPage:
    hogia_articles_record(customer=customer, articles=articles)
    return FeedPage(
        numbers=list(dict.fromkeys(str(a["number"]) for a in articles if a.get("number"))),
        highest=max(int(a.get("rowVersion") or 0) for a in articles),
    )


def recorded_after(*, customer: Customer, row_version: int, page: int = FEED_PAGE) -> Iterator[FeedPage]:
    """Articles recorded from Hogia Smart after ``row_version``, a page at a time, from the portal's copy."""
    while True:
        rows = list(
            HogiaArticle.objects.filter(customer=customer, row_version__gt=row_version)
            .order_by("row_version")
            .values_list("number", "row_version")[:page]
        )
        if not rows:
            return
        row_version = rows[-1][1]
        yield FeedPage(numbers=[number for number, _ in rows], highest=row_version)


def shop_lagging_numbers(*, shop: Shop) -> list[str]:
    """Articles recorded from Hogia Smart that this shop was brought up to date with before
    but has an older version of now: pushes that failed (the shop was down) or were cut
    short, which the feed's watermark has already moved past."""
    older = ArticleBinding.objects.filter(
        shop=shop,
        sku=OuterRef("number"),
        woo_id__isnull=False,
        hogia_row_version__gt=0,
        hogia_row_version__lt=OuterRef("row_version"),
    )
    return list(
        HogiaArticle.objects.filter(customer=shop.customer)
        .filter(Exists(older))
        .values_list("number", flat=True)
    )
