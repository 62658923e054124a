"""Core order fulfillments: ``/wc/v3/orders/<order_id>/fulfillments[/<id>[/metadata]]``.

A WooCommerce feature that is off by default (``FeaturesController``: ``fulfillments``,
``enabled_by_default`` false, no UI); while off, the routes do not exist (404 ``rest_no_route``).
On, it is ``features: {"fulfillments": true}`` of the store.

Follows, in ``woocommerce/woocommerce`` (``plugins/woocommerce/src/``):
- ``Internal/Fulfillments/OrderFulfillmentsRestController.php``: the routes, the permission check
  (the order must exist, 404 ``woocommerce_rest_order_invalid_id``, before the capability check),
  ``get_raw_data`` answers, errors as ``{code: <exception code>, message, data: {status: 400}}``
  (so mostly ``code: 0``), ``notify_customer`` (the created e-mail only for a fulfilled
  fulfillment, the updated one when it stays fulfilled, the deleted one for a fulfilled one);
- ``Internal/Fulfillments/Fulfillment.php`` and ``WC_Data::set_meta_data`` (a posted meta entry
  needs ``id``, ``0`` for a new one, or it is dropped); ``Internal/DataStores/Fulfillments/
  FulfillmentsDataStore.php`` (status ``fulfilled``/``unfulfilled``, ``_items`` required as
  ``[{item_id: int, qty: number}]``, ``_date_fulfilled``, soft delete with ``date_deleted``,
  ``current_time( 'mysql' )`` dates);
- ``Internal/Fulfillments/FulfillmentsManager.php`` + ``FulfillmentUtils::calculate_order_fulfillment_status``:
  order meta ``_fulfillment_status`` (``unfulfilled`` on a new order; then ``fulfilled`` when every
  fulfillment is fulfilled and no item is left, ``partially_fulfilled`` when some are,
  ``unfulfilled``, or ``no_fulfillments``), saved on the order (modified now, ``order.updated``);
  no order status change, so no payment capture;
- ``Internal/Fulfillments/FulfillmentOrderNotes.php`` (WooCommerce 10.7+): the order notes
  "Fulfillment #N created (status: s). Items: Name xQ. Tracking: T.", "... updated. ...",
  "... status changed from a to b.", "Fulfillment #N deleted." and "Order fulfillment status changed
  from a to b." (the last one's call site is in a newer ``FulfillmentsManager`` than the one read:
  [inferred]).
"""

from __future__ import annotations

from ..http import SandboxRequest, SandboxResponse
from .common import WooError, _dec, _truthy, wp_response
from .store import Store

FULFILLMENT_STATUSES = ("fulfilled", "unfulfilled")


def _error(message: str, code=0) -> WooError:
    """``prepare_error_response( $e->getCode(), $e->getMessage(), 400 )``."""
    return WooError(code, message, 400)


def _mysql_now(store: Store) -> str:
    return store.stamp()[0].replace("T", " ")


