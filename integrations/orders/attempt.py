"""One attempt to bring Hogia Smart in line with an order: its invoice, then its credits.

Exactly one invoice per order comes from three locks in series: one row per shop order
(unique), a claim by conditional UPDATE with a fencing token (``lifecycle``), and Hogia's
``sequenceId`` derived from the store and the order, so even a crash between "invoice
created" and "recorded" repeats the same create and gets the first invoice back; an
attempt after a crash also looks for the invoice by a reference unique to the order.

Every way an attempt can end is a transition: invoiced, credited, held, dropped (no
longer a transfer status), retry later (a remote system unavailable, with the real time
of the next attempt), or needs attention (with the error, the remote's words and what
to do). Any exception, expected or not, ends in one of the last two: an order is never
left "transferring" without a word on its timeline.
"""

from __future__ import annotations

import logging
import random
import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Callable

from django.conf import settings as django_settings
from django.db import DatabaseError, IntegrityError, transaction
from django.utils import formats, timezone
from django.utils.translation import gettext as _
from django_q.exceptions import TimeoutException

from billing.money import money_text
from integrations.clients.hogia_smart import HogiaSmartClient
from integrations.clients.woocommerce import WooCommerceClient
from integrations.connections import hogia_client, woocommerce_client
from integrations.errors import (
    NotFound,
    RateLimited,
    RemoteError,
    RemoteRejected,
    RemoteUnavailable,
    Unauthorised,
)
from integrations.logcontext import log_context
from integrations.mapping.contacts import buyer_key, hogia_contact_body, hogia_contact_filters
from integrations.mapping.invoices import (
    InvoiceArticles,
    InvoiceBlocked,
    credit_from_refund,
    hogia_invoice_body,
)
from integrations.models import (
    BuyerBinding,
    FlowSettings,
    HogiaConnection,
    LinesWithoutSku,
    OrderEvent,
    OrderTransfer,
    RefundCredit,
    Shop,
    SyncLogEntry,
)
from integrations.orders import lifecycle
from integrations.orders.identity import (
    SEQUENCE_NAMESPACE,
    credit_reference,
    invoice_reference,
    refund_sequence_id,
)
from integrations.orders.lifecycle import Claim, ClaimLost
from integrations.orders.payload import order_payload_problems, refund_payload_problems
from integrations.orders.quota import quota_count_found_invoice, quota_give_back, quota_take
from integrations.orders.seen import CANCELLED_STATUSES, is_trigger, refund_ids
from integrations.plugins.apply import contact_with_plugin, invoice_mapped
from integrations.plugins.rules import RuleError
from integrations.plugins.versions import live_plugin_version
from integrations.services import MissingArticle, flow_articles_missing, sync_log

logger = logging.getLogger(__name__)

State = OrderTransfer.State
Kind = OrderEvent.Kind

# Back-off for an unavailable or rate-limiting Hogia Smart: full jitter, 30 s doubling up
# to an hour (settings ORDER_RETRY_BASE_SECONDS, ORDER_RETRY_CAP_SECONDS), so an outage of
# hours ends with every order invoiced, without a stampede.
PAUSED_RETRY = timedelta(minutes=15)


@dataclass
class Ending:
    """How an attempt ends: the transition, its timeline entry, and the fields it writes."""

    transition: str
    kind: str
    message: str
    details: dict = field(default_factory=dict)
    fields: dict = field(default_factory=dict)
    keep_place: bool = False  # an order without an invoice keeps its reserved quota place
    log_level: str | None = None  # a line for support in the sync log


# The attempt already ended by its own transition (held by the quota, in one transaction).
ENDED = Ending("", "", "")


def backoff_seconds(attempts: int) -> float:
    base, cap = django_settings.ORDER_RETRY_BASE_SECONDS, django_settings.ORDER_RETRY_CAP_SECONDS
    ceiling = min(cap, base * 2 ** max(0, attempts - 1))
    return random.uniform(ceiling / 2, ceiling)


def _local_time(moment) -> str:
    return formats.time_format(timezone.localtime(moment), "H:i:s")


