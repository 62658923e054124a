"""Support staff's admin for shops, Hogia Smart connections, flow settings and sync records.

Thin: forms mask secrets, actions call ``integrations.services``; records and logs are
read-only.
"""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import models
from django.db.models import Count, Q
from django.shortcuts import get_object_or_404, redirect
from django.template.defaultfilters import filesizeformat
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import formats, timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from billing.models import Customer, Feature
from billing.money import money_text
from billing.selectors import feature_refusal
from integrations.admin_tools import ObjectActionsMixin, ReadOnlyAdmin, badge
from integrations.catalog.initial_sync import (
    LIST_LIMIT,
    PREVIEWABLE,
    RUNNABLE,
    initial_sync_create,
    initial_sync_progress,
)
from integrations.catalog.overwrite import flow_writes_to_shop, shop_overwrite_allow
from integrations.catalog.sync import catalog_sync_obstacle
from integrations.errors import RemoteError
from integrations.fields import last_four
from integrations.health import ShopHealth, shop_health, shops_with_health
from integrations.intake import shop_webhooks_register, webhook_drops, webhook_url
from integrations.models import (
    ArticleBinding,
    BuyerBinding,
    FlowSettings,
    HogiaArticle,
    HogiaConnection,
    InitialSync,
    InitialSyncItem,
    OrderEvent,
    OrderTransfer,
    PaymentCapture,
    RefundCredit,
    Shop,
    ShopCatalog,
    StatusMapping,
    StatusPush,
    SyncLogEntry,
    SyncRun,
    WebhookDelivery,
    new_webhook_secret,
)
from integrations.orders import lifecycle
from integrations.orders.capture import capture_retry
from integrations.orders.poll import orders_poll
from integrations.orders.shop_status import status_push_retry
from integrations.orders.support import refunds_mark_booked_by_hand, transfers_release_held, transfers_retry
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
        label=_("Transfer orders in status"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_(
            'Chosen from the shop\'s own statuses ("Test connection" reads them again). '
            "Draft, pending payment and failed orders are not sales: leave them unticked "
            "unless the customer asks."
        ),
    )

    class Meta:
        model = Shop
        formfield_callback = _formfield
        fields = [
            "customer",
            "name",
            "url",
            "consumer_key",
            "consumer_secret",
            "webhook_secret",
            "result_unit",
            "is_active",
            "trigger_statuses",
        ]

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
    return format_html(
        '<span title="{}">{}</span>', obj.last_check_message, "✔" if obj.last_check_ok else "✘"
    )


OVERWRITE_HELD = _(
    "Prices and stock are not written to this shop until the initial sync's differences are accepted."
)
DIFFERENCE_FIELDS = {
    "name": _("name"),
    "regular_price": _("regular price"),
    "sale_price": _("sale price"),
    "date_on_sale_from": _("sale from"),
    "date_on_sale_to": _("sale to"),
    "stock_quantity": _("stock"),
}
NOTHING_WRITTEN = {
    "flow_1": _(
        "Flow 1: the portal writes no prices, stock or names to the shop; the matched products are "
        "only bound to their articles."
    ),
    "no_flow_settings": _("The customer has no flow settings: nothing is written to the shop."),
    "switches_off": _("The flow settings write no prices, campaign prices, stock or names to the shop."),
}


def shop_overwrite_notice(shop: Shop) -> str:
    """Whether the periodic sync writes Hogia Smart's prices and stock to the shop, for support."""
    if not shop.pk:
        return "–"
    settings = getattr(shop.customer, "flow_settings", None)
    if settings is None:
        return _("The customer has no flow settings: nothing is written to the shop.")
    if not flow_writes_to_shop(settings):
        return _("Flow 1: the portal writes no prices or stock to this shop.")
    catalog = getattr(shop, "catalog", None)
    if catalog is not None and catalog.overwrite_accepted_at is not None:
        return _("Written since %(when)s (allowed by %(by)s).") % {
            "when": formats.date_format(timezone.localtime(catalog.overwrite_accepted_at), "Y-m-d H:i"),
            "by": catalog.overwrite_accepted_by or "–",
        }
    return format_html(
        '<strong>{}</strong> <a href="{}">{}</a>',
        OVERWRITE_HELD,
        reverse("admin:integrations_shop_allow_overwrite", args=[shop.pk]),
        _("See the differences and allow it"),
    )


def _difference_text(field: str, value) -> str:
    if value is None or value == "":
        return _("not managed") if field == "stock_quantity" else _("none")
    if field.startswith("date_on_sale"):
        return str(value).replace("T", " ")[:16]
    if field in ("regular_price", "sale_price"):
        return money_text(value)
    return str(value)


def shop_differences_html(preview: dict) -> str:
    """The preview's table of what the periodic sync would change in the matched products."""
    writes = (preview or {}).get("shop_writes")
    if not writes:
        return "–"
    if not writes.get("writes"):
        return NOTHING_WRITTEN.get(writes.get("why_not"), "–")
    counts = preview.get("counts") or {}
    summary = _(
        "%(changed)d matched product(s) would change, %(unchanged)d would not. Prices as the shop "
        "shows them: %(prices)s."
    ) % {
        "changed": counts.get("would_change", 0),
        "unchanged": counts.get("unchanged", 0),
        "prices": _("including VAT") if writes.get("prices_include_tax") else _("excluding VAT"),
    }
    differences = preview.get("shop_differences") or []
    if len(differences) >= LIST_LIMIT:
        summary = f"{summary} " + _("The first %(limit)d are listed.") % {"limit": LIST_LIMIT}
    rows = []
    for product in differences:
        for change in product["changes"]:
            field = change["field"]
            if change.get("left_alone"):
                now, then = _("stock not managed in the shop"), _("left alone")
            else:
                now, then = _difference_text(field, change["shop"]), _difference_text(field, change["portal"])
            rows.append((product["sku"], product["product"], DIFFERENCE_FIELDS.get(field, field), now, then))
    if not rows:
        return format_html("<p>{}</p>", summary)
    body = format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", rows)
    return format_html(
        '<p>{}</p><table class="shop-differences"><thead><tr><th>{}</th><th>{}</th><th>{}</th>'
        "<th>{}</th><th>{}</th></tr></thead><tbody>{}</tbody></table>",
        summary,
        _("SKU"),
        _("product"),
        _("field"),
        _("in the shop now"),
        _("would become"),
        body,
    )


