"""The portal in Swedish by default and in English on request, with complete catalogues.

``makemessages`` runs on a copy of the source tree (the repository's catalogues are
never touched) and every Swedish msgid must have its translation, none of them fuzzy.
The catalogue checks need GNU gettext (xgettext, msgmerge, msgattrib, msgfmt), as
``makemessages`` does: without it they are skipped with a notice (as the PostgreSQL run
is without PostgreSQL); ``.ci/run`` installs it.
"""

from __future__ import annotations

import gettext
import os
import shutil
import subprocess
import sys
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import django_q
import pytest
from django.urls import reverse
from django.utils import translation

from billing.money import money_text
from integrations.models import OrderEvent, OrderTransfer, RefundCredit
from portal import settings as portal_settings
from tests.factories import (
    CustomerFactory,
    ShopFactory,
    StaffFactory,
    SubscriptionFactory,
    UserFactory,
    package,
)

ROOT = Path(__file__).resolve().parents[2]
SWEDISH_PO = ROOT / "locale" / "sv" / "LC_MESSAGES" / "django.po"
SWEDISH_MO = SWEDISH_PO.with_suffix(".mo")
# As ``make messages`` runs it (Makefile).
MAKEMESSAGES = [
    "makemessages",
    "-l",
    "sv",
    "--ignore=tests",
    "--ignore=node_modules",
    "--ignore=data",
    "--ignore=staticfiles",
    "--add-location=file",
    "--no-obsolete",
]
NBSP = "\xa0"


@pytest.fixture(autouse=True)
def _english():
    """Overrides tests/conftest.py's fixture of the same name: here the portal runs as configured."""


def _gettext_tool(*args: str, **kwargs) -> subprocess.CompletedProcess:
    if shutil.which(args[0]) is None:
        pytest.skip(f"{args[0]} not found: the catalogue checks need GNU gettext (apt-get install gettext)")
    return subprocess.run(args, capture_output=True, text=True, check=True, **kwargs)


def _msgids(po_text: str) -> list[str]:
    """The msgids of a PO file's entries (with their context), as one line each."""
    entries, current = [], []
    for line in po_text.splitlines() + [""]:
        if line.startswith(("msgctxt ", "msgid ")) or (line.startswith('"') and current):
            current.append(line)
        elif current:
            entries.append(" ".join(current))
            current = []
    return [entry for entry in entries if entry != 'msgid ""']


def test_swedish_is_the_default_and_english_the_other_language():
    assert portal_settings.LANGUAGE_CODE == "sv"
    assert [code for code, _name in portal_settings.LANGUAGES] == ["sv", "en"]
    assert SWEDISH_PO.exists() and Path(portal_settings.LOCALE_PATHS[0]) == ROOT / "locale"


def test_makemessages_finds_no_string_without_a_swedish_translation(tmp_path):
    copy = tmp_path / "portal"
    shutil.copytree(
        ROOT,
        copy,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", "data", "node_modules", "staticfiles", "__pycache__", "*.mo"
        ),
    )
    _gettext_tool("xgettext", "--version")
    subprocess.run(
        [sys.executable, "manage.py", *MAKEMESSAGES],
        cwd=copy,
        check=True,
        capture_output=True,
        env={**os.environ, "PORTAL_DATA_DIR": str(tmp_path / "data")},
    )
    fresh = copy / "locale" / "sv" / "LC_MESSAGES" / "django.po"
    untranslated = _msgids(
        _gettext_tool("msgattrib", "--untranslated", "--no-obsolete", "--no-wrap", str(fresh)).stdout
    )
    fuzzy = _msgids(
        _gettext_tool("msgattrib", "--only-fuzzy", "--no-obsolete", "--no-wrap", str(fresh)).stdout
    )
    assert not untranslated, "without a Swedish translation:\n" + "\n".join(untranslated)
    assert not fuzzy, "fuzzy (check the translation, then remove the flag):\n" + "\n".join(fuzzy)


def test_the_compiled_catalogue_is_the_translations_of_today(tmp_path):
    """msgfmt checks every placeholder; the committed .mo is what the .po compiles to."""
    compiled = tmp_path / "django.mo"
    _gettext_tool("msgfmt", "--check-format", "-o", str(compiled), str(SWEDISH_PO))
    with compiled.open("rb") as fresh, SWEDISH_MO.open("rb") as committed:
        assert gettext.GNUTranslations(committed)._catalog == gettext.GNUTranslations(fresh)._catalog, (
            "locale/sv/LC_MESSAGES/django.mo is out of date: run make messages"
        )


def admin_words(package: Path) -> list[str]:
    """The words a third-party app's admin.py and models.py mark for translation."""
    words = _gettext_tool(
        "xgettext",
        "-L",
        "Python",
        "--keyword=_",
        "--keyword=gettext_lazy",
        "--from-code=UTF-8",
        "--no-wrap",
        "--omit-header",
        "-o",
        "-",
        str(package / "admin.py"),
        str(package / "models.py"),
    ).stdout
    return [entry.removeprefix("msgid ")[1:-1] for entry in _msgids(words)]


