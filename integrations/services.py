"""Writes of the integrations app: sync run records, the sync log, connection tests."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import requests
from django.db import transaction
from django.utils import formats, timezone
from django.utils.translation import gettext as _
from django.utils.translation import pgettext
from django_q.exceptions import TimeoutException

from billing.models import Customer
from integrations.clients.hogia_smart import HogiaSmartClient
from integrations.connections import hogia_client, woocommerce_client
from integrations.errors import (
    NotFound,
    RateLimited,
    RemoteError,
    RemoteRejected,
    RemoteUnavailable,
    Unauthorised,
)
from integrations.mapping.invoices import InvoiceArticles
from integrations.models import FlowSettings, HogiaConnection, Shop, SyncLogEntry, SyncRun
from integrations.orders.tracking import tracking_method_from_index

Level = SyncLogEntry.Level

# What a flow records before it lets a failure go on to the task queue. django-q2 stops a task
# at its time limit with TimeoutException, a SystemExit, which ``except Exception`` lets through.
RECORDED_FAILURES = (Exception, TimeoutException)


def sync_run_start(
    *,
    customer: Customer,
    kind: str,
    shop: Shop | None = None,
    flow: int | None = None,
    triggered_by: str = "",
) -> SyncRun:
    return SyncRun.objects.create(
        customer=customer, shop=shop, kind=kind, flow=flow, triggered_by=triggered_by[:120]
    )


def sync_run_finish(*, run: SyncRun, error: str = "", outcome: str | None = None) -> SyncRun:
    """Close a run; without an explicit outcome it follows from the failure count and error."""
    if outcome is None:
        if error:
            outcome = SyncRun.Outcome.FAILED
        elif run.failed_count:
            outcome = (
                SyncRun.Outcome.PARTIAL
                if (run.created_count or run.updated_count)
                else SyncRun.Outcome.FAILED
            )
        else:
            outcome = SyncRun.Outcome.SUCCEEDED
    run.outcome = outcome
    run.error = error
    run.finished_at = timezone.now()
    run.save(
        update_fields=[
            "outcome",
            "error",
            "finished_at",
            "read_count",
            "created_count",
            "updated_count",
            "skipped_count",
            "failed_count",
            "details",
        ]
    )
    return run


def sync_log(
    *,
    customer: Customer,
    message: str,
    level: str = Level.INFO,
    run: SyncRun | None = None,
    shop: Shop | None = None,
    object_type: str = "",
    object_ref: str = "",
    details: dict | None = None,
) -> SyncLogEntry:
    return SyncLogEntry.objects.create(
        customer=customer,
        run=run,
        shop=shop,
        level=level,
        message=message,
        object_type=object_type,
        object_ref=str(object_ref)[:120],
        details=details or {},
    )


def failure_reason(exc: BaseException) -> str:
    """What stopped a flow, for a run's error and the sync log; the traceback stays in the task queue."""
    if isinstance(exc, TimeoutException):
        return "stopped at the task's time limit"
    if isinstance(exc, RemoteError):
        return str(exc)
    return f"unexpected error ({type(exc).__name__}: {exc})"


def remote_error_text(exc: RemoteError, *, system: str, where: str) -> str:
    """A remote failure in words a support person can act on."""
    values = {"system": system, "where": where, "detail": str(exc)}
    if isinstance(exc, Unauthorised):
        advice = _("Check that they are typed right, still exist and have read/write permission.")
        if "signature" in values["detail"].lower():
            # OAuth signs the address as typed; WordPress checks it against its own home URL.
            advice = (
                _(
                    "The shop URL (%(where)s) must be exactly the shop's WordPress address (Settings → "
                    "General: http or https, with or without www)."
                )
                % values
                + " "
                + advice
            )
        return _("%(system)s refused the credentials (%(detail)s).") % values + " " + advice
    if isinstance(exc, RateLimited):
        return _("%(system)s is rate limiting us (%(detail)s); it asked us to wait %(wait)s s.") % {
            **values,
            "wait": f"{exc.retry_after:g}".replace(".", formats.get_format("DECIMAL_SEPARATOR")),
        }
    if isinstance(exc, RemoteUnavailable):
        return (
            _("Could not reach %(system)s at %(where)s (%(detail)s). Check the address and that it is up.")
            % values
        )
    if isinstance(exc, NotFound):
        return (
            _("%(system)s at %(where)s answered 404 (%(detail)s). Check the address (and organisation id).")
            % values
        )
    if isinstance(exc, RemoteRejected):
        return _("%(system)s rejected the request: %(detail)s") % values
    return _("%(system)s failed: %(detail)s") % values


