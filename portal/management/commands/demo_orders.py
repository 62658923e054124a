"""Place orders in the demo shops, as customers checking out would, to watch them become
invoices (webhook → task cluster → Hogia Smart sandbox)."""

from __future__ import annotations

import itertools
import json
from urllib.parse import urlencode

import requests
from django.core.management.base import BaseCommand, CommandError

from billing.models import Customer
from integrations.clients.oauth1 import oauth1_sign
from integrations.sandboxes import demo
from integrations.sandboxes.fixtures import WOOCOMMERCE_11

# Orders of the real Swedish store, re-placed from the requests that created them. The
# on-hold one stays "not transferred" until on-hold is chosen as a transfer status.
ORDERS = [
    "A1_guest_mixed_vat_processing",
    "A3_company_sale_fixedcart_fees_completed",
    "A5_rounding_partial_refund",
    "A2_customer_variations_coupon_fee_onhold",
]


class Command(BaseCommand):
    help = "Place demo orders in the demo customer's shops on the WooCommerce sandbox."

    def add_arguments(self, parser):
        parser.add_argument("--count", type=int, default=4)

    def handle(self, *args, count: int, **options):
        customer = Customer.objects.filter(organisation_number=demo.HOGIA_ORGANIZATION_NUMBER).first()
        if customer is None:
            raise CommandError("No demo customer: run `python manage.py demo_setup` (make run does).")
        shops = list(customer.shops.filter(is_active=True).order_by("name"))
        session = requests.Session()
        placed = []
        for shop, name in itertools.islice(zip(itertools.cycle(shops), itertools.cycle(ORDERS)), count):
            url = f"{shop.home_url}wp-json/wc/v3/orders"
            query = oauth1_sign(
                method="POST",
                url=url,
                params=[],
                consumer_key=shop.consumer_key,
                consumer_secret=shop.consumer_secret,
            )
            body = json.loads((WOOCOMMERCE_11 / "orders" / f"{name}.request.json").read_text())
            try:
                response = session.post(f"{url}?{urlencode(query)}", json=body, timeout=10)
            except requests.ConnectionError as exc:
                raise CommandError(
                    f"The WooCommerce sandbox does not answer at {shop.home_url}: is "
                    f"`make run` running? ({exc})"
                ) from exc
            if response.status_code != 201:
                raise CommandError(
                    f"{shop.name} refused the order: {response.status_code} {response.text[:300]}"
                )
            order = response.json()
            placed.append(
                f"{shop.name}: order {order['number']} ({order['status']}, {order['total']} "
                f"{order['currency']})"
            )
        self.stdout.write("\n".join(placed))
        return None
