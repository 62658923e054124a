"""Webhook intake and registration: what WooCommerce sends us, and what we ask it to send.

A delivery is stored (raw bytes and headers), checked against the shop's secret and, for
orders, against what the order flow can take (``integrations.orders.payload``), and then only
taken as a hint: the transfer re-reads the order from the shop.

A correctly signed delivery is always stored, except a replay (the same delivery id and the same
bytes as one already stored: answered 200 "already received"). A delivery the signature does not
prove (unsigned, a wrong signature, too large, the ping) is answered honestly (401, 413, 200 for
the ping) but kept for support only up to ``WEBHOOK_REJECTED_KEEP_PER_HOUR`` per shop and hour,
its body cut to ``WEBHOOK_REJECTED_BODY_KEEP_BYTES``; past that it is only counted
(``WebhookDropCount``, one conditional update), so that anyone who knows a shop's webhook address
cannot fill the disk or the database.

The answer is quick, whatever the load: an order delivery is checked (signature, JSON,
what the order flow can take: a bad one is answered 400 with the reason) outside any
transaction, then stored and answered: with the ORM broker in one short transaction with its
task row, with Redis as one row marked ``task_pending`` whose task the stager sends
(``deliveries_send``). A worker records the order from the stored delivery and transfers it
(``webhook_order_take``). A failure while the delivery is handled still
leaves it stored, with what happened.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, Q, Sum
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from integrations.catalog.to_hogia import product_change_note
from integrations.clients.woocommerce import WooCommerceClient
from integrations.connections import woocommerce_client
from integrations.logcontext import log_context
from integrations.models import Flow, FlowSettings, Shop, SyncLogEntry, WebhookDelivery, WebhookDropCount
from integrations.orders.payload import MAX_ID, order_payload_problems
from integrations.orders.seen import Seen, order_seen
from integrations.orders.wakeups import WEBHOOK_TASK
from integrations.rowinsert import row_insert
from integrations.services import sync_log
from integrations.taskqueue import broker_in_this_database, task_enqueue
from integrations.webhooks import webhook_signature_valid

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 5 * 1024 * 1024
ORDER_TOPICS = ("order.created", "order.updated", "order.restored")
REGISTERED_TOPICS = ("order.created", "order.updated")
# A variation's product.updated carries the variation itself (WooCommerce fetches it by its id).
PRODUCT_TOPICS = ("product.created", "product.updated", "product.deleted", "product.restored")
PRODUCT_REGISTERED_TOPICS = ("product.created", "product.updated", "product.deleted")
_PING = re.compile(rb"^webhook_id=(\d+)$")
INTAKE_SHOP_FIELDS = ("customer_id", "name", "url", "webhook_secret", "webhook_token")
Outcome = WebhookDelivery.Outcome
# The rows a replay is looked up among: the condition of the unique constraint
# ``webhook_delivery_once``, spelled the same so that its partial index serves the look-up.
REPLAY_KEY = ~Q(body_sha256="") & ~Q(delivery_id="")
# What of an unproven delivery's headers is kept: a request may carry many, each long.
KEPT_HEADERS, KEPT_HEADER_CHARS = 40, 1000


@dataclass
class Answer:
    status: int
    message: str
    order_follows: bool = False  # an accepted order delivery: a worker records the order


def _delivery(
    shop: Shop, *, outcome: str, reason: str, headers: dict, body: bytes, resource_id: int | None = None
) -> WebhookDelivery:
    """The delivery's row, not saved yet."""
    return WebhookDelivery(
        shop=shop,
        outcome=outcome,
        reason=reason[:2000],
        body=body,
        headers=headers,
        topic=headers.get("x-wc-webhook-topic", "")[:60],
        webhook_id=headers.get("x-wc-webhook-id", "")[:20],
        delivery_id=headers.get("x-wc-webhook-delivery-id", "")[:64],
        source=headers.get("x-wc-webhook-source", "")[:300],
        content_type=headers.get("content-type", "")[:120],
        resource_id=resource_id,
    )


def _settle(
    delivery: WebhookDelivery, *, outcome: str, reason: str = "", resource_id: int | None = None
) -> None:
    """The delivery's outcome, once it is known (saved with it at the end of the transaction)."""
    delivery.outcome, delivery.reason = outcome, reason[:2000]
    if resource_id is not None:
        delivery.resource_id = resource_id