@dataclass(frozen=True)
class MissingArticle:
    """An article of the flow settings (freight, fee or discount) that Hogia Smart does not have."""

    kind: str
    number: str

    def __str__(self) -> str:
        # A whole sentence per kind: "the freight article" is one word in Swedish (fraktartikeln).
        sentences = {
            "freight": _(
                "the freight article '%(number)s' chosen in the flow settings does not exist in Hogia Smart"
            ),
            "fee": _(
                "the fee article '%(number)s' chosen in the flow settings does not exist in Hogia Smart"
            ),
            "discount": _(
                "the discount article '%(number)s' chosen in the flow settings does not exist in Hogia Smart"
            ),
        }
        return sentences[self.kind] % {"number": self.number}


def flow_articles_missing(
    *, hogia: HogiaSmartClient, articles: InvoiceArticles, among: Collection[str] | None = None
) -> list[MissingArticle]:
    """The freight, fee and discount articles of the flow settings that Hogia Smart lacks, in that
    order; with ``among``, only those whose number is in it. Raises ``RemoteError`` as the client does."""
    found: dict[str, bool] = {}
    missing = []
    for kind, number in (
        ("freight", articles.freight),
        ("fee", articles.fee),
        ("discount", articles.discount),
    ):
        if among is not None and number not in among:
            continue
        if number not in found:  # one article may serve two kinds
            found[number] = hogia.article_by_number(number) is not None
        if not found[number]:
            missing.append(MissingArticle(kind, number))
    return missing


@dataclass
class ConnectionReport:
    ok: bool
    summary: str
    run: SyncRun


def _connection_checked(
    obj,
    *,
    run: SyncRun,
    ok: bool,
    message: str,
    fields: list[str],
    object_type: str,
    object_ref: str,
    shop: Shop | None = None,
    warning: bool = False,
    details: dict | None = None,
) -> ConnectionReport:
    """Record a connection test's result on the connection, in the log and on its run."""
    obj.last_checked_at = timezone.now()
    obj.last_check_ok = ok
    obj.last_check_message = message
    level = Level.ERROR if not ok else (Level.WARNING if warning else Level.INFO)
    with transaction.atomic():
        obj.save(update_fields=["last_checked_at", "last_check_ok", "last_check_message", *fields])
        sync_log(
            customer=run.customer,
            shop=shop,
            run=run,
            level=level,
            message=(_("Connection test: %(result)s") if ok else _("Connection test failed: %(result)s"))
            % {"result": message},
            object_type=object_type,
            object_ref=object_ref,
            details=details,
        )
        sync_run_finish(run=run, error="" if ok else message)
    return ConnectionReport(ok=ok, summary=message, run=run)


def shop_connection_test(
    *, shop: Shop, triggered_by: str = "", session: requests.Session | None = None
) -> ConnectionReport:
    """Call the shop through the client: its version, currency and order statuses."""
    run = sync_run_start(
        customer=shop.customer, shop=shop, kind=SyncRun.Kind.CONNECTION_TEST, triggered_by=triggered_by
    )
    client = woocommerce_client(shop=shop, session=session)
    try:
        info = client.store_info()
        statuses = client.order_statuses()
    except RemoteError as exc:
        return _connection_checked(
            shop,
            run=run,
            ok=False,
            fields=[],
            shop=shop,
            object_type="shop",
            object_ref=shop.name,
            message=remote_error_text(exc, system="WooCommerce", where=shop.home_url),
        )
    shop.store_version = str(info.get("version") or "")[:40]
    shop.currency = str(info.get("currency") or "")[:3]
    shop.order_statuses = [[slug, name] for slug, name in statuses]
    problems = []
    try:
        index = client.rest_index()
    except RemoteError as exc:
        # Some hosts hide the index; the orders still work, and tracking goes as a note to the buyer.
        problems.append(
            _(
                "the shop's REST index (/wp-json/) could not be read, so tracking goes as a note to the "
                "buyer (%(error)s)"
            )
            % {"error": exc}
        )
        index = {}
    shop.rest_namespaces = sorted(str(n) for n in index.get("namespaces") or [])
    shop.tracking_method = tracking_method_from_index(index)
    if shop.currency and shop.currency != "SEK":
        problems.append(
            _("the shop's currency is %(currency)s: invoices will be in %(currency)s")
            % {"currency": shop.currency}
        )
    known = {slug for slug, _name in shop.order_statuses}
    missing = [s for s in shop.trigger_statuses if s not in known]
    if missing:
        problems.append(
            _("chosen trigger status(es) %(statuses)s no longer exist in the shop")
            % {"statuses": ", ".join(missing)}
        )
    message = _(
        "Connected to WooCommerce %(version)s, currency %(currency)s, %(count)d order statuses; tracking "
        "goes through %(tracking)s."
    ) % {
        "version": shop.store_version or _("(version unknown)"),
        "currency": shop.currency or _("(unknown)"),
        "count": len(statuses),
        "tracking": shop.get_tracking_method_display(),
    }
    if problems:
        message += " " + _("Note: %(problems)s.") % {"problems": "; ".join(problems)}
    run.read_count = 1
    return _connection_checked(
        shop,
        run=run,
        ok=True,
        message=message,
        fields=["store_version", "currency", "order_statuses", "rest_namespaces", "tracking_method"],
        shop=shop,
        object_type="shop",
        object_ref=shop.name,
        warning=bool(problems),
        details={
            "version": shop.store_version,
            "currency": shop.currency,
            "home_url": info.get("home_url", ""),
            "order_statuses": shop.order_statuses,
            "tracking_method": shop.tracking_method,
            "rest_namespaces": shop.rest_namespaces,
        },
    )


