"""Customers, packages and subscriptions: the bottom layer.

Nothing here knows of WooCommerce or Hogia Smart; the integrations ask this app
(through ``billing.selectors``) what a customer's package includes.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import formats, timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from billing.dates import add_months, month_end, term_last_day
from billing.money import hours_text, money_text

# Stated once and shown to billing people in the admin and on statements.
PRORATION_RULE = _(
    # xgettext:no-python-format
    "Monthly fees are prorated by day: each day of the month is charged at the package in force "
    "that day (the newest subscription started by then), fee x days / days in the month. Extra "
    "shops (beyond the first) are prorated the same way from the recorded shop count. The "
    "installation fee is charged in full in the month the customer's first subscription starts. "
    "Amounts are rounded to whole öre (half up) per line; VAT 25 % is added on the total."
)
CONTRACT_RULE = _(
    "A subscription runs at least its contract term: from the start date to the day before the "
    "same date that many months later (1 Jan + 3 months -> 31 Mar; 30 Nov + 3 -> 28 Feb). Notice "
    "of 1 month runs to the end of the calendar month after the month notice is given (given "
    "15 Jan or 31 Jan -> ends 28 Feb). A cancellation ends the subscription on the later of "
    "the two dates."
)


def validate_organisation_number(value: str) -> None:
    """A Swedish organisation (or personal) number: 10 digits, Luhn check digit.

    Accepts ``NNNNNN-NNNN`` or 10/12 digits; a typo is caught before it reaches the
    bookkeeping system, where it would end up on invoices.
    """
    digits = "".join(ch for ch in value if ch.isdigit())
    if len(digits) == 12:
        digits = digits[2:]
    if len(digits) != 10 or not all(ch.isdigit() or ch in "- +" for ch in value):
        raise ValidationError(_("Enter ten digits, e.g. 556036-0793."), code="format")
    total = 0
    for index, ch in enumerate(digits[:9]):
        product = int(ch) * (2 if index % 2 == 0 else 1)
        total += product - 9 if product > 9 else product
    if (10 - total % 10) % 10 != int(digits[9]):
        raise ValidationError(_("The check digit is wrong: please check the number."), code="checksum")


class Feature(models.TextChoices):
    """Package features that a flow or switch needs. Values are ``Package`` field names."""

    ORDER_STATUS = "order_status", _("order status")
    STOCK = "stock", _("stock")
    PRICE_STRUCTURES = "price_structures", _("price structures (campaign prices)")
    PLUGIN = "plugin", _("plugins")
    MULTISHOP = "multishop", _("multishop")
    KEY_ACCOUNT_MANAGER = "key_account_manager", _("own key account manager")
    COMBO_FLOW = "combo_flow", _("flow 3 (Combo)")


class Package(models.Model):
    """A subscription tier (100, 200, 400, 800, Premium), loaded by a data migration."""

    code = models.CharField(_("code"), max_length=20, unique=True)
    name = models.CharField(_("name"), max_length=60)
    rank = models.PositiveSmallIntegerField(
        _("rank"), unique=True, help_text=_("Order from smallest to largest package.")
    )
    monthly_fee = models.DecimalField(
        _("monthly fee (SEK)"),
        max_digits=10,
        decimal_places=2,
        null=True,
        blank=True,
        help_text=_("Empty: priced by quote."),
    )
    installation_fee = models.DecimalField(
        _("installation fee, once (SEK)"),
        max_digits=10,
        decimal_places=2,
        null=True,
        blank=True,
        help_text=_("Empty: priced by quote."),
    )
    monthly_order_limit = models.PositiveIntegerField(
        _("max transferred orders per month"), null=True, blank=True, help_text=_("Empty: no limit.")
    )
    extra_shop_fee = models.DecimalField(
        _("fee per extra shop per month (SEK)"), max_digits=10, decimal_places=2, default=295
    )
    start_package_hours = models.DecimalField(
        _("start package hours"),
        max_digits=6,
        decimal_places=2,
        default=2,
        help_text=_(
            "Delivery, installation, training and configuration; what is left stays "
            "on the customer's service account."
        ),
    )
    order_status = models.BooleanField(_("order status"), default=False)
    stock = models.BooleanField(_("stock"), default=False)
    price_structures = models.BooleanField(_("price structures"), default=False)
    plugin = models.BooleanField(_("plugin"), default=False)
    multishop = models.BooleanField(_("multishop"), default=False)
    key_account_manager = models.BooleanField(_("own key account manager"), default=False)
    combo_flow = models.BooleanField(
        _("flow 3 (Combo)"),
        default=False,
        help_text=_("Articles from the shop, prices and stock from Hogia Smart."),
    )
    is_active = models.BooleanField(_("sold"), default=True)

    class Meta:
        ordering = ["rank"]
        verbose_name = _("package")
        verbose_name_plural = _("packages")

    def __str__(self) -> str:
        return self.name

    def includes(self, feature: Feature | str) -> bool:
        return bool(getattr(self, Feature(feature).value))


class Customer(models.Model):
    """A company that subscribes to the integration (one Hogia Smart company, one or more shops)."""

    name = models.CharField(_("company name"), max_length=200)
    organisation_number = models.CharField(
        _("organisation number"), max_length=13, blank=True, validators=[validate_organisation_number]
    )
    is_active = models.BooleanField(_("active"), default=True)
    users = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        blank=True,
        related_name="customers",
        verbose_name=_("users who may see the status pages"),
    )
    notes = models.TextField(_("internal notes"), blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    key_account_manager = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="key_accounts",
        limit_choices_to={"is_staff": True},
        verbose_name=_("key account manager"),
        help_text=_("A named staff member for the customer (Premium only); shown on its pages."),
    )

    class Meta:
        ordering = ["name"]
        verbose_name = _("customer")
        verbose_name_plural = _("customers")

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        super().clean()
        if self.key_account_manager_id and self.pk:
            from billing.selectors import feature_refusal  # selectors import this module

            refusal = feature_refusal(
                customer=self, feature=Feature.KEY_ACCOUNT_MANAGER, what=_("A key account manager")
            )
            if refusal:
                raise ValidationError({"key_account_manager": refusal})


class CustomerContact(models.Model):
    class Role(models.TextChoices):
        MAIN = "main", _("main contact")
        TECHNICAL = "technical", _("technical")
        BILLING = "billing", _("billing")

    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="contacts", verbose_name=_("customer")
    )
    name = models.CharField(_("name"), max_length=200)
    email = models.EmailField(_("e-mail"))
    phone = models.CharField(_("phone"), max_length=40, blank=True)
    role = models.CharField(_("role"), max_length=20, choices=Role.choices, default=Role.MAIN)
    receives_notifications = models.BooleanField(
        _("receives notifications"),
        default=True,
        help_text=_("Quota warnings and transfer problems are e-mailed to this contact."),
    )

    class Meta:
        ordering = ["customer", "role", "name"]
        verbose_name = _("contact")
        verbose_name_plural = _("contacts")

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>"


class Subscription(models.Model):
    """A customer's package from a start date; the newest one started is the one in force."""

    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="subscriptions", verbose_name=_("customer")
    )
    package = models.ForeignKey(
        Package, on_delete=models.PROTECT, related_name="subscriptions", verbose_name=_("package")
    )
    start_date = models.DateField(_("start date"), default=date.today)
    contract_months = models.PositiveSmallIntegerField(_("contract term (months)"), default=3)
    notice_months = models.PositiveSmallIntegerField(_("notice (months)"), default=1)
    cancelled_on = models.DateField(_("notice given on"), null=True, blank=True)
    # The prices agreed when the subscription was made, so that a later change of the
    # package's list price does not rewrite past statements (and Premium's quote has a home).
    monthly_fee = models.DecimalField(
        _("agreed monthly fee (SEK)"),
        max_digits=10,
        decimal_places=2,
        null=True,
        blank=True,
        help_text=_("Copied from the package when empty; for Premium enter the quoted fee."),
    )
    installation_fee = models.DecimalField(
        _("agreed installation fee (SEK)"),
        max_digits=10,
        decimal_places=2,
        null=True,
        blank=True,
        help_text=_(
            "Copied from the package when empty; charged in the month the customer's "
            "first subscription starts."
        ),
    )
    extra_shop_fee = models.DecimalField(
        _("agreed fee per extra shop per month (SEK)"),
        max_digits=10,
        decimal_places=2,
        null=True,
        blank=True,
        help_text=_("Copied from the package when empty."),
    )

    class Meta:
        ordering = ["customer", "-start_date", "-id"]
        verbose_name = _("subscription")
        verbose_name_plural = _("subscriptions")
        indexes = [models.Index(fields=["customer", "start_date"])]

    def __str__(self) -> str:
        return _("%(customer)s – %(package)s from %(start)s") % {
            "customer": self.customer,
            "package": self.package,
            "start": f"{self.start_date:%Y-%m-%d}",
        }

    def clean(self) -> None:
        super().clean()
        if self.customer_id is None or self.start_date is None:
            return
        from billing.selectors import subscription_same_start  # selectors import this module

        other = subscription_same_start(customer=self.customer, start_date=self.start_date, leaving_out=self)
        if other is not None:
            # The newest subscription started is the one in force: with two on one day, which
            # package applies would depend on the order they were typed in.
            raise ValidationError(
                {
                    "start_date": _(
                        "%(customer)s already has a subscription starting on %(date)s (%(package)s): one "
                        "package starts on a day. Change that subscription, or choose another start date."
                    )
                    % {
                        "customer": other.customer,
                        "date": formats.date_format(other.start_date, "j F Y"),
                        "package": other.package,
                    }
                }
            )

    def save(self, *args, **kwargs):
        if self._state.adding and self.package_id:
            for field in ("monthly_fee", "installation_fee", "extra_shop_fee"):
                if getattr(self, field) is None:
                    setattr(self, field, getattr(self.package, field))
        super().save(*args, **kwargs)

    @property
    def earliest_end_date(self) -> date:
        """The contract term's last day (see ``CONTRACT_RULE``)."""
        return term_last_day(self.start_date, self.contract_months)

    def effective_end_date_if_cancelled(self, on: date | None = None) -> date:
        """The last day charged if notice is given on ``on`` (default today), per ``CONTRACT_RULE``."""
        day = on or timezone.localdate()
        notice_ends = month_end(add_months(day, self.notice_months))
        return max(notice_ends, self.earliest_end_date)

    @property
    def effective_end_date(self) -> date | None:
        """The last day of a cancelled subscription; None while it runs on."""
        if self.cancelled_on is None:
            return None
        return self.effective_end_date_if_cancelled(self.cancelled_on)


