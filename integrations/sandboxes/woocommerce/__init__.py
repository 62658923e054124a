"""A stand-in for WooCommerce (REST API wc/v3) stores, served over real HTTP.

Several stores share one port, each under a path prefix the way WordPress
subdirectory installs do: the root store answers ``/wp-json/wc/v3/...``, a store
created with prefix ``/butik2`` answers ``/butik2/wp-json/wc/v3/...``.

It follows what WooCommerce 11.0.1 does, not what would be convenient; see
``shared/docs/woocommerce-api.md`` and the fixtures in ``fixtures/woocommerce-11``:
- authentication as ``class-wc-rest-authentication.php`` does it (OAuth 1.0a over
  plain HTTP, Basic or query-string keys over HTTPS only, the same error codes);
- paging, filters and batch limits of the CRUD controllers;
- order totals computed the way ``WC_Abstract_Order::calculate_totals`` does for a
  Swedish shop (net lines, per-line rounding, tax rounded half-down when prices
  include tax), coupons spread like ``WC_Discounts``;
- webhooks queued, collapsed per (webhook, resource), built at delivery time,
  signed over the exact bytes, disabled after the 7th consecutive failure.

Control routes live under ``/_sandbox/`` (server wide) and ``{prefix}/_sandbox/``
(one store); they are never part of the real API.

The package is laid out like WooCommerce's REST controllers, so a behaviour is found where it
lives in WooCommerce's source (``plugins/woocommerce/includes/rest-api/Controllers/Version3/``):
``auth`` (``class-wc-rest-authentication.php``), ``common`` (the base and CRUD controllers),
``store`` (one install: settings, taxes, ids, clock, state), ``products``, ``variations``,
``orders`` (items, totals, status, stock), ``coupons`` (``WC_Discounts``), ``refunds``,
``notes``, ``customers``, ``webhooks`` (CRUD, queue, delivery), ``system`` (system status,
settings, taxes, reports), ``controls`` (``/_sandbox/``) and ``app`` (routes, the class).

A store can also have what a real WooCommerce 11 store gets from plugins and features (see
``shared/docs/payments-and-tracking.md``): ``index`` (WordPress's ``/wp-json/`` index with the
namespaces the store has), ``tracking`` (Shipment Tracking and Advanced Shipment Tracking),
``fulfillments`` (core order fulfillments, off by default), ``payments`` (Klarna, Nexi Checkout and
Svea Checkout capturing when an order is completed, with the provider's side kept per order),
``emails`` (the e-mails WooCommerce sends, as a log) and ``statuses`` (the status-write log, a
person changing the status in wp-admin).
"""

from __future__ import annotations

from .. import demo
from .app import WooCommerceSandbox
from .auth import oauth_base_string, oauth_signature
from .common import REST_BASE, WC_VERSION, WP_VERSION, WooError, wp_json
from .store import Store

(
    (DEMO_ROOT_PREFIX, _, DEMO_ROOT_CONSUMER_KEY, DEMO_ROOT_CONSUMER_SECRET, _),
    (DEMO_BUTIK2_PREFIX, _, DEMO_BUTIK2_CONSUMER_KEY, DEMO_BUTIK2_CONSUMER_SECRET, _),
) = demo.WOO_STORES

__all__ = [
    "DEMO_BUTIK2_CONSUMER_KEY",
    "DEMO_BUTIK2_CONSUMER_SECRET",
    "DEMO_BUTIK2_PREFIX",
    "DEMO_ROOT_CONSUMER_KEY",
    "DEMO_ROOT_CONSUMER_SECRET",
    "DEMO_ROOT_PREFIX",
    "REST_BASE",
    "Store",
    "WC_VERSION",
    "WP_VERSION",
    "WooCommerceSandbox",
    "WooError",
    "oauth_base_string",
    "oauth_signature",
    "wp_json",
]