def retry_later(transfer: OrderTransfer, error: str, *, what: str, wait: float | None = None) -> Ending:
    """Try again after the back-off; the timeline gives the real time of the next attempt."""
    wait = backoff_seconds(transfer.attempts) if wait is None else wait
    due = timezone.now() + timedelta(seconds=wait)
    return Ending(
        "retry_later",
        Kind.ATTEMPT_FAILED,
        _("%(what)s (%(error)s); next attempt at %(time)s (in %(wait).0f s, attempt %(attempt)d).")
        % {
            "what": what,
            "error": error,
            "time": _local_time(due),
            "wait": wait,
            "attempt": transfer.attempts,
        },
        details={"error": error, "retry_in_seconds": round(wait), "next_attempt_at": due.isoformat()},
        fields={"last_error": error, "next_attempt_at": due},
        keep_place=True,
    )


def needs_attention(*, error: str, what_to_do: str, **details) -> Ending:
    return Ending(
        "needs_attention",
        Kind.NEEDS_ATTENTION,
        f"{error} {what_to_do}".strip(),
        details={"error": error, **details},
        fields={"last_error": error, "attention": what_to_do, "next_attempt_at": None},
        log_level=SyncLogEntry.Level.ERROR,
    )


def _settings_for(shop: Shop) -> FlowSettings:
    settings = getattr(shop.customer, "flow_settings", None)
    return settings if settings is not None else FlowSettings(customer=shop.customer)


class FlowArticlesMissing(Exception):
    """Hogia Smart rejected an invoice that uses articles of the flow settings it does not have."""

    def __init__(self, rejection: RemoteRejected, missing: list[MissingArticle]):
        super().__init__(str(rejection))
        self.rejection = rejection
        self.missing = missing

    @property
    def advice(self) -> str:
        sentences = [
            _("%(missing)s: create it there or choose another in the flow settings") % {"missing": m}
            for m in self.missing
        ]
        return _("%(advice)s, then retry the order.") % {
            "advice": ". ".join(s[:1].upper() + s[1:] for s in sentences)
        }


def _invoice_create(
    hogia: HogiaSmartClient, *, body: dict, lines: list, sequence_id: uuid.UUID, articles: InvoiceArticles
) -> dict:
    """``hogia.invoice_create``; a rejection for freight, fee or discount articles that Hogia Smart
    lacks raises ``FlowArticlesMissing`` naming them."""
    try:
        return hogia.invoice_create(body, lines, sequence_id)
    except RemoteRejected as rejection:
        # Hogia's words for an unknown article are not a contract: ask it which of the flow
        # settings' articles on these lines it has, so the advice points at the flow settings
        # and not at a product's SKU.
        used = {line.get("articleNumber") for line in lines if line.get("articleNumber")}
        try:
            missing = flow_articles_missing(hogia=hogia, articles=articles, among=used)
        except RemoteError:
            logger.warning(
                "could not look up the flow settings' articles after a rejected invoice", exc_info=True
            )
            raise rejection from None
        if missing:
            raise FlowArticlesMissing(rejection, missing) from rejection
        raise


def _rejection_advice(exc: RemoteRejected) -> str:
    text = str(exc).lower()
    if "article" in text or "artikel" in text:
        return _(
            "Create the article in Hogia Smart with the same article number as the shop's SKU "
            "(or correct the SKU in the shop), then retry the order."
        )
    if "vat" in text or "moms" in text:
        return _("Add the missing VAT code in Hogia Smart, then retry the order.")
    return _("Correct the cause in Hogia Smart or in the shop, then retry the order.")


# -- the attempt ------------------------------------------------------------------------------


def order_transfer(
    *,
    transfer_id: int,
    woo: WooCommerceClient | None = None,
    hogia: HogiaSmartClient | None = None,
    today: date | None = None,
) -> OrderTransfer | None:
    """One attempt for a due order; None when it is not due or another worker has it.

    Safe to call any number of times, from any number of workers.
    """
    # Read before the claim, so that the claim's own log line already names the shop and order.
    known = OrderTransfer.objects.filter(pk=transfer_id).values_list("shop_id", "order_number").first()
    if known is None:
        return None
    shop_id, order_number = known
    with log_context(shop=shop_id, order=order_number, transfer=transfer_id):
        return _order_transfer(transfer_id=transfer_id, woo=woo, hogia=hogia, today=today)


