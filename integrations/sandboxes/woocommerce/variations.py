"""Variations of a variable product: ``/products/<pid>/variations``.

Follows, in ``woocommerce/woocommerce`` (``plugins/woocommerce/``):
``includes/rest-api/Controllers/Version3/class-wc-rest-product-variations-controller.php``
(and its v2 parent): a variation belongs to its parent (``woocommerce_rest_product_variation_invalid_id``
otherwise), cannot be trashed (``force`` is required), ``tax_class: "parent"``, the parent's
derived price and stock status follow its children (``WC_Product_Variable::sync``).
``prepare_object_for_database`` takes prices and sale dates as the products controller does
(null leaves them, "" clears a date): both use ``ProductsMixin._apply_product_fields``.
"""

from __future__ import annotations

from ..http import SandboxRequest, SandboxResponse
from .common import REST_BASE, WooError, _list_param, _truthy, wp_response
from .store import Store

VARIATION_TEMPLATE = {
    "id": 0,
    "type": "variation",
    "date_created": None,
    "date_created_gmt": None,
    "date_modified": None,
    "date_modified_gmt": None,
    "description": "",
    "permalink": "",
    "sku": "",
    "global_unique_id": "",
    "price": "",
    "regular_price": "",
    "sale_price": "",
    "date_on_sale_from": None,
    "date_on_sale_from_gmt": None,
    "date_on_sale_to": None,
    "date_on_sale_to_gmt": None,
    "on_sale": False,
    "status": "publish",
    "purchasable": False,
    "virtual": False,
    "downloadable": False,
    "downloads": [],
    "download_limit": -1,
    "download_expiry": -1,
    "tax_status": "taxable",
    "tax_class": "",
    "manage_stock": False,
    "stock_quantity": None,
    "stock_status": "instock",
    "backorders": "no",
    "backorders_allowed": False,
    "backordered": False,
    "low_stock_amount": None,
    "weight": "",
    "dimensions": {"length": "", "width": "", "height": ""},
    "shipping_class": "",
    "shipping_class_id": 0,
    "image": None,
    "gallery_image_ids": [],
    "attributes": [],
    "menu_order": 0,
    "meta_data": [],
    "name": "",
    "parent_id": 0,
}


class VariationsMixin:
    """The product variations controller."""

    def _parent(self, store: Store, request: SandboxRequest) -> dict:
        parent = store.products.get(int(request.params["pid"]))
        if parent is None or parent.get("type") == "variation":
            raise WooError("woocommerce_rest_product_invalid_id", "Invalid ID.", 404)
        return parent

    def _variation(self, store: Store, parent: dict, variation_id: int, status: int = 404) -> dict:
        variation = store.products.get(variation_id)
        if (
            variation is None
            or variation.get("type") != "variation"
            or variation.get("parent_id") != parent["id"]
        ):
            raise WooError("woocommerce_rest_product_variation_invalid_id", "Invalid ID.", status)
        return variation

    def _variations_list(self, store: Store, request: SandboxRequest, after) -> SandboxResponse:
        paging = self._paging(request)
        parent = self._parent(store, request)
        children = [store.products[i] for i in parent.get("variations", []) if i in store.products]
        orderby = request.arg("orderby") or "menu_order"
        children = self._sort(children, orderby, self._order_dir(request, "asc"))
        skus = set(_list_param(request, "sku"))
        if skus:
            children = [c for c in children if c.get("sku") in skus]
        include, exclude = set(self._id_list(request, "include")), set(self._id_list(request, "exclude"))
        children = [c for c in children if (not include or c["id"] in include) and c["id"] not in exclude]
        children = self._date_filters(request, children)
        return self._paged_response(
            store,
            request,
            [c["id"] for c in children],
            lambda i: self._product_out(store, store.products[i]),
            f"products/{parent['id']}/variations",
            paging,
        )

    def _variation_get(self, store: Store, request: SandboxRequest, after) -> SandboxResponse:
        parent = self._parent(store, request)
        return wp_response(
            self._product_out(store, self._variation(store, parent, int(request.params["id"])))
        )

    def _variation_create(self, store: Store, request: SandboxRequest, after) -> SandboxResponse:
        parent = self._parent(store, request)
        variation = self._product_create_item(store, self._body(request), parent=parent)
        location = f"{store.home()}{REST_BASE}/products/{parent['id']}/variations/{variation['id']}"
        return wp_response(self._product_out(store, variation), 201, [("Location", location)])

    def _variation_update(self, store: Store, request: SandboxRequest, after) -> SandboxResponse:
        parent = self._parent(store, request)
        variation = self._variation(store, parent, int(request.params["id"]), 400)
        return wp_response(
            self._product_out(store, self._product_update_item(store, variation, self._body(request)))
        )

    def _variation_delete_item(self, store: Store, parent: dict, variation: dict, force: bool) -> dict:
        if not force:
            raise WooError(
                "woocommerce_rest_trash_not_supported",
                "Variations do not support trashing. Set 'force' to true to delete.",
                501,
            )
        out = self._product_out(store, variation)
        store.unindex_sku(variation)
        del store.products[variation["id"]]
        self._lines_lose_products(store, {variation["id"]})
        parent["variations"] = [v for v in parent.get("variations", []) if v != variation["id"]]
        self._derive_product(store, parent)
        self._touch_product(store, parent)
        self._fire(store, "product.deleted", variation["id"])
        self.changed()
        return out

    def _variation_delete(self, store: Store, request: SandboxRequest, after) -> SandboxResponse:
        parent = self._parent(store, request)
        variation = self._variation(store, parent, int(request.params["id"]))
        return wp_response(
            self._variation_delete_item(store, parent, variation, _truthy(request.arg("force")))
        )

    def _variations_batch(self, store: Store, request: SandboxRequest, after) -> SandboxResponse:
        parent = self._parent(store, request)
        return self._batch(
            store,
            request,
            lambda d: self._product_out(store, self._product_create_item(store, d, parent=parent)),
            lambda i, d: self._product_out(
                store, self._product_update_item(store, self._variation(store, parent, i, 400), d)
            ),
            lambda i: self._variation_delete_item(store, parent, self._variation(store, parent, i), True),
        )