def health_badge(health: ShopHealth) -> str:
    """A coloured badge with the reasons written out below it (a title alone is lost on a phone)."""
    reasons = format_html_join("", "<li>{}</li>", ((reason,) for reason in health.reasons))
    # The health levels are the badge colours' names (green, amber, red).
    return format_html(
        "{}{}",
        badge(health.label, health.level),
        format_html('<ul class="health-reasons" style="margin:4px 0 0 16px;padding:0">{}</ul>', reasons)
        if health.reasons
        else "",
    )


@admin.register(Shop)
class ShopAdmin(ObjectActionsMixin, admin.ModelAdmin):
    form = ShopForm
    object_actions = (
        "test_connection",
        "register_webhooks",
        "poll_orders",
        "retry_orders",
        "sync_catalogue_now",
    )
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    list_display = [
        "name",
        "customer",
        "health",
        "url",
        "result_unit",
        "is_active",
        "store_version",
        "currency",
        "connection",
        "last_checked_at",
    ]
    list_filter = ["is_active", "last_check_ok", "currency"]
    search_fields = ["name", "url", "customer__name", "customer__organisation_number"]
    list_select_related = ["customer"]
    autocomplete_fields = ["customer"]
    readonly_fields = [
        "store_version",
        "currency",
        "statuses_in_shop",
        "last_checked_at",
        "last_check_ok",
        "last_check_message",
        "created_at",
        "webhook_address",
        "webhooks_registered",
        "webhook_deliveries_dropped",
        "orders_synced_until",
        "prices_and_stock",
        "tracking_method",
        "rest_namespaces",
    ]
    actions = ["test_connection", "register_webhooks", "poll_orders", "retry_orders", "allow_overwrite"]
    fieldsets = [
        (None, {"fields": ["customer", "name", "url", "is_active", "result_unit"]}),
        (_("Prices and stock from Hogia Smart"), {"fields": ["prices_and_stock"]}),
        (_("WooCommerce REST API key"), {"fields": ["consumer_key", "consumer_secret"]}),
        (_("Orders"), {"fields": ["trigger_statuses", "statuses_in_shop"]}),
        (_("Order status and tracking"), {"fields": ["tracking_method", "rest_namespaces"]}),
        (
            _("Webhooks"),
            {
                "fields": [
                    "webhook_secret",
                    "webhook_address",
                    "webhooks_registered",
                    "webhook_deliveries_dropped",
                    "orders_synced_until",
                ]
            },
        ),
        (
            _("Last connection test"),
            {
                "fields": [
                    "last_checked_at",
                    "last_check_ok",
                    "last_check_message",
                    "store_version",
                    "currency",
                    "created_at",
                ]
            },
        ),
    ]

    def get_queryset(self, request):
        return shops_with_health(super().get_queryset(request))

    @admin.display(description=_("health"))
    def health(self, obj: Shop) -> str:
        return health_badge(shop_health(obj))

    @admin.display(description=_("connection"))
    def connection(self, obj: Shop) -> str:
        return _check_badge(obj)

    @admin.display(description=_("prices and stock"))
    def prices_and_stock(self, obj: Shop) -> str:
        return shop_overwrite_notice(obj)

    @admin.display(description=_("statuses in the shop"))
    def statuses_in_shop(self, obj: Shop) -> str:
        return ", ".join(f"{name} ({slug})" for slug, name in obj.order_statuses or [])

    @admin.display(description=_("registered webhooks"))
    def webhooks_registered(self, obj: Shop) -> str:
        """Topic and the webhook's id in the shop, one per line (not the stored JSON)."""
        hooks = obj.registered_webhooks or {}
        if not hooks:
            return _("none: orders arrive by the poll only")
        return format_html_join(format_html("<br>"), "{} (id {})", sorted(hooks.items()))

    @admin.display(description=_("webhook deliveries dropped"))
    def webhook_deliveries_dropped(self, obj: Shop) -> str:
        """What the hourly cap on deliveries without a valid signature dropped lately."""
        if not obj.pk:
            return "–"
        day, month = webhook_drops(shop=obj, hours=24), webhook_drops(shop=obj, hours=24 * 30)
        return _(
            "last 24 hours: %(day)d (%(day_size)s); last 30 days: %(month)d (%(month_size)s). Deliveries "
            "without a valid signature are kept up to %(cap)d per hour, the rest only counted."
        ) % {
            "day": day.deliveries,
            "day_size": filesizeformat(day.bytes),
            "month": month.deliveries,
            "month_size": filesizeformat(month.bytes),
            "cap": settings.WEBHOOK_REJECTED_KEEP_PER_HOUR,
        }

    @admin.display(description=_("webhook address"))
    def webhook_address(self, obj: Shop) -> str:
        return webhook_url(shop=obj) if obj.pk else "–"

    def _for_each_shop(self, request, queryset, work) -> None:
        """Run ``work(shop) -> message`` per shop; a remote failure is said in plain words."""
        for shop in queryset.select_related("customer"):
            try:
                self.message_user(request, f"{shop.name}: {work(shop)}")
            except RemoteError as exc:
                self.message_user(
                    request,
                    f"{shop.name}: " + remote_error_text(exc, system="WooCommerce", where=shop.home_url),
                    messages.ERROR,
                )

    @admin.action(description=_("Register the portal's webhooks in the shop"))
    def register_webhooks(self, request, queryset):
        self._for_each_shop(request, queryset, lambda shop: shop_webhooks_register(shop=shop))

    @admin.action(description=_("Poll the shop for orders now"))
    def poll_orders(self, request, queryset):
        self._for_each_shop(
            request,
            queryset,
            lambda shop: _("%(count)d changed order(s) read.") % {"count": orders_poll(shop=shop)},
        )

    @admin.action(description=_("Retry every order of the shop that needs attention"))
    def retry_orders(self, request, queryset):
        count = transfers_retry(
            transfers=OrderTransfer.objects.filter(
                shop__in=queryset, state=OrderTransfer.State.NEEDS_ATTENTION
            ),
            by=f"{request.user} (admin)",
        )
        self.message_user(request, _("%(count)d order(s) queued for transfer.") % {"count": count})

    @admin.action(description=_("Test connection"))
    def test_connection(self, request, queryset):
        for shop in queryset.select_related("customer"):
            report = shop_connection_test(shop=shop, triggered_by=f"admin:{request.user}")
            self.message_user(
                request, f"{shop.name}: {report.summary}", messages.SUCCESS if report.ok else messages.ERROR
            )

    @admin.action(description=_("Allow overwriting prices and stock in this shop"))
    def allow_overwrite(self, request, queryset):
        shops = list(queryset[:2])
        if len(shops) != 1:
            self.message_user(
                request,
                _("Choose one shop: each shop's differences are reviewed on their own page."),
                messages.WARNING,
            )
            return None
        return redirect("admin:integrations_shop_allow_overwrite", shops[0].pk)

    def get_urls(self):
        return [
            path(
                "<int:shop_id>/allow-overwrite/",
                self.admin_site.admin_view(self.allow_overwrite_view),
                name="integrations_shop_allow_overwrite",
            ),
            *super().get_urls(),
        ]

    def allow_overwrite_view(self, request, shop_id: int):
        """Confirmation, with the latest initial sync preview's differences, then the acceptance."""
        shop = get_object_or_404(Shop.objects.select_related("customer"), pk=shop_id)
        if not self.has_change_permission(request, shop):
            raise PermissionDenied
        if request.method == "POST":
            if shop_overwrite_allow(shop=shop, by=str(request.user)):
                self.message_user(
                    request,
                    _(
                        "%(shop)s: overwriting prices and stock is allowed; the next catalogue "
                        "sync brings every article to the shop."
                    )
                    % {"shop": shop.name},
                    messages.SUCCESS,
                )
            else:
                self.message_user(
                    request, _("%(shop)s: overwriting was already allowed.") % {"shop": shop.name}
                )
            return redirect("admin:integrations_shop_change", shop.pk)
        catalog = ShopCatalog.objects.filter(shop=shop).first()
        job = (
            InitialSync.objects.filter(shop=shop, previewed_at__isnull=False)
            .order_by("-previewed_at", "-id")
            .first()
        )
        return TemplateResponse(
            request,
            "admin/integrations/shop/allow_overwrite.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.model._meta,
                "shop": shop,
                "title": _("Allow overwriting prices and stock in this shop"),
                "held_text": OVERWRITE_HELD,
                "allowed": bool(catalog and catalog.overwrite_accepted_at),
                "catalog": catalog,
                "job": job,
                "differences": shop_differences_html(job.preview) if job else None,
                "preview_url": reverse("admin:integrations_initialsync_add") + f"?shop={shop.pk}",
            },
        )