def _order_transfer(*, transfer_id: int, woo, hogia, today) -> OrderTransfer | None:
    claimed = lifecycle.claim(transfer_id)
    if claimed is None:
        return None
    transfer = claimed.transfer
    if claimed.taken_over:
        lifecycle.timeline_add(
            transfer.pk,
            Kind.TAKEN_OVER,
            _(
                "The previous attempt stopped without finishing (its worker stopped or ran "
                "out of time); this attempt takes over."
            ),
        )
    try:
        ending = _attempt(claimed, woo=woo, hogia=hogia, today=today)
    except ClaimLost:
        logger.warning("claim taken over during the attempt; the new owner finishes")
        return OrderTransfer.objects.get(pk=transfer_id)
    except TimeoutException:
        ending = retry_later(transfer, _("the attempt ran out of time"), what=_("Stopped at the time limit"))
    except (RateLimited, RemoteUnavailable) as exc:
        wait = (
            max(backoff_seconds(transfer.attempts), exc.retry_after) if isinstance(exc, RateLimited) else None
        )
        ending = retry_later(
            transfer,
            str(exc),
            what=_("%(system)s unavailable") % {"system": exc.system or _("A remote system")},
            wait=wait,
        )
    except NotFound:
        ending = needs_attention(
            error=_("The order no longer exists in the shop (deleted?)."),
            what_to_do=_("Nothing to invoice; leave it, or restore the order and retry."),
        )
    except Unauthorised as exc:
        ending = needs_attention(
            error=_("A remote system refused the portal's credentials (%(detail)s).") % {"detail": exc},
            what_to_do=_(
                "Check the shop's API key and the Hogia Smart connection, test both connections, then retry."
            ),
        )
    except FlowArticlesMissing as exc:
        rejection = exc.rejection
        ending = needs_attention(
            error=_("%(system)s rejected the request: %(detail)s")
            % {"system": rejection.system or "Hogia Smart", "detail": rejection},
            what_to_do=exc.advice,
            remote_errors=rejection.errors,
            missing_articles=[m.number for m in exc.missing],
        )
    except RemoteRejected as exc:
        ending = needs_attention(
            error=_("%(system)s rejected the request: %(detail)s")
            % {"system": exc.system or _("The remote system"), "detail": exc},
            what_to_do=_rejection_advice(exc),
            remote_errors=exc.errors,
        )
    except RemoteError as exc:  # a remote failure of a kind not named above
        ending = needs_attention(
            error=_("%(system)s failed: %(detail)s")
            % {"system": exc.system or _("A remote system"), "detail": exc},
            what_to_do=_("Check the connection and the remote system, then retry."),
            remote_errors=getattr(exc, "errors", None),
        )
    except BuyerUnknown as exc:
        ending = needs_attention(
            error=str(exc), what_to_do=_("Add the missing buyer data in the shop or change the match policy.")
        )
    except DatabaseError as exc:
        logger.exception("database error")
        ending = retry_later(transfer, f"{type(exc).__name__}: {exc}", what=_("The portal's database failed"))
    except Exception as exc:  # a defect of ours or a payload we did not foresee: visible, not lost
        logger.exception("unexpected error")
        ending = needs_attention(
            error=_("Unexpected error in the portal: %(error)s") % {"error": f"{type(exc).__name__}: {exc}"},
            what_to_do=_("Tell the portal's developers (the traceback is in the log), then retry the order."),
        )
    if ending is not ENDED:
        _end(claimed, ending)
    return OrderTransfer.objects.select_related("shop").get(pk=transfer_id)


def _end(claimed: Claim, ending: Ending) -> None:
    transfer = claimed.transfer
    try:
        with transaction.atomic():
            if ending.transition in ("retry_later", "needs_attention", "drop"):
                quota_give_back(transfer, keep_place=ending.keep_place)
            event = (ending.kind, ending.message, ending.details) if ending.kind else None
            lifecycle.transition_or_lose(
                transfer.pk, ending.transition, token=claimed.token, event=event, **ending.fields
            )
            if ending.log_level:
                sync_log(
                    customer=transfer.shop.customer,
                    shop=transfer.shop,
                    level=ending.log_level,
                    message=_("Order %(order)s needs attention: %(error)s")
                    % {"order": transfer.order_number, "error": ending.details.get("error")},
                    object_type="order",
                    object_ref=transfer.order_number,
                )
    except ClaimLost:
        logger.warning("claim taken over before %s; the new owner finishes", ending.transition)
        return
    if ending.transition == "needs_attention":
        logger.warning("needs attention: %s", ending.details.get("error"))


