"""The WooCommerce sandbox as a store with plugins: the REST index, Shipment Tracking and Advanced
Shipment Tracking, core order fulfillments, payment plugins that capture on completion (Klarna,
Nexi, Svea), WooCommerce's e-mails, a person changing the status in wp-admin and the status-write
log; all over real HTTP (see ``shared/docs/payments-and-tracking.md``)."""

from __future__ import annotations

import json
import re
import time
from datetime import datetime, timezone
from decimal import Decimal
from urllib.parse import urlencode

import pytest
import requests

from integrations.sandboxes.http import SandboxServer, json_dumps
from integrations.sandboxes.woocommerce import WooCommerceSandbox

# pytestmark skips the module without the fixtures; server is that module's sandbox, seeded with the demo.
from tests.integrations.test_woocommerce_sandbox import (  # noqa: F401
    Receiver,
    Woo,
    _new_store,
    oauth_params,
    pytestmark,
    server,
)

CORE_NAMESPACES = [
    "oembed/1.0",
    "wc-admin",
    "wc-analytics",
    "wc/store/v1",
    "wc/v1",
    "wc/v2",
    "wc/v3",
    "wp/v2",
    "wp-site-health/v1",
    "wp-block-editor/v1",
]
FULFILLMENTS_ROUTE = "/wc/v3/orders/(?P<order_id>[\\d]+)/fulfillments"
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


# -- helpers ---------------------------------------------------------------------------------------


def _call(client: Woo, method: str, namespace: str, path: str, body=None, params=None, auth: bool = True):
    """A request to any namespace of the store, signed like ``Woo`` signs wc/v3 requests."""
    url = f"{client.base}/wp-json/{namespace}{path}"
    query = [(k, str(v)) for k, v in (params or {}).items()]
    if auth:
        query += list(oauth_params(method, url, client.key, client.secret, query).items())
    return client.session.request(
        method, url + ("?" + urlencode(query) if query else ""), json=body, timeout=10
    )


def _control(client: Woo, method: str, path: str, body=None, params=None) -> requests.Response:
    response = requests.request(method, f"{client.base}/_sandbox{path}", json=body, params=params, timeout=10)
    assert response.status_code < 300, response.text
    return response


def _payments(client: Woo, order_id: int) -> dict:
    return _control(client, "GET", "/payments", params={"order_id": order_id}).json()["payments"][
        str(order_id)
    ]


def _notes(client: Woo, order_id: int) -> list[dict]:
    """Oldest first (the API answers newest first)."""
    return list(reversed(client.get(f"/orders/{order_id}/notes").json()))


def _meta(order: dict, key: str):
    return next((m["value"] for m in order["meta_data"] if m["key"] == key), None)


def _klarna_order(client: Woo, *, meta=None, lines=None, **extra) -> dict:
    """A Klarna Payments order paid at checkout (``payment_complete( $klarna_order_id )``): processing."""
    body = {
        "payment_method": "klarna_payments",
        "payment_method_title": "Klarna",
        "transaction_id": "a1b2c3d4-0000-4000-8000-00000000beef",
        "set_paid": True,
        "billing": {"first_name": "Kim", "email": "kim@example.se", "country": "SE"},
        "shipping": {"first_name": "Kim", "postcode": "111 51", "country": "SE"},
        "line_items": lines or [{"product_id": 24, "quantity": 5}],
        "meta_data": meta or [],
        **extra,
    }
    response = client.post("/orders", body)
    assert response.status_code == 201, response.text
    order = response.json()
    assert order["status"] == "processing" and order["date_paid"]
    return order


def _wc_price(total: str) -> str:
    """``wc_price`` as the fixtures' Swedish store prints it (no thousand separator, decimal comma)."""
    return (
        f'<span class="woocommerce-Price-amount amount"><bdi>{total.replace(".", ",")}&nbsp;<span '
        f'class="woocommerce-Price-currencySymbol" translate="no">&#107;&#114;</span></bdi></span>'
    )


def _later(client: Woo, seconds: int = 120) -> None:
    """Move the store's clock on, so a changed date_modified shows."""
    _control(client, "POST", "/clock", {"offset_seconds": seconds})


# -- the REST index ----------------------------------------------------------------------------------


