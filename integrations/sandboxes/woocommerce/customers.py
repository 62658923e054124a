"""Customers: ``/customers`` and ``/customers/<id>`` (WordPress users with the customer role).

Follows, in ``woocommerce/woocommerce`` (``plugins/woocommerce/``):
``includes/rest-api/Controllers/Version3/class-wc-rest-customers-controller.php`` (and v2):
``email``/``role``/``search`` filters, no ``modified_*`` filters, ``registration-error-email-exists``,
delete only with ``force``; ``includes/class-wc-customer.php`` for the fields.
"""

from __future__ import annotations

import hashlib

from ..http import SandboxRequest, SandboxResponse
from .common import REST_BASE, WooError, _public, _truthy, wp_response
from .store import Store


class CustomersMixin:
    """The customers controller."""

    def _customer_out(self, store: Store, customer: dict) -> dict:
        data = _public(customer)
        data["_links"] = self._links(store, f"/customers/{customer['id']}", "/customers")
        return data

    def _customer_by_id(self, store: Store, customer_id: int, status: int = 404) -> dict:
        customer = store.customers.get(customer_id)
        if customer is None:
            raise WooError("woocommerce_rest_invalid_id", "Invalid resource ID.", status)
        return customer

    def _customers_list(self, store: Store, request: SandboxRequest, after) -> SandboxResponse:
        paging = self._paging(request)
        ids = self._select(
            store,
            request,
            "customer",
            store.customers,
            ("id", "include", "name", "registered_date"),
            default_order="asc",
            default_orderby="name",
        )
        email = (request.arg("email") or "").lower()
        role = request.arg("role") or "customer"
        search = (request.arg("search") or "").lower()
        out = []
        for customer_id in ids:
            customer = store.customers[customer_id]
            if email and customer.get("email", "").lower() != email:
                continue
            if role != "all" and customer.get("role") != role:
                continue
            if (
                search
                and search
                not in " ".join(
                    str(customer.get(k, "")) for k in ("email", "first_name", "last_name", "username")
                ).lower()
            ):
                continue
            out.append(customer_id)
        return self._paged_response(
            store, request, out, lambda i: self._customer_out(store, store.customers[i]), "customers", paging
        )

    def _customer_get(self, store: Store, request: SandboxRequest, after) -> SandboxResponse:
        return wp_response(self._customer_out(store, self._customer_by_id(store, int(request.params["id"]))))

    def _customer_create_item(self, store: Store, data: dict) -> dict:
        if not isinstance(data, dict) or not data.get("email"):
            raise WooError(
                "rest_missing_callback_param", "Missing parameter(s): email", 400, params=["email"]
            )
        email = str(data["email"]).strip()
        if any(c.get("email", "").lower() == email.lower() for c in store.customers.values()):
            raise WooError(
                "registration-error-email-exists",
                "An account is already registered with your email address. "
                '<a href="#" class="showlogin">Please log in.</a>',
                400,
            )
        customer_id = store.next_id("user")
        local, gmt = store.stamp()
        customer = {
            "id": customer_id,
            "date_created": local,
            "date_created_gmt": gmt,
            "date_modified": local,
            "date_modified_gmt": gmt,
            "email": email,
            "first_name": data.get("first_name", ""),
            "last_name": data.get("last_name", ""),
            "role": "customer",
            "username": data.get("username") or email.split("@")[0],
            "billing": self._address(data.get("billing"), email=True),
            "shipping": self._address(data.get("shipping"), email=False),
            "is_paying_customer": False,
            "avatar_url": "https://secure.gravatar.com/avatar/"
            + hashlib.sha256(email.lower().encode()).hexdigest()
            + "?s=96&d=mm&r=g",
            "meta_data": self._merge_meta(store, [], data.get("meta_data") or []),
        }
        store.customers[customer_id] = customer
        self._fire(store, "customer.created", customer_id)
        store.touch()
        self.changed()
        return customer

    def _customer_update_item(self, store: Store, customer: dict, data: dict) -> dict:
        for key in ("email", "first_name", "last_name"):
            if key in data:
                customer[key] = data[key] or ""
        for key, email in (("billing", True), ("shipping", False)):
            if key in data:
                customer[key] = self._address(data[key], email=email, existing=customer[key])
        if "meta_data" in data:
            customer["meta_data"] = self._merge_meta(
                store, customer.get("meta_data", []), data["meta_data"] or []
            )
        customer["date_modified"], customer["date_modified_gmt"] = store.stamp()
        self._fire(store, "customer.updated", customer["id"])
        store.touch()
        self.changed()
        return customer

    def _customer_delete_item(self, store: Store, customer: dict, force: bool) -> dict:
        if not force:
            raise WooError("woocommerce_rest_trash_not_supported", "Customers do not support trashing.", 501)
        out = self._customer_out(store, customer)
        del store.customers[customer["id"]]
        self._fire(store, "customer.deleted", customer["id"])
        store.touch()
        self.changed()
        return out

    def _customer_create(self, store: Store, request: SandboxRequest, after) -> SandboxResponse:
        customer = self._customer_create_item(store, self._body(request))
        location = f"{store.home()}{REST_BASE}/customers/{customer['id']}"
        return wp_response(self._customer_out(store, customer), 201, [("Location", location)])

    def _customer_update(self, store: Store, request: SandboxRequest, after) -> SandboxResponse:
        customer = self._customer_by_id(store, int(request.params["id"]), 400)
        return wp_response(
            self._customer_out(store, self._customer_update_item(store, customer, self._body(request)))
        )

    def _customer_delete(self, store: Store, request: SandboxRequest, after) -> SandboxResponse:
        customer = self._customer_by_id(store, int(request.params["id"]))
        return wp_response(self._customer_delete_item(store, customer, _truthy(request.arg("force"))))

    def _customers_batch(self, store: Store, request: SandboxRequest, after) -> SandboxResponse:
        return self._batch(
            store,
            request,
            lambda d: self._customer_out(store, self._customer_create_item(store, d)),
            lambda i, d: self._customer_out(
                store, self._customer_update_item(store, self._customer_by_id(store, i, 400), d)
            ),
            lambda i: self._customer_delete_item(store, self._customer_by_id(store, i), True),
        )
