"""What the customer's pages say about an order and a sync run: plain words derived from
states, never the error text a remote system gave (that is for support, in the admin)."""

from django import template
from django.utils import formats, timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from integrations.models import HogiaInvoiceStatus, OrderEvent, OrderTransfer, PaymentCapture, SyncRun

register = template.Library()

State = OrderTransfer.State
Kind = SyncRun.Kind
Outcome = SyncRun.Outcome

ORDER_STATES = {
    State.RECEIVED: gettext_lazy("Received, on its way to Hogia Smart"),
    State.QUEUED: gettext_lazy("On its way to Hogia Smart"),
    State.TRANSFERRING: gettext_lazy("Being sent to Hogia Smart now"),
    State.HELD: gettext_lazy(
        "Held: this month's orders are used up; sent on the 1st, or at once if the package is raised"
    ),
    State.FILTERED: gettext_lazy("Not sent: its status in the shop is not one that is invoiced"),
    State.INVOICED: gettext_lazy("Invoiced in Hogia Smart"),
    State.CREDITED: gettext_lazy("Invoiced and credited in full"),
    State.NEEDS_ATTENTION: gettext_lazy("Needs attention: our support has been told"),
}
# A queued order whose next attempt lies ahead waits out a back-off after a failed attempt
# (a new, released or reopened order is due at once); it is retried without anyone acting.
RETRYING = gettext_lazy("Waiting for Hogia Smart, retried automatically")

# Timeline entries whose stored message carries a remote system's or the portal's own
# error text; the customer reads these instead.
EVENTS = {
    OrderEvent.Kind.ATTEMPT_FAILED: gettext_lazy(
        "This attempt did not get through. The portal tries again automatically."
    ),
    OrderEvent.Kind.NEEDS_ATTENTION: gettext_lazy(
        "Stopped: a person has to look at it. Our support has been told."
    ),
    OrderEvent.Kind.TAKEN_OVER: gettext_lazy("The transfer was started again."),
}

SYNC_KINDS = {
    Kind.ARTICLES: gettext_lazy("Products last updated %(when)s"),
    Kind.PRICES: gettext_lazy("Prices last updated %(when)s"),
    Kind.STOCK: gettext_lazy("Stock last updated %(when)s"),
    Kind.INITIAL_SYNC: gettext_lazy("Products first matched with Hogia Smart %(when)s"),
    Kind.ORDERS: gettext_lazy("Orders last fetched from the shop %(when)s"),
    Kind.ORDER_STATUS: gettext_lazy("Order statuses last sent to the shop %(when)s"),
    Kind.CONNECTION_TEST: gettext_lazy("Connection last checked %(when)s"),
    Kind.WEBHOOKS: gettext_lazy("The shop's notifications to the portal last set up %(when)s"),
}
SYNC_OUTCOMES = {
    Outcome.SUCCEEDED: gettext_lazy("all went well"),
    Outcome.PARTIAL: gettext_lazy("some of it failed; our support has been told"),
    Outcome.FAILED: gettext_lazy("it failed; our support has been told"),
    Outcome.RUNNING: gettext_lazy("still running"),
}


@register.filter
def order_state_words(order: OrderTransfer) -> str:
    if (
        order.state == State.QUEUED
        and order.attempts
        and order.next_attempt_at
        and order.next_attempt_at > timezone.now()
    ):
        return str(RETRYING)
    return str(ORDER_STATES.get(order.state, order.get_state_display()))


@register.filter
def invoice_status_words(status: str) -> str:
    return str(HogiaInvoiceStatus(status).label) if status in HogiaInvoiceStatus.values else status


CAPTURE_WORDS = {
    PaymentCapture.State.PENDING: gettext_lazy("the order is completed; waiting for %(provider)s to capture"),
    PaymentCapture.State.CAPTURED: gettext_lazy("captured by %(provider)s"),
    PaymentCapture.State.FAILED: gettext_lazy("%(provider)s did not capture it; our support has been told"),
    PaymentCapture.State.NOT_CAPTURED: gettext_lazy(
        "not captured by %(provider)s's plugin; capture it in %(provider)s's portal"
    ),
}


@register.filter
def capture_words(capture: PaymentCapture) -> str:
    from integrations.orders.capture import PROVIDER_NAMES

    return str(CAPTURE_WORDS[capture.state]) % {
        "provider": PROVIDER_NAMES.get(capture.provider, capture.provider)
    }


@register.filter
def event_words(event: OrderEvent) -> str:
    return str(EVENTS.get(event.kind, event.message))


@register.filter
def sync_words(run: SyncRun) -> str:
    """'Products last updated 2 December 14:05: all went well'."""
    when = formats.date_format(timezone.localtime(run.finished_at or run.started_at), "j F H:i")
    what = SYNC_KINDS.get(run.kind)
    what = what % {"when": when} if what else f"{run.get_kind_display()} {when}"
    return _("%(what)s: %(outcome)s") % {
        "what": what,
        "outcome": SYNC_OUTCOMES.get(run.outcome, run.get_outcome_display()),
    }
