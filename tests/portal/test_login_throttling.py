"""Login throttling (django-axes, portal/lockouts.py): five wrong passwords for one username from
one address lock that pair out for 15 minutes, on the customer login, the admin login and the
password reset links; the locked-out page says until when; support unlocks in the admin."""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape
from pathlib import Path
from urllib.parse import urlsplit

import axes
import pytest
from axes.models import AccessAttempt
from django.urls import reverse
from django.utils import timezone, translation

from portal.models import PasswordResetRequest
from tests.factories import StaffFactory, UserFactory
from tests.portal.test_translations import admin_words, swedish_catalogue

pytestmark = pytest.mark.django_db
PASSWORD = "Kanelbulle-2026"


@pytest.fixture
def agda():
    user = UserFactory(username="agda", email="agda@kaffekakor.example")
    user.set_password(PASSWORD)
    user.save()
    return user


@pytest.fixture
def support():
    user = StaffFactory(username="support")
    user.set_password(PASSWORD)
    user.save()
    return user


def _login(client, username: str, password: str, *, url: str | None = None, **extra):
    return client.post(url or reverse("login"), {"username": username, "password": password}, **extra)


def _after_cool_off():
    """Time passes: the attempts are moved back past the 15 minutes' cool-off."""
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=16))


def _logged_in_as(client) -> str | None:
    page = client.get(reverse("account"))
    return None if page.status_code == 302 else page.wsgi_request.user.username


def test_thirty_wrong_passwords_lock_the_login_and_the_page_says_until_when(client, agda):
    answers = [_login(client, "agda", f"wrong-{i}").status_code for i in range(30)]
    assert answers[:4] == [200] * 4  # the form again, with its error
    assert set(answers[4:]) == {429}  # locked from the fifth failure on
    right = _login(client, "agda", PASSWORD)
    assert right.status_code == 429
    assert _logged_in_as(client) is None
    page = unescape(right.content.decode())
    ends = timezone.localtime(AccessAttempt.objects.get().attempt_time + timedelta(minutes=15))
    assert f"Try again after {ends:%H:%M}" in page
    assert re.search(r"in about 1[45] minutes", page)
    assert "Support can unlock your login sooner" in page
    # Attempts during the lockout do not extend it: the time shown stays true.
    assert AccessAttempt.objects.get().failures_since_start == 5


def test_the_lockout_page_is_swedish_by_default(client, agda, settings):
    settings.LANGUAGE_CODE = "sv"
    for i in range(5):
        _login(client, "agda", f"wrong-{i}")
    page = unescape(_login(client, "agda", PASSWORD).content.decode())
    assert "För många misslyckade inloggningar" in page
    assert "Försök igen efter" in page and "supporten" in page


def test_another_user_from_the_same_address_and_the_same_user_elsewhere_log_in(client, agda, support):
    for i in range(6):
        _login(client, "agda", f"wrong-{i}")
    other = UserFactory(username="bertil")
    other.set_password(PASSWORD)
    other.save()
    assert _login(client, "bertil", PASSWORD).status_code == 302
    client.logout()
    assert _login(client, "agda", PASSWORD, REMOTE_ADDR="198.51.100.7").status_code == 302


def test_after_the_cool_off_the_right_password_works_and_clears_the_count(client, agda):
    for i in range(5):
        _login(client, "agda", f"wrong-{i}")
    assert _login(client, "agda", PASSWORD).status_code == 429
    _after_cool_off()
    assert _login(client, "agda", PASSWORD).status_code == 302
    assert _logged_in_as(client) == "agda"
    assert not AccessAttempt.objects.exists()  # a working login resets the count


def test_a_shorter_cool_off_from_the_settings_is_honoured(client, agda, settings):
    settings.AXES_COOLOFF_TIME = timedelta(seconds=1)
    for i in range(5):
        _login(client, "agda", f"wrong-{i}")
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(seconds=2))
    assert _login(client, "agda", PASSWORD).status_code == 302


def test_the_admin_login_is_throttled_likewise(client, support):
    url = reverse("admin:login")
    answers = [_login(client, "support", f"wrong-{i}", url=url).status_code for i in range(30)]
    assert answers[:4] == [200] * 4 and set(answers[4:]) == {429}
    right = _login(client, "support", PASSWORD, url=url)
    assert right.status_code == 429 and "Try again after" in right.content.decode()
    assert client.get(reverse("admin:index")).status_code == 302  # not logged in
    _after_cool_off()
    assert _login(client, "support", PASSWORD, url=url).status_code == 302
    assert client.get(reverse("admin:index")).status_code == 200


def test_a_forged_forwarded_address_does_not_escape_the_lockout(client, agda):
    for i in range(5):
        _login(client, "agda", f"wrong-{i}", HTTP_X_FORWARDED_FOR=f"203.0.113.{i}")
    assert _login(client, "agda", PASSWORD, HTTP_X_FORWARDED_FOR="203.0.113.99").status_code == 429


def test_behind_a_trusted_proxy_the_client_is_the_address_the_proxy_saw(client, agda, settings):
    settings.PORTAL_TRUSTED_PROXIES = 1
    for i in range(5):
        # Whatever the client puts first, the proxy appends the address it saw.
        _login(client, "agda", f"wrong-{i}", HTTP_X_FORWARDED_FOR=f"10.9.9.{i}, 203.0.113.5")
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {"203.0.113.5"}
    assert _login(client, "agda", PASSWORD, HTTP_X_FORWARDED_FOR="203.0.113.5").status_code == 429
    # Another client behind the same proxy is another address.
    assert _login(client, "agda", PASSWORD, HTTP_X_FORWARDED_FOR="203.0.113.6").status_code == 302


