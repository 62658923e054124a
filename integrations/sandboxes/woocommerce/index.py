"""The WordPress REST index: ``GET {prefix}/wp-json/`` and ``GET {prefix}/wp-json/<namespace>``.

Follows WordPress's ``wp-includes/rest-api/class-wp-rest-server.php``: ``get_index`` (name,
description, url, home, gmt_offset, timezone_string, namespaces, authentication, routes, ...),
``get_namespace_index`` (``{namespace, routes, _links.up}``), ``get_data_for_route`` (each route
with its namespace, methods and endpoints; a ``self`` link for routes without parameters) and
``register_route`` (a namespace's own route exists only once something registered in it, so
``/wp-json/<unknown namespace>`` is 404 ``rest_no_route``; ``rest_invalid_namespace`` is what the
namespace route answers to a ``namespace`` argument naming none). ``_fields`` is applied to
top-level keys (``rest_filter_response_fields``). Both are public.

Listed: WordPress's and WooCommerce's namespaces (each with its own route only), every route the
sandbox serves in ``wc/v3``, and what the store's plugins and features add: ``wc-shipment-tracking/v3``
(ST or AST), ``wc-ast/v3`` (AST), the tracking routes in ``wc/v1``/``wc/v2`` (and ``wc/v3`` for AST),
``/wc/v3/orders/(?P<order_id>[\\d]+)/fulfillments`` (fulfillments on). Endpoint ``args`` are left
empty.
"""

from __future__ import annotations

from datetime import datetime

from ..http import SandboxRequest, SandboxResponse
from .common import STORE_TIMEZONE, WooError, wp_response
from .store import Store
from .tracking import AST_NAMESPACES, ST_NAMESPACES

R, C, E, D = ["GET"], ["POST"], ["POST", "PUT", "PATCH"], ["DELETE"]
ID = r"(?P<id>[\d]+)"
ORDER = r"(?P<order_id>[\d]+)"

WC_V3_ROUTES = [
    ("/products", [R, C]),
    ("/products/batch", [E]),
    (f"/products/{ID}", [R, E, D]),
    (r"/products/(?P<product_id>[\d]+)/variations", [R, C]),
    (r"/products/(?P<product_id>[\d]+)/variations/batch", [E]),
    (rf"/products/(?P<product_id>[\d]+)/variations/{ID}", [R, E, D]),
    ("/orders", [R, C]),
    ("/orders/batch", [E]),
    (f"/orders/{ID}", [R, E, D]),
    (f"/orders/{ORDER}/notes", [R, C]),
    (f"/orders/{ORDER}/notes/{ID}", [R, D]),
    (f"/orders/{ORDER}/refunds", [R, C]),
    (f"/orders/{ORDER}/refunds/{ID}", [R, D]),
    ("/refunds", [R]),
    ("/customers", [R, C]),
    ("/customers/batch", [E]),
    (f"/customers/{ID}", [R, E, D]),
    ("/webhooks", [R, C]),
    ("/webhooks/batch", [E]),
    (f"/webhooks/{ID}", [R, E, D]),
    ("/coupons", [R, C]),
    ("/system_status", [R]),
    (r"/settings/(?P<group_id>[\w-]+)", [R]),
    ("/taxes", [R, C]),
    ("/taxes/classes", [R, C]),
    ("/reports/orders/totals", [R]),
]
FULFILLMENT_ROUTES = [
    (f"/orders/{ORDER}/fulfillments", [R, C]),
    (rf"/orders/{ORDER}/fulfillments/(?P<fulfillment_id>[\d]+)", [R, E, D]),
    (rf"/orders/{ORDER}/fulfillments/(?P<fulfillment_id>[\d]+)/metadata", [R, E, D]),
]
TRACKING_ROUTES = [
    (f"/orders/{ORDER}/shipment-trackings", [R, C]),
    (f"/orders/{ORDER}/shipment-trackings/providers", [R]),
    (rf"/orders/{ORDER}/shipment-trackings/(?P<id>[a-fA-F0-9]{{0,32}})", [R, D]),
]


def namespaces(store: Store) -> list[str]:
    out = ["oembed/1.0", "wc-admin", "wc-analytics", "wc/store/v1", "wc/v1", "wc/v2", "wc/v3"]
    if store.has_plugin("ast"):
        out.append("wc-ast/v3")
    if store.has_plugin("ast") or store.has_plugin("shipment_tracking"):
        out.append("wc-shipment-tracking/v3")
    return out + ["wp/v2", "wp-site-health/v1", "wp-block-editor/v1"]


