"""Admin for packages, subscriptions, usage, the service account and statements.

The customer page itself is assembled in ``portal.admin``. Records (usage, notices,
statements, ledger entries) are read-only here: they change only through the services.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.forms.models import BaseInlineFormSet
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from billing.forms import ServiceHourEntryForm
from billing.models import (
    CONTRACT_RULE,
    PRORATION_RULE,
    CustomerContact,
    HourPack,
    OrderUsage,
    Package,
    QuotaNotice,
    ServiceHourEntry,
    ShopCount,
    Statement,
    StatementLine,
    Subscription,
)
from billing.money import hours_text, money_text
from billing.selectors import hourly_rate, service_hours_balance
from billing.services import hour_pack_buy, service_hours_adjust, service_hours_log

BILLING_PERMISSION = "billing.view_billing_reports"


class ReadOnlyMixin:
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ContractDatesMixin:
    """The contract's dates, shown in the subscription list, its page and the customer's inline."""

    @admin.display(description=_("contract runs at least until"))
    def earliest_end(self, obj: Subscription):
        return obj.earliest_end_date if obj and obj.pk else "–"

    @admin.display(description=_("ends if cancelled today"))
    def end_if_cancelled_today(self, obj: Subscription):
        if not obj or not obj.pk:
            return "–"
        if obj.cancelled_on:
            return _("cancelled")
        return obj.effective_end_date_if_cancelled(timezone.localdate())

    @admin.display(description=_("cancellation takes effect"))
    def effective_end(self, obj: Subscription):
        return (obj.effective_end_date if obj and obj.pk else None) or "–"


class CustomerContactInline(admin.TabularInline):
    model = CustomerContact
    extra = 0
    fields = ["name", "email", "phone", "role", "receives_notifications"]


class SubscriptionFormSet(BaseInlineFormSet):
    def clean(self):
        super().clean()
        # Each line's model validation sees the saved subscriptions only, not the other
        # lines typed on the same page.
        seen = set()
        for form in self.forms:
            if self._should_delete_form(form) or (not form.has_changed() and form.instance.pk is None):
                continue
            day = getattr(form, "cleaned_data", {}).get("start_date")
            if day is None:
                continue
            if day in seen and "start_date" not in form.errors:
                form.add_error(
                    "start_date",
                    _(
                        "Another line starts on %(date)s too: one package starts on "
                        "a day. Give each subscription its own start date."
                    )
                    % {"date": formats.date_format(day, "j F Y")},
                )
            seen.add(day)


class SubscriptionInline(ContractDatesMixin, admin.TabularInline):
    model = Subscription
    formset = SubscriptionFormSet
    extra = 0
    fields = [
        "package",
        "start_date",
        "contract_months",
        "notice_months",
        "cancelled_on",
        "monthly_fee",
        "earliest_end",
        "end_if_cancelled_today",
        "effective_end",
    ]
    readonly_fields = ["earliest_end", "end_if_cancelled_today", "effective_end"]
    verbose_name_plural = _("subscriptions (a package change is a new subscription from its start date)")


class ServiceHourEntryInline(ReadOnlyMixin, admin.TabularInline):
    """The service account on the customer page: the latest entries and a link to log time."""

    model = ServiceHourEntry
    extra = 0
    max_num = 0
    fields = ["occurred_at", "kind", "category", "hours", "staff", "note", "below_zero_reason"]
    readonly_fields = fields
    ordering = ["-occurred_at", "-id"]
    verbose_name_plural = _("service account (servicekonto)")
    template = "billing/service_hours_inline.html"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("staff")


@admin.register(Package)
class PackageAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "code",
        "monthly_fee",
        "installation_fee",
        "monthly_order_limit",
        "order_status",
        "stock",
        "price_structures",
        "plugin",
        "multishop",
        "key_account_manager",
        "combo_flow",
        "start_package_hours",
        "is_active",
    ]
    list_filter = ["is_active"]
    search_fields = ["name", "code"]
    ordering = ["rank"]
    fieldsets = [
        (None, {"fields": ["code", "name", "rank", "is_active"]}),
        (
            _("Prices (SEK, excl. VAT)"),
            {"fields": ["monthly_fee", "installation_fee", "extra_shop_fee", "start_package_hours"]},
        ),
        (
            _("Limits and features"),
            {
                "fields": [
                    "monthly_order_limit",
                    "order_status",
                    "stock",
                    "price_structures",
                    "plugin",
                    "multishop",
                    "key_account_manager",
                    "combo_flow",
                ]
            },
        ),
    ]


class SubscriptionAdmin(ContractDatesMixin, admin.ModelAdmin):
    """Registered by ``portal.admin``, which adds the check of what a package change stops."""

    list_display = [
        "customer",
        "package",
        "start_date",
        "contract_months",
        "notice_months",
        "cancelled_on",
        "earliest_end",
        "end_if_cancelled_today",
        "effective_end",
    ]
    list_filter = ["package", "start_date"]
    search_fields = ["customer__name", "customer__organisation_number"]
    list_select_related = ["customer", "package"]
    autocomplete_fields = ["customer"]
    date_hierarchy = "start_date"
    readonly_fields = ["earliest_end", "end_if_cancelled_today", "effective_end", "rules"]
    fieldsets = [
        (None, {"fields": ["customer", "package", "start_date"]}),
        (
            _("Agreed prices (SEK, excl. VAT)"),
            {"fields": ["monthly_fee", "installation_fee", "extra_shop_fee"]},
        ),
        (
            _("Contract"),
            {
                "fields": [
                    "contract_months",
                    "notice_months",
                    "cancelled_on",
                    "earliest_end",
                    "end_if_cancelled_today",
                    "effective_end",
                ]
            },
        ),
        (_("Rules"), {"fields": ["rules"]}),
    ]

    @admin.display(description=_("how billing works"))
    def rules(self, obj):
        return format_html("<p>{}</p><p>{}</p>", PRORATION_RULE, CONTRACT_RULE)


@admin.register(HourPack)
class HourPackAdmin(admin.ModelAdmin):
    list_display = ["name", "hours", "price", "hourly", "discount", "is_active"]
    list_editable = ["is_active"]

    @admin.display(description=_("per hour"))
    def hourly(self, obj: HourPack):
        return money_text(obj.hourly_price)

    @admin.display(description=_("discount on the ordinary rate"))
    def discount(self, obj: HourPack):
        rate = hourly_rate()
        if not rate:
            return "–"
        return _("%(percent).0f %% of %(rate)s/h") % {
            "percent": (1 - obj.hourly_price / rate) * 100,
            "rate": money_text(rate),
        }


@admin.register(ServiceHourEntry)
class ServiceHourEntryAdmin(admin.ModelAdmin):
    """Support logs time here (customer page -> "Log time" -> this form); entries never change."""

    form = ServiceHourEntryForm
    list_display = ["occurred_at", "customer", "kind", "category", "hours", "staff", "note"]
    list_filter = ["kind", "category", "occurred_at"]
    search_fields = ["customer__name", "note"]
    list_select_related = ["customer", "staff"]
    autocomplete_fields = ["customer"]
    date_hierarchy = "occurred_at"

    def get_changeform_initial_data(self, request):
        initial = super().get_changeform_initial_data(request)
        initial.setdefault("occurred_at", timezone.now())
        return initial

    def get_fields(self, request, obj=None):
        if obj is None:
            return [
                "customer",
                "kind",
                "occurred_at",
                "hours",
                "category",
                "hour_pack",
                "note",
                "below_zero_reason",
            ]
        return [
            "customer",
            "kind",
            "occurred_at",
            "hours",
            "category",
            "hour_pack",
            "price",
            "hourly_rate",
            "staff",
            "note",
            "below_zero_reason",
            "created_at",
        ]

    def get_readonly_fields(self, request, obj=None):
        return self.get_fields(request, obj) if obj is not None else []

    def has_change_permission(self, request, obj=None):
        # The ledger is only added to: corrections are adjustments.
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        customer, kind = data["customer"], data["kind"]
        if kind == ServiceHourEntry.Kind.HOUR_PACK:
            entry = hour_pack_buy(
                customer=customer,
                hour_pack=data["hour_pack"],
                by_user=request.user,
                occurred_at=data.get("occurred_at"),
                note=data.get("note", ""),
            )
        elif kind == ServiceHourEntry.Kind.TIME_SPENT:
            entry = service_hours_log(
                customer=customer,
                hours=data["hours"],
                category=data["category"],
                by_user=request.user,
                occurred_at=data.get("occurred_at"),
                note=data.get("note", ""),
                below_zero_reason=data.get("below_zero_reason", ""),
            )
        else:
            entry = service_hours_adjust(
                customer=customer,
                hours=data["hours"],
                by_user=request.user,
                note=data["note"],
                below_zero_reason=data.get("below_zero_reason", ""),
            )
        form.instance = entry
        obj.pk = entry.pk
        messages.info(
            request,
            _("Balance of %(customer)s: %(balance)s")
            % {"customer": customer, "balance": hours_text(service_hours_balance(customer=customer))},
        )


@admin.register(OrderUsage)
class OrderUsageAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """Every order counted or held against a quota (written only by the order flow via billing)."""

    list_display = [
        "order_key",
        "customer",
        "status",
        "arrived_at",
        "month",
        "held_month",
        "package",
        "forced_by",
    ]
    list_filter = ["status", "month", "package"]
    search_fields = ["order_key", "customer__name"]
    list_select_related = ["customer", "package", "forced_by"]
    date_hierarchy = "arrived_at"


@admin.register(QuotaNotice)
class QuotaNoticeAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["customer", "month", "threshold", "used", "limit", "recipients", "sent_at"]
    list_filter = ["threshold", "month"]
    search_fields = ["customer__name"]
    list_select_related = ["customer"]


@admin.register(ShopCount)
class ShopCountAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """Shop counts reported by the integrations; the extra-shop fee is charged from these."""

    list_display = ["customer", "effective_from", "active_shops", "recorded_at"]
    search_fields = ["customer__name"]
    list_select_related = ["customer"]


class StatementLineInline(ReadOnlyMixin, admin.TabularInline):
    model = StatementLine
    fields = ["position", "description", "quantity", "unit", "unit_price", "amount", "package_code"]
    readonly_fields = fields
    extra = 0


@admin.register(Statement)
class StatementAdmin(ReadOnlyMixin, admin.ModelAdmin):
    """Issued statements (snapshots); compute and issue one from "Statement for a month"."""

    list_display = ["customer", "month", "net", "vat", "gross", "issued_at", "issued_by", "computed"]
    list_filter = ["month"]
    search_fields = ["customer__name"]
    list_select_related = ["customer", "issued_by"]
    inlines = [StatementLineInline]
    change_list_template = "billing/statement_changelist.html"

    def has_view_permission(self, request, obj=None):
        return request.user.has_perm(BILLING_PERMISSION)

    def has_module_permission(self, request):
        return super().has_module_permission(request) or request.user.has_perm(BILLING_PERMISSION)

    @admin.display(description=_("statement page"))
    def computed(self, obj: Statement):
        return format_html(
            '<a href="{}">{}</a>',
            reverse("billing:statement", args=[obj.customer_id, f"{obj.month:%Y-%m}"]),
            _("open"),
        )

    def changelist_view(self, request, extra_context=None):
        from billing.models import Customer

        extra = {
            "billing_customers": Customer.objects.order_by("name").values_list("pk", "name"),
            "billing_month": f"{timezone.localdate():%Y-%m}",
            **(extra_context or {}),
        }
        return super().changelist_view(request, extra_context=extra)
