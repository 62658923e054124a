"""The admin home's "what needs doing" box (an inclusion tag: the admin's index view stays Django's)."""

from __future__ import annotations

from django import template

from billing.views import BILLING_PERMISSION
from portal.dashboard import support_tallies

register = template.Library()


@register.inclusion_tag("admin/portal/dashboard.html", takes_context=True)
def support_dashboard(context) -> dict:
    user = context["request"].user
    tallies = [tally for tally in support_tallies() if user.has_perm(tally.permission)]
    return {"tallies": tallies, "can_see_reports": user.has_perm(BILLING_PERMISSION)}
