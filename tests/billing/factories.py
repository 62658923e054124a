"""Factories for the billing records added by the billing issue (the shared ones live in tests.factories)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import factory

from billing.models import HourPack
from tests.factories import CustomerFactory, StaffFactory, SubscriptionFactory, UserFactory, package  # noqa: F401

STOCKHOLM = ZoneInfo("Europe/Stockholm")


def at(year: int, month: int, day: int, hour: int = 12) -> datetime:
    return datetime(year, month, day, hour, tzinfo=STOCKHOLM)


class HourPackFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = HourPack

    name = factory.Sequence(lambda n: f"Timpaket test {n}")
    hours = 10
    price = 8075
