"""Create the admin login and the demo customer (idempotent; ``make run`` calls it on start).

The admin and the demo customer's login each have a password of their own, generated once
and kept in the data folder (``admin_password``, ``customer_password``) unless
``PORTAL_ADMIN_PASSWORD`` or ``PORTAL_CUSTOMER_PASSWORD`` give them.

The demo customer has package 400, flow 3 and two shops on the WooCommerce sandbox (prices
entered incl. VAT in one, excl. VAT in the other) booked on result units 1 and 2 of one Hogia
Smart company on the Hogia sandbox.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from billing.models import Customer, CustomerContact, Package, Subscription
from integrations.models import Flow, FlowSettings, HogiaConnection, Shop, ShopCatalog
from integrations.sandboxes import demo

ADMIN_USERNAME = "admin"
CUSTOMER_USERNAME = "demo"


def _password(*, variable: str, file_name: str) -> str:
    """From the environment variable, else made once and kept in the data folder."""
    from_env = os.environ.get(variable, "")
    if from_env:
        return from_env
    path = Path(settings.DATA_DIR) / file_name
    if not path.exists():
        path.write_text(secrets.token_urlsafe(12))
        path.chmod(0o600)
    return path.read_text().strip()


class Command(BaseCommand):
    help = "Create the admin login and the demo customer on the sandboxes (safe to run again)."

    @transaction.atomic
    def handle(self, *args, **options) -> str:
        password = _password(variable="PORTAL_ADMIN_PASSWORD", file_name="admin_password")
        customer_password = _password(variable="PORTAL_CUSTOMER_PASSWORD", file_name="customer_password")
        User = get_user_model()
        admin_user = User.objects.filter(username=ADMIN_USERNAME).first()
        if admin_user is None:
            User.objects.create_superuser(ADMIN_USERNAME, "admin@localhost", password)
        customer_user = User.objects.filter(username=CUSTOMER_USERNAME).first()
        if customer_user is None:
            customer_user = User.objects.create_user(CUSTOMER_USERNAME, "demo@localhost", customer_password)
        elif customer_password != password and customer_user.check_password(password):
            # Made before the customer login had its own password: knowing the customer's
            # must not let anyone into the admin.
            customer_user.set_password(customer_password)
            customer_user.save(update_fields=["password"])

        customer = Customer.objects.filter(organisation_number=demo.HOGIA_ORGANIZATION_NUMBER).first()
        if customer is None:
            customer = self._create_customer()
        customer.users.add(customer_user)
        portal = f"http://127.0.0.1:{settings.PORTAL_PORT}"
        lines = [
            f"admin login          {ADMIN_USERNAME} / {password}",
            f"customer login       {CUSTOMER_USERNAME} / {customer_password} at {portal}/login/ "
            f"(sees {customer.name})",
            f"demo customer        {customer.name}: package 400, flow 3, "
            f"{customer.shops.count()} shops, Hogia Smart org {demo.HOGIA_ORGANIZATION_ID}",
        ]
        return "\n".join(lines)

    def _create_customer(self) -> Customer:
        woo = f"http://127.0.0.1:{settings.WOO_SANDBOX_PORT}"
        hogia = f"http://127.0.0.1:{settings.HOGIA_SANDBOX_PORT}"
        customer = Customer.objects.create(
            name=demo.HOGIA_ORGANIZATION_NAME, organisation_number=demo.HOGIA_ORGANIZATION_NUMBER
        )
        CustomerContact.objects.create(
            customer=customer, name="Dana Demo", email="dana@demo.invalid", phone="+46 8 000 00 00"
        )
        Subscription.objects.create(
            customer=customer,
            package=Package.objects.get(code="400"),
            start_date=timezone.localdate().replace(day=1),
        )
        FlowSettings.objects.create(
            customer=customer,
            flow=Flow.COMBO,
            sync_prices=True,
            sync_campaign_prices=True,
            sync_stock=True,
            order_status_to_shop=True,
        )
        HogiaConnection.objects.create(
            customer=customer,
            organization_id=demo.HOGIA_ORGANIZATION_ID,
            client_id=demo.HOGIA_CLIENT_ID,
            client_secret=demo.HOGIA_CLIENT_SECRET,
            api_base=hogia,
            auth_base=hogia,
        )
        for prefix, name, key, secret, result_unit in demo.WOO_STORES:
            shop = Shop.objects.create(
                customer=customer,
                name=name,
                url=f"{woo}{prefix}/",
                consumer_key=key,
                consumer_secret=secret,
                result_unit=result_unit,
            )
            # The portal must know how the shop enters prices: Butik 2 keeps them excluding VAT. The
            # sandbox shops hold nothing real, so the demo writes prices and stock from the start.
            ShopCatalog.objects.create(
                shop=shop,
                prices_include_tax=demo.WOO_PRICES_INCLUDE_TAX.get(prefix, True),
                overwrite_accepted_at=timezone.now(),
                overwrite_accepted_by="demo set-up",
            )
        return customer
