"""The WooCommerce sandbox as one app: its routes and the class tying the resources together.

The routes are those ``WC_REST_*_Controller::register_routes`` register under ``wc/v3``
(``includes/rest-api/Server.php`` lists the controllers); a request is served the way
WordPress's ``WP_REST_Server::dispatch`` serves it: authenticate (``auth.py``), check the
controller's permission, call the handler, answer ``{"code","message","data"}`` on error.
Each resource's handlers live in the module named after its controller; this class only
mixes them in.

Besides ``wc/v3`` the app serves WordPress's index (``/wp-json/``, ``index.py``), the shipment
tracking plugins' namespaces (``tracking.py``) and the order fulfillments routes (``fulfillments.py``);
a plugin's or feature's routes exist only while the store has it (else 404 ``rest_no_route``,
before authentication, as for any unregistered route). The payment plugins (``payments.py``),
WooCommerce's e-mails (``emails.py``) and the status-write log (``statuses.py``) hang off the
orders' status path.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path

from ..http import SandboxApp, SandboxRequest, SandboxResponse, json_response
from .auth import AuthMixin
from .common import REST_BASE, RestControllerMixin, WooError, wp_response
from .controls import WC11_FIXTURES_DIR, ControlsMixin
from .coupons import CouponsMixin
from .customers import CustomersMixin
from .emails import EmailsMixin
from .fulfillments import FulfillmentsMixin
from .index import IndexMixin
from .notes import NotesMixin
from .orders import OrdersMixin
from .payments import PaymentsMixin
from .products import ProductsMixin
from .refunds import RefundsMixin
from .statuses import StatusesMixin
from .store import StateMixin, Store
from .system import SystemMixin
from .tracking import TrackingMixin
from .variations import VariationsMixin
from .webhooks import WebhooksMixin


class WooCommerceSandbox(
    AuthMixin,
    RestControllerMixin,
    ProductsMixin,
    VariationsMixin,
    OrdersMixin,
    CouponsMixin,
    RefundsMixin,
    NotesMixin,
    CustomersMixin,
    WebhooksMixin,
    SystemMixin,
    PaymentsMixin,
    EmailsMixin,
    StatusesMixin,
    TrackingMixin,
    FulfillmentsMixin,
    IndexMixin,
    ControlsMixin,
    StateMixin,
    SandboxApp,
):
    """WooCommerce stores (one per path prefix) behind one HTTP server.

    ``delivery_delay`` is how long a queued webhook waits before the background
    thread sends it (Action Scheduler's delay); ``delivery_timeout`` bounds each
    delivery request.
    """

    name = "woocommerce"

    def __init__(
        self,
        *,
        delivery_delay: float = 0.2,
        delivery_timeout: float = 10.0,
        fixtures_dir: str | Path | None = None,
    ):
        super().__init__()
        self.delivery_delay = float(delivery_delay)
        self.delivery_timeout = float(delivery_timeout)
        self.fixtures_dir = Path(fixtures_dir) if fixtures_dir else WC11_FIXTURES_DIR
        self.stores: dict[str, Store] = {}
        self._wakeup = threading.Condition(self.lock)
        self._worker: threading.Thread | None = None
        self._register_routes()

    # -- routing ---------------------------------------------------------------------------------
    def _register_routes(self) -> None:
        p = r"(?P<prefix>(?:/[A-Za-z0-9._~-]+)*?)"
        api = p + re.escape(REST_BASE)
        control = p + "/_sandbox"
        n = r"(?P<id>\d+)"
        routes = [
            ("GET", "/products", self._products_list, "list"),
            ("POST", "/products", self._product_create, "create"),
            ("POST", "/products/batch", self._products_batch, "batch"),
            ("GET", f"/products/{n}", self._product_get, "view"),
            ("PUT", f"/products/{n}", self._product_update, "edit"),
            ("DELETE", f"/products/{n}", self._product_delete, "delete"),
            ("GET", r"/products/(?P<pid>\d+)/variations", self._variations_list, "list"),
            ("POST", r"/products/(?P<pid>\d+)/variations", self._variation_create, "create"),
            ("POST", r"/products/(?P<pid>\d+)/variations/batch", self._variations_batch, "batch"),
            ("GET", rf"/products/(?P<pid>\d+)/variations/{n}", self._variation_get, "view"),
            ("PUT", rf"/products/(?P<pid>\d+)/variations/{n}", self._variation_update, "edit"),
            ("DELETE", rf"/products/(?P<pid>\d+)/variations/{n}", self._variation_delete, "delete"),
            ("GET", "/orders", self._orders_list, "list"),
            ("POST", "/orders", self._order_create, "create"),
            ("POST", "/orders/batch", self._orders_batch, "batch"),
            ("OPTIONS", "/orders", self._orders_schema, "options"),
            ("GET", f"/orders/{n}", self._order_get, "view"),
            ("PUT", f"/orders/{n}", self._order_update, "edit"),
            ("DELETE", f"/orders/{n}", self._order_delete, "delete"),
            ("GET", r"/orders/(?P<oid>\d+)/notes", self._notes_list, "list"),
            ("POST", r"/orders/(?P<oid>\d+)/notes", self._note_create, "create"),
            ("GET", rf"/orders/(?P<oid>\d+)/notes/{n}", self._note_get, "view"),
            ("DELETE", rf"/orders/(?P<oid>\d+)/notes/{n}", self._note_delete, "delete"),
            ("GET", r"/orders/(?P<oid>\d+)/refunds", self._refunds_list, "list"),
            ("POST", r"/orders/(?P<oid>\d+)/refunds", self._refund_create, "create"),
            ("GET", rf"/orders/(?P<oid>\d+)/refunds/{n}", self._refund_get, "view"),
            ("DELETE", rf"/orders/(?P<oid>\d+)/refunds/{n}", self._refund_delete, "delete"),
            ("GET", "/refunds", self._refunds_all, "list"),
            ("GET", "/customers", self._customers_list, "list"),
            ("POST", "/customers", self._customer_create, "create"),
            ("POST", "/customers/batch", self._customers_batch, "batch"),
            ("GET", f"/customers/{n}", self._customer_get, "view"),
            ("PUT", f"/customers/{n}", self._customer_update, "edit"),
            ("DELETE", f"/customers/{n}", self._customer_delete, "delete"),
            ("GET", "/webhooks", self._webhooks_list, "list"),
            ("POST", "/webhooks", self._webhook_create, "create"),
            ("POST", "/webhooks/batch", self._webhooks_batch, "batch"),
            ("GET", f"/webhooks/{n}", self._webhook_get, "view"),
            ("PUT", f"/webhooks/{n}", self._webhook_update, "edit"),
            ("DELETE", f"/webhooks/{n}", self._webhook_delete, "delete"),
            ("GET", "/coupons", self._coupons_list, "list"),
            ("GET", "/system_status", self._system_status, "list"),
            ("GET", "/settings/general", self._settings_general, "list"),
            ("GET", "/taxes", self._taxes_list, "list"),
            ("GET", "/taxes/classes", self._tax_classes_list, "list"),
            ("GET", "/reports/orders/totals", self._report_order_totals, "list"),
        ]
        for method, suffix, handler, kind in routes:
            self.route(method, api + suffix + "/?", self._api(handler, kind))
        # Order fulfillments (wc/v3), only while the feature is on.
        fulfillment = r"/orders/(?P<oid>\d+)/fulfillments/(?P<fid>\d+)"
        for method, suffix, handler in [
            ("GET", r"/orders/(?P<oid>\d+)/fulfillments", self._fulfillments_list),
            ("POST", r"/orders/(?P<oid>\d+)/fulfillments", self._fulfillment_create),
            ("GET", fulfillment, self._fulfillment_get),
            ("PUT", fulfillment, self._fulfillment_update),
            ("DELETE", fulfillment, self._fulfillment_delete),
            ("GET", fulfillment + "/metadata", self._fulfillment_meta_get),
            ("PUT", fulfillment + "/metadata", self._fulfillment_meta_update),
            ("DELETE", fulfillment + "/metadata", self._fulfillment_meta_delete),
        ]:
            self.route(
                method,
                api + suffix + "/?",
                self._api(
                    handler,
                    "public",
                    available=self._fulfillments_available,
                    permission=self._fulfillment_permission,
                ),
            )
        # Shipment tracking (ST: wc-shipment-tracking/v3, wc/v1, wc/v2; AST: those, wc/v3 and wc-ast/v3).
        tracking = p + r"/wp-json/(?P<ns>wc-shipment-tracking/v3|wc-ast/v3|wc/v1|wc/v2|wc/v3)"
        trackings = r"/orders/(?P<oid>\d+)/shipment-trackings"
        for method, suffix, handler, kind, permission in [
            ("GET", trackings, self._trackings_list, "list", None),
            (
                "POST",
                trackings,
                self._tracking_create,
                self._tracking_create_kind,
                self._tracking_create_permission,
            ),
            (
                "GET",
                trackings + "/providers",
                self._tracking_order_providers,
                self._tracking_order_providers_kind,
                None,
            ),
            ("GET", trackings + r"/(?P<tid>[a-fA-F0-9]{1,32})", self._tracking_get, "view", None),
            ("DELETE", trackings + r"/(?P<tid>[a-fA-F0-9]{1,32})", self._tracking_delete, "delete", None),
        ]:
            self.route(
                method,
                tracking + suffix + "/?",
                self._api(handler, kind, available=self._tracking_available, permission=permission),
            )
        self.route(
            "GET",
            p + r"/wp-json/(?P<ns>wc-shipment-tracking/v3|wc/v1|wc/v2)/shipment-trackings/providers/?",
            self._api(self._st_providers, "public", available=self._st_providers_available),
        )
        # WordPress's REST index.
        self.route("GET", p + r"/wp-json/?", self._wp_index)
        self.route(
            "GET", p + r"/wp-json/(?P<ns>wc/store/v1|[a-z0-9-]+(?:/[a-z0-9.]+)?)/?", self._wp_namespace_index
        )
        self.route("POST", r"/_sandbox/reset", self._ctl_reset)
        self.route("POST", r"/_sandbox/stores", self._ctl_store_create)
        self.route("GET", r"/_sandbox/stores", self._ctl_stores_list)
        self.route("POST", r"/_sandbox/seed", self._ctl_seed)
        self.route("POST", r"/_sandbox/webhooks/config", self._ctl_webhook_config)
        for method, suffix, handler in [
            ("POST", "/products", self._ctl_import_products),
            ("POST", "/orders", self._ctl_import_orders),
            ("POST", r"/orders/(?P<oid>\d+)/refunds", self._ctl_import_refunds),
            ("POST", "/customers", self._ctl_import_customers),
            ("POST", "/coupons", self._ctl_import_coupons),
            ("POST", "/keys", self._ctl_add_key),
            ("POST", "/order-statuses", self._ctl_order_statuses),
            ("POST", "/webhooks/flush", self._ctl_flush),
            ("GET", "/deliveries", self._ctl_deliveries),
            ("POST", "/clock", self._ctl_clock),
            ("GET", "/clock", self._ctl_clock),
            ("POST", "/settings", self._ctl_settings),
            ("GET", "/settings", self._ctl_settings),
            ("POST", r"/orders/(?P<oid>\d+)/status", self._ctl_order_status),
            ("POST", r"/orders/(?P<oid>\d+)/payment", self._ctl_payment),
            ("GET", "/payments", self._ctl_payments),
            ("GET", "/emails", self._ctl_emails),
            ("GET", "/status-writes", self._ctl_status_writes),
        ]:
            self.route(method, control + suffix, self._control(handler))

    def not_found(self, request: SandboxRequest, *, method_mismatch: bool) -> SandboxResponse:
        if "/wp-json/" in request.path or request.path.rstrip("/").endswith("/wp-json"):
            return wp_response(
                {
                    "code": "rest_no_route",
                    "message": "No route was found matching the URL and request method.",
                    "data": {"status": 404},
                },
                404,
            )
        return json_response({"error": "not found", "path": request.path}, 404)

    def _store_for(self, request: SandboxRequest) -> Store:
        store = self.stores.get(request.params.get("prefix", ""))
        if store is None:
            raise WooError("rest_no_route", "No route was found matching the URL and request method.", 404)
        return store

    def _api(self, handler, kind, available=None, permission=None):
        """A REST route as ``WP_REST_Server::dispatch`` serves it. ``kind`` (list, view, create, edit, delete,
        batch, options, public; or a function of store and request giving one) picks the permission
        check's answer to an anonymous caller; ``available(store, request)`` false means the route is not
        registered on this store (a plugin or feature it lacks); ``permission(store, request, auth)`` is the
        controller's own check, run after authentication."""

        def wrapped(request: SandboxRequest) -> SandboxResponse:
            after: list = []
            try:
                with self.lock:
                    store = self._store_for(request)
                    if not store.settings.get("home_url"):
                        store.seen_home = f"{request.scheme}://{request.host}{store.prefix}"
                    if available is not None and not available(store, request):
                        raise WooError(
                            "rest_no_route", "No route was found matching the URL and request method.", 404
                        )
                    auth = self._authenticate(store, request)
                    required = kind(store, request) if callable(kind) else kind
                    if required not in ("options", "public") and auth.anonymous:
                        raise self._cannot(required, request)
                    if permission is not None:
                        permission(store, request, auth)
                    response = handler(store, request, after)
            except WooError as error:
                return wp_response(error.body(), error.status)
            for action in after:
                action()
            return response

        return wrapped
