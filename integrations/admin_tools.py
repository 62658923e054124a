"""Admin pieces shared by the apps: an object's actions as buttons on its own page, state badges.

Support works on one order or one shop at a time far more often than on a selection: the
list actions (with their permissions) are offered as buttons on the object's page too, and
run on that one object exactly as they would from the list.
"""

from __future__ import annotations

from django.contrib import admin
from django.http import Http404, HttpResponseNotAllowed
from django.shortcuts import redirect
from django.urls import path
from django.utils.html import format_html

# Colours with at least 4.5:1 contrast against white text.
BADGE_COLOURS = {"red": "#b71c1c", "amber": "#8a5300", "green": "#2e7d32", "blue": "#1f5f8b", "grey": "#555"}


def badge(text: str, colour: str) -> str:
    return format_html(
        '<span class="state-badge" style="display:inline-block;padding:1px 8px;border-radius:9px;'
        'white-space:nowrap;color:#fff;background:{}">{}</span>',
        BADGE_COLOURS[colour],
        text,
    )


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records of what happened are evidence: support reads them, never edits them."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ObjectActionsMixin:
    """``object_actions``: names of the admin's actions to show as buttons on the change page."""

    object_actions: tuple[str, ...] = ()
    change_form_template = "admin/object_actions_change_form.html"

    def _object_url_name(self, suffix: str) -> str:
        return f"{self.model._meta.app_label}_{self.model._meta.model_name}_{suffix}"

    def get_urls(self):
        return [
            path(
                "<path:object_id>/do/<str:action>/",
                self.admin_site.admin_view(self.object_action_view),
                name=self._object_url_name("object_action"),
            ),
            *super().get_urls(),
        ]

    def object_action_applies(self, name: str, obj) -> bool:
        """Whether the button for action ``name`` is shown on ``obj``'s page: only what can do
        something there (an order never invoiced offers no credit or capture)."""
        return True

    def _object_actions(self, request) -> list[tuple[str, str]]:
        allowed = self.get_actions(request)
        return [(name, allowed[name][2]) for name in self.object_actions if name in allowed]

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        # Here the object is at hand (the change view read it): no second query for it.
        context["object_actions"] = [
            (name, label)
            for name, label in self._object_actions(request)
            if obj is not None and self.object_action_applies(name, obj)
        ]
        return super().render_change_form(
            request, context, add=add, change=change, form_url=form_url, obj=obj
        )

    def object_action_view(self, request, object_id, action: str):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        allowed = dict(self._object_actions(request))
        if action not in allowed:
            raise Http404("No such action for this page.")
        queryset = self.get_queryset(request).filter(pk=object_id)
        if not queryset.exists():
            raise Http404("No such object.")
        func = self.get_actions(request)[action][0]
        response = func(self, request, queryset)
        return response or redirect(f"admin:{self._object_url_name('change')}", object_id)
