"""Who changes an order's status: the status-write log, and a person in wp-admin.

Every status change goes through ``OrdersMixin._set_status`` and is logged here as
``{order_id, from, to, at, by}`` with ``by`` one of ``rest`` (a REST client: status, ``set_paid``,
a refund), ``person`` (wp-admin, below), ``plugin`` (a payment plugin putting the order on hold)
and ``ast`` (Advanced Shipment Tracking's ``status_shipped``); ``GET {prefix}/_sandbox/status-writes``
shows it, so a benchmark can count what it wrote.

``POST {prefix}/_sandbox/orders/<id>/status`` stands for a person saving the order screen with a new
status: ``WC_Meta_Box_Order_Data::save`` calls ``$order->set_status( $status, '', true )``, a manual
change, so the transition note is added by that user (``add_order_note( ..., $is_customer_note,
$added_by_user = true )``: the note's author is the person's name), and the save runs the same hooks
as any other: the payment plugins' capture, the e-mails, stock, ``date_modified``, ``order.updated``.
"""

from __future__ import annotations

import time

from ..http import SandboxRequest, SandboxResponse, json_response
from .common import WooError, _invalid_param
from .store import Store


class StatusesMixin:
    """The status-write log and the wp-admin status change."""

    def _log_status_write(self, store: Store, order: dict, old: str | None, new: str, by: str) -> None:
        store.log(
            store.status_writes,
            {"order_id": order["id"], "from": old, "to": new, "at": time.time(), "by": by},
        )

    def _ctl_status_writes(self, store: Store, request: SandboxRequest) -> SandboxResponse:
        """``GET {prefix}/_sandbox/status-writes[?order_id=]``."""
        wanted = request.arg("order_id")
        writes = [w for w in store.status_writes if not wanted or str(w["order_id"]) == wanted]
        return json_response({"status_writes": writes, "count": len(writes)})

    def _ctl_order_status(self, store: Store, request: SandboxRequest) -> SandboxResponse:
        """``POST {prefix}/_sandbox/orders/<id>/status`` ``{"status": "completed", "by": "Anna"}``: the answer is
        the order as ``GET /wc/v3/orders/<id>`` gives it afterwards."""
        order = self._order_by_id(store, int(request.params["oid"]))
        data = request.json() or {}
        status = str(data.get("status") or "")
        status = status[3:] if status.startswith("wc-") else status
        if status not in [s for s, _ in store.order_statuses()]:
            raise _invalid_param(
                "status",
                f"status is not one of {', '.join(s for s, _ in store.order_statuses())}.",
                "rest_not_in_enum",
            )
        person = str(data.get("by") or "admin").strip() or "admin"
        if order.get("status") == "trash":
            raise WooError("sandbox_order_trashed", "The order is in the trash.", 400)
        self._set_status(store, order, status, by="person", author=person)
        self._finish_order(store, order)
        self._touch_order(store, order)  # the order screen saves the order even when the status is the same
        self._fire(store, "order.updated", order["id"])
        self.changed()
        return json_response(self._order_out(store, order))
