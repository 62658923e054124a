"""Work held by a host that died, and schedules shared by several hosts (issue 12).

Real ``manage.py runworkers`` hosts on the test database (PostgreSQL: ``tests/postgres.sh``).
A host killed with SIGKILL leaves its order transfer claimed for the claim's full length
(the transfer's time limit + 30 s, 180 s by default); the other hosts see its beats go stale
and free what it held, so the order is finished within about a minute, once.
"""

from __future__ import annotations

import time
import uuid
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone
from django_q.models import Schedule, Task

from integrations.models import OrderEvent, OrderTransfer
from integrations.orders.lifecycle import claim_seconds
from integrations.orders.poll import orders_poll
from integrations.orders.wakeups import transfers_wake_due
from portal.cluster import dead_hosts_work_release, host_start
from portal.models import ClusterHost, ClusterWork
from tests.factories import ShopFactory
from tests.integrations.helpers import connected_customer, front, sandbox_fault
from tests.integrations.test_order_transfer import hogia
from tests.workers import running_workers, wait_until

HOSTS = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(420),
    pytest.mark.usefixtures("hogia_without_rate_limit"),
]


def hosts_test(function):
    for mark in HOSTS:
        function = mark(function)
    return function


State = OrderTransfer.State


def _dead_and_live_host_working(func: str, work: list[tuple[str, int, object]], *, now, dead_since) -> None:
    """Host "dead:1", last seen at ``dead_since``, and host "live:2", seen ``now``, with the
    rows their workers noted: (host, claimed object's id, when the task started)."""
    host_start(name="dead:1", now=dead_since)
    host_start(name="live:2", now=now)
    for pid, (host, object_id, started_at) in enumerate(work, 7):
        ClusterWork.objects.create(
            host=host, worker_pid=pid, func=func, object_id=object_id, started_at=started_at
        )


@pytest.mark.django_db
def test_only_the_dead_hosts_own_claims_are_freed():
    now = timezone.now()
    shop = ShopFactory()
    started = now - timedelta(seconds=60)

    def transfer(number: int, claimed_at) -> OrderTransfer:
        return OrderTransfer.objects.create(
            shop=shop,
            woo_order_id=number,
            order_number=str(number),
            state=State.TRANSFERRING,
            sequence_id=uuid.uuid4(),
            quota_key=f"k{number}",
            woken_at=claimed_at,
            locked_until=now + timedelta(seconds=120),
        )

    own = transfer(1, started + timedelta(seconds=0.2))  # claimed by the dead host's task
    newer = transfer(2, started + timedelta(seconds=claim_seconds() + 1))  # another's, after it ran out
    live = transfer(3, started)
    _dead_and_live_host_working(
        "integrations.tasks.transfer_order",
        [("dead:1", own.pk, started), ("dead:1", newer.pk, started), ("live:2", live.pk, started)],
        now=now,
        dead_since=started - timedelta(seconds=5),
    )
    assert dead_hosts_work_release(now=now) == [own.pk]
    assert OrderTransfer.objects.get(pk=own.pk).locked_until == now
    assert OrderTransfer.objects.get(pk=newer.pk).locked_until > now
    assert OrderTransfer.objects.get(pk=live.pk).locked_until > now
    assert list(ClusterWork.objects.values_list("host", flat=True)) == ["live:2"]
    assert transfers_wake_due(now=now + timedelta(seconds=1)) == [own.pk]


@pytest.mark.django_db
def test_a_dead_hosts_catalogue_sync_claim_is_freed_and_no_other(settings):
    """A host killed mid-sync held the customer's catalogue for the claim's 15 minutes: prices
    and stock waited that long. Only the dead task's own claim is freed."""
    from integrations.catalog.sync import CLAIM_SECONDS
    from integrations.models import CatalogState

    now = timezone.now()
    started = now - timedelta(seconds=60)
    lease = timedelta(seconds=CLAIM_SECONDS)
    own, newer, live = (ShopFactory().customer for _ in range(3))
    CatalogState.objects.create(customer=own, locked_until=started + timedelta(seconds=2) + lease)
    # Claimed by another worker after the dead one's claim ran out (its task started long ago).
    CatalogState.objects.create(customer=newer, locked_until=now + lease)
    CatalogState.objects.create(customer=live, locked_until=started + lease)
    old_start = now - lease - timedelta(seconds=settings.CATALOG_SYNC_TIME_LIMIT)
    _dead_and_live_host_working(
        "integrations.tasks.sync_catalog",
        [("dead:1", own.pk, started), ("dead:1", newer.pk, old_start), ("live:2", live.pk, started)],
        now=now,
        dead_since=started - timedelta(seconds=5),
    )
    assert dead_hosts_work_release(now=now) == []  # no order transfer among them
    assert CatalogState.objects.get(customer=own).locked_until == now
    assert CatalogState.objects.get(customer=newer).locked_until == now + lease
    assert CatalogState.objects.get(customer=live).locked_until == started + lease
    assert list(ClusterWork.objects.values_list("host", flat=True)) == ["live:2"]