def _attempt(claimed: Claim, *, woo, hogia, today) -> Ending:
    transfer = claimed.transfer
    shop = transfer.shop
    settings = _settings_for(shop)
    if settings.paused or not shop.is_active:
        why = _("the customer's integration is paused") if settings.paused else _("the shop is not active")
        return retry_later(transfer, why, what=_("Waiting"), wait=PAUSED_RETRY.total_seconds())
    if not transfer.hogia_invoice_id and not settings.transfer_orders:
        return Ending(
            "drop",
            Kind.FILTERED,
            _(
                "Not transferred: transferring orders as invoices is switched "
                "off in the customer's flow settings."
            ),
            fields={"next_attempt_at": None},
        )
    connection = HogiaConnection.objects.filter(customer=shop.customer).first()
    if connection is None:
        return needs_attention(
            error=_("The customer has no Hogia Smart connection."),
            what_to_do=_("Connect Hogia Smart on the customer page, then retry."),
        )
    woo = woo or woocommerce_client(shop=shop)
    hogia = hogia or hogia_client(connection=connection)
    articles = InvoiceArticles(
        freight=settings.freight_article_number,
        fee=settings.fee_article_number,
        discount=settings.discount_article_number,
    )
    # The webhook body was only a hint: act on the order as the shop has it now.
    order = woo.order_get(transfer.woo_order_id)
    problems = order_payload_problems(order)
    if problems:
        return needs_attention(
            error=_("The shop's answer for this order cannot be used: %(problems)s")
            % {"problems": " ".join(problems)},
            what_to_do=_("Correct the order in the shop (or the plugin that changes it), then retry."),
        )
    if not transfer.hogia_invoice_id:
        ending = _invoice_ensure(
            claimed, order=order, settings=settings, hogia=hogia, articles=articles, today=today
        )
        if ending is not None:
            return ending
    return _credits_ensure(
        claimed, order=order, woo=woo, hogia=hogia, articles=articles, settings=settings, today=today
    )


# -- the invoice ------------------------------------------------------------------------------


class BuyerUnknown(ValueError):
    """The buyer cannot be identified by the customer's match policy."""


def _buyer_customer_number(
    *,
    transfer: OrderTransfer,
    order: dict,
    settings: FlowSettings,
    hogia: HogiaSmartClient,
    plugin_contact: dict | None = None,
) -> str:
    """The buyer's Hogia Smart customer number: remembered, found, or created (in that order);
    ``plugin_contact``: a plugin's contact fields, for a buyer created here."""
    customer = transfer.shop.customer
    try:
        key = buyer_key(order, policy=settings.customer_match)
    except ValueError as exc:
        raise BuyerUnknown(str(exc)) from exc
    binding = BuyerBinding.objects.filter(customer=customer, key_kind=key.kind, key_value=key.value).first()
    if binding:
        return binding.hogia_customer_number
    # Hogia numbers its customers itself: a shop customer number is not searchable there, so
    # under that policy a buyer not yet bound is created (and bound) on first sight.
    filters = hogia_contact_filters(key)
    found = hogia.contacts_find(**filters) if filters else []
    created = not found
    if found:
        contact = found[0]
        message = _("Customer matched in Hogia Smart by %(key)s: number %(number)s.") % {
            "key": key.kind,
            "number": contact["number"],
        }
    else:
        contact = hogia.contact_create(
            contact_with_plugin(hogia_contact_body(order), plugin_contact or {}),
            uuid.uuid5(SEQUENCE_NAMESPACE, f"{customer.pk}:{key.kind}:{key.value}"),
        )
        message = _("Customer created in Hogia Smart: number %(number)s.") % {"number": contact["number"]}
        logger.info("customer %s created in Hogia Smart (matched by %s)", contact["number"], key.kind)
    try:
        with transaction.atomic():
            BuyerBinding.objects.create(
                customer=customer,
                key_kind=key.kind,
                key_value=key.value,
                hogia_contact_id=str(contact["id"]),
                hogia_customer_number=str(contact["number"]),
                created=created,
            )
    except IntegrityError:  # another order of the same buyer bound it first
        binding = BuyerBinding.objects.get(customer=customer, key_kind=key.kind, key_value=key.value)
        return binding.hogia_customer_number
    lifecycle.timeline_add(
        transfer.pk,
        Kind.CUSTOMER,
        message,
        key=key.kind,
        customer_number=str(contact["number"]),
        created=created,
    )
    return str(contact["number"])