class ShopCount(models.Model):
    """How many active shops a customer has from a day on (effective-dated history).

    Reported by the integrations through ``billing.services.shop_count_changed``; the
    statements charge the extra-shop fee from these rows, never from today's shops.
    """

    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="shop_counts", verbose_name=_("customer")
    )
    effective_from = models.DateField(_("from"))
    active_shops = models.PositiveSmallIntegerField(_("active shops"))
    recorded_at = models.DateTimeField(_("recorded"), auto_now=True)

    class Meta:
        ordering = ["customer", "-effective_from"]
        verbose_name = _("shop count")
        verbose_name_plural = _("shop count history")
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "effective_from"], name="billing_shopcount_one_per_day"
            )
        ]

    def __str__(self) -> str:
        return ngettext(
            "%(customer)s: %(count)d shop from %(day)s",
            "%(customer)s: %(count)d shops from %(day)s",
            self.active_shops,
        ) % {"customer": self.customer, "count": self.active_shops, "day": f"{self.effective_from:%Y-%m-%d}"}


class OrderUsage(models.Model):
    """One order's place in a customer's monthly quota: counted, reserved or held.

    At most one row per order, ever. *Counted* means its invoice was created: statements
    and reports count these rows. *Reserved* means the quota gave the order a place (a
    held order released, or an attempt that Hogia Smart could not complete yet) that it
    takes when its invoice is created; reserved places count against the month's limit
    so that nothing overtakes them. *Held* means over the limit, waiting. An order that
    ends without an invoice (cancelled, blocked) gives its row back: the row is removed.
    """

    class Status(models.TextChoices):
        COUNTED = "counted", _("counted")
        RESERVED = "reserved", _("reserved (invoice on its way)")
        HELD = "held", _("held (over the quota)")

    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="order_usage", verbose_name=_("customer")
    )
    order_key = models.CharField(
        _("order"), max_length=200, help_text=_("The order flow's own key for the order.")
    )
    arrived_at = models.DateTimeField(_("arrived"))
    status = models.CharField(_("status"), max_length=10, choices=Status.choices)
    month = models.DateField(
        _("counted in month"),
        null=True,
        blank=True,
        help_text=_("First day of the month the order counts (or is reserved) against."),
    )
    held_month = models.DateField(
        _("held in month"),
        null=True,
        blank=True,
        help_text=_("Set when the quota held the order; kept after release so reports show who was held."),
    )
    package = models.ForeignKey(
        Package,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("package"),
        help_text=_("The package in force when counted (or when held)."),
    )
    counted_at = models.DateTimeField(_("counted at"), null=True, blank=True)
    forced_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("released over the quota by"),
    )
    forced_reason = models.TextField(_("reason for releasing over the quota"), blank=True)

    class Meta:
        ordering = ["customer", "arrived_at", "id"]
        verbose_name = _("order usage")
        verbose_name_plural = _("order usage")
        constraints = [
            # The last line of defence behind the customer-row lock: an order counts once, ever.
            models.UniqueConstraint(fields=["customer", "order_key"], name="billing_usage_once_per_order"),
            models.CheckConstraint(
                condition=(
                    Q(status__in=["counted", "reserved"], month__isnull=False)
                    | Q(status="held", month__isnull=True)
                ),
                name="billing_usage_counted_has_month",
            ),
        ]
        indexes = [
            models.Index(fields=["customer", "status", "month"]),
            # Covers the report's GROUP BY month/package/customer without reading the table.
            models.Index(fields=["status", "month", "package", "customer"], name="billing_usage_report_idx"),
            models.Index(fields=["customer", "held_month"]),
        ]

    def __str__(self) -> str:
        return _("%(customer)s: order %(order)s (%(status)s)") % {
            "customer": self.customer,
            "order": self.order_key,
            "status": self.get_status_display(),
        }


