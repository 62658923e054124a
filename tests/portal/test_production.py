"""Production mode (issue 12): the settings refuse to start without their secrets, check --deploy is
clean, headers and error pages give nothing away, the encryption key rotates, every task has a
time limit below the broker's retry, and gunicorn with the production settings takes a burst of 200
signed webhook deliveries at once without a refused connection or a lost delivery."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test import Client
from django.urls import include, path

from integrations.fields import PREFIX
from integrations.models import HogiaConnection, Shop, WebhookDelivery
from integrations.sandboxes.fixtures import WOOCOMMERCE_11
from integrations.sandboxes.process import free_port
from integrations.sandboxes.woocommerce.common import wp_json
from integrations.webhooks import webhook_signature
from tests.factories import HogiaConnectionFactory, ShopFactory

ROOT = Path(__file__).resolve().parents[2]
MANAGE = ROOT / "manage.py"
# What the environment may hold that would change the settings under test.
SETTINGS_VARIABLES = (
    "PORTAL_ENV",
    "DEBUG",
    "SECRET_KEY",
    "PORTAL_ENCRYPTION_KEY",
    "PORTAL_ENCRYPTION_KEY_FALLBACKS",
    "ALLOWED_HOSTS",
    "DATABASE_URL",
    "REDIS_URL",
    "PORTAL_PUBLIC_URL",
    "CSRF_TRUSTED_ORIGINS",
    "STATIC_ROOT",
    "SECURE_HSTS_PRELOAD",
    "PORTAL_DATA_DIR",
)


def _production_env(tmp_path, **overrides) -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if k not in SETTINGS_VARIABLES}
    environment.update(
        DJANGO_SETTINGS_MODULE="portal.settings",
        PORTAL_DATA_DIR=str(tmp_path / "data"),
        PORTAL_ENV="production",
        SECRET_KEY="x7Qp-" + uuid.uuid4().hex + uuid.uuid4().hex,
        PORTAL_ENCRYPTION_KEY=Fernet.generate_key().decode(),
        ALLOWED_HOSTS="portal.example.se",
        DATABASE_URL="postgres://portal:pw@db.example.se:5432/portal",
        PORTAL_PUBLIC_URL="https://portal.example.se",
    )
    for name, value in overrides.items():
        if value is None:
            environment.pop(name, None)
        else:
            environment[name] = value
    return environment


def _django(environment, code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


# -- settings -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "missing",
    [
        ("SECRET_KEY", "PORTAL_ENCRYPTION_KEY", "ALLOWED_HOSTS", "DATABASE_URL", "PORTAL_PUBLIC_URL"),
        ("PORTAL_ENCRYPTION_KEY",),
        ("ALLOWED_HOSTS", "PORTAL_PUBLIC_URL"),
    ],
)
def test_production_refuses_to_start_naming_every_missing_variable(tmp_path, missing):
    environment = _production_env(tmp_path, **{name: None for name in missing})
    result = _django(environment, "print('started')")
    assert result.returncode != 0 and "started" not in result.stdout
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("django.core.exceptions.ImproperlyConfigured: PORTAL_ENV=production needs")
    named = last_line.split("not set: ", 1)[1].split(". ", 1)[0].split(", ")
    assert named == list(missing)  # every missing one, in one message, and no other
    assert "Fernet.generate_key()" in last_line and "secrets.token_urlsafe" in last_line
    assert not (tmp_path / "data" / "secret_key").exists()
    assert not (tmp_path / "data" / "encryption_key").exists()


def test_production_settings_are_secure_and_generate_nothing(tmp_path):
    probe = (
        "from django.conf import settings as s; import json; print(json.dumps({"
        "'debug': s.DEBUG, 'session': s.SESSION_COOKIE_SECURE, 'csrf': s.CSRF_COOKIE_SECURE, "
        "'hsts': s.SECURE_HSTS_SECONDS, 'subdomains': s.SECURE_HSTS_INCLUDE_SUBDOMAINS, "
        "'preload': s.SECURE_HSTS_PRELOAD, 'redirect': s.SECURE_SSL_REDIRECT, "
        "'exempt': s.SECURE_REDIRECT_EXEMPT, 'proxy': s.SECURE_PROXY_SSL_HEADER, "
        "'origins': s.CSRF_TRUSTED_ORIGINS, 'conn_max_age': s.DATABASES['default']['CONN_MAX_AGE'], "
        "'static': s.STORAGES['staticfiles']['BACKEND']}))"
    )
    result = _django(_production_env(tmp_path), probe)
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found == {
        "debug": False,
        "session": True,
        "csrf": True,
        "hsts": 365 * 24 * 3600,
        "subdomains": True,
        "preload": False,
        "redirect": True,
        "exempt": [r"^health/$"],
        "proxy": ["HTTP_X_FORWARDED_PROTO", "https"],
        "origins": ["https://portal.example.se"],
        "conn_max_age": 60,
        "static": "whitenoise.storage.CompressedManifestStaticFilesStorage",
    }
    assert not (tmp_path / "data" / "secret_key").exists()
    assert not (tmp_path / "data" / "encryption_key").exists()


def test_check_deploy_is_clean_in_production(tmp_path):
    result = subprocess.run(
        [sys.executable, str(MANAGE), "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=_production_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout
    assert "WARNING" not in result.stdout + result.stderr


def test_check_deploy_notices_debug_in_production(tmp_path):
    """The check above can fail: DEBUG=true with the production settings is reported."""
    result = subprocess.run(
        [sys.executable, str(MANAGE), "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=_production_env(tmp_path, DEBUG="true"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0 and "security.W018" in result.stderr + result.stdout


@pytest.mark.parametrize(("debug", "expected"), [(None, False), ("true", True)])
def test_development_debug_is_off_unless_asked_for(tmp_path, debug, expected):
    environment = _production_env(tmp_path, PORTAL_ENV=None, SECRET_KEY=None, DATABASE_URL=None, DEBUG=debug)
    result = _django(environment, "from django.conf import settings; print(settings.DEBUG)")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == str(expected)


def test_make_run_turns_debug_on_for_the_embedded_demo():
    run_target = (ROOT / "Makefile").read_text().split("\nrun:", 1)[1].split("\n\n", 1)[0]
    assert "DEBUG=$${DEBUG:-true}" in run_target and "manage.py runportal" in run_target


# -- headers and error pages --------------------------------------------------------------------


@pytest.mark.django_db
def test_every_page_carries_the_security_headers(client):
    response = client.get("/login/")
    assert response.status_code == 200
    policy = response["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "object-src 'none'" in policy and "script-src" not in policy  # scripts: default-src only
    assert "camera=()" in response["Permissions-Policy"]
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"


def _boom(request):
    raise RuntimeError("the view failed")


urlpatterns = [path("boom/", _boom), path("", include("portal.urls"))]


@pytest.mark.django_db
def test_an_unknown_page_lists_no_url_patterns(settings):
    settings.DEBUG = False
    response = Client().get("/no-such-page/")
    assert response.status_code == 404
    page = response.content.decode()
    assert "Page not found" in page
    for pattern in ("admin/", "account/", "hooks/woocommerce", "health/", "urlpatterns", "URLconf"):
        assert pattern not in page


@pytest.mark.django_db
def test_a_failing_view_shows_no_settings_or_environment(settings, monkeypatch):
    settings.DEBUG = False
    settings.ROOT_URLCONF = __name__
    monkeypatch.setenv("DATABASE_URL", "postgres://portal:hunter2-secret@db.internal/portal")
    response = Client(raise_request_exception=False).get("/boom/")
    assert response.status_code == 500
    page = response.content.decode()
    assert "Something went wrong" in page
    for secret in (
        settings.SECRET_KEY,
        settings.PORTAL_ENCRYPTION_KEY,
        "hunter2-secret",
        "the view failed",
        "RuntimeError",
        "Traceback",
        str(settings.BASE_DIR),
    ):
        assert secret not in page


# -- the encryption key rotates -----------------------------------------------------------------


def _stored(model, pk, column):
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM {model._meta.db_table} WHERE id = %s", [pk])
        return cursor.fetchone()[0]


def _under(key: str, stored: str) -> bool:
    try:
        Fernet(key.encode()).decrypt(stored[len(PREFIX) :].encode())
    except Exception:
        return False
    return True


@pytest.mark.postgres  # the rows are read with SELECT ... FOR UPDATE there
@pytest.mark.django_db
def test_secrets_written_under_key_a_are_rewritten_under_key_b_and_need_a_no_more(settings, capsys):
    key_a, key_b = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.PORTAL_ENCRYPTION_KEY, settings.PORTAL_ENCRYPTION_KEY_FALLBACKS = key_a, []
    shop = ShopFactory(webhook_secret="whsec-roterad-2026")
    hogia = HogiaConnectionFactory(client_secret="klienthemlighet-2026")
    plain = {
        "consumer_key": shop.consumer_key,
        "consumer_secret": shop.consumer_secret,
        "webhook_secret": "whsec-roterad-2026",
    }
    assert _under(key_a, _stored(Shop, shop.pk, "consumer_secret"))

    # The new key first, the old one as a fallback: everything still reads.
    settings.PORTAL_ENCRYPTION_KEY, settings.PORTAL_ENCRYPTION_KEY_FALLBACKS = key_b, [key_a]
    assert Shop.objects.get(pk=shop.pk).webhook_secret == "whsec-roterad-2026"
    with pytest.raises(CommandError, match="4 value"):
        call_command("rotate_encryption_key", "--check")
    assert "integrations.Shop.consumer_key: 1 to re-encrypt" in capsys.readouterr().out
    assert _under(key_a, _stored(Shop, shop.pk, "webhook_secret"))  # --check changed nothing

    call_command("rotate_encryption_key")
    out = capsys.readouterr().out
    assert "integrations.Shop.webhook_secret: 1 re-encrypted, 0 already under the current key" in out
    assert "integrations.HogiaConnection.client_secret: 1 re-encrypted" in out
    for column in plain:
        assert _under(key_b, _stored(Shop, shop.pk, column)) and not _under(
            key_a, _stored(Shop, shop.pk, column)
        )
    assert _under(key_b, _stored(HogiaConnection, hogia.pk, "client_secret"))
    call_command("rotate_encryption_key", "--check")  # nothing left: no error
    assert "Every stored secret is under the current key." in capsys.readouterr().out

    # The fallback removed: still readable, with the new key alone.
    settings.PORTAL_ENCRYPTION_KEY_FALLBACKS = []
    again = Shop.objects.get(pk=shop.pk)
    assert {name: getattr(again, name) for name in plain} == plain
    assert HogiaConnection.objects.get(pk=hogia.pk).client_secret == "klienthemlighet-2026"


@pytest.mark.postgres  # the rows are read with SELECT ... FOR UPDATE there
@pytest.mark.django_db
def test_a_secret_no_key_reads_stops_the_rotation_of_its_model(settings):
    settings.PORTAL_ENCRYPTION_KEY = Fernet.generate_key().decode()
    shop = ShopFactory()
    before = _stored(Shop, shop.pk, "consumer_key")
    settings.PORTAL_ENCRYPTION_KEY = Fernet.generate_key().decode()  # the old key lost
    with pytest.raises(CommandError, match="integrations.Shop.consumer_key of row"):
        call_command("rotate_encryption_key")
    assert _stored(Shop, shop.pk, "consumer_key") == before


# -- task time limits ---------------------------------------------------------------------------


def test_every_task_and_schedule_has_a_time_limit_below_the_brokers_retry(settings):
    import integrations.tasks
    import portal.tasks
    from integrations.taskqueue import time_limit
    from portal.schedules import SCHEDULES

    functions = {
        f"{module.__name__}.{name}"
        for module in (integrations.tasks, portal.tasks)
        for name, value in vars(module).items()
        if callable(value)
        and getattr(value, "__module__", "") == module.__name__
        and not name.startswith("_")
    }
    functions |= {func for func, _kind, _minutes in SCHEDULES.values()}
    assert "integrations.tasks.sync_catalog" in functions
    guard = 3  # django-q2 adds it to a task's timeout before the broker may deliver it again
    for func in functions:
        assert 0 < time_limit(func) + guard < settings.Q_CLUSTER["retry"], func


def test_a_time_limit_above_the_retry_refuses_to_start(tmp_path):
    environment = _production_env(
        tmp_path, PORTAL_ENV=None, SECRET_KEY=None, DATABASE_URL=None, CATALOG_SYNC_TIME_LIMIT="900"
    )
    result = _django(environment, "print('started')")
    assert result.returncode != 0
    assert "CATALOG_SYNC_TIME_LIMIT must stay below the task queue's retry" in result.stderr


# -- gunicorn with the production settings ------------------------------------------------------

BURST = 200


def _test_database_url() -> str:
    """DATABASE_URL naming the database this test runs on (pytest-django's test database)."""
    parts = urlsplit(os.environ["DATABASE_URL"])
    return urlunsplit(parts._replace(path="/" + connection.settings_dict["NAME"]))


def _deliveries(shop: Shop) -> list[tuple[str, bytes, dict]]:
    """Real orders of the fixture store, each with an id of its own, signed as WooCommerce signs."""
    orders = [
        json.loads(p.read_text())
        for p in sorted((WOOCOMMERCE_11 / "orders").glob("*.json"))
        if not p.name.endswith(".request.json")
    ]
    made = []
    for n in range(BURST):
        order = dict(orders[n % len(orders)], id=70_000 + n, number=str(70_000 + n))
        body = wp_json(order)
        delivery_id = uuid.uuid4().hex
        made.append(
            (
                delivery_id,
                body,
                {
                    "User-Agent": "WooCommerce/11.0.1 Hookshot (WordPress/7.0.4)",
                    "Content-Type": "application/json",
                    "X-WC-Webhook-Source": shop.home_url,
                    "X-WC-Webhook-Topic": "order.created",
                    "X-WC-Webhook-Resource": "order",
                    "X-WC-Webhook-Event": "created",
                    "X-WC-Webhook-Signature": webhook_signature(body=body, secret=shop.webhook_secret),
                    "X-WC-Webhook-ID": "1",
                    "X-WC-Webhook-Delivery-ID": delivery_id,
                    # The TLS proxy in front says the client spoke https (SECURE_PROXY_SSL_HEADER).
                    "X-Forwarded-Proto": "https",
                },
            )
        )
    return made


def _get(port: int, url: str, headers=None) -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", url, headers={"Host": "127.0.0.1", **(headers or {})})
    response = conn.getresponse()
    response.body = response.read()
    conn.close()
    return response


@pytest.fixture
def gunicorn_production(tmp_path, settings):
    """gunicorn with portal/gunicorn.conf.py and PORTAL_ENV=production on this test's database."""
    if connection.vendor != "postgresql":
        pytest.skip("runs on PostgreSQL (tests/postgres.sh), as production does")
    static_root = tmp_path / "static"
    environment = _production_env(
        tmp_path,
        DATABASE_URL=_test_database_url(),
        PORTAL_ENCRYPTION_KEY=settings.PORTAL_ENCRYPTION_KEY,  # the shop's secret is read by both
        ALLOWED_HOSTS="127.0.0.1",
        PORTAL_PUBLIC_URL="https://127.0.0.1",
        STATIC_ROOT=str(static_root),
        WEB_ACCESS_LOG="",
    )
    collected = subprocess.run(
        [sys.executable, str(MANAGE), "collectstatic", "--noinput"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert collected.returncode == 0, collected.stderr
    port = free_port()
    environment["PORTAL_BIND"] = f"127.0.0.1:{port}"
    log = tmp_path / "gunicorn.log"
    gunicorn = Path(sys.executable).with_name("gunicorn")
    with open(log, "w") as output:
        process = subprocess.Popen(
            [str(gunicorn), "-c", str(ROOT / "portal" / "gunicorn.conf.py"), "portal.wsgi"],
            cwd=ROOT,
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log.read_text()[-3000:]
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                assert time.monotonic() < deadline, log.read_text()[-3000:]
                time.sleep(0.2)
        yield port, static_root, log
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.mark.postgres
@pytest.mark.timeout(400)
@pytest.mark.django_db(transaction=True)
def test_gunicorn_in_production_takes_200_signed_deliveries_at_once_and_loses_none(gunicorn_production):
    port, static_root, log = gunicorn_production
    shop = ShopFactory(webhook_secret="whsec-burst-2026")
    made = _deliveries(shop)
    released: list[float] = []
    barrier = threading.Barrier(BURST, action=lambda: released.append(time.monotonic()))
    answers: list[int] = []
    errors: list[str] = []

    def deliver(body: bytes, headers: dict) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)  # its own connection
        barrier.wait()
        try:
            conn.request("POST", f"/hooks/woocommerce/{shop.webhook_token}/", body=body, headers=headers)
            answers.append(conn.getresponse().status)
        except OSError as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            conn.close()

    threads = [threading.Thread(target=deliver, args=(body, headers)) for _id, body, headers in made]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.monotonic() - released[0]
    print(f"{BURST} deliveries at once through gunicorn: all answered {seconds:.2f} s after the release")
    assert errors == [], errors[:5]
    assert answers == [200] * BURST, sorted(set(answers))
    stored = WebhookDelivery.objects.filter(shop=shop)
    assert stored.count() == BURST  # 0 lost
    assert stored.filter(outcome="accepted").count() == BURST
    assert sorted(stored.values_list("delivery_id", flat=True)) == sorted(d for d, _b, _h in made)

    # Static files from gunicorn itself (whitenoise), under their hashed names, cached for good.
    manifest = json.loads((static_root / "staticfiles.json").read_text())["paths"]
    static = _get(port, f"/static/{manifest['admin/css/base.css']}", {"X-Forwarded-Proto": "https"})
    assert static.status == 200 and b"body" in static.body
    assert "immutable" in static.headers["Cache-Control"]
    # /health/ answers in plain http (the load balancer's check), not redirected to https.
    health = _get(port, "/health/")
    assert health.status in (200, 503) and health.headers["Content-Type"] == "application/json"
    assert json.loads(health.body)["database"] == "ok"
    # Any other plain http request goes to https, and HSTS is sent over https.
    assert _get(port, "/login/").status == 301
    login = _get(port, "/login/", {"X-Forwarded-Proto": "https"})
    assert login.status == 200 and "includeSubDomains" in login.headers["Strict-Transport-Security"]
    assert "Traceback" not in log.read_text()
