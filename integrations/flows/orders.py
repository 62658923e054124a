"""Orders become invoices: the heart of every flow (1, 2 and 3).

The database is the truth and queue messages are only wake-ups: a webhook or the
poll records that an order exists (``order_seen``), the transfer claims the order's
row before it does anything remote (``order_transfer``), and the sweeper re-queues
whatever a lost task, a crash or an outage left behind (``transfers_due``).
Exactly one invoice per order comes from three locks in series: one row per shop
order (unique), a claim by conditional UPDATE, and Hogia's ``sequenceId`` derived
from the shop and the order, so even a crash between "invoice created" and
"recorded" repeats the same create and gets the first invoice back.
"""
from __future__ import annotations

import logging
import random
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from datetime import timezone as dt_timezone

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from billing.services import quota_claim, quota_release, quota_release_forced
from integrations.clients.hogia_smart import HogiaSmartClient
from integrations.clients.woocommerce import WooCommerceClient
from integrations.connections import hogia_client, woocommerce_client
from integrations.errors import (NotFound, RateLimited, RemoteError, RemoteRejected,
                                 RemoteUnavailable, Unauthorised)
from integrations.mapping.contacts import buyer_key, hogia_contact_body, hogia_contact_filters
from integrations.mapping.invoices import (InvoiceArticles, InvoiceBlocked, credit_from_refund,
                                           hogia_invoice_body, invoice_from_order)
from integrations.models import (BuyerBinding, FlowSettings, HogiaConnection, OrderEvent,
                                 OrderTransfer, RefundCredit, Shop, SyncLogEntry)
from integrations.orders.payload import order_usable
from integrations.services import sync_log

logger = logging.getLogger(__name__)

State = OrderTransfer.State
Kind = OrderEvent.Kind

# Namespace of the sequence ids: uuid5(namespace, shop token + order id) is the same on
# every attempt, from every worker, for ever.
SEQUENCE_NAMESPACE = uuid.UUID("8f0b6c1e-4f5d-4b43-9a57-3c2de0f1a7b2")
# A transfer holds its row this long; a worker that died is taken over after it.
CLAIM_SECONDS = 300
# Back-off for an unavailable or rate-limiting Hogia Smart: full jitter, 30 s doubling up
# to an hour, so an outage of hours ends with every order invoiced, without a stampede.
BACKOFF_BASE_SECONDS = 30
BACKOFF_CAP_SECONDS = 3600
# The poll re-reads this much before its watermark: orders committed in the shop while
# the previous poll ran carry a modified time before that poll's start.
POLL_OVERLAP = timedelta(minutes=10)
# WooCommerce before 5.8 ignores modified_after silently (woocommerce#30585).
MODIFIED_AFTER_SINCE = (5, 8)


def transfer_sequence_id(*, shop: Shop, woo_order_id: int) -> uuid.UUID:
    return uuid.uuid5(SEQUENCE_NAMESPACE, f"{shop.webhook_token}:order:{woo_order_id}")


def _event(transfer: OrderTransfer, kind: str, message: str, **details) -> OrderEvent:
    return OrderEvent.objects.create(transfer=transfer, kind=kind, message=message, details=details)


def _gmt(value: str | None) -> datetime | None:
    """WooCommerce's ``*_gmt`` fields are UTC without an offset."""
    if not value:
        return None
    parsed = parse_datetime(value)
    if parsed is None:
        return None
    return parsed if timezone.is_aware(parsed) else parsed.replace(tzinfo=dt_timezone.utc)


def _buyer_label(order: dict) -> str:
    billing = order.get("billing") or {}
    name = " ".join(p for p in (billing.get("first_name"), billing.get("last_name")) if p)
    company = billing.get("company") or ""
    return ", ".join(p for p in (company, name, billing.get("email") or "") if p)[:200]


def _is_trigger(shop: Shop, status: str) -> bool:
    return status in (shop.trigger_statuses or [])


# -- intake: webhooks and the poll record what they saw ----------------------------------------

@dataclass
class Seen:
    transfer: OrderTransfer
    created: bool
    queued: bool


