"""What the portal knows of each shop's catalogue: its settings, taxes and the product behind each SKU."""

from __future__ import annotations

from django.utils import timezone

from integrations.clients.woocommerce import WooCommerceClient
from integrations.mapping.articles import ShopTaxes
from integrations.models import ArticleBinding, Shop, ShopCatalog


def shop_catalog(*, shop: Shop) -> ShopCatalog:
    catalog, _ = ShopCatalog.objects.get_or_create(shop=shop)
    return catalog


def shop_taxes(*, woo: WooCommerceClient) -> ShopTaxes:
    """The shop's tax classes and rates from ``GET /taxes``.

    A failure propagates (the sync run fails and is repeated): guessing WooCommerce's
    default classes for a shop whose rates could not be read could book the wrong VAT.
    """
    return ShopTaxes.from_rates(woo.taxes())


def article_bind(shop: Shop, sku: str, *, woo_id: int, parent_id: int | None) -> ArticleBinding:
    binding, created = ArticleBinding.objects.get_or_create(
        shop=shop, sku=sku, defaults={"woo_id": woo_id, "woo_parent_id": parent_id}
    )
    if not created and (binding.woo_id != woo_id or binding.woo_parent_id != parent_id):
        binding.woo_id, binding.woo_parent_id = woo_id, parent_id
        binding.written_hash = ""  # another product now: write it once
        binding.save(update_fields=["woo_id", "woo_parent_id", "written_hash", "updated_at"])
    return binding


def binding_written(binding: ArticleBinding, *, digest: str, row_version: int) -> None:
    """Remember what was written to the product of ``binding`` and from which Hogia version."""
    # Conditional: a binding already at a newer Hogia version keeps its record.
    ArticleBinding.objects.filter(pk=binding.pk, hogia_row_version__lte=row_version).update(
        written_hash=digest, hogia_row_version=row_version, updated_at=timezone.now()
    )
