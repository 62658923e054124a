"""Typed errors shared by the clients of the remote systems.

Callers decide what to do by the type: retry later (``RemoteUnavailable``,
``RateLimited``), stop and ask a person (``Unauthorised``, ``RemoteRejected``).
A client never turns a failure into an empty answer.
"""

from __future__ import annotations


class RemoteError(Exception):
    """A call to a remote system did not give the answer asked for."""

    def __init__(
        self,
        message: str,
        *,
        system: str = "",
        status: int | None = None,
        code: str = "",
        body: object = None,
    ):
        super().__init__(message)
        self.message = message
        self.system = system
        self.status = status
        self.code = code
        self.body = body

    def __str__(self) -> str:
        parts = [self.system] if self.system else []
        if self.status:
            parts.append(f"HTTP {self.status}")
        if self.code:
            parts.append(self.code)
        prefix = " ".join(parts)
        return f"{prefix}: {self.message}" if prefix else self.message


class RemoteUnavailable(RemoteError):
    """Timeout, refused or dropped connection, or a 5xx: worth retrying later."""


class RateLimited(RemoteUnavailable):
    """HTTP 429 (or 503 with Retry-After): wait ``retry_after`` seconds before the next call."""

    def __init__(self, message: str, *, retry_after: float, **kwargs):
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class Unauthorised(RemoteError):
    """401/403: the credentials are wrong, expired or lack a permission. Retrying will not help."""


class RemoteRejected(RemoteError):
    """The remote system refused the input (4xx validation or business rule).

    ``errors`` holds what the remote said, field by field or as a list of messages,
    so that support can read it.
    """

    def __init__(self, message: str, *, errors: object = None, **kwargs):
        super().__init__(message, **kwargs)
        self.errors = errors


class NotFound(RemoteRejected):
    """404: the record (or the route) does not exist on the remote."""