def _existing_invoice(
    transfer: OrderTransfer, hogia: HogiaSmartClient, *, number: str, reference: str
) -> dict | None:
    """The invoice an earlier attempt may have created without recording it.

    Matched exactly on the order's reference, which is unique per order of the store
    (never on a shortened one: a shop that reuses order numbers has older invoices with
    the same number).
    """
    return next(
        (
            i
            for i in hogia.invoices_find(customer_order_number=number)
            if i.get("yourReference") == reference and not i.get("creditedInvoiceId")
        ),
        None,
    )


def _invoice_ensure(
    claimed: Claim,
    *,
    order: dict,
    settings: FlowSettings,
    hogia: HogiaSmartClient,
    articles: InvoiceArticles,
    today: date | None,
) -> Ending | None:
    """Create the order's invoice and record it; an Ending when the attempt stops here."""
    transfer = claimed.transfer
    shop = transfer.shop
    status = str(order.get("status") or "")
    if not is_trigger(shop, status):
        return Ending(
            "drop",
            Kind.FILTERED,
            _("Not transferred: the order is now %(label)s (%(status)s).")
            % {"label": shop.status_label(status), "status": status},
            details={"status": status},
            fields={"woo_status": status[:40], "next_attempt_at": None},
        )
    text_lines = settings.lines_without_sku != LinesWithoutSku.BLOCK
    invoice_date = today or timezone.localdate()
    version = live_plugin_version(settings=settings)
    try:
        # The buyer's customer number is set below (no rule may set it): a blocked order makes no contact.
        mapped = invoice_mapped(
            order,
            version=version,
            articles=articles,
            text_lines_without_sku=text_lines,
            customer_number="",
            invoice_date=invoice_date,
            due_date=invoice_date + timedelta(days=30),
            result_unit=shop.result_unit or None,
            reference=invoice_reference(
                shop_name=shop.name,
                order_number=str(order.get("number") or order["id"]),
                woo_order_id=transfer.woo_order_id,
            ),
        )
    except InvoiceBlocked as blocked:
        return needs_attention(
            error=_("The invoice would not match the order: %(reason)s") % {"reason": blocked.reason},
            what_to_do=_("Correct the order in the shop (or the article data), then retry."),
            diff=blocked.as_text(),
        )
    except (RuleError, KeyError) as exc:
        return needs_attention(
            error=_("Plugin version %(number)s cannot map this order: %(error)s")
            % {"number": version.number if version else "–", "error": exc},
            what_to_do=_("Correct the plugin (a new version) or switch it off, then retry."),
        )
    draft, body, lines = mapped.draft, mapped.invoice, mapped.lines
    customer_number = _buyer_customer_number(
        transfer=transfer, order=order, settings=settings, hogia=hogia, plugin_contact=mapped.contact
    )
    body["customerNumber"] = customer_number
    invoice = None
    if transfer.attempts > 1 or claimed.taken_over:
        # As posted: a plugin's rule may have set the order number or the reference.
        invoice = _existing_invoice(
            transfer, hogia, number=body["customerOrderNumber"], reference=body["yourReference"]
        )
    if invoice is not None:
        found = True
        with transaction.atomic():
            quota_count_found_invoice(transfer, today=today)
            lifecycle.claim_renew(claimed)
    else:
        found = False
        if not quota_take(claimed, today=today):
            return ENDED
        invoice = _invoice_create(
            hogia, body=body, lines=lines, sequence_id=transfer.sequence_id, articles=articles
        )
    with transaction.atomic():
        lifecycle.claim_record(
            claimed,
            hogia_invoice_id=str(invoice["id"]),
            invoice_number=str(invoice.get("invoiceNumber", "")),
            hogia_customer_number=customer_number,
            invoiced_at=timezone.now(),
        )
        values = {
            "number": transfer.invoice_number,
            "gross": money_text(invoice.get("grossAmount"), draft.currency),
            "rounding": money_text(draft.rounding, draft.currency),
        }
        if found:
            message = (
                _(
                    "Invoice %(number)s found in Hogia Smart (made by an earlier attempt): %(gross)s "
                    "(rounding line %(rounding)s)."
                )
                if draft.rounding
                else _("Invoice %(number)s found in Hogia Smart (made by an earlier attempt): %(gross)s.")
            )
        else:
            message = (
                _("Invoice %(number)s created in Hogia Smart: %(gross)s (rounding line %(rounding)s).")
                if draft.rounding
                else _("Invoice %(number)s created in Hogia Smart: %(gross)s.")
            )
        message = message % values
        if mapped.version is not None:
            message += " " + _(
                "Mapped with plugin version %(number)s (rules that changed it: %(fired)s)."
            ) % {"number": mapped.version, "fired": ", ".join(mapped.fired) or "–"}
        lifecycle.timeline_add(
            transfer.pk,
            Kind.INVOICED,
            message,
            invoice_id=transfer.hogia_invoice_id,
            warnings=draft.warnings,
            plugin_version=mapped.version,
        )
        for name in draft.without_sku:
            lifecycle.timeline_add(
                transfer.pk,
                Kind.WARNING,
                _(
                    "%(product)s has no SKU (article number) in the shop: posted as a text line without an "
                    "article, so Hogia Smart's stock does not change for it."
                )
                % {"product": name},
            )
    logger.info(
        "invoice %s %s in Hogia Smart",
        transfer.invoice_number,
        "found (made by an earlier attempt)" if found else "created",
    )
    return None