def test_wp_json_index_lists_namespaces_per_plugin_and_feature(server):
    plain = _new_store(server)
    for path in ("/wp-json/", "/wp-json"):
        index = requests.get(plain.base + path, timeout=10)  # public: no credentials
        assert index.status_code == 200, index.text
        data = index.json()
        assert data["namespaces"] == CORE_NAMESPACES
        assert (data["name"], data["url"], data["home"], data["timezone_string"]) == (
            "Butik",
            plain.base,
            plain.base,
            "Europe/Stockholm",
        )
        assert data["authentication"] == {} and isinstance(data["gmt_offset"], (int, float))
        orders = data["routes"]["/wc/v3/orders"]
        assert orders["namespace"] == "wc/v3" and orders["methods"] == ["GET", "POST"]
        assert [e["methods"] for e in orders["endpoints"]] == [["GET"], ["POST"]]
        assert data["routes"]["/wc/v3/orders/(?P<id>[\\d]+)"]["methods"] == [
            "GET",
            "POST",
            "PUT",
            "PATCH",
            "DELETE",
        ]
        assert FULFILLMENTS_ROUTE not in data["routes"]
        assert not [r for r in data["routes"] if "shipment-trackings" in r]
    only = requests.get(plain.base + "/wp-json/", params={"_fields": "namespaces"}, timeout=10).json()
    assert only == {"namespaces": CORE_NAMESPACES}

    st = _new_store(server, plugins=["shipment_tracking", "klarna"])
    data = requests.get(st.base + "/wp-json/", timeout=10).json()
    assert data["namespaces"] == CORE_NAMESPACES[:7] + ["wc-shipment-tracking/v3"] + CORE_NAMESPACES[7:]
    assert "/wc-shipment-tracking/v3/shipment-trackings/providers" in data["routes"]
    assert "/wc/v1/orders/(?P<order_id>[\\d]+)/shipment-trackings" in data["routes"]
    assert "/wc/v3/orders/(?P<order_id>[\\d]+)/shipment-trackings" not in data["routes"]

    ast = _new_store(server, plugins=["ast"])
    data = requests.get(ast.base + "/wp-json/", timeout=10).json()
    assert (
        data["namespaces"]
        == CORE_NAMESPACES[:7] + ["wc-ast/v3", "wc-shipment-tracking/v3"] + CORE_NAMESPACES[7:]
    )
    assert "/wc/v3/orders/(?P<order_id>[\\d]+)/shipment-trackings" in data["routes"]
    assert "/wc-shipment-tracking/v3/shipment-trackings/providers" not in data["routes"]  # ST's own route

    fulfilling = _new_store(server, features={"fulfillments": True})
    data = requests.get(fulfilling.base + "/wp-json/", timeout=10).json()
    assert data["namespaces"] == CORE_NAMESPACES
    assert data["routes"][FULFILLMENTS_ROUTE]["methods"] == ["GET", "POST"]

    # A namespace's own index exists only while something is registered in it.
    own = requests.get(st.base + "/wp-json/wc-shipment-tracking/v3", timeout=10)
    assert own.status_code == 200 and own.json()["namespace"] == "wc-shipment-tracking/v3"
    assert own.json()["routes"] and all(
        r.startswith("/wc-shipment-tracking/v3") for r in own.json()["routes"]
    )
    missing = requests.get(plain.base + "/wp-json/wc-shipment-tracking/v3", timeout=10)
    assert (missing.status_code, missing.json()["code"]) == (404, "rest_no_route")
    invalid = requests.get(plain.base + "/wp-json/wc/v3", params={"namespace": "wc-nope/v1"}, timeout=10)
    assert invalid.status_code == 404
    assert invalid.json() == {
        "code": "rest_invalid_namespace",
        "message": "The specified namespace could not be found.",
        "data": {"status": 404},
    }

    # Switched through the settings control: the index follows.
    settings = _control(
        plain, "POST", "/settings", {"plugins": ["ast", "klarna"], "features": {"fulfillments": True}}
    ).json()
    assert settings["plugins"] == ["ast", "klarna"] and settings["features"] == {"fulfillments": True}
    data = requests.get(plain.base + "/wp-json/", timeout=10).json()
    assert "wc-ast/v3" in data["namespaces"] and FULFILLMENTS_ROUTE in data["routes"]
    bad = requests.post(
        plain.base + "/_sandbox/settings", json={"plugins": ["woocommerce-payments"]}, timeout=10
    )
    assert bad.status_code == 400


def test_store_defaults_have_the_payment_plugins_with_their_own_settings(server):
    client = _new_store(server)
    settings = _control(client, "GET", "/settings").json()
    assert settings["plugins"] == ["klarna", "nexi", "svea"]
    assert settings["features"] == {"fulfillments": False}
    assert settings["payment_settings"] == {
        "kom_auto_capture": "yes",
        "dibs_manage_orders": "no",
        "sync_order_completion": "yes",
    }
    assert settings["emails"]["customer_completed_order"] is True
    assert settings["emails"]["customer_cancelled_order"] is False  # off unless the block e-mail editor is on


# -- Shipment Tracking -------------------------------------------------------------------------------