def order_seen(*, shop: Shop, order: dict, via: str) -> Seen:
    """Record that the shop has this order in this state; queue it if it should transfer.

    Idempotent: the same order seen ten times (webhook, poll, retries) is one row and
    at most one queued transfer.
    """
    woo_order_id = int(order["id"])
    status = str(order.get("status") or "")
    with transaction.atomic():
        try:
            transfer, created = OrderTransfer.objects.select_for_update().get_or_create(
                shop=shop, woo_order_id=woo_order_id,
                defaults={"sequence_id": transfer_sequence_id(shop=shop, woo_order_id=woo_order_id),
                          "first_seen_via": via})
        except IntegrityError:  # a concurrent first sighting won the insert
            transfer, created = OrderTransfer.objects.select_for_update().get(
                shop=shop, woo_order_id=woo_order_id), False
        previous_status = transfer.woo_status
        transfer.order_number = str(order.get("number") or woo_order_id)[:40]
        transfer.woo_status = status[:40]
        transfer.woo_modified_gmt = _gmt(order.get("date_modified_gmt")) or transfer.woo_modified_gmt
        transfer.order_created_gmt = _gmt(order.get("date_created_gmt")) or transfer.order_created_gmt
        transfer.buyer = _buyer_label(order) or transfer.buyer
        transfer.currency = str(order.get("currency") or "")[:3]
        if order.get("total") not in (None, ""):
            transfer.total = order["total"]
        if created:
            _event(transfer, Kind.RECEIVED, f"Received by {via} (status {status}).", via=via)
        queued = False
        refund_ids = {int(r["id"]) for r in order.get("refunds") or [] if r.get("id")}
        if (transfer.state == State.INVOICED and refund_ids
                and not refund_ids <= set(transfer.credits.values_list("woo_refund_id", flat=True))):
            transfer.state = State.QUEUED
            transfer.next_attempt_at = timezone.now()
            queued = True
            _event(transfer, Kind.REFUND, "A refund was made in the shop: a credit invoice follows.",
                   via=via)
        elif transfer.state in (State.RECEIVED, State.FILTERED):
            if _is_trigger(shop, status):
                transfer.state = State.QUEUED
                transfer.next_attempt_at = timezone.now()
                queued = True
                if not created:
                    _event(transfer, Kind.RECEIVED,
                           f"Status changed to {shop.status_label(status)} ({status}): queued for "
                           f"transfer.", via=via)
            elif created or previous_status != status:
                transfer.state = State.FILTERED
                chosen = ", ".join(shop.trigger_statuses or []) or "none"
                _event(transfer, Kind.FILTERED,
                       f"Not transferred: status {shop.status_label(status)} ({status}) is not one of "
                       f"the shop's transfer statuses ({chosen}).", status=status)
        transfer.save()
    if queued:
        transfer_enqueue(transfer_id=transfer.pk)
    return Seen(transfer=transfer, created=created, queued=queued)


def transfer_enqueue(*, transfer_id: int) -> None:
    """Wake a worker after commit; if the wake-up is lost, the sweeper finds the row."""
    from django_q.tasks import async_task

    OrderTransfer.objects.filter(pk=transfer_id).update(woken_at=timezone.now())
    transaction.on_commit(lambda: async_task("integrations.tasks.transfer_order", transfer_id,
                                             group="order-transfer"))


# -- the transfer -----------------------------------------------------------------------------

def _claim(transfer_id: int) -> OrderTransfer | None:
    """Take the row for one attempt, or None if it is not due or another worker has it."""
    now = timezone.now()
    claimed = (OrderTransfer.objects
               .filter(pk=transfer_id)
               .filter(Q(state=State.QUEUED) | Q(state=State.TRANSFERRING, locked_until__lt=now))
               .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
               .filter(Q(locked_until__isnull=True) | Q(locked_until__lt=now))
               .update(state=State.TRANSFERRING, locked_until=now + timedelta(seconds=CLAIM_SECONDS)))
    if not claimed:
        return None
    transfer = OrderTransfer.objects.select_related("shop", "shop__customer").get(pk=transfer_id)
    transfer.attempts += 1  # counted at claim, so a worker that crashes still counts
    transfer.save(update_fields=["attempts"])
    return transfer


def _backoff_seconds(attempts: int) -> float:
    ceiling = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** max(0, attempts - 1))
    return random.uniform(ceiling / 2, ceiling)


def _finish(transfer: OrderTransfer, **fields) -> None:
    fields.setdefault("locked_until", None)
    for name, value in fields.items():
        setattr(transfer, name, value)
    transfer.save(update_fields=[*fields, "updated_at"])