class HogiaConnectionForm(SecretFieldsForm):
    secret_fields = ("client_secret",)

    class Meta:
        model = HogiaConnection
        formfield_callback = _formfield
        fields = [
            "customer",
            "organization_id",
            "client_id",
            "client_secret",
            "api_base",
            "auth_base",
            "rate_limit_requests",
            "rate_limit_seconds",
        ]


@admin.register(HogiaConnection)
class HogiaConnectionAdmin(ObjectActionsMixin, admin.ModelAdmin):
    object_actions = ("test_connection",)
    form = HogiaConnectionForm
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    list_display = [
        "customer",
        "company_name",
        "organization_id",
        "has_bookkeeping",
        "has_invoicing",
        "has_point_of_sale",
        "connection",
        "last_checked_at",
    ]
    list_filter = ["has_point_of_sale", "last_check_ok"]
    search_fields = ["customer__name", "company_name", "organisation_number", "organization_id"]
    list_select_related = ["customer"]
    autocomplete_fields = ["customer"]
    readonly_fields = [
        "company_name",
        "organisation_number",
        "has_bookkeeping",
        "has_invoicing",
        "has_point_of_sale",
        "units",
        "last_checked_at",
        "last_check_ok",
        "last_check_message",
    ]
    actions = ["test_connection"]
    fieldsets = [
        (None, {"fields": ["customer", "organization_id", "client_id", "client_secret"]}),
        (
            _("Addresses and limits"),
            {
                "fields": ["api_base", "auth_base", "rate_limit_requests", "rate_limit_seconds"],
                "classes": ["collapse"],
            },
        ),
        (
            _("Found by the last connection test"),
            {
                "fields": [
                    "company_name",
                    "organisation_number",
                    "has_bookkeeping",
                    "has_invoicing",
                    "has_point_of_sale",
                    "units",
                    "last_checked_at",
                    "last_check_ok",
                    "last_check_message",
                ]
            },
        ),
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
            self.message_user(
                request,
                f"{connection.customer}: {report.summary}",
                messages.SUCCESS if report.ok else messages.ERROR,
            )


FLOW_SETTINGS_FIELDSETS = [
    (None, {"fields": ["flow", "paused", "transfer_orders", "customer_match"]}),
    (
        _("Articles, prices and stock"),
        {
            "fields": [
                "sync_articles",
                "create_products",
                "update_products",
                "sync_prices",
                "sync_campaign_prices",
                "sync_stock",
            ],
            "description": _(
                "Hogia Smart has no price lists: only an ordinary price and a campaign "
                "price (with dates). They map to the shop's regular and sale price."
            ),
        },
    ),
    (_("Order status and plugins"), {"fields": ["order_status_to_shop", "plugins_enabled"]}),
    (
        _("Article numbers on invoices"),
        {"fields": ["freight_article_number", "fee_article_number", "discount_article_number"]},
    ),
]


@admin.register(FlowSettings)
class FlowSettingsAdmin(admin.ModelAdmin):
    list_display = [
        "customer",
        "flow",
        "paused",
        "transfer_orders",
        "sync_articles",
        "sync_prices",
        "sync_stock",
        "order_status_to_shop",
        "updated_at",
    ]
    list_filter = ["flow", "paused", "sync_stock", "order_status_to_shop"]
    search_fields = ["customer__name"]
    list_select_related = ["customer"]
    autocomplete_fields = ["customer"]
    fieldsets = (
        [(None, {"fields": ["customer"]})] + FLOW_SETTINGS_FIELDSETS[1:] + [FLOW_SETTINGS_FIELDSETS[0]]
    )


class SyncLogInline(admin.TabularInline):
    model = SyncLogEntry
    fields = ["created_at", "level", "object_type", "object_ref", "message"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(SyncRun)
class SyncRunAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "started_at",
        "customer",
        "shop",
        "kind",
        "flow",
        "outcome_badge",
        "read_count",
        "created_count",
        "updated_count",
        "skipped_count",
        "failed_count",
        "short_error",
    ]
    list_filter = ["outcome", "kind", "flow", "started_at"]
    search_fields = ["customer__name", "shop__name", "error"]
    list_select_related = ["customer", "shop"]
    date_hierarchy = "started_at"
    inlines = [SyncLogInline]

    @admin.display(description=_("outcome"), ordering="outcome")
    def outcome_badge(self, obj: SyncRun) -> str:
        return badge(obj.get_outcome_display(), RUN_OUTCOME_COLOURS.get(obj.outcome, "grey"))

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


class RecordInline(admin.TabularInline):
    """An order's records, shown on its page: read, never edited."""

    extra = 0
    can_delete = False

    def get_readonly_fields(self, request, obj=None):
        return self.fields

    def has_add_permission(self, request, obj=None):
        return False


class OrderEventInline(RecordInline):
    model = OrderEvent
    fields = ["created_at", "kind", "message"]
    verbose_name_plural = _("timeline")


class RefundCreditInline(RecordInline):
    model = RefundCredit
    fields = ["woo_refund_id", "amount", "invoice_number", "invoice_status", "booked_by_hand", "created_at"]


STEP_WORDS = {"status": _("status"), "tracking": _("tracking"), "note": _("note to the buyer")}


@admin.display(description=_("steps done"))
def steps_text(push: StatusPush) -> str:
    return ", ".join(str(STEP_WORDS[step]) for step in push.steps_done if step in STEP_WORDS) or "–"


class StatusPushInline(RecordInline):
    model = StatusPush
    fields = [
        "seen_at",
        "hogia_status",
        "tracking_number",
        "state",
        steps_text,
        "attempts",
        "next_attempt_at",
        "last_error",
        "attention",
    ]
    verbose_name_plural = _("invoice changes to the shop")


class PaymentCaptureInline(RecordInline):
    model = PaymentCapture
    fields = [
        "provider",
        "payment_method",
        "state",
        "completed_at",
        "checks",
        "next_check_at",
        "reference",
        "plugin_words",
    ]


class StatusMappingForm(forms.ModelForm):
    """One line of a customer's order status mapping. Refused below the package that includes the
    order status (only what is added or changed: a downgrade keeps the lines, the flow skips them)."""

    class Meta:
        model = StatusMapping
        fields = ["hogia_status", "shop", "action", "woo_status", "buyer_email", "pass_tracking"]

    def clean(self):
        data = super().clean()
        customer = self.instance.customer if self.instance.customer_id else getattr(self, "customer", None)
        if customer is not None and self.has_changed():
            refusal = feature_refusal(
                customer=customer, feature=Feature.ORDER_STATUS, what=str(_("Order status mapping"))
            )
            if refusal:
                raise forms.ValidationError(refusal)
        shop = data.get("shop")
        if shop is not None and customer is not None and shop.customer_id != customer.pk:
            self.add_error("shop", _("This shop belongs to another customer."))
        if data.get("action") == StatusMapping.Action.SET_STATUS:
            status = data.get("woo_status")
            shops = [shop] if shop else list(customer.shops.all()) if customer else []
            known = {slug for s in shops for slug, _name in s.order_statuses}
            if not status:
                self.add_error("woo_status", _("Choose the order status to set."))
            elif shops and status not in known:
                self.add_error(
                    "woo_status",
                    _(
                        "%(status)s is not one of the shop's order statuses (run \"test "
                        'connection" to read them again).'
                    )
                    % {"status": status},
                )
        return data


class StatusMappingInline(admin.TabularInline):
    """Shown on the customer's page, beside the flow settings' switch that turns it on."""

    model = StatusMapping
    form = StatusMappingForm
    extra = 0
    verbose_name_plural = _(
        "order status to the shop: what each invoice status does "
        "(statuses without a line: Delivered → completed with tracking, Cancelled → support)"
    )

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)
        shops = list(obj.shops.all()) if obj is not None else []
        statuses = {}
        for shop in shops:
            for slug, name in shop.order_statuses:
                statuses.setdefault(slug, f"{name} ({slug})")
        form = formset.form
        form.customer = obj
        form.base_fields["woo_status"] = forms.ChoiceField(
            label=_("new order status"),
            required=False,
            choices=[("", "–")] + sorted(statuses.items()),
            help_text=StatusMapping._meta.get_field("woo_status").help_text,
        )
        form.base_fields["shop"].queryset = Shop.objects.filter(customer=obj) if obj else Shop.objects.none()
        return formset


