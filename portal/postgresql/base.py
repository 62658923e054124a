"""Django's PostgreSQL backend, with a health check that costs no round trip.

``CONN_HEALTH_CHECKS`` makes Django run ``SELECT 1`` before a persistent connection's first
query in each request, so that a connection the server has ended (a restart, a killed backend)
is replaced instead of failing the request. That is a round trip to the server per request: in
a webhook burst, one of the few statements a delivery costs the database
(``benchmark scale --intake``).

A connection the server has ended says so on its socket: the server sends its "terminating
connection" error and closes, or the kernel sees the peer gone; either makes the idle socket
readable. So the check here asks the socket first (a poll that does not wait), and runs Django's
``SELECT 1`` only when the socket has something to say. A socket with nothing to say is as
usable as ``SELECT 1`` would find it, short of a server that vanished without a word, which
``SELECT 1`` would only wait on.
"""

from __future__ import annotations

import select

from django.db.backends.postgresql import base


class DatabaseWrapper(base.DatabaseWrapper):
    def is_usable(self):
        connection = self.connection
        if connection is None or connection.closed or connection.broken:
            return False
        # poll, not select: a busy web process may hold descriptors past select's 1024.
        poller = select.poll()
        try:
            poller.register(connection.fileno(), select.POLLIN)
            said = poller.poll(0)
        except (OSError, ValueError):
            return False
        return not said or super().is_usable()
