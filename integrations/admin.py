"""Support staff's admin for shops, Hogia Smart connections, flow settings and sync records.

Thin: forms mask secrets, actions call ``integrations.services``; records and logs are
read-only.
"""
from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db import models
from django.db.models import Count, Q
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from integrations.fields import last_four
from integrations.flows.orders import (orders_poll, refunds_mark_booked_by_hand, transfers_release_held,
                                       transfers_retry)
from integrations.intake import shop_webhooks_register, webhook_url
from integrations.errors import RemoteError
from integrations.models import (BuyerBinding, FlowSettings, HogiaConnection, OrderEvent, OrderTransfer,
                                 RefundCredit, Shop, SyncLogEntry, SyncRun, WebhookDelivery,
                                 new_webhook_secret)
from integrations.services import hogia_connection_test, remote_error_text, shop_connection_test


def _formfield(field, **kwargs):
    # Shop and API addresses are typed without a scheme more often than not; assume https.
    if isinstance(field, models.URLField):
        kwargs.setdefault("assume_scheme", "https")
    return field.formfield(**kwargs)


class SecretFieldsForm(forms.ModelForm):
    """Secrets are never sent back to the browser: shown as their last four characters,
    kept when the field is left empty, replaced when something is typed."""

    secret_fields: tuple[str, ...] = ()

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in self.secret_fields:
            if name not in self.fields:
                continue
            field = self.fields[name]
            stored = getattr(self.instance, name, "") if self.instance.pk else ""
            field.widget = forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"})
            # A callable model default makes Django echo the value in a hidden input.
            field.show_hidden_initial = False
            field.required = field.required and not stored
            if stored:
                hint = _("Stored: %(last4)s. Leave empty to keep it.") % {"last4": last_four(stored)}
                field.help_text = f"{hint} {field.help_text}".strip()

    def clean(self):
        cleaned = super().clean()
        for name in self.secret_fields:
            if name in cleaned and not cleaned[name] and self.instance.pk:
                # construct_instance has not run yet: the instance still holds the stored value
                cleaned[name] = getattr(self.instance, name)
        return cleaned


