"""Credit the start package whichever way the first subscription is made (admin, demo, order flow)."""

from __future__ import annotations

from django.db.models.signals import post_save
from django.dispatch import receiver

from billing.models import Subscription


@receiver(post_save, sender=Subscription, dispatch_uid="billing_start_package_hours")
def _credit_start_package(sender, instance: Subscription, created: bool, raw: bool = False, **kwargs):
    if created and not raw:
        from billing.services import service_hours_credit_start_package

        service_hours_credit_start_package(customer=instance.customer)
