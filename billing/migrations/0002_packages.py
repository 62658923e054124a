"""The five packages with the seed's prices, fees, monthly order limits and features."""
from decimal import Decimal

from django.db import migrations

# code, name, rank, monthly fee, installation fee, orders/month, start-package hours,
# order status, stock, price structures, plugin, multishop, key account manager, flow 3
PACKAGES = [
    ("100", "Paket 100", 1, "295", "2200", 100, "2", False, False, False, False, False, False, False),
    ("200", "Paket 200", 2, "495", "4200", 200, "2", True, True, False, False, False, False, False),
    ("400", "Paket 400", 3, "795", "6400", 400, "3", True, True, True, False, True, False, True),
    ("800", "Paket 800", 4, "1195", "8500", 800, "4", True, True, True, True, True, False, True),
    ("premium", "Premium", 5, None, None, None, "4", True, True, True, True, True, True, True),
]


def load(apps, schema_editor):
    Package = apps.get_model("billing", "Package")
    for (code, name, rank, fee, install, limit, hours, order_status, stock, prices, plugin,
         multishop, kam, combo) in PACKAGES:
        Package.objects.update_or_create(code=code, defaults=dict(
            name=name, rank=rank,
            monthly_fee=Decimal(fee) if fee else None,
            installation_fee=Decimal(install) if install else None,
            monthly_order_limit=limit, extra_shop_fee=Decimal("295"),
            start_package_hours=Decimal(hours),
            order_status=order_status, stock=stock, price_structures=prices, plugin=plugin,
            multishop=multishop, key_account_manager=kam, combo_flow=combo, is_active=True,
        ))


def unload(apps, schema_editor):
    apps.get_model("billing", "Package").objects.filter(code__in=[p[0] for p in PACKAGES]).delete()


class Migration(migrations.Migration):
    dependencies = [("billing", "0001_initial")]
    operations = [migrations.RunPython(load, unload)]