def _reject(delivery: WebhookDelivery, shop: Shop, *, reason: str, topic: str) -> Answer:
    _settle(delivery, outcome=Outcome.MALFORMED, reason=reason)
    sync_log(
        customer=shop.customer,
        shop=shop,
        level=SyncLogEntry.Level.WARNING,
        message=_("Webhook rejected: %(reason)s The raw delivery is kept.") % {"reason": reason},
        object_type="webhook",
        object_ref=topic,
    )
    return Answer(400, f"rejected: {reason}")


# token -> (monotonic time read, shop). A burst of deliveries to one shop reads its row once
# per few seconds instead of once per delivery (the largest cost left in a delivery). A
# shop saved or deleted in this process is dropped at once; another process sees the
# change within SHOP_CACHE_SECONDS (a new webhook secret: deliveries signed with it are
# refused that long, kept, and the poll reads their orders).
_shops: dict[str, tuple[float, Shop]] = {}
SHOP_CACHE_SECONDS = 5.0


def _shop_for(token: str) -> Shop | None:
    now = time.monotonic()
    cached = _shops.get(token)
    if cached is not None and now - cached[0] < SHOP_CACHE_SECONDS:
        return cached[1]
    try:
        # Only what the intake reads: building the whole row costs more than storing the
        # delivery. The worker that records the order loads the rest.
        shop = Shop.objects.only(*INTAKE_SHOP_FIELDS).filter(webhook_token=uuid.UUID(token)).first()
    except ValueError:
        return None
    if shop is None:
        _shops.pop(token, None)
        return None
    _shops[token] = (now, shop)
    return shop


def shop_cache_forget(*, shop: Shop) -> None:
    """The shop changed (secret, address) or is gone: the next delivery reads it again."""
    _shops.pop(str(shop.webhook_token), None)


def _no_constant(name: str):
    raise ValueError(f"{name} is not a number JSON allows")


def _json_parse(body: bytes) -> object:
    """The body as JSON with exact numbers; ``ValueError`` (in words) when it is not JSON."""
    try:
        return json.loads(body.decode("utf-8"), parse_float=Decimal, parse_constant=_no_constant)
    except RecursionError:
        # json.loads recurses once per level: a hostile depth ends in RecursionError.
        raise ValueError("it is nested too deeply") from None


def _resource_id(payload: object) -> int | None:
    """The resource's id when it is one the portal can store (a positive 64-bit integer)."""
    value = payload.get("id") if isinstance(payload, dict) else None
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_ID:
        return value
    return None


def _printable(exc: Exception) -> str:
    """An exception's text as the delivery's reason can hold it: short, no NUL, no lone surrogate
    (a message may quote the body)."""
    text = str(exc)[:300].encode("utf-8", "backslashreplace").decode("utf-8")
    return text.replace("\x00", "\\x00")


# Failures of a signed delivery's data that the payload check should have caught: answered
# 400 (WooCommerce does not retry; the poll reads the order again) and logged loudly. Anything
# else is a bug in the portal and propagates.
_DATA_ERRORS = (ValueError, ArithmeticError, ValidationError)


def webhook_receive(
    *, token: str, headers: dict[str, str], body: bytes, size: int | None = None, limit: int = MAX_BODY_BYTES
) -> Answer:
    """Take one request to a shop's webhook address. ``headers`` keys are lower case.

    ``size`` is how many bytes the request carried when ``body`` holds only a part of them (a
    body over ``limit`` is not read whole, or not at all). A correctly signed delivery is
    stored, with what happened, before the answer, whatever goes wrong while it is processed.
    """
    shop = _shop_for(token)
    if shop is None:
        logger.warning("webhook for an unknown address %s", token[:40])
        return Answer(404, "unknown webhook address")
    with log_context(shop=shop.pk):  # the delivery's id is known only once it is saved
        return _webhook_take(
            shop, headers=headers, body=body, size=len(body) if size is None else size, limit=limit
        )


