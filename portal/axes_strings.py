"""The words django-axes shows in the admin (its models and actions), for our catalogue.

django-axes (8.3) ships no Swedish translation, so the admin's login lockouts would stay
English on Swedish pages. ``makemessages`` finds these strings here and puts them in
``locale/*/LC_MESSAGES/django.po``, which Django reads before any app's own catalogue.
Never imported: only read by ``makemessages``. tests/portal/test_login_throttling.py checks
the list against the installed django-axes, so an upgrade that adds words shows up there.
"""

from django.utils.translation import gettext_noop

AXES_STRINGS = (
    gettext_noop("Locked Out"),
    gettext_noop("Form Data"),
    gettext_noop("Meta Data"),
    gettext_noop("Clean up expired attempts"),
    gettext_noop("Not set"),
    gettext_noop("Attempt Remaining"),
    gettext_noop("User Agent"),
    gettext_noop("IP Address"),
    gettext_noop("Username"),
    gettext_noop("HTTP Accept"),
    gettext_noop("Path"),
    gettext_noop("Attempt Time"),
    gettext_noop("Access lock out"),
    gettext_noop("access failure"),
    gettext_noop("access failures"),
    gettext_noop("GET Data"),
    gettext_noop("POST Data"),
    gettext_noop("Failed Logins"),
    gettext_noop("access attempt"),
    gettext_noop("access attempts"),
    gettext_noop("Access Attempt"),
    gettext_noop("Expires At"),
    gettext_noop("The time when access attempt expires and is no longer valid."),
    gettext_noop("access attempt expiration"),
    gettext_noop("access attempt expirations"),
    gettext_noop("Logout Time"),
    gettext_noop("Session key hash (sha256)"),
    gettext_noop("access log"),
    gettext_noop("access logs"),
)
