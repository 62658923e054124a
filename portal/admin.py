"""The customer page of the admin: everything support needs about one customer on one page.

It lives in ``portal`` (the top layer) because it gathers models of both apps below:
billing's contacts and subscriptions, the integrations' flow settings, Hogia Smart
connection and shops.
"""
from __future__ import annotations

from django.contrib import admin
from django.db.models import OuterRef, Subquery
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from billing.admin import CustomerContactInline, ServiceHourEntryInline, SubscriptionInline
from billing.models import Customer, Subscription
from integrations.admin import FLOW_SETTINGS_FIELDSETS, shop_counts, shop_overwrite_notice
from integrations.models import FlowSettings, HogiaConnection, Shop


class FlowSettingsInline(admin.StackedInline):
    model = FlowSettings
    can_delete = False
    fieldsets = FLOW_SETTINGS_FIELDSETS
    verbose_name_plural = _("flow settings")


class HogiaConnectionInline(admin.StackedInline):
    """A summary; credentials are edited (masked) on the connection's own page."""

    model = HogiaConnection
    can_delete = False
    show_change_link = True
    fields = ["organization_id", "company_name", "has_bookkeeping", "has_invoicing",
              "has_point_of_sale", "last_checked_at", "last_check_ok", "last_check_message"]
    readonly_fields = fields
    extra = 0

    def has_add_permission(self, request, obj=None):
        return False


class ShopInline(admin.TabularInline):
    """A summary; credentials and trigger statuses are edited on the shop's own page."""

    model = Shop
    show_change_link = True
    fields = ["name", "url", "result_unit", "is_active", "store_version", "last_check_ok", "prices_and_stock"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("catalog", "customer__flow_settings")

    @admin.display(description=_("prices and stock"))
    def prices_and_stock(self, obj: Shop) -> str:
        return shop_overwrite_notice(obj)


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ["name", "organisation_number", "package", "flow", "active_shops", "is_active",
                    "hogia", "created_at"]
    list_filter = ["is_active", "flow_settings__flow", "subscriptions__package"]
    search_fields = ["name", "organisation_number", "contacts__email", "contacts__name",
                     "shops__url", "shops__name"]
    filter_horizontal = ["users"]
    readonly_fields = ["created_at", "add_links"]
    inlines = [CustomerContactInline, SubscriptionInline, FlowSettingsInline, HogiaConnectionInline,
               ShopInline, ServiceHourEntryInline]
    fieldsets = [
        (None, {"fields": ["name", "organisation_number", "is_active", "notes"]}),
        (_("Status pages"), {"fields": ["users", "key_account_manager"]}),
        (_("Connections"), {"fields": ["add_links", "created_at"]}),
    ]

    def get_queryset(self, request):
        latest = (Subscription.objects.filter(customer=OuterRef("pk"))
                  .order_by("-start_date", "-id").values("package__name")[:1])
        queryset = super().get_queryset(request).select_related("flow_settings", "hogia_connection")
        return shop_counts(queryset).annotate(package_name=Subquery(latest))

    @admin.display(description=_("package"), ordering="package_name")
    def package(self, obj: Customer) -> str:
        return obj.package_name or "–"

    @admin.display(description=_("flow"))
    def flow(self, obj: Customer) -> str:
        settings = getattr(obj, "flow_settings", None)
        return f"{settings.flow}" if settings else "–"

    @admin.display(description=_("active shops"), ordering="active_shops")
    def active_shops(self, obj: Customer) -> int:
        return obj.active_shops

    @admin.display(description=_("Hogia Smart"))
    def hogia(self, obj: Customer) -> str:
        connection = getattr(obj, "hogia_connection", None)
        if connection is None:
            return "–"
        return "✔" if connection.last_check_ok else ("✘" if connection.last_check_ok is False else "?")

    @admin.display(description=_("add"))
    def add_links(self, obj: Customer) -> str:
        if not obj.pk:
            return _("Save the customer first.")
        shop_url = reverse("admin:integrations_shop_add") + f"?customer={obj.pk}"
        hogia_url = reverse("admin:integrations_hogiaconnection_add") + f"?customer={obj.pk}"
        return format_html('<a href="{}">{}</a> · <a href="{}">{}</a>', shop_url, _("Add a shop"),
                           hogia_url, _("Connect Hogia Smart"))
