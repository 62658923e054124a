"""Which settings a customer's flow and package allow.

One place answers "may this customer use X?", so that the admin refuses a setting
with the same words that a flow logs when it skips a switch after the package was
lowered.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from django.core.exceptions import ValidationError
from django.utils import formats, timezone
from django.utils.translation import gettext, gettext_lazy, ngettext
from django.utils.translation import gettext_lazy as _

from billing.dates import add_months, month_start
from billing.models import Customer, Feature, Package, Subscription
from billing.selectors import (
    feature_refusal,
    multishop_refusal,
    quota_taken,
    subscription_current,
    subscription_next,
    subscriptions_from,
)
from integrations.models import Flow, FlowSettings, Shop
from integrations.orders.identity import store_key

# switch -> (feature it needs or None, flows it applies to, its name for people)
FLOW_SWITCHES: dict[str, tuple[Feature | None, tuple[int, ...], str]] = {
    "sync_prices": (None, (Flow.ERP, Flow.COMBO), gettext_lazy("Price sync")),
    "sync_campaign_prices": (
        Feature.PRICE_STRUCTURES,
        (Flow.ERP, Flow.COMBO),
        gettext_lazy("Campaign prices"),
    ),
    "sync_stock": (Feature.STOCK, (Flow.ERP, Flow.COMBO), gettext_lazy("Stock sync")),
    "order_status_to_shop": (
        Feature.ORDER_STATUS,
        (Flow.ERP, Flow.COMBO),
        gettext_lazy("Order status to the shop"),
    ),
    "plugins_enabled": (Feature.PLUGIN, (Flow.ECOM, Flow.ERP, Flow.COMBO), gettext_lazy("Customer plugins")),
}


@dataclass
class Refusals:
    """Field name (or None for the whole form) -> messages."""

    by_field: dict[str | None, list[str]] = field(default_factory=dict)

    def add(self, field_name: str | None, message: str) -> None:
        self.by_field.setdefault(field_name, []).append(message)

    def __bool__(self) -> bool:
        return bool(self.by_field)

    def messages(self) -> list[str]:
        return [m for messages in self.by_field.values() for m in messages]

    def raise_if_any(self) -> None:
        if not self:
            return
        errors = {(name or "__all__"): messages for name, messages in self.by_field.items()}
        raise ValidationError(errors)


def flow_settings_refusals(*, settings: FlowSettings) -> Refusals:
    """What the package or the flow does not allow in these settings.

    Only what is being turned on is held against the package: a setting the package
    allowed when it was chosen stays after a downgrade (support confirmed what stops with
    the package change, and the flows skip it, see ``flow_switch_enabled``), so that the
    customer's page can still be saved and an upgrade brings it back as it was.
    """
    refusals = Refusals()
    customer = settings.customer
    stored = FlowSettings.objects.filter(pk=settings.pk).first() if settings.pk else None

    def turned_on(name: str) -> bool:
        return stored is None or getattr(stored, name) != getattr(settings, name)

    if settings.flow == Flow.COMBO and turned_on("flow"):
        reason = feature_refusal(customer=customer, feature=Feature.COMBO_FLOW, what="Flow 3 (Combo)")
        if reason:
            refusals.add("flow", reason)
    for name, (feature, flows, label) in FLOW_SWITCHES.items():
        if not getattr(settings, name):
            continue
        if settings.flow not in flows:
            refusals.add(name, _not_in_flow(label, settings.flow))
            continue
        if feature is not None and turned_on(name):
            reason = feature_refusal(customer=customer, feature=feature, what=label)
            if reason:
                refusals.add(name, reason)
    return refusals


def flow_switch_enabled(*, settings: FlowSettings, name: str) -> tuple[bool, str]:
    """Whether a switch is in effect now, and if not, why (for a flow's skip log).

    A switch ticked when the package allowed it stays ticked after a downgrade; the
    flows then skip it with this reason instead of failing.
    """
    if not getattr(settings, name):
        return False, _("switched off")
    feature, flows, label = FLOW_SWITCHES[name]
    if settings.flow not in flows:
        return False, _not_in_flow(label, settings.flow)
    if feature is not None:
        reason = feature_refusal(customer=settings.customer, feature=feature, what=label)
        if reason:
            return False, reason
    return True, ""


def _not_in_flow(label: str, flow: int) -> str:
    return _("%(switch)s is not part of %(flow)s.") % {"switch": label, "flow": Flow(flow).label}


def shop_refusals(*, shop: Shop) -> Refusals:
    refusals = Refusals()
    known = {slug for slug, _name in shop.order_statuses or []}
    unknown = [s for s in shop.trigger_statuses or [] if s not in known]
    if unknown:
        refusals.add(
            "trigger_statuses",
            _(
                "The shop has no order status %(statuses)s: choose among its own statuses (test the "
                "connection to read them again)."
            )
            % {"statuses": ", ".join(unknown)},
        )
    if shop.url:
        taken = _store_taken_by(shop)
        if taken is not None:
            refusals.add(
                "url",
                _(
                    'This store is already connected as the shop "%(shop)s" of %(customer)s: '
                    "one store can be one shop only, or its orders would be invoiced twice. "
                    "Change that shop instead."
                )
                % {"shop": taken.name, "customer": taken.customer},
            )
    if shop.is_active and shop.customer_id:
        others = Shop.objects.filter(customer_id=shop.customer_id, is_active=True)
        if shop.pk:
            others = others.exclude(pk=shop.pk)
        reason = multishop_refusal(customer=shop.customer, shop_count=others.count() + 1)
        if reason:
            refusals.add("is_active", reason)
    return refusals


def _store_taken_by(shop: Shop) -> Shop | None:
    """Another shop (of any customer) on the same WooCommerce store: same host and path."""
    key = store_key(shop.url)
    others = (
        Shop.objects.select_related("customer").exclude(pk=shop.pk)
        if shop.pk
        else Shop.objects.select_related("customer")
    )
    host = key.split("/", 1)[0].split(":", 1)[0]
    return next((other for other in others.filter(url__icontains=host) if store_key(other.url) == key), None)


# -- package changes ---------------------------------------------------------------------------

# What stops when the package no longer includes a switch's feature (switches without a
# feature, like price sync, are in every package).
SWITCH_STOPS = {
    "sync_campaign_prices": _(
        "campaign prices are not included in %(package)s: they are no longer written to the shops"
    ),
    "sync_stock": _(
        "stock is not included in %(package)s: stock and stock status are no longer written to the shops"
    ),
    "order_status_to_shop": _(
        "order status is not included in %(package)s: invoice status changes no "
        "longer update the orders in the shops"
    ),
    "plugins_enabled": _("plugins are not included in %(package)s: the customer's plugins stop"),
}


@dataclass(frozen=True)
class PackageUse:
    """What a customer uses today that a package may not include."""

    settings: FlowSettings | None
    active_shops: int
    key_account_manager: str  # the manager's name; empty without one
    busiest_month: date | None  # this month or the last, whichever took more orders
    busiest_orders: int


@dataclass(frozen=True)
class Shortfall:
    """One thing the customer uses that a package does not include, and what that means."""

    key: str
    text: str
    refused: bool = False  # cannot be confirmed: see ``package_change_check``


@dataclass(frozen=True)
class PackageChange:
    """What stops working from ``start`` (to ``until``, the day before the next package) with ``package``."""

    package: Package
    start: date
    until: date | None
    shortfalls: tuple[Shortfall, ...]

    def __bool__(self) -> bool:
        return bool(self.shortfalls)

    @property
    def refused(self) -> tuple[Shortfall, ...]:
        return tuple(s for s in self.shortfalls if s.refused)

    def summary(self) -> str:
        """For support, e.g. "From 1 January 2027: flow 3 (Combo) is not included in Paket 200: ..."."""
        texts = "; ".join(s.text for s in self.shortfalls)
        if self.until is not None:
            return gettext("From %(start)s to %(until)s: %(shortfalls)s.") % {
                "start": _day(self.start),
                "until": _day(self.until),
                "shortfalls": texts,
            }
        return gettext("From %(start)s: %(shortfalls)s.") % {"start": _day(self.start), "shortfalls": texts}


def _day(day: date) -> str:
    return formats.date_format(day, "j F Y")


def package_use(*, customer: Customer) -> PackageUse:
    """Flow settings, active shops, key account manager and order volume of the customer now."""
    if customer.pk is None:
        return PackageUse(
            settings=None, active_shops=0, key_account_manager="", busiest_month=None, busiest_orders=0
        )
    this_month = month_start(timezone.localdate())
    taken = {
        month: quota_taken(customer=customer, month=month)
        for month in (add_months(this_month, -1), this_month)
    }
    busiest_month = max(taken, key=lambda month: (taken[month], month))
    manager = customer.key_account_manager
    return PackageUse(
        settings=FlowSettings.objects.filter(customer=customer).first(),
        active_shops=Shop.objects.filter(customer=customer, is_active=True).count(),
        key_account_manager=(manager.get_full_name() or manager.get_username()) if manager else "",
        busiest_month=busiest_month,
        busiest_orders=taken[busiest_month],
    )


def package_shortfalls(*, use: PackageUse, package: Package, start: date) -> dict[str, Shortfall]:
    """Key -> what ``use`` needs that ``package`` does not include, if it applies from ``start``.

    More active shops than the package allows, from today or a day that has passed, is
    refused: the shop pages refuse that many active shops on this package, and until they
    are deactivated the extra shops go on transferring orders and are charged as extra
    shops of a package that has none. From a later day it can be confirmed: the shops can
    still be deactivated before then. Everything else the flows skip with a logged reason
    (``flow_switch_enabled``; the catalogue sync for flow 3), so it can be confirmed.
    """
    found: dict[str, Shortfall] = {}

    def add(key: str, text: str, refused: bool = False) -> None:
        found[key] = Shortfall(key=key, text=text, refused=refused)

    settings = use.settings
    if settings is not None:
        if settings.flow == Flow.COMBO and not package.includes(Feature.COMBO_FLOW):
            add(
                "flow",
                gettext(
                    "flow 3 (Combo) is not included in %(package)s: the catalogue sync stops "
                    "(articles, prices and stock); orders are still transferred"
                )
                % {"package": package},
            )
        for name, (feature, flows, _label) in FLOW_SWITCHES.items():
            if (
                feature is not None
                and getattr(settings, name)
                and settings.flow in flows
                and not package.includes(feature)
            ):
                add(name, SWITCH_STOPS[name] % {"package": package})
    if not package.includes(Feature.MULTISHOP) and use.active_shops > 1:
        extra = use.active_shops - 1
        values = {"count": use.active_shops, "package": package, "extra": extra, "date": _day(start)}
        if start <= timezone.localdate():
            add(
                "shops",
                ngettext(
                    "%(count)d active shops, %(package)s allows 1: deactivate %(extra)d shop first, on its own page",
                    "%(count)d active shops, %(package)s allows 1: deactivate %(extra)d shops first, on their own "
                    "pages",
                    extra,
                )
                % values,
                refused=True,
            )
        else:
            add(
                "shops",
                ngettext(
                    "%(count)d active shops, %(package)s allows 1: deactivate %(extra)d shop before %(date)s",
                    "%(count)d active shops, %(package)s allows 1: deactivate %(extra)d shops before %(date)s",
                    extra,
                )
                % values,
            )
    if use.key_account_manager and not package.includes(Feature.KEY_ACCOUNT_MANAGER):
        add(
            "key_account_manager",
            gettext(
                "an own key account manager (%(name)s) is not included in %(package)s: clear it on the "
                "customer's page"
            )
            % {"name": use.key_account_manager, "package": package},
        )
    limit = package.monthly_order_limit
    if limit is not None and use.busiest_orders > limit:
        add(
            "orders",
            gettext(
                "%(orders)d orders were transferred in %(month)s, %(package)s includes %(limit)d a month: orders "
                "over that are held until the next month or a larger package"
            )
            % {
                "orders": use.busiest_orders,
                "month": formats.date_format(use.busiest_month, "F Y"),
                "package": package,
                "limit": limit,
            },
        )
    return found


def package_change_check(
    *, customer: Customer, package: Package, start_date: date, changing: Subscription | None = None
) -> PackageChange:
    """What stops working when ``package`` takes over on ``start_date`` (a new subscription, or
    ``changing`` given a new package or start date).

    Lists what the customer uses that the package does not include and the package before it
    did; nothing for an upgrade. A start date in the past stops things from today, and nothing
    stops when a later subscription took over before today.
    """
    today = timezone.localdate()
    start = max(start_date, today)
    following = subscription_next(customer=customer, after=start_date, leaving_out=changing)
    until = following.start_date - timedelta(days=1) if following is not None else None
    if until is not None and until < start:
        return PackageChange(package=package, start=start, until=until, shortfalls=())
    use = package_use(customer=customer)
    found = package_shortfalls(use=use, package=package, start=start)
    before = subscription_current(customer=customer, on=start_date - timedelta(days=1), leaving_out=changing)
    if before is not None:
        missing_before = package_shortfalls(use=use, package=before.package, start=start)
        found = {key: shortfall for key, shortfall in found.items() if key not in missing_before}
    return PackageChange(package=package, start=start, until=until, shortfalls=tuple(found.values()))


def customer_package_outlook(*, customer: Customer) -> list[PackageChange]:
    """For the customer's page: what the package in force does not include of what the customer
    uses, then what stops with each later subscription."""
    today = timezone.localdate()
    subscriptions = subscriptions_from(customer=customer, on=today)
    if not subscriptions:
        return []
    use = package_use(customer=customer)
    outlook = []
    for index, subscription in enumerate(subscriptions):
        start = max(subscription.start_date, today)
        following = subscriptions[index + 1] if index + 1 < len(subscriptions) else None
        until = following.start_date - timedelta(days=1) if following is not None else None
        found = package_shortfalls(use=use, package=subscription.package, start=start)
        if index:
            missing_before = package_shortfalls(
                use=use, package=subscriptions[index - 1].package, start=start
            )
            found = {key: shortfall for key, shortfall in found.items() if key not in missing_before}
        if found:
            outlook.append(
                PackageChange(
                    package=subscription.package, start=start, until=until, shortfalls=tuple(found.values())
                )
            )
    return outlook
