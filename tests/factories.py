"""factory-boy factories for the portal's models."""

from __future__ import annotations

import importlib
import uuid
from datetime import date

import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from billing.models import Customer, CustomerContact, Package, Subscription
from integrations.models import FlowSettings, HogiaConnection, Shop, ShopCatalog


def package(code: str) -> Package:
    """Packages come from the data migration; tests pick one by code.

    A transactional test empties the tables between tests, data migrations' rows
    included, so the same loader puts them back then.
    """
    if not Package.objects.filter(code=code).exists():
        from django.apps import apps

        importlib.import_module("billing.migrations.0002_packages").load(apps, None)
    return Package.objects.get(code=code)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.invalid")
    password = factory.django.Password("pw-for-tests-1")


class StaffFactory(UserFactory):
    is_staff = True
    is_superuser = True


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    name = factory.Sequence(lambda n: f"Kund {n} AB")
    organisation_number = "556036-0793"


class ContactFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CustomerContact

    customer = factory.SubFactory(CustomerFactory)
    name = "Kim Kontakt"
    email = factory.Sequence(lambda n: f"kontakt{n}@example.invalid")


class SubscriptionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Subscription

    customer = factory.SubFactory(CustomerFactory)
    package = factory.LazyFunction(lambda: package("400"))
    start_date = date(2025, 1, 1)


class FlowSettingsFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = FlowSettings

    customer = factory.SubFactory(CustomerFactory)


class ShopCatalogFactory(factory.django.DjangoModelFactory):
    """Accepted for overwriting, as a shop that has been syncing is; the gate's own tests pass
    ``catalog__overwrite_accepted_at=None`` to ShopFactory."""

    class Meta:
        model = ShopCatalog
        django_get_or_create = ("shop",)

    overwrite_accepted_at = factory.LazyFunction(timezone.now)
    overwrite_accepted_by = "tests"


class ShopFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Shop
        skip_postgeneration_save = True

    customer = factory.SubFactory(CustomerFactory)
    name = factory.Sequence(lambda n: f"Butik {n}")
    url = factory.Sequence(lambda n: f"https://butik{n}.example.invalid/")
    consumer_key = factory.Sequence(lambda n: f"ck_{n:040d}")
    consumer_secret = factory.Sequence(lambda n: f"cs_{n:040d}")
    result_unit = "1"
    catalog = factory.RelatedFactory(ShopCatalogFactory, factory_related_name="shop")


class HogiaConnectionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = HogiaConnection

    customer = factory.SubFactory(CustomerFactory)
    organization_id = factory.LazyFunction(uuid.uuid4)
    client_id = factory.Sequence(lambda n: f"client-{n}")
    client_secret = factory.Sequence(lambda n: f"secret-{n:020d}")
