from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django_q.models import Success

from billing.forms import customers_for_user
from billing.selectors import customer_account

HEARTBEAT_STALE_SECONDS = 180


def home(request: HttpRequest) -> HttpResponse:
    return redirect("admin:index")


def health(request: HttpRequest) -> JsonResponse:
    """Liveness for a load balancer or a person: the database answers, the task cluster beats."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    last = (Success.objects.filter(func="portal.tasks.heartbeat").order_by("-stopped")
            .values_list("stopped", flat=True).first())
    age = (timezone.now() - last).total_seconds() if last else None
    cluster = "ok" if age is not None and age < HEARTBEAT_STALE_SECONDS else "not seen"
    return JsonResponse({"status": "ok", "database": "ok", "task_cluster": cluster,
                         "last_heartbeat_seconds_ago": round(age) if age is not None else None})


@login_required
def account(request: HttpRequest) -> HttpResponse:
    """The customer's own page: service account, this month's quota, key account manager."""
    customers = customers_for_user(request.user)
    chosen = request.GET.get("customer")
    customer = customers.filter(pk=chosen).first() if chosen and chosen.isdigit() else customers.first()
    if customer is None:
        raise Http404("No customer is linked to this login.")
    return render(request, "portal/account.html",
                  {"overview": customer_account(customer=customer), "customers": customers})