def _webhook_take(shop: Shop, *, headers: dict[str, str], body: bytes, size: int, limit: int) -> Answer:
    if size > limit:
        reason = _("body of %(bytes)d bytes is too large (at most %(max)d)") % {"bytes": size, "max": limit}
        _unproven_keep(shop, outcome=Outcome.MALFORMED, reason=reason, headers=headers, body=body, size=size)
        return Answer(413, f"rejected: {reason}")
    signature = headers.get("x-wc-webhook-signature", "")
    if not signature and _PING.match(body.strip()):
        # WooCommerce's ping when a webhook is saved: unsigned form data, and anything but a
        # 200 shows as an error in the shop's admin. Unsigned, so kept only under the cap.
        _unproven_keep(shop, outcome=Outcome.PING, reason="", headers=headers, body=body, size=size)
        return Answer(200, "pong")
    if not webhook_signature_valid(body=body, secret=shop.webhook_secret, signature=signature):
        reason = (
            _("no X-WC-Webhook-Signature header")
            if not signature
            else _("X-WC-Webhook-Signature does not match the body and the shop's webhook secret")
        )
        _unproven_keep(
            shop,
            outcome=Outcome.BAD_SIGNATURE,
            reason=reason,
            headers=headers,
            body=body,
            size=size,
            log=_("Webhook rejected: %(reason)s. Nothing was processed.") % {"reason": reason},
        )
        return Answer(401, f"rejected: {reason}")
    return _signed_receive(shop, headers=headers, body=body)


def _signed_receive(shop: Shop, *, headers: dict[str, str], body: bytes) -> Answer:
    """A correctly signed delivery: stored whole and processed, never capped, stored once."""
    digest = hashlib.sha256(body).hexdigest()
    delivery = _delivery(shop, outcome=Outcome.RECEIVED, reason="", headers=headers, body=body)
    delivery.body_size, delivery.body_sha256 = len(body), digest
    # A replay is told by the unique constraint on (shop, delivery id, body), when the row is
    # stored below: replays are rare, and a look first would cost every delivery a query.
    bug = None
    try:
        # Checks first, outside any transaction: the database's write lock is held only for
        # the two rows below (SQLite has one writer at a time).
        answer = _delivery_process(delivery, shop=shop, headers=headers, body=body)
    except _DATA_ERRORS as exc:
        reason = f"could not be processed: {type(exc).__name__}"
        logger.exception("webhook delivery of shop %s %s", shop.pk, reason)
        error = f"{type(exc).__name__} ({_printable(exc)})"
        _settle(
            delivery, outcome=Outcome.FAILED, reason=_("could not be processed: %(error)s") % {"error": error}
        )
        sync_log(
            customer=shop.customer,
            shop=shop,
            level=SyncLogEntry.Level.WARNING,
            message=_(
                "Webhook could not be processed: %(error)s. The raw delivery is kept; the poll "
                "reads the order again."
            )
            % {"error": error},
            object_type="webhook",
            object_ref=headers.get("x-wc-webhook-topic", ""),
        )
        answer = Answer(400, reason)
    except Exception as exc:  # a bug of ours: kept with the delivery, then raised
        _settle(
            delivery,
            outcome=Outcome.FAILED,
            reason=_("error in the portal: %(error)s")
            % {"error": f"{type(exc).__name__}: {_printable(exc)}"},
        )
        bug = exc
    # With the ORM broker the task row commits with the delivery: both or neither. With Redis the
    # row is the outbox: one statement, no transaction and no call to Redis here; the stager sends
    # the pending rows' tasks in batches (``deliveries_send``), at most a second later.
    follows = bug is None and answer.order_follows
    try:
        if broker_in_this_database():
            with transaction.atomic():
                delivery.save()
                if follows:
                    task_enqueue(WEBHOOK_TASK, delivery.pk, group="webhook-order")
        else:
            delivery.task_pending = follows
            row_insert(delivery)
    except IntegrityError:
        # The same delivery again (a replay, or two copies at once): stored before, with its task.
        if _replayed(delivery):
            return Answer(200, "already received")
        raise
    if bug is not None:
        raise bug
    return answer