@hosts_test
def test_an_order_held_by_a_killed_host_is_finished_by_the_other_within_90_s_once(
    tmp_path, woo_sandbox, hogia_sandbox
):
    _customer, (shop, _second) = connected_customer(woo_sandbox, hogia_sandbox)
    front(shop).place("A1_guest_mixed_vat_processing")
    # Hogia Smart's first answer takes 20 s: the host that claims the order is busy with it
    # when it is killed (the sandbox still makes the invoice: the request was sent).
    sandbox_fault(hogia_sandbox, mode="delay", seconds=20, count=1)
    with running_workers(tmp_path, count=2) as workers:
        # Both hosts run, and the workers take tasks. Which host's workers run the heartbeats is
        # the broker's choice: under load one host's pusher can take every task for a while.
        wait_until(
            lambda: (
                ClusterHost.objects.count() == 2
                and ClusterHost.objects.filter(workers_beat_at__isnull=False).exists()
            ),
            seconds=40,
            what="both hosts beat and workers take tasks",
            workers=workers,
        )
        orders_poll(shop=shop)
        # The worker notes its task before the task claims the order: wait for the claim too.
        work = wait_until(
            lambda: (
                OrderTransfer.objects.filter(state=State.TRANSFERRING).exists()
                and ClusterWork.objects.filter(func="integrations.tasks.transfer_order").first()
            ),
            seconds=30,
            what="a host holding the order",
            workers=workers,
        )
        transfer = OrderTransfer.objects.get()
        holder = next(i for i, p in enumerate(workers.processes) if work.host.endswith(f":{p.pid}"))
        time.sleep(1)
        workers.kill(holder)
        killed = time.monotonic()
        wait_until(
            lambda: OrderTransfer.objects.get(pk=transfer.pk).state == State.INVOICED,
            seconds=90,
            every=0.5,
            what="the order invoiced by the other host",
            workers=workers,
        )
        took = time.monotonic() - killed
        output = workers.output()
    transfer.refresh_from_db()
    invoices = [i for i in hogia(hogia_sandbox).invoices_changed_since(0) if not i.get("creditedInvoiceId")]
    assert len(invoices) == 1, (invoices, output[-3000:])
    assert transfer.hogia_invoice_id == invoices[0]["id"]
    assert OrderEvent.objects.filter(transfer=transfer, kind=OrderEvent.Kind.TAKEN_OVER).count() == 1
    assert "claim(s) freed for another host" in output
    assert not ClusterWork.objects.exists()
    print(f"killed host's order invoiced by the other host {took:.1f} s after the kill")


@hosts_test
def test_two_hosts_run_each_schedule_once_per_period(tmp_path):
    """django-q2 1.11.1's scheduler takes the due schedules with ``select_for_update()`` in one
    transaction: on PostgreSQL the second host waits for the first's commit, then finds
    ``next_run`` moved on. Two hosts for 2.5 minutes: the 1-minute sweeper ran once a minute,
    the 5-minute ones once. PostgreSQL only: SQLite has no row locks to prove (and several hosts
    need a shared database server), and its 2.5 minutes were a sixth of make test's SQLite run."""
    if connection.vendor != "postgresql":
        pytest.skip("the row locks of PostgreSQL: make test's PostgreSQL run")
    call_command("setup_schedules", verbosity=0)
    start = timezone.now()
    Schedule.objects.update(next_run=start)
    with running_workers(tmp_path, count=2) as workers:
        time.sleep(150)
        output = workers.output()
    sweeps = sorted(Task.objects.filter(func="integrations.tasks.sweep").values_list("started", flat=True))
    polls = Task.objects.filter(func="integrations.tasks.poll_all_shops").count()
    # A run belongs to the minute its schedule was due in: django-q2's guard looks every 30 s,
    # so a run comes 0-30 s after that (the first one later: the hosts start), never twice.
    slots = [int((run - start).total_seconds() // 60) for run in sweeps]
    assert 2 <= len(sweeps) <= 3, (sweeps, output[-3000:])
    assert len(set(slots)) == len(slots), (slots, sweeps)
    assert polls == 1
    print(f"sweeper runs: {len(sweeps)} in minutes {slots}; order polls: {polls}")


@pytest.mark.django_db
def test_a_worker_notes_a_catalogue_sync_it_runs_and_forgets_it_when_done(monkeypatch):
    from portal.cluster import HOST_ENV, work_finished, work_started

    monkeypatch.setenv(HOST_ENV, "this:1")
    task = {"func": "integrations.tasks.sync_catalog", "args": (5, False, "schedule")}
    work_started(task=task)
    assert list(ClusterWork.objects.values_list("host", "func", "object_id")) == [
        ("this:1", "integrations.tasks.sync_catalog", 5)
    ]
    work_finished(task=task)
    assert not ClusterWork.objects.exists()
    work_started(task={"func": "integrations.tasks.poll_shop", "args": (5,)})  # holds no claim
    assert not ClusterWork.objects.exists()