# -- credits: refunds, cancellations ----------------------------------------------------------


def _credit_create(
    claimed: Claim,
    *,
    hogia: HogiaSmartClient,
    body: dict,
    lines: list,
    refund_id: int,
    amount: Decimal,
    sequence_id: uuid.UUID,
    describe: Callable[[str, str], str],
    articles: InvoiceArticles,
    covers: list[int] = (),
) -> dict:
    """``describe(credit invoice number, its gross amount)`` is the timeline's line for the credit."""
    transfer = claimed.transfer
    lifecycle.claim_renew(claimed)
    credit = _invoice_create(hogia, body=body, lines=lines, sequence_id=sequence_id, articles=articles)
    with transaction.atomic():
        RefundCredit.objects.create(
            transfer=transfer,
            woo_refund_id=refund_id,
            amount=amount,
            sequence_id=sequence_id,
            hogia_invoice_id=str(credit["id"]),
            invoice_number=str(credit.get("invoiceNumber", "")),
        )
        for covered in covers:  # refunds the whole-order credit already includes
            RefundCredit.objects.get_or_create(
                transfer=transfer,
                woo_refund_id=covered,
                defaults={
                    "amount": 0,
                    "hogia_invoice_id": str(credit["id"]),
                    "invoice_number": str(credit.get("invoiceNumber", "")),
                    "sequence_id": refund_sequence_id(
                        order_sequence=transfer.sequence_id, woo_refund_id=covered
                    ),
                },
            )
        gross = money_text(credit.get("grossAmount"), transfer.currency)
        lifecycle.timeline_add(
            transfer.pk,
            Kind.REFUND,
            describe(str(credit.get("invoiceNumber", "")), gross),
            refund_id=refund_id,
            credit_invoice_id=str(credit["id"]),
        )
    logger.info(
        "credit invoice %s created in Hogia Smart for %s",
        credit.get("invoiceNumber"),
        f"refund {refund_id}" if refund_id else "the whole order",
    )
    return credit