def swedish_catalogue() -> dict:
    with SWEDISH_MO.open("rb") as catalogue:
        return gettext.GNUTranslations(catalogue)._catalog


def test_the_task_queue_section_of_the_admin_is_translated_too():
    """django-q2 has no Swedish catalogue; portal/django_q_strings.py lists its words for ours."""
    translated = swedish_catalogue()
    missing = [msgid for msgid in admin_words(Path(django_q.__file__).parent) if msgid not in translated]
    assert not missing, "add to portal/django_q_strings.py and translate:\n" + "\n".join(missing)


# -- the pages --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_logins_are_swedish_by_default_and_english_once_switched(client):
    admin_login = client.get(reverse("admin:login")).content.decode()
    portal_login = client.get(reverse("login")).content.decode()
    for page in (admin_login, portal_login):
        assert "Användarnamn" in page and "Lösenord" in page and "Username" not in page
        assert 'lang="sv"' in page and ">English</button>" in page
    switched = client.post(reverse("set_language"), {"language": "en", "next": reverse("login")})
    assert switched.status_code == 302 and switched["Location"] == reverse("login")
    for url in (reverse("admin:login"), reverse("login")):
        page = client.get(url).content.decode()
        assert "Username" in page and "Password" in page and "Användarnamn" not in page
        assert ">Svenska</button>" in page


@pytest.fixture
def order_page(client):
    customer = CustomerFactory(name="Kaffe & Kakor AB")
    SubscriptionFactory(customer=customer, package=package("400"))
    shop = ShopFactory(customer=customer, name="Kafébutiken")
    user = UserFactory(username="agda")
    customer.users.add(user)
    transfer = OrderTransfer.objects.create(
        shop=shop,
        woo_order_id=41,
        order_number="41",
        sequence_id="00000000-0000-4000-8000-000000000041",
        state=OrderTransfer.State.CREDITED,
        buyer="Maria Lindqvist",
        total=Decimal("1303.90"),
        currency="SEK",
        invoice_number="7",
    )
    OrderEvent.objects.create(
        transfer=transfer,
        kind="invoiced",
        message="Faktura 7 skapad i Hogia Smart.",
        created_at=datetime(2026, 3, 5, 14, 7, 9, tzinfo=ZoneInfo("Europe/Stockholm")),
    )
    RefundCredit.objects.create(
        transfer=transfer,
        woo_refund_id=0,
        amount=Decimal("1303.90"),
        sequence_id="00000000-0000-4000-8000-000000000042",
        invoice_number="8",
    )
    client.force_login(user)
    return reverse("account-order", args=[transfer.pk])


@pytest.mark.django_db
def test_an_order_page_is_titled_order_not_ordering_with_amounts_and_dates_in_swedish_form(
    client, order_page
):
    page = client.get(order_page).content.decode()
    assert "<title>Order 41 – Kaffe &amp; Kakor AB</title>" in page and "Sortering" not in page
    assert "Order 41 (Kafébutiken)" in page and "Tidslinje" in page and "Timeline" not in page
    assert f"1{NBSP}303,90{NBSP}kr" in page and "1303.90" not in page and "2026-03-05 14:07:09" in page
    assert "Fakturerad och krediterad i sin helhet" in page and "kreditfaktura 8" in page
    english = client.get(order_page, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "<title>Order 41 – Kaffe &amp; Kakor AB</title>" in english and "Timeline" in english
    assert f"1{NBSP}303,90{NBSP}kr" in english and "Invoiced and credited in full" in english


@pytest.mark.django_db
def test_the_account_page_and_the_admin_speak_one_language(client, order_page):
    page = client.get(reverse("account")).content.decode()
    assert "Dina butiker" in page and "Servicekonto" in page and f"1{NBSP}303,90{NBSP}kr" in page
    for english in ("Your shops", "Service account", "Orders this month", "Log out"):
        assert english not in page
    client.force_login(StaffFactory(username="support"))
    admin = client.get(reverse("admin:index")).content.decode()
    assert "Integrationsportal" in admin and "Kunder och fakturering" in admin and "Uppgiftskö" in admin
    for english in ("Integration portal", "Customers and billing", "Task queue", "Failed tasks"):
        assert english not in admin
    transfers = client.get(reverse("admin:integrations_ordertransfer_changelist")).content.decode()
    assert "Orderöverföringar" in transfers and "fakturerad och krediterad i sin helhet" in transfers


# -- amounts ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, currency, text",
    [
        (Decimal("1303.9"), "SEK", f"1{NBSP}303,90{NBSP}kr"),
        (Decimal("0.005"), "SEK", f"0,01{NBSP}kr"),  # whole öre, half up
        (Decimal("-1234567.891"), "", f"-1{NBSP}234{NBSP}567,89{NBSP}kr"),
        ("99", "eur", f"99,00{NBSP}EUR"),
        (None, "SEK", ""),
    ],
)
def test_amounts_read_the_same_in_both_languages(value, currency, text):
    for language in ("sv", "en"):
        with translation.override(language):
            assert money_text(value, currency) == text