class ShopForm(SecretFieldsForm):
    secret_fields = ("consumer_key", "consumer_secret", "webhook_secret")
    trigger_statuses = forms.MultipleChoiceField(
        label=_("Transfer orders in status"), required=False, widget=forms.CheckboxSelectMultiple,
        help_text=_("Chosen from the shop's own statuses (\"Test connection\" reads them again). "
                    "Draft, pending payment and failed orders are not sales: leave them unticked "
                    "unless the customer asks."))

    class Meta:
        model = Shop
        formfield_callback = _formfield
        fields = ["customer", "name", "url", "consumer_key", "consumer_secret", "webhook_secret",
                  "result_unit", "is_active", "trigger_statuses"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        statuses = self.instance.order_statuses or Shop._meta.get_field("order_statuses").default()
        self.fields["trigger_statuses"].choices = [(slug, f"{name} ({slug})") for slug, name in statuses]
        self.fields["webhook_secret"].required = False
        secret = self.fields["webhook_secret"]
        secret.help_text = f"{secret.help_text} {_('Leave empty to have one generated.')}"

    def clean(self):
        cleaned = super().clean()
        if not cleaned.get("webhook_secret"):
            cleaned["webhook_secret"] = new_webhook_secret()
        return cleaned


def _check_badge(obj) -> str:
    if obj.last_check_ok is None:
        return format_html('<span title="{}">–</span>', _("not tested"))
    return format_html('<span title="{}">{}</span>', obj.last_check_message,
                       "✔" if obj.last_check_ok else "✘")


@admin.register(Shop)
class ShopAdmin(admin.ModelAdmin):
    form = ShopForm
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    list_display = ["name", "customer", "url", "result_unit", "is_active", "store_version",
                    "currency", "connection", "last_checked_at"]
    list_filter = ["is_active", "last_check_ok", "currency"]
    search_fields = ["name", "url", "customer__name", "customer__organisation_number"]
    list_select_related = ["customer"]
    autocomplete_fields = ["customer"]
    readonly_fields = ["store_version", "currency", "statuses_in_shop", "last_checked_at",
                       "last_check_ok", "last_check_message", "created_at", "webhook_address",
                       "registered_webhooks", "orders_synced_until"]
    actions = ["test_connection", "register_webhooks", "poll_orders", "retry_orders"]
    fieldsets = [
        (None, {"fields": ["customer", "name", "url", "is_active", "result_unit"]}),
        (_("WooCommerce REST API key"), {"fields": ["consumer_key", "consumer_secret"]}),
        (_("Orders"), {"fields": ["trigger_statuses", "statuses_in_shop"]}),
        (_("Webhooks"), {"fields": ["webhook_secret", "webhook_address", "registered_webhooks",
                                    "orders_synced_until"]}),
        (_("Last connection test"), {"fields": ["last_checked_at", "last_check_ok",
                                                  "last_check_message", "store_version",
                                                  "currency", "created_at"]}),
    ]

    @admin.display(description=_("connection"))
    def connection(self, obj: Shop) -> str:
        return _check_badge(obj)

    @admin.display(description=_("statuses in the shop"))
    def statuses_in_shop(self, obj: Shop) -> str:
        return ", ".join(f"{name} ({slug})" for slug, name in obj.order_statuses or [])

    @admin.display(description=_("webhook address"))
    def webhook_address(self, obj: Shop) -> str:
        return webhook_url(shop=obj) if obj.pk else "–"

    @admin.action(description=_("Register the portal's webhooks in the shop"))
    def register_webhooks(self, request, queryset):
        for shop in queryset.select_related("customer"):
            try:
                self.message_user(request, f"{shop.name}: {shop_webhooks_register(shop=shop)}")
            except RemoteError as exc:
                self.message_user(request, f"{shop.name}: " + remote_error_text(
                    exc, system="WooCommerce", where=shop.home_url), messages.ERROR)

    @admin.action(description=_("Poll the shop for orders now"))
    def poll_orders(self, request, queryset):
        for shop in queryset.select_related("customer"):
            try:
                seen = orders_poll(shop=shop)
                self.message_user(request, f"{shop.name}: {seen} changed order(s) read.")
            except RemoteError as exc:
                self.message_user(request, f"{shop.name}: " + remote_error_text(
                    exc, system="WooCommerce", where=shop.home_url), messages.ERROR)

    @admin.action(description=_("Retry every order of the shop that needs attention"))
    def retry_orders(self, request, queryset):
        count = transfers_retry(transfers=OrderTransfer.objects.filter(shop__in=queryset),
                                by=f"{request.user} (admin)")
        self.message_user(request, _("%(count)d order(s) queued for transfer.") % {"count": count})

    @admin.action(description=_("Test connection"))
    def test_connection(self, request, queryset):
        for shop in queryset.select_related("customer"):
            report = shop_connection_test(shop=shop, triggered_by=f"admin:{request.user}")
            self.message_user(request, f"{shop.name}: {report.summary}",
                              messages.SUCCESS if report.ok else messages.ERROR)


class HogiaConnectionForm(SecretFieldsForm):
    secret_fields = ("client_secret",)

    class Meta:
        model = HogiaConnection
        formfield_callback = _formfield
        fields = ["customer", "organization_id", "client_id", "client_secret", "api_base",
                  "auth_base", "rate_limit_requests", "rate_limit_seconds"]


@admin.register(HogiaConnection)
class HogiaConnectionAdmin(admin.ModelAdmin):
    form = HogiaConnectionForm
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    list_display = ["customer", "company_name", "organization_id", "has_bookkeeping",
                    "has_invoicing", "has_point_of_sale", "connection", "last_checked_at"]
    list_filter = ["has_point_of_sale", "last_check_ok"]
    search_fields = ["customer__name", "company_name", "organisation_number", "organization_id"]
    list_select_related = ["customer"]
    autocomplete_fields = ["customer"]
    readonly_fields = ["company_name", "organisation_number", "has_bookkeeping", "has_invoicing",
                       "has_point_of_sale", "units", "last_checked_at", "last_check_ok",
                       "last_check_message"]
    actions = ["test_connection"]
    fieldsets = [
        (None, {"fields": ["customer", "organization_id", "client_id", "client_secret"]}),
        (_("Addresses and limits"), {"fields": ["api_base", "auth_base", "rate_limit_requests",
                                                "rate_limit_seconds"], "classes": ["collapse"]}),
        (_("Found by the last connection test"), {"fields": [
            "company_name", "organisation_number", "has_bookkeeping", "has_invoicing",
            "has_point_of_sale", "units", "last_checked_at", "last_check_ok",
            "last_check_message"]}),
    ]

    @admin.display(description=_("connection"))
    def connection(self, obj: HogiaConnection) -> str:
        return _check_badge(obj)

    @admin.display(description=_("result units"))
    def units(self, obj: HogiaConnection) -> str:
        return ", ".join(f"{number} {name}" for number, name in obj.result_units or []) or "–"

    @admin.action(description=_("Test connection"))
    def test_connection(self, request, queryset):
        for connection in queryset.select_related("customer"):
            report = hogia_connection_test(connection=connection, triggered_by=f"admin:{request.user}")
            self.message_user(request, f"{connection.customer}: {report.summary}",
                              messages.SUCCESS if report.ok else messages.ERROR)


FLOW_SETTINGS_FIELDSETS = [
    (None, {"fields": ["flow", "paused", "transfer_orders", "customer_match"]}),
    (_("Articles, prices and stock"), {
        "fields": ["sync_articles", "create_products", "update_products", "sync_prices",
                   "sync_campaign_prices", "sync_stock"],
        "description": _("Hogia Smart has no price lists: only an ordinary price and a campaign "
                         "price (with dates). They map to the shop's regular and sale price.")}),
    (_("Order status and plugins"), {"fields": ["order_status_to_shop", "plugins_enabled"]}),
    (_("Article numbers on invoices"), {"fields": ["freight_article_number", "fee_article_number",
                                                   "discount_article_number"]}),
]


@admin.register(FlowSettings)
class FlowSettingsAdmin(admin.ModelAdmin):
    list_display = ["customer", "flow", "paused", "transfer_orders", "sync_articles", "sync_prices",
                    "sync_stock", "order_status_to_shop", "updated_at"]
    list_filter = ["flow", "paused", "sync_stock", "order_status_to_shop"]
    search_fields = ["customer__name"]
    list_select_related = ["customer"]
    autocomplete_fields = ["customer"]
    fieldsets = [(None, {"fields": ["customer"]})] + FLOW_SETTINGS_FIELDSETS[1:] + [
        FLOW_SETTINGS_FIELDSETS[0]]


class SyncLogInline(admin.TabularInline):
    model = SyncLogEntry
    fields = ["created_at", "level", "object_type", "object_ref", "message"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records of what happened are evidence: support reads them, never edits them."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(SyncRun)
class SyncRunAdmin(ReadOnlyAdmin):
    list_display = ["id", "started_at", "customer", "shop", "kind", "flow", "outcome", "read_count",
                    "created_count", "updated_count", "skipped_count", "failed_count", "short_error"]
    list_filter = ["outcome", "kind", "flow", "started_at"]
    search_fields = ["customer__name", "shop__name", "error"]
    list_select_related = ["customer", "shop"]
    date_hierarchy = "started_at"
    inlines = [SyncLogInline]

    @admin.display(description=_("error"))
    def short_error(self, obj: SyncRun) -> str:
        return obj.error[:120]


@admin.register(SyncLogEntry)
class SyncLogEntryAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "level", "customer", "shop", "object_type", "object_ref", "message"]
    list_filter = ["level", "object_type", "created_at"]
    search_fields = ["message", "object_ref", "customer__name", "shop__name"]
    list_select_related = ["customer", "shop"]
    date_hierarchy = "created_at"
    raw_id_fields = ["run"]


def shop_counts(queryset):
    """Annotate customers with their number of active shops (one query for a whole list)."""
    return queryset.annotate(active_shops=Count("shops", filter=Q(shops__is_active=True)))


class OrderEventInline(admin.TabularInline):
    model = OrderEvent
    fields = ["created_at", "kind", "message"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    verbose_name_plural = _("timeline")

    def has_add_permission(self, request, obj=None):
        return False


class RefundCreditInline(admin.TabularInline):
    model = RefundCredit
    fields = ["woo_refund_id", "amount", "invoice_number", "booked_by_hand", "created_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(OrderTransfer)
class OrderTransferAdmin(ReadOnlyAdmin):
    list_display = ["order_number", "shop", "buyer", "total", "currency", "state", "woo_status",
                    "invoice_number", "attempts", "next_attempt_at", "short_error"]
    list_filter = ["state", "first_seen_via", "shop__customer", "shop"]
    search_fields = ["order_number", "buyer", "invoice_number", "shop__name", "shop__customer__name"]
    list_select_related = ["shop", "shop__customer"]
    date_hierarchy = "created_at"
    inlines = [RefundCreditInline, OrderEventInline]
    actions = ["retry", "release_held", "refunds_booked_by_hand"]
    readonly_fields = ["shop", "woo_order_id", "order_number", "state", "woo_status", "buyer", "total",
                       "currency", "invoice_number", "hogia_invoice_id", "hogia_customer_number",
                       "attempts", "next_attempt_at", "last_error", "attention_text", "first_seen_via",
                       "created_at", "woo_modified_gmt", "invoiced_at", "sequence_id"]
    fields = readonly_fields

    @admin.display(description=_("error"))
    def short_error(self, obj: OrderTransfer) -> str:
        return (obj.attention and f"{obj.last_error[:80]} → {obj.attention[:80]}") or obj.last_error[:120]

    @admin.display(description=_("what to do"))
    def attention_text(self, obj: OrderTransfer) -> str:
        diff = next((e.details.get("diff") for e in obj.events.order_by("-id")
                     if e.details.get("diff")), "")
        return format_html("{}<pre>{}</pre>", obj.attention, diff) if diff else obj.attention

    @admin.action(description=_("Retry the selected orders now"))
    def retry(self, request, queryset):
        count = transfers_retry(transfers=queryset, by=f"{request.user} (admin)")
        self.message_user(request, _("%(count)d order(s) queued for transfer.") % {"count": count})

    @admin.action(description=_("Mark the orders' uncredited refunds as booked by hand in Hogia Smart"))
    def refunds_booked_by_hand(self, request, queryset):
        marked = 0
        for transfer in queryset.filter(hogia_invoice_id__gt="").select_related("shop"):
            try:
                marked += refunds_mark_booked_by_hand(transfer=transfer, by=str(request.user))
            except RemoteError as exc:
                self.message_user(request, f"{transfer}: {exc}", messages.ERROR)
        self.message_user(request, _("%(count)d refund(s) marked as credited by hand.") % {"count": marked})

    @admin.action(description=_("Release held orders over the quota"))
    def release_held(self, request, queryset):
        count = transfers_release_held(transfers=queryset, by_user=request.user,
                                       reason="released by support in the admin")
        self.message_user(request, _("%(count)d held order(s) released and queued.") % {"count": count})


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    list_display = ["received_at", "shop", "topic", "outcome", "resource_id", "reason"]
    list_filter = ["outcome", "topic", "shop"]
    search_fields = ["shop__name", "reason", "resource_id", "delivery_id"]
    list_select_related = ["shop"]
    date_hierarchy = "received_at"
    exclude = ["body"]
    readonly_fields = ["shop", "received_at", "outcome", "reason", "topic", "webhook_id", "delivery_id",
                       "source", "resource_id", "content_type", "headers", "raw_body"]

    @admin.display(description=_("raw body"))
    def raw_body(self, obj: WebhookDelivery) -> str:
        return format_html("<pre style='white-space: pre-wrap'>{}</pre>",
                           bytes(obj.body).decode("utf-8", errors="replace")[:20000])


@admin.register(BuyerBinding)
class BuyerBindingAdmin(ReadOnlyAdmin):
    list_display = ["customer", "key_kind", "key_value", "hogia_customer_number", "created", "created_at"]
    list_filter = ["key_kind", "created"]
    search_fields = ["key_value", "hogia_customer_number", "customer__name"]
    list_select_related = ["customer"]
