"""The demo's credentials: shared by the sandboxes (which accept them) and the portal's
demo customer (which uses them). Sandbox-only values; never valid anywhere else."""

WOO_STORES = [
    # (path prefix, name, consumer key, consumer secret, Hogia result unit)
    (
        "",
        "Butik 1",
        "ck_demo_butik1_0000000000000000000000000001",
        "cs_demo_butik1_0000000000000000000000000001",
        "1",
    ),
    (
        "/butik2",
        "Butik 2",
        "ck_demo_butik2_0000000000000000000000000002",
        "cs_demo_butik2_0000000000000000000000000002",
        "2",
    ),
]

# How each demo store enters its prices (WooCommerce → Settings → Tax → "Prices entered with tax"):
# one of each, as the fixtures' store A (incl. VAT, the usual Swedish shop) and store B (excl. VAT).
WOO_PRICES_INCLUDE_TAX = {"": True, "/butik2": False}

HOGIA_ORGANIZATION_ID = "11111111-2222-4333-8444-555555555555"
HOGIA_ORGANIZATION_NAME = "Demo Handel AB"
HOGIA_ORGANIZATION_NUMBER = "556677-8899"
HOGIA_CLIENT_ID = "demo-hogia-client"
HOGIA_CLIENT_SECRET = "demo-hogia-secret-0000000000000001"