class FulfillmentsMixin:
    """The order fulfillments controller and what a fulfillment does to its order."""

    def _fulfillments_available(self, store: Store, request: SandboxRequest) -> bool:
        return bool(store.features.get("fulfillments"))

    def _fulfillment_permission(self, store: Store, request: SandboxRequest, auth) -> None:
        """``check_permission_for_fulfillments``: the order first, then ``manage_woocommerce``."""
        if int(request.params["oid"]) not in store.orders:
            raise WooError("woocommerce_rest_order_invalid_id", "Invalid order ID.", 404)
        if auth.anonymous:
            # get_authentication_error_by_method, status rest_authorization_required_code() [inferred texts].
            raise self._cannot(
                {"GET": "view", "POST": "create", "PUT": "edit", "PATCH": "edit", "DELETE": "delete"}.get(
                    request.method, "view"
                ),
                request,
            )

    def _fulfillments_on_new_order(self, store: Store, order: dict) -> None:
        """``update_order_fulfillment_status_on_new_order`` (``woocommerce_new_order``)."""
        if store.features.get("fulfillments"):
            self._meta_update(store, order, "_fulfillment_status", "unfulfilled")

    # -- records --
    @staticmethod
    def _fulfillment_raw(record: dict) -> dict:
        return {k: v for k, v in record.items() if not k.startswith("__")}

    def _fulfillment_for(self, store: Store, request: SandboxRequest) -> dict:
        """``new Fulfillment( $id )`` then ``validate_fulfillment``."""
        record = store.fulfillments.get(int(request.params["fid"]))
        if record is None:
            raise _error("Fulfillment not found.")
        if record["entity_type"] != "WC_Order" or record["entity_id"] != str(int(request.params["oid"])):
            raise _error("Invalid fulfillment ID.")
        return record

    def _order_fulfillments(self, store: Store, order_id: int) -> list[dict]:
        return [
            f
            for f in store.fulfillments.values()
            if f["entity_id"] == str(order_id) and not f.get("date_deleted")
        ]

    @staticmethod
    def _fulfillment_meta(record: dict, key: str):
        return next((m["value"] for m in record["meta_data"] if m["key"] == key), None)

    @staticmethod
    def _fulfillment_items(record: dict) -> list:
        items = next((m["value"] for m in record["meta_data"] if m["key"] == "_items"), None)
        if isinstance(items, dict):
            items = list(items.values())
        return items if isinstance(items, list) else []

    def _fulfillment_validate(self, record: dict) -> None:
        """``FulfillmentsDataStore::create/update``: the status, then ``validate_items``."""
        if record.get("status") not in FULFILLMENT_STATUSES:
            raise _error("Invalid fulfillment status.")
        items = self._fulfillment_meta(record, "_items")
        if not items:
            raise _error("The fulfillment should contain at least one item.")
        if not isinstance(items, (list, dict)):
            raise _error("The fulfillment items should be an array.")
        for item in self._fulfillment_items(record):
            item_id = item.get("item_id") if isinstance(item, dict) else None
            qty = item.get("qty") if isinstance(item, dict) else None
            if (
                not isinstance(item_id, int)
                or isinstance(item_id, bool)
                or item_id <= 0
                or not isinstance(qty, (int, float))
                or isinstance(qty, bool)
                or qty <= 0
            ):
                raise _error("Invalid item.")

    def _fulfillment_posted_meta(self, store: Store, posted) -> list[dict]:
        """``WC_Data::set_meta_data``: only entries with ``key``, ``value`` and ``id`` (0 = new) are kept."""
        out = []
        for meta in posted or []:
            if isinstance(meta, dict) and all(
                k in meta and meta[k] is not None for k in ("key", "value", "id")
            ):
                out.append(
                    {"id": store.next_id("fulfillment_meta"), "key": meta["key"], "value": meta["value"]}
                )
        return out

    def _fulfillment_update_meta(self, store: Store, record: dict, posted: list) -> None:
        """The update route: ``update_meta_data( key, value, id )`` for each posted entry, then every other
        key deleted."""
        for meta in posted:
            if not isinstance(meta, dict) or "key" not in meta:
                continue
            target = None
            if meta.get("id"):
                target = next((m for m in record["meta_data"] if m["id"] == meta["id"]), None)
            if target is None:
                target = next((m for m in record["meta_data"] if m["key"] == meta["key"]), None)
            if target is None:
                record["meta_data"].append(
                    {"id": store.next_id("fulfillment_meta"), "key": meta["key"], "value": meta.get("value")}
                )
            else:
                target["key"], target["value"] = meta["key"], meta.get("value")
        keys = {m.get("key") for m in posted if isinstance(m, dict)}
        record["meta_data"] = [m for m in record["meta_data"] if m["key"] in keys]

    # -- what a change does to the order --
    def _qty_refunded(self, store: Store, order: dict, item_id: int) -> int:
        total = 0
        for refund in store.refunds.values():
            if refund.get("__order_id") != order["id"]:
                continue
            for line in refund.get("line_items", []):
                if any(
                    m.get("key") == "_refunded_item_id" and str(m.get("value")) == str(item_id)
                    for m in line.get("meta_data", [])
                ):
                    total += int(line.get("quantity") or 0)
        return total  # negative, as WooCommerce keeps it

    def _order_fulfillment_status(self, store: Store, order: dict) -> str:
        fulfillments = self._order_fulfillments(store, order["id"])
        if not fulfillments:
            return "no_fulfillments"
        in_fulfillments: dict = {}
        for record in fulfillments:
            for item in self._fulfillment_items(record):
                if isinstance(item, dict):
                    in_fulfillments[item.get("item_id")] = in_fulfillments.get(item.get("item_id"), 0) + _dec(
                        item.get("qty")
                    )
        pending = [
            li
            for li in order.get("line_items", [])
            if int(li.get("quantity") or 0)
            + self._qty_refunded(store, order, li["id"])
            - in_fulfillments.get(li["id"], 0)
            > 0
        ]
        fulfilled = [bool(f.get("is_fulfilled")) for f in fulfillments]
        if all(fulfilled) and not pending:
            return "fulfilled"
        return "partially_fulfilled" if any(fulfilled) else "unfulfilled"

    def _fulfillment_note(self, store: Store, order: dict, text: str) -> None:
        self._add_note(store, order["id"], text, customer_note=False, author="system")

    def _fulfillment_items_text(self, order: dict, record: dict) -> str:
        names = {li["id"]: li.get("name", "") for li in order.get("line_items", [])}
        parts = []
        for item in self._fulfillment_items(record):
            item_id = item.get("item_id", 0) if isinstance(item, dict) else 0
            qty = item.get("qty", 0) if isinstance(item, dict) else 0
            parts.append(f"{names.get(item_id) or f'Item #{item_id}'} x{qty}")
        return ", ".join(parts)

    def _fulfillment_changed(
        self, store: Store, order: dict, record: dict, event: str, old_status: str | None = None
    ) -> None:
        """``woocommerce_fulfillment_after_<event>``: the note, the order's ``_fulfillment_status``, the save."""
        if event == "deleted":
            self._fulfillment_note(store, order, f"Fulfillment #{record['id']} deleted.")
        elif event == "updated" and old_status is not None and old_status != record["status"]:
            self._fulfillment_note(
                store,
                order,
                f"Fulfillment #{record['id']} status changed from {old_status} to {record['status']}.",
            )
        else:
            items = self._fulfillment_items_text(order, record)
            text = (
                f"Fulfillment #{record['id']} created (status: {record['status']}). Items: {items}."
                if event == "created"
                else f"Fulfillment #{record['id']} updated. Items: {items}."
            )
            tracking = self._fulfillment_meta(record, "_tracking_number")
            if isinstance(tracking, str) and tracking:
                text += f" Tracking: {tracking}."
            self._fulfillment_note(store, order, text)
        before = self._meta_value(order, "_fulfillment_status") or "no_fulfillments"
        after = self._order_fulfillment_status(store, order)
        self._meta_update(store, order, "_fulfillment_status", after)
        if before != after:
            self._fulfillment_note(
                store, order, f"Order fulfillment status changed from {before} to {after}."
            )
        self._touch_order(store, order)
        self._fire(store, "order.updated", order["id"])
        self.changed()

    # -- routes --
    def _fulfillments_list(self, store: Store, request: SandboxRequest, after) -> SandboxResponse:
        return wp_response(
            [self._fulfillment_raw(f) for f in self._order_fulfillments(store, int(request.params["oid"]))]
        )

    def _fulfillment_create(self, store: Store, request: SandboxRequest, after) -> SandboxResponse:
        order = store.orders[int(request.params["oid"])]
        data = self._body(request)
        if data.get("meta_data") is None:
            raise WooError(
                "rest_missing_callback_param", "Missing parameter(s): meta_data", 400, params=["meta_data"]
            )
        if not isinstance(data["meta_data"], list):
            raise WooError(
                "rest_invalid_param",
                "Invalid parameter(s): meta_data",
                400,
                params={"meta_data": "meta_data is not of type array."},
            )
        now = _mysql_now(store)
        record = {
            "id": 0,
            "entity_type": "WC_Order",
            "entity_id": str(order["id"]),
            "status": data.get("status", "unfulfilled"),
            "is_fulfilled": _truthy(data.get("is_fulfilled", False)),
            "date_updated": now,
            "date_deleted": None,
            "meta_data": self._fulfillment_posted_meta(store, data["meta_data"]),
        }
        self._fulfillment_validate(record)
        if record["is_fulfilled"]:
            record["meta_data"].append(
                {"id": store.next_id("fulfillment_meta"), "key": "_date_fulfilled", "value": now}
            )
        record["id"] = store.next_id("fulfillment")
        store.fulfillments[record["id"]] = record
        self._fulfillment_changed(store, order, record, "created")
        if record["is_fulfilled"] and _truthy(data.get("notify_customer")):
            self._send_email(store, order, "customer_fulfillment_created")
        return wp_response(self._fulfillment_raw(record), 201)

    def _fulfillment_get(self, store: Store, request: SandboxRequest, after) -> SandboxResponse:
        record = self._fulfillment_for(store, request)
        if record.get("date_deleted"):
            raise _error("Fulfillment not found.", 404)  # thrown with code 404, answered as 400
        return wp_response(self._fulfillment_raw(record))

    def _fulfillment_update(self, store: Store, request: SandboxRequest, after) -> SandboxResponse:
        order = store.orders[int(request.params["oid"])]
        record = self._fulfillment_for(store, request)
        data = self._body(request)
        if record.get("date_deleted"):
            return wp_response(self._fulfillment_raw(record))  # the data store's update() does nothing
        changed = {k: v for k, v in record.items()}
        changed["meta_data"] = [dict(m) for m in record["meta_data"]]
        if "status" in data:
            changed["status"] = data["status"]
        if "is_fulfilled" in data:
            changed["is_fulfilled"] = _truthy(data["is_fulfilled"])
        if isinstance(data.get("meta_data"), list):
            self._fulfillment_update_meta(store, changed, data["meta_data"])
        self._fulfillment_validate(changed)
        was_fulfilled, old_status = record["is_fulfilled"], record["status"]
        now = _mysql_now(store)
        changed["date_updated"] = now
        if changed["is_fulfilled"] and self._fulfillment_meta(changed, "_date_fulfilled") is None:
            changed["meta_data"].append(
                {"id": store.next_id("fulfillment_meta"), "key": "_date_fulfilled", "value": now}
            )
        record.clear()
        record.update(changed)
        self._fulfillment_changed(store, order, record, "updated", old_status)
        if _truthy(data.get("notify_customer")):
            if not was_fulfilled and record["is_fulfilled"]:
                self._send_email(store, order, "customer_fulfillment_created")
            elif record["is_fulfilled"]:
                self._send_email(store, order, "customer_fulfillment_updated")
        return wp_response(self._fulfillment_raw(record))

    def _fulfillment_delete(self, store: Store, request: SandboxRequest, after) -> SandboxResponse:
        order = store.orders[int(request.params["oid"])]
        record = self._fulfillment_for(store, request)
        if not record.get("date_deleted"):
            record["date_deleted"] = _mysql_now(store)
            self._fulfillment_changed(store, order, record, "deleted")
        if record["is_fulfilled"] and _truthy(
            request.arg("notify_customer") or self._body(request).get("notify_customer")
        ):
            self._send_email(store, order, "customer_fulfillment_deleted")
        return wp_response({"message": "Fulfillment deleted successfully."})

    def _fulfillment_meta_get(self, store: Store, request: SandboxRequest, after) -> SandboxResponse:
        return wp_response(self._fulfillment_for(store, request)["meta_data"])

    def _fulfillment_meta_update(self, store: Store, request: SandboxRequest, after) -> SandboxResponse:
        order = store.orders[int(request.params["oid"])]
        record = self._fulfillment_for(store, request)
        data = self._body(request)
        if not isinstance(data.get("meta_data"), list):
            raise WooError(
                "rest_missing_callback_param", "Missing parameter(s): meta_data", 400, params=["meta_data"]
            )
        if record.get("date_deleted"):
            raise _error("Cannot update meta for a deleted fulfillment.")
        changed = dict(record, meta_data=[dict(m) for m in record["meta_data"]])
        self._fulfillment_update_meta(store, changed, data["meta_data"])
        self._fulfillment_validate(changed)
        changed["date_updated"] = _mysql_now(store)
        record.update(changed)
        self._fulfillment_changed(store, order, record, "updated", record["status"])
        return wp_response(record["meta_data"])

    def _fulfillment_meta_delete(self, store: Store, request: SandboxRequest, after) -> SandboxResponse:
        order = store.orders[int(request.params["oid"])]
        record = self._fulfillment_for(store, request)
        key = request.arg("meta_key") or self._body(request).get("meta_key")
        if not key:
            raise WooError(
                "rest_missing_callback_param", "Missing parameter(s): meta_key", 400, params=["meta_key"]
            )
        if record.get("date_deleted"):
            raise _error("Cannot delete meta from a deleted fulfillment.")
        changed = dict(record, meta_data=[m for m in record["meta_data"] if m["key"] != key])
        self._fulfillment_validate(changed)
        changed["date_updated"] = _mysql_now(store)
        record.update(changed)
        self._fulfillment_changed(store, order, record, "updated", record["status"])
        return wp_response(record["meta_data"])
