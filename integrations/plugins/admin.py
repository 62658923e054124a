"""Support's pages for customer plugins: versions (made, dry-run, switched on, rolled back),
their dry runs, and the time spent on them, logged to the customer's service account."""

from __future__ import annotations

import json
from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import Exists, OuterRef
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from billing.models import ServiceHourEntry
from billing.services import service_hours_log
from integrations.admin_tools import ObjectActionsMixin, ReadOnlyAdmin, badge
from integrations.models import FlowSettings, PluginDryRun, PluginVersion
from integrations.plugins.code import code_plugin_choices
from integrations.plugins.dry_run import plugin_dry_run
from integrations.plugins.versions import plugin_problems, plugin_version_create, plugin_version_switch_on

EXAMPLE_RULES = [
    {
        "name": "Org number to our reference",
        "source": "meta:_billing_org_no",
        "when": [{"source": "meta:_billing_org_no", "op": "present"}],
        "target": "invoice.ourReference",
    }
]


class PluginVersionForm(forms.ModelForm):
    """A new version: the rules as JSON (a copy of the version it starts from), the code plugins by name."""

    rules = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 24, "cols": 100, "style": "font-family:monospace"}),
        label=_("rules (JSON)"),
        help_text=_(
            "A list of rules, run in this order; see README "
            '"Customer plugins" for sources, transforms and '
            "targets."
        ),
    )
    code_plugins = forms.MultipleChoiceField(
        choices=code_plugin_choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label=_("code plugins"),
    )

    class Meta:
        model = PluginVersion
        fields = ["customer", "rules", "code_plugins", "note"]

    def clean_rules(self):
        try:
            return json.loads(self.cleaned_data["rules"] or "[]")
        except ValueError as exc:
            raise ValidationError(_("Not valid JSON: %(error)s") % {"error": exc}) from None

    def clean(self):
        data = super().clean()
        if data.get("customer") is not None and "rules" in data:
            problems = plugin_problems(
                customer=data["customer"], rules=data["rules"], code_plugins=data.get("code_plugins") or []
            )
            if problems:
                raise ValidationError(problems)
        return data


class TimeSpentForm(forms.Form):
    hours = forms.DecimalField(label=_("hours"), min_value=Decimal("0.25"), max_digits=6, decimal_places=2)
    note = forms.CharField(label=_("what was done"), max_length=500)
    below_zero_reason = forms.CharField(
        label=_("reason for going below zero"),
        required=False,
        max_length=500,
        help_text=_("Needed when the account has too few hours left."),
    )


class DryRunInline(admin.TabularInline):
    model = PluginDryRun
    fields = ["created_at", "created_by", "orders", "changed", "blocked", "seconds"]
    extra = 0
    can_delete = False
    show_change_link = True

    def get_readonly_fields(self, request, obj=None):
        return self.fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(PluginVersion)
