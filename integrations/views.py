"""The shops' webhook endpoint: thin, the intake service does the work.

The body is read here, and never more of it than ``MAX_BODY_BYTES`` and one byte: a larger
declared ``Content-Length`` is answered 413 without reading anything, and a body without one
(chunked) is read only as far as the cap. Every answer is JSON, never Django's error page.
"""

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, JsonResponse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from integrations.intake import MAX_BODY_BYTES, webhook_receive


class _Unreadable(Exception):
    """The request's body cannot be read safely; ``status`` and the message say why."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def _declared_length(request: HttpRequest) -> int | None:
    """The request's Content-Length, None when it has none."""
    value = request.META.get("CONTENT_LENGTH", "")
    if value in ("", None):
        return None
    if not (str(value).isascii() and str(value).isdigit()):
        raise _Unreadable(400, _("invalid Content-Length header"))
    return int(value)


def _body_read(request: HttpRequest, declared: int | None) -> bytes:
    """At most ``MAX_BODY_BYTES`` + 1 bytes of the body (one more tells a body over the cap)."""
    limit = MAX_BODY_BYTES + 1
    if declared is not None:
        # At most MAX_BODY_BYTES (checked by the caller), and within DATA_UPLOAD_MAX_MEMORY_SIZE
        # (Django raises RequestDataTooBig otherwise).
        return request.body
    if "chunked" not in request.META.get("HTTP_TRANSFER_ENCODING", "").lower():
        return b""  # neither a length nor chunks: the body is empty (RFC 9112, section 6.3)
    if not hasattr(request, "environ"):
        return request.read(limit)  # ASGI: the server has spooled the body already
    if request.environ.get("wsgi.input_terminated"):
        # A chunked body under gunicorn: Django reads nothing without a Content-Length, but the
        # server ends the stream at the last chunk, so reading it up to the cap is safe.
        return request.environ["wsgi.input"].read(limit)
    # A server that does not end the stream (Django's development server) would block here.
    raise _Unreadable(411, _("a Content-Length header is required"))


def _headers(meta: dict) -> dict[str, str]:
    """The request's headers by their lower-case names, as ``request.headers`` would give them
    (without building its case-insensitive mapping first: a delivery's CPU counts)."""
    headers = {
        name[5:].replace("_", "-").lower(): value for name, value in meta.items() if name.startswith("HTTP_")
    }
    for name in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if name in meta:
            headers[name.replace("_", "-").lower()] = meta[name]
    return headers


@csrf_exempt  # WooCommerce signs its deliveries with the shop's secret instead
@require_POST
def woocommerce_webhook(request: HttpRequest, token) -> JsonResponse:
    headers = _headers(request.META)
    limit = MAX_BODY_BYTES
    try:
        declared = _declared_length(request)
        if declared is not None and declared > MAX_BODY_BYTES:
            body, size = b"", declared  # not read: answered 413 (and counted) as it is
        else:
            body = _body_read(request, declared)
            size = len(body)
    except _Unreadable as exc:
        return JsonResponse({"message": f"rejected: {exc}"}, status=exc.status)
    except RequestDataTooBig:
        # DATA_UPLOAD_MAX_MEMORY_SIZE is below MAX_BODY_BYTES and the declared size: Django's
        # limit, our answer (413 like any body over the cap).
        body, size, limit = b"", declared or 0, settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    answer = webhook_receive(token=str(token), headers=headers, body=body, size=size, limit=limit)
    return JsonResponse({"message": answer.message}, status=answer.status)