class MonthlyOrderVolume(models.Model):
    """Per customer, month and package: how many orders counted and how many were held.

    A summary of ``OrderUsage`` kept in step by the quota services inside their locked
    transactions, so that reports group a row per customer and month instead of every
    order. By definition, for the package recorded on each order:

    - ``counted``: orders with status counted whose ``month`` is this month;
    - ``held``: orders whose ``held_month`` is this month, released since or not (the
      quota held them in this month).

    ``billing.services.order_volume_rebuild`` recomputes it from ``OrderUsage``; a row
    with both figures zero means the same as no row.
    """

    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="order_volumes", verbose_name=_("customer")
    )
    month = models.DateField(_("month"), help_text=_("First day of the month."))
    package = models.ForeignKey(
        Package, on_delete=models.PROTECT, null=True, blank=True, related_name="+", verbose_name=_("package")
    )
    counted = models.PositiveIntegerField(_("orders counted"), default=0)
    held = models.PositiveIntegerField(_("orders held"), default=0)

    class Meta:
        ordering = ["customer", "month", "package"]
        verbose_name = _("monthly order volume")
        verbose_name_plural = _("monthly order volumes")
        constraints = [
            # Two partial constraints: a plain UNIQUE would let NULL packages repeat.
            models.UniqueConstraint(
                fields=["customer", "month", "package"],
                condition=Q(package__isnull=False),
                name="billing_volume_once_per_package",
            ),
            models.UniqueConstraint(
                fields=["customer", "month"],
                condition=Q(package__isnull=True),
                name="billing_volume_once_without_package",
            ),
        ]
        indexes = [models.Index(fields=["month", "package", "customer"], name="billing_volume_report_idx")]

    def __str__(self) -> str:
        return _("%(customer)s %(month)s: %(counted)d counted, %(held)d held") % {
            "customer": self.customer,
            "month": f"{self.month:%Y-%m}",
            "counted": self.counted,
            "held": self.held,
        }


