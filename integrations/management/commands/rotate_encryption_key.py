"""``manage.py rotate_encryption_key``: every stored secret re-encrypted with the current key.

The procedure (README, "Running in production"): set the new key as PORTAL_ENCRYPTION_KEY and
move the old one into PORTAL_ENCRYPTION_KEY_FALLBACKS on every host, restart, run this
command, then remove the fallback. ``--check`` changes nothing and fails (exit code 1) while
any value is still under another key, so a script can tell when the fallback may go.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.fernet import Fernet, InvalidToken
from django.apps import apps
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction

from integrations.fields import PREFIX, EncryptedTextField, decrypt


@dataclass
class KeyCount:
    current: int = 0  # already under PORTAL_ENCRYPTION_KEY
    older: int = 0  # under a fallback key: rewritten (or, with --check, to be rewritten)
    empty: int = 0  # blank: nothing to encrypt


def encrypted_fields() -> list[tuple[type, list[EncryptedTextField]]]:
    """Every model with an EncryptedTextField, and those fields (found, not listed by hand)."""
    found = []
    for model in apps.get_models():
        fields = [field for field in model._meta.concrete_fields if isinstance(field, EncryptedTextField)]
        if fields:
            found.append((model, fields))
    return found


def _under_current_key(stored: str) -> bool:
    if not stored.startswith(PREFIX):
        return False
    try:
        Fernet(settings.PORTAL_ENCRYPTION_KEY.encode()).decrypt(stored[len(PREFIX) :].encode("ascii"))
    except InvalidToken:
        return False
    return True


def _stored_values(model, fields) -> list[tuple]:
    """The ciphertext as stored (the ORM would decrypt it), rows locked until the transaction ends."""
    quote = connection.ops.quote_name
    columns = ", ".join(quote(field.column) for field in fields)
    sql = f"SELECT {quote(model._meta.pk.column)}, {columns} FROM {quote(model._meta.db_table)}"
    if connection.features.has_select_for_update:
        sql += " FOR UPDATE"
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchall()


def model_rotate(*, model, fields, write: bool) -> dict[str, KeyCount]:
    """Count (and with ``write`` re-encrypt) one model's secrets, in one transaction."""
    counts = {field.name: KeyCount() for field in fields}
    with transaction.atomic():
        for pk, *values in _stored_values(model, fields):
            changes = {}
            for field, stored in zip(fields, values):
                if not stored:
                    counts[field.name].empty += 1
                elif _under_current_key(stored):
                    counts[field.name].current += 1
                else:
                    try:
                        changes[field.name] = decrypt(stored)  # the field encrypts it again on save
                    except ImproperlyConfigured as exc:
                        raise CommandError(
                            f"{model._meta.label}.{field.name} of row {pk}: {exc} Nothing of "
                            f"{model._meta.label} was changed."
                        ) from exc
                    counts[field.name].older += 1
            if changes and write:
                model._default_manager.filter(pk=pk).update(**changes)
    return counts


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored secret with PORTAL_ENCRYPTION_KEY, reading the old ones with "
        "PORTAL_ENCRYPTION_KEY_FALLBACKS. --check only counts what is not yet under the current key."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--check",
            action="store_true",
            help="change nothing; exit with code 1 if any value is not yet under the current key",
        )

    def handle(self, *args, check: bool, **options):
        remaining = 0
        for model, fields in encrypted_fields():
            counts = model_rotate(model=model, fields=fields, write=not check)
            for name, count in counts.items():
                verb = "to re-encrypt" if check else "re-encrypted"
                self.stdout.write(
                    f"{model._meta.label}.{name}: {count.older} {verb}, {count.current} already "
                    f"under the current key, {count.empty} empty"
                )
                remaining += count.older
        if check and remaining:
            raise CommandError(
                f"{remaining} value(s) are not yet under the current key: run rotate_encryption_key."
            )
        if check:
            self.stdout.write("Every stored secret is under the current key.")
        else:
            self.stdout.write(
                "Done. Every stored secret is under the current key: the old key can leave "
                "PORTAL_ENCRYPTION_KEY_FALLBACKS."
            )
