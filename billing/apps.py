from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = "Customers and billing"

    def ready(self) -> None:
        from billing import signals  # noqa: F401 - connects the receivers