class QuotaNotice(models.Model):
    """A quota warning sent: once per customer, month and threshold."""

    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="quota_notices", verbose_name=_("customer")
    )
    month = models.DateField(_("month"))
    threshold = models.PositiveSmallIntegerField(
        _("threshold (%)"), help_text=_("Percent of the monthly limit.")
    )
    used = models.PositiveIntegerField(_("orders used"))
    limit = models.PositiveIntegerField(_("limit"))
    recipients = models.TextField(_("recipients"), blank=True)
    sent_at = models.DateTimeField(_("sent"), auto_now_add=True)

    class Meta:
        ordering = ["-month", "customer", "threshold"]
        verbose_name = _("quota notice")
        verbose_name_plural = _("quota notices")
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "month", "threshold"], name="billing_quotanotice_once"
            )
        ]

    def __str__(self) -> str:
        return _("%(customer)s: %(threshold)d %% of %(month)s") % {
            "customer": self.customer,
            "threshold": self.threshold,
            "month": f"{self.month:%Y-%m}",
        }


class HourPack(models.Model):
    """A pack of service hours sold at a discount on the ordinary hourly rate."""

    name = models.CharField(_("name"), max_length=60)
    hours = models.DecimalField(_("hours"), max_digits=6, decimal_places=2)
    price = models.DecimalField(_("price (SEK, excl. VAT)"), max_digits=10, decimal_places=2)
    is_active = models.BooleanField(_("sold"), default=True)

    class Meta:
        ordering = ["hours"]
        verbose_name = _("hour pack")
        verbose_name_plural = _("hour packs")

    def __str__(self) -> str:
        return f"{self.name} ({hours_text(self.hours)}, {money_text(self.price)})"

    @property
    def hourly_price(self) -> Decimal:
        return (self.price / self.hours).quantize(Decimal("0.01")) if self.hours else Decimal(0)