def _replayed(delivery: WebhookDelivery) -> bool:
    """Whether this signed delivery (its delivery id and its bytes) is stored already.

    WooCommerce gives each delivery a new id, ``wp_hash( $this->get_id() . strtotime( 'now' ) )``
    (``WC_Webhook::get_new_delivery_id``, called once per delivery in ``WC_Webhook::deliver``):
    a second delivery of the same order is a new id and is taken. Two deliveries of one webhook
    in the same second share an id; with the same bytes they say the same thing, so taking one
    loses nothing.
    """
    if not delivery.delivery_id:
        return False  # not from WooCommerce, which always sends the header: taken
    return WebhookDelivery.objects.filter(
        REPLAY_KEY,
        shop_id=delivery.shop_id,
        delivery_id=delivery.delivery_id,
        body_sha256=delivery.body_sha256,
    ).exists()


def _unproven_keep(
    shop: Shop,
    *,
    outcome: str,
    reason: str,
    headers: dict[str, str],
    body: bytes,
    size: int,
    log: str = "",
) -> None:
    """Keep a delivery its signature does not prove, if this hour's cap for the shop allows:
    its body cut to ``WEBHOOK_REJECTED_BODY_KEEP_BYTES`` and its size recorded, with ``log`` in
    the sync log. Past the cap it is only counted. The answer is the same either way."""
    if not _unproven_slot(shop=shop, size=size):
        return
    kept_headers = {name: value[:KEPT_HEADER_CHARS] for name, value in list(headers.items())[:KEPT_HEADERS]}
    delivery = _delivery(
        shop,
        outcome=outcome,
        reason=reason,
        headers=kept_headers,
        body=body[: settings.WEBHOOK_REJECTED_BODY_KEEP_BYTES],
    )
    delivery.body_size = size
    delivery.save()
    if log:
        sync_log(
            customer=shop.customer,
            shop=shop,
            level=SyncLogEntry.Level.WARNING,
            message=log,
            object_type="webhook",
            object_ref=delivery.topic,
        )


def _unproven_slot(*, shop: Shop, size: int) -> bool:
    """Whether an unproven delivery of ``size`` bytes may be kept; if not, it is counted.

    Each step is one conditional update of the shop's row for this hour; past the cap (a flood)
    the first one succeeds, so a dropped delivery costs one cheap update and nothing else. The
    one delivery that finds nothing dropped yet says in the sync log that dropping started.
    """
    cap = settings.WEBHOOK_REJECTED_KEEP_PER_HOUR
    hour = timezone.now().replace(minute=0, second=0, microsecond=0)
    counts = WebhookDropCount.objects.filter(shop_id=shop.pk, hour=hour)
    for _attempt in range(3):
        if counts.filter(kept__gte=cap, dropped__gt=0).update(
            dropped=F("dropped") + 1, dropped_bytes=F("dropped_bytes") + size
        ):
            return False
        if counts.filter(kept__gte=cap, dropped=0).update(dropped=1, dropped_bytes=size):
            _dropping_started(shop=shop, cap=cap)
            return False
        if counts.filter(kept__lt=cap).update(kept=F("kept") + 1):
            return True
        try:
            with transaction.atomic():
                WebhookDropCount.objects.create(shop_id=shop.pk, hour=hour)
        except IntegrityError:
            pass  # another request made this hour's row first: count on it
    raise RuntimeError(f"webhook drop count of shop {shop.pk} at {hour} could not be updated")


def _dropping_started(*, shop: Shop, cap: int) -> None:
    logger.warning(
        "webhook of shop %s: over %s unproven deliveries this hour, dropping the rest", shop.pk, cap
    )
    sync_log(
        customer=shop.customer,
        shop=shop,
        level=SyncLogEntry.Level.WARNING,
        message=_(
            "Webhook: more than %(cap)d deliveries without a valid signature this hour. The rest of "
            "this hour's are answered but not kept, only counted (see the shop's page). Signed "
            "deliveries are not affected."
        )
        % {"cap": cap},
        object_type="webhook",
    )