def _retry_later(transfer: OrderTransfer, exc: RemoteError, *, system: str) -> None:
    wait = _backoff_seconds(transfer.attempts)
    if isinstance(exc, RateLimited):
        wait = max(wait, exc.retry_after)
    message = f"{system} unavailable ({exc}); retrying in {wait:.0f} s (attempt {transfer.attempts})."
    _event(transfer, Kind.ATTEMPT_FAILED, message, error=str(exc), retry_in_seconds=round(wait))
    _finish(transfer, state=State.QUEUED, last_error=str(exc),
            next_attempt_at=timezone.now() + timedelta(seconds=wait))


def _needs_attention(transfer: OrderTransfer, *, error: str, what_to_do: str, **details) -> None:
    _event(transfer, Kind.NEEDS_ATTENTION, f"{error} {what_to_do}".strip(), error=error, **details)
    sync_log(customer=transfer.shop.customer, shop=transfer.shop, level=SyncLogEntry.Level.ERROR,
             message=f"Order {transfer.order_number} needs attention: {error}",
             object_type="order", object_ref=transfer.order_number)
    _finish(transfer, state=State.NEEDS_ATTENTION, last_error=error, attention=what_to_do,
            next_attempt_at=None)


def _rejection_advice(exc: RemoteRejected) -> str:
    text = str(exc).lower()
    if "article" in text or "artikel" in text:
        return ("Create the article in Hogia Smart with the same article number as the shop's SKU "
                "(or correct the SKU in the shop), then retry the order.")
    if "vat" in text or "moms" in text:
        return "Add the missing VAT code in Hogia Smart, then retry the order."
    return "Correct the cause in Hogia Smart or in the shop, then retry the order."


def _settings_for(shop: Shop) -> FlowSettings:
    settings = getattr(shop.customer, "flow_settings", None)
    return settings if settings is not None else FlowSettings(customer=shop.customer)


def _buyer_customer_number(*, transfer: OrderTransfer, order: dict, settings: FlowSettings,
                           hogia: HogiaSmartClient) -> str:
    """The buyer's Hogia Smart customer number: remembered, found, or created (in that order)."""
    customer = transfer.shop.customer
    key = buyer_key(order, policy=settings.customer_match)
    binding = BuyerBinding.objects.filter(customer=customer, key_kind=key.kind,
                                          key_value=key.value).first()
    if binding:
        return binding.hogia_customer_number
    # Hogia numbers its customers itself: a shop customer number is not searchable there, so
    # under that policy a buyer not yet bound is created (and bound) on first sight.
    filters = hogia_contact_filters(key)
    found = hogia.contacts_find(**filters) if filters else []
    created = not found
    if found:
        contact = found[0]
        message = f"Customer matched in Hogia Smart by {key.kind}: number {contact['number']}."
    else:
        contact = hogia.contact_create(hogia_contact_body(order),
                                       uuid.uuid5(SEQUENCE_NAMESPACE, f"{customer.pk}:{key.kind}:{key.value}"))
        message = f"Customer created in Hogia Smart: number {contact['number']}."
    try:
        with transaction.atomic():
            BuyerBinding.objects.create(customer=customer, key_kind=key.kind, key_value=key.value,
                                        hogia_contact_id=str(contact["id"]),
                                        hogia_customer_number=str(contact["number"]), created=created)
    except IntegrityError:  # another order of the same buyer bound it first
        binding = BuyerBinding.objects.get(customer=customer, key_kind=key.kind, key_value=key.value)
        return binding.hogia_customer_number
    _event(transfer, Kind.CUSTOMER, message, key=key.kind, customer_number=str(contact["number"]),
           created=created)
    return str(contact["number"])


def _your_reference(transfer: OrderTransfer) -> str:
    return f"{transfer.shop.name} order {transfer.order_number}"[:50]