@admin.register(StatusPush)
class StatusPushAdmin(ObjectActionsMixin, ReadOnlyAdmin):
    object_actions = ("retry",)
    actions = ["retry"]

    def object_action_applies(self, name: str, obj: StatusPush) -> bool:
        return obj.state == StatusPush.State.NEEDS_ATTENTION  # what the action sends again

    list_display = [
        "seen_at",
        "order",
        "hogia_status",
        "tracking_number",
        "state",
        "attempts",
        "short_attention",
    ]
    list_filter = ["state", "hogia_status", "transfer__shop__customer", "transfer__shop"]
    search_fields = ["transfer__order_number", "transfer__invoice_number", "tracking_number"]
    list_select_related = ["transfer", "transfer__shop"]
    readonly_fields = [
        "transfer",
        "hogia_status",
        "delivery",
        "seen_at",
        "state",
        steps_text,
        "attempts",
        "next_attempt_at",
        "last_error",
        "attention",
        "finished_at",
    ]
    fields = readonly_fields

    @admin.display(description=_("order"), ordering="transfer__order_number")
    def order(self, obj: StatusPush) -> str:
        return str(obj.transfer)

    @admin.display(description=_("what to do"))
    def short_attention(self, obj: StatusPush) -> str:
        text = obj.attention or obj.last_error
        return format_html('<span title="{}">{}</span>', text, text[:90]) if text else "–"

    @admin.action(description=_("Send to the shop again"))
    def retry(self, request, queryset):
        pushes_send_again(self, request, queryset)