def test_shipment_tracking_create_list_get_delete_and_the_stored_meta(server):
    client = _new_store(server, plugins=["shipment_tracking"])
    order = client.post(
        "/orders",
        {
            "status": "processing",
            "line_items": [{"product_id": 24}],
            "shipping": {"postcode": "111 51", "country": "SE"},
        },
    ).json()
    notes_before = _notes(client, order["id"])
    _later(client)
    path = f"/orders/{order['id']}/shipment-trackings"

    missing = _call(
        client, "POST", "wc-shipment-tracking/v3", path, {"tracking_provider": "PostNord Sverige AB"}
    )
    assert (missing.status_code, missing.json()["code"]) == (400, "rest_missing_callback_param")

    created = _call(
        client,
        "POST",
        "wc-shipment-tracking/v3",
        path,
        {
            "tracking_provider": "PostNord Sverige AB",
            "tracking_number": "RR123456785SE",
            "date_shipped": "2026-05-04",
        },
    )
    assert created.status_code == 201, created.text
    item = created.json()
    assert re.fullmatch(r"[0-9a-f]{32}", item["tracking_id"])
    assert {
        k: item[k] for k in ("tracking_provider", "tracking_link", "tracking_number", "date_shipped")
    } == {
        "tracking_provider": "PostNord Sverige AB",
        "tracking_link": "http://www.postnord.se/sv/verktyg/sok/Sidor/spara-brev-paket-och-pall.aspx"
        "?search=RR123456785SE",
        "tracking_number": "RR123456785SE",
        "date_shipped": "2026-05-04",
    }
    assert item["_links"]["self"][0]["href"].endswith(
        f"/wp-json/wc-shipment-tracking/v3{path}/{item['tracking_id']}"
    )
    assert item["_links"]["up"][0]["href"].endswith(f"/wp-json/wc-shipment-tracking/v3/orders/{order['id']}")
    assert "Location" in created.headers

    custom = _call(
        client,
        "POST",
        "wc/v1",
        path,
        {
            "custom_tracking_provider": "Egen bud",
            "custom_tracking_link": "https://bud.example/t/77",
            "tracking_number": "77",
        },
    ).json()
    assert (custom["tracking_provider"], custom["tracking_link"]) == ("Egen bud", "https://bud.example/t/77")
    assert custom["date_shipped"] == datetime.now(timezone.utc).strftime("%Y-%m-%d")  # default today

    after = client.get(f"/orders/{order['id']}").json()
    stored = _meta(after, "_wc_shipment_tracking_items")
    assert [i["tracking_id"] for i in stored] == [item["tracking_id"], custom["tracking_id"]]
    assert (
        stored[0]["tracking_provider"] == "postnord-sverige-ab"
        and stored[0]["custom_tracking_provider"] == ""
    )
    midnight = int(datetime(2026, 5, 4, tzinfo=timezone.utc).timestamp())
    assert int(stored[0]["date_shipped"]) == midnight
    # No note, no status change, but the order was saved.
    assert after["status"] == "processing" and _notes(client, order["id"]) == notes_before
    assert after["date_modified_gmt"] > order["date_modified_gmt"]

    listed = _call(client, "GET", "wc/v2", path).json()
    assert [i["tracking_number"] for i in listed] == ["RR123456785SE", "77"]
    one = _call(client, "GET", "wc-shipment-tracking/v3", f"{path}/{item['tracking_id']}")
    assert one.status_code == 200 and one.json()["tracking_number"] == "RR123456785SE"
    deleted = _call(client, "DELETE", "wc-shipment-tracking/v3", f"{path}/{item['tracking_id']}")
    assert deleted.status_code == 200 and deleted.json()["tracking_id"] == item["tracking_id"]
    gone = _call(client, "GET", "wc-shipment-tracking/v3", f"{path}/{item['tracking_id']}")
    assert (gone.status_code, gone.json()["code"]) == (
        404,
        "woocommerce_rest_order_shipment_tracking_invalid_id",
    )
    assert [
        i["tracking_id"]
        for i in _meta(client.get(f"/orders/{order['id']}").json(), "_wc_shipment_tracking_items")
    ] == [custom["tracking_id"]]

    unknown = _call(client, "GET", "wc-shipment-tracking/v3", "/orders/999999/shipment-trackings")
    assert (unknown.status_code, unknown.json()["code"]) == (404, "woocommerce_rest_order_invalid_id")
    anonymous = _call(client, "GET", "wc-shipment-tracking/v3", path, auth=False)
    assert (anonymous.status_code, anonymous.json()["code"]) == (401, "woocommerce_rest_cannot_view")
    # ST registers no wc/v3 routes; a store without a tracking plugin has none at all.
    assert _call(client, "GET", "wc/v3", path).json()["code"] == "rest_no_route"
    plain = _new_store(server)
    no_plugin = _call(plain, "GET", "wc-shipment-tracking/v3", path, auth=False)
    assert (no_plugin.status_code, no_plugin.json()["code"]) == (404, "rest_no_route")

    providers = requests.get(
        client.base + "/wp-json/wc-shipment-tracking/v3/shipment-trackings/providers", timeout=10
    )
    assert providers.status_code == 200
    sweden = providers.json()["Sweden"]
    for name in ("PostNord Sverige AB", "DHL Freight", "DB Schenker", "Bring", "Budbee", "Instabox"):
        assert "%1$s" in sweden[name], name
    assert len(providers.json()) > 3


# -- Advanced Shipment Tracking ----------------------------------------------------------------------


