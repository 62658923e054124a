from axes.apps import AppConfig as AxesAppConfig
from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = _("Portal")


class LoginLockoutsConfig(AxesAppConfig):
    """django-axes (failed logins and lockouts) under a name support recognises in the admin."""

    verbose_name = _("Login lockouts")
