"""Whether Hogia Smart may overwrite a shop's products: held for a new shop until support accepts.

A shop connected under flow 2 or 3 usually has real prices and stock of its own. Until
support has seen the initial sync's differences (or allowed it explicitly), the periodic
sync writes no prices, campaign prices, stock or names to the shop's existing products.
Acceptance happens once per shop (``shop_overwrite_allow``); the sync after it brings the
whole catalogue to the shop: the feed's mark moved on while the shop was held, so the shop's
own mark (``ShopCatalog.behind_from``) is set to the start.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from billing.models import Customer
from integrations.models import Flow, FlowSettings, Shop, ShopCatalog, SyncLogEntry
from integrations.services import sync_log

logger = logging.getLogger(__name__)

# Every five minutes would bury the rest of the log: the shop page says it all the time anyway.
HELD_WARNING_EVERY = timedelta(days=1)
HELD_OBJECT_TYPE = "overwrite_held"
HELD_MESSAGE = gettext_lazy(
    "Prices and stock are not written to this shop until the initial sync's differences are accepted."
)


def flow_writes_to_shop(settings: FlowSettings | None) -> bool:
    """Flows 2 and 3 write Hogia Smart's prices and stock to the shops; flow 1 writes nothing there."""
    return settings is not None and settings.flow in (Flow.ERP, Flow.COMBO)


def shop_overwrite_allowed(*, catalog: ShopCatalog) -> bool:
    return catalog.overwrite_accepted_at is not None


def shops_overwrite_held(*, customer: Customer) -> set[int]:
    """The customer's shops whose existing products the flow would write to but may not yet."""
    settings = FlowSettings.objects.filter(customer=customer).first()
    if not flow_writes_to_shop(settings):
        return set()
    accepted = ShopCatalog.objects.filter(shop__customer=customer, overwrite_accepted_at__isnull=False)
    return set(
        Shop.objects.filter(customer=customer)
        .exclude(pk__in=accepted.values("shop_id"))
        .values_list("pk", flat=True)
    )


def shop_overwrite_allow(*, shop: Shop, by: str) -> bool:
    """Let the periodic sync write to the shop's existing products; False when it already could."""
    ShopCatalog.objects.get_or_create(shop=shop)
    now = timezone.now()
    allowed = bool(
        ShopCatalog.objects.filter(shop=shop, overwrite_accepted_at__isnull=True).update(
            overwrite_accepted_at=now, overwrite_accepted_by=by[:150], behind_from=0
        )
    )
    if allowed:
        logger.info("shop %s: overwriting prices and stock allowed by %s", shop.pk, by)
        sync_log(
            customer=shop.customer,
            shop=shop,
            object_type="catalogue",
            message=_(
                "Overwriting prices and stock in this shop allowed by %(by)s: the next catalogue "
                "sync brings every article to the shop."
            )
            % {"by": by},
        )
    return allowed


def shop_overwrite_held_note(*, shop: Shop) -> str:
    """The reason a sync leaves the shop's products alone; logged as a warning at most once a day."""
    now = timezone.now()
    if not SyncLogEntry.objects.filter(
        shop=shop, object_type=HELD_OBJECT_TYPE, created_at__gte=now - HELD_WARNING_EVERY
    ).exists():
        sync_log(
            customer=shop.customer,
            shop=shop,
            level=SyncLogEntry.Level.WARNING,
            object_type=HELD_OBJECT_TYPE,
            message=f"{HELD_MESSAGE} "
            + _(
                "Make the initial sync's preview and run it, or choose \"Allow "
                'overwriting prices and stock in this shop" on the shop in the '
                "admin."
            ),
        )
    return f"{shop.name}: {HELD_MESSAGE}"