def test_ast_status_shipped_completes_the_order_and_klarna_captures_once(server):
    client = _new_store(server, plugins=["ast", "klarna"])
    order = _klarna_order(client)
    path = f"/orders/{order['id']}/shipment-trackings"

    # manage_woocommerce: a key that may only write stands for a user without it.
    _control(
        client,
        "POST",
        "/keys",
        {"consumer_key": client.key + "w", "consumer_secret": client.secret + "w", "permissions": "write"},
    )
    writer = Woo(client.base, client.key + "w", client.secret + "w")
    forbidden = _call(writer, "POST", "wc-ast/v3", path, {"tracking_number": "1"})
    assert forbidden.status_code == 403
    assert forbidden.json() == {
        "code": "forbidden",
        "message": "Insufficient permissions",
        "data": {"status": 403},
    }
    assert _call(client, "POST", "wc-ast/v3", path, {"tracking_number": "1"}, auth=False).status_code == 403

    created = _call(
        client,
        "POST",
        "wc-ast/v3",
        path,
        {
            "tracking_provider": "PostNord Sweden",
            "tracking_number": "00370712345678901234",
            "status_shipped": 1,
            "date_shipped": "04-05-2026",
        },
    )
    assert created.status_code == 201, created.text
    assert created.json()["date_shipped"] == "2026-05-04"
    assert created.json()["tracking_link"] == "https://tracking.postnord.com/se/?id=00370712345678901234"

    after = client.get(f"/orders/{order['id']}").json()
    assert after["status"] == "completed" and after["date_completed"]
    capture_id = _meta(after, "_wc_klarna_capture_id")
    assert UUID.match(capture_id)
    item = _meta(after, "_wc_shipment_tracking_items")[0]
    assert (item["source"], item["status_shipped"], item["tracking_provider"]) == (
        "REST_API",
        "1",
        "postnord-sweden",
    )
    assert "user_id" in item
    remote = _payments(client, order["id"])
    assert [c["amount"] for c in remote["captures"]] == [order["total"]] and remote["status"] == "CAPTURED"
    texts = [n["note"] for n in _notes(client, order["id"])]
    assert texts[-3:] == [
        f"Klarna order captured. Capture amount: {_wc_price(order['total'])}. Capture ID: {capture_id}",
        "Order status changed from Processing to Completed.",
        "Order was shipped with PostNord Sweden and tracking number is: 00370712345678901234",
    ]
    writes = _control(client, "GET", "/status-writes", params={"order_id": order["id"]}).json()[
        "status_writes"
    ]
    assert [(w["from"], w["to"], w["by"]) for w in writes][-1] == ("processing", "completed", "ast")

    # Shipped again: the order is completed already, so no transition and no second capture.
    again = _call(
        client,
        "POST",
        "wc/v3",
        path,
        {"tracking_provider": "PostNord Sweden", "tracking_number": "2", "status_shipped": "1"},
    )
    assert again.status_code == 201
    assert len(_payments(client, order["id"])["captures"]) == 1
    assert not [n for n in _notes(client, order["id"]) if "already been captured" in n["note"]]

    # AST's providers need read permission; its templates use %number%.
    assert _call(client, "GET", "wc-ast/v3", f"{path}/providers", auth=False).status_code == 401
    providers = _call(client, "GET", "wc-ast/v3", f"{path}/providers").json()
    assert "%number%" in providers["Sweden"]["DHL Freight"]


def test_ast_replace_tracking_and_custom_statuses(server):
    client = _new_store(server, plugins=["ast"], order_statuses={"wc-partial-shipped": "Partially Shipped"})
    order = client.post(
        "/orders", {"status": "processing", "line_items": [{"product_id": 24, "quantity": 2}]}
    ).json()
    path = f"/orders/{order['id']}/shipment-trackings"
    first = _call(
        client,
        "POST",
        "wc-shipment-tracking/v3",
        path,
        {"tracking_provider": "Budbee", "tracking_number": "B1"},
    ).json()
    second = _call(
        client,
        "POST",
        "wc-shipment-tracking/v3",
        path,
        {"tracking_provider": "Budbee", "tracking_number": "B2", "status_shipped": 2},
    )
    assert second.status_code == 201
    assert client.get(f"/orders/{order['id']}").json()["status"] == "partial-shipped"
    assert [i["tracking_number"] for i in _call(client, "GET", "wc-ast/v3", path).json()] == ["B1", "B2"]
    replaced = _call(
        client,
        "POST",
        "wc-ast/v3",
        path,
        {
            "tracking_provider": "Instabox",
            "tracking_number": "I9",
            "replace_tracking": 1,
            "status_shipped": 3,
        },
    )
    assert replaced.status_code == 201
    listed = _call(client, "GET", "wc-ast/v3", path).json()
    assert [(i["tracking_provider"], i["tracking_number"]) for i in listed] == [("Instabox", "I9")]
    assert first["tracking_id"] not in json.dumps(client.get(f"/orders/{order['id']}").json()["meta_data"])
    # updated-tracking is not a status of this store: AST leaves the status alone.
    assert client.get(f"/orders/{order['id']}").json()["status"] == "partial-shipped"


# -- core order fulfillments -------------------------------------------------------------------------


