"""WooCommerce's webhook deliveries skip the middleware that serves people.

A delivery is machine to machine: no session, no language, no CSRF token (the body is signed
instead), no logged-in user, no messages, no login lockout, no page headers. Each of those
middlewares costs every request a little, and a webhook burst is thousands of requests: about
a tenth of a delivery's CPU in the web process was spent in them (``benchmark scale --intake``).

So this middleware, placed right after Django's ``SecurityMiddleware`` (the https redirect and
HSTS still apply), hands a request for the webhook address straight to its view and returns
its answer; every other request goes down the chain as before. An exception in the view is
turned into Django's 500 answer by the handler, as for any middleware.
"""

from __future__ import annotations

from django.urls import Resolver404, resolve

from integrations.views import woocommerce_webhook

WEBHOOK_PREFIX = "/hooks/"


class WebhookDirectMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path_info.startswith(WEBHOOK_PREFIX):
            try:
                match = resolve(request.path_info)
            except Resolver404:
                match = None
            if match is not None and match.func is woocommerce_webhook:
                request.resolver_match = match
                response = woocommerce_webhook(request, *match.args, **match.kwargs)
                # As CommonMiddleware would: without it gunicorn sends the answer chunked.
                response.headers["Content-Length"] = str(len(response.content))
                return response
        return self.get_response(request)
