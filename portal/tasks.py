"""Tasks of the portal layer itself."""

from __future__ import annotations

from django.utils import timezone


def heartbeat() -> str:
    """Proves that the task cluster runs: its result row is what the health check reads."""
    return timezone.now().isoformat()
