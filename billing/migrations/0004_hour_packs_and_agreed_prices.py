"""Default hour packs, and agreed prices copied onto the subscriptions made before 0003.

Ordinary hourly rate 950 SEK (``BILLING_HOURLY_RATE``); the packs give 10, 15 and 20 %
off it: 5 h for 4 275, 10 h for 8 075, 20 h for 15 200 SEK (excl. VAT).
"""
from decimal import Decimal

from django.db import migrations

HOUR_PACKS = [("Timpaket 5 h", "5", "4275"), ("Timpaket 10 h", "10", "8075"),
              ("Timpaket 20 h", "20", "15200")]


def load(apps, schema_editor):
    HourPack = apps.get_model("billing", "HourPack")
    for name, hours, price in HOUR_PACKS:
        HourPack.objects.get_or_create(name=name, defaults=dict(hours=Decimal(hours),
                                                                price=Decimal(price)))
    Subscription = apps.get_model("billing", "Subscription")
    for subscription in Subscription.objects.select_related("package").filter(monthly_fee__isnull=True):
        package = subscription.package
        subscription.monthly_fee = package.monthly_fee
        subscription.installation_fee = package.installation_fee
        subscription.extra_shop_fee = package.extra_shop_fee
        subscription.save(update_fields=["monthly_fee", "installation_fee", "extra_shop_fee"])


def unload(apps, schema_editor):
    apps.get_model("billing", "HourPack").objects.filter(name__in=[p[0] for p in HOUR_PACKS]).delete()


class Migration(migrations.Migration):
    dependencies = [("billing", "0003_billing_usage_hours_statements")]
    operations = [migrations.RunPython(load, unload)]
