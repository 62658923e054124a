"""Tell billing whenever a customer's number of active shops changes (295 SEK per extra shop),
however the shop was changed: admin, demo set-up or a later API."""

from __future__ import annotations

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from integrations.models import Shop


@receiver(post_save, sender=Shop, dispatch_uid="integrations_shop_count_saved")
@receiver(post_delete, sender=Shop, dispatch_uid="integrations_shop_count_deleted")
def _shop_count(sender, instance: Shop, raw: bool = False, **kwargs):
    if raw:
        return
    from billing.services import shop_count_changed
    from integrations.intake import shop_cache_forget

    shop_cache_forget(shop=instance)
    customer = instance.customer
    shop_count_changed(customer=customer, active_shops=customer.shops.filter(is_active=True).count())


@receiver(post_save, sender="billing.Subscription", dispatch_uid="integrations_release_after_package_change")
def _release_held_orders(sender, instance, raw: bool = False, **kwargs):
    """A larger package (or any new subscription) may leave room: held orders go at once, not at
    the next sweep."""
    if raw:
        return
    from django.db import transaction

    from integrations.orders.quota import held_release

    customer = instance.customer
    transaction.on_commit(lambda: held_release(customer=customer))
