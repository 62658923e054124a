"""WooCommerce's webhook deliveries skip the middleware that serves people.

A delivery is machine to machine: no session, no language, no CSRF token (the body is signed
instead), no logged-in user, no messages, no login lockout, no page headers. Each of those
middlewares costs every request a little, and a webhook burst is thousands of requests: about
a tenth of a delivery's CPU in the web process was spent in them (``benchmark scale --intake``).

So this middleware, placed right after Django's ``SecurityMiddleware`` (the https redirect and
HSTS still apply), hands a request for the webhook address straight to its view and returns
its answer (the address is matched by its pattern, not by resolving the URL configuration:
that too was a few per cent); every other request goes down the chain as before. An exception in the view is
turned into Django's 500 answer by the handler, as for any middleware.
"""

from __future__ import annotations

import re
import uuid

from integrations.views import woocommerce_webhook

# integrations/urls.py's "woocommerce-webhook" with Django's uuid converter, matched here without
# walking the URL configuration (a test holds the two together).
WEBHOOK_PATH = re.compile(
    r"/hooks/woocommerce/(?P<token>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})/"
)


class WebhookDirectMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        match = WEBHOOK_PATH.fullmatch(request.path_info)
        if match is None:
            return self.get_response(request)
        response = woocommerce_webhook(request, token=uuid.UUID(match["token"]))
        # As CommonMiddleware would: without it gunicorn sends the answer chunked.
        response.headers["Content-Length"] = str(len(response.content))
        return response
