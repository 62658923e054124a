"""The commands behind `make run` and `make bench`, and the health check."""

import json
import re

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import call_command
from django.http import HttpRequest
from django_q.models import Schedule

from billing.models import Customer
from integrations.models import FlowSettings, HogiaConnection, Shop
from integrations.sandboxes import demo

pytestmark = pytest.mark.django_db


def test_demo_setup_creates_the_demo_customer_once():
    first = call_command("demo_setup", verbosity=0)
    second = call_command("demo_setup", verbosity=0)
    assert first == second
    customer = Customer.objects.get()
    assert customer.subscriptions.get().package.code == "400"
    assert FlowSettings.objects.get(customer=customer).flow == 3
    assert sorted(Shop.objects.values_list("result_unit", flat=True)) == ["1", "2"]
    assert [s.url.split(":", 2)[2].split("/", 1)[1] for s in Shop.objects.order_by("name")] == ["", "butik2/"]
    connection = HogiaConnection.objects.get()
    assert str(connection.organization_id) == demo.HOGIA_ORGANIZATION_ID
    assert connection.client_secret == demo.HOGIA_CLIENT_SECRET
    assert "admin login          admin / " in first


def _printed_password(printed: str, login: str) -> str:
    return re.search(rf"^{login} login +\S+ / (\S+)", printed, re.MULTILINE).group(1)


def test_demo_setup_gives_the_customer_login_a_password_of_its_own(settings, tmp_path, monkeypatch):
    settings.DATA_DIR = tmp_path
    monkeypatch.delenv("PORTAL_ADMIN_PASSWORD", raising=False)
    monkeypatch.delenv("PORTAL_CUSTOMER_PASSWORD", raising=False)
    printed = call_command("demo_setup", verbosity=0)
    admin, customer = _printed_password(printed, "admin"), _printed_password(printed, "customer")
    assert admin != customer
    assert (tmp_path / "customer_password").read_text().strip() == customer
    assert authenticate(HttpRequest(), username="demo", password=customer) is not None
    assert authenticate(HttpRequest(), username="demo", password=admin) is None
    assert f"at http://127.0.0.1:{settings.PORTAL_PORT}/login/" in printed
    assert call_command("demo_setup", verbosity=0) == printed  # the same passwords on every start


def test_a_demo_customer_login_made_with_the_admins_password_gets_its_own(settings, tmp_path, monkeypatch):
    settings.DATA_DIR = tmp_path
    monkeypatch.setenv("PORTAL_ADMIN_PASSWORD", "the-admins-password")
    monkeypatch.setenv("PORTAL_CUSTOMER_PASSWORD", "the-customers-password")
    get_user_model().objects.create_user("demo", "demo@localhost", "the-admins-password")
    call_command("demo_setup", verbosity=0)
    assert authenticate(HttpRequest(), username="demo", password="the-admins-password") is None
    assert authenticate(HttpRequest(), username="demo", password="the-customers-password") is not None


def test_setup_schedules_is_idempotent_and_retires_old_schedules():
    Schedule.objects.create(
        name="release held orders",
        func="integrations.tasks.release_quotas",
        schedule_type=Schedule.MINUTES,
        minutes=60,
    )
    call_command("setup_schedules", verbosity=0)
    call_command("setup_schedules", verbosity=0)
    assert sorted(Schedule.objects.values_list("name", "func", "minutes")) == [
        ("catalogue full sync", "integrations.tasks.sync_all_catalogs_full", 1440),
        ("catalogue sync", "integrations.tasks.sync_all_catalogs", 5),
        ("invoice status", "integrations.tasks.read_all_invoice_statuses", 5),
        ("order poll", "integrations.tasks.poll_all_shops", 5),
        ("quota reconcile", "integrations.tasks.reconcile_quotas", 15),
        ("transfer sweeper", "integrations.tasks.sweep", 1),
    ]


def test_benchmark_lists_and_refuses_unknown_names(capsys):
    call_command("benchmark", list=True)
    assert "sandboxes" in capsys.readouterr().out
    with pytest.raises(Exception, match="no benchmark 'nope'"):
        call_command("benchmark", "nope")


def test_benchmark_output_ends_with_one_json_line(monkeypatch, capsys):
    import integrations.benchmarks.sandboxes as bench

    monkeypatch.setattr(bench, "SECONDS", 0.3)
    call_command("benchmark", "sandboxes")
    last = capsys.readouterr().out.strip().splitlines()[-1]
    figures = json.loads(last)
    assert figures["benchmark"] == "sandboxes"
    assert figures["woocommerce_rps"] > 0 and figures["hogia_rps"] > 0
    assert figures["woocommerce_errors"] == 0 and figures["hogia_errors"] == 0