def _refunds_with_lines(refund: dict) -> bool:
    return any(refund.get(key) for key in ("line_items", "shipping_lines", "fee_lines"))


def _credits_ensure(
    claimed: Claim,
    *,
    order: dict,
    woo: WooCommerceClient,
    hogia: HogiaSmartClient,
    articles: InvoiceArticles,
    settings: FlowSettings,
    today: date | None,
) -> Ending:
    """A credit invoice for every refund of an invoiced order, and for a cancellation after the
    invoice where the customer chose it; the Ending of an attempt whose invoice exists."""
    transfer = claimed.transfer
    shop = transfer.shop
    status = str(order.get("status") or "")
    done = dict(RefundCredit.objects.filter(transfer=transfer).values_list("woo_refund_id", "amount"))
    pending = refund_ids(order) - set(done)
    cancelled = status in CANCELLED_STATUSES
    # The invoice and every credit are in Hogia Smart; each has its own line on the timeline.
    finished = Ending("invoiced", "", "", fields={"last_error": "", "attention": "", "next_attempt_at": None})
    if 0 in done:  # the whole order is credited; later refunds are inside that credit
        return Ending(
            "credited",
            Kind.REFUND,
            _("The whole order is credited."),
            fields={"last_error": "", "attention": "", "next_attempt_at": None},
        )
    if not pending and not cancelled:
        return finished
    refunds = woo.order_refunds(transfer.woo_order_id) if pending else []
    problems = [p for refund in refunds for p in refund_payload_problems(refund)]
    if problems:
        return needs_attention(
            error=_("The shop's refunds of this order cannot be used: %(problems)s")
            % {"problems": " ".join(problems[:5])},
            what_to_do=_(
                "Correct the refund in the shop (or the plugin that made it), then "
                "retry, or book the credit by hand and mark it as credited."
            ),
        )
    refunds = sorted(refunds, key=lambda r: int(r["id"]))
    amount_only = [r for r in refunds if int(r["id"]) in pending and not _refunds_with_lines(r)]
    if cancelled and not done and (amount_only or not refunds):
        return _whole_order_credit(
            claimed,
            order=order,
            hogia=hogia,
            settings=settings,
            articles=articles,
            status=status,
            covers=sorted(pending),
            today=today,
        )
    text_lines = settings.lines_without_sku != LinesWithoutSku.BLOCK
    for refund in refunds:
        refund_id = int(refund["id"])
        if refund_id not in pending:
            continue
        try:
            draft = credit_from_refund(order, refund, articles=articles, text_lines_without_sku=text_lines)
        except InvoiceBlocked as blocked:
            return needs_attention(
                error=_("Refund %(refund)s cannot be credited: %(reason)s")
                % {"refund": refund_id, "reason": blocked.reason},
                what_to_do=_(
                    "Book the credit by hand in Hogia Smart and mark the refund "
                    "as credited, or refund per line in the shop and retry."
                ),
                diff=blocked.as_text(),
                refund_id=refund_id,
            )
        credit_date = today or timezone.localdate()
        body, lines = hogia_invoice_body(
            draft,
            customer_number=transfer.hogia_customer_number,
            invoice_date=credit_date,
            due_date=credit_date,
            result_unit=shop.result_unit or None,
            credited_invoice_id=transfer.hogia_invoice_id,
        )
        body["yourReference"] = credit_reference(
            shop_name=shop.name, order_number=transfer.order_number, woo_refund_id=refund_id
        )
        amount = Decimal(str(refund.get("amount") or 0))
        _credit_create(
            claimed,
            hogia=hogia,
            body=body,
            lines=lines,
            refund_id=refund_id,
            amount=amount,
            sequence_id=refund_sequence_id(order_sequence=transfer.sequence_id, woo_refund_id=refund_id),
            describe=lambda number, gross, refund_id=refund_id, amount=amount: (
                _("Refund %(refund)s of %(amount)s credited: credit invoice %(credit)s (%(gross)s).")
                % {
                    "refund": refund_id,
                    "amount": money_text(amount, transfer.currency),
                    "credit": number,
                    "gross": gross,
                }
            ),
            articles=articles,
        )
        done[refund_id] = amount
    credited = sum(done.values(), Decimal("0"))
    if cancelled and transfer.total is not None and credited >= transfer.total:
        return Ending(
            "credited",
            Kind.REFUND,
            _("Refunded in full in the shop: %(credited)s credited.")
            % {"credited": money_text(credited, transfer.currency)},
            fields={"last_error": "", "attention": "", "next_attempt_at": None},
        )
    if status == "cancelled":
        return needs_attention(
            error=_(
                "The order was cancelled in the shop after its invoice %(number)s; %(credited)s of %(total)s "
                "is credited."
            )
            % {
                "number": transfer.invoice_number,
                "credited": money_text(credited, transfer.currency),
                "total": money_text(transfer.total, transfer.currency),
            },
            what_to_do=_("Credit the rest in Hogia Smart by hand, then mark the order as credited by hand."),
        )
    return finished


