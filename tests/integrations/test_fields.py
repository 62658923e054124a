"""Secrets are stored encrypted and shown only as their last four characters."""

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured
from django.db import connection

from integrations.fields import _fernet, last_four
from integrations.models import Shop
from tests.factories import ShopFactory

pytestmark = pytest.mark.django_db


def _raw(shop_id: int, column: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM integrations_shop WHERE id = %s", [shop_id])
        return cursor.fetchone()[0]


def test_the_database_holds_ciphertext_and_python_the_plaintext():
    shop = ShopFactory(consumer_secret="cs_verysecret_abcd")
    stored = _raw(shop.pk, "consumer_secret")
    assert stored.startswith("fernet:") and "verysecret" not in stored
    assert Shop.objects.get(pk=shop.pk).consumer_secret == "cs_verysecret_abcd"


def test_last_four():
    assert last_four("cs_verysecret_abcd") == "…abcd"
    assert last_four("abc") == "…•••"
    assert last_four("") == ""


def test_a_rotated_key_still_reads_old_secrets(settings):
    shop = ShopFactory(consumer_secret="cs_old_key_1234")
    old_key = settings.PORTAL_ENCRYPTION_KEY
    settings.PORTAL_ENCRYPTION_KEY = Fernet.generate_key().decode()
    _fernet.cache_clear()
    with pytest.raises(ImproperlyConfigured, match="PORTAL_ENCRYPTION_KEY_FALLBACKS"):
        Shop.objects.get(pk=shop.pk)
    settings.PORTAL_ENCRYPTION_KEY_FALLBACKS = [old_key]
    assert Shop.objects.get(pk=shop.pk).consumer_secret == "cs_old_key_1234"
    _fernet.cache_clear()
