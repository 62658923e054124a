"""Writes of the billing layer: order quota, shop counts, service hours, statements.

The order flow (``integrations``) calls ``quota_claim`` just before it creates an order's
invoice, ``quota_return`` when the attempt creates none, and ``quota_release`` when held
orders may go, each inside the transaction that moves the order; it never writes these
tables itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from functools import partial

from django.apps import apps as django_apps
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from billing.dates import local_midnight, month_start
from billing.models import (
    Customer,
    CustomerContact,
    HourPack,
    MonthlyOrderVolume,
    OrderUsage,
    Package,
    QuotaNotice,
    ServiceHourEntry,
    ShopCount,
    Statement,
    StatementLine,
)
from billing.money import hours_text
from billing.selectors import (
    hourly_rate,
    order_volume_recount,
    package_in_force,
    quota_held,
    quota_taken,
    service_hours_balance,
    statement_compute,
)
from billing.statements import next_month

QUOTA_THRESHOLDS = (80, 100)


@dataclass(frozen=True)
class QuotaClaim:
    granted: bool  # True: create the invoice now; False: the order is held
    month: date  # first day of the month it counts against (or arrived in, when held)
    used: int  # places taken that month after this call (counted + reserved)
    limit: int | None  # None: no limit; 0: no package in force
    held: int  # held orders waiting now (counted when this order is held; 0 when granted)
    # Older held orders that this call released first (oldest first): the caller moves them
    # on in the same transaction, so that a new order never overtakes a held one.
    released: tuple[str, ...] = ()


def _lock_customer(customer: Customer) -> None:
    """Serialise quota decisions per customer: a row lock on PostgreSQL.

    On SQLite ``select_for_update`` is a no-op, but the settings open every transaction
    with BEGIN IMMEDIATE, which takes the database's write lock at once.
    """
    Customer.objects.select_for_update().filter(pk=customer.pk).values_list("pk", flat=True).first()


def _limit_on(customer: Customer, day: date):
    package = package_in_force(customer=customer, on=day)
    return package, (package.monthly_order_limit if package else 0)


def _has_room(package: Package | None, limit: int | None, taken: int) -> bool:
    return package is not None and (limit is None or taken < limit)


def _release_oldest(
    customer: Customer, *, month: date, package: Package | None, limit: int | None, taken: int
) -> list[str]:
    """Held orders, oldest first, get the places the limit leaves (they become reserved)."""
    if package is None or (limit is not None and taken >= limit):
        return []
    held = OrderUsage.objects.filter(customer=customer, status=OrderUsage.Status.HELD).order_by(
        "arrived_at", "id"
    )
    if limit is not None:
        held = held[: limit - taken]
    rows = list(held.values_list("pk", "order_key"))
    if rows:
        OrderUsage.objects.filter(pk__in=[pk for pk, _key in rows]).update(
            status=OrderUsage.Status.RESERVED, month=month
        )
    return [key for _pk, key in rows]


def _count(row: OrderUsage, *, month: date, package: Package | None) -> None:
    """A reserved (or new) place becomes counted: the invoice is being created now."""
    _package_moved(row, package)
    row.status = OrderUsage.Status.COUNTED
    row.month = month
    row.package = package
    row.counted_at = timezone.now()
    row.save(update_fields=["status", "month", "package", "counted_at"])
    _volume_add(customer=row.customer, month=month, package_id=package.pk if package else None, counted=1)


def _package_moved(row: OrderUsage, package: Package | None) -> None:
    """A held order counts under the package in force now: its held figure moves with it."""
    new_id = package.pk if package else None
    if row.held_month is not None and row.package_id != new_id:
        _volume_add(customer=row.customer, month=row.held_month, package_id=row.package_id, held=-1)
        _volume_add(customer=row.customer, month=row.held_month, package_id=new_id, held=1)


def quota_claim(
    *, customer: Customer, order_key: str, arrived_at: datetime, on: date | None = None
) -> QuotaClaim:
    """Take the order's place in the month's quota, just before its invoice is created.

    Call it inside the transaction that moves the order on (the caller holds the order
    when ``granted`` is False, and re-queues ``released``). Held orders go first, oldest
    first: while the limit allows, they are released before a new order is counted. An
    order already counted stays counted (never twice); a reserved place is taken whatever
    the limit. Orders of all the customer's shops count together; without a package in
    force the limit is 0 and orders are held.
    """
    day = on or timezone.localdate()
    month = month_start(day)
    with transaction.atomic():
        _lock_customer(customer)
        row = OrderUsage.objects.filter(customer=customer, order_key=order_key).first()
        package, limit = _limit_on(customer, day)
        if row is not None and row.status == OrderUsage.Status.COUNTED:
            return QuotaClaim(
                granted=True,
                month=row.month,
                used=quota_taken(customer=customer, month=row.month),
                limit=limit,
                held=0,
            )
        taken = quota_taken(customer=customer, month=month)
        released = _release_oldest(customer, month=month, package=package, limit=limit, taken=taken)
        taken += len(released)
        if row is not None and row.order_key in released:
            row.status = OrderUsage.Status.RESERVED  # released just now, with the older ones
        if row is not None and row.status == OrderUsage.Status.RESERVED:
            _count(row, month=month, package=package)
            granted = True
        elif row is not None:  # held, and older orders took the places left
            granted = False
        elif _has_room(package, limit, taken):
            row = OrderUsage(
                customer=customer,
                order_key=order_key,
                arrived_at=arrived_at,
                status=OrderUsage.Status.RESERVED,
                month=month,
                package=package,
            )
            row.save()
            _count(row, month=month, package=package)
            taken += 1
            granted = True
        else:
            OrderUsage.objects.create(
                customer=customer,
                order_key=order_key,
                arrived_at=arrived_at,
                status=OrderUsage.Status.HELD,
                held_month=month,
                package=package,
            )
            _volume_add(customer=customer, month=month, package_id=package.pk if package else None, held=1)
            granted = False
        _quota_notify(customer=customer, month=month, used=taken, limit=limit)
        released = [key for key in released if key != order_key]
        # Held orders are counted for the "held" message only: a granted claim needs no count.
        return QuotaClaim(
            granted=granted,
            month=month,
            used=taken,
            limit=limit,
            held=0 if granted else quota_held(customer=customer),
            released=tuple(released),
        )


def quota_release(*, customer: Customer, on: date | None = None) -> list[str]:
    """Release held orders, oldest first, while ``on``'s month has places left.

    Returns their order keys, oldest first: the caller re-queues those orders in the same
    transaction. Each gets a reserved place in ``on``'s month, taken when its invoice is
    created (a released order counts in the month it is invoiced, whenever it arrived).
    """
    day = on or timezone.localdate()
    month = month_start(day)
    with transaction.atomic():
        _lock_customer(customer)
        package, limit = _limit_on(customer, day)
        keys = _release_oldest(
            customer,
            month=month,
            package=package,
            limit=limit,
            taken=quota_taken(customer=customer, month=month),
        )
        if keys:
            _quota_notify(
                customer=customer, month=month, used=quota_taken(customer=customer, month=month), limit=limit
            )
    return keys


def quota_release_forced(
    *, customer: Customer, order_keys: list[str], by_user, reason: str, on: date | None = None
) -> list[str]:
    """Support's "release these anyway": the named held orders get a place even over the limit.

    Records who and why on each order. Returns the keys released (held ones only), oldest
    first; the caller re-queues them in the same transaction.
    """
    if not (reason or "").strip():
        raise ValidationError(_("Give a reason for releasing orders over the quota."))
    day = on or timezone.localdate()
    month = month_start(day)
    with transaction.atomic():
        _lock_customer(customer)
        rows = list(
            OrderUsage.objects.filter(
                customer=customer, status=OrderUsage.Status.HELD, order_key__in=order_keys
            )
            .order_by("arrived_at", "id")
            .values_list("pk", "order_key")
        )
        if rows:
            OrderUsage.objects.filter(pk__in=[pk for pk, _key in rows]).update(
                status=OrderUsage.Status.RESERVED,
                month=month,
                forced_by=by_user,
                forced_reason=reason.strip(),
            )
    return [key for _pk, key in rows]


def quota_return(*, customer: Customer, order_key: str, keep_place: bool) -> str | None:
    """The attempt did not create the order's invoice: give back what ``quota_claim`` took.

    ``keep_place``: the order will be tried again by itself (Hogia Smart unavailable), so it
    keeps a reserved place and nothing overtakes it; otherwise (cancelled, blocked, needs a
    person) its row is removed and a later attempt claims anew. Call it inside the
    transaction that moves the order. Returns the row's status afterwards, "" when removed,
    None when the order had no row.
    """
    with transaction.atomic():
        _lock_customer(customer)
        row = OrderUsage.objects.filter(customer=customer, order_key=order_key).first()
        if row is None:
            return None
        if row.status == OrderUsage.Status.COUNTED:
            _volume_add(customer=customer, month=row.month, package_id=row.package_id, counted=-1)
            if keep_place:
                row.status = OrderUsage.Status.RESERVED
                row.counted_at = None
                row.save(update_fields=["status", "counted_at"])
                return row.status
        elif keep_place:
            return row.status
        if row.held_month is not None:
            _volume_add(customer=customer, month=row.held_month, package_id=row.package_id, held=-1)
        row.delete()
        return ""


def quota_count_invoiced(
    *, customer: Customer, order_key: str, arrived_at: datetime, on: date | None = None
) -> bool:
    """Repair: an order whose invoice exists counts, whatever the limit; True if it changed."""
    day = on or timezone.localdate()
    with transaction.atomic():
        _lock_customer(customer)
        row = OrderUsage.objects.filter(customer=customer, order_key=order_key).first()
        if row is not None and row.status == OrderUsage.Status.COUNTED:
            return False
        package, _limit = _limit_on(customer, day)
        if row is None:
            row = OrderUsage.objects.create(
                customer=customer,
                order_key=order_key,
                arrived_at=arrived_at,
                status=OrderUsage.Status.RESERVED,
                month=month_start(day),
                package=package,
            )
        _count(row, month=month_start(day), package=package)
        return True


# -- the monthly order-volume summary ----------------------------------------------------------


def _volume_add(
    *, customer: Customer, month: date, package_id: int | None, counted: int = 0, held: int = 0
) -> None:
    """Add to (or subtract from) one ``MonthlyOrderVolume`` row; the caller holds the customer's lock.

    A subtraction below zero fails on the column's check: the summary has drifted from
    ``OrderUsage`` and ``order_volume_rebuild`` must run, which is better than a wrong report.
    """
    if not counted and not held:
        return
    updated = MonthlyOrderVolume.objects.filter(customer=customer, month=month, package_id=package_id).update(
        counted=F("counted") + counted, held=F("held") + held
    )
    if not updated:
        MonthlyOrderVolume.objects.create(
            customer=customer, month=month, package_id=package_id, counted=counted, held=held
        )


def order_volume_rebuild(*, customer: Customer | None = None, apps=None) -> int:
    """Recompute ``MonthlyOrderVolume`` from ``OrderUsage`` for one customer or all; rows written.

    Takes the customers' locks, so no quota decision runs meanwhile. ``apps`` is a
    migration's app registry (its historical models); default: the installed models.
    """
    registry = apps or django_apps
    customers = registry.get_model("billing", "Customer")
    usage = registry.get_model("billing", "OrderUsage")
    volume = registry.get_model("billing", "MonthlyOrderVolume")
    with transaction.atomic():
        locked = customers.objects.select_for_update().order_by("pk")
        rows = volume.objects.all()
        if customer is not None:
            locked = locked.filter(pk=customer.pk)
            rows = rows.filter(customer_id=customer.pk)
        list(locked.values_list("pk", flat=True))
        counts = order_volume_recount(customer_id=customer.pk if customer else None, usage_model=usage)
        rows.delete()
        volume.objects.bulk_create(
            [
                volume(customer_id=cid, month=month, package_id=package_id, counted=c, held=h)
                for (cid, month, package_id), (c, h) in sorted(counts.items(), key=_volume_sort_key)
            ],
            batch_size=2000,
        )
    return len(counts)


def _volume_sort_key(item) -> tuple:
    (cid, month, package_id), _figures = item
    return cid, month, package_id is not None, package_id or 0


# -- quota notices -----------------------------------------------------------------------------


def _quota_notify(*, customer: Customer, month: date, used: int, limit: int | None) -> None:
    """Record and (after commit) mail each threshold reached, once per customer and month."""
    if not limit:
        return
    for threshold in QUOTA_THRESHOLDS:
        if used * 100 < threshold * limit:
            continue
        recipients = quota_notice_recipients(customer=customer)
        notice, created = QuotaNotice.objects.get_or_create(
            customer=customer,
            month=month,
            threshold=threshold,
            defaults={"used": used, "limit": limit, "recipients": ", ".join(recipients)},
        )
        if created:
            transaction.on_commit(partial(_quota_mail_send, notice_id=notice.pk))


def quota_notice_recipients(*, customer: Customer) -> list[str]:
    contacts = CustomerContact.objects.filter(customer=customer, receives_notifications=True)
    emails = list(contacts.values_list("email", flat=True))
    for email in getattr(settings, "BILLING_SUPPORT_EMAILS", []) or []:
        if email not in emails:
            emails.append(email)
    return emails


def _quota_mail_send(*, notice_id: int) -> None:
    notice = QuotaNotice.objects.select_related("customer").get(pk=notice_id)
    recipients = [email.strip() for email in notice.recipients.split(",") if email.strip()]
    if not recipients:
        return
    values = {
        "customer": notice.customer.name,
        "month": f"{notice.month:%Y-%m}",
        "used": notice.used,
        "limit": notice.limit,
        "threshold": notice.threshold,
    }
    # In the portal's language, whoever's request released the order that reached the threshold.
    with translation.override(settings.LANGUAGE_CODE):
        if notice.threshold >= 100:
            subject = _("Order quota used up: %(customer)s, %(month)s") % values
            body = (
                _(
                    "%(customer)s has transferred %(used)d of %(limit)d orders included in the package for "
                    "%(month)s.\n\nFurther orders are now being HELD: none is lost. Held orders are "
                    "transferred as soon as the quota allows: raise the package (they are released at once) "
                    "or wait until the 1st of next month, when the new month's quota releases them in the "
                    "order they arrived."
                )
                % values
            )
        else:
            subject = _("%(threshold)d %% of the order quota: %(customer)s, %(month)s") % values
            body = (
                _(
                    "%(customer)s has transferred %(used)d of %(limit)d orders included in the package for "
                    "%(month)s (%(threshold)d %%). When the quota is used up, further orders are held until "
                    "the next month or until the package is raised."
                )
                % values
            )
    EmailMessage(subject=subject, body=body, from_email=settings.DEFAULT_FROM_EMAIL, to=recipients).send()


# -- shops -------------------------------------------------------------------------------------


def shop_count_changed(*, customer: Customer, active_shops: int, on: date | None = None) -> ShopCount:
    """Record the customer's number of active shops from ``on`` (default today) on.

    The extra-shop fee is charged from these rows; a second report on the same day
    replaces the first.
    """
    day = on or timezone.localdate()
    with transaction.atomic():
        _lock_customer(customer)
        current = (
            ShopCount.objects.filter(customer=customer, effective_from__lte=day)
            .order_by("-effective_from")
            .first()
        )
        if current is not None and current.active_shops == active_shops:
            return current
        row, _created = ShopCount.objects.update_or_create(
            customer=customer, effective_from=day, defaults={"active_shops": active_shops}
        )
        return row


# -- service account ---------------------------------------------------------------------------


def service_hours_credit_start_package(*, customer: Customer) -> ServiceHourEntry | None:
    """Credit the start package's hours of the customer's first subscription, once ever.

    Dated the day that subscription starts; None while the customer has no subscription.
    """
    existing = ServiceHourEntry.objects.filter(
        customer=customer, kind=ServiceHourEntry.Kind.START_PACKAGE
    ).first()
    if existing is not None:
        return existing
    first = customer.subscriptions.select_related("package").order_by("start_date", "id").first()
    if first is None:
        return None
    try:
        with transaction.atomic():
            return ServiceHourEntry.objects.create(
                customer=customer,
                kind=ServiceHourEntry.Kind.START_PACKAGE,
                hours=first.package.start_package_hours,
                occurred_at=local_midnight(first.start_date),
                category=ServiceHourEntry.Category.TRAINING,
                note=_("Start package, %(package)s: delivery, installation, training and configuration.")
                % {"package": first.package.name},
            )
    except IntegrityError:
        return ServiceHourEntry.objects.get(customer=customer, kind=ServiceHourEntry.Kind.START_PACKAGE)


def hour_pack_buy(
    *,
    customer: Customer,
    hour_pack: HourPack,
    by_user=None,
    occurred_at: datetime | None = None,
    note: str = "",
) -> ServiceHourEntry:
    """Credit an hour pack; its price today is recorded on the entry for the statement."""
    return ServiceHourEntry.objects.create(
        customer=customer,
        kind=ServiceHourEntry.Kind.HOUR_PACK,
        hours=hour_pack.hours,
        hour_pack=hour_pack,
        price=hour_pack.price,
        staff=by_user,
        occurred_at=occurred_at or timezone.now(),
        note=note,
    )


def _debit(
    *,
    customer: Customer,
    kind: str,
    hours: Decimal,
    by_user,
    occurred_at,
    category: str,
    note: str,
    below_zero_reason: str,
) -> ServiceHourEntry:
    with transaction.atomic():
        _lock_customer(customer)
        balance = service_hours_balance(customer=customer)
        reason = (below_zero_reason or "").strip()
        if hours < 0 and balance + hours < 0 and not reason:
            raise ValidationError(
                {
                    "below_zero_reason": _(
                        "This takes the service account to %(after)s (balance "
                        "%(balance)s): give a reason to go below zero."
                    )
                    % {"after": hours_text(balance + hours), "balance": hours_text(balance)}
                }
            )
        return ServiceHourEntry.objects.create(
            customer=customer,
            kind=kind,
            hours=hours,
            staff=by_user,
            category=category,
            occurred_at=occurred_at or timezone.now(),
            note=note,
            below_zero_reason=reason,
            hourly_rate=hourly_rate() if hours < 0 else None,
        )


def service_hours_log(
    *,
    customer: Customer,
    hours: Decimal,
    category: str,
    by_user,
    occurred_at: datetime | None = None,
    note: str = "",
    below_zero_reason: str = "",
) -> ServiceHourEntry:
    """Log time support spent for the customer (``hours`` > 0 is drawn from the account).

    Going below zero needs ``below_zero_reason``; the hours owed then show on the statement.
    """
    hours = Decimal(hours)
    if hours <= 0:
        raise ValidationError({"hours": _("Log the time spent as a positive number of hours.")})
    if category not in ServiceHourEntry.Category.values:
        raise ValidationError({"category": _("Unknown category %(category)r.") % {"category": category}})
    return _debit(
        customer=customer,
        kind=ServiceHourEntry.Kind.TIME_SPENT,
        hours=-hours,
        by_user=by_user,
        occurred_at=occurred_at,
        category=category,
        note=note,
        below_zero_reason=below_zero_reason,
    )


def service_hours_adjust(
    *, customer: Customer, hours: Decimal, by_user, note: str, below_zero_reason: str = ""
) -> ServiceHourEntry:
    """A correction of either sign; the ledger is never edited, only added to."""
    if not (note or "").strip():
        raise ValidationError({"note": _("Say why the account is adjusted.")})
    return _debit(
        customer=customer,
        kind=ServiceHourEntry.Kind.ADJUSTMENT,
        hours=Decimal(hours),
        by_user=by_user,
        occurred_at=None,
        category="",
        note=note,
        below_zero_reason=below_zero_reason,
    )


# -- statements --------------------------------------------------------------------------------


def statement_issue(*, customer: Customer, month: date, by_user) -> Statement:
    """Store the month's statement as computed now: a snapshot that never changes.

    Only for a month that has ended; once per customer and month. Hours owed on it are
    recorded as invoiced (a credit on the 1st of the next month), so the next statement
    does not charge them again.
    """
    first = month_start(month)
    if next_month(first) > timezone.localdate():
        raise ValidationError(_("A statement can be issued once its month has ended."))
    computed = statement_compute(customer=customer, month=first)
    with transaction.atomic():
        _lock_customer(customer)
        if Statement.objects.filter(customer=customer, month=first).exists():
            raise ValidationError(
                _("The statement for %(month)s has already been issued.") % {"month": f"{first:%Y-%m}"}
            )
        statement = Statement.objects.create(
            customer=customer,
            month=first,
            net=computed.net,
            vat=computed.vat,
            gross=computed.gross,
            issued_by=by_user,
        )
        StatementLine.objects.bulk_create(
            [
                StatementLine(
                    statement=statement,
                    position=index,
                    kind=line.kind,
                    description=line.description,
                    quantity=line.quantity,
                    unit=line.unit,
                    unit_price=line.unit_price,
                    amount=line.amount,
                    package_code=line.package_code,
                )
                for index, line in enumerate(computed.lines, start=1)
            ]
        )
        if computed.hours_owed > 0:
            ServiceHourEntry.objects.create(
                customer=customer,
                kind=ServiceHourEntry.Kind.SETTLED,
                hours=computed.hours_owed,
                occurred_at=local_midnight(next_month(first)),
                staff=by_user,
                note=_("%(hours)s owed, invoiced on the statement for %(month)s.")
                % {"hours": hours_text(computed.hours_owed), "month": f"{first:%Y-%m}"},
            )
    return statement