def hogia_connection_test(
    *, connection: HogiaConnection, triggered_by: str = "", session: requests.Session | None = None
) -> ConnectionReport:
    """Call Hogia Smart: company name, modules and result units; check the required modules, the
    shops' result units and the freight, fee and discount articles of the flow settings."""
    customer = connection.customer
    run = sync_run_start(customer=customer, kind=SyncRun.Kind.CONNECTION_TEST, triggered_by=triggered_by)
    client = hogia_client(connection=connection, session=session)
    try:
        organization = client.organization()
        units = client.result_units()
    except RemoteError as exc:
        return _connection_checked(
            connection,
            run=run,
            ok=False,
            fields=[],
            object_type="hogia",
            object_ref=str(connection.organization_id),
            message=remote_error_text(exc, system="Hogia Smart", where=connection.api_base),
        )
    modules = organization.get("modules") or {}
    connection.company_name = str(organization.get("name") or "")[:200]
    connection.organisation_number = str(organization.get("organizationNumber") or "")[:20]
    connection.has_bookkeeping = bool(modules.get("bookkeeping"))
    connection.has_invoicing = bool(modules.get("invoicing"))
    connection.has_point_of_sale = bool(modules.get("pointOfSale"))
    connection.result_units = [
        [str(u.get("number")), str(u.get("name", ""))] for u in units if u.get("isActive", True)
    ]
    problems = []
    if not connection.has_bookkeeping:
        problems.append(_("the company lacks Hogia Smart Bokföring (bookkeeping), which is required"))
    if not connection.has_invoicing:
        problems.append(_("the company lacks Hogia Smart Fakturering (invoicing), which is required"))
    unit_numbers = {number for number, _name in connection.result_units}
    for shop in customer.shops.filter(is_active=True):
        if shop.result_unit and shop.result_unit not in unit_numbers:
            problems.append(
                f"shop {shop.name} books on result unit {shop.result_unit}, which the company does not have"
            )
    settings = getattr(customer, "flow_settings", None) or FlowSettings(customer=customer)
    articles = InvoiceArticles(
        freight=settings.freight_article_number,
        fee=settings.fee_article_number,
        discount=settings.discount_article_number,
    )
    try:
        problems.extend(str(missing) for missing in flow_articles_missing(hogia=client, articles=articles))
    except RemoteError as exc:
        problems.append(
            "the articles of the flow settings could not be checked: "
            + remote_error_text(exc, system="Hogia Smart", where=connection.api_base)
        )
    module_names = [
        name
        for name, has in (
            ("Bokföring", connection.has_bookkeeping),
            ("Fakturering", connection.has_invoicing),
            ("Kassaregister", connection.has_point_of_sale),
        )
        if has
    ]
    message = _("Connected to %(company)s (%(number)s); modules: %(modules)s; %(units)d result units.") % {
        "company": connection.company_name,
        "number": connection.organisation_number,
        "modules": ", ".join(module_names) or pgettext("Hogia Smart modules", "none"),
        "units": len(connection.result_units),
    }
    if problems:
        message += " " + _("Problem: %(problems)s.") % {"problems": "; ".join(problems)}
    run.read_count = 1
    return _connection_checked(
        connection,
        run=run,
        ok=not problems,
        message=message,
        fields=[
            "company_name",
            "organisation_number",
            "has_bookkeeping",
            "has_invoicing",
            "has_point_of_sale",
            "result_units",
        ],
        object_type="hogia",
        object_ref=str(connection.organization_id),
        details={"organization": organization, "result_units": connection.result_units},
    )
