"""Products: ``/products`` and ``/products/<id>``, with stock.

Follows, in ``woocommerce/woocommerce`` (``plugins/woocommerce/``):
- ``includes/rest-api/Controllers/Version3/class-wc-rest-products-controller.php`` (and its v2
  parent): ``get_collection_params`` / ``prepare_objects_query`` (``sku`` matches products and
  variations alike, comma-separated), ``prepare_object_for_database`` (only the fields sent are
  applied, and prices and sale dates only when not null: ``isset()``; "" clears a sale date;
  ``product_invalid_sku`` with ``resource_id`` and ``unique_sku``),
  ``delete_item`` (trash unless ``force``); batches run each item through the same code
  (``WC_REST_Controller::batch_items``);
- ``includes/abstracts/abstract-wc-product.php`` and ``includes/data-stores/class-wc-product-data-store-cpt.php``:
  the derived ``price``, ``on_sale``, ``purchasable`` and stock status;
- ``includes/wc-stock-functions.php``: ``wc_update_product_stock`` (every change fires
  ``product.updated``).
"""

from __future__ import annotations

import json

from ..http import SandboxRequest, SandboxResponse
from .common import (
    REST_BASE,
    WooError,
    _dec,
    _invalid_param,
    _iso,
    _list_param,
    _local_and_gmt,
    _money,
    _php_str,
    _public,
    _slugify,
    _truthy,
    wp_response,
)
from .store import Store
from .variations import VARIATION_TEMPLATE

PRODUCT_STATUSES = ("draft", "pending", "private", "publish")
PRODUCT_TYPES = ("simple", "grouped", "external", "variable")

PRODUCT_TEMPLATE = {
    "id": 0,
    "name": "",
    "slug": "",
    "permalink": "",
    "date_created": None,
    "date_created_gmt": None,
    "date_modified": None,
    "date_modified_gmt": None,
    "type": "simple",
    "status": "publish",
    "featured": False,
    "catalog_visibility": "visible",
    "description": "",
    "short_description": "",
    "sku": "",
    "price": "",
    "regular_price": "",
    "sale_price": "",
    "date_on_sale_from": None,
    "date_on_sale_from_gmt": None,
    "date_on_sale_to": None,
    "date_on_sale_to_gmt": None,
    "on_sale": False,
    "purchasable": False,
    "total_sales": 0,
    "virtual": False,
    "downloadable": False,
    "downloads": [],
    "download_limit": -1,
    "download_expiry": -1,
    "external_url": "",
    "button_text": "",
    "tax_status": "taxable",
    "tax_class": "",
    "manage_stock": False,
    "stock_quantity": None,
    "backorders": "no",
    "backorders_allowed": False,
    "backordered": False,
    "low_stock_amount": None,
    "sold_individually": False,
    "weight": "",
    "dimensions": {"length": "", "width": "", "height": ""},
    "shipping_required": True,
    "shipping_taxable": True,
    "shipping_class": "",
    "shipping_class_id": 0,
    "reviews_allowed": True,
    "average_rating": "0.00",
    "rating_count": 0,
    "upsell_ids": [],
    "cross_sell_ids": [],
    "parent_id": 0,
    "purchase_note": "",
    "categories": [],
    "brands": [],
    "tags": [],
    "images": [],
    "attributes": [],
    "default_attributes": [],
    "variations": [],
    "grouped_products": [],
    "menu_order": 0,
    "price_html": "",
    "related_ids": [],
    "meta_data": [],
    "stock_status": "instock",
    "has_options": False,
    "post_password": "",
    "global_unique_id": "",
}
PRODUCT_WRITABLE = {
    "name",
    "slug",
    "type",
    "status",
    "featured",
    "catalog_visibility",
    "description",
    "short_description",
    "sku",
    "regular_price",
    "sale_price",
    "date_on_sale_from",
    "date_on_sale_from_gmt",
    "date_on_sale_to",
    "date_on_sale_to_gmt",
    "virtual",
    "downloadable",
    "downloads",
    "download_limit",
    "download_expiry",
    "external_url",
    "button_text",
    "tax_status",
    "tax_class",
    "manage_stock",
    "stock_quantity",
    "backorders",
    "low_stock_amount",
    "sold_individually",
    "weight",
    "dimensions",
    "shipping_class",
    "reviews_allowed",
    "upsell_ids",
    "cross_sell_ids",
    "parent_id",
    "purchase_note",
    "categories",
    "tags",
    "brands",
    "images",
    "attributes",
    "default_attributes",
    "grouped_products",
    "menu_order",
    "meta_data",
    "stock_status",
    "image",
    "global_unique_id",
    "post_password",
}

