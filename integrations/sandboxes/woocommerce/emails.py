"""WooCommerce's own e-mails (``WC_Emails``): which transition sends which e-mail, kept as a log.

Nothing is sent anywhere: each e-mail WooCommerce would send is appended to the store's
``email_log`` (``GET {prefix}/_sandbox/emails``), so tests and benchmarks can see that completing
an order mailed the customer even when the payment capture then failed.

Follows, in ``woocommerce/woocommerce`` (``plugins/woocommerce/includes/emails/``), the
``add_action`` triggers in each class's constructor (``woocommerce_order_status_<from>_to_<to>_notification``,
fired by ``WC_Emails`` after ``WC_Order::status_transition`` has added its note):
- ``class-wc-email-new-order.php`` (admin): pending/failed/cancelled to processing/completed/on-hold,
  once per order (``_new_order_email_sent``);
- ``class-wc-email-customer-processing-order.php``: pending/failed/on-hold/cancelled to processing;
- ``class-wc-email-customer-completed-order.php``: any status to completed;
- ``class-wc-email-customer-on-hold-order.php``: pending/failed/cancelled to on-hold;
- ``class-wc-email-cancelled-order.php`` (admin): processing/on-hold/pending to cancelled (the
  version read also lists pending, not only processing and on-hold);
- ``class-wc-email-customer-cancelled-order.php``: processing/on-hold to cancelled, off by default
  (``'default' => $this->block_email_editor_enabled ? 'yes' : 'no'``; the block editor is off);
- ``class-wc-email-customer-refunded-order.php``: ``woocommerce_order_fully_refunded_notification``
  / ``..._partially_refunded_notification`` (the partial one is sent as
  ``customer_partially_refunded_order`` but switched by the same setting);
- ``class-wc-email-customer-note.php``: ``woocommerce_new_customer_note_notification``;
- ``class-wc-email-customer-fulfillment-created.php`` / ``-updated.php`` / ``-deleted.php``.
Subjects are the classic defaults (``email_improvements`` has no ``enabled_by_default`` in
``FeaturesController``), with ``{site_title}`` = blogname; ``{order_date}`` is formatted as
WordPress's default ``F j, Y`` [inferred]. Not imitated: failed-order e-mails, the new-account,
invoice and reset-password e-mails.
"""

from __future__ import annotations

import time
from datetime import datetime

from ..http import SandboxRequest, SandboxResponse, json_response
from .store import Store

# id: (enabled by default, to the admin, subject)
EMAILS = {
    "new_order": (True, True, "[{site_title}]: New order #{order_number}"),
    "cancelled_order": (True, True, "[{site_title}]: Order #{order_number} has been cancelled"),
    "customer_on_hold_order": (True, False, "Your {site_title} order has been received!"),
    "customer_processing_order": (True, False, "Your {site_title} order has been received!"),
    "customer_completed_order": (True, False, "Your {site_title} order is now complete"),
    "customer_refunded_order": (True, False, "Your {site_title} order #{order_number} has been refunded"),
    "customer_partially_refunded_order": (
        True,
        False,
        "Your {site_title} order #{order_number} has been partially refunded",
    ),
    "customer_cancelled_order": (
        False,
        False,
        "[{site_title}]: Your order #{order_number} has been cancelled",
    ),
    "customer_note": (True, False, "Note added to your {site_title} order from {order_date}"),
    "customer_fulfillment_created": (
        True,
        False,
        "An item from {site_title} order {order_number} has been fulfilled!",
    ),
    "customer_fulfillment_updated": (
        True,
        False,
        "A shipment from {site_title} order {order_number} has been updated",
    ),
    # Subject not read; worded like the other two [inferred].
    "customer_fulfillment_deleted": (
        True,
        False,
        "A shipment from {site_title} order {order_number} has been cancelled",
    ),
}
# The partially refunded e-mail is the refunded e-mail's object with another id: one setting.
SETTING_OF = {"customer_partially_refunded_order": "customer_refunded_order"}

# (from, to) -> e-mails, from each class's woocommerce_order_status_<from>_to_<to>_notification triggers.
_TRANSITIONS = {
    "new_order": {
        (f, t) for f in ("pending", "failed", "cancelled") for t in ("processing", "completed", "on-hold")
    },
    "customer_processing_order": {(f, "processing") for f in ("pending", "failed", "on-hold", "cancelled")},
    "customer_on_hold_order": {(f, "on-hold") for f in ("pending", "failed", "cancelled")},
    "cancelled_order": {(f, "cancelled") for f in ("processing", "on-hold", "pending")},
    "customer_cancelled_order": {(f, "cancelled") for f in ("processing", "on-hold")},
}


def email_settings(store: Store) -> dict[str, bool]:
    """Every e-mail with whether it is enabled on this store (defaults, then the store's switches)."""
    out = {}
    for email_id in EMAILS:
        setting = SETTING_OF.get(email_id, email_id)
        out[email_id] = bool(store.emails.get(setting, EMAILS[setting][0]))
    return out


class EmailsMixin:
    """``WC_Emails``: the e-mails order events send, appended to the store's log."""

    def _send_email(self, store: Store, order: dict, email_id: str) -> dict | None:
        if not email_settings(store).get(email_id):
            return None
        _default, to_admin, subject = EMAILS[email_id]
        recipient = (
            store.settings.get("admin_email") if to_admin else (order.get("billing") or {}).get("email")
        )
        if not recipient:
            return None  # WC_Email::trigger sends only when get_recipient() is set
        created = order.get("date_created") or ""
        try:
            order_date = datetime.fromisoformat(created).strftime("%B %-d, %Y") if created else ""
        except ValueError:
            order_date = created
        subject = (
            subject.replace("{site_title}", store.settings.get("blogname") or "")
            .replace("{order_number}", str(order.get("number") or order["id"]))
            .replace("{order_date}", order_date)
        )
        entry = {
            "id": store.next_id("email"),
            "order_id": order["id"],
            "email": email_id,
            "to": recipient,
            "subject": subject,
            "sent_at": time.time(),
        }
        store.log(store.email_log, entry)
        return entry

    def _status_emails(self, store: Store, order: dict, old: str, new: str) -> None:
        """The ``woocommerce_order_status_<old>_to_<new>`` notifications, after the transition note."""
        if (old, new) in _TRANSITIONS["new_order"] and not order.get("__new_order_email_sent"):
            if self._send_email(store, order, "new_order"):
                order["__new_order_email_sent"] = True
        for email_id in (
            "customer_processing_order",
            "customer_on_hold_order",
            "cancelled_order",
            "customer_cancelled_order",
        ):
            if (old, new) in _TRANSITIONS[email_id]:
                self._send_email(store, order, email_id)
        if new == "completed":
            self._send_email(store, order, "customer_completed_order")
        if new == "refunded":
            # A manual move to refunded runs wc_order_fully_refunded (a refund for what is left), a refund
            # that leaves nothing runs update_status('refunded'): either way the order is fully refunded.
            self._send_email(store, order, "customer_refunded_order")

    def _ctl_emails(self, store: Store, request: SandboxRequest) -> SandboxResponse:
        """``GET {prefix}/_sandbox/emails[?order_id=]``: the e-mails sent, oldest first, and the switches."""
        wanted = request.arg("order_id")
        emails = [e for e in store.email_log if not wanted or str(e["order_id"]) == wanted]
        return json_response({"emails": emails, "count": len(emails), "enabled": email_settings(store)})
