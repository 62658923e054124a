"""Billing pages inside the admin, for staff with ``billing.view_billing_reports`` only."""

from __future__ import annotations

from functools import wraps

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from billing.charts import stacked_bars
from billing.forms import CsvOptionsForm, ReportFilterForm, parse_month
from billing.models import PRORATION_RULE, Customer, Statement
from billing.reports import REVENUE_KIND_LABELS, REVENUE_KINDS, billing_report, report_csv, report_filter
from billing.selectors import statement_compute
from billing.services import statement_issue

BILLING_PERMISSION = "billing.view_billing_reports"


def billing_staff_only(view):
    """Admin login required (as any admin page), then the billing permission, else 403."""

    @wraps(view)
    def checked(request: HttpRequest, *args, **kwargs):
        if not request.user.has_perm(BILLING_PERMISSION):
            raise PermissionDenied("Billing reports need the billing permission.")
        return view(request, *args, **kwargs)

    return admin.site.admin_view(checked)


def _filter_from(request: HttpRequest):
    form = ReportFilterForm(request.GET or None)
    data = form.cleaned_data if form.is_bound and form.is_valid() else {}
    return form, report_filter(
        first_month=data.get("first_month"),
        last_month=data.get("last_month"),
        package_codes=[p.code for p in data.get("packages") or []],
    )


@billing_staff_only
def reports(request: HttpRequest) -> HttpResponse:
    form, chosen = _filter_from(request)
    report = billing_report(report_filter=chosen)
    shown = [p for p in report.packages if not chosen.package_codes or p[0] in chosen.package_codes]
    chart = stacked_bars(months=chosen.months, series=report.volume_by_month, packages=shown)
    volume_table = [
        (
            month,
            [report.volume_by_month.get(month, {}).get(code, 0) for code, _name in shown],
            sum(report.volume_by_month.get(month, {}).values()),
        )
        for month in chosen.months
    ]
    context = {
        **admin.site.each_context(request),
        "title": _("Billing reports"),
        "form": form,
        "report": report,
        "chart": chart,
        "packages": shown,
        "volume_table": volume_table,
        "revenue_kinds": [REVENUE_KIND_LABELS[kind] for kind in REVENUE_KINDS],
        "csv_form": CsvOptionsForm(),
        "query": request.GET.urlencode(),
        "proration_rule": PRORATION_RULE,
    }
    return render(request, "billing/reports.html", context)


@billing_staff_only
def reports_csv(request: HttpRequest) -> HttpResponse:
    _form, chosen = _filter_from(request)
    options = CsvOptionsForm(request.GET)
    if not options.is_valid():
        raise Http404("Unknown CSV table.")
    data = options.cleaned_data
    text = report_csv(
        report=billing_report(report_filter=chosen),
        table=data["table"],
        separator="," if data.get("separator") == "comma" else ";",
        decimal_comma=data.get("decimal") != "point",
        bom=bool(data.get("bom")),
    )
    response = HttpResponse(text.encode("utf-8"), content_type="text/csv; charset=utf-8")
    filename = f"billing-{data['table']}-{chosen.first_month:%Y-%m}-{chosen.last_month:%Y-%m}.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@billing_staff_only
def statement(request: HttpRequest, customer_id: int, month: str) -> HttpResponse:
    """A month's statement as computed from recorded history; POST issues (stores) it."""
    customer = get_object_or_404(Customer, pk=customer_id)
    first = parse_month(month)
    if first is None:
        raise Http404("Give the month as YYYY-MM.")
    if request.method == "POST":
        try:
            issued = statement_issue(customer=customer, month=first, by_user=request.user)
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        else:
            messages.success(request, _("Statement %(statement)s issued.") % {"statement": issued})
            return redirect(reverse("admin:billing_statement_change", args=[issued.pk]))
    issued = Statement.objects.filter(customer=customer, month=first).first()
    context = {
        **admin.site.each_context(request),
        "title": _("Statement %(customer)s, %(month)s")
        % {"customer": customer.name, "month": f"{first:%Y-%m}"},
        "customer": customer,
        "statement": statement_compute(customer=customer, month=first),
        "issued": issued,
        "proration_rule": PRORATION_RULE,
    }
    return render(request, "billing/statement.html", context)


@billing_staff_only
def statement_pick(request: HttpRequest) -> HttpResponse:
    """From the "statement for a month" form: go to that customer's statement page."""
    customer = get_object_or_404(Customer, pk=request.GET.get("customer") or 0)
    month = parse_month(request.GET.get("month")) or timezone.localdate().replace(day=1)
    return redirect(reverse("billing:statement", args=[customer.pk, f"{month:%Y-%m}"]))
