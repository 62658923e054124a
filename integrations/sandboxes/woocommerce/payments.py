"""Payment plugins that capture when an order is completed: Klarna, Nexi Checkout, Svea Checkout.

Each plugin hooks ``woocommerce_order_status_completed``, so the capture runs inside the request
that completes the order (``orders.py``'s ``_set_status`` calls ``_payment_plugins_on_completed``
after the order is saved and before the transition note). A failure that moves the order to
``on-hold`` goes through the same status path, so the REST answer already says ``on-hold``.
The provider's side of each order (authorization, captures, fraud status) is kept in
``store.payments``; ``GET {prefix}/_sandbox/payments`` shows it, so a test can count captures.

Follows ``shared/docs/payments-and-tracking.md`` §1-§5 and §8, and the plugins' sources:
- Klarna: ``krokedil/klarna-payments-for-woocommerce`` ``src/OrderManagement.php:capture_klarna_order``
  (KP, gateway ``klarna_payments``; its notes for auto-capture off and ``_kom_disconnect``) and
  ``krokedil/klarna-checkout-for-woocommerce`` ``src/OrderManagement/OrderManagement.php`` (KCO,
  gateway ``kco``, notes say "Kustom", no note for those two cases); the decision table of §2.2,
  the success note with ``get_formatted_order_total( '', false )`` (``wc_price`` HTML), the
  "higher than the remaining authorized amount" rewrite with ``remaining_authorized_amount / 100``;
- Nexi: ``krokedil/dibs-easy-for-woocommerce`` ``classes/class-nets-easy-order-management.php``
  (``dibs_order_completed``, ``charge_failed``, ``fetching_order_failed``, ``is_completed``), hooked
  only when ``dibs_manage_orders`` is ``yes`` (default ``no``); errors from
  ``class-nets-easy-request.php:process_response`` (each JSON error value prefixed by a space, so
  "Unable to activate the order!" is followed by two spaces);
- Svea: ``svea-checkout-for-woocommerce`` 3.0.7 ``inc/WC_Gateway_Svea_Checkout.php:deliver_order``
  (failures keep ``completed``; success and "already delivered" notes translated on sv_SE sites).

Invented here (not the providers' real values): the Nexi charge id (32 hex chars), the Klarna
capture id (a UUID4, lower case as ``sanitize_key`` leaves it), and the providers' error texts
except Klarna's over-amount message, whose wording the plugins' ``str_replace`` gives away.
Scenarios (``_sandbox_capture`` order meta, or ``POST {prefix}/_sandbox/orders/<id>/payment``):
ok, pending_review, api_error, get_error, already_captured_remote, cancelled_remote, expired,
over_authorized, timeout (the capture reaches the provider but the answer times out).
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime, timezone
from decimal import ROUND_HALF_UP, Decimal

from ..http import SandboxRequest, SandboxResponse, json_response
from .common import CENT, ZERO, WooError, _dec, _money, _php_number
from .store import Store

KLARNA_GATEWAYS = ("klarna_payments", "kco")
# nets_easy_all_payment_method_ids() (NEXI includes/nets-easy-functions.php)
NEXI_GATEWAYS = (
    "dibs_easy",
    "nets_easy_card",
    "nets_easy_swish",
    "nets_easy_klarna",
    "nets_easy_mobilepay",
    "nets_easy_vipps",
    "nets_easy_trustly",
    "nets_easy_sofort",
    "nets_easy_ratepay_sepa",
)
SVEA_GATEWAYS = ("svea_checkout",)
SCENARIOS = (
    "ok",
    "pending_review",
    "api_error",
    "get_error",
    "already_captured_remote",
    "cancelled_remote",
    "expired",
    "over_authorized",
    "timeout",
)
SCENARIO_META = "_sandbox_capture"

# Provider answers [invented, except Klarna's over-amount text].
KLARNA_OVER_AMOUNT_START = "Captured amount is higher than the remaining authorized amount."
KLARNA_OVER_AMOUNT = KLARNA_OVER_AMOUNT_START + " Capture not possible."
ERRORS = {
    "klarna": {
        "api_error": "API Error 503",  # KOM's text when Klarna's answer has no error_messages
        "expired": "Capture not allowed. The authorization has expired.",
        "cancelled": "Capture not allowed. The order is cancelled.",
        "over": KLARNA_OVER_AMOUNT,
    },
    # process_response joins every JSON error value with a leading space; a non-JSON answer gives
    # "API Error <code>, message : <reason>".
    "nexi": {
        "api_error": "API Error 503, message : Service Unavailable",
        "expired": " The reservation has expired.",
        "cancelled": " The payment is cancelled.",
        "over": " Charge amount exceeds the reserved amount.",
    },
    "svea": {
        "api_error": "Service Unavailable",
        "expired": "The order can not be delivered: the reservation has expired.",
        "cancelled": "The order can not be delivered: the order is cancelled.",
        "over": "",
    },
}
TIMEOUT_ERROR = "cURL error 28: Operation timed out after 10001 milliseconds with 0 bytes received"

SVEA_NOTES = {
    "en_US": ("Order was delivered in Svea.", "Order is already delivered in Svea. No action needed."),
    # SVEA languages/svea-checkout-for-woocommerce-sv_SE.po
    "sv_SE": ("Ordern blev levererad i Svea.", "Ordern är redan levererad i Svea. Ingen handling krävs."),
}

# get_woocommerce_currency_symbol(): the symbols as WooCommerce stores them (HTML entities).
CURRENCY_SYMBOLS = {
    "SEK": "&#107;&#114;",
    "NOK": "&#107;&#114;",
    "DKK": "&#107;&#114;&#46;",
    "EUR": "&euro;",
    "USD": "&#36;",
    "GBP": "&pound;",
}


def provider_of(order: dict) -> str | None:
    method = order.get("payment_method") or ""
    if method in KLARNA_GATEWAYS:
        return "klarna"
    if method in NEXI_GATEWAYS:
        return "nexi"
    if method in SVEA_GATEWAYS:
        return "svea"
    return None


def _utc_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _php_amount(value: Decimal) -> str:
    """``remaining_authorized_amount / 100`` echoed by PHP: ``1000`` or ``1234.5``."""
    return str(_php_number(value.normalize()))


def wc_price(store: Store, amount, currency: str) -> str:
    """``wc_price()`` for the store's price settings (2 decimals, ``right_space``), as in the WooCommerce 11
    fixtures' ``price_html``: ``<span class="woocommerce-Price-amount amount"><bdi>1299,00&nbsp;<span
    class="woocommerce-Price-currencySymbol" translate="no">&#107;&#114;</span></bdi></span>``."""
    value = _dec(amount).quantize(CENT, rounding=ROUND_HALF_UP)
    negative = value < 0
    whole, _, fraction = f"{abs(value):.2f}".partition(".")
    separator = store.settings.get("price_thousand_sep", "")
    if separator:
        groups = []
        while len(whole) > 3:
            groups.insert(0, whole[-3:])
            whole = whole[:-3]
        whole = separator.join([whole] + groups)
    number = f"{whole}{store.settings.get('price_decimal_sep', ',')}{fraction}"
    symbol = CURRENCY_SYMBOLS.get(currency, currency)
    return (
        f'<span class="woocommerce-Price-amount amount"><bdi>{"-" if negative else ""}{number}&nbsp;'
        f'<span class="woocommerce-Price-currencySymbol" translate="no">{symbol}</span></bdi></span>'
    )


