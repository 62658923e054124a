"""OAuth 1.0a one-legged signing as WooCommerce verifies it (``WC_REST_Authentication``).

WooCommerce accepts only OAuth on plain HTTP. The parameters go in the query string,
and the signature is checked against what PHP made of that query string:

- PHP parses ``status[]=a&status[]=b`` into an array, and WooCommerce signs it as
  ``status[0]=a`` and ``status[1]=b`` (``join_with_equals_sign``), so array parameters
  are signed with explicit indices, in the order sent;
- top-level keys are sorted with ``strcmp`` (bytes), keys and values are
  RFC 3986-encoded, each ``key=value`` is encoded again and the pairs are joined with
  ``%26``;
- base string: ``METHOD&rawurlencode(url without query)&<pairs>``; key:
  ``consumer_secret + "&"``; ``oauth_version`` is not sent.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from typing import Any

from integrations.clients.base import QueryPairs, rfc3986_quote

SIGNATURE_METHODS = {"HMAC-SHA256": hashlib.sha256, "HMAC-SHA1": hashlib.sha1}


def _key_path(key: str) -> tuple[str, list[str]]:
    """Split a PHP query key into its base name and bracketed sub-keys: ``a[b][]`` -> ``a``, [b, ""]."""
    start = key.find("[")
    if start <= 0 or not key.endswith("]"):
        return key, []
    base, rest = key[:start], key[start:]
    parts: list[str] = []
    while rest.startswith("["):
        end = rest.find("]")
        if end < 0:
            # PHP keeps an unclosed bracket as part of the name; so do we.
            return key, []
        parts.append(rest[1:end])
        rest = rest[end + 1 :]
    if rest:
        return key, []
    return base, parts


def _php_parse(pairs: QueryPairs) -> dict[str, Any]:
    """What PHP's ``$_GET`` holds for these pairs: nested dicts for bracketed keys, last value wins."""
    parsed: dict[str, Any] = {}
    for key, value in pairs:
        base, parts = _key_path(key)
        if not parts:
            parsed[base] = value
            continue
        node = parsed.get(base)
        if not isinstance(node, dict):
            node = parsed[base] = {}
        for depth, part in enumerate(parts):
            if part == "":
                numeric = [int(k) for k in node if k.lstrip("-").isdigit()]
                part = str(max(numeric) + 1 if numeric else 0)
            if depth == len(parts) - 1:
                node[part] = value
            else:
                child = node.get(part)
                if not isinstance(child, dict):
                    child = node[part] = {}
                node = child
    return parsed


def _joined(key: str, value: Any, out: list[str]) -> None:
    if isinstance(value, dict):
        for sub_key, sub_value in value.items():
            _joined(f"{key}%5B{sub_key}%5D", sub_value, out)
    else:
        out.append(rfc3986_quote(f"{key}={rfc3986_quote(value)}"))


def signature_base_string(method: str, url: str, params: QueryPairs) -> str:
    """The string WooCommerce signs for ``method`` on ``url`` (no query) with these query pairs."""
    parsed = _php_parse([(k, v) for k, v in params if k != "oauth_signature"])
    out: list[str] = []
    for key in sorted(parsed, key=lambda k: k.encode("utf-8")):
        _joined(rfc3986_quote(key), parsed[key], out)
    return f"{method.upper()}&{rfc3986_quote(url)}&{'%26'.join(out)}"


def signature(base_string: str, consumer_secret: str, signature_method: str = "HMAC-SHA256") -> str:
    """Base64 HMAC of the base string with ``consumer_secret + "&"`` as the key."""
    digest = SIGNATURE_METHODS[signature_method]
    mac = hmac.new(f"{consumer_secret}&".encode("utf-8"), base_string.encode("utf-8"), digest)
    return base64.b64encode(mac.digest()).decode("ascii")


def oauth1_sign(
    *,
    method: str,
    url: str,
    params: QueryPairs,
    consumer_key: str,
    consumer_secret: str,
    signature_method: str = "HMAC-SHA256",
    timestamp: int | None = None,
    nonce: str | None = None,
) -> QueryPairs:
    """Return ``params`` followed by the OAuth parameters and the signature, ready for the query string.

    ``url`` must be the request URL without its query string, built from the shop's
    ``home_url`` (scheme, host, port and path as WordPress knows them). Each call
    makes a fresh timestamp and nonce unless given (tests).
    """
    if signature_method not in SIGNATURE_METHODS:
        raise ValueError(f"unsupported OAuth signature method {signature_method!r}")
    oauth = [
        ("oauth_consumer_key", consumer_key),
        ("oauth_nonce", nonce if nonce is not None else secrets.token_hex(16)),
        ("oauth_signature_method", signature_method),
        ("oauth_timestamp", str(timestamp if timestamp is not None else int(time.time()))),
    ]
    signed = list(params) + oauth
    base = signature_base_string(method, url, signed)
    return signed + [("oauth_signature", signature(base, consumer_secret, signature_method))]
