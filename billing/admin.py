"""Admin for packages and subscriptions; the customer page itself is assembled in ``portal.admin``."""
from __future__ import annotations

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from billing.models import CustomerContact, Package, Subscription


class CustomerContactInline(admin.TabularInline):
    model = CustomerContact
    extra = 0
    fields = ["name", "email", "phone", "role", "receives_notifications"]


class SubscriptionInline(admin.TabularInline):
    model = Subscription
    extra = 0
    fields = ["package", "start_date", "contract_months", "notice_months", "cancelled_on"]


@admin.register(Package)
class PackageAdmin(admin.ModelAdmin):
    list_display = ["name", "code", "monthly_fee", "installation_fee", "monthly_order_limit",
                    "order_status", "stock", "price_structures", "plugin", "multishop",
                    "key_account_manager", "combo_flow", "start_package_hours", "is_active"]
    list_filter = ["is_active"]
    search_fields = ["name", "code"]
    ordering = ["rank"]
    fieldsets = [
        (None, {"fields": ["code", "name", "rank", "is_active"]}),
        (_("Prices (SEK, excl. VAT)"), {"fields": ["monthly_fee", "installation_fee",
                                                   "extra_shop_fee", "start_package_hours"]}),
        (_("Limits and features"), {"fields": ["monthly_order_limit", "order_status", "stock",
                                               "price_structures", "plugin", "multishop",
                                               "key_account_manager", "combo_flow"]}),
    ]


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    list_display = ["customer", "package", "start_date", "contract_months", "notice_months",
                    "cancelled_on"]
    list_filter = ["package", "start_date"]
    search_fields = ["customer__name", "customer__organisation_number"]
    list_select_related = ["customer", "package"]
    autocomplete_fields = ["customer"]
    date_hierarchy = "start_date"
