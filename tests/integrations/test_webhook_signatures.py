"""Webhook signatures: the real store's deliveries verify byte for byte, and so do the sandbox's."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from integrations.clients.woocommerce import WooCommerceClient
from integrations.sandboxes import demo
from integrations.sandboxes.fixtures import WOOCOMMERCE_11
from integrations.webhooks import webhook_signature_valid

FIXTURE_SECRET = "hogia-smart-fixture-secret-2026"  # from the fixtures' README
SIGNED = ["order_created_A1", "order_updated_A6_cancelled", "product_updated_bok_stock"]


def _delivery(name):
    body = (WOOCOMMERCE_11 / "webhooks" / f"{name}.body").read_bytes()
    headers = dict(json.loads((WOOCOMMERCE_11 / "webhooks" / f"{name}.headers.json").read_text())["headers"])
    return body, headers


@pytest.mark.parametrize("name", SIGNED)
def test_the_real_stores_deliveries_verify_and_a_changed_byte_does_not(name):
    body, headers = _delivery(name)
    signature = headers["X-WC-Webhook-Signature"]
    assert webhook_signature_valid(body=body, secret=FIXTURE_SECRET, signature=signature)
    assert not webhook_signature_valid(
        body=body.replace(b'"id":', b'"id": ', 1), secret=FIXTURE_SECRET, signature=signature
    )
    assert not webhook_signature_valid(body=body, secret="another-secret", signature=signature)
    # Re-serialised JSON is different bytes: the check must run on the raw body.
    reserialised = json.dumps(json.loads(body), separators=(",", ":")).encode()
    assert not webhook_signature_valid(body=reserialised, secret=FIXTURE_SECRET, signature=signature)


def test_the_ping_is_unsigned_form_data():
    body, headers = _delivery("ping_on_webhook_create")
    assert body == b"webhook_id=5"
    assert "X-WC-Webhook-Signature" not in headers
    assert not webhook_signature_valid(body=body, secret=FIXTURE_SECRET, signature=None)


class _Receiver:
    """A stand-in for the portal's webhook endpoint that records what arrives."""

    def __init__(self):
        self.deliveries: list[tuple[dict, bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.deliveries.append((dict(self.headers.items()), body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/woo/test/"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    receiver = _Receiver()
    yield receiver
    receiver.close()


def test_a_delivery_from_the_sandbox_verifies_and_a_tampered_one_does_not(woo_sandbox, receiver):
    prefix, _name, key, secret, _unit = demo.WOO_STORES[0]
    client = WooCommerceClient(
        base_url=f"{woo_sandbox.url}{prefix}/", consumer_key=key, consumer_secret=secret
    )
    webhook_secret = "portal-made-secret-ÅÄÖ-1"
    client.webhook_create(
        name="Portal: order.updated", topic="order.updated", delivery_url=receiver.url, secret=webhook_secret
    )
    ping_headers, ping_body = receiver.deliveries[0]
    assert ping_body.startswith(b"webhook_id=")
    assert "X-WC-Webhook-Signature" not in ping_headers

    fixture = json.loads((WOOCOMMERCE_11 / "orders" / "A1_guest_mixed_vat_processing.json").read_text())
    requests.post(f"{woo_sandbox.url}{prefix}/_sandbox/orders", json=fixture).raise_for_status()
    order = next(client.orders_iter())
    client.order_update(order["id"], {"status": "completed"})
    requests.post(f"{woo_sandbox.url}{prefix}/_sandbox/webhooks/flush").raise_for_status()
    headers, body = receiver.deliveries[-1]
    assert headers["X-WC-Webhook-Topic"] == "order.updated"
    assert json.loads(body)["id"] == order["id"] and json.loads(body)["status"] == "completed"
    signature = headers["X-WC-Webhook-Signature"]
    assert webhook_signature_valid(body=body, secret=webhook_secret, signature=signature)
    tampered = body.replace(b'"completed"', b'"cancelled"')
    assert not webhook_signature_valid(body=tampered, secret=webhook_secret, signature=signature)
