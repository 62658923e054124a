"""Every recurring task of the portal, created (idempotently) by ``manage.py setup_schedules``.

Later flows add their rows here, so a fresh install and an upgrade get the same set.
"""

from __future__ import annotations

from django_q.models import Schedule

# name -> (function, schedule type, minutes)
SCHEDULES: dict[str, tuple[str, str, int]] = {
    # The backstop of the stager (manage.py runworkers): lost wake-ups, held orders the quota allows.
    "transfer sweeper": ("integrations.tasks.sweep", Schedule.MINUTES, 1),
    "order poll": ("integrations.tasks.poll_all_shops", Schedule.MINUTES, 5),
    "quota reconcile": ("integrations.tasks.reconcile_quotas", Schedule.MINUTES, 15),
    "catalogue sync": ("integrations.tasks.sync_all_catalogs", Schedule.MINUTES, 5),
    "catalogue full sync": ("integrations.tasks.sync_all_catalogs_full", Schedule.MINUTES, 1440),
    # What became of the invoices in Hogia Smart (delivered, paid, cancelled): the order status flow.
    "invoice status": ("integrations.tasks.read_all_invoice_statuses", Schedule.MINUTES, 5),
}


# Schedules of earlier versions, removed on upgrade.
RETIRED = (
    "release held orders",  # the sweeper and the stager release held orders now
    "portal heartbeat",  # each runworkers host queues its own heartbeat every 5 s (portal.cluster)
)


def schedules_ensure() -> list[str]:
    """Create or correct the schedules (and remove retired ones); returns the names created."""
    Schedule.objects.filter(name__in=RETIRED).delete()
    created = []
    for name, (func, schedule_type, minutes) in SCHEDULES.items():
        _schedule, was_created = Schedule.objects.update_or_create(
            name=name,
            defaults={"func": func, "schedule_type": schedule_type, "minutes": minutes, "repeats": -1},
        )
        if was_created:
            created.append(name)
    return created
