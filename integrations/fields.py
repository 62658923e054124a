"""A text field stored encrypted (Fernet: AES-128-CBC + HMAC-SHA256).

API keys and webhook secrets are encrypted with ``PORTAL_ENCRYPTION_KEY`` (and
readable with the keys in ``PORTAL_ENCRYPTION_KEY_FALLBACKS`` while a key is being
rotated), so that a copy of the database alone gives away no credential.
"""

from __future__ import annotations

from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models

PREFIX = "fernet:"


@lru_cache(maxsize=4)
def _fernet(primary: str, fallbacks: tuple[str, ...]) -> MultiFernet:
    try:
        return MultiFernet([Fernet(key.encode()) for key in (primary, *fallbacks)])
    except ValueError as exc:
        raise ImproperlyConfigured(
            "PORTAL_ENCRYPTION_KEY must be 32 url-safe base64-encoded bytes "
            "(make one with: python -c 'from cryptography.fernet import Fernet; "
            "print(Fernet.generate_key().decode())')"
        ) from exc


def fernet() -> MultiFernet:
    fallbacks = tuple(getattr(settings, "PORTAL_ENCRYPTION_KEY_FALLBACKS", ()) or ())
    return _fernet(settings.PORTAL_ENCRYPTION_KEY, fallbacks)


def encrypt(value: str) -> str:
    return PREFIX + fernet().encrypt(value.encode("utf-8")).decode("ascii")


def decrypt(stored: str) -> str:
    if not stored.startswith(PREFIX):
        raise ImproperlyConfigured("An encrypted field holds a value that is not encrypted.")
    try:
        return fernet().decrypt(stored[len(PREFIX) :].encode("ascii")).decode("utf-8")
    except InvalidToken as exc:
        raise ImproperlyConfigured(
            "A stored secret cannot be decrypted: PORTAL_ENCRYPTION_KEY is not the key it "
            "was encrypted with (add the old key to PORTAL_ENCRYPTION_KEY_FALLBACKS)."
        ) from exc


def last_four(value: str) -> str:
    """How a secret is shown to people: only its last four characters."""
    if not value:
        return ""
    return "…" + value[-4:] if len(value) > 4 else "…" + "•" * len(value)


class EncryptedTextField(models.TextField):
    """Holds a plaintext ``str`` in Python and Fernet ciphertext in the database."""

    def from_db_value(self, value, expression, connection):
        if value is None or value == "":
            return value
        return decrypt(value)

    def to_python(self, value):
        return value

    def get_prep_value(self, value):
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        return encrypt(value)