def _delivery_process(
    delivery: WebhookDelivery, *, shop: Shop, headers: dict[str, str], body: bytes
) -> Answer:
    """A signed delivery's checks; the outcome is settled on ``delivery``."""
    topic = headers.get("x-wc-webhook-topic", "")
    try:
        payload = _json_parse(body)
    except ValueError as exc:
        return _reject(
            delivery,
            shop,
            topic=topic,
            reason=_("body is not the JSON of a %(topic)s resource (%(error)s).")
            % {"topic": topic or "WooCommerce", "error": _printable(exc)},
        )
    resource_id = _resource_id(payload)
    if topic in ORDER_TOPICS:
        problems = order_payload_problems(payload)
        if problems:
            values = {"order": resource_id, "problems": " ".join(problems)}
            return _reject(
                delivery,
                shop,
                topic=topic,
                reason=(
                    _("order %(order)s cannot be taken: %(problems)s")
                    if resource_id
                    else _("the order cannot be taken: %(problems)s")
                )
                % values,
            )
    elif topic in PRODUCT_TOPICS and resource_id is None:
        return _reject(
            delivery,
            shop,
            topic=topic,
            reason=_("the product has no id (a whole number from 1 to %(max)d).") % {"max": MAX_ID},
        )
    source = headers.get("x-wc-webhook-source", "")
    if source and source.rstrip("/") != shop.home_url.rstrip("/"):
        sync_log(
            customer=shop.customer,
            shop=shop,
            level=SyncLogEntry.Level.WARNING,
            message=_(
                "Webhook signed correctly but sent from %(source)s, not %(url)s: has the shop moved? "
                "Update the shop URL."
            )
            % {"source": source, "url": shop.home_url},
            object_type="webhook",
            object_ref=topic,
        )
    if topic in PRODUCT_TOPICS:
        # Only a hint: the catalogue sync reads the product from the shop.
        product_change_note(shop=shop, woo_id=resource_id, deleted=topic == "product.deleted")
        _settle(delivery, outcome=Outcome.ACCEPTED, resource_id=resource_id)
        return Answer(200, "accepted")
    if topic not in ORDER_TOPICS:
        _settle(
            delivery,
            outcome=Outcome.IGNORED,
            reason=_("topic %(topic)s is not used yet") % {"topic": topic or _("(none)")},
            resource_id=resource_id,
        )
        return Answer(200, "ignored")
    _settle(delivery, outcome=Outcome.ACCEPTED, resource_id=resource_id)
    return Answer(200, "accepted", order_follows=True)


@dataclass
class Drops:
    """Unproven deliveries to a shop's webhook address that were counted but not kept."""

    deliveries: int
    bytes: int
    shops: list[tuple[str, int]]  # shop name and its count, most first


def webhook_drops(*, hours: int = 24, shop: Shop | None = None) -> Drops:
    """What the hourly cap dropped in the last ``hours`` (for one shop, or every shop)."""
    since = timezone.now().replace(minute=0, second=0, microsecond=0) - timedelta(hours=hours - 1)
    rows = WebhookDropCount.objects.filter(hour__gte=since, dropped__gt=0)
    if shop is not None:
        rows = rows.filter(shop=shop)
    per_shop = list(
        rows.values("shop__name")
        .annotate(count=Sum("dropped"), size=Sum("dropped_bytes"))
        .order_by("-count", "shop__name")
    )
    return Drops(
        deliveries=sum(row["count"] for row in per_shop),
        bytes=sum(row["size"] for row in per_shop),
        shops=[(row["shop__name"], row["count"]) for row in per_shop],
    )


def webhook_order_take(*, delivery_id: int) -> Seen | None:
    """A worker's half of an order delivery: record the order from the stored body.

    None when the delivery cannot be taken after all (its shop was removed, or recording it
    failed: then the delivery says why, and the poll reads the order again).
    """
    delivery = WebhookDelivery.objects.select_related("shop", "shop__customer").filter(pk=delivery_id).first()
    if delivery is None or delivery.outcome != Outcome.ACCEPTED:
        return None
    order = _json_parse(bytes(delivery.body))
    with log_context(shop=delivery.shop_id, delivery=delivery.pk, order=order.get("number")):
        return _order_record(delivery, order)


