"""A delivery's carrier, tracking number and link, written where the shop can show them.

Which way a shop has is read from its REST index (``GET /wp-json/``, the ``namespaces``
list and the ``routes``) by "test connection" (``../shared/docs/payments-and-tracking.md`` §7):

- ``wc-ast/v3``: Advanced Shipment Tracking (zorem). It also registers
  ``wc-shipment-tracking/v3``, so it is looked for first;
- ``wc-shipment-tracking/v3``: WooCommerce's Shipment Tracking extension;
- a route ``/wc/v3/orders/<id>/fulfillments``: WooCommerce's own order fulfillments, a
  feature a shop switches on (absent otherwise);
- none of them: a note to the buyer with the carrier, number and link.

Each write first looks whether the number is already on the order, so a retry after a
timeout (the shop may have saved it) never adds it twice. Unverified, and said so in
README: how AST treats a carrier name it does not know (we send the name as Hogia Smart
gives it), and what happens when both tracking plugins are active.
"""

from __future__ import annotations

from django.utils import timezone
from django.utils.translation import gettext as _

from integrations.clients.woocommerce import WooCommerceClient
from integrations.models import TrackingMethod

NAMESPACE = {TrackingMethod.SHIPMENT_TRACKING: "wc-shipment-tracking/v3", TrackingMethod.AST: "wc-ast/v3"}


def tracking_method_from_index(index: dict) -> str:
    namespaces = set(index.get("namespaces") or [])
    routes = index.get("routes") or {}
    if "wc-ast/v3" in namespaces:
        return TrackingMethod.AST
    if "wc-shipment-tracking/v3" in namespaces:
        return TrackingMethod.SHIPMENT_TRACKING
    if any(
        str(route).startswith("/wc/v3/orders/") and str(route).rstrip("/").endswith("/fulfillments")
        for route in routes
    ):
        return TrackingMethod.FULFILLMENTS
    return TrackingMethod.NOTE


def tracking_text(delivery: dict) -> str:
    """The delivery in a sentence for the buyer (a note) and for the timeline."""
    text = _("Sent with %(carrier)s, tracking number %(number)s.") % {
        "carrier": delivery.get("carrier") or _("the carrier"),
        "number": delivery.get("trackingNumber", ""),
    }
    if delivery.get("trackingUrl"):
        text += " " + _("Follow the parcel: %(url)s") % {"url": delivery["trackingUrl"]}
    return text


def tracking_on_order(woo: WooCommerceClient, *, method: str, order_id: int, number: str) -> bool:
    """Whether the shop already shows this tracking number on the order (through ``method``)."""
    if method in NAMESPACE:
        items = woo.shipment_trackings(order_id, namespace=NAMESPACE[method])
        return any(str(item.get("tracking_number") or "") == number for item in items)
    if method == TrackingMethod.FULFILLMENTS:
        return any(
            any(
                m.get("key") == "_tracking_number" and str(m.get("value")) == number
                for m in fulfillment.get("meta_data") or []
            )
            for fulfillment in woo.fulfillments(order_id)
        )
    return any(number in str(note.get("note") or "") for note in woo.order_notes(order_id, kind="customer"))


def tracking_write(woo: WooCommerceClient, *, method: str, order: dict, delivery: dict) -> None:
    """Put the tracking on the order through ``method`` (the note method is the buyer note's job)."""
    order_id = int(order["id"])
    number = delivery["trackingNumber"]
    carrier = delivery.get("carrier") or ""
    today = timezone.localdate()
    if method == TrackingMethod.SHIPMENT_TRACKING:
        body = {"tracking_number": number, "date_shipped": today.isoformat()}
        if delivery.get("trackingUrl"):
            body.update(
                custom_tracking_provider=carrier or _("Carrier"), custom_tracking_link=delivery["trackingUrl"]
            )
        else:
            body["tracking_provider"] = carrier
        woo.shipment_tracking_create(order_id, body, namespace=NAMESPACE[method])
    elif method == TrackingMethod.AST:
        # status_shipped 0: the portal sets the status itself (AST's 1 would complete the order
        # and set off the payment capture outside the portal's one owner of the status).
        # AST reads date_shipped in its own format setting, d-m-Y unless changed.
        woo.shipment_tracking_create(
            order_id,
            {
                "tracking_provider": carrier,
                "tracking_number": number,
                "date_shipped": today.strftime("%d-%m-%Y"),
                "status_shipped": 0,
            },
            namespace=NAMESPACE[method],
        )
    elif method == TrackingMethod.FULFILLMENTS:
        items = [
            {"item_id": int(line["id"]), "qty": int(line.get("quantity") or 0)}
            for line in order.get("line_items") or []
            if line.get("id")
        ]
        woo.fulfillment_create(
            order_id,
            {
                "status": "fulfilled",
                "is_fulfilled": True,
                "notify_customer": False,
                # id 0: a new entry; WC_Data::set_meta_data drops entries without an id.
                "meta_data": [
                    {"id": 0, "key": "_tracking_number", "value": number},
                    {"id": 0, "key": "_tracking_url", "value": delivery.get("trackingUrl", "")},
                    {"id": 0, "key": "_shipment_provider", "value": carrier},
                    {"id": 0, "key": "_items", "value": items},
                ],
            },
        )
