"""The PostgreSQL backend's health check (portal/postgresql/base.py): an idle connection is found
usable without a round trip to the server, and one the server has ended is found unusable and
replaced before the request's first query fails on it."""

from __future__ import annotations

import time

import psycopg
import pytest
from django.db import connection
from django.db.backends.postgresql import base as django_postgresql

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]


@pytest.fixture(autouse=True)
def _postgresql_only():
    if connection.vendor != "postgresql":
        pytest.skip("the PostgreSQL run of make test (tests/postgres.sh)")


def _server_asked(monkeypatch) -> list[int]:
    """Counts the ``SELECT 1`` Django's own check would send."""
    asked: list[int] = []
    original = django_postgresql.DatabaseWrapper.is_usable

    def is_usable(self):
        asked.append(1)
        return original(self)

    monkeypatch.setattr(django_postgresql.DatabaseWrapper, "is_usable", is_usable)
    return asked


def _backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def test_an_idle_connection_is_usable_without_asking_the_server(monkeypatch):
    assert connection.settings_dict["ENGINE"] == "portal.postgresql"
    assert connection.settings_dict["CONN_HEALTH_CHECKS"]
    _backend_pid()
    asked = _server_asked(monkeypatch)
    assert connection.is_usable()
    assert asked == []


def test_a_connection_the_server_ended_is_replaced_before_the_next_query():
    ended = _backend_pid()
    with psycopg.connect(**connection.get_connection_params(), autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [ended])
    time.sleep(0.2)  # the server's notice and the close reach the socket
    assert not connection.is_usable()
    # What Django does before a request's first query: closed, then opened afresh.
    connection.health_check_done = False
    connection.close_if_health_check_failed()
    assert connection.connection is None
    assert _backend_pid() != ended
