"""HTTP clients of the two remote systems: WooCommerce shops and Hogia Smart.

Clients know nothing of Django or the ORM; they take an injected
``requests.Session`` and raise the typed errors of ``integrations.errors``.
"""

from integrations.clients.base import NO_RETRY, HttpClient, RetryPolicy
from integrations.clients.hogia_smart import HogiaSmartClient, InMemoryTokenCache
from integrations.clients.woocommerce import BatchItemError, BatchResult, WooCommerceClient

__all__ = [
    "BatchItemError",
    "BatchResult",
    "HogiaSmartClient",
    "HttpClient",
    "InMemoryTokenCache",
    "NO_RETRY",
    "RetryPolicy",
    "WooCommerceClient",
]