class ServiceHourEntry(models.Model):
    """One line of a customer's service account (servicekonto); the balance is their sum."""

    class Kind(models.TextChoices):
        START_PACKAGE = "start_package", _("start package")
        HOUR_PACK = "hour_pack", _("hour pack bought")
        TIME_SPENT = "time_spent", _("time spent")
        ADJUSTMENT = "adjustment", _("adjustment")
        SETTLED = "settled", _("owed hours invoiced")

    class Category(models.TextChoices):
        PLUGIN_DEVELOPMENT = "plugin_development", _("plugin development")
        QUALIFIED_SUPPORT = "qualified_support", _("qualified support")
        SYSTEM_CHANGE = "system_change", _("system change")
        TRAINING = "training", _("training")
        OTHER = "other", _("other")

    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="service_hours", verbose_name=_("customer")
    )
    occurred_at = models.DateTimeField(_("when"), default=timezone.now)
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    hours = models.DecimalField(
        _("hours"),
        max_digits=7,
        decimal_places=2,
        help_text=_("Positive: hours credited; negative: hours spent."),
    )
    category = models.CharField(_("what"), max_length=30, choices=Category.choices, blank=True)
    staff = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("who"),
    )
    note = models.TextField(_("note"), blank=True)
    below_zero_reason = models.TextField(
        _("reason for going below zero"),
        blank=True,
        help_text=_("Required when this entry takes the balance below zero."),
    )
    hour_pack = models.ForeignKey(
        HourPack,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("hour pack"),
    )
    # Prices recorded with the entry so a statement recomputed later shows the same amounts.
    price = models.DecimalField(
        _("price charged (SEK)"), max_digits=10, decimal_places=2, null=True, blank=True
    )
    hourly_rate = models.DecimalField(
        _("ordinary hourly rate (SEK)"),
        max_digits=10,
        decimal_places=2,
        null=True,
        blank=True,
        help_text=_("The rate owed hours are charged at, as it was when the time was logged."),
    )
    created_at = models.DateTimeField(_("recorded"), auto_now_add=True)

    class Meta:
        ordering = ["customer", "-occurred_at", "-id"]
        verbose_name = _("service-account entry")
        verbose_name_plural = _("service-account entries")
        constraints = [
            # The start package is credited once per customer, whoever calls the service.
            models.UniqueConstraint(
                fields=["customer"], condition=Q(kind="start_package"), name="billing_hours_one_start_package"
            ),
        ]
        indexes = [models.Index(fields=["customer", "occurred_at"])]

    def __str__(self) -> str:
        return f"{self.customer}: {hours_text(self.hours, signed=True)} {self.get_kind_display()}"


class Statement(models.Model):
    """A monthly statement as issued: a snapshot of the computed lines, never recomputed."""

    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, related_name="statements", verbose_name=_("customer")
    )
    month = models.DateField(_("month"), help_text=_("First day of the month billed."))
    net = models.DecimalField(_("net (SEK)"), max_digits=12, decimal_places=2)
    vat = models.DecimalField(_("VAT 25 % (SEK)"), max_digits=12, decimal_places=2)
    gross = models.DecimalField(_("total incl. VAT (SEK)"), max_digits=12, decimal_places=2)
    issued_at = models.DateTimeField(_("issued"), auto_now_add=True)
    issued_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("issued by"),
    )

    class Meta:
        ordering = ["-month", "customer__name"]
        verbose_name = _("statement")
        verbose_name_plural = _("statements")
        constraints = [
            models.UniqueConstraint(fields=["customer", "month"], name="billing_statement_once_per_month")
        ]
        permissions = [("view_billing_reports", "Can view billing reports and statements")]

    def __str__(self) -> str:
        return f"{self.customer} {self.month:%Y-%m}"


class StatementLine(models.Model):
    statement = models.ForeignKey(
        Statement, on_delete=models.CASCADE, related_name="lines", verbose_name=_("statement")
    )
    position = models.PositiveSmallIntegerField(_("line"))
    kind = models.CharField(_("kind"), max_length=20)
    description = models.CharField(_("description"), max_length=300)
    quantity = models.DecimalField(_("quantity"), max_digits=10, decimal_places=2)
    unit = models.CharField(_("unit"), max_length=20)
    unit_price = models.DecimalField(_("price (SEK)"), max_digits=10, decimal_places=2, null=True, blank=True)
    amount = models.DecimalField(_("amount (SEK)"), max_digits=12, decimal_places=2)
    package_code = models.CharField(_("package"), max_length=20, blank=True)

    class Meta:
        ordering = ["statement", "position"]
        verbose_name = _("statement line")
        verbose_name_plural = _("statement lines")

    def __str__(self) -> str:
        return self.description