def _order_record(delivery: WebhookDelivery, order: dict) -> Seen | None:
    try:
        return order_seen(shop=delivery.shop, order=order, via="webhook", wake=False)
    except Exception as exc:
        logger.exception(
            "webhook delivery %s of shop %s: the order could not be recorded", delivery.pk, delivery.shop_id
        )
        values = {"error": f"{type(exc).__name__}: {_printable(exc)}"}
        reason = _("the order could not be recorded: %(error)s") % values
        WebhookDelivery.objects.filter(pk=delivery.pk).update(outcome=Outcome.FAILED, reason=reason[:2000])
        sync_log(
            customer=delivery.shop.customer,
            shop=delivery.shop,
            level=SyncLogEntry.Level.WARNING,
            message=_(
                "Webhook: the order could not be recorded: %(error)s. The raw delivery is kept; the "
                "poll reads the order again."
            )
            % values,
            object_type="webhook",
            object_ref=delivery.topic,
        )
        return None


def webhook_url(*, shop: Shop) -> str:
    return settings.PORTAL_PUBLIC_URL.rstrip("/") + reverse(
        "woocommerce-webhook", args=[str(shop.webhook_token)]
    )


def shop_webhooks_register(*, shop: Shop, woo: WooCommerceClient | None = None) -> str:
    """Create (or repair) the portal's webhooks in the shop; returns what was done."""
    woo = woo or woocommerce_client(shop=shop)
    url = webhook_url(shop=shop)
    existing = {w["topic"]: w for w in woo.webhooks_list() if w.get("delivery_url") == url}
    registered, done = {}, []
    for topic in shop_webhook_topics(shop=shop):
        name = f"Hogia Smart portal: {topic}"
        if topic in existing:
            # The secret is write-only in WooCommerce: set it again so both sides agree.
            hook = woo.webhook_update(
                existing[topic]["id"], {"status": "active", "secret": shop.webhook_secret}
            )
            done.append(_("%(topic)s updated") % {"topic": topic})
        else:
            hook = woo.webhook_create(name=name, topic=topic, delivery_url=url, secret=shop.webhook_secret)
            done.append(_("%(topic)s created") % {"topic": topic})
        registered[topic] = hook["id"]
    shop.registered_webhooks = registered
    shop.save(update_fields=["registered_webhooks"])
    summary = _("Webhooks to %(url)s: %(done)s.") % {"url": url, "done": ", ".join(done)}
    unneeded = shop_product_webhooks_unneeded(shop=shop)
    if unneeded:
        summary += " " + _("No product webhooks: %(reason)s.") % {"reason": unneeded}
    sync_log(customer=shop.customer, shop=shop, message=summary, object_type="webhook")
    return summary


def shop_webhook_topics(*, shop: Shop) -> tuple[str, ...]:
    """Orders always; products too when the customer's flow sends articles from the shop (1 and 3)."""
    if shop_product_webhooks_unneeded(shop=shop) is None:
        return REGISTERED_TOPICS + PRODUCT_REGISTERED_TOPICS
    return REGISTERED_TOPICS


def shop_product_webhooks_unneeded(*, shop: Shop) -> str | None:
    """Why the flow does not read the shop's product changes, or None when it does."""
    settings = FlowSettings.objects.filter(customer_id=shop.customer_id).first()
    if settings is None:
        return _("the customer has no flow settings")
    if settings.flow not in (Flow.ECOM, Flow.COMBO):
        return _("flow 2 takes the articles from Hogia Smart, not from the shop")
    if not settings.sync_articles:
        return _("article sync is switched off")
    return None


def shop_webhooks_reenable(*, shop: Shop, woo: WooCommerceClient | None = None) -> list[str]:
    """WooCommerce disables a webhook after repeated failed deliveries; switch ours back on."""
    woo = woo or woocommerce_client(shop=shop)
    url = webhook_url(shop=shop)
    reenabled = []
    for hook in woo.webhooks_list():
        if hook.get("delivery_url") == url and hook.get("status") == "disabled":
            woo.webhook_update(hook["id"], {"status": "active"})
            reenabled.append(hook.get("topic", str(hook["id"])))
            sync_log(
                customer=shop.customer,
                shop=shop,
                level=SyncLogEntry.Level.WARNING,
                message=_(
                    "WooCommerce had disabled the %(topic)s webhook after failed deliveries; the "
                    "portal re-enabled it. The poll covered the gap."
                )
                % {"topic": hook.get("topic")},
                object_type="webhook",
                object_ref=str(hook["id"]),
            )
    return reenabled