def test_wrong_reset_links_are_throttled_and_a_valid_one_still_unlocks(client, agda, mailoutbox):
    from django.contrib.auth.tokens import default_token_generator
    from django.utils.encoding import force_bytes
    from django.utils.http import urlsafe_base64_encode

    uid = urlsafe_base64_encode(force_bytes(agda.pk))
    answers = [
        client.get(reverse("password_reset_confirm", args=[uid, f"guess-{i}"])).status_code for i in range(6)
    ]
    assert answers[:4] == [200] * 4 and set(answers[4:]) == {429}
    assert _login(client, "agda", PASSWORD).status_code == 429  # the same pair: locked
    # The person asks for a link by e-mail: a valid link proves the mailbox and works.
    client.post(reverse("password_reset"), {"email": agda.email})
    (mail,) = mailoutbox
    link = next(line for line in mail.body.splitlines() if "/password-reset/" in line)
    assert default_token_generator.check_token(agda, urlsplit(link.strip()).path.rstrip("/").split("/")[-1])
    form = client.get(urlsplit(link.strip()).path, follow=True)
    assert form.status_code == 200 and b"new_password1" in form.content
    done = client.post(
        form.redirect_chain[-1][0], {"new_password1": "Mandelmassa-77", "new_password2": "Mandelmassa-77"}
    )
    assert done.status_code == 302
    assert _login(client, "agda", "Mandelmassa-77").status_code == 302


def test_support_unlocks_in_the_admin(client, agda, support, settings):
    settings.LANGUAGE_CODE = "sv"
    for i in range(5):
        _login(client, "agda", f"wrong-{i}")
    staff = client.__class__()
    staff.force_login(support)
    listing = staff.get(reverse("admin:axes_accessattempt_changelist"))
    assert listing.status_code == 200
    page = unescape(listing.content.decode())
    assert "Inloggningsspärrar" in page and "agda" in page and "Spärrad" in page
    index = unescape(staff.get(reverse("admin:index")).content.decode())
    assert "Inloggningsspärrar" in index
    attempt = AccessAttempt.objects.get()
    staff.post(
        reverse("admin:axes_accessattempt_changelist"),
        {"action": "delete_selected", "_selected_action": [attempt.pk], "post": "yes"},
    )
    assert not AccessAttempt.objects.exists()
    assert _login(client, "agda", PASSWORD).status_code == 302


def test_the_lockout_section_of_the_admin_is_translated_too():
    """django-axes has no Swedish catalogue; portal/axes_strings.py lists its words for ours."""
    translated = swedish_catalogue()
    with translation.override("sv"):
        missing = [
            msgid
            for msgid in admin_words(Path(axes.__file__).parent)
            # An f-string inside _() (axes' clean-up message) can never match a catalogue entry;
            # "Yes" and "No" are Django's own words, in Django's Swedish catalogue.
            if "{" not in msgid and msgid not in translated and translation.gettext(msgid) == msgid
        ]
    assert not missing, "add to portal/axes_strings.py and translate:\n" + "\n".join(missing)


def test_reset_e_mails_to_one_address_stop_after_three_an_hour_and_the_page_says_nothing(
    client, agda, mailoutbox, caplog
):
    answers = [client.post(reverse("password_reset"), {"email": agda.email.upper()}) for _ in range(6)]
    # The same answer every time ("sent"), so the form tells nobody which addresses exist...
    assert {(answer.status_code, answer.url) for answer in answers} == {(302, reverse("password_reset_done"))}
    # ... but only three e-mails went out, and the rest are in the log (without the address).
    assert len(mailoutbox) == 3
    assert "asked 4 times within the hour: no e-mail sent" in caplog.text
    assert agda.email not in caplog.text
    # An hour later the address gets e-mail again.
    PasswordResetRequest.objects.update(requested_at=timezone.now() - timedelta(minutes=61))
    client.post(reverse("password_reset"), {"email": agda.email})
    assert len(mailoutbox) == 4
    stored = PasswordResetRequest.objects.values_list("email_digest", flat=True)
    assert all(agda.email not in digest for digest in stored)


def test_one_client_asking_for_many_addresses_is_stopped_with_a_page_that_says_until_when(
    client, agda, mailoutbox, settings
):
    settings.LANGUAGE_CODE = "sv"
    answers = [
        client.post(reverse("password_reset"), {"email": f"someone-{i}@example.com"}).status_code
        for i in range(10)
    ]
    assert answers == [302] * 10
    refused = client.post(reverse("password_reset"), {"email": agda.email})
    assert refused.status_code == 429
    page = unescape(refused.content.decode())
    assert "För många begäranden om nytt lösenord" in page
    assert re.search(r"Försök igen efter kl\. \d\d:\d\d, om ungefär \d+ minuter", page)
    assert "Tillbaka till inloggningen" in page
    assert mailoutbox == []
    # Another client is not held back by this one.
    other = client.post(reverse("password_reset"), {"email": agda.email}, REMOTE_ADDR="10.1.2.3")
    assert other.status_code == 302 and len(mailoutbox) == 1