@admin.register(PaymentCapture)
class PaymentCaptureAdmin(ObjectActionsMixin, ReadOnlyAdmin):
    object_actions = ("retry_capture",)
    actions = ["retry_capture"]

    def object_action_applies(self, name: str, obj: PaymentCapture) -> bool:
        return obj.state != PaymentCapture.State.CAPTURED

    list_display = ["completed_at", "order", "provider", "state", "reference", "plugin_words"]
    list_filter = ["state", "provider", "transfer__shop__customer"]
    search_fields = ["transfer__order_number", "reference"]
    list_select_related = ["transfer", "transfer__shop"]
    readonly_fields = [
        "transfer",
        "provider",
        "payment_method",
        "state",
        "completed_at",
        "checks",
        "next_check_at",
        "checked_at",
        "reference",
        "plugin_words",
    ]
    fields = readonly_fields

    @admin.display(description=_("order"), ordering="transfer__order_number")
    def order(self, obj: PaymentCapture) -> str:
        return str(obj.transfer)

    @admin.action(
        description=_("Retry the capture (complete the order once more, if the plugin put it on hold)")
    )
    def retry_capture(self, request, queryset):
        captures_retry(self, request, queryset)


def pushes_send_again(model_admin, request, pushes) -> None:
    count = sum(
        status_push_retry(push=push, by=f"{request.user} (admin)")
        for push in pushes.filter(state=StatusPush.State.NEEDS_ATTENTION)
    )
    model_admin.message_user(request, _("%(count)d change(s) queued for the shop again.") % {"count": count})


def captures_retry(model_admin, request, captures) -> None:
    for capture in captures.exclude(state=PaymentCapture.State.CAPTURED).select_related("transfer__shop"):
        try:
            said = capture_retry(capture=capture, by=f"{request.user} (admin)")
        except RemoteError as exc:
            model_admin.message_user(request, f"{capture.transfer}: {exc}", messages.ERROR)
            continue
        label = PaymentCapture.State(said).label if said in PaymentCapture.State.values else said
        model_admin.message_user(request, f"{capture.transfer}: {label}")


TRANSFER_STATE_COLOURS = {
    OrderTransfer.State.NEEDS_ATTENTION: "red",
    OrderTransfer.State.HELD: "amber",
    OrderTransfer.State.QUEUED: "blue",
    OrderTransfer.State.TRANSFERRING: "blue",
    OrderTransfer.State.RECEIVED: "blue",
    OrderTransfer.State.INVOICED: "green",
    OrderTransfer.State.CREDITED: "green",
    OrderTransfer.State.FILTERED: "grey",
}
RUN_OUTCOME_COLOURS = {
    SyncRun.Outcome.FAILED: "red",
    SyncRun.Outcome.PARTIAL: "amber",
    SyncRun.Outcome.SUCCEEDED: "green",
}


