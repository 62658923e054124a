"""The security headers Django 5.2 does not set itself: Content-Security-Policy and Permissions-Policy.

Both come from settings (``CONTENT_SECURITY_POLICY``, a dict of directive -> sources, and
``PERMISSIONS_POLICY``), read on every response so that a test's settings override applies.
A view that sets its own header keeps it. The other headers (nosniff, Referrer-Policy,
Cross-Origin-Opener-Policy, X-Frame-Options) are Django's own middleware's.
"""

from __future__ import annotations

from django.conf import settings


def content_security_policy(policy: dict[str, list[str]]) -> str:
    """The header's value: ``default-src 'self'; img-src 'self' data:; ...``."""
    return "; ".join(" ".join([directive, *sources]) for directive, sources in policy.items())


class SecurityHeadersMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        policy = getattr(settings, "CONTENT_SECURITY_POLICY", None)
        if policy:
            response.headers.setdefault("Content-Security-Policy", content_security_policy(policy))
        permissions = getattr(settings, "PERMISSIONS_POLICY", "")
        if permissions:
            response.headers.setdefault("Permissions-Policy", permissions)
        return response
