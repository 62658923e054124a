"""Order notes: ``/orders/<id>/notes``.

Follows, in ``woocommerce/woocommerce`` (``plugins/woocommerce/``):
``includes/rest-api/Controllers/Version3/class-wc-rest-order-notes-controller.php`` (and v2):
``type=any|customer|internal``, ``customer_note`` (shown and mailed to the customer),
``added_by_user``, delete only with ``force``; ``includes/class-wc-order.php``
``add_order_note`` (the system notes on status changes; a customer note fires
``woocommerce_new_customer_note``, the ``customer_note`` e-mail of ``emails.py``).
"""

from __future__ import annotations

from ..http import SandboxRequest, SandboxResponse
from .common import REST_BASE, WooError, _invalid_param, _truthy, wp_response
from .store import Store


class NotesMixin:
    """The order notes controller, and the system notes orders add on status changes."""

    def _note_order(self, store: Store, request: SandboxRequest) -> dict:
        order = store.orders.get(int(request.params["oid"]))
        if order is None:
            raise WooError("woocommerce_rest_order_invalid_id", "Invalid order ID.", 404)
        return order

    def _note_out(self, store: Store, order_id: int, note: dict) -> dict:
        data = dict(note)
        data["_links"] = self._links(
            store,
            f"/orders/{order_id}/notes/{note['id']}",
            f"/orders/{order_id}/notes",
            up=f"/orders/{order_id}",
            allow=("GET", "DELETE"),
        )
        return data

    def _add_note(self, store: Store, order_id: int, text: str, *, customer_note: bool, author: str) -> dict:
        local, gmt = store.stamp()
        note = {
            "id": store.next_id("comment"),
            "author": author,
            "date_created": local,
            "date_created_gmt": gmt,
            "note": text,
            "customer_note": customer_note,
        }
        store.notes.setdefault(order_id, []).append(note)
        return note

    def _notes_list(self, store: Store, request: SandboxRequest, after) -> SandboxResponse:
        order = self._note_order(store, request)
        kind = request.arg("type") or "any"
        if kind not in ("any", "customer", "internal"):
            raise _invalid_param(
                "type", "type is not one of any, customer, and internal.", "rest_not_in_enum"
            )
        notes = [
            n
            for n in reversed(store.notes.get(order["id"], []))
            if kind == "any" or (kind == "customer") == bool(n.get("customer_note"))
        ]
        return wp_response([self._note_out(store, order["id"], n) for n in notes])

    def _note_create(self, store: Store, request: SandboxRequest, after) -> SandboxResponse:
        order = self._note_order(store, request)
        data = self._body(request)
        if not data.get("note"):
            raise WooError("rest_missing_callback_param", "Missing parameter(s): note", 400, params=["note"])
        author = "admin" if _truthy(data.get("added_by_user")) else "system"
        note = self._add_note(
            store,
            order["id"],
            str(data["note"]),
            customer_note=_truthy(data.get("customer_note")),
            author=author,
        )
        if note["customer_note"]:
            # add_order_note( $note, 1 ) fires woocommerce_new_customer_note: the customer_note e-mail.
            self._send_email(store, order, "customer_note")
        self.changed()
        location = f"{store.home()}{REST_BASE}/orders/{order['id']}/notes/{note['id']}"
        return wp_response(self._note_out(store, order["id"], note), 201, [("Location", location)])

    def _find_note(self, store: Store, order: dict, note_id: int) -> dict:
        note = next((n for n in store.notes.get(order["id"], []) if n["id"] == note_id), None)
        if note is None:
            raise WooError("woocommerce_rest_invalid_id", "Invalid resource ID.", 404)
        return note

    def _note_get(self, store: Store, request: SandboxRequest, after) -> SandboxResponse:
        order = self._note_order(store, request)
        return wp_response(
            self._note_out(store, order["id"], self._find_note(store, order, int(request.params["id"])))
        )

    def _note_delete(self, store: Store, request: SandboxRequest, after) -> SandboxResponse:
        order = self._note_order(store, request)
        note = self._find_note(store, order, int(request.params["id"]))
        if not _truthy(request.arg("force")):
            raise WooError("woocommerce_rest_trash_not_supported", "Webhooks do not support trashing.", 501)
        store.notes[order["id"]] = [n for n in store.notes[order["id"]] if n is not note]
        self.changed()
        return wp_response(self._note_out(store, order["id"], note))
