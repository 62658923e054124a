"""Read-only questions other apps ask billing (what a customer's package includes)."""
from __future__ import annotations

from datetime import date

from django.utils import timezone

from billing.models import Customer, Feature, Package, Subscription


def subscription_current(*, customer: Customer, on: date | None = None) -> Subscription | None:
    """The subscription in force on a day: the newest one that has started by then."""
    day = on or timezone.localdate()
    return (Subscription.objects.filter(customer=customer, start_date__lte=day)
            .select_related("package").order_by("-start_date", "-id").first())


def customer_package(*, customer: Customer, on: date | None = None) -> Package | None:
    subscription = subscription_current(customer=customer, on=on)
    return subscription.package if subscription else None


def package_smallest_with(*, feature: Feature | str) -> Package | None:
    """The cheapest package sold that includes a feature (for "needs package 400" messages)."""
    return (Package.objects.filter(is_active=True, **{Feature(feature).value: True})
            .order_by("rank").first())


def feature_refusal(*, customer: Customer, feature: Feature | str, what: str) -> str | None:
    """Why a customer may not use a feature, in words for support; None when it may.

    ``what`` names the setting being refused, e.g. "Flow 3 (Combo)".
    """
    package = customer_package(customer=customer)
    if package is not None and package.includes(feature):
        return None
    needed = package_smallest_with(feature=feature)
    needs = f"package {needed.code} or larger" if needed else "a package that includes it"
    has = f"package {package.code}" if package else "no package yet"
    return (f"{what} needs {needs} ({Feature(feature).label}); "
            f"{customer.name} has {has}.")


def multishop_refusal(*, customer: Customer, shop_count: int) -> str | None:
    """Refusal for connecting ``shop_count`` active shops, or None when the package allows it."""
    if shop_count <= 1:
        return None
    return feature_refusal(customer=customer, feature=Feature.MULTISHOP,
                           what=f"Connecting {shop_count} active shops (multishop)")
