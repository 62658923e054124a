"""Webhooks: ``/webhooks`` CRUD, the delivery queue, the delivery itself, signatures, disabling.

Follows, in ``woocommerce/woocommerce`` (``plugins/woocommerce/``):
- ``includes/rest-api/Controllers/Version3/class-wc-rest-webhooks-controller.php`` (and v2):
  topics, ``delivery_url``, write-only ``secret``, the ping after create;
- ``includes/class-wc-webhook.php``: ``get_default_topic_hooks`` (which hooks fire which topic),
  ``deliver`` (headers, ``X-WC-Webhook-Delivery-ID``, payload built at send time as the REST
  representation, ``{"id"}`` for ``deleted``), ``generate_signature`` (base64 HMAC-SHA256 over
  the exact bytes), ``deliver_ping`` (form-encoded, unsigned), ``log_delivery`` /
  ``failed_delivery`` (200-302 is success; more than ``woocommerce_max_webhook_delivery_failures``
  failures in a row disables);
- ``includes/wc-webhook-functions.php``: ``wc_webhook_process_delivery`` /
  ``wc_load_webhooks`` (queued on shutdown, one pending delivery per webhook and resource, sent
  later by Action Scheduler, never retried).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import logging
import re
import secrets
import threading
import time
from datetime import datetime, timezone
from urllib.parse import urlsplit

from ..http import SandboxRequest, SandboxResponse
from .common import (
    REST_BASE,
    WC_VERSION,
    WP_VERSION,
    WooError,
    _invalid_param,
    _iso,
    _truthy,
    wp_json,
    wp_response,
)
from .store import Store

logger = logging.getLogger(__name__)

MAX_WEBHOOK_FAILURES = 5  # woocommerce_max_webhook_delivery_failures: the 7th failure in a row disables
DELIVERY_LOG_LIMIT = 2000

WEBHOOK_TOPIC_HOOKS = {
    "coupon.created": ["woocommerce_process_shop_coupon_meta", "woocommerce_new_coupon"],
    "coupon.updated": ["woocommerce_process_shop_coupon_meta", "woocommerce_update_coupon"],
    "coupon.deleted": ["wp_trash_post"],
    "coupon.restored": ["untrashed_post"],
    "customer.created": ["user_register", "woocommerce_created_customer", "woocommerce_new_customer"],
    "customer.updated": ["profile_update", "woocommerce_update_customer"],
    "customer.deleted": ["delete_user"],
    "customer.restored": [],
    "order.created": ["woocommerce_new_order"],
    "order.updated": [
        "woocommerce_update_order",
        "woocommerce_order_refunded",
        "woocommerce_delete_order_refund",
    ],
    "order.deleted": ["wp_trash_post", "woocommerce_trash_order", "woocommerce_delete_order"],
    "order.restored": ["untrashed_post", "woocommerce_untrash_order"],
    "product.created": [
        "woocommerce_process_product_meta",
        "woocommerce_new_product",
        "woocommerce_new_product_variation",
    ],
    "product.updated": [
        "woocommerce_process_product_meta",
        "woocommerce_update_product",
        "woocommerce_update_product_variation",
    ],
    "product.deleted": ["wp_trash_post"],
    "product.restored": ["untrashed_post"],
    "product.published": ["woocommerce_product_published"],
}


class WebhooksMixin:
    """The webhooks controller, and the queue and delivery of ``WC_Webhook``."""

    def _webhook_out(self, store: Store, webhook: dict) -> dict:
        data = {
            k: v
            for k, v in webhook.items()
            if k not in ("secret", "failure_count") and not k.startswith("__")
        }
        data["_links"] = self._links(store, f"/webhooks/{webhook['id']}", "/webhooks")
        return data

    def _webhook_by_id(self, store: Store, webhook_id: int, status: int = 404) -> dict:
        webhook = store.webhooks.get(webhook_id)
        if webhook is None:
            raise WooError("woocommerce_rest_webhook_invalid_id", "Invalid ID.", status)
        return webhook

    @staticmethod
    def _valid_topic(topic: str) -> bool:
        return topic in WEBHOOK_TOPIC_HOOKS or bool(re.match(r"^action\.(woocommerce_|wc_)\w+$", topic or ""))

    def _webhooks_list(self, store: Store, request: SandboxRequest, after) -> SandboxResponse:
        paging = self._paging(request)
        status = request.arg("status") or "all"
        ids = sorted(store.webhooks, reverse=self._order_dir(request))
        ids = [i for i in ids if status == "all" or store.webhooks[i]["status"] == status]
        return self._paged_response(
            store, request, ids, lambda i: self._webhook_out(store, store.webhooks[i]), "webhooks", paging
        )

    def _webhook_get(self, store: Store, request: SandboxRequest, after) -> SandboxResponse:
        return wp_response(self._webhook_out(store, self._webhook_by_id(store, int(request.params["id"]))))

    def _webhook_create_item(self, store: Store, data: dict, after: list) -> dict:
        topic = (data or {}).get("topic") or ""
        if not self._valid_topic(topic):
            raise WooError(
                "woocommerce_rest_webhook_invalid_topic", "Webhook topic is required and must be valid.", 400
            )
        url = data.get("delivery_url") or ""
        if not re.match(r"^https?://", url):
            raise WooError(
                "woocommerce_rest_webhook_invalid_delivery_url",
                "Webhook delivery URL must be a valid URL starting with http:// or https://.",
                400,
            )
        status = data.get("status") or "active"
        if status not in ("active", "paused", "disabled"):
            raise _invalid_param(
                "status", "status is not one of active, paused, and disabled.", "rest_not_in_enum"
            )
        webhook_id = store.next_id("webhook")
        local, gmt = store.stamp()
        resource, _, event = topic.partition(".")
        webhook = {
            "id": webhook_id,
            "name": data.get("name") or f"Webhook created on {local}",
            "status": status,
            "topic": topic,
            "resource": resource,
            "event": event,
            "hooks": WEBHOOK_TOPIC_HOOKS.get(topic, [event]),
            "delivery_url": url,
            "date_created": local,
            "date_created_gmt": gmt,
            "date_modified": local,
            "date_modified_gmt": gmt,
            "api_version": "wp_api_v3",
            "secret": data.get("secret") or secrets.token_urlsafe(36),
            "failure_count": 0,
        }
        store.webhooks[webhook_id] = webhook
        self.changed()
        if status == "active":
            after.append(lambda: self._deliver_ping(store, webhook_id, url))
        return webhook

    def _webhook_update_item(self, store: Store, webhook: dict, data: dict) -> dict:
        if "topic" in data:
            if not self._valid_topic(data["topic"] or ""):
                raise WooError(
                    "woocommerce_rest_webhook_invalid_topic",
                    "Webhook topic is required and must be valid.",
                    400,
                )
            webhook["topic"] = data["topic"]
            webhook["resource"], _, webhook["event"] = data["topic"].partition(".")
            webhook["hooks"] = WEBHOOK_TOPIC_HOOKS.get(data["topic"], [webhook["event"]])
        if "status" in data:
            if data["status"] not in ("active", "paused", "disabled"):
                raise _invalid_param(
                    "status", "status is not one of active, paused, and disabled.", "rest_not_in_enum"
                )
            webhook["status"] = data["status"]
        for key in ("name", "delivery_url", "secret"):
            if data.get(key):
                webhook[key] = data[key]
        webhook["date_modified"], webhook["date_modified_gmt"] = store.stamp()
        self.changed()
        return webhook

    def _webhook_delete_item(self, store: Store, webhook: dict, force: bool) -> dict:
        if not force:
            raise WooError("woocommerce_rest_trash_not_supported", "Webhooks do not support trashing.", 501)
        out = self._webhook_out(store, webhook)
        del store.webhooks[webhook["id"]]
        for key in [k for k in store.pending if k[0] == webhook["id"]]:
            del store.pending[key]
        self.changed()
        return out

    def _webhook_create(self, store: Store, request: SandboxRequest, after) -> SandboxResponse:
        webhook = self._webhook_create_item(store, self._body(request), after)
        location = f"{store.home()}{REST_BASE}/webhooks/{webhook['id']}"
        return wp_response(self._webhook_out(store, webhook), 201, [("Location", location)])

    def _webhook_update(self, store: Store, request: SandboxRequest, after) -> SandboxResponse:
        webhook = self._webhook_by_id(store, int(request.params["id"]), 400)
        return wp_response(
            self._webhook_out(store, self._webhook_update_item(store, webhook, self._body(request)))
        )

    def _webhook_delete(self, store: Store, request: SandboxRequest, after) -> SandboxResponse:
        webhook = self._webhook_by_id(store, int(request.params["id"]))
        return wp_response(self._webhook_delete_item(store, webhook, _truthy(request.arg("force"))))

    def _webhooks_batch(self, store: Store, request: SandboxRequest, after) -> SandboxResponse:
        return self._batch(
            store,
            request,
            lambda d: self._webhook_out(store, self._webhook_create_item(store, d, after)),
            lambda i, d: self._webhook_out(
                store, self._webhook_update_item(store, self._webhook_by_id(store, i, 400), d)
            ),
            lambda i: self._webhook_delete_item(store, self._webhook_by_id(store, i), True),
        )

    # -- webhook delivery ----------------------------------------------------------------------------
    def _fire(self, store: Store, topic: str, resource_id: int) -> None:
        """Queue a delivery for every active webhook on ``topic``; one pending entry per resource."""
        due = time.monotonic() + self.delivery_delay
        queued = False
        for webhook in store.webhooks.values():
            if webhook["status"] != "active" or webhook["topic"] != topic:
                continue
            key = (webhook["id"], resource_id)
            if key not in store.pending:
                store.pending[key] = {"topic": topic, "due": due}
                queued = True
        if queued:
            self._ensure_worker()
            self._wakeup.notify_all()

    def _ensure_worker(self) -> None:
        if self._worker is None or not self._worker.is_alive():
            self._worker = threading.Thread(
                target=self._delivery_loop, name="woocommerce-webhooks", daemon=True
            )
            self._worker.start()

    def _delivery_loop(self) -> None:
        while True:
            with self.lock:
                now = time.monotonic()
                due, next_due = [], None
                for store in self.stores.values():
                    for key, entry in list(store.pending.items()):
                        if entry.get("due", 0) <= now:
                            due.append((store, key, store.pending.pop(key)))
                        elif next_due is None or entry["due"] < next_due:
                            next_due = entry["due"]
                if not due:
                    self._wakeup.wait(timeout=1.0 if next_due is None else max(0.01, next_due - now))
                    continue
            for store, key, entry in due:
                try:
                    self._deliver(store, key[0], key[1], entry["topic"])
                except Exception:
                    logger.exception("webhook delivery failed in the sandbox")

    def _payload(self, store: Store, resource: str, event: str, resource_id: int) -> dict | None:
        if event == "deleted":
            return {"id": resource_id}
        if resource == "order":
            order = store.orders.get(resource_id)
            return self._order_out(store, order) if order else None
        if resource == "product":
            product = store.products.get(resource_id)
            if product is None:
                return None
            if product.get("type") == "variation":
                return self._variation_as_product(store, product)
            return self._product_out(store, product)
        if resource == "customer":
            customer = store.customers.get(resource_id)
            return self._customer_out(store, customer) if customer else None
        return {"id": resource_id}

    def _deliver(self, store: Store, webhook_id: int, resource_id: int, topic: str) -> dict | None:
        """Build the payload now (the state at send time), sign the exact bytes, send once."""
        with self.lock:
            webhook = store.webhooks.get(webhook_id)
            if webhook is None or webhook["status"] != "active":
                return None
            resource, _, event = topic.partition(".")
            payload = self._payload(store, resource, event, resource_id)
            if payload is None:
                return None
            if event != "deleted" and payload.get("status") in ("draft", "auto-draft", "checkout-draft"):
                return None
            body = wp_json(payload)
            secret = webhook["secret"]
            url = webhook["delivery_url"]
            source = store.home() + "/"
        signature = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
        delivery_id = hashlib.md5(f"{webhook_id}{int(time.time())}".encode()).hexdigest()
        headers = [
            ("User-Agent", f"WooCommerce/{WC_VERSION} Hookshot (WordPress/{WP_VERSION})"),
            ("Accept", "*/*"),
            ("Content-Type", "application/json"),
            ("X-WC-Webhook-Source", source),
            ("X-WC-Webhook-Topic", topic),
            ("X-WC-Webhook-Resource", resource),
            ("X-WC-Webhook-Event", event),
            ("X-WC-Webhook-Signature", signature),
            ("X-WC-Webhook-ID", str(webhook_id)),
            ("X-WC-Webhook-Delivery-ID", delivery_id),
        ]
        started = time.monotonic()
        status, error = self._post(url, headers, body)
        record = {
            "webhook_id": webhook_id,
            "topic": topic,
            "resource_id": resource_id,
            "delivery_url": url,
            "delivery_id": delivery_id,
            "status": status,
            "error": error,
            "duration": round(time.monotonic() - started, 4),
            "bytes": len(body),
            "at": _iso(datetime.now(timezone.utc)),
        }
        with self.lock:
            webhook = store.webhooks.get(webhook_id)
            if webhook is not None:
                if status is not None and 200 <= status <= 302:
                    webhook["failure_count"] = 0
                elif webhook.get("failure_count", 0) > MAX_WEBHOOK_FAILURES:
                    webhook["status"] = "disabled"
                    record["disabled"] = True
                else:
                    webhook["failure_count"] = webhook.get("failure_count", 0) + 1
            store.deliveries.append(record)
            del store.deliveries[:-DELIVERY_LOG_LIMIT]
            self.changed()
        return record

    def _post(self, url: str, headers: list[tuple[str, str]], body: bytes) -> tuple[int | None, str | None]:
        """One POST, no redirects followed, no retry (as WooCommerce)."""
        parts = urlsplit(url)
        try:
            if parts.scheme == "https":
                import ssl

                connection = http.client.HTTPSConnection(
                    parts.hostname,
                    parts.port or 443,
                    timeout=self.delivery_timeout,
                    context=ssl._create_unverified_context(),
                )
            else:
                connection = http.client.HTTPConnection(
                    parts.hostname, parts.port or 80, timeout=self.delivery_timeout
                )
            path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            connection.putrequest("POST", path, skip_accept_encoding=True)
            for name, value in headers:
                connection.putheader(name, value)
            connection.putheader("Connection", "close")
            connection.putheader("Content-Length", str(len(body)))
            connection.endheaders(body)
            response = connection.getresponse()
            response.read()
            connection.close()
            return response.status, None
        except (OSError, http.client.HTTPException) as exc:
            return None, f"{type(exc).__name__}: {exc}"

    def _deliver_ping(self, store: Store, webhook_id: int, url: str) -> None:
        """The ping after ``POST /webhooks``: form-encoded, unsigned, no X-WC-Webhook-* headers."""
        headers = [
            ("User-Agent", f"WooCommerce/{WC_VERSION} Hookshot (WordPress/{WP_VERSION})"),
            ("Accept", "*/*"),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ]
        status, error = self._post(url, headers, f"webhook_id={webhook_id}".encode())
        with self.lock:
            store.deliveries.append(
                {
                    "webhook_id": webhook_id,
                    "topic": "ping",
                    "resource_id": None,
                    "delivery_url": url,
                    "status": status,
                    "error": error,
                    "at": _iso(datetime.now(timezone.utc)),
                }
            )

    def flush_webhooks(self, prefix: str | None = None) -> list[dict]:
        """Deliver everything pending now (in this thread) and return what was sent."""
        with self.lock:
            stores = (
                [self.stores[prefix]]
                if prefix is not None and prefix in self.stores
                else list(self.stores.values())
                if prefix is None
                else []
            )
            batch = []
            for store in stores:
                while store.pending:
                    key, entry = store.pending.popitem(last=False)
                    batch.append((store, key, entry))
        results = []
        for store, (webhook_id, resource_id), entry in batch:
            record = self._deliver(store, webhook_id, resource_id, entry["topic"])
            if record is not None:
                results.append(record)
        return results