def order_transfer(*, transfer_id: int, woo: WooCommerceClient | None = None,
                   hogia: HogiaSmartClient | None = None, today: date | None = None) -> OrderTransfer | None:
    """One attempt to bring Hogia Smart in line with a queued order: its invoice, then a
    credit invoice per refund. Safe to call any number of times."""
    transfer = _claim(transfer_id)
    if transfer is None:
        return None
    shop = transfer.shop
    customer = shop.customer
    settings = _settings_for(shop)
    if settings.paused or not shop.is_active:
        _finish(transfer, state=State.QUEUED, next_attempt_at=timezone.now() + timedelta(minutes=15),
                last_error="integration paused" if settings.paused else "shop inactive")
        return transfer
    connection = HogiaConnection.objects.filter(customer=customer).first()
    if connection is None:
        _needs_attention(transfer, error="The customer has no Hogia Smart connection.",
                         what_to_do="Connect Hogia Smart on the customer page, then retry.")
        return transfer
    woo = woo or woocommerce_client(shop=shop)
    hogia = hogia or hogia_client(connection=connection)
    articles = InvoiceArticles(freight=settings.freight_article_number, fee=settings.fee_article_number,
                               discount=settings.discount_article_number)
    try:
        # The webhook body was only a hint: act on the order as the shop has it now.
        order = woo.order_get(transfer.woo_order_id)
        if not transfer.hogia_invoice_id:
            if not _invoice_ensure(transfer=transfer, order=order, settings=settings, hogia=hogia,
                                   articles=articles, today=today):
                return transfer
        if not _credits_ensure(transfer=transfer, order=order, woo=woo, hogia=hogia, articles=articles,
                               today=today):
            return transfer
    except NotFound:
        _needs_attention(transfer, error="The order no longer exists in the shop (deleted?).",
                         what_to_do="Nothing to invoice; leave it, or restore the order and retry.")
        return transfer
    except Unauthorised as exc:
        _needs_attention(transfer, error=f"A remote system refused the portal's credentials ({exc}).",
                         what_to_do="Check the shop's API key and the Hogia Smart connection, test "
                                    "both connections, then retry.")
        return transfer
    except (RateLimited, RemoteUnavailable) as exc:
        _retry_later(transfer, exc, system=exc.system or "A remote system")
        return transfer
    except RemoteRejected as exc:
        _needs_attention(transfer, error=f"{exc.system or 'The remote system'} rejected the request: {exc}",
                         what_to_do=_rejection_advice(exc), remote_errors=exc.errors)
        return transfer
    except ValueError as exc:  # the buyer cannot be identified by the chosen policy
        _needs_attention(transfer, error=str(exc),
                         what_to_do="Add the missing buyer data in the shop or change the match policy.")
        return transfer
    _finish(transfer, state=State.INVOICED, last_error="", attention="", next_attempt_at=None)
    return transfer


def _invoice_ensure(*, transfer: OrderTransfer, order: dict, settings: FlowSettings,
                    hogia: HogiaSmartClient, articles: InvoiceArticles, today: date | None) -> bool:
    """Create the order's invoice; False when the transfer stops here (filtered, held, blocked)."""
    shop = transfer.shop
    status = str(order.get("status") or "")
    if not _is_trigger(shop, status):
        _event(transfer, Kind.FILTERED, f"Not transferred: the order is now {shop.status_label(status)} "
                                        f"({status}).", status=status)
        _finish(transfer, state=State.FILTERED, woo_status=status[:40], next_attempt_at=None)
        return False
    claim = quota_claim(customer=shop.customer, order_key=transfer.quota_key,
                        arrived_at=transfer.created_at, on=today)
    if not claim.granted:
        _event(transfer, Kind.HELD,
               f"Held: {claim.used} of {claim.limit} orders this month are used. It is transferred "
               f"when the quota allows (the 1st of next month, a larger package, or support's "
               f"release).", used=claim.used, limit=claim.limit)
        _finish(transfer, state=State.HELD, next_attempt_at=None)
        return False
    try:
        draft = invoice_from_order(order, articles=articles)
    except InvoiceBlocked as blocked:
        _needs_attention(transfer, error=f"The invoice would not match the order: {blocked.reason}",
                         what_to_do="Correct the order in the shop (or the article data), then retry.",
                         diff=blocked.as_text())
        return False
    customer_number = _buyer_customer_number(transfer=transfer, order=order, settings=settings,
                                             hogia=hogia)
    invoice_date = today or timezone.localdate()
    body, lines = hogia_invoice_body(draft, customer_number=customer_number, invoice_date=invoice_date,
                                     due_date=invoice_date + timedelta(days=30),
                                     result_unit=shop.result_unit or None)
    body["yourReference"] = _your_reference(transfer)
    invoice = None
    if transfer.attempts > 1:
        # An earlier attempt may have created it without recording it: look before creating.
        invoice = next((i for i in hogia.invoices_find(customer_order_number=draft.customer_order_number)
                        if i.get("yourReference") == body["yourReference"]
                        and not i.get("creditedInvoiceId")), None)
    if invoice is None:
        invoice = hogia.invoice_create(body, lines, transfer.sequence_id)
    with transaction.atomic():
        _finish(transfer, hogia_invoice_id=str(invoice["id"]),
                invoice_number=str(invoice.get("invoiceNumber", "")), hogia_customer_number=customer_number,
                invoiced_at=timezone.now(), state=State.INVOICED, last_error="", attention="",
                next_attempt_at=None, locked_until=transfer.locked_until)
        rounding = f" (rounding line {draft.rounding} {draft.currency})" if draft.rounding else ""
        _event(transfer, Kind.INVOICED,
               f"Invoice {transfer.invoice_number} created in Hogia Smart: {invoice.get('grossAmount')} "
               f"{draft.currency}{rounding}.", invoice_id=transfer.hogia_invoice_id,
               warnings=draft.warnings)
    return True


