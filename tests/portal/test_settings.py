"""Settings come from the environment: the embedded default, or PostgreSQL and Redis."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROBE = (
    "import django, json; django.setup(); from django.conf import settings as s; "
    "print(json.dumps({'engine': s.DATABASES['default']['ENGINE'], "
    "'name': s.DATABASES['default']['NAME'], 'host': s.DATABASES['default'].get('HOST'), "
    "'redis': s.Q_CLUSTER.get('redis'), 'orm': s.Q_CLUSTER.get('orm'), "
    "'timeout': s.Q_CLUSTER['timeout'], 'retry': s.Q_CLUSTER['retry'], "
    "'mode': s.DATABASES['default'].get('OPTIONS', {}).get('transaction_mode')}))"
)


def _settings(tmp_path, **env):
    environment = {
        k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "PORTAL_DATA_DIR")
    }
    environment.update(DJANGO_SETTINGS_MODULE="portal.settings", PORTAL_DATA_DIR=str(tmp_path), **env)
    out = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=environment, check=True, capture_output=True, text=True
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_the_embedded_default_is_sqlite_in_the_data_folder_and_the_orm_broker(tmp_path):
    found = _settings(tmp_path)
    assert found["engine"] == "portal.sqlite"  # Django's SQLite backend, writers queued fairly
    assert found["name"] == str(tmp_path / "portal.sqlite3")
    assert found["mode"] == "IMMEDIATE"
    assert (found["orm"], found["redis"]) == ("default", None)
    assert found["retry"] > found["timeout"] + 3  # never a second copy of a running task
    assert (tmp_path / "secret_key").exists() and (tmp_path / "encryption_key").exists()


def test_database_url_and_redis_url_are_honoured(tmp_path):
    found = _settings(
        tmp_path,
        DATABASE_URL="postgres://portal:pw@db.internal:5432/portal",
        REDIS_URL="redis://cache.internal:6379/0",
    )
    assert found["engine"] == "portal.postgresql"
    assert (found["name"], found["host"]) == ("portal", "db.internal")
    assert found["redis"] == "redis://cache.internal:6379/0" and found["orm"] is None
