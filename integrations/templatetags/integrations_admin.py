"""Pieces of the integrations that admin pages outside the app include."""
from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlencode

from django import template
from django.urls import reverse
from django.utils import timezone

from integrations.models import InitialSync, SyncRun
from integrations.selectors import failures_since

register = template.Library()

FAILURES_WINDOW = timedelta(hours=24)


@register.inclusion_tag("admin/integrations/recent_failures.html", takes_context=True)
def recent_failures(context) -> dict:
    """A box: how many sync runs and initial syncs failed in the last 24 h, each linked to its list
    filtered the same way; for staff who may see sync runs."""
    request = context.get("request")
    if request is None or not request.user.has_perm("integrations.view_syncrun"):
        return {"shown": False}
    failures = failures_since(since=timezone.now() - FAILURES_WINDOW)
    since = failures.since.isoformat(timespec="seconds")
    return {
        "shown": True, "failures": failures,
        "runs_url": reverse("admin:integrations_syncrun_changelist") + "?" + urlencode(
            {"outcome__exact": SyncRun.Outcome.FAILED, "started_at__gte": since}),
        "initial_syncs_url": reverse("admin:integrations_initialsync_changelist") + "?" + urlencode(
            {"state__exact": InitialSync.State.FAILED, "heartbeat_at__gte": since}),
    }
