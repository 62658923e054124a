"""The URL (``DATABASE_URL``) of a configured database, for another process to use it."""

from __future__ import annotations

from urllib.parse import quote


def database_url(settings_dict: dict, *, name: str | None = None) -> str:
    """``settings_dict`` as Django holds it (``connection.settings_dict``); ``name``: another
    database on the same server (PostgreSQL)."""
    name = name or str(settings_dict["NAME"])
    if "sqlite" in settings_dict["ENGINE"]:
        return f"sqlite:///{name}"
    auth = quote(settings_dict.get("USER") or "", safe="")
    if settings_dict.get("PASSWORD"):
        auth += ":" + quote(settings_dict["PASSWORD"], safe="")
    host = settings_dict.get("HOST") or "localhost"
    port = settings_dict.get("PORT") or 5432
    if host.startswith("/"):  # a Unix socket folder
        return f"postgres://{auth}@/{name}?host={quote(host, safe='')}&port={port}"
    return f"postgres://{auth}@{host}:{port}/{name}"