def _credits_ensure(*, transfer: OrderTransfer, order: dict, woo: WooCommerceClient,
                    hogia: HogiaSmartClient, articles: InvoiceArticles, today: date | None) -> bool:
    """A credit invoice for every refund of an invoiced order; False when one needs attention."""
    summaries = order.get("refunds") or []
    done = set(transfer.credits.values_list("woo_refund_id", flat=True))
    if not summaries or {int(r["id"]) for r in summaries} <= done:
        return True
    for refund in sorted(woo.order_refunds(transfer.woo_order_id), key=lambda r: int(r["id"])):
        refund_id = int(refund["id"])
        if refund_id in done:
            continue
        sequence_id = uuid.uuid5(SEQUENCE_NAMESPACE, f"{transfer.sequence_id}:refund:{refund_id}")
        try:
            draft = credit_from_refund(order, refund, articles=articles)
        except InvoiceBlocked as blocked:
            _needs_attention(transfer, error=f"Refund {refund_id} cannot be credited: {blocked.reason}",
                             what_to_do="Book the credit by hand in Hogia Smart and mark the refund as "
                                        "credited, or refund per line in the shop and retry.",
                             diff=blocked.as_text(), refund_id=refund_id)
            return False
        credit_date = today or timezone.localdate()
        body, lines = hogia_invoice_body(draft, customer_number=transfer.hogia_customer_number,
                                         invoice_date=credit_date, due_date=credit_date,
                                         result_unit=transfer.shop.result_unit or None,
                                         credited_invoice_id=transfer.hogia_invoice_id)
        credit = hogia.invoice_create(body, lines, sequence_id)
        with transaction.atomic():
            RefundCredit.objects.create(transfer=transfer, woo_refund_id=refund_id,
                                        amount=refund.get("amount") or 0, sequence_id=sequence_id,
                                        hogia_invoice_id=str(credit["id"]),
                                        invoice_number=str(credit.get("invoiceNumber", "")))
            _event(transfer, Kind.REFUND,
                   f"Refund {refund_id} of {refund.get('amount')} {draft.currency} credited: credit "
                   f"invoice {credit.get('invoiceNumber')} ({credit.get('grossAmount')}).",
                   refund_id=refund_id, credit_invoice_id=str(credit["id"]))
    return True


# -- support's actions and the sweeper --------------------------------------------------------

def transfers_retry(*, transfers, by: str) -> int:
    """Put orders that need attention (or wait for a retry) back in the queue, due now."""
    count = 0
    for transfer in transfers.filter(state__in=[State.NEEDS_ATTENTION, State.QUEUED]):
        with transaction.atomic():
            _event(transfer, Kind.RETRY, f"Retry requested by {by}.")
            _finish(transfer, state=State.QUEUED, next_attempt_at=timezone.now(), attention="")
        transfer_enqueue(transfer_id=transfer.pk)
        count += 1
    return count


def transfers_release_held(*, transfers, by_user, reason: str) -> int:
    """Support's explicit release of held orders, over the quota, with who and why."""
    by_customer: dict[int, list[OrderTransfer]] = {}
    for transfer in transfers.filter(state=State.HELD).select_related("shop__customer"):
        by_customer.setdefault(transfer.shop.customer_id, []).append(transfer)
    released = 0
    for held in by_customer.values():
        customer = held[0].shop.customer
        keys = quota_release_forced(customer=customer, order_keys=[t.quota_key for t in held],
                                    by_user=by_user, reason=reason)
        released += _requeue_released(customer_id=customer.pk, keys=keys,
                                      message=f"Released by {by_user}: {reason}")
    return released


