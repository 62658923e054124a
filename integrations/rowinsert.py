"""One model row stored in one statement with its values bound by the server: the intake's insert.

Django's PostgreSQL backend binds parameters on the client (psycopg's ``ClientCursor``): every
value is quoted into the statement's text, so a webhook's body (a few kB of bytes) is escaped
to hex in Python and parsed back by the server, and the statement is compiled from the model on
every save. ``benchmark scale --intake`` found the save to be a third of a delivery's CPU in the
web process. Here the statement is made once per model from its concrete fields, and psycopg
sends the values beside it (the extended protocol, ``bytea`` as binary): the same row, the
same column values (each field's own ``get_db_prep_save``), the same errors (an
``IntegrityError`` for a unique constraint, as Django raises it). Other databases save as
Django does.
"""

from __future__ import annotations

from django.db import connection
from django.db.models import Model

_statements: dict[type, tuple[str, list]] = {}


def _statement(model: type[Model]) -> tuple[str, list]:
    made = _statements.get(model)
    if made is None:
        meta = model._meta
        fields = [field for field in meta.concrete_fields if not field.primary_key]
        quote = connection.ops.quote_name
        columns = ", ".join(quote(field.column) for field in fields)
        holders = ", ".join(["%s"] * len(fields))
        made = _statements[model] = (
            f"INSERT INTO {quote(meta.db_table)} ({columns}) VALUES ({holders}) RETURNING {quote(meta.pk.column)}",
            fields,
        )
    return made


def row_insert(instance: Model) -> None:
    """Insert ``instance`` (a new row: its primary key is set from the database) as ``save()``
    would, without Django's signals: nothing listens to these models' saves."""
    if connection.vendor != "postgresql":
        instance.save()
        return
    import psycopg

    sql, fields = _statement(type(instance))
    values = [field.get_db_prep_save(field.pre_save(instance, True), connection) for field in fields]
    connection.ensure_connection()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(sql, values)
        instance.pk = cursor.fetchone()[0]
    instance._state.adding = False
    instance._state.db = connection.alias