def test_fulfillments_routes_exist_only_with_the_feature(server):
    plain = _new_store(server)
    order = plain.post("/orders", {"line_items": [{"product_id": 24}]}).json()
    off = plain.get(f"/orders/{order['id']}/fulfillments")
    assert (off.status_code, off.json()["code"]) == (404, "rest_no_route")
    assert (
        plain.post(f"/orders/{order['id']}/fulfillments", {"meta_data": []}).json()["code"] == "rest_no_route"
    )

    client = _new_store(server, features={"fulfillments": True})
    order = client.post(
        "/orders",
        {
            "status": "processing",
            "billing": {"email": "kim@example.se"},
            "line_items": [{"product_id": 24, "quantity": 2}, {"product_id": 23}],
        },
    ).json()
    assert _meta(order, "_fulfillment_status") == "unfulfilled"
    path = f"/orders/{order['id']}/fulfillments"
    assert client.get(path).json() == []
    assert client.post(path, {"is_fulfilled": True}).json()["code"] == "rest_missing_callback_param"
    no_ids = client.post(path, {"meta_data": [{"key": "_items", "value": [{"item_id": 1, "qty": 1}]}]})
    assert no_ids.status_code == 400
    assert no_ids.json() == {
        "code": 0,
        "message": "The fulfillment should contain at least one item.",
        "data": {"status": 400},
    }
    assert client.get("/orders/999999/fulfillments").json()["code"] == "woocommerce_rest_order_invalid_id"

    lines = [{"item_id": li["id"], "qty": li["quantity"]} for li in order["line_items"]]
    _later(client)
    created = client.post(
        path,
        {
            "status": "fulfilled",
            "is_fulfilled": True,
            "notify_customer": True,
            "meta_data": [
                {"id": 0, "key": "_items", "value": lines},
                {"id": 0, "key": "_tracking_number", "value": "RR1SE"},
                {"id": 0, "key": "_shipment_provider", "value": "postnord"},
                {"id": 0, "key": "_tracking_url", "value": "https://tracking.postnord.com/se/?id=RR1SE"},
            ],
        },
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert (
        body["entity_type"],
        body["entity_id"],
        body["status"],
        body["is_fulfilled"],
        body["date_deleted"],
    ) == ("WC_Order", str(order["id"]), "fulfilled", True, None)
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", body["date_updated"])
    assert [m["key"] for m in body["meta_data"]] == [
        "_items",
        "_tracking_number",
        "_shipment_provider",
        "_tracking_url",
        "_date_fulfilled",
    ]
    assert all(m["id"] > 0 for m in body["meta_data"])

    after = client.get(f"/orders/{order['id']}").json()
    assert after["status"] == "processing"  # a fulfillment changes no order status
    assert _meta(after, "_fulfillment_status") == "fulfilled"
    assert after["date_modified_gmt"] > order["date_modified_gmt"]
    texts = [n["note"] for n in _notes(client, order["id"])]
    assert any(
        t.startswith(f"Fulfillment #{body['id']} created (status: fulfilled). Items: ")
        and t.endswith("Tracking: RR1SE.")
        for t in texts
    )
    emails = _control(client, "GET", "/emails", params={"order_id": order["id"]}).json()["emails"]
    assert [e["email"] for e in emails if "fulfillment" in e["email"]] == ["customer_fulfillment_created"]

    assert [f["id"] for f in client.get(path).json()] == [body["id"]]
    assert client.get(f"{path}/{body['id']}").json()["id"] == body["id"]
    assert client.delete(f"{path}/{body['id']}").json() == {"message": "Fulfillment deleted successfully."}
    assert client.get(path).json() == []
    assert _meta(client.get(f"/orders/{order['id']}").json(), "_fulfillment_status") == "no_fulfillments"
    deleted = client.get(f"{path}/{body['id']}")
    assert deleted.status_code == 400 and deleted.json()["message"] == "Fulfillment not found."


# -- Klarna ------------------------------------------------------------------------------------------


def test_klarna_captures_once_on_completion_and_guards_against_a_second_capture(server):
    client = _new_store(server)
    order = _klarna_order(client)
    assert order["total"] == "1245.00"
    completed = client.put(f"/orders/{order['id']}", {"status": "completed"})
    assert completed.status_code == 200 and completed.json()["status"] == "completed"
    capture_id = _meta(completed.json(), "_wc_klarna_capture_id")
    assert UUID.match(capture_id)
    notes = _notes(client, order["id"])
    capture_note = next(n for n in notes if n["note"].startswith("Klarna order captured."))
    assert capture_note["note"] == (
        f"Klarna order captured. Capture amount: {_wc_price('1245.00')}. Capture ID: {capture_id}"
    )
    assert "1245,00&nbsp;" in capture_note["note"] and capture_note["customer_note"] is False
    transition = next(n for n in notes if n["note"] == "Order status changed from Processing to Completed.")
    assert capture_note["id"] < transition["id"]  # the plugin's note comes first
    remote = _payments(client, order["id"])
    assert (remote["provider"], remote["authorized"], remote["status"], remote["fraud_status"]) == (
        "klarna",
        "1245.00",
        "CAPTURED",
        "ACCEPTED",
    )
    assert [(c["id"], c["amount"]) for c in remote["captures"]] == [(capture_id, "1245.00")]

    # Saving it completed again fires nothing.
    count = len(notes)
    assert client.put(f"/orders/{order['id']}", {"status": "completed"}).json()["status"] == "completed"
    assert len(_notes(client, order["id"])) == count

    # on-hold and back: the hook runs again and stops at the local capture id.
    client.put(f"/orders/{order['id']}", {"status": "on-hold"})
    again = client.put(f"/orders/{order['id']}", {"status": "completed"}).json()
    assert again["status"] == "completed"
    assert "Klarna order has already been captured." in [n["note"] for n in _notes(client, order["id"])]
    assert len(_payments(client, order["id"])["captures"]) == 1


def test_klarna_pending_review_holds_the_order_until_klarna_accepts(server):
    client = _new_store(server)
    order = _klarna_order(client, meta=[{"key": "_sandbox_capture", "value": "pending_review"}])
    assert _payments(client, order["id"])["fraud_status"] == "PENDING"
    held = client.put(f"/orders/{order['id']}", {"status": "completed"})
    assert held.json()["status"] == "on-hold"  # the PUT answer shows where the plugin left it
    notes = [n["note"] for n in _notes(client, order["id"])]
    assert notes[-2:] == [
        "Klarna order is pending review and could not be captured at this time. "
        "Order status changed from Completed to On hold.",
        "Order status changed from Processing to Completed.",
    ]  # the newest note says Completed
    assert _payments(client, order["id"])["captures"] == []

    _control(client, "POST", f"/orders/{order['id']}/payment", {"fraud_status": "ACCEPTED"})
    done = client.put(f"/orders/{order['id']}", {"status": "completed"}).json()
    assert done["status"] == "completed" and UUID.match(_meta(done, "_wc_klarna_capture_id"))
    assert len(_payments(client, order["id"])["captures"]) == 1


def test_klarna_api_error_puts_the_order_on_hold_with_the_message(server):
    client = _new_store(server)
    order = _klarna_order(client, meta=[{"key": "_sandbox_capture", "value": "api_error"}])
    held = client.put(f"/orders/{order['id']}", {"status": "completed"}).json()
    assert held["status"] == "on-hold" and _meta(held, "_wc_klarna_capture_id") is None
    assert (
        "Could not capture Klarna order. API Error 503 Order status changed from Completed to On hold."
        in [n["note"] for n in _notes(client, order["id"])]
    )
    assert _payments(client, order["id"])["captures"] == []
    # Klarna works again: completing retries.
    _control(client, "POST", f"/orders/{order['id']}/payment", {"scenario": "ok"})
    assert client.put(f"/orders/{order['id']}", {"status": "completed"}).json()["status"] == "completed"
    assert len(_payments(client, order["id"])["captures"]) == 1


def test_klarna_refuses_a_total_raised_above_the_authorization(server):
    client = _new_store(server)
    order = _klarna_order(client)
    raised = client.put(
        f"/orders/{order['id']}", {"fee_lines": [{"name": "Frakt", "total": "100.00", "tax_status": "none"}]}
    ).json()
    assert Decimal(raised["total"]) == Decimal(order["total"]) + 100
    held = client.put(f"/orders/{order['id']}", {"status": "completed"}).json()
    assert held["status"] == "on-hold"
    note = next(n["note"] for n in _notes(client, order["id"]) if n["note"].startswith("Could not capture"))
    assert note == (
        "Could not capture Klarna order. Captured amount is higher than the remaining authorized "
        "amount: 1245 SEK. Order status changed from Completed to On hold."
    )
    remote = _payments(client, order["id"])
    assert remote["authorized"] == "1245.00" and remote["captures"] == []


def test_klarna_timeout_captures_remotely_and_the_retry_backfills_the_capture_id(server):
    client = _new_store(server)
    order = _klarna_order(client, meta=[{"key": "_sandbox_capture", "value": "timeout"}])
    held = client.put(f"/orders/{order['id']}", {"status": "completed"}).json()
    assert held["status"] == "on-hold" and _meta(held, "_wc_klarna_capture_id") is None
    remote = _payments(client, order["id"])
    assert len(remote["captures"]) == 1 and remote["status"] == "CAPTURED"
    done = client.put(f"/orders/{order['id']}", {"status": "completed"}).json()
    assert (
        done["status"] == "completed" and _meta(done, "_wc_klarna_capture_id") == remote["captures"][0]["id"]
    )
    assert f"Klarna order has already been captured on {remote['captures'][0]['at']}" in [
        n["note"] for n in _notes(client, order["id"])
    ]
    assert len(_payments(client, order["id"])["captures"]) == 1


@pytest.mark.parametrize(
    "scenario, status, note",
    [
        (
            "cancelled_remote",
            "completed",
            "Klarna order failed to capture, the order has already been canceled",
        ),
        ("already_captured_remote", "completed", "Klarna order has already been captured on "),
        ("expired", "on-hold", "Could not capture Klarna order. "),
        (
            "get_error",
            "on-hold",
            "Klarna order could not be captured due to an error. Order status changed from "
            "Completed to On hold.",
        ),
    ],
)
def test_klarna_remote_states(server, scenario, status, note):
    client = _new_store(server)
    order = _klarna_order(client)
    _control(client, "POST", f"/orders/{order['id']}/payment", {"scenario": scenario})
    before = len(_payments(client, order["id"])["captures"])
    done = client.put(f"/orders/{order['id']}", {"status": "completed"}).json()
    assert done["status"] == status
    assert any(n["note"].startswith(note) for n in _notes(client, order["id"])), note
    remote = _payments(client, order["id"])
    assert len(remote["captures"]) == before  # nothing captured by WooCommerce
    if scenario == "already_captured_remote":
        assert before == 1 and _meta(done, "_wc_klarna_capture_id") == remote["captures"][0]["id"]


def test_kustom_checkout_notes_and_auto_capture_switched_off(server):
    """KCO (``kco``) has the same logic with "Kustom" in its notes; with ``kom_auto_capture`` off Klarna
    Payments says why it did not capture and KCO says nothing."""
    client = _new_store(server)
    kco = _klarna_order(client, payment_method="kco")
    done = client.put(f"/orders/{kco['id']}", {"status": "completed"}).json()
    assert any(
        n["note"].startswith("Kustom order captured. Capture amount: ") for n in _notes(client, kco["id"])
    )
    assert UUID.match(_meta(done, "_wc_klarna_capture_id"))

    _control(client, "POST", "/settings", {"payment_settings": {"kom_auto_capture": "no"}})
    kp, kco = _klarna_order(client), _klarna_order(client, payment_method="kco")
    for order in (kp, kco):
        assert client.put(f"/orders/{order['id']}", {"status": "completed"}).json()["status"] == "completed"
        assert _payments(client, order["id"])["captures"] == []
    assert "Klarna capture request was not sent because order management is disabled for capture." in [
        n["note"] for n in _notes(client, kp["id"])
    ]
    assert [n["note"] for n in _notes(client, kco["id"])][
        -1
    ] == "Order status changed from Processing to Completed."


# -- Nexi and Svea -----------------------------------------------------------------------------------


def _nexi_order(client: Woo, **meta) -> dict:
    values = {
        "_dibs_payment_id": "0260000062a2d9b1e8c5e4a2a5b60c40",
        "_dibs_date_paid": "2026-05-04 10:00:00",
        "dibs_payment_type": "CARD",
        "dibs_payment_method": "Visa",
        **meta,
    }
    return client.post(
        "/orders",
        {
            "payment_method": "dibs_easy",
            "transaction_id": values["_dibs_payment_id"],
            "set_paid": True,
            "billing": {"email": "kim@example.se"},
            "line_items": [{"product_id": 24}],
            "meta_data": [{"key": k, "value": v} for k, v in values.items() if v is not None],
        },
    ).json()


def test_nexi_charges_only_when_manage_orders_is_on(server):
    client = _new_store(server)
    order = _nexi_order(client)
    done = client.put(f"/orders/{order['id']}", {"status": "completed"}).json()
    assert done["status"] == "completed" and _meta(done, "_dibs_charge_id") is None
    assert [n["note"] for n in _notes(client, order["id"])][
        -1
    ] == "Order status changed from Processing to Completed."
    assert _payments(client, order["id"])["captures"] == []

    _control(client, "POST", "/settings", {"payment_settings": {"dibs_manage_orders": "yes"}})
    order = _nexi_order(client)
    done = client.put(f"/orders/{order['id']}", {"status": "completed"}).json()
    charge_id = _meta(done, "_dibs_charge_id")
    assert done["status"] == "completed" and re.fullmatch(r"[0-9a-f]{32}", charge_id)
    assert f"Payment charged in Nexi with charge ID {charge_id}" in [
        n["note"] for n in _notes(client, order["id"])
    ]
    assert [c["id"] for c in _payments(client, order["id"])["captures"]] == [charge_id]

    failing = _nexi_order(client, _sandbox_capture="api_error")
    held = client.put(f"/orders/{failing['id']}", {"status": "completed"}).json()
    assert held["status"] == "on-hold"
    texts = [n["note"] for n in _notes(client, failing["id"])]
    assert "Nexi Error: Unable to activate the order! API Error 503, message : Service Unavailable" in texts
    assert "Order status changed from Completed to On hold." in texts  # a separate transition note

    no_id = _nexi_order(client, _dibs_payment_id=None)
    held = client.put(f"/orders/{no_id['id']}", {"status": "completed"}).json()
    assert held["status"] == "on-hold"
    assert any(n["note"].startswith("Nexi Error: No payment ID found") for n in _notes(client, no_id["id"]))


def test_svea_delivers_and_a_failed_delivery_leaves_the_order_completed(server):
    client = _new_store(server)

    def svea(**meta):
        return client.post(
            "/orders",
            {
                "payment_method": "svea_checkout",
                "set_paid": True,
                "transaction_id": "9001",
                "billing": {"email": "kim@example.se"},
                "line_items": [{"product_id": 24}],
                "meta_data": [{"key": "_svea_co_order_id", "value": "9001"}]
                + [{"key": k, "value": v} for k, v in meta.items()],
            },
        ).json()

    order = svea()
    done = client.put(f"/orders/{order['id']}", {"status": "completed"}).json()
    assert done["status"] == "completed"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", _meta(done, "_svea_co_deliver_date"))
    assert "Order was delivered in Svea." in [n["note"] for n in _notes(client, order["id"])]
    assert len(_payments(client, order["id"])["captures"]) == 1

    failing = svea(_sandbox_capture="api_error")
    done = client.put(f"/orders/{failing['id']}", {"status": "completed"}).json()
    assert done["status"] == "completed" and _meta(done, "_svea_co_deliver_date") is None
    assert "Error received when trying to deliver order in Svea: Service Unavailable" in [
        n["note"] for n in _notes(client, failing["id"])
    ]


# -- e-mails, a person in wp-admin, the status-write log --------------------------------------------


def test_email_log_for_status_changes_and_customer_notes(server):
    client = _new_store(server)
    order = client.post(
        "/orders", {"billing": {"email": "kim@example.se"}, "line_items": [{"product_id": 24}]}
    ).json()
    client.put(f"/orders/{order['id']}", {"status": "processing"})
    client.put(f"/orders/{order['id']}", {"status": "completed"})
    client.post(f"/orders/{order['id']}/notes", {"note": "Paketet är på väg", "customer_note": True})
    client.post(f"/orders/{order['id']}/notes", {"note": "Internt"})
    emails = _control(client, "GET", "/emails", params={"order_id": order["id"]}).json()["emails"]
    assert [(e["email"], e["to"]) for e in emails] == [
        ("new_order", "admin@shop.example"),
        ("customer_processing_order", "kim@example.se"),
        ("customer_completed_order", "kim@example.se"),
        ("customer_note", "kim@example.se"),
    ]
    completed = emails[2]
    assert completed["subject"] == "Your Butik order is now complete" and completed["order_id"] == order["id"]
    assert abs(completed["sent_at"] - time.time()) < 60

    _control(client, "POST", "/settings", {"emails": {"customer_completed_order": False}})
    other = client.post(
        "/orders",
        {"status": "processing", "billing": {"email": "kim@example.se"}, "line_items": [{"product_id": 24}]},
    ).json()
    client.put(f"/orders/{other['id']}", {"status": "completed"})
    sent = [
        e["email"]
        for e in _control(client, "GET", "/emails", params={"order_id": other["id"]}).json()["emails"]
    ]
    assert "customer_completed_order" not in sent and "customer_processing_order" in sent
    cancelled = client.post(
        "/orders",
        {"status": "on-hold", "billing": {"email": "kim@example.se"}, "line_items": [{"product_id": 24}]},
    ).json()
    client.put(f"/orders/{cancelled['id']}", {"status": "cancelled"})
    sent = _control(client, "GET", "/emails", params={"order_id": cancelled["id"]}).json()["emails"]
    assert [(e["email"], e["to"]) for e in sent] == [
        ("new_order", "admin@shop.example"),
        ("customer_on_hold_order", "kim@example.se"),
        ("cancelled_order", "admin@shop.example"),
    ]


def test_a_person_completing_the_order_in_wp_admin(server):
    receiver = Receiver()
    try:
        client = _new_store(server)
        order = _klarna_order(client)
        client.post("/webhooks", {"topic": "order.updated", "delivery_url": receiver.url, "secret": "s"})
        requests.post(server.url + "/_sandbox/webhooks/config", json={"delivery_delay": 30}, timeout=5)
        _later(client)
        response = _control(
            client, "POST", f"/orders/{order['id']}/status", {"status": "completed", "by": "Anna"}
        )
        done = response.json()
        assert done["status"] == "completed" and done["date_modified_gmt"] > order["date_modified_gmt"]
        assert UUID.match(_meta(done, "_wc_klarna_capture_id"))  # the plugin ran as for any completion
        notes = _notes(client, order["id"])
        assert (notes[-1]["note"], notes[-1]["author"]) == (
            "Order status changed from Processing to Completed.",
            "Anna",
        )
        assert notes[-2]["author"] != "Anna" and notes[-2]["note"].startswith("Klarna order captured.")
        pending = _control(client, "GET", "/deliveries").json()["pending"]
        assert {"resource_id": order["id"], "topic": "order.updated"} in [
            {k: p[k] for k in ("resource_id", "topic")} for p in pending
        ]
        emails = _control(client, "GET", "/emails", params={"order_id": order["id"]}).json()["emails"]
        assert "customer_completed_order" in [e["email"] for e in emails]
        bad = requests.post(
            f"{client.base}/_sandbox/orders/{order['id']}/status", json={"status": "shipped"}, timeout=10
        )
        assert bad.status_code == 400
    finally:
        requests.post(server.url + "/_sandbox/webhooks/config", json={"delivery_delay": 0.05}, timeout=5)
        requests.post(server.url + "/_sandbox/webhooks/flush", timeout=30)
        receiver.close()


def test_status_write_log_counts_every_status_change(server):
    client = _new_store(server)
    order = _klarna_order(client, meta=[{"key": "_sandbox_capture", "value": "api_error"}])
    client.put(f"/orders/{order['id']}", {"status": "completed"})
    _control(client, "POST", f"/orders/{order['id']}/status", {"status": "cancelled", "by": "Bo"})
    client.put(f"/orders/{order['id']}", {"status": "cancelled"})  # no change, no write
    writes = _control(client, "GET", "/status-writes", params={"order_id": order["id"]}).json()
    assert [(w["from"], w["to"], w["by"]) for w in writes["status_writes"]] == [
        ("pending", "processing", "rest"),
        ("processing", "completed", "rest"),
        ("completed", "on-hold", "plugin"),
        ("on-hold", "cancelled", "person"),
    ]
    assert writes["count"] == 4 and all(abs(w["at"] - time.time()) < 60 for w in writes["status_writes"])
    everything = _control(client, "GET", "/status-writes").json()["status_writes"]
    assert len(everything) >= 4


def test_plugins_payments_emails_and_logs_survive_a_restart(server, tmp_path):
    client = _new_store(
        server,
        plugins=["ast", "klarna", "svea"],
        features={"fulfillments": True},
        payment_settings={"dibs_manage_orders": "yes"},
        emails={"customer_note": False},
    )
    order = _klarna_order(client)
    client.put(f"/orders/{order['id']}", {"status": "completed"})
    prefix = client.base[len(server.url) :]
    state = tmp_path / "woocommerce.json"
    with server.app.lock:
        state.write_bytes(json_dumps(server.app.state_dump()))
    clone = WooCommerceSandbox()
    srv = SandboxServer(clone, port=0, state_file=state).start()
    try:
        again = Woo(srv.url + prefix, client.key, client.secret)
        settings = _control(again, "GET", "/settings").json()
        assert settings["plugins"] == ["ast", "klarna", "svea"] and settings["features"] == {
            "fulfillments": True
        }
        assert settings["payment_settings"]["dibs_manage_orders"] == "yes"
        assert settings["emails"]["customer_note"] is False
        assert _payments(again, order["id"]) == _payments(client, order["id"])
        writes = _control(again, "GET", "/status-writes", params={"order_id": order["id"]}).json()[
            "status_writes"
        ]
        assert [(w["from"], w["to"]) for w in writes] == [
            ("pending", "processing"),
            ("processing", "completed"),
        ]
        emails = _control(again, "GET", "/emails", params={"order_id": order["id"]}).json()["emails"]
        assert "customer_completed_order" in [e["email"] for e in emails]
        index = requests.get(again.base + "/wp-json/", timeout=10).json()
        assert "wc-ast/v3" in index["namespaces"] and FULFILLMENTS_ROUTE in index["routes"]
        # The restored store keeps guarding: completing again after on-hold does not capture twice.
        again.put(f"/orders/{order['id']}", {"status": "on-hold"})
        assert again.put(f"/orders/{order['id']}", {"status": "completed"}).json()["status"] == "completed"
        assert len(_payments(again, order["id"])["captures"]) == 1
    finally:
        srv.stop()
