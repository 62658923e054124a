"""Settings for the integration portal.

Everything comes from the environment (django-environ). With nothing set, the
portal runs on the embedded default: SQLite files and django-q2's ORM broker under
``data/``, development keys generated once and kept there. Set ``DATABASE_URL``
(PostgreSQL) and ``REDIS_URL`` to run at scale. ``PORTAL_ENV=production`` switches to the
production settings: every secret and address must be given, nothing is generated, and the
portal expects to sit behind a TLS-terminating proxy (see "Production mode" below).
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured
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


# -- production mode (issue 12) -------------------------------------------------------------
# PORTAL_ENV=production: every secret and address comes from the environment, and the portal
# refuses to start without them rather than generate keys per host (on two hosts stored
# credentials would become unreadable) or fall back to SQLite and a loopback address.
PORTAL_ENV = env.str("PORTAL_ENV", default="development")
if PORTAL_ENV not in ("development", "production"):
    raise ImproperlyConfigured(f"PORTAL_ENV is {PORTAL_ENV!r}: it must be 'development' or 'production'.")
PRODUCTION = PORTAL_ENV == "production"
PRODUCTION_REQUIRED = (
    "SECRET_KEY",
    "PORTAL_ENCRYPTION_KEY",
    "ALLOWED_HOSTS",
    "DATABASE_URL",
    "PORTAL_PUBLIC_URL",
)
if PRODUCTION:
    _missing = [name for name in PRODUCTION_REQUIRED if not env.str(name, default="").strip()]
    if _missing:
        raise ImproperlyConfigured(
            "PORTAL_ENV=production needs these environment variables, which are not set: "
            + ", ".join(_missing)
            + ". Make a SECRET_KEY with: python -c 'import secrets; print(secrets.token_urlsafe(50))'; "
            "a PORTAL_ENCRYPTION_KEY with: python -c 'from cryptography.fernet import Fernet; "
            "print(Fernet.generate_key().decode())' (the same keys on every host). ALLOWED_HOSTS is "
            "the comma-separated host names the portal answers to, DATABASE_URL e.g. "
            "postgres://user:password@host/portal, PORTAL_PUBLIC_URL the https:// address shops "
            "deliver webhooks to."
        )
# DEBUG shows settings and URL lists on error pages: off unless asked for. `make run` asks
# (DEBUG=true), so the embedded demo still gets Django's debug pages.
DEBUG = env.bool("DEBUG", default=False)
# -- end of production mode (the rest of it is at the end of this file) ----------------------

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
    # WooCommerce's webhook deliveries go straight to their view: none of the page middleware below
    # serves a machine, and a burst is thousands of requests (integrations/middleware.py).
    "integrations.middleware.WebhookDirectMiddleware",
    # Static files answered before sessions and the rest: no database, no runserver (production mode).
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Content-Security-Policy and Permissions-Policy on every response (portal/security.py).
    "portal.security.SecurityHeadersMiddleware",
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
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        # Django's backend, with a health check that asks the socket before the server
        # (portal/postgresql/base.py): no SELECT 1 per request.
        DATABASES["default"]["ENGINE"] = "portal.postgresql"
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
# /health/ answers 503 when no task cluster host's workers ran a heartbeat within this many seconds
# (each host queues one every 5 s: portal/cluster.py).
HEALTH_STALE_SECONDS = env.int("HEALTH_STALE_SECONDS", default=30)
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

# -- login throttling (django-axes) --------------------------------------------------------
# Five wrong passwords for one username from one address lock that pair out for 15 minutes
# (another user, or the same user elsewhere, is not locked); a login that works clears the count.
# Covers the customer login, the admin login and wrong password reset links (portal.lockouts).
# The locked-out page (429) says until when; support unlocks under "Login lockouts" in the admin
# by deleting the attempt (or `manage.py axes_reset_username <name>`).
INSTALLED_APPS.append("portal.apps.LoginLockoutsConfig")  # django-axes, under our name in the admin
MIDDLEWARE.append("axes.middleware.AxesMiddleware")  # last, as axes requires: turns a lockout into its page
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: refuses a locked-out login before any password check
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = 5
AXES_COOLOFF_TIME = timedelta(minutes=15)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# Attempts during a lockout do not extend it, so the time the page gives stays true.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_LOCKOUT_CALLABLE = "portal.lockouts.lockout_response"
AXES_SENSITIVE_PARAMETERS = ["username", "ip_address", "new_password1", "new_password2"]
# The client's address is the connection's unless PORTAL_TRUSTED_PROXIES says how many reverse
# proxies (each appending to X-Forwarded-For) stand in front: then the address the outermost one
# saw. Never trust X-Forwarded-For without a proxy that sets it, or every attempt could claim a
# fresh address (portal.lockouts.client_ip).
PORTAL_TRUSTED_PROXIES = env.int("PORTAL_TRUSTED_PROXIES", default=0)
AXES_CLIENT_IP_CALLABLE = "portal.lockouts.client_ip"
# Only failures are kept: a row per successful login (address and browser, kept forever) is personal
# data the throttling does not need.
AXES_DISABLE_ACCESS_LOG = True
# The password reset form sends e-mail to whoever's address is typed in: without a limit it could
# fill a customer's mailbox (portal.lockouts.ThrottledPasswordResetView). Per address the e-mails
# stop silently (the page is the same, so it tells nobody which addresses exist); per client the
# form answers 429.
PASSWORD_RESET_EMAILS_PER_HOUR = env.int("PASSWORD_RESET_EMAILS_PER_HOUR", default=3)
PASSWORD_RESET_REQUESTS_PER_CLIENT_PER_HOUR = env.int(
    "PASSWORD_RESET_REQUESTS_PER_CLIENT_PER_HOUR", default=10
)

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
# STATIC_ROOT and STORAGES: production mode, at the end of this file.

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
        "quiet_enqueued": {"()": "portal.log_filters.QuietEnqueued"},
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
        # axes logs every login at INFO (with the username); lockouts are warnings.
        "axes": {"level": "WARNING"},
        "django-q": {"filters": ["quiet_enqueued"]},
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

# -- production mode, continued (issue 12) ----------------------------------------------------
# Static files: whitenoise serves them from any web server process (gunicorn has no static
# handler; runserver serves them only with DEBUG). In production from STATIC_ROOT, filled by
# `manage.py collectstatic`, with hashed names and compressed copies; in development straight
# from the apps' folders, so that tests and `make run` need no collectstatic.
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
# Development looks files up in the apps' folders per request (no scan of every file when a
# process starts, no warning that STATIC_ROOT was never collected); whitenoise says never in production.
WHITENOISE_USE_FINDERS = not PRODUCTION
WHITENOISE_AUTOREFRESH = not PRODUCTION

# Headers on every response, development too (so the browser tests meet them). Django's
# SecurityMiddleware sets nosniff, Referrer-Policy and Cross-Origin-Opener-Policy, its
# XFrameOptionsMiddleware X-Frame-Options; portal/security.py the two Django lacks.
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# style-src allows inline styles: the portal's pages and admin templates carry <style> blocks
# and style="" attributes (templates/portal/base.html, the admin dashboard and reports, Django
# admin's change_list.html). Scripts stay 'self' only: no template has an inline script.
CONTENT_SECURITY_POLICY = {
    "default-src": ["'self'"],
    "img-src": ["'self'", "data:"],
    "style-src": ["'self'", "'unsafe-inline'"],
    "frame-ancestors": ["'none'"],
    "form-action": ["'self'"],
    "base-uri": ["'self'"],
    "object-src": ["'none'"],
}
# The portal uses none of these browser features; a script injected despite the CSP gets none either.
PERMISSIONS_POLICY = "camera=(), microphone=(), geolocation=(), payment=(), usb=()"

if PRODUCTION:
    # The portal runs behind a proxy that terminates TLS (nginx, a load balancer) and sets
    # X-Forwarded-Proto; gunicorn itself speaks plain HTTP on a private address. The proxy
    # must overwrite the header a client sends, or a client could claim https.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    # The load balancer's and the monitor's health checks call the web process directly, in http.
    SECURE_REDIRECT_EXEMPT = [r"^health/$"]
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=365 * 24 * 3600)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
    # Preloading binds the domain (and its subdomains) to https in browsers for months and is
    # slow to undo: the operator's decision, so off unless SECURE_HSTS_PRELOAD=true, and
    # check --deploy's reminder about it (W021) is silenced.
    SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
    if not SECURE_HSTS_PRELOAD:
        SILENCED_SYSTEM_CHECKS = ["security.W021"]
    # The login form posts to the public address; behind the proxy Django must trust it.
    if not CSRF_TRUSTED_ORIGINS:
        from urllib.parse import urlsplit

        _public = urlsplit(PORTAL_PUBLIC_URL)
        CSRF_TRUSTED_ORIGINS = [f"{_public.scheme}://{_public.netloc}"]

# Every task's time limit below the broker's retry (+ django-q2's 3 s guard): otherwise the
# broker hands a second copy of a task still running to another worker.
for _name in ("ORDER_TRANSFER_TIME_LIMIT", "ORDER_POLL_TIME_LIMIT", "CATALOG_SYNC_TIME_LIMIT"):
    if globals()[_name] + 3 >= Q_CLUSTER["retry"]:
        raise ImproperlyConfigured(
            f"{_name} must stay below the task queue's retry ({Q_CLUSTER['retry']} s)."
        )
# -- end of production mode ------------------------------------------------------------------


# Webhook deliveries that are not correctly signed (unsigned, a wrong signature, too large, the
# ping) are kept for support only up to this many per shop and hour, each body cut to
# WEBHOOK_REJECTED_BODY_KEEP_BYTES; past that they are only counted (integrations.intake), so
# anyone who knows a shop's webhook address cannot fill the database. Signed ones are never capped.
WEBHOOK_REJECTED_KEEP_PER_HOUR = env.int("WEBHOOK_REJECTED_KEEP_PER_HOUR", default=50)
WEBHOOK_REJECTED_BODY_KEEP_BYTES = env.int("WEBHOOK_REJECTED_BODY_KEEP_BYTES", default=64 * 1024)
# Django's error page and error e-mails: every frame's variables cleansed like settings, so a bug
# deep in a client never shows a secret (portal/error_reports.py).
DEFAULT_EXCEPTION_REPORTER_FILTER = "portal.error_reports.SecretsHiddenFilter"
