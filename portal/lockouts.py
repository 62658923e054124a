"""Login throttling around django-axes: who the client is, when a lockout ends, the page that says so.

django-axes counts failed logins per username and client address (settings: the axes block)
and refuses a login that is locked out; these functions are its hooks (``AXES_CLIENT_IP_CALLABLE``,
``AXES_LOCKOUT_CALLABLE``) and the password reset confirm view, which axes does not know. The
password reset form, which sends e-mail, has a limit of its own (``ThrottledPasswordResetView``).
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime, timedelta

from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_client_username, get_cool_off, get_lockout_response
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth.signals import user_login_failed
from django.contrib.auth.views import PasswordResetConfirmView, PasswordResetView
from django.db.models import Max, Min
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.utils import timezone

from portal.models import PasswordResetRequest

logger = logging.getLogger(__name__)
RESET_WINDOW = timedelta(hours=1)
RESET_KEPT = timedelta(days=1)


def client_ip(request: HttpRequest) -> str | None:
    """The client's address: the connection's, or behind ``PORTAL_TRUSTED_PROXIES`` reverse proxies
    the address the outermost of them saw, counted from the right of X-Forwarded-For.

    Each proxy appends the address it was connected from, so the entries left of those are
    whatever the client sent; trusting them would let anyone pick a fresh address per attempt.
    """
    proxies = settings.PORTAL_TRUSTED_PROXIES
    if proxies:
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        forwarded = [part for part in forwarded if part]
        if len(forwarded) >= proxies:
            return forwarded[-proxies]
    return request.META.get("REMOTE_ADDR")


def lockout_ends(*, username: str | None, ip_address: str | None) -> datetime | None:
    """When the lockout of this username from this address ends: its last counted failure plus the
    cool-off (failures during the lockout are not counted, so the time shown does not move)."""
    last = AccessAttempt.objects.filter(username=username, ip_address=ip_address).aggregate(
        last=Max("attempt_time")
    )["last"]
    cool_off = get_cool_off()
    if last is None or cool_off is None:
        return None
    return last + cool_off


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials: dict | None = None
) -> HttpResponse:
    """The page a locked-out login gets (status 429): until when, and that support can unlock."""
    ends = lockout_ends(
        username=get_client_username(request, credentials),
        ip_address=getattr(request, "axes_ip_address", None),
    )
    minutes = max(1, round((ends - timezone.now()).total_seconds() / 60)) if ends else None
    return render(
        request,
        "portal/lockout.html",
        {"ends": ends, "minutes": minutes, "failure_limit": settings.AXES_FAILURE_LIMIT},
        status=settings.AXES_HTTP_RESPONSE_CODE,
    )


class ThrottledPasswordResetConfirmView(PasswordResetConfirmView):
    """Django's reset confirm view, with a wrong or expired link counted as a failed login.

    A valid link always works (it proves the mailbox) and clears the user's lockouts once the
    new password is set; invalid ones from a locked-out client get the lockout page, so the
    page cannot be used to guess links without limit.
    """

    def dispatch(self, request, *args, **kwargs):
        response = super().dispatch(request, *args, **kwargs)
        # A valid token in the link answers a redirect to the form (the token moves to the session).
        if self.validlink or response.status_code == 302:
            return response
        user = getattr(self, "user", None)
        credentials = {"username": user.get_username() if user else None}
        if AxesProxyHandler.is_allowed(request, credentials):
            user_login_failed.send(sender=type(self), credentials=credentials, request=request)
        if not AxesProxyHandler.is_allowed(request, credentials):
            return get_lockout_response(request, response, credentials)
        return response

    def form_valid(self, form):
        response = super().form_valid(form)
        AxesProxyHandler.reset_attempts(username=form.user.get_username())
        return response


class ThrottledPasswordResetView(PasswordResetView):
    """Django's reset form, with a limit on the e-mails it sends.

    Per address, ``PASSWORD_RESET_EMAILS_PER_HOUR`` e-mails; past that the form answers as
    always ("sent") and sends nothing, so that the page tells nobody which addresses exist. Per
    client address, ``PASSWORD_RESET_REQUESTS_PER_CLIENT_PER_HOUR`` requests; past that the
    form answers 429 with when to try again. Both count in the database, so every web host
    counts the same requests.
    """

    def form_valid(self, form):
        now = timezone.now()
        since = now - RESET_WINDOW
        ip_address = client_ip(self.request)
        by_client = PasswordResetRequest.objects.filter(ip_address=ip_address, requested_at__gte=since)
        if by_client.count() >= settings.PASSWORD_RESET_REQUESTS_PER_CLIENT_PER_HOUR:
            first = by_client.aggregate(first=Min("requested_at"))["first"]
            ends = first + RESET_WINDOW
            minutes = max(1, round((ends - now).total_seconds() / 60))
            return render(
                self.request, "portal/reset_throttled.html", {"ends": ends, "minutes": minutes}, status=429
            )
        digest = hashlib.sha256(form.cleaned_data["email"].strip().lower().encode()).hexdigest()
        mailed = PasswordResetRequest.objects.filter(email_digest=digest, requested_at__gte=since).count()
        PasswordResetRequest.objects.create(email_digest=digest, ip_address=ip_address, requested_at=now)
        PasswordResetRequest.objects.filter(requested_at__lt=now - RESET_KEPT).delete()
        if mailed >= settings.PASSWORD_RESET_EMAILS_PER_HOUR:
            logger.warning(
                "a password reset for one address was asked %d times within the hour: no e-mail sent",
                mailed + 1,
            )
            return HttpResponseRedirect(self.get_success_url())
        return super().form_valid(form)