def _whole_order_credit(
    claimed: Claim,
    *,
    order: dict,
    hogia: HogiaSmartClient,
    settings: FlowSettings,
    articles: InvoiceArticles,
    status: str,
    covers: list[int],
    today: date | None,
) -> Ending:
    """Cancelled (or refunded in full without lines) after the invoice: credit the whole invoice,
    line for line as Hogia Smart has it, where the customer chose that; else flag it."""
    transfer = claimed.transfer
    label = transfer.shop.status_label(status)
    if not settings.credit_cancelled_orders:
        return needs_attention(
            error=_("The order is now %(label)s in the shop, after its invoice %(number)s was created.")
            % {"label": label, "number": transfer.invoice_number},
            what_to_do=_(
                "Credit the invoice in Hogia Smart and mark the order as credited by hand, or "
                'tick "credit invoiced orders cancelled in the shop" in the flow settings and '
                "retry the order."
            ),
            status=status,
        )
    invoice = hogia.invoice_get(transfer.hogia_invoice_id)
    credit_date = today or timezone.localdate()
    body = {
        "customerNumber": invoice.get("customerNumber") or transfer.hogia_customer_number,
        "invoiceDate": credit_date.isoformat(),
        "dueDate": credit_date.isoformat(),
        "currency": invoice.get("currency") or {"code": transfer.currency or "SEK"},
        "pricesIncludeVat": bool(invoice.get("pricesIncludeVat")),
        "yourReference": credit_reference(
            shop_name=transfer.shop.name, order_number=transfer.order_number, woo_refund_id=0
        ),
        "customerOrderNumber": invoice.get("customerOrderNumber") or transfer.order_number,
        "useRounding": bool(invoice.get("useRounding")),
        "creditedInvoiceId": transfer.hogia_invoice_id,
    }
    if invoice.get("dimensions"):
        body["dimensions"] = invoice["dimensions"]
    lines = []
    for line in invoice.get("invoiceLines") or []:
        reversed_line = {
            "description": line.get("description") or "",
            "quantity": -Decimal(str(line.get("quantity") or 0)),
            "unitPrice": Decimal(str(line.get("unitPrice") or 0)),
            "vatPercent": Decimal(str(line.get("vatPercent") or 0)),
            "discountPercent": Decimal(str(line.get("discountPercent") or 0)),
            "unitType": line.get("unitType") or "st",
        }
        if line.get("articleNumber"):
            reversed_line["articleNumber"] = line["articleNumber"]
        lines.append(reversed_line)
    gross = Decimal(str(invoice.get("grossAmount") or 0))
    _credit_create(
        claimed,
        hogia=hogia,
        body=body,
        lines=lines,
        refund_id=0,
        amount=gross,
        sequence_id=refund_sequence_id(order_sequence=transfer.sequence_id, woo_refund_id=0),
        describe=lambda number, gross: (
            _(
                "The order is %(label)s in the shop: the whole invoice %(number)s is credited, credit invoice "
                "%(credit)s (%(gross)s)."
            )
            % {"label": label, "number": transfer.invoice_number, "credit": number, "gross": gross}
        ),
        articles=articles,
        covers=covers,
    )
    return Ending(
        "credited",
        Kind.CANCELLED,
        _("Credited in full: the order is %(label)s in the shop.") % {"label": label},
        fields={"last_error": "", "attention": "", "next_attempt_at": None},
    )
