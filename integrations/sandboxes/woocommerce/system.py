"""The store as a whole: system status, general settings, taxes, reports.

Follows, in ``woocommerce/woocommerce`` (``plugins/woocommerce/``):
- ``includes/rest-api/Controllers/Version3/class-wc-rest-system-status-controller.php``
  (``environment``, ``database``, ``settings``, ``security``; the version to check before using
  ``modified_after``);
- ``includes/rest-api/Controllers/Version3/class-wc-rest-setting-options-controller.php``
  (``/settings/general``), ``class-wc-rest-taxes-controller.php``,
  ``class-wc-rest-tax-classes-controller.php``;
- ``includes/rest-api/Controllers/Version3/class-wc-rest-report-orders-totals-controller.php``
  (every registered order status, custom ones too).
"""

from __future__ import annotations

import hashlib

from ..http import SandboxRequest, SandboxResponse
from .common import REST_BASE, WP_VERSION, wp_response
from .store import Store

GENERAL_SETTINGS = {
    "woocommerce_store_address": "Drottninggatan 10",
    "woocommerce_store_address_2": "",
    "woocommerce_store_city": "Stockholm",
    "woocommerce_default_country": "SE",
    "woocommerce_store_postcode": "111 51",
    "woocommerce_allowed_countries": "all",
    "woocommerce_all_except_countries": "",
    "woocommerce_specific_allowed_countries": "",
    "woocommerce_ship_to_countries": "",
    "woocommerce_specific_ship_to_countries": "",
    "woocommerce_default_customer_address": "base",
    "woocommerce_calc_taxes": "yes",
    "woocommerce_enable_coupons": "yes",
    "woocommerce_calc_discounts_sequentially": "no",
    "woocommerce_currency": "SEK",
    "woocommerce_currency_pos": "right_space",
    "woocommerce_price_thousand_sep": "",
    "woocommerce_price_decimal_sep": ",",
    "woocommerce_price_num_decimals": "2",
}
SETTING_LABELS = {
    "woocommerce_store_address": ("Address line 1", "text"),
    "woocommerce_store_city": ("City", "text"),
    "woocommerce_default_country": ("Country / State", "select"),
    "woocommerce_currency": ("Currency", "select"),
    "woocommerce_calc_taxes": ("Enable taxes", "checkbox"),
    "woocommerce_price_num_decimals": ("Number of decimals", "number"),
}


