"""Who is calling: WooCommerce's REST authentication and the controllers' permission checks.

Follows, in ``woocommerce/woocommerce`` (``plugins/woocommerce/``):
- ``includes/class-wc-rest-authentication.php``: ``authenticate`` (query-string keys, then
  HTTP Basic, both only when ``is_ssl()``; OAuth 1.0a one-legged over plain HTTP),
  ``perform_basic_authentication`` (an unknown key sets no error: the request goes on as
  anonymous), ``perform_oauth_authentication``, ``check_oauth_signature`` (the base string,
  HMAC-SHA1/SHA256 with ``consumer_secret&``), ``check_oauth_timestamp_and_nonce``
  (±15 minutes, nonces kept by timestamp), ``check_permissions`` (read / write / read_write);
- ``includes/rest-api/Controllers/Version3/class-wc-rest-crud-controller.php`` and the
  resource controllers' ``*_permissions_check``: ``woocommerce_rest_cannot_view`` & co.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from urllib.parse import unquote, unquote_plus, urlsplit

from ..http import SandboxRequest
from .common import WooError, _php_query, _rawurlencode
from .store import Store

OAUTH_WINDOW_SECONDS = 15 * 60


# -- OAuth 1.0a as WC_REST_Authentication::check_oauth_signature does it ------------------------


def oauth_base_string(method: str, url: str, params: dict) -> str:
    """The string WooCommerce signs: params sorted by key (strcmp) before encoding; nested
    (PHP array) params become ``key%5Bsub%5D=value``; every pair is encoded twice."""
    pairs: list[str] = []

    def join(items, prefix: str = "") -> None:
        for key, value in items:
            encoded_key = _rawurlencode(str(key)) if not prefix else f"{prefix}%5B{key}%5D"
            if isinstance(value, dict):
                join(((k, v) for k, v in value.items()), encoded_key)
            else:
                pairs.append(_rawurlencode(f"{encoded_key}={_rawurlencode(str(value))}"))

    join(sorted(((k, v) for k, v in params.items() if k != "oauth_signature"), key=lambda kv: kv[0]))
    return f"{method.upper()}&{_rawurlencode(url)}&{'%26'.join(pairs)}"


def oauth_signature(method: str, url: str, params: dict, consumer_secret: str, algorithm: str) -> str:
    digest = hashlib.sha256 if algorithm.upper() == "HMAC-SHA256" else hashlib.sha1
    base = oauth_base_string(method, url, params)
    return base64.b64encode(hmac.new(f"{consumer_secret}&".encode(), base.encode(), digest).digest()).decode()


def _parse_oauth_header(header: str) -> dict:
    if not header.startswith("OAuth "):
        return {}
    params = {}
    for match in re.finditer(r'(oauth_[a-z_-]*)=(:?"([^"]*)"|([^,]*))', header):
        params[match.group(1)] = unquote_plus(match.group(3) if match.group(3) else (match.group(4) or ""))
    return params


class _Auth:
    def __init__(self, key: dict | None):
        self.key = key

    @property
    def anonymous(self) -> bool:
        return self.key is None


class AuthMixin:
    """``WC_REST_Authentication`` and the controllers' permission checks."""

    @staticmethod
    def _cannot(kind: str, request: SandboxRequest) -> WooError:
        """The controllers' permission checks for a request with no authenticated user."""
        codes = {
            "list": ("woocommerce_rest_cannot_view", "Sorry, you cannot list resources."),
            "view": ("woocommerce_rest_cannot_view", "Sorry, you cannot view this resource."),
            "create": ("woocommerce_rest_cannot_create", "Sorry, you are not allowed to create resources."),
            "edit": ("woocommerce_rest_cannot_edit", "Sorry, you are not allowed to edit this resource."),
            "delete": (
                "woocommerce_rest_cannot_delete",
                "Sorry, you are not allowed to delete this resource.",
            ),
            "batch": (
                "woocommerce_rest_cannot_batch",
                "Sorry, you are not allowed to batch manipulate this resource.",
            ),
        }
        code, message = codes[kind]
        return WooError(code, message, 401)

    # -- authentication ------------------------------------------------------------------------------
    def _authenticate(self, store: Store, request: SandboxRequest) -> _Auth:
        error: WooError | None = None
        if request.scheme == "https":
            key, error = self._basic_auth(store, request)
            if key is not None:
                self._check_key_permissions(key, request.method)
                return _Auth(key)
        key, oauth_error = self._oauth(store, request)
        if oauth_error is not None:
            error = oauth_error
        if error is not None:
            raise error
        if key is not None:
            self._check_key_permissions(key, request.method)
        return _Auth(key)

    @staticmethod
    def _basic_auth(store: Store, request: SandboxRequest) -> tuple[dict | None, WooError | None]:
        consumer_key = consumer_secret = ""
        if request.arg("consumer_key") and request.arg("consumer_secret"):
            consumer_key, consumer_secret = request.arg("consumer_key"), request.arg("consumer_secret")
        header = request.headers.get("Authorization") or ""
        if not consumer_key and header[:6].lower() == "basic ":
            try:
                decoded = base64.b64decode(header[6:].strip()).decode("utf-8")
            except (ValueError, UnicodeDecodeError):
                decoded = ""
            consumer_key, _, consumer_secret = decoded.partition(":")
        if not consumer_key or not consumer_secret:
            return None, None
        record = store.keys.get(consumer_key)
        if record is None:
            # An unknown key sets no error: the request goes on as anonymous.
            return None, None
        if not hmac.compare_digest(record["consumer_secret"], consumer_secret):
            return None, WooError("woocommerce_rest_authentication_error", "Consumer secret is invalid.", 401)
        return record, None

    def _oauth(self, store: Store, request: SandboxRequest) -> tuple[dict | None, WooError | None]:
        params = _php_query(request.raw_query)
        content_type = (request.headers.get("Content-Type") or "").lower()
        if request.body and content_type.startswith("application/x-www-form-urlencoded"):
            params.update(_php_query(request.body.decode("utf-8", "replace")))
        header = (request.headers.get("Authorization") or "").strip()
        if header:
            params.update(_parse_oauth_header(header))
        names = [
            "oauth_consumer_key",
            "oauth_timestamp",
            "oauth_nonce",
            "oauth_signature",
            "oauth_signature_method",
        ]
        missing = [n for n in names if not params.get(n)]
        if len(missing) == len(names):
            return None, None
        if missing:
            word = "parameter" if len(missing) == 1 else "parameters"
            return None, WooError(
                "woocommerce_rest_authentication_missing_parameter",
                f"Missing OAuth {word} {', '.join(missing)}",
                401,
            )
        record = store.keys.get(str(params["oauth_consumer_key"]))
        if record is None:
            return None, WooError("woocommerce_rest_authentication_error", "Consumer key is invalid.", 401)
        method = params["oauth_signature_method"]
        home = urlsplit(store.settings["home_url"]).netloc if store.settings.get("home_url") else request.host
        url = f"{request.scheme}://{home}{request.path}"
        provided = unquote(str(params["oauth_signature"]).replace(" ", "+"))
        if method not in ("HMAC-SHA1", "HMAC-SHA256"):
            return None, WooError(
                "woocommerce_rest_authentication_error",
                "Invalid signature - signature method is invalid.",
                401,
            )
        expected = oauth_signature(request.method, url, params, record["consumer_secret"], method)
        if not hmac.compare_digest(expected, provided):
            return None, WooError(
                "woocommerce_rest_authentication_error",
                "Invalid signature - provided signature does not match.",
                401,
            )
        # Real time, not the store clock: clients sign with their own clock.
        now = int(time.time())
        try:
            timestamp = int(str(params["oauth_timestamp"]))
        except ValueError:
            timestamp = 0
        if timestamp < now - OAUTH_WINDOW_SECONDS or timestamp > now + OAUTH_WINDOW_SECONDS:
            return None, WooError("woocommerce_rest_authentication_error", "Invalid timestamp.", 401)
        nonces: dict = record.setdefault("nonces", {})
        nonce = str(params["oauth_nonce"])
        if nonce in nonces.values():
            return None, WooError(
                "woocommerce_rest_authentication_error", "Invalid nonce - nonce has already been used.", 401
            )
        # Keyed by timestamp, as WooCommerce keeps them.
        nonces[str(timestamp)] = nonce
        for stamp in [s for s in nonces if int(s) < now - OAUTH_WINDOW_SECONDS]:
            del nonces[stamp]
        return record, None

    @staticmethod
    def _check_key_permissions(key: dict, method: str) -> None:
        permissions = key.get("permissions", "read_write")
        if method in ("GET", "HEAD") and permissions not in ("read", "read_write"):
            raise WooError(
                "woocommerce_rest_authentication_error",
                "The API key provided does not have read permissions.",
                401,
            )
        if method in ("POST", "PUT", "PATCH", "DELETE") and permissions not in ("write", "read_write"):
            raise WooError(
                "woocommerce_rest_authentication_error",
                "The API key provided does not have write permissions.",
                401,
            )
