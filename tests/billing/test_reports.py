import csv
import io
import re
from datetime import date
from decimal import Decimal

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import translation

from billing.reports import billing_report, report_csv, report_filter
from billing.selectors import statement_compute
from billing.services import quota_claim, shop_count_changed
from tests.billing.factories import CustomerFactory, StaffFactory, SubscriptionFactory, at, package

pytestmark = pytest.mark.django_db
MARCH = date(2025, 3, 1)


@pytest.fixture
def usage():
    busy = CustomerFactory(name="Bråda Butiken AB")
    SubscriptionFactory(customer=busy, package=package("100"), start_date=date(2025, 1, 1))
    calm = CustomerFactory(name="Lugna AB")
    SubscriptionFactory(customer=calm, package=package("400"), start_date=date(2025, 2, 10))
    shop_count_changed(customer=calm, active_shops=2, on=date(2025, 3, 1))
    for i in range(104):
        quota_claim(customer=busy, order_key=f"b{i}", arrived_at=at(2025, 3, 5), on=date(2025, 3, 5))
    for i in range(95):
        quota_claim(customer=busy, order_key=f"f{i}", arrived_at=at(2025, 2, 5), on=date(2025, 2, 5))
    for i in range(40):
        quota_claim(customer=calm, order_key=f"c{i}", arrived_at=at(2025, 3, 5), on=date(2025, 3, 5))
    return busy, calm


def test_the_report_aggregates_volume_utilisation_and_revenue(usage, django_assert_max_num_queries):
    busy, calm = usage
    with django_assert_max_num_queries(10):
        report = billing_report(report_filter=report_filter(first_month=date(2025, 1, 1), last_month=MARCH))
    assert report.volume_by_month[MARCH] == {"100": 100, "400": 40}
    assert report.volume_by_month[date(2025, 2, 1)] == {"100": 95}
    first = report.customers[0]
    assert (first.name, first.held, first.peak_percent, first.suggestion, first.months_near_limit) == (
        "Bråda Butiken AB",
        4,
        Decimal("100.0"),
        "200",
        2,
    )
    assert report.customers[1].suggestion == ""
    for customer in (busy, calm):
        for month in (date(2025, 1, 1), date(2025, 2, 1), MARCH):
            statement = statement_compute(customer=customer, month=month)
    revenue = {(r.month, r.package_code): r.total for r in report.revenue}
    assert revenue[(MARCH, "400")] == Decimal("795.00") + Decimal("295.00")
    assert revenue[(date(2025, 2, 1), "400")] == statement_compute(customer=calm, month=date(2025, 2, 1)).net
    assert statement.net == Decimal("1090.00")


def test_the_package_filter_narrows_every_table(usage):
    report = billing_report(
        report_filter=report_filter(first_month=MARCH, last_month=MARCH, package_codes=["400"])
    )
    assert [r.package_code for r in report.volume] == ["400"]
    assert [r.name for r in report.customers] == ["Lugna AB"]
    assert {r.package_code for r in report.revenue} == {"400"}


def test_the_csv_parses_back_in_swedish_form(usage):
    report = billing_report(report_filter=report_filter(first_month=MARCH, last_month=MARCH))
    text = report_csv(report=report, table="revenue", separator=";", decimal_comma=True, bom=True)
    raw = text.encode("utf-8")
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig")), delimiter=";"))
    assert rows[0][:2] == ["month", "package"]
    row400 = next(r for r in rows if r[1] == "400")
    assert row400[-1] == "1090,00"
    customers = report_csv(report=report, table="customers", separator=",", decimal_comma=True, bom=False)
    parsed = list(csv.reader(io.StringIO(customers)))
    assert parsed[1][0] == "Bråda Butiken AB" and parsed[1][8] == "100,0"  # quoted, not split


def test_the_pages_need_the_billing_permission(client, usage):
    url = reverse("billing:reports")
    plain = StaffFactory(username="plainstaff", is_superuser=False)
    client.force_login(plain)
    assert client.get(url).status_code == 403
    assert client.get(reverse("billing:reports_csv"), {"table": "volume"}).status_code == 403
    plain.user_permissions.add(Permission.objects.get(codename="view_billing_reports"))
    plain = type(plain).objects.get(pk=plain.pk)
    client.force_login(plain)
    page = client.get(url, {"first_month": "2025-01", "last_month": "2025-03"})
    assert page.status_code == 200
    html = page.content.decode()
    assert '<svg id="volume-chart"' in html and "<rect" in html and "Bråda Butiken AB" in html
    assert "http" not in html.split('<svg id="volume-chart"')[1].split("</svg>")[0].replace(
        "http://www.w3.org/2000/svg", ""
    )
    response = client.get(
        reverse("billing:reports_csv"),
        {
            "first_month": "2025-03",
            "last_month": "2025-03",
            "table": "volume",
            "separator": "semicolon",
            "decimal": "comma",
            "bom": "on",
        },
    )
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig")), delimiter=";"))
    assert rows[1:] == [["2025-03", "100", "100", "1"], ["2025-03", "400", "40", "1"]]


def test_the_statement_page_shows_the_rule_and_issues(admin_client, usage):
    busy, _calm = usage
    url = reverse("billing:statement", args=[busy.pk, "2025-03"])
    page = admin_client.get(url).content.decode()
    assert "prorated by day" in page and "295,00\xa0kr" in page
    assert admin_client.post(url).status_code == 302
    assert busy.statements.get().net == Decimal("295.00")
    assert admin_client.get(reverse("admin:billing_statement_changelist")).status_code == 200
    assert (
        admin_client.get(
            reverse("billing:statement_pick"), {"customer": busy.pk, "month": "2025-03"}
        ).status_code
        == 302
    )


def test_the_chart_draws_in_a_swedish_browser_and_the_amounts_read_as_swedish(admin_client, usage):
    # Swedish formats write 248,0, which SVG reads as two numbers: the bars vanish and a month's
    # label is drawn one glyph at x=248 and the rest at x=0, so only its first "2" shows.
    with translation.override("sv"):
        page = admin_client.get(
            reverse("billing:reports"),
            {"first_month": "2025-01", "last_month": "2025-03"},
            HTTP_ACCEPT_LANGUAGE="sv",
        )
    html = page.content.decode()
    svg = html.split('<svg id="volume-chart"')[1].split("</svg>")[0]
    numbers = re.findall(r' (?:x|y|x1|x2|y1|y2|width|height)="([^"]*)"', svg)
    assert len(numbers) > 20 and all(re.fullmatch(r"\d+(\.\d+)?", n) for n in numbers), numbers
    assert re.findall(r'<text x="\d+(?:\.\d+)?" y="\d+" text-anchor="middle"[^>]*>([^<]*)</text>', svg) == [
        "2025-01",
        "2025-02",
        "2025-03",
    ]
    revenue = html.split('<table id="revenue-table">')[1].split("</table>")[0]
    assert '<td class="num">6\xa0939,46\xa0kr</td>' in revenue  # 2025-02, package 400: start fee included
    assert '<td class="num">1\xa0090,00\xa0kr</td>' in revenue