def _requeue_released(*, customer_id: int, keys: list[str], message: str) -> int:
    count = 0
    for transfer in OrderTransfer.objects.filter(shop__customer_id=customer_id, state=State.HELD):
        if transfer.quota_key not in keys:
            continue
        with transaction.atomic():
            _event(transfer, Kind.RELEASED, message)
            _finish(transfer, state=State.QUEUED, next_attempt_at=timezone.now())
        transfer_enqueue(transfer_id=transfer.pk)
        count += 1
    return count


def quotas_release(*, on: date | None = None) -> int:
    """Release held orders wherever the quota now allows (a new month, a larger package)."""
    from billing.models import Customer

    released = 0
    customers = Customer.objects.filter(shops__order_transfers__state=State.HELD).distinct()
    for customer in customers:
        keys = quota_release(customer=customer, on=on)
        if keys:
            released += _requeue_released(customer_id=customer.pk, keys=keys,
                                          message="Released: the monthly quota allows it now.")
    return released


# A wake-up still waiting in a busy broker is not sent again before this: the sweeper would
# otherwise add one per row every minute to a backlog.
WAKE_AGAIN_AFTER = timedelta(minutes=10)


def transfers_due() -> list[int]:
    """Rows that should be worked on now (due retries, claims whose worker died) and have
    not been woken recently; they are marked as woken."""
    now = timezone.now()
    due = list(OrderTransfer.objects.filter(
        Q(state=State.QUEUED, next_attempt_at__lte=now)
        | Q(state=State.TRANSFERRING, locked_until__lt=now))
        .filter(Q(woken_at__isnull=True) | Q(woken_at__lt=now - WAKE_AGAIN_AFTER))
        .values_list("pk", flat=True)[:500])
    OrderTransfer.objects.filter(pk__in=due).update(woken_at=now)
    return due


# -- the safety-net poll ----------------------------------------------------------------------

def _version_tuple(version: str) -> tuple[int, ...]:
    parts = []
    for piece in version.split(".")[:3]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


def orders_poll(*, shop: Shop, woo: WooCommerceClient | None = None) -> int:
    """Find orders whose webhook never came; returns how many orders it looked at."""
    woo = woo or woocommerce_client(shop=shop)
    started = timezone.now()
    since = (shop.orders_synced_until or shop.created_at) - POLL_OVERLAP
    seen = 0
    if shop.store_version and _version_tuple(shop.store_version) < MODIFIED_AFTER_SINCE:
        # Too old for modified_after: newest first, stop once past the watermark.
        for order in woo.orders_iter(orderby="modified", order="desc"):
            if not order_usable(shop=shop, order=order, via="poll"):
                continue
            modified = _gmt(order.get("date_modified_gmt"))
            if modified is not None and modified < since:
                break
            order_seen(shop=shop, order=order, via="poll")
            seen += 1
    else:
        for order in woo.orders_iter(modified_after=since, orderby="modified", order="asc"):
            if not order_usable(shop=shop, order=order, via="poll"):
                continue
            order_seen(shop=shop, order=order, via="poll")
            seen += 1
    # Only after every page is recorded: a poll that failed half-way is simply repeated.
    shop.orders_synced_until = started
    shop.save(update_fields=["orders_synced_until"])
    return seen


def refunds_mark_booked_by_hand(*, transfer: OrderTransfer, by: str,
                                woo: WooCommerceClient | None = None) -> int:
    """Support booked the missing credits in Hogia Smart themselves: record that, so the
    order stops waiting (used for refunds by amount only, which have no VAT split)."""
    woo = woo or woocommerce_client(shop=transfer.shop)
    done = set(transfer.credits.values_list("woo_refund_id", flat=True))
    marked = 0
    with transaction.atomic():
        for refund in woo.order_refunds(transfer.woo_order_id):
            refund_id = int(refund["id"])
            if refund_id in done:
                continue
            RefundCredit.objects.create(
                transfer=transfer, woo_refund_id=refund_id, amount=refund.get("amount") or 0,
                sequence_id=uuid.uuid5(SEQUENCE_NAMESPACE, f"{transfer.sequence_id}:refund:{refund_id}"),
                booked_by_hand=True)
            _event(transfer, Kind.REFUND, f"Refund {refund_id} marked as credited by hand by {by}.",
                   refund_id=refund_id)
            marked += 1
        if transfer.state == State.NEEDS_ATTENTION and transfer.hogia_invoice_id:
            _finish(transfer, state=State.INVOICED, last_error="", attention="", next_attempt_at=None)
    return marked
