"""Checking WooCommerce's webhook signatures.

WooCommerce signs the exact bytes it sends: base64(HMAC-SHA256(body, secret)). The
check must run on the raw request body (never on re-serialised JSON, which would
differ in escaping: WordPress writes ``\\/`` and ``\\u00e4``) and in constant time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac


def webhook_signature(*, body: bytes, secret: str) -> str:
    return base64.b64encode(hmac.new(secret.encode("utf-8"), body, hashlib.sha256).digest()).decode()


def webhook_signature_valid(*, body: bytes, secret: str, signature: str | None) -> bool:
    if not signature or not secret:
        return False
    return hmac.compare_digest(
        webhook_signature(body=body, secret=secret).encode(), signature.strip().encode()
    )
