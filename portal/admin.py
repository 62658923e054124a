"""The customer page of the admin: everything support needs about one customer on one page.

It lives in ``portal`` (the top layer) because it gathers models of both apps below:
billing's contacts and subscriptions, the integrations' flow settings, Hogia Smart
connection and shops.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import OuterRef, Subquery
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from billing.admin import CustomerContactInline, ServiceHourEntryInline, SubscriptionAdmin, SubscriptionInline
from billing.models import Customer, Subscription
from billing.selectors import subscription_same_start
from integrations.admin import (
    FLOW_SETTINGS_FIELDSETS,
    StatusMappingInline,
    health_badge,
    shop_counts,
    shop_overwrite_notice,
)
from integrations.health import shop_health, shops_with_health
from integrations.models import FlowSettings, HogiaConnection, Shop
from integrations.rules import customer_package_outlook, package_change_check

CONFIRM_LABEL = _("confirm what stops")


class SubscriptionChangeForm(forms.ModelForm):
    """A subscription whose package does not include all the customer uses says what stops
    working from when, and is saved only once support confirms it on the line.

    It lives here, not in billing, because what the customer uses (flows, shops) is known to
    the integrations, which billing does not ask.
    """

    confirm_package_change = forms.BooleanField(
        label=CONFIRM_LABEL,
        required=False,
        help_text=_(
            "Needed when the package does not include something the customer uses; the list "
            "of what stops is shown when saving."
        ),
    )

    class Meta:
        model = Subscription
        fields = "__all__"

    package_change = None  # what support confirmed, for the message after saving

    def clean(self):
        cleaned = super().clean()
        customer, package, start_date = (
            cleaned.get("customer") or getattr(self.instance, "customer", None),
            cleaned.get("package"),
            cleaned.get("start_date"),
        )
        if customer is None or package is None or start_date is None:
            return cleaned
        if self.instance.pk is not None and not {"package", "start_date"} & set(self.changed_data):
            return cleaned  # checked when it was made
        changing = self.instance if self.instance.pk else None
        if subscription_same_start(customer=customer, start_date=start_date, leaving_out=changing):
            return cleaned  # refused by the model's validation, which says why
        change = package_change_check(
            customer=customer, package=package, start_date=start_date, changing=changing
        )
        if change.refused:
            raise ValidationError(
                [
                    change.summary(),
                    gettext("This cannot be confirmed: %(what)s.")
                    % {"what": "; ".join(shortfall.text for shortfall in change.refused)},
                ]
            )
        if change and not cleaned.get("confirm_package_change"):
            raise ValidationError(
                [
                    change.summary(),
                    gettext('Tick "%(confirm)s" on this line to save the package change anyway.')
                    % {"confirm": CONFIRM_LABEL},
                ]
            )
        self.package_change = change or None
        return cleaned


def package_change_message(request, form) -> None:
    change = getattr(form, "package_change", None)
    if change:
        messages.warning(
            request, gettext("Package change confirmed. %(summary)s") % {"summary": change.summary()}
        )


class CustomerSubscriptionInline(SubscriptionInline):
    form = SubscriptionChangeForm
    fields = [*SubscriptionInline.fields, "confirm_package_change"]


@admin.register(Subscription)
class CustomerSubscriptionAdmin(SubscriptionAdmin):
    """Billing's subscription page with the check of what a package change stops."""

    form = SubscriptionChangeForm
    fieldsets = [
        (None, {"fields": ["customer", "package", "start_date", "confirm_package_change"]}),
        *SubscriptionAdmin.fieldsets[1:],
    ]

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        package_change_message(request, form)


class FlowSettingsForm(forms.ModelForm):
    def has_changed(self):
        # Django skips an extra inline form left as it was shown, but this block is what the
        # page shows as the customer's settings: a customer without settings gets them as shown.
        return self.instance._state.adding or super().has_changed()


class FlowSettingsInline(admin.StackedInline):
    model = FlowSettings
    form = FlowSettingsForm
    can_delete = False
    fieldsets = FLOW_SETTINGS_FIELDSETS
    verbose_name_plural = _("flow settings")


