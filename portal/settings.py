"""Settings for the integration portal.

Everything comes from the environment (django-environ). With nothing set, the
portal runs on the embedded default: SQLite files and django-q2's ORM broker under
``data/``, development keys generated once and kept there. Set ``DATABASE_URL``
(PostgreSQL) and ``REDIS_URL`` to run at scale.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import environ
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)  # optional; absent on a fresh machine

DATA_DIR = Path(env.str("PORTAL_DATA_DIR", default=str(BASE_DIR / "data")))
DATA_DIR.mkdir(parents=True, exist_ok=True)
# The embedded database (sessions, password hashes, orders) and the generated keys live here:
# readable by this user only, whatever the umask made of the folder and the files in it.
if DATA_DIR.owner() == __import__("getpass").getuser():
    DATA_DIR.chmod(0o700)


def _generated_key(name: str, make) -> str:
    """A development key made once and kept in the data folder (never in git)."""
    path = DATA_DIR / name
    if not path.exists():
        path.write_text(make())
        path.chmod(0o600)
    return path.read_text().strip()


DEBUG = env.bool("DEBUG", default=True)
SECRET_KEY = env.str("SECRET_KEY", default="") or _generated_key(
    "secret_key", lambda: secrets.token_urlsafe(50)
)
# Fernet key (urlsafe base64 of 32 bytes) for the encrypted secret fields.
# Losing it makes stored shop and Hogia Smart credentials unreadable.
PORTAL_ENCRYPTION_KEY = env.str("PORTAL_ENCRYPTION_KEY", default="") or _generated_key(
    "encryption_key", lambda: __import__("base64").urlsafe_b64encode(secrets.token_bytes(32)).decode()
)

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_q",
    "billing",
    "integrations",
    "portal",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# -- database ------------------------------------------------------------------------------
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{DATA_DIR / 'portal.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Django's backend, with each process's writers queued fairly (portal/sqlite/base.py).
    DATABASES["default"]["ENGINE"] = "portal.sqlite"
    # IMMEDIATE transactions and WAL: a deferred read-then-write transaction fails at once
    # with "database is locked" while the django-q2 cluster writes (reliability.md).
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=20000;",
    }
    # Tests use a file too, not Django's shared in-memory database: its table locks ignore the
    # busy timeout, so concurrent workers would meet errors no deployment has.
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / "test_portal.sqlite3")}
else:
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# Persistent connections (the health checks above only act on them). Without them every web
# request, and every task queued on django-q2's ORM broker (its enqueue calls
# close_old_connections()), opens a connection and closes it again: the orders benchmark
# measured a webhook's intake at twice the cost. ``?conn_max_age=`` in DATABASE_URL wins.
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# -- task queue (django-q2) ----------------------------------------------------------------
# Our own tables own attempts and back-off; django-q2 only delivers wake-ups. So a failed
# task is acknowledged instead of redelivered, and `retry` is far above `timeout` (+3 s
# guard, + queue wait) so that the broker never starts a second copy of a running task.
REDIS_URL = env.str("REDIS_URL", default="")
Q_CLUSTER = {
    "name": "portal",
    "workers": env.int("Q_WORKERS", default=2),
    "queue_limit": env.int("Q_WORKERS", default=2),
    "bulk": 1,
    "timeout": 120,
    "retry": 600,
    "ack_failures": True,
    "max_attempts": 1,
    "catch_up": False,
    "save_limit": 500,
    "save_limit_per": "func",
    "recycle": 200,
    "max_rss": 300_000,
    "label": _("Task queue"),  # the admin's name for django-q2's section
}
# Each kind of task has its own time limit (integrations/taskqueue.py), all below `retry`.
ORDER_TRANSFER_TIME_LIMIT = env.int("ORDER_TRANSFER_TIME_LIMIT", default=150)
ORDER_POLL_TIME_LIMIT = env.int("ORDER_POLL_TIME_LIMIT", default=300)
CATALOG_SYNC_TIME_LIMIT = env.int("CATALOG_SYNC_TIME_LIMIT", default=480)
# A catalogue or initial sync stops starting new work after this long and queues its next
# chunk: well inside its time limit, even when one chunk of writes waits on Hogia's rate limit.
CATALOG_CHUNK_SECONDS = env.int("CATALOG_CHUNK_SECONDS", default=120)
# Retries of an order while Hogia Smart is unavailable: full jitter, doubling from base to cap.
ORDER_RETRY_BASE_SECONDS = env.float("ORDER_RETRY_BASE_SECONDS", default=30)
ORDER_RETRY_CAP_SECONDS = env.float("ORDER_RETRY_CAP_SECONDS", default=3600)
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    # A look at the queue every 0.25 s (a read): an order waits for a worker a quarter of a
    # second, not a second.
    Q_CLUSTER.update({"orm": "default", "poll": 0.25})

# -- auth, i18n, static --------------------------------------------------------------------
# "password" and "12345678" are refused: Django's list of 20,000 common passwords, and all digits.
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"

# Swedish first; English on request (the switch in the page headers, django.views.i18n.set_language).
LANGUAGE_CODE = "sv"
LANGUAGES = [("sv", "Svenska"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
# Dates, times and amounts in Swedish form in both languages (portal/formats/).
FORMAT_MODULE_PATH = ["portal.formats"]
TIME_ZONE = "Europe/Stockholm"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"

EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="portal@localhost")

# -- the sandboxes (built-in stand-ins for WooCommerce and Hogia Smart) ---------------------
PORTAL_PORT = env.int("PORTAL_PORT", default=8000)
WOO_SANDBOX_PORT = env.int("WOO_SANDBOX_PORT", default=8101)
HOGIA_SANDBOX_PORT = env.int("HOGIA_SANDBOX_PORT", default=8102)

# -- remote calls --------------------------------------------------------------------------
REMOTE_CONNECT_TIMEOUT = env.float("REMOTE_CONNECT_TIMEOUT", default=5.0)
REMOTE_READ_TIMEOUT = env.float("REMOTE_READ_TIMEOUT", default=30.0)

# "plain" for a person at a console, "json" (one object per line) for a log collector in production.
LOG_FORMAT = env.str("LOG_FORMAT", default="plain")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        # Both write the flows' context (shop, order, transfer …: integrations/logcontext.py).
        "plain": {"()": "integrations.logcontext.PlainFormatter"},
        "json": {"()": "integrations.logcontext.JsonFormatter"},
        # Django's own, restated: configuring django.server replaces its handler.
        "django.server": {
            "()": "django.utils.log.ServerFormatter",
            "format": "[{server_time}] {message}",
            "style": "{",
        },
    },
    "filters": {
        "quiet_assets": {"()": "portal.log_filters.QuietAssetRequests", "static_url": STATIC_URL},
        "log_context": {"()": "integrations.logcontext.LogContextFilter"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["log_context"]},
        "django.server": {"class": "logging.StreamHandler", "formatter": "django.server"},
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # urllib3 logs whole request lines at DEBUG, OAuth signatures and keys included.
        "urllib3": {"level": "WARNING"},
        "django.server": {
            "handlers": ["django.server"],
            "filters": ["quiet_assets"],
            "level": "INFO",
            "propagate": False,
        },
    },
}

# Older encryption keys, still accepted for reading while secrets are re-encrypted.
PORTAL_ENCRYPTION_KEY_FALLBACKS = env.list("PORTAL_ENCRYPTION_KEY_FALLBACKS", default=[])

# The address shops deliver webhooks to (what WooCommerce can reach).
PORTAL_PUBLIC_URL = env.str("PORTAL_PUBLIC_URL", default=f"http://127.0.0.1:{PORTAL_PORT}")
BILLING_SUPPORT_EMAILS = env.list("BILLING_SUPPORT_EMAILS", default=[])
# Webhook bodies are orders; a large order is a few hundred kB, never this.
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