@admin.register(OrderTransfer)
class OrderTransferAdmin(ObjectActionsMixin, ReadOnlyAdmin):
    # What support acts on first (state, when, why), then who and how much.
    object_actions = (
        "retry",
        "release_held",
        "refunds_booked_by_hand",
        "status_to_shop_again",
        "capture_again",
    )
    # Seven columns fit beside the admin's menu and filters at 1400 px: the shop's status and the
    # next attempt go under the state, the currency with the total; attempts are on the order's page.
    list_display = [
        "order_number",
        "shop_name",
        "state_badge",
        "buyer_name",
        "total_with_currency",
        "invoice_number",
        "short_error",
    ]
    list_filter = ["state", "first_seen_via", "shop__customer", "shop"]
    search_fields = ["order_number", "buyer", "invoice_number", "shop__name", "shop__customer__name"]
    list_select_related = ["shop", "shop__customer"]
    date_hierarchy = "created_at"
    inlines = [RefundCreditInline, StatusPushInline, PaymentCaptureInline, OrderEventInline]
    actions = ["retry", "release_held", "refunds_booked_by_hand", "status_to_shop_again", "capture_again"]
    readonly_fields = [
        "shop",
        "woo_order_id",
        "order_number",
        "state",
        "shop_status",
        "buyer",
        "total",
        "currency",
        "invoice_number",
        "hogia_invoice_id",
        "hogia_customer_number",
        "invoice_status",
        "invoice_delivery",
        "invoice_gross",
        "payment_method",
        "paid_at",
        "shop_status_written",
        "shop_modified_after_write",
        "attempts",
        "next_attempt",
        "last_error",
        "attention_text",
        "first_seen_via",
        "created_at",
        "woo_modified_gmt",
        "invoiced_at",
        "sequence_id",
    ]
    fields = readonly_fields

    @admin.display(description=_("status in the shop"), ordering="woo_status")
    def shop_status(self, obj: OrderTransfer) -> str:
        """The status's name as the shop shows it (its own language), with the slug the API uses."""
        if not obj.woo_status:
            return "–"
        name = obj.shop.status_label(obj.woo_status)
        return obj.woo_status if name == obj.woo_status else f"{name} ({obj.woo_status})"

    def object_action_applies(self, name: str, obj: OrderTransfer) -> bool:
        State = OrderTransfer.State
        if name == "retry":
            return obj.state in lifecycle.TRANSITIONS["retry"].sources
        if name == "release_held":
            return obj.state == State.HELD
        if name == "refunds_booked_by_hand":  # what the order waits for is support's credit
            return obj.state == State.NEEDS_ATTENTION and bool(obj.hogia_invoice_id)
        if name == "status_to_shop_again":
            return obj.status_pushes.filter(state=StatusPush.State.NEEDS_ATTENTION).exists()
        if name == "capture_again":
            return (
                PaymentCapture.objects.filter(transfer=obj)
                .exclude(state=PaymentCapture.State.CAPTURED)
                .exists()
            )
        return True

    @admin.display(description=_("next attempt"), ordering="next_attempt_at")
    def next_attempt(self, obj: OrderTransfer) -> str:
        """To the second: a retry due in 19 s must read as such, not as "14:03"."""
        if obj.next_attempt_at is None or obj.state not in (
            OrderTransfer.State.QUEUED,
            OrderTransfer.State.TRANSFERRING,
        ):
            return "–"
        return formats.date_format(timezone.localtime(obj.next_attempt_at), "Y-m-d H:i:s")

    @admin.display(description=_("state"), ordering="state")
    def state_badge(self, obj: OrderTransfer) -> str:
        shown = badge(obj.get_state_display(), TRANSFER_STATE_COLOURS.get(obj.state, "grey"))
        details = [obj.shop.status_label(obj.woo_status)] if obj.woo_status else []
        if self.next_attempt(obj) != "–":
            details.append(f"{_('next attempt')} {self.next_attempt(obj)}")
        if details:
            return format_html(
                '{}<div class="help" style="margin:2px 0 0">{}</div>', shown, " · ".join(details)
            )
        return shown

    @admin.display(description=_("shop"), ordering="shop__name")
    def shop_name(self, obj: OrderTransfer) -> str:
        return obj.shop.name

    @admin.display(description=_("buyer"), ordering="buyer")
    def buyer_name(self, obj: OrderTransfer) -> str:
        """Company and name; the e-mail address on hover (it is on the order's page too)."""
        name, _comma, email = obj.buyer.rpartition(", ")
        if "@" not in email or not name:
            return obj.buyer or "–"
        return format_html('<span title="{}">{}</span>', email, name)

    @admin.display(description=_("total"), ordering="total")
    def total_with_currency(self, obj: OrderTransfer) -> str:
        return money_text(obj.total, obj.currency) if obj.total is not None else "–"

    @admin.display(description=_("error"))
    def short_error(self, obj: OrderTransfer) -> str:
        """The start of the error and what to do; the whole text on hover (and on the order's page)."""
        text = (obj.attention and f"{obj.last_error} → {obj.attention}") or obj.last_error
        if not text:
            return "–"
        return format_html('<span title="{}">{}</span>', text, text if len(text) <= 90 else text[:87] + "…")

    @admin.display(description=_("what to do"))
    def attention_text(self, obj: OrderTransfer) -> str:
        diff = next((e.details.get("diff") for e in obj.events.order_by("-id") if e.details.get("diff")), "")
        return format_html("{}<pre>{}</pre>", obj.attention, diff) if diff else obj.attention

    @admin.action(description=_("Retry the selected orders now"))
    def retry(self, request, queryset):
        count = transfers_retry(transfers=queryset, by=f"{request.user} (admin)")
        self.message_user(request, _("%(count)d order(s) queued for transfer.") % {"count": count})

    @admin.action(description=_("Mark as credited by hand in Hogia Smart (refunds by amount, cancellations)"))
    def refunds_booked_by_hand(self, request, queryset):
        marked = 0
        for transfer in queryset.filter(hogia_invoice_id__gt="").select_related("shop"):
            try:
                marked += refunds_mark_booked_by_hand(transfer=transfer, by=str(request.user))
            except RemoteError as exc:
                self.message_user(request, f"{transfer}: {exc}", messages.ERROR)
        self.message_user(request, _("%(count)d refund(s) marked as credited by hand.") % {"count": marked})

    @admin.action(description=_("Send the invoice status to the shop again"))
    def status_to_shop_again(self, request, queryset):
        pushes_send_again(self, request, StatusPush.objects.filter(transfer__in=queryset))

    @admin.action(description=_("Retry the payment capture"))
    def capture_again(self, request, queryset):
        captures_retry(self, request, PaymentCapture.objects.filter(transfer__in=queryset))

    @admin.action(description=_("Release held orders over the quota"))
    def release_held(self, request, queryset):
        count = transfers_release_held(
            transfers=queryset, by_user=request.user, reason=str(_("released by support in the admin"))
        )
        self.message_user(request, _("%(count)d held order(s) released and queued.") % {"count": count})


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    list_display = ["received_at", "shop", "topic", "outcome", "resource_id", "reason"]
    list_filter = ["outcome", "topic", "task_pending", "shop"]
    search_fields = ["shop__name", "reason", "resource_id", "delivery_id"]
    list_select_related = ["shop"]
    date_hierarchy = "received_at"
    exclude = ["body"]
    readonly_fields = [
        "shop",
        "received_at",
        "outcome",
        "task_pending",
        "reason",
        "topic",
        "webhook_id",
        "delivery_id",
        "source",
        "resource_id",
        "content_type",
        "body_size",
        "headers",
        "raw_body",
    ]

    def changelist_view(self, request, extra_context=None):
        # The list holds what was kept; what the hourly cap dropped is said above it.
        drops = webhook_drops(hours=24)
        if drops.deliveries:
            subtitle = _(
                "Dropped in the last 24 hours (no valid signature, over %(cap)d per shop and hour): "
                "%(count)d deliveries, %(size)s: %(shops)s."
            ) % {
                "cap": settings.WEBHOOK_REJECTED_KEEP_PER_HOUR,
                "count": drops.deliveries,
                "size": filesizeformat(drops.bytes),
                "shops": ", ".join(f"{name} {count}" for name, count in drops.shops),
            }
            extra_context = {**(extra_context or {}), "subtitle": subtitle}
        return super().changelist_view(request, extra_context)

    @admin.display(description=_("raw body"))
    def raw_body(self, obj: WebhookDelivery) -> str:
        return format_html(
            "<pre style='white-space: pre-wrap'>{}</pre>",
            bytes(obj.body).decode("utf-8", errors="replace")[:20000],
        )


@admin.register(BuyerBinding)
class BuyerBindingAdmin(ReadOnlyAdmin):
    list_display = ["customer", "key_kind", "key_value", "hogia_customer_number", "created", "created_at"]
    list_filter = ["key_kind", "created"]
    search_fields = ["key_value", "hogia_customer_number", "customer__name"]
    list_select_related = ["customer"]


# -- catalogue: articles, prices and stock ----------------------------------------------------

PRICE_LIST_NOTE = _(
    "Price lists: Hogia Smart has no price lists, only an ordinary price and a campaign "
    "price (with dates). They become the shop's regular price and sale price "
    "(campaign prices need package 400)."
)


def _enqueue(func: str, *args) -> None:
    from integrations.taskqueue import task_enqueue

    task_enqueue(func, *args, group="catalogue")