# In the order ``prepare_object_for_database`` applies them: a _gmt date sent beside its local
# twin wins.
SALE_DATES = ("date_on_sale_from", "date_on_sale_from_gmt", "date_on_sale_to", "date_on_sale_to_gmt")


class ProductsMixin:
    """The products controller, and the product rules variations share (derived fields, SKUs, stock)."""

    def _product_out(self, store: Store, product: dict) -> dict:
        data = _public(product)
        if product.get("type") == "variation":
            parent = product.get("parent_id") or 0
            data["_links"] = self._links(
                store,
                f"/products/{parent}/variations/{product['id']}",
                f"/products/{parent}/variations",
                up=f"/products/{parent}",
            )
        else:
            data["_links"] = self._links(store, f"/products/{product['id']}", "/products")
        return data

    def _variation_as_product(self, store: Store, variation: dict) -> dict:
        """``GET /products/{variation_id}``: the products controller's view of a variation."""
        parent = store.products.get(variation.get("parent_id") or 0)
        data = dict(PRODUCT_TEMPLATE)
        for key, value in _public(variation).items():
            if key in data or key == "image":
                data[key] = value
        data.pop("image", None)
        data["type"] = "variation"
        if parent:
            options = ", ".join(str(a.get("option", "")) for a in variation.get("attributes", []))
            data["name"] = f"{parent.get('name', '')} - {options}" if options else parent.get("name", "")
            data["slug"] = parent.get("slug", "")
        data["variations"] = []
        data["_links"] = self._links(
            store,
            f"/products/{variation['id']}",
            "/products",
            up=f"/products/{variation.get('parent_id') or 0}",
        )
        return data

    def _product_by_id(
        self,
        store: Store,
        product_id: int,
        *,
        code: str = "woocommerce_rest_product_invalid_id",
        status: int = 404,
    ) -> dict:
        product = store.products.get(product_id)
        if product is None or product.get("type") == "variation":
            raise WooError(code, "Invalid ID.", status)
        return product

    def _products_list(self, store: Store, request: SandboxRequest, after) -> SandboxResponse:
        paging = self._paging(request)
        prefilter = None
        skus = _list_param(request, "sku")
        if skus:
            # With sku WooCommerce queries products and variations alike.
            prefilter = {store.sku_index[s] for s in skus if s in store.sku_index}
        orderbys = (
            "date",
            "id",
            "include",
            "title",
            "slug",
            "modified",
            "price",
            "popularity",
            "rating",
            "menu_order",
        )
        ids = self._select(store, request, "product", store.products, orderbys, prefilter)
        if skus:
            missing = [i for i in prefilter if i not in ids and store.products[i].get("type") == "variation"]
            ids = ids + sorted(missing, reverse=self._order_dir(request))
        filtered = self._filter_products(store, request, ids)
        return self._paged_response(
            store,
            request,
            filtered,
            lambda i: self._product_out(store, store.products[i]),
            "products",
            paging,
        )

    def _filter_products(self, store: Store, request: SandboxRequest, ids: list[int]) -> list[int]:
        status = request.arg("status") or "any"
        if status not in ("any", "future", "trash") + PRODUCT_STATUSES:
            raise _invalid_param(
                "status",
                "status is not one of any, future, trash, draft, pending, private, and publish.",
                "rest_not_in_enum",
            )
        ptype = request.arg("type")
        if ptype and ptype not in PRODUCT_TYPES:
            raise _invalid_param(
                "type", "type is not one of simple, grouped, external, and variable.", "rest_not_in_enum"
            )
        search = (request.arg("search") or "").lower()
        stock_status = request.arg("stock_status")
        parent = self._id_list(request, "parent")
        category = request.arg("category")
        on_sale = request.arg("on_sale")
        featured = request.arg("featured")
        min_price, max_price = request.arg("min_price"), request.arg("max_price")
        simple = (
            status == "any"
            and not ptype
            and not search
            and not stock_status
            and not parent
            and not category
            and on_sale is None
            and featured is None
            and not min_price
            and not max_price
        )
        items = [store.products[i] for i in ids]
        if simple:
            items = [p for p in items if p.get("status") != "trash"]
        else:
            out = []
            for p in items:
                pstatus = p.get("status")
                if (status == "any" and pstatus == "trash") or (status != "any" and pstatus != status):
                    continue
                if ptype and p.get("type") != ptype:
                    continue
                if search and search not in (p.get("name") or "").lower():
                    continue
                if stock_status and p.get("stock_status") != stock_status:
                    continue
                if parent and p.get("parent_id") not in parent:
                    continue
                if category and not any(str(c.get("id")) == category for c in p.get("categories", [])):
                    continue
                if on_sale is not None and bool(p.get("on_sale")) != _truthy(on_sale):
                    continue
                if featured is not None and bool(p.get("featured")) != _truthy(featured):
                    continue
                if min_price and _dec(p.get("price")) < _dec(min_price):
                    continue
                if max_price and _dec(p.get("price")) > _dec(max_price):
                    continue
                out.append(p)
            items = out
        return [p["id"] for p in self._date_filters(request, items)]

    def _product_get(self, store: Store, request: SandboxRequest, after) -> SandboxResponse:
        product = store.products.get(int(request.params["id"]))
        if product is None:
            raise WooError("woocommerce_rest_product_invalid_id", "Invalid ID.", 404)
        if product.get("type") == "variation":
            return wp_response(self._variation_as_product(store, product))
        return wp_response(self._product_out(store, product))

    def _check_sku(self, store: Store, sku: str, own_id: int) -> None:
        if not sku:
            return
        owner = store.sku_index.get(sku)
        if owner is not None and owner != own_id:
            suggestion, n = sku, 1
            while suggestion in store.sku_index:
                suggestion = f"{sku}-{n}"
                n += 1
            raise WooError(
                "product_invalid_sku",
                "Invalid or duplicated SKU.",
                400,
                resource_id=owner,
                unique_sku=suggestion,
            )

    def _apply_product_fields(self, store: Store, product: dict, data: dict) -> None:
        for key, value in data.items():
            if key not in PRODUCT_WRITABLE or key in SALE_DATES:
                continue
            if key in ("regular_price", "sale_price"):
                if value is None:  # `if ( isset( $request['sale_price'] ) )`: null leaves the price
                    continue
                value = value if isinstance(value, str) else _php_str(_dec(value))
            if key == "stock_quantity" and value is not None:
                value = int(_dec(value))
            if key == "meta_data":
                value = self._merge_meta(store, product.get("meta_data", []), value or [])
            if key == "parent_id" and product.get("type") == "variation":
                continue
            product[key] = value
        for key in SALE_DATES:
            value = data.get(key)
            if value is None:  # isset() is false for null: the sale window stays as it was
                continue
            # "" clears: set_date_on_sale_from( '' ), and for _gmt set_date_on_sale_from( null ).
            is_gmt = key.endswith("_gmt")
            local_key = key[:-4] if is_gmt else key
            product[local_key], product[local_key + "_gmt"] = _local_and_gmt(value, is_gmt=is_gmt)
        if product.get("type") == "variation" and data.get("tax_class") == "parent":
            parent = store.products.get(product.get("parent_id") or 0)
            product["tax_class"] = parent.get("tax_class", "") if parent else ""

    def _derive_product(self, store: Store, product: dict) -> None:
        """The read-only fields WooCommerce derives on save: price, on_sale, stock status."""
        now_gmt = _iso(store.now())
        if product.get("type") == "variable":
            children = [store.products[v] for v in product.get("variations", []) if v in store.products]
            prices = [_dec(c.get("price")) for c in children if c.get("price") not in ("", None)]
            product["price"] = _money(min(prices)) if prices else ""
            product["on_sale"] = any(c.get("on_sale") for c in children)
            product["purchasable"] = bool(prices)
            product["has_options"] = True
            if not product.get("manage_stock"):
                statuses = {c.get("stock_status") for c in children}
                product["stock_status"] = (
                    "instock"
                    if "instock" in statuses
                    else "onbackorder"
                    if "onbackorder" in statuses
                    else "outofstock"
                    if statuses
                    else product.get("stock_status", "instock")
                )
        else:
            regular, sale = product.get("regular_price") or "", product.get("sale_price") or ""
            starts, ends = product.get("date_on_sale_from_gmt"), product.get("date_on_sale_to_gmt")
            on_sale = (
                sale != ""
                and (regular == "" or _dec(sale) < _dec(regular))
                and (not starts or starts <= now_gmt)
                and (not ends or ends >= now_gmt)
            )
            product["on_sale"] = on_sale
            product["price"] = sale if on_sale else regular
            product["purchasable"] = product.get("price", "") != "" and product.get("status") != "trash"
        if product.get("manage_stock") is True:
            quantity = product.get("stock_quantity")
            if quantity is None:
                quantity = product["stock_quantity"] = 0
            backorders = product.get("backorders", "no")
            if quantity > 0:
                product["stock_status"] = "instock"
            else:
                product["stock_status"] = "onbackorder" if backorders in ("yes", "notify") else "outofstock"
        elif product.get("manage_stock") is False:
            product["stock_quantity"] = None
        allowed = product.get("backorders", "no") in ("yes", "notify")
        product["backorders_allowed"] = allowed
        product["backordered"] = bool(
            product.get("manage_stock") is True and allowed and (product.get("stock_quantity") or 0) < 0
        )

    def _product_create_item(self, store: Store, data: dict, *, parent: dict | None = None) -> dict:
        if not isinstance(data, dict):
            raise WooError("rest_invalid_param", "Invalid parameter(s): item", 400)
        if parent is None and data.get("type", "simple") not in PRODUCT_TYPES:
            raise _invalid_param(
                "type", "type is not one of simple, grouped, external, and variable.", "rest_not_in_enum"
            )
        self._check_sku(store, data.get("sku") or "", 0)
        product_id = store.next_id("post")
        local, gmt = store.stamp()
        if parent is None:
            product = json.loads(json.dumps(PRODUCT_TEMPLATE))
        else:
            product = json.loads(json.dumps(VARIATION_TEMPLATE))
            product["parent_id"] = parent["id"]
            product["tax_class"] = parent.get("tax_class", "")
        product.update(
            {
                "id": product_id,
                "date_created": local,
                "date_created_gmt": gmt,
                "date_modified": local,
                "date_modified_gmt": gmt,
            }
        )
        self._apply_product_fields(store, product, data)
        if parent is None:
            product["name"] = data.get("name") or "Product"
            product["slug"] = data.get("slug") or _slugify(product["name"])
            product["permalink"] = f"{store.home()}/product/{product['slug']}/"
        else:
            options = [str(a.get("option", "")) for a in product.get("attributes", [])]
            product["name"] = ", ".join(options)
            query = "&".join(
                f"attribute_{a.get('slug') or 'pa_' + _slugify(str(a.get('name', '')))}="
                f"{_slugify(str(a.get('option', '')))}"
                for a in product.get("attributes", [])
            )
            product["permalink"] = parent.get("permalink", "") + (f"?{query}" if query else "")
        self._derive_product(store, product)
        store.products[product_id] = product
        store.index_sku(product)
        if parent is not None:
            parent.setdefault("variations", []).append(product_id)
            self._derive_product(store, parent)
            self._touch_product(store, parent)
            self._fire(store, "product.created", product_id)
        else:
            self._fire(store, "product.created", product_id)
        store.touch()
        self.changed()
        return product

    def _touch_product(self, store: Store, product: dict) -> None:
        product["date_modified"], product["date_modified_gmt"] = store.stamp()
        store.touch()

    def _product_update_item(self, store: Store, product: dict, data: dict) -> dict:
        if "sku" in data:
            self._check_sku(store, data.get("sku") or "", product["id"])
        if product.get("type") != "variation" and "type" in data and data["type"] not in PRODUCT_TYPES:
            raise _invalid_param(
                "type", "type is not one of simple, grouped, external, and variable.", "rest_not_in_enum"
            )
        store.unindex_sku(product)
        self._apply_product_fields(store, product, data)
        store.index_sku(product)
        self._derive_product(store, product)
        self._touch_product(store, product)
        self._fire(store, "product.updated", product["id"])
        parent = (
            store.products.get(product.get("parent_id") or 0) if product.get("type") == "variation" else None
        )
        if parent is not None:
            self._derive_product(store, parent)
        self.changed()
        return product

    def _product_delete_item(self, store: Store, product: dict, force: bool) -> dict:
        out = self._product_out(store, product)
        if not force:
            if product.get("status") == "trash":
                raise WooError(
                    "woocommerce_rest_already_trashed", "The product has already been deleted.", 410
                )
            store.unindex_sku(product)
            product["status"] = "trash"
            self._touch_product(store, product)
            out = self._product_out(store, product)
        else:
            store.unindex_sku(product)
            del store.products[product["id"]]
            for child in product.get("variations", []):
                variation = store.products.pop(child, None)
                if variation:
                    store.unindex_sku(variation)
            self._lines_lose_products(store, {product["id"], *product.get("variations", [])})
        self._fire(store, "product.deleted", product["id"])
        store.touch()
        self.changed()
        return out

    def _product_create(self, store: Store, request: SandboxRequest, after) -> SandboxResponse:
        product = self._product_create_item(store, self._body(request))
        location = f"{store.home()}{REST_BASE}/products/{product['id']}"
        return wp_response(self._product_out(store, product), 201, [("Location", location)])

    def _product_update(self, store: Store, request: SandboxRequest, after) -> SandboxResponse:
        product = self._product_by_id(store, int(request.params["id"]), status=400)
        return wp_response(
            self._product_out(store, self._product_update_item(store, product, self._body(request)))
        )

    def _product_delete(self, store: Store, request: SandboxRequest, after) -> SandboxResponse:
        product = self._product_by_id(store, int(request.params["id"]))
        return wp_response(self._product_delete_item(store, product, _truthy(request.arg("force"))))

    def _products_batch(self, store: Store, request: SandboxRequest, after) -> SandboxResponse:
        def update(item_id, item):
            product = self._product_by_id(store, item_id, status=400)
            return self._product_out(store, self._product_update_item(store, product, item))

        def delete(item_id):
            return self._product_delete_item(store, self._product_by_id(store, item_id), True)

        return self._batch(
            store,
            request,
            lambda d: self._product_out(store, self._product_create_item(store, d)),
            update,
            delete,
        )

    # -- stock --
    def _adjust_stock(self, store: Store, product_id: int, delta: int) -> None:
        product = store.products.get(product_id)
        if product is None or product.get("manage_stock") is not True:
            return
        product["stock_quantity"] = int(product.get("stock_quantity") or 0) + delta
        self._derive_product(store, product)
        self._touch_product(store, product)
        self._fire(store, "product.updated", product_id)
        parent = (
            store.products.get(product.get("parent_id") or 0) if product.get("type") == "variation" else None
        )
        if parent is not None:
            self._derive_product(store, parent)

    @staticmethod
    def _stock_product_id(item: dict) -> int:
        return int(item.get("variation_id") or item.get("product_id") or 0)
