"""The Swedish catalogue as the browser tests read it: which English source strings must not
be seen on a Swedish page.

A tiny reader of gettext's .po format instead of a dependency: the tests need only each
entry's msgid, its first msgstr and whether it is fuzzy (gettext does not use fuzzy ones).
"""

from __future__ import annotations

import ast
import html
import re
from functools import lru_cache
from pathlib import Path

from django.conf import settings

# %(name)s, %s, %d and {name}: what blocktrans, format strings and str.format leave in a msgid.
PLACEHOLDER = re.compile(r"%\([^)]+\)[sdfr]|%[sdfr]|\{[^{}]*\}")
TAG = re.compile(r"<[^>]+>")


def catalogue_path() -> Path:
    return Path(settings.LOCALE_PATHS[0]) / "sv" / "LC_MESSAGES" / "django.po"


def po_translations(text: str) -> dict[str, str]:
    """msgid -> msgstr of every translated entry that is not fuzzy (plural forms: the first)."""
    translations: dict[str, str] = {}
    for block in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        current = None
        fuzzy = False
        for line in block.splitlines():
            line = line.strip()
            if line.startswith("#,") and "fuzzy" in line:
                fuzzy = True
            elif line.startswith("#") or not line:
                continue  # comments, and obsolete entries ("#~")
            elif line.startswith('"') and current:
                fields[current] += ast.literal_eval(line)
            else:
                keyword, _, quoted = line.partition(" ")
                current = keyword
                fields[current] = ast.literal_eval(quoted)
        msgid = fields.get("msgid", "")
        msgstr = fields.get("msgstr", fields.get("msgstr[0]", ""))
        if msgid and msgstr and not fuzzy:
            translations[msgid] = msgstr
    return translations


def _visible(text: str) -> str:
    """A msgid as a browser shows it: no tags, entities decoded, whitespace collapsed."""
    return " ".join(html.unescape(TAG.sub("", text)).split())


def _pattern(msgid: str) -> re.Pattern | None:
    """A regular expression for the msgid as it appears on a page, placeholders filled in;
    None when too little of it is fixed text to tell it from anything else."""
    pieces = PLACEHOLDER.split(_visible(msgid))
    if len(re.sub(r"\W", "", "".join(pieces))) < 2:
        return None
    pieces = [piece.strip() for piece in pieces]
    while not pieces[0]:
        pieces.pop(0)
    while not pieces[-1]:
        pieces.pop()
    body = r".+?".join(r"\s+".join(map(re.escape, piece.split(" "))) for piece in pieces)
    start = r"(?<!\w)" if re.match(r"\w", pieces[0]) else ""
    end = r"(?!\w)" if re.search(r"\w$", pieces[-1]) else ""
    return re.compile(start + body + end)


class SwedishCatalogue:
    """The English strings that have a Swedish translation and so must not show untranslated."""

    def __init__(self, translations: dict[str, str]):
        swedish = "\n".join(_visible(msgstr) for msgstr in translations.values())
        self.patterns: dict[str, re.Pattern] = {}
        for msgid, msgstr in translations.items():
            pattern = _pattern(msgid)
            # A string the same in both languages, or one that Swedish text itself contains
            # ("SKU" inside "artikelnummer (SKU)"), says nothing about a missing translation.
            if pattern is None or _visible(msgid) == _visible(msgstr) or pattern.search(swedish):
                continue
            self.patterns[msgid] = pattern

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def english_leftovers(self, text: str) -> list[str]:
        """The source strings that appear, untranslated, in a page's visible text."""
        text = " ".join(text.split())
        return [msgid for msgid, pattern in self.patterns.items() if pattern.search(text)]


@lru_cache(maxsize=1)
def swedish_catalogue() -> SwedishCatalogue:
    """The project's catalogue; empty (every page passes) while there is none."""
    path = catalogue_path()
    if not path.exists():
        return SwedishCatalogue({})
    return SwedishCatalogue(po_translations(path.read_text(encoding="utf-8")))


def compiled_catalogue_stale() -> bool:
    """Django reads the compiled .mo: a missing or older one leaves every page in English."""
    po = catalogue_path()
    mo = po.with_suffix(".mo")
    return po.exists() and (not mo.exists() or mo.stat().st_mtime < po.stat().st_mtime)