@admin.action(description=_("Sync the catalogue (articles, prices, stock) now"))
def sync_catalogue_now(modeladmin, request, queryset):
    customers = Customer.objects.filter(pk__in=queryset.values("customer_id")).order_by("name")
    queued = 0
    for customer in customers:
        obstacle = catalog_sync_obstacle(customer=customer)
        if obstacle is not None:
            # Queued anyway, the task would end at once with this reason in the task list only.
            modeladmin.message_user(
                request,
                _("%(customer)s: nothing queued: %(reason)s.")
                % {"customer": customer, "reason": obstacle.reason},
                messages.WARNING,
            )
            continue
        _enqueue("integrations.tasks.sync_catalog", customer.pk, False, f"{request.user} (admin)")
        queued += 1
    if queued:
        modeladmin.message_user(request, _("%(count)d catalogue sync(s) queued.") % {"count": queued})


ShopAdmin.actions = [*ShopAdmin.actions, sync_catalogue_now]
FlowSettingsAdmin.actions = [*(FlowSettingsAdmin.actions or []), sync_catalogue_now]


@admin.register(ShopCatalog)
class ShopCatalogAdmin(admin.ModelAdmin):
    list_display = ["shop", "prices_include_tax", "products_synced_until"]
    list_select_related = ["shop", "shop__customer"]
    search_fields = ["shop__name", "shop__customer__name"]
    readonly_fields = [
        "products_synced_until",
        "overwrite_accepted_at",
        "overwrite_accepted_by",
        "behind_from",
    ]
    autocomplete_fields = ["shop"]
    fieldsets = [
        (
            None,
            {
                "fields": ["shop", "prices_include_tax", "products_synced_until"],
                "description": PRICE_LIST_NOTE,
            },
        ),
        (
            _("Overwriting the shop's prices and stock"),
            {
                "fields": ["overwrite_accepted_at", "overwrite_accepted_by", "behind_from"],
                "description": _(
                    "Allowed on the shop's page (\"Allow overwriting prices and stock in this "
                    'shop") or by running an initial sync whose preview showed the '
                    "differences."
                ),
            },
        ),
    ]


@admin.register(HogiaArticle)
class HogiaArticleAdmin(ReadOnlyAdmin):
    list_display = [
        "number",
        "name",
        "customer",
        "ordinary_price",
        "campaign_price",
        "stock",
        "send_to_webshop",
        "row_version",
        "updated_at",
    ]
    search_fields = ["number", "customer__name", "hogia_id"]
    list_select_related = ["customer"]
    list_filter = ["customer"]
    readonly_fields = ["customer", "number", "hogia_id", "row_version", "data", "written_hash", "updated_at"]
    fields = readonly_fields

    @admin.display(description=_("name"))
    def name(self, obj):
        return obj.data.get("name", "")

    @admin.display(description=_("ordinary price (excl. VAT)"))
    def ordinary_price(self, obj):
        return money_text((obj.data.get("prices") or {}).get("ordinary")) or "–"

    @admin.display(description=_("campaign price"))
    def campaign_price(self, obj):
        prices = obj.data.get("prices") or {}
        if prices.get("campaign") in (None, ""):
            return "–"
        return (
            f"{money_text(prices['campaign'])} ({prices.get('campaignFrom') or '…'} – "
            f"{prices.get('campaignTo') or '…'})"
        )

    @admin.display(description=_("stock"))
    def stock(self, obj):
        return obj.data.get("stockBalance")

    @admin.display(description=_("send to webshop"), boolean=True)
    def send_to_webshop(self, obj):
        return bool(obj.data.get("sendToWebshop"))

    def changelist_view(self, request, extra_context=None):
        messages.info(request, PRICE_LIST_NOTE)
        return super().changelist_view(request, extra_context)


@admin.register(ArticleBinding)
class ArticleBindingAdmin(ReadOnlyAdmin):
    list_display = ["sku", "shop", "woo_id", "woo_parent_id", "hogia_row_version", "updated_at"]
    search_fields = ["sku", "shop__name", "shop__customer__name"]
    list_select_related = ["shop"]
    list_filter = ["shop"]


