import logging

from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import LoginView
from django.core.paginator import Paginator
from django.db import DatabaseError, connection
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone

from billing.forms import customers_for_user
from billing.models import Customer
from billing.selectors import customer_account
from integrations.models import OrderTransfer
from integrations.selectors import customer_order, customer_orders, customer_shop_statuses
from portal.cluster import hosts_seen, stale_after

logger = logging.getLogger(__name__)
ORDERS_PER_PAGE = 25


def home(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated and not request.user.is_staff:
        return redirect("account")
    return redirect("admin:index") if request.user.is_authenticated else redirect("login")


def favicon(request: HttpRequest) -> HttpResponse:
    """The portal has no icon; every browser asks for one, and a 404 for each is noise in the log."""
    response = HttpResponse(status=204)
    response["Cache-Control"] = "max-age=86400"
    return response


def health(request: HttpRequest) -> JsonResponse:
    """Liveness for a load balancer or a person: 200 when the database answers and at least one
    task cluster host's workers ran a heartbeat within ``HEALTH_STALE_SECONDS``; 503 otherwise."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        hosts = hosts_seen()
    except DatabaseError as exc:
        logger.warning("health: the database does not answer: %s", exc)
        return JsonResponse(
            {"status": "failing", "database": "unreachable", "task_cluster": "unknown", "hosts": []},
            status=503,
        )
    fresh = [host for host in hosts if host.fresh]
    return JsonResponse(
        {
            "status": "ok" if fresh else "failing",
            "database": "ok",
            "task_cluster": "ok" if fresh else "not seen",
            "stale_after_seconds": round(stale_after().total_seconds()),
            "hosts": [
                {
                    "name": host.name,
                    "fresh": host.fresh,
                    "stopped": host.stopped,
                    "beat_seconds_ago": round(host.beat_seconds_ago, 1),
                    "workers_beat_seconds_ago": (
                        round(host.workers_beat_seconds_ago, 1)
                        if host.workers_beat_seconds_ago is not None
                        else None
                    ),
                }
                for host in hosts
            ],
        },
        status=200 if fresh else 503,
    )


def _staff_viewing(request: HttpRequest) -> bool:
    """Support may open any customer's page to see what the customer sees ("view as customer")."""
    return request.user.is_staff and request.user.has_perm("billing.view_customer")


def _customer_of(request: HttpRequest):
    """The customer this login may see (the one chosen, if it may see several)."""
    chosen = request.GET.get("customer")
    if _staff_viewing(request):
        customer = Customer.objects.filter(pk=chosen).first() if chosen and chosen.isdigit() else None
        if customer is None:
            raise Http404("Choose a customer: /account/?customer=<id>.")
        return customer, [customer]
    customers = customers_for_user(request.user)
    customer = customers.filter(pk=chosen).first() if chosen and chosen.isdigit() else customers.first()
    if customer is None:
        raise Http404("No customer is linked to this login.")
    return customer, customers


@login_required
def account(request: HttpRequest) -> HttpResponse:
    """The customer's own page: sync status per shop, orders (searched, a page at a time),
    quota, service account, KAM."""
    customer, customers = _customer_of(request)
    state = request.GET.get("state", "")
    if state not in OrderTransfer.State.values:
        state = ""
    search = request.GET.get("q", "").strip()
    month = timezone.localdate().replace(day=1)
    orders = Paginator(customer_orders(customer=customer, state=state, search=search), ORDERS_PER_PAGE)
    return render(
        request,
        "portal/account.html",
        {
            "overview": customer_account(customer=customer),
            "customers": customers,
            "shops": customer_shop_statuses(customer=customer, month=month),
            "orders": orders.get_page(request.GET.get("page")),
            "state": state,
            "q": search,
            "states": OrderTransfer.State.choices,
            "viewing_as_staff": _staff_viewing(request),
        },
    )


@login_required
def account_order(request: HttpRequest, transfer_id: int) -> HttpResponse:
    """One order's timeline, as support sees it, for the customer's own orders only."""
    customer, _customers = _customer_of(request)
    transfer = customer_order(customer=customer, transfer_id=transfer_id)
    if transfer is None:
        raise Http404("No such order for this customer.")
    return render(request, "portal/order.html", {"customer": customer, "transfer": transfer})


class PortalLoginView(LoginView):
    """One login for everybody: staff go on to the admin, customers to their own page."""

    template_name = "portal/login.html"
    redirect_authenticated_user = True

    def get_default_redirect_url(self):
        return reverse("admin:index") if self.request.user.is_staff else reverse("account")
