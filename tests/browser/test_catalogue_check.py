"""The Swedish pages' check against the catalogue: what counts as an English leftover."""

from tests.browser import catalogue
from tests.browser.catalogue import SwedishCatalogue, po_translations

PO = r"""
# Swedish translation of the portal.
msgid ""
msgstr ""
"Content-Type: text/plain; charset=UTF-8\n"

#: templates/portal/account.html:20
msgid "Your shops"
msgstr "Dina butiker"

msgid ""
"Prices and stock are not written to this shop until the initial sync's "
"differences are accepted."
msgstr ""
"Priser och lager skrivs inte till butiken förrän skillnaderna från den "
"första synkroniseringen har godkänts."

#, python-format
msgid "Products last updated %(when)s"
msgstr "Produkterna uppdaterades senast %(when)s"

#, fuzzy
msgid "Waiting"
msgstr "Väntar"

msgid "Not translated yet"
msgstr ""

msgid "Status"
msgstr "Status"

msgid "SKU"
msgstr "SKU"

msgid "article number"
msgstr "artikelnummer (SKU)"

msgid "Order"
msgid_plural "Orders"
msgstr[0] "Order"
msgstr[1] "Ordrar"

msgid "Hours"
msgstr "Timmar"

#~ msgid "Old string"
#~ msgstr "Gammal text"
"""


def test_only_translated_entries_that_are_not_fuzzy_are_read():
    translations = po_translations(PO)
    assert translations["Your shops"] == "Dina butiker"
    assert translations[
        "Prices and stock are not written to this shop until the initial sync's differences are accepted."
    ].startswith("Priser och lager skrivs inte")
    assert "Waiting" not in translations and "Not translated yet" not in translations
    assert "" not in translations and "Old string" not in translations
    assert translations["Order"] == "Order"


def test_english_source_strings_on_a_swedish_page_are_found_placeholders_and_line_breaks_included():
    check = SwedishCatalogue(po_translations(PO))
    page = """Dina butiker
    Prices and stock are not written to this shop
    until the initial sync's differences are accepted.
    Products last updated 2 december 14:05"""
    assert check.english_leftovers(page) == [
        "Prices and stock are not written to this shop until the initial sync's differences are accepted.",
        "Products last updated %(when)s",
    ]


def test_strings_alike_in_both_languages_words_inside_words_and_untranslated_ones_pass():
    check = SwedishCatalogue(po_translations(PO))
    # "Status", "Order" are Swedish too; "SKU" appears inside a Swedish translation; "Hours"
    # only inside another word; "Waiting" has no Swedish yet (fuzzy).
    page = "Status: Order 41 · Artikelnummer (SKU) · Officehoursen · Waiting · Dina butiker"
    assert check.english_leftovers(page) == []


def test_without_a_catalogue_every_page_passes(settings, tmp_path):
    settings.LOCALE_PATHS = [tmp_path]
    catalogue.swedish_catalogue.cache_clear()
    try:
        assert not catalogue.swedish_catalogue()
        assert catalogue.swedish_catalogue().english_leftovers("Your shops, Orders, Log out") == []
    finally:
        catalogue.swedish_catalogue.cache_clear()
