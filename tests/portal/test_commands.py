"""The commands behind `make run` and `make bench`, and the health check."""
import json

import pytest
from django.core.management import call_command
from django_q.models import Schedule, Success
from django.utils import timezone

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


def test_setup_schedules_is_idempotent_and_retires_old_schedules():
    Schedule.objects.create(name="release held orders", func="integrations.tasks.release_quotas",
                            schedule_type=Schedule.MINUTES, minutes=60)
    call_command("setup_schedules", verbosity=0)
    call_command("setup_schedules", verbosity=0)
    assert sorted(Schedule.objects.values_list("name", "func", "minutes")) == [
        ("catalogue full sync", "integrations.tasks.sync_all_catalogs_full", 1440),
        ("catalogue sync", "integrations.tasks.sync_all_catalogs", 5),
        ("order poll", "integrations.tasks.poll_all_shops", 5),
        ("portal heartbeat", "portal.tasks.heartbeat", 1),
        ("quota reconcile", "integrations.tasks.reconcile_quotas", 15),
        ("transfer sweeper", "integrations.tasks.sweep", 1)]


def test_health_reports_the_task_clusters_heartbeat(client):
    assert client.get("/health/").json()["task_cluster"] == "not seen"
    now = timezone.now()
    Success.objects.create(id="a" * 32, name="heartbeat", func="portal.tasks.heartbeat", started=now,
                           stopped=now, success=True)
    body = client.get("/health/").json()
    assert body["task_cluster"] == "ok" and body["last_heartbeat_seconds_ago"] == 0


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