def _route_list(store: Store) -> list[tuple[str, str, list]]:
    """(namespace, route, endpoints' methods) in registration order."""
    routes: list[tuple[str, str, list]] = [("", "/", [R])]
    tracking_ns = [
        ns
        for ns in namespaces(store)
        if (store.has_plugin("ast") and ns in AST_NAMESPACES)
        or (store.has_plugin("shipment_tracking") and ns in ST_NAMESPACES)
    ]
    for ns in namespaces(store):
        routes.append((ns, f"/{ns}", [R]))
        if ns == "wc/v3":
            routes += [(ns, f"/wc/v3{r}", m) for r, m in WC_V3_ROUTES]
            if store.features.get("fulfillments"):
                routes += [(ns, f"/wc/v3{r}", m) for r, m in FULFILLMENT_ROUTES]
        if ns in tracking_ns:
            if store.has_plugin("shipment_tracking") and ns in ST_NAMESPACES:
                routes.append((ns, f"/{ns}/shipment-trackings/providers", [R]))
            routes += [(ns, f"/{ns}{r}", m) for r, m in TRACKING_ROUTES]
    return routes


def _route_data(store: Store, namespace: str, route: str, endpoints: list) -> dict:
    methods: list[str] = []
    for endpoint in endpoints:
        methods += [m for m in endpoint if m not in methods]
    data = {
        "namespace": namespace,
        "methods": methods,
        "endpoints": [{"methods": list(m), "args": {}} for m in endpoints],
    }
    if "(?P<" not in route:
        data["_links"] = {"self": [{"href": f"{store.home()}/wp-json{route}"}]}
    return data


def _fields(request: SandboxRequest, data: dict) -> dict:
    wanted = request.arg("_fields")
    if not wanted:
        return data
    keys = {f.strip().split(".")[0] for f in wanted.split(",") if f.strip()}
    return {k: v for k, v in data.items() if k in keys}


class IndexMixin:
    """``WP_REST_Server::get_index`` and ``get_namespace_index`` for one store."""

    def _wp_index(self, request: SandboxRequest) -> SandboxResponse:
        try:
            with self.lock:
                store = self._store_for(request)
                if not store.settings.get("home_url"):
                    store.seen_home = f"{request.scheme}://{request.host}{store.prefix}"
                home = store.home()
                offset = datetime.now(STORE_TIMEZONE).utcoffset().total_seconds() / 3600
                data = {
                    "name": store.settings.get("blogname") or "",
                    "description": "",
                    "url": home,
                    "home": home,
                    # wp_timezone_override_offset(): round( offset / HOUR_IN_SECONDS, 2 ), a float.
                    "gmt_offset": round(offset, 2),
                    "timezone_string": "Europe/Stockholm",
                    "page_for_posts": 0,
                    "page_on_front": 0,
                    "show_on_front": "posts",
                    "namespaces": namespaces(store),
                    "authentication": {},
                    "routes": {
                        route: _route_data(store, ns, route, endpoints)
                        for ns, route, endpoints in _route_list(store)
                    },
                    "site_logo": 0,
                    "site_icon": 0,
                    "site_icon_url": "",
                    "_links": {"help": [{"href": "https://developer.wordpress.org/rest-api/"}]},
                }
        except WooError as error:
            return wp_response(error.body(), error.status)
        return wp_response(
            _fields(request, data), 200, [("Link", f'<{home}/wp-json/>; rel="https://api.w.org/"')]
        )

    def _wp_namespace_index(self, request: SandboxRequest) -> SandboxResponse:
        try:
            with self.lock:
                store = self._store_for(request)
                if not store.settings.get("home_url"):
                    store.seen_home = f"{request.scheme}://{request.host}{store.prefix}"
                registered = namespaces(store)
                namespace = request.params["ns"]
                if namespace not in registered:
                    raise WooError(
                        "rest_no_route", "No route was found matching the URL and request method.", 404
                    )
                asked = request.arg("namespace") or namespace
                if asked not in registered:
                    raise WooError(
                        "rest_invalid_namespace", "The specified namespace could not be found.", 404
                    )
                data = {
                    "namespace": asked,
                    "routes": {
                        route: _route_data(store, ns, route, endpoints)
                        for ns, route, endpoints in _route_list(store)
                        if ns == asked
                    },
                    "_links": {"up": [{"href": f"{store.home()}/wp-json/"}]},
                }
        except WooError as error:
            return wp_response(error.body(), error.status)
        return wp_response(_fields(request, data))
