"""Billing learns every change of a customer's number of active shops (the extra-shop fee)."""

import pytest
from django.utils import timezone

from billing.models import ShopCount
from tests.factories import CustomerFactory, ShopFactory, SubscriptionFactory, package

pytestmark = pytest.mark.django_db


def test_adding_deactivating_and_deleting_shops_is_recorded_for_billing():
    customer = CustomerFactory()
    SubscriptionFactory(customer=customer, package=package("400"))
    first = ShopFactory(customer=customer)
    second = ShopFactory(customer=customer)
    today = timezone.localdate()
    assert ShopCount.objects.get(customer=customer, effective_from=today).active_shops == 2
    second.is_active = False
    second.save()
    assert ShopCount.objects.get(customer=customer, effective_from=today).active_shops == 1
    first.delete()
    assert ShopCount.objects.get(customer=customer, effective_from=today).active_shops == 0