class InitialSyncItemInline(admin.TabularInline):
    model = InitialSyncItem
    fields = ["sku", "state", "woo_id", "hogia_id", "message"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    verbose_name_plural = _("items that failed or are not written yet (first 200)")

    def has_add_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        queryset = super().get_queryset(request).exclude(state=InitialSyncItem.State.DONE)
        ids = list(queryset.values_list("pk", flat=True)[:200])
        return super().get_queryset(request).filter(pk__in=ids)


class InitialSyncForm(forms.ModelForm):
    class Meta:
        model = InitialSync
        fields = ["shop", "direction"]


def _seconds_text(seconds) -> str:
    if seconds is None:
        return "–"
    minutes, seconds = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return (
        f"{hours} h {minutes} min" if hours else f"{minutes} min {seconds} s" if minutes else f"{seconds} s"
    )


@admin.register(InitialSync)
class InitialSyncAdmin(admin.ModelAdmin):
    """Preview, then run; the change page shows progress and refreshes itself while running."""

    form = InitialSyncForm
    change_form_template = "admin/integrations/initialsync/change_form.html"
    list_display = ["id", "shop", "direction", "state_text", "progress_text", "created_at", "finished_at"]
    list_filter = ["state", "direction", "heartbeat_at"]
    search_fields = ["shop__name", "customer__name"]
    list_select_related = ["shop", "customer"]
    autocomplete_fields = ["shop"]
    actions = ["make_preview", "run_sync"]
    inlines = [InitialSyncItemInline]
    readonly_fields = [
        "customer",
        "state_text",
        "progress_text",
        "preview_summary",
        "preview_lists",
        "shop_differences",
        "report_text",
        "requested_by",
        "created_at",
        "previewed_at",
        "started_at",
        "heartbeat_at",
        "finished_at",
        "error",
    ]

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return [
                (
                    None,
                    {
                        "fields": ["shop", "direction"],
                        "description": _(
                            'Create the job, then choose "Make the preview" in the list. '
                            'Nothing is written before "Run".'
                        ),
                    },
                )
            ]
        return [
            (None, {"fields": ["shop", "direction", "customer", "state_text", "requested_by", "error"]}),
            (
                _("Progress"),
                {
                    "fields": [
                        "progress_text",
                        "created_at",
                        "previewed_at",
                        "started_at",
                        "heartbeat_at",
                        "finished_at",
                    ]
                },
            ),
            (_("Preview"), {"fields": ["preview_summary", "preview_lists"], "description": PRICE_LIST_NOTE}),
            (
                _("What the periodic sync would change in the matched products"),
                {"fields": ["shop_differences"]},
            ),
            (_("Report"), {"fields": ["report_text"]}),
        ]

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields + (["shop", "direction"] if obj else [])

    def get_inlines(self, request, obj):
        return self.inlines if obj is not None else []

    def has_change_permission(self, request, obj=None):
        return obj is None or super().has_change_permission(request, obj)

    def save_model(self, request, obj, form, change):
        if not change:
            job = initial_sync_create(shop=obj.shop, direction=obj.direction, requested_by=str(request.user))
            obj.pk, obj.customer_id, obj.created_at = job.pk, job.customer_id, job.created_at
            obj._state.adding = False
            return
        super().save_model(request, obj, form, change)

    @admin.display(description=_("state"), ordering="state")
    def state_text(self, obj: InitialSync) -> str:
        if obj.state == InitialSync.State.FAILED and obj.started_at is None:
            return _("stopped: the preview failed, make it again")
        return obj.get_state_display()

    @admin.display(description=_("progress"))
    def progress_text(self, obj: InitialSync) -> str:
        progress = initial_sync_progress(job=obj)
        if progress["percent"] is None:
            return _("preview not made yet")
        separator = formats.get_format("DECIMAL_SEPARATOR")
        rate = f"{progress['rate']:g}/s".replace(".", separator) if progress["rate"] else "–"
        return _(
            "%(done)d / %(total)d written (%(percent)s %%), %(failed)d failed; %(rate)s; time left %(left)s"
        ) % {
            **progress,
            "percent": formats.localize(progress["percent"]),
            "rate": rate,
            "left": _seconds_text(progress["eta_seconds"]),
        }

    @admin.display(description=_("what the preview found"))
    def preview_summary(self, obj: InitialSync) -> str:
        counts = (obj.preview or {}).get("counts") or {}
        if not counts:
            return "–"
        labels = [
            ("shop_products", _("products and variations in the shop")),
            ("hogia_articles", _("articles in Hogia Smart")),
            ("match", _("SKUs on both sides (bound)")),
            ("only_in_shop", _("only in the shop")),
            ("only_in_hogia", _("only in Hogia Smart")),
            ("not_for_webshop", _('of those, not marked "send to webshop"')),
            ("duplicated_in_shop", _("duplicated in the shop (left out)")),
            ("duplicated_in_hogia", _("duplicated in Hogia Smart (left out)")),
            ("missing_sku", _("products without SKU (left out)")),
            ("unmappable", _("cannot be mapped (left out)")),
            ("to_write", _("to write")),
        ]
        if "would_change" in counts:  # the flow writes to the shop
            labels += [
                ("would_change", _("matched products the periodic sync would change")),
                ("unchanged", _("matched products it would not change")),
                ("stock_left_alone", _("stock not managed in the shop: left alone")),
                ("match_not_written", _('matched, not written by flow 2 (not "send to webshop")')),
            ]
        rows = format_html(
            "".join("<tr><td>{}</td><td>{}</td></tr>" for _label in labels),
            *[v for key, label in labels for v in (label, counts.get(key, 0))],
        )
        return format_html("<table>{}</table>", rows)

    @admin.display(description=_("lists"))
    def preview_lists(self, obj: InitialSync) -> str:
        preview = obj.preview or {}
        parts = []
        for key, label in (
            ("duplicated_in_shop", _("Duplicated in the shop")),
            ("duplicated_in_hogia", _("Duplicated in Hogia Smart")),
            ("missing_sku", _("Without SKU")),
            ("unmappable", _("Cannot be mapped")),
            ("only_in_shop", _("Only in the shop")),
            ("only_in_hogia", _("Only in Hogia Smart")),
        ):
            values = preview.get(key)
            if not values:
                continue
            if isinstance(values, dict):
                text = "; ".join(f"{sku}: {', '.join(owners)}" for sku, owners in list(values.items())[:200])
            else:
                text = ", ".join(
                    str(v.get("name", v)) if isinstance(v, dict) else str(v) for v in values[:200]
                )
            parts.append(format_html("<p><strong>{}</strong>: {}</p>", label, text))
        return format_html("".join(["{}"] * len(parts)), *parts) if parts else "–"

    @admin.display(description=_("differences"))
    def shop_differences(self, obj: InitialSync) -> str:
        table = shop_differences_html(obj.preview)
        catalog = getattr(obj.shop, "catalog", None)
        writes = ((obj.preview or {}).get("shop_writes") or {}).get("writes")
        if writes and obj.state != InitialSync.State.DONE and not (catalog and catalog.overwrite_accepted_at):
            return format_html(
                "<p><strong>{}</strong> {}</p>{}",
                OVERWRITE_HELD,
                _(
                    "When this sync has run, the differences below count as accepted and the periodic "
                    "sync writes them."
                ),
                table,
            )
        return table

    @admin.display(description=_("report"))
    def report_text(self, obj: InitialSync) -> str:
        report = {k: v for k, v in (obj.report or {}).items() if not k.startswith("segment_")}
        if not report:
            return "–"
        import json

        return format_html(
            "<pre style='white-space: pre-wrap'>{}</pre>",
            json.dumps(report, indent=2, ensure_ascii=False)[:20000],
        )

    @admin.action(description=_("Make the preview (reads both systems, writes nothing)"))
    def make_preview(self, request, queryset):
        jobs = queryset.filter(PREVIEWABLE)
        for job in jobs:
            _enqueue("integrations.tasks.preview_initial_sync", job.pk)
        self.message_user(request, _("%(count)d preview(s) queued.") % {"count": len(jobs)})

    @admin.action(description=_("Run (writes; resumes a stopped run)"))
    def run_sync(self, request, queryset):
        jobs = queryset.filter(RUNNABLE | Q(state=InitialSync.State.RUNNING))
        for job in jobs:
            _enqueue("integrations.tasks.run_initial_sync", job.pk)
        skipped = queryset.count() - len(jobs)
        self.message_user(
            request,
            _("%(count)d run(s) queued; %(skipped)d need a preview first or are done.")
            % {"count": len(jobs), "skipped": skipped},
        )


# Customer plugins' pages live with the plugins; importing them here registers them.
from integrations.plugins.admin import PluginDryRunAdmin, PluginVersionAdmin  # noqa: E402

PLUGIN_ADMINS = (PluginVersionAdmin, PluginDryRunAdmin)
