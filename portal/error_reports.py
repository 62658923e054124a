"""What Django's error page and error e-mails may show of a failed request.

Django hides settings and request headers by name, and a frame's local variables only in
functions marked ``sensitive_variables``. A bug in a client or in requests shows every frame's
locals: the token request's form (client secret), the headers (bearer token), the body with
the OAuth query. Here every frame's variables are cleansed the way Django cleanses settings (by
name, in nested dicts and in query pairs too), and credentials in text are replaced.
"""

from __future__ import annotations

import re

from django.utils.regex_helper import _lazy_re_compile
from django.views.debug import SafeExceptionReporterFilter

from integrations.clients.base import redact_text


class SecretsHiddenFilter(SafeExceptionReporterFilter):
    # Django's names, and the environment's connection strings (a DATABASE_URL or REDIS_URL
    # holds its password), which Django shows among the request's META under runserver.
    hidden_settings = _lazy_re_compile(
        "API|AUTH|TOKEN|KEY|SECRET|PASS|SIGNATURE|HTTP_COOKIE|DATABASE_URL|REDIS_URL|DSN", flags=re.I
    )

    def get_traceback_frame_variables(self, request, tb_frame):
        return [
            (name, self._frame_value_cleanse(name, value))
            for name, value in super().get_traceback_frame_variables(request, tb_frame)
        ]

    def _frame_value_cleanse(self, name, value, depth: int = 0):
        """``value`` without credentials: hidden by its name or its key (a dict's, or a query
        pair's ``(name, value)``), and replaced in text."""
        if isinstance(name, str) and self.hidden_settings.search(name):
            return self.cleansed_substitute
        if depth > 20:
            return value
        if isinstance(value, dict):
            return {key: self._frame_value_cleanse(key, item, depth + 1) for key, item in value.items()}
        if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str):
            return (value[0], self._frame_value_cleanse(value[0], value[1], depth + 1))
        if isinstance(value, (list, tuple)):
            cleansed = [self._frame_value_cleanse(name, item, depth + 1) for item in value]
            return cleansed if isinstance(value, list) else tuple(cleansed)
        if isinstance(value, str):
            return redact_text(value)
        if isinstance(value, bytes):
            return redact_text(value.decode("utf-8", "replace"))
        return value