class HogiaConnectionInline(admin.StackedInline):
    """A summary; credentials are edited (masked) on the connection's own page."""

    model = HogiaConnection
    can_delete = False
    show_change_link = True
    fields = [
        "organization_id",
        "company_name",
        "has_bookkeeping",
        "has_invoicing",
        "has_point_of_sale",
        "last_checked_at",
        "last_check_ok",
        "last_check_message",
    ]
    readonly_fields = fields
    extra = 0

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        # View only: Django then leaves the summary's forms unvalidated (see ShopInline).
        return False


class ShopInline(admin.TabularInline):
    """A summary; credentials and trigger statuses are edited on the shop's own page."""

    model = Shop
    show_change_link = True
    fields = [
        "name",
        "health",
        "url",
        "result_unit",
        "is_active",
        "store_version",
        "last_check_ok",
        "prices_and_stock",
    ]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        # View only: nothing of a shop is edited here, and an editable inline validates every
        # shop on each save of the customer, with errors for fields this summary does not have
        # (a shop over the package's limit stopped every save with a server error).
        return False

    def get_queryset(self, request):
        return shops_with_health(
            super().get_queryset(request).select_related("catalog", "customer__flow_settings")
        )

    @admin.display(description=_("health"))
    def health(self, obj: Shop) -> str:
        return health_badge(shop_health(obj))

    @admin.display(description=_("prices and stock"))
    def prices_and_stock(self, obj: Shop) -> str:
        return shop_overwrite_notice(obj)


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "organisation_number",
        "package",
        "flow",
        "active_shops",
        "is_active",
        "hogia",
        "created_at",
    ]
    list_filter = ["is_active", "flow_settings__flow", "subscriptions__package"]
    search_fields = [
        "name",
        "organisation_number",
        "contacts__email",
        "contacts__name",
        "shops__url",
        "shops__name",
    ]
    filter_horizontal = ["users"]
    readonly_fields = ["created_at", "add_links", "package_outlook", "customer_page"]
    inlines = [
        CustomerContactInline,
        CustomerSubscriptionInline,
        FlowSettingsInline,
        StatusMappingInline,
        HogiaConnectionInline,
        ShopInline,
        ServiceHourEntryInline,
    ]
    fieldsets = [
        (None, {"fields": ["name", "organisation_number", "is_active", "notes"]}),
        (_("Package"), {"fields": ["package_outlook"]}),
        (_("Status pages"), {"fields": ["customer_page", "users", "key_account_manager"]}),
        (_("Connections"), {"fields": ["add_links", "created_at"]}),
    ]

    def get_queryset(self, request):
        latest = (
            Subscription.objects.filter(customer=OuterRef("pk"))
            .order_by("-start_date", "-id")
            .values("package__name")[:1]
        )
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

    def save_formset(self, request, form, formset, change):
        super().save_formset(request, form, formset, change)
        for line in formset.forms:
            package_change_message(request, line)

    @admin.display(description=_("not included in the package"))
    def package_outlook(self, obj: Customer) -> str:
        outlook = customer_package_outlook(customer=obj) if obj and obj.pk else []
        if not outlook:
            return "–"
        return format_html_join("", "<p>{}</p>", ((change.summary(),) for change in outlook))

    @admin.display(description=_("the customer's page"))
    def customer_page(self, obj: Customer) -> str:
        if not obj.pk:
            return "–"
        return format_html(
            '<a href="{}?customer={}">{}</a>', reverse("account"), obj.pk, _("View as the customer sees it")
        )

    @admin.display(description=_("add"))
    def add_links(self, obj: Customer) -> str:
        if not obj.pk:
            return _("Save the customer first.")
        shop_url = reverse("admin:integrations_shop_add") + f"?customer={obj.pk}"
        hogia_url = reverse("admin:integrations_hogiaconnection_add") + f"?customer={obj.pk}"
        return format_html(
            '<a href="{}">{}</a> · <a href="{}">{}</a>',
            shop_url,
            _("Add a shop"),
            hogia_url,
            _("Connect Hogia Smart"),
        )