class PluginVersionAdmin(ObjectActionsMixin, admin.ModelAdmin):
    object_actions = ("dry_run", "switch_on")
    actions = ["dry_run", "switch_on"]
    list_display = [
        "customer",
        "number",
        "live",
        "rule_count",
        "code_plugin_names",
        "created_by",
        "created_at",
        "switched_on_at",
    ]
    list_filter = ["customer"]
    search_fields = ["customer__name", "note"]
    list_select_related = ["customer"]
    autocomplete_fields = ["customer"]
    inlines = [DryRunInline]
    readonly_fields = [
        "customer",
        "number",
        "live",
        "rules_text",
        "code_plugin_names",
        "note",
        "created_by",
        "created_at",
        "switched_on_at",
        "switched_on_by",
        "latest_dry_run",
        "time_spent",
    ]

    def get_inlines(self, request, obj):
        return self.inlines if obj is not None else []

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = PluginVersionForm
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request, obj=None):
        return ["customer", "rules", "code_plugins", "note"] if obj is None else self.readonly_fields

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else self.readonly_fields

    def get_changeform_initial_data(self, request):
        """A new version starts as a copy of the one it comes from (``?copy_from=``), else of the example."""
        initial = super().get_changeform_initial_data(request)
        source = PluginVersion.objects.filter(pk=request.GET.get("copy_from") or 0).first()
        if source is not None:
            initial.update(
                customer=source.customer_id,
                code_plugins=source.code_plugins,
                note=_("From version %(number)s: ") % {"number": source.number},
            )
        initial["rules"] = json.dumps(source.rules if source else EXAMPLE_RULES, ensure_ascii=False, indent=2)
        return initial

    def save_model(self, request, obj, form, change):
        if change:
            return  # versions are never changed: a change is a new version
        made = plugin_version_create(
            customer=obj.customer,
            rules=form.cleaned_data["rules"],
            code_plugins=form.cleaned_data.get("code_plugins") or [],
            note=obj.note,
            by=str(request.user),
        )
        obj.pk, obj.number, obj.created_by, obj.created_at = (
            made.pk,
            made.number,
            made.created_by,
            made.created_at,
        )

    def has_change_permission(self, request, obj=None):
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False

    def get_urls(self):
        return [
            path(
                "<int:version_id>/time-spent/",
                self.admin_site.admin_view(self.time_spent_view),
                name="integrations_pluginversion_time_spent",
            ),
            *super().get_urls(),
        ]

    def get_queryset(self, request):
        # Whether each version is the live one, in the list's own query (not one query a row).
        live = FlowSettings.objects.filter(customer_id=OuterRef("customer_id"), live_plugin=OuterRef("pk"))
        return super().get_queryset(request).annotate(is_live=Exists(live))

    @admin.display(description=_("live"))
    def live(self, obj: PluginVersion) -> str:
        return badge(str(_("live")), "green") if obj.is_live else "–"

    @admin.display(description=_("rules"))
    def rule_count(self, obj: PluginVersion) -> int:
        return len(obj.rules or [])

    @admin.display(description=_("code plugins"))
    def code_plugin_names(self, obj: PluginVersion) -> str:
        labels = dict(code_plugin_choices())
        return ", ".join(labels.get(name, name) for name in obj.code_plugins or []) or "–"

    @admin.display(description=_("rules (JSON)"))
    def rules_text(self, obj: PluginVersion) -> str:
        copy = reverse("admin:integrations_pluginversion_add") + f"?copy_from={obj.pk}"
        return format_html(
            '<pre style="white-space:pre-wrap">{}</pre><a href="{}">{}</a>',
            json.dumps(obj.rules, ensure_ascii=False, indent=2),
            copy,
            _("Make a new version from this one"),
        )

    @admin.display(description=_("latest dry run"))
    def latest_dry_run(self, obj: PluginVersion) -> str:
        run = obj.dry_runs.order_by("-created_at").first()
        return dry_run_report(run) if run else _("None yet: run one before switching the version on.")

    @admin.display(description=_("time spent on this plugin"))
    def time_spent(self, obj: PluginVersion) -> str:
        entries = ServiceHourEntry.objects.filter(
            customer_id=obj.customer_id, category=ServiceHourEntry.Category.PLUGIN_DEVELOPMENT
        )
        spent = -sum((e.hours for e in entries), Decimal(0))
        url = reverse("admin:integrations_pluginversion_time_spent", args=[obj.pk])
        return format_html(
            '{} h · <a href="{}">{}</a>', spent, url, _("Log time spent on the service account")
        )

    def time_spent_view(self, request, version_id: int):
        """Time spent on the plugin, drawn from the customer's service account as plugin development."""
        version = get_object_or_404(PluginVersion, pk=version_id)
        form = TimeSpentForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                service_hours_log(
                    customer=version.customer,
                    hours=form.cleaned_data["hours"],
                    category=ServiceHourEntry.Category.PLUGIN_DEVELOPMENT,
                    by_user=request.user,
                    note=_("Plugin version %(number)s: %(note)s")
                    % {"number": version.number, "note": form.cleaned_data["note"]},
                    below_zero_reason=form.cleaned_data["below_zero_reason"],
                )
            except ValidationError as exc:
                form.add_error(None, exc)
            else:
                self.message_user(
                    request,
                    _("%(hours)s h logged to %(customer)s's service account.")
                    % {"hours": form.cleaned_data["hours"], "customer": version.customer},
                )
                return redirect("admin:integrations_pluginversion_change", version_id)
        return TemplateResponse(
            request,
            "admin/integrations/pluginversion/time_spent.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.model._meta,
                "version": version,
                "form": form,
                "title": _("Time spent on %(version)s") % {"version": version},
            },
        )

    @admin.action(description=_("Dry run against the customer's last 50 orders"))
    def dry_run(self, request, queryset):
        for version in queryset.select_related("customer"):
            run = plugin_dry_run(version=version, by=str(request.user))
            self.message_user(
                request,
                _(
                    "Version %(number)s against %(orders)d orders: %(changed)d changed, "
                    "%(blocked)d the VAT gate would block."
                )
                % {
                    "number": version.number,
                    "orders": run.orders,
                    "changed": run.changed,
                    "blocked": run.blocked,
                },
            )

    @admin.action(description=_("Switch this version on (the orders invoiced from now on use it)"))
    def switch_on(self, request, queryset):
        for version in queryset.select_related("customer"):
            if not version.dry_runs.exists():
                self.message_user(
                    request,
                    _("Version %(number)s has no dry run yet: run one first.") % {"number": version.number},
                    messages.ERROR,
                )
                continue
            try:
                plugin_version_switch_on(version=version, by=str(request.user))
            except ValidationError as exc:
                self.message_user(request, " ".join(exc.messages), messages.ERROR)
                continue
            self.message_user(
                request,
                _("Version %(number)s is live for %(customer)s.")
                % {"number": version.number, "customer": version.customer},
            )


def dry_run_report(run: PluginDryRun) -> str:
    """Per order: changed or not, blocked or not, the diff; the blocked ones first."""
    rows = sorted(run.results, key=lambda r: (not r["blocked"], not r["changed"]))
    summary = format_html(
        "<p>{}</p>",
        _("%(orders)d orders, %(changed)d changed, %(blocked)d the VAT gate would block; %(seconds)s s.")
        % {"orders": run.orders, "changed": run.changed, "blocked": run.blocked, "seconds": run.seconds},
    )
    return summary + format_html_join(
        "",
        '<details{}><summary>{} {} · {}</summary><pre style="white-space:pre-wrap">{}</pre></details>',
        (
            (
                " open" if r["blocked"] or r["changed"] else "",
                r["shop"],
                r["order"],
                _("blocked by the VAT gate")
                if r["blocked"]
                else (_("changed") if r["changed"] else _("unchanged")),
                "\n\n".join(part for part in (r["blocked"], r["diff"]) if part) or "–",
            )
            for r in rows
        ),
    )


@admin.register(PluginDryRun)
class PluginDryRunAdmin(ReadOnlyAdmin):
    list_display = ["version", "created_at", "created_by", "orders", "changed", "blocked", "seconds"]
    list_filter = ["version__customer"]
    list_select_related = ["version", "version__customer"]
    readonly_fields = [
        "version",
        "created_at",
        "created_by",
        "orders",
        "changed",
        "blocked",
        "seconds",
        "report",
    ]
    fields = readonly_fields

    @admin.display(description=_("orders"))
    def report(self, obj: PluginDryRun) -> str:
        return dry_run_report(obj)