class SystemMixin:
    """System status, general settings, taxes and the order totals report."""

    def _system_status(self, store: Store, request: SandboxRequest, after) -> SandboxResponse:
        home = store.home()
        data = {
            "environment": {
                "home_url": home,
                "site_url": home,
                "store_id": hashlib.md5(home.encode()).hexdigest(),
                "version": store.settings["version"],
                "log_directory": "/var/www/html/wp-content/uploads/wc-logs/",
                "log_directory_writable": True,
                "wp_version": WP_VERSION,
                "wp_multisite": False,
                "wp_memory_limit": 268435456,
                "wp_debug_mode": False,
                "wp_cron": True,
                "language": "sv_SE",
                "external_object_cache": None,
                "server_info": "Apache/2.4",
                "php_version": "8.2.36",
                "php_post_max_size": 8388608,
                "php_max_execution_time": 30,
                "php_max_input_vars": 1000,
                "curl_version": "8.5.0, OpenSSL/3.0.13",
                "suhosin_installed": False,
                "max_upload_size": 2097152,
                "mysql_version": "10.11",
                "mysql_version_string": "10.11-MariaDB",
                "default_timezone": "UTC",
                "fsockopen_or_curl_enabled": True,
                "soapclient_enabled": True,
                "domdocument_enabled": True,
                "gzip_enabled": True,
                "mbstring_enabled": True,
                "remote_post_successful": True,
                "remote_post_response": 200,
                "remote_get_successful": True,
                "remote_get_response": 200,
            },
            "database": {"wc_database_version": store.settings["version"], "database_prefix": "wp_"},
            "active_plugins": [
                {
                    "plugin": "woocommerce/woocommerce.php",
                    "name": "WooCommerce",
                    "version": store.settings["version"],
                    "author_name": "Automattic",
                }
            ],
            "theme": {"name": "Storefront", "version": "4.6.1"},
            "settings": {
                "api_enabled": True,
                "force_ssl": False,
                "currency": store.settings["currency"],
                "currency_symbol": "&#107;&#114;",
                "currency_position": "right_space",
                "thousand_separator": "",
                "decimal_separator": ",",
                "number_of_decimals": 2,
                "geolocation_enabled": False,
                "taxonomies": {
                    "external": "external",
                    "grouped": "grouped",
                    "simple": "simple",
                    "variable": "variable",
                },
                "product_visibility_terms": {
                    "exclude-from-catalog": "exclude-from-catalog",
                    "exclude-from-search": "exclude-from-search",
                    "featured": "featured",
                    "outofstock": "outofstock",
                },
                "woocommerce_com_connected": "no",
                "enforce_approved_download_dirs": True,
                "order_datastore": "Automattic\\WooCommerce\\Internal\\DataStores\\Orders\\OrdersTableDataStore",
                "HPOS_enabled": True,
                "HPOS_sync_enabled": False,
            },
            "security": {"secure_connection": request.scheme == "https", "hide_errors": True},
            "pages": [],
            "post_type_counts": [{"type": "product", "count": str(len(store.products))}],
        }
        return wp_response(data)

    def _settings_general(self, store: Store, request: SandboxRequest, after) -> SandboxResponse:
        values = dict(GENERAL_SETTINGS)
        values["woocommerce_currency"] = store.settings["currency"]
        out = []
        for key, value in values.items():
            label, kind = SETTING_LABELS.get(
                key, (key.replace("woocommerce_", "").replace("_", " ").capitalize(), "text")
            )
            out.append(
                {
                    "id": key,
                    "label": label,
                    "description": "",
                    "type": kind,
                    "default": "",
                    "tip": "",
                    "value": value,
                    "_links": {
                        "self": [{"href": f"{store.home()}{REST_BASE}/settings/general/{key}"}],
                        "collection": [{"href": f"{store.home()}{REST_BASE}/settings/general"}],
                    },
                }
            )
        return wp_response(out)

    def _taxes_list(self, store: Store, request: SandboxRequest, after) -> SandboxResponse:
        paging = self._paging(request)
        tax_class = request.arg("class")
        rates = {r["id"]: r for r in store.tax_rates if not tax_class or r.get("class") == tax_class}

        def render(rate_id):
            r = rates[rate_id]
            return {
                "id": r["id"],
                "country": r.get("country", "SE"),
                "state": r.get("state", ""),
                "postcode": "",
                "city": "",
                "rate": r["rate"],
                "name": r["name"],
                "priority": r.get("priority", 1),
                "compound": bool(r.get("compound", False)),
                "shipping": bool(r.get("shipping")),
                "order": r.get("order", 0),
                "class": r.get("class", "standard"),
                "postcodes": [],
                "cities": [],
                "_links": self._links(store, f"/taxes/{r['id']}", "/taxes"),
            }

        return self._paged_response(store, request, sorted(rates), render, "taxes", paging)

    def _tax_classes_list(self, store: Store, request: SandboxRequest, after) -> SandboxResponse:
        return wp_response(
            [
                {**c, "_links": {"collection": [{"href": f"{store.home()}{REST_BASE}/taxes/classes"}]}}
                for c in store.tax_classes
            ]
        )

    def _report_order_totals(self, store: Store, request: SandboxRequest, after) -> SandboxResponse:
        """``WC_REST_Report_Orders_Totals_Controller``: every registered status, custom ones too."""
        counts: dict[str, int] = {}
        for order in store.orders.values():
            counts[order.get("status")] = counts.get(order.get("status"), 0) + 1
        return wp_response(
            [
                {"slug": slug, "name": name, "total": counts.get(slug, 0)}
                for slug, name in store.order_statuses()
            ]
        )
