"""Clients for a customer's remote systems, built from the stored connection settings.

The only place that hands decrypted credentials to a client; the clients themselves
know nothing of the database.
"""

from __future__ import annotations

import requests
from django.conf import settings

from integrations.clients.hogia_smart import HogiaSmartClient
from integrations.clients.woocommerce import WooCommerceClient
from integrations.models import HogiaConnection, Shop
from integrations.ratebudget import hogia_rate_gate


def _timeout() -> tuple[float, float]:
    return (settings.REMOTE_CONNECT_TIMEOUT, settings.REMOTE_READ_TIMEOUT)


def woocommerce_client(
    *, shop: Shop, session: requests.Session | None = None, read_timeout: float | None = None
) -> WooCommerceClient:
    """``read_timeout``: longer than the default where the shop works inside the call (completing an
    order makes its payment plugin capture before WooCommerce answers)."""
    connect, read = _timeout()
    return WooCommerceClient(
        base_url=shop.home_url,
        consumer_key=shop.consumer_key,
        consumer_secret=shop.consumer_secret,
        session=session,
        timeout=(connect, max(read, read_timeout or 0)),
    )


def hogia_client(*, connection: HogiaConnection, session: requests.Session | None = None) -> HogiaSmartClient:
    # Every client of the company shares one rate budget, across shops, flows and processes.
    return HogiaSmartClient(
        api_base=connection.api_base,
        auth_base=connection.auth_base,
        organization_id=str(connection.organization_id),
        client_id=connection.client_id,
        client_secret=connection.client_secret,
        session=session,
        timeout=_timeout(),
        rate_gate=hogia_rate_gate(connection=connection),
    )