class PaymentsMixin:
    """The payment plugins' order management, and the providers' side of each order."""

    # -- order meta, as the plugins read and write it --
    @staticmethod
    def _meta_value(order: dict, key: str):
        return next((m.get("value") for m in order.get("meta_data", []) if m.get("key") == key), None)

    def _meta_update(self, store: Store, order: dict, key: str, value) -> None:
        """``$order->update_meta_data( $key, $value )``: the first entry with that key, else a new one."""
        meta = next((m for m in order.setdefault("meta_data", []) if m.get("key") == key), None)
        if meta is None:
            order["meta_data"].append({"id": store.next_id("meta"), "key": key, "value": value})
        else:
            meta["value"] = value

    def _plugin_note(self, store: Store, order: dict, text: str) -> None:
        self._add_note(store, order["id"], text, customer_note=False, author="system")

    def _plugin_on_hold(self, store: Store, order: dict, note: str = "") -> None:
        """``$order->update_status( 'on-hold', $note )`` from inside the completed hook."""
        self._set_status(store, order, "on-hold", by="plugin", note=note)

    # -- the provider's side --
    def _payment_authorized(self, store: Store, order: dict) -> dict | None:
        """The authorization the provider holds, made with the order's total when it is marked paid."""
        return self._payment_remote(store, order, total=order.get("total"))

    def _payment_remote(self, store: Store, order: dict, total=None) -> dict | None:
        provider = provider_of(order)
        if provider is None:
            return None
        remote = store.payments.get(order["id"])
        if remote is None or remote.get("provider") != provider:  # paid anew with another gateway
            # Authorized at checkout: lazily, with the total the order was created with.
            amount = _dec(
                total if total is not None else order.get("__total_at_creation", order.get("total"))
            )
            remote = {
                "provider": provider,
                "order_id": order["id"],
                "currency": order.get("currency") or "SEK",
                "authorized": _money(amount),
                "authorized_at": _utc_iso(),
                "captures": [],
                "fraud_status": "ACCEPTED",
                "status": "AUTHORIZED",
                "scenario": None,
                "applied": None,
                "error_message": None,
            }
            store.payments[order["id"]] = remote
            self._payment_apply_scenario(store, order, remote)
        return remote

    def _payment_scenario(self, order: dict, remote: dict) -> str:
        scenario = remote.get("scenario") or self._meta_value(order, SCENARIO_META) or "ok"
        return scenario if scenario in SCENARIOS else "ok"

    def _payment_apply_scenario(self, store: Store, order: dict, remote: dict) -> None:
        """Turn a scenario into the provider's state, once per scenario (so a later control change, e.g.
        ``fraud_status: ACCEPTED`` after a review, sticks)."""
        scenario = self._payment_scenario(order, remote)
        if remote.get("applied") == scenario:
            return
        remote["applied"] = scenario
        if scenario == "pending_review":
            remote["fraud_status"] = "PENDING"
        elif scenario == "cancelled_remote":
            remote["status"] = "CANCELLED"
        elif scenario == "expired":
            remote["status"] = "EXPIRED"
        elif scenario == "already_captured_remote":
            # Captured in the provider's portal, outside WooCommerce.
            remaining = self._payment_remaining(remote)
            if remaining > 0:
                self._payment_record_capture(remote, remaining)
        elif scenario == "over_authorized":
            # The provider holds less than the order's total [invented: one krona less].
            remote["authorized"] = _money(max(ZERO, _dec(order.get("total")) - 1))

    @staticmethod
    def _payment_remaining(remote: dict) -> Decimal:
        captured = sum((_dec(c["amount"]) for c in remote["captures"]), ZERO)
        return _dec(remote["authorized"]) - captured

    @staticmethod
    def _payment_record_capture(remote: dict, amount: Decimal) -> dict:
        if remote["provider"] == "nexi":
            capture_id = hashlib.md5(uuid.uuid4().bytes).hexdigest()  # 32 hex chars [invented]
        else:
            capture_id = str(uuid.uuid4())  # Klarna's Capture-ID header is UUID-shaped
        capture = {"id": capture_id, "amount": _money(amount), "at": _utc_iso()}
        remote["captures"].append(capture)
        captured = sum((_dec(c["amount"]) for c in remote["captures"]), ZERO)
        remote["status"] = "CAPTURED" if captured >= _dec(remote["authorized"]) else "PART_CAPTURED"
        return capture

    def _payment_capture(self, order: dict, remote: dict, amount: Decimal) -> tuple[dict | None, str | None]:
        """One capture request (Klarna capture, Nexi charge, Svea delivery): (capture, error message)."""
        provider = remote["provider"]
        scenario = self._payment_scenario(order, remote)
        errors = ERRORS[provider]
        if scenario == "api_error":
            return None, remote.get("error_message") or errors["api_error"]
        if remote["status"] == "EXPIRED":
            return None, remote.get("error_message") or errors["expired"]
        if remote["status"] == "CANCELLED":
            return None, remote.get("error_message") or errors["cancelled"]
        remaining = self._payment_remaining(remote)
        if amount > remaining:
            return None, errors["over"]
        capture = self._payment_record_capture(remote, amount)
        if scenario == "timeout":
            # The provider took the capture; the plugin's request timed out before the answer came.
            return None, TIMEOUT_ERROR
        return capture, None

    # -- woocommerce_order_status_completed --
    def _payment_plugins_on_completed(self, store: Store, order: dict) -> None:
        provider = provider_of(order)
        if provider is None or not store.has_plugin(provider):
            return
        {"klarna": self._klarna_capture, "nexi": self._nexi_charge, "svea": self._svea_deliver}[provider](
            store, order
        )

    def _klarna_capture(self, store: Store, order: dict) -> None:
        """``capture_klarna_order``: first match wins (doc §2.2)."""
        kco = order.get("payment_method") == "kco"
        brand = "Kustom" if kco else "Klarna"
        if store.payment_settings.get("kom_auto_capture", "yes") != "yes":
            if not kco:
                self._plugin_note(
                    store,
                    order,
                    "Klarna capture request was not sent because order management is disabled for capture.",
                )
            return
        if self._meta_value(order, "_kom_disconnect"):
            if not kco:
                self._plugin_note(
                    store,
                    order,
                    "Klarna capture request was not sent because order management is "
                    "disabled for this order.",
                )
            return
        if not order.get("date_paid"):
            return
        if self._meta_value(order, "_wc_klarna_capture_id"):
            self._plugin_note(store, order, f"{brand} order has already been captured.")
            return
        if not self._meta_value(order, "_wc_klarna_order_id") and not order.get("transaction_id"):
            self._plugin_on_hold(
                store,
                order,
                f"{brand} order ID is missing, {brand} order could not be captured at this time.",
            )
            return
        remote = self._payment_remote(store, order)
        self._payment_apply_scenario(store, order, remote)
        if self._payment_scenario(order, remote) == "get_error":
            self._plugin_on_hold(store, order, f"{brand} order could not be captured due to an error.")
            return
        if remote["fraud_status"] == "PENDING":
            self._plugin_on_hold(
                store, order, f"{brand} order is pending review and could not be captured at this time."
            )
            return
        if remote["status"] == "CAPTURED":
            first = remote["captures"][0] if remote["captures"] else {"id": "", "at": ""}
            self._plugin_note(store, order, f"{brand} order has already been captured on {first['at']}")
            self._meta_update(store, order, "_wc_klarna_capture_id", first["id"])
            self._touch_order(store, order)
            return
        if remote["status"] == "CANCELLED":
            self._plugin_note(
                store, order, f"{brand} order failed to capture, the order has already been canceled"
            )
            return
        if remote["fraud_status"] != "ACCEPTED":
            self._plugin_note(store, order, f"{brand} order could not be captured at this time.")
            return
        remaining = self._payment_remaining(remote)  # remaining_authorized_amount of the GET before capturing
        capture, error = self._payment_capture(order, remote, _dec(order.get("total")))
        if capture is not None:
            amount = wc_price(store, order.get("total"), order.get("currency") or remote["currency"])
            self._plugin_note(
                store, order, f"{brand} order captured. Capture amount: {amount}. Capture ID: {capture['id']}"
            )
            self._meta_update(store, order, "_wc_klarna_capture_id", capture["id"])
            self._touch_order(store, order)
            return
        if KLARNA_OVER_AMOUNT_START in error:
            error = error.replace(
                ". Capture not possible.", f": {_php_amount(remaining)} {remote['currency']}."
            )
        self._plugin_on_hold(store, order, f"Could not capture {brand} order. {error}")

    def _nexi_charge(self, store: Store, order: dict) -> None:
        """``dibs_order_completed``, hooked only with ``dibs_manage_orders`` = yes (doc §3.2)."""
        if store.payment_settings.get("dibs_manage_orders", "no") != "yes":
            return
        if not self._meta_value(order, "_dibs_date_paid"):
            return
        if self._meta_value(order, "_dibs_charge_id"):
            return
        if self._meta_value(order, "dibs_payment_type") == "A2A":
            method = self._meta_value(order, "dibs_payment_method") or ""
            self._plugin_note(
                store,
                order,
                f"No charge needed in Nexi system since {method} is a account to account payment.",
            )
            return
        if _dec(order.get("total")).quantize(CENT) == 0:
            self._plugin_note(
                store,
                order,
                f"No charge needed in Nexi system since the order total is {order.get('total')}.",
            )
            return
        payment_id = self._meta_value(order, "_dibs_payment_id")
        if not payment_id:
            # fetching_order_failed: the note, then update_status( 'on-hold' ) (a separate transition note).
            self._plugin_note(
                store,
                order,
                "Nexi Error: No payment ID found in the order completed request for "
                f"WooCommerce order number: {order.get('number') or order['id']}",
            )
            self._plugin_on_hold(store, order)
            return
        remote = self._payment_remote(store, order)
        self._payment_apply_scenario(store, order, remote)
        if self._payment_scenario(order, remote) == "get_error":
            self._plugin_note(
                store, order, f"Nexi Error: {remote.get('error_message') or ERRORS['nexi']['api_error']}"
            )
            self._plugin_on_hold(store, order)
            return
        if remote["captures"]:
            charge_id = remote["captures"][0]["id"]
            self._meta_update(store, order, "_dibs_charge_id", charge_id)
            method = self._meta_value(order, "dibs_payment_method") or "Visa"
            self._plugin_note(
                store,
                order,
                f"Payment charged in Nexi ( Portal ) with Payment ID {payment_id}. "
                f"Payment type - {method}. Charge ID {charge_id}.",
            )
            self._touch_order(store, order)
            return
        capture, error = self._payment_capture(order, remote, _dec(order.get("total")))
        if capture is None:
            self._plugin_note(store, order, f"Nexi Error: Unable to activate the order! {error}")
            self._plugin_on_hold(store, order)
            return
        self._plugin_note(store, order, f"Payment charged in Nexi with charge ID {capture['id']}")
        self._meta_update(store, order, "_dibs_charge_id", capture["id"])
        self._touch_order(store, order)

    def _svea_deliver(self, store: Store, order: dict) -> None:
        """``WC_Gateway_Svea_Checkout::deliver_order``, hooked with ``sync_order_completion`` = yes (doc §4.2)."""
        if store.payment_settings.get("sync_order_completion", "yes") != "yes":
            return
        if not self._meta_value(order, "_svea_co_order_id"):
            return
        remote = self._payment_remote(store, order)
        self._payment_apply_scenario(store, order, remote)
        if self._payment_scenario(order, remote) == "get_error":
            return  # the plugin only logs "Error when getting order from Svea."
        delivered, already = SVEA_NOTES.get(store.settings.get("language"), SVEA_NOTES["en_US"])
        if remote["status"] == "CAPTURED":
            self._plugin_note(store, order, already)
            return
        # Svea delivers the rows it holds (REST changes never reach it): the authorized amount, not
        # the order's total now (doc §4.3).
        capture, error = self._payment_capture(order, remote, self._payment_remaining(remote))
        if capture is None:
            # The error note has no text domain: English on every site. The order stays completed.
            self._plugin_note(store, order, f"Error received when trying to deliver order in Svea: {error}")
            return
        self._plugin_note(store, order, delivered)
        local, _gmt = store.stamp()
        self._meta_update(store, order, "_svea_co_deliver_date", local.replace("T", " "))
        self._touch_order(store, order)

    # -- controls --
    def _ctl_payment(self, store: Store, request: SandboxRequest) -> SandboxResponse:
        """``POST {prefix}/_sandbox/orders/<id>/payment``: change what the provider holds for one order:
        ``scenario``, ``fraud_status``, ``status``, ``authorized``, ``error_message``."""
        order = self._order_by_id(store, int(request.params["oid"]))
        if provider_of(order) is None:
            raise WooError(
                "sandbox_no_payment_provider",
                f"payment method {order.get('payment_method')!r} has no provider in the sandbox",
                400,
            )
        data = request.json() or {}
        remote = self._payment_remote(store, order)
        if "scenario" in data:
            if data["scenario"] not in SCENARIOS:
                raise WooError(
                    "sandbox_invalid_scenario", f"scenario must be one of {', '.join(SCENARIOS)}", 400
                )
            remote["scenario"] = data["scenario"]
            self._payment_apply_scenario(store, order, remote)
        if "fraud_status" in data:
            if data["fraud_status"] not in ("ACCEPTED", "PENDING", "REJECTED"):
                raise WooError(
                    "sandbox_invalid_fraud_status", "fraud_status must be ACCEPTED, PENDING or REJECTED", 400
                )
            remote["fraud_status"] = data["fraud_status"]
        if "status" in data:
            if data["status"] not in ("AUTHORIZED", "CAPTURED", "PART_CAPTURED", "CANCELLED", "EXPIRED"):
                raise WooError(
                    "sandbox_invalid_status",
                    "status must be AUTHORIZED, CAPTURED, PART_CAPTURED, CANCELLED or EXPIRED",
                    400,
                )
            remote["status"] = data["status"]
        if "authorized" in data:
            remote["authorized"] = _money(_dec(data["authorized"]))
        if "error_message" in data:
            remote["error_message"] = data["error_message"] or None
        self.changed()
        return json_response(remote)

    def _ctl_payments(self, store: Store, request: SandboxRequest) -> SandboxResponse:
        """``GET {prefix}/_sandbox/payments[?order_id=]``: the provider's side of every order."""
        wanted = request.arg("order_id")
        return json_response(
            {
                "payments": {
                    str(k): v for k, v in sorted(store.payments.items()) if not wanted or str(k) == wanted
                }
            }
        )
