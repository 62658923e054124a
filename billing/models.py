"""Customers, packages and subscriptions: the bottom layer.

Nothing here knows of WooCommerce or Hogia Smart; the integrations ask this app
(through ``billing.selectors``) what a customer's package includes.
"""
from __future__ import annotations

from datetime import date

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _


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
        _("rank"), unique=True, help_text=_("Order from smallest to largest package."))
    monthly_fee = models.DecimalField(
        _("monthly fee (SEK)"), max_digits=10, decimal_places=2, null=True, blank=True,
        help_text=_("Empty: priced by quote."))
    installation_fee = models.DecimalField(
        _("installation fee, once (SEK)"), max_digits=10, decimal_places=2, null=True, blank=True,
        help_text=_("Empty: priced by quote."))
    monthly_order_limit = models.PositiveIntegerField(
        _("max transferred orders per month"), null=True, blank=True,
        help_text=_("Empty: no limit."))
    extra_shop_fee = models.DecimalField(
        _("fee per extra shop per month (SEK)"), max_digits=10, decimal_places=2, default=295)
    start_package_hours = models.DecimalField(
        _("start package hours"), max_digits=6, decimal_places=2, default=2,
        help_text=_("Delivery, installation, training and configuration; what is left stays "
                    "on the customer's service account."))
    order_status = models.BooleanField(_("order status"), default=False)
    stock = models.BooleanField(_("stock"), default=False)
    price_structures = models.BooleanField(_("price structures"), default=False)
    plugin = models.BooleanField(_("plugin"), default=False)
    multishop = models.BooleanField(_("multishop"), default=False)
    key_account_manager = models.BooleanField(_("own key account manager"), default=False)
    combo_flow = models.BooleanField(
        _("flow 3 (Combo)"), default=False,
        help_text=_("Articles from the shop, prices and stock from Hogia Smart."))
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
        _("organisation number"), max_length=13, blank=True,
        validators=[validate_organisation_number])
    is_active = models.BooleanField(_("active"), default=True)
    users = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="customers",
        verbose_name=_("users who may see the status pages"))
    notes = models.TextField(_("internal notes"), blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("customer")
        verbose_name_plural = _("customers")

    def __str__(self) -> str:
        return self.name


class CustomerContact(models.Model):
    class Role(models.TextChoices):
        MAIN = "main", _("main contact")
        TECHNICAL = "technical", _("technical")
        BILLING = "billing", _("billing")

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="contacts",
                                 verbose_name=_("customer"))
    name = models.CharField(_("name"), max_length=200)
    email = models.EmailField(_("e-mail"))
    phone = models.CharField(_("phone"), max_length=40, blank=True)
    role = models.CharField(_("role"), max_length=20, choices=Role.choices, default=Role.MAIN)
    receives_notifications = models.BooleanField(
        _("receives notifications"), default=True,
        help_text=_("Quota warnings and transfer problems are e-mailed to this contact."))

    class Meta:
        ordering = ["customer", "role", "name"]
        verbose_name = _("contact")
        verbose_name_plural = _("contacts")

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>"


class Subscription(models.Model):
    """A customer's package from a start date; the newest one started is the one in force."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="subscriptions",
                                 verbose_name=_("customer"))
    package = models.ForeignKey(Package, on_delete=models.PROTECT, related_name="subscriptions",
                                verbose_name=_("package"))
    start_date = models.DateField(_("start date"), default=date.today)
    contract_months = models.PositiveSmallIntegerField(_("contract term (months)"), default=3)
    notice_months = models.PositiveSmallIntegerField(_("notice (months)"), default=1)
    cancelled_on = models.DateField(_("notice given on"), null=True, blank=True)

    class Meta:
        ordering = ["customer", "-start_date", "-id"]
        verbose_name = _("subscription")
        verbose_name_plural = _("subscriptions")
        indexes = [models.Index(fields=["customer", "start_date"])]

    def __str__(self) -> str:
        return f"{self.customer} – {self.package} from {self.start_date:%Y-%m-%d}"
