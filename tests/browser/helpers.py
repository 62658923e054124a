"""Chromium for the browser tests, and the checks every page they visit must pass.

Playwright's asyncio API runs on a thread of its own. Its sync API would leave an event
loop running on the test's thread for as long as the browser lives, and Django refuses
database access from a thread with a running loop (SynchronousOnlyOperation): the
factories, the test database's flush and every later test of the session would fail.
"""

from __future__ import annotations

import asyncio
import os
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from playwright.async_api import async_playwright

from tests.browser.catalogue import compiled_catalogue_stale, swedish_catalogue

PHONE_WIDTH = 375
DESKTOP_WIDTH = 1400
WIDTHS = (DESKTOP_WIDTH, PHONE_WIDTH)
LANGUAGES = ("sv", "en")
SCREENSHOT_DIR = Path(settings.BASE_DIR) / "test-artifacts" / "browser"
# The longest any one step in the browser may take (a page of the portal loads in about one).
STEP_SECONDS = 30


def chromium_path() -> str:
    return os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")


@dataclass
class Stats:
    """What the browser suite did, for the summary line at the end of the run."""

    pages: int = 0
    tests: int = 0
    seconds: float = 0.0
    screenshots: list[Path] = field(default_factory=list)


stats = Stats()


class BrowserThread:
    """One Chromium for all the browser tests, driven from an event loop on its own thread."""

    def __init__(self, executable: str):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="playwright", daemon=True)
        self.thread.start()
        self.playwright = None
        self.browser = None
        self.run(self._launch(executable))

    async def _launch(self, executable: str) -> None:
        self.playwright = await async_playwright().start()
        # Debian's chromium, not Playwright's download (which these machines cannot reach);
        # --no-sandbox because CI runs as root, where Chromium's sandbox refuses to start.
        self.browser = await self.playwright.chromium.launch(
            executable_path=executable, args=["--no-sandbox"]
        )

    def run(self, coroutine, timeout: float = STEP_SECONDS):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def close(self) -> None:
        async def stop():
            await self.browser.close()
            await self.playwright.stop()

        try:
            self.run(stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)


# The elements that stick out to the right, named so that a failure points at the culprit.
OVERFLOW_JS = """() => {
  const width = window.innerWidth;
  if (document.documentElement.scrollWidth <= width) return null;
  const name = (el) => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '')
    + (el.classList.length ? '.' + [...el.classList].join('.') : '');
  const wide = [...document.body.querySelectorAll('*')]
    .filter((el) => el.getBoundingClientRect().right > width + 1
      && !(el.parentElement && el.parentElement.getBoundingClientRect().right > width + 1))
    .slice(0, 5).map(name);
  return {scrollWidth: document.documentElement.scrollWidth, width, wide};
}"""

# A status label (a shop's health: "fungerar", "behöver en titt") is one short phrase in a
# coloured pill: broken over two lines it reads as two words ("funger" / "ar"), as it did in a
# narrow table column whose cells may break anywhere. The text's line boxes are counted.
BROKEN_LABELS_JS = """() => [...document.querySelectorAll('.health')].filter((el) => {
  const range = document.createRange();
  range.selectNodeContents(el);
  return new Set([...range.getClientRects()].map((rect) => Math.round(rect.top))).size > 1;
}).map((el) => el.textContent.trim())"""

# innerText is the text as shown, but with CSS's text-transform applied (the admin's
# uppercase captions); the catalogue holds the strings as written.
VISIBLE_TEXT_JS = """() => {
  const style = document.createElement('style');
  style.textContent = '* { text-transform: none !important; }';
  document.head.appendChild(style);
  const text = document.body.innerText;
  style.remove();
  return text;
}"""


class Visitor:
    """One browser context (a person at one window size in one language) and its checks.

    Every page reached, by address or by a form, must answer below 500, log no console
    error or uncaught exception, fit the window without scrolling sideways (on a phone, and on
    support's desktop, where a wide inline table once pushed a customer's page to 1,600 px),
    keep each status label on one line, and in Swedish show none of the catalogue's translated English strings. Problems are
    collected, with a screenshot of the page, and ``assert_clean`` fails on them.
    """

    def __init__(self, browser: BrowserThread, *, base_url: str, language: str, width: int, name: str):
        self.browser = browser
        self.base_url = base_url
        self.language = language
        self.width = width
        self.name = re.sub(r"[^\w.-]+", "_", name).strip("_")
        self.problems: list[str] = []
        self.console: list[str] = []
        self.context = None
        self.page = None
        browser.run(self._open())

    async def _open(self) -> None:
        # Both ways Django's LocaleMiddleware learns the language name the same one: the
        # cookie (read first, as the admin's language switch sets it) and Accept-Language
        # (the browser's locale, all a first-time visitor brings).
        self.context = await self.browser.browser.new_context(
            base_url=self.base_url,
            viewport={"width": self.width, "height": 900},
            locale={"sv": "sv-SE", "en": "en-GB"}[self.language],
        )
        await self.context.add_cookies(
            [{"name": settings.LANGUAGE_COOKIE_NAME, "value": self.language, "url": self.base_url}]
        )
        self.page = await self.context.new_page()
        self.page.set_default_timeout(STEP_SECONDS * 1000 - 5000)
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda error: self.console.append(f"uncaught exception: {error}"))
        # The page's own answer is checked in _check; this catches its styles, scripts and images.
        self.page.on(
            "response",
            lambda response: (
                response.status >= 500
                and not response.request.is_navigation_request()
                and self.console.append(f"{response.status} from {response.url}")
            ),
        )

    def _console(self, message) -> None:
        source = message.location.get("url") or "inline"
        # Chromium asks every site for /favicon.ico on its own; the portal has none, and the
        # 404 it logs says nothing about the page.
        if message.type == "error" and not source.endswith("/favicon.ico"):
            self.console.append(f"console error: {message.text} ({source})")

    def visit(self, path: str) -> str:
        """Open the page at ``path``, check it and return its visible text."""
        return self.browser.run(self._visit(path))

    async def _visit(self, path: str) -> str:
        response = await self.page.goto(path)
        return await self._check(response, path)

    def submit(self, fields: dict[str, str], button: str | None = None) -> str:
        """Fill in the form fields (by CSS selector), press the button, check the page reached.

        The button is by default the submit button of the form holding the first field: pages
        have other forms (the language switch, log out) with buttons of their own.
        """
        button = button or f"form:has({next(iter(fields))}) [type=submit]"
        return self.browser.run(self._submit(fields, button))

    async def _submit(self, fields: dict[str, str], button: str) -> str:
        for selector, value in fields.items():
            await self.page.fill(selector, value)
        origin = self.path
        async with self.page.expect_navigation() as navigation:
            await self.page.click(button)
        return await self._check(await navigation.value, f"form on {origin}")

    @property
    def path(self) -> str:
        return self.page.url.removeprefix(self.base_url)

    async def _check(self, response, what: str) -> str:
        stats.pages += 1
        problems = []
        if response is None or response.status >= 500:
            problems.append(f"server error {response.status if response else 'no response'}")
        problems += self.console
        self.console.clear()
        overflow = await self.page.evaluate(OVERFLOW_JS)
        if overflow:
            problems.append(
                f"scrolls sideways at {overflow['width']} px: {overflow['scrollWidth']} px wide, "
                f"widest: {', '.join(overflow['wide'])}"
            )
        broken = await self.page.evaluate(BROKEN_LABELS_JS)
        if broken:
            problems.append(f"status labels broken over lines: {broken[:5]}")
        text = await self.page.evaluate(VISIBLE_TEXT_JS)
        if self.language == "sv":
            leftovers = swedish_catalogue().english_leftovers(text)
            if leftovers:
                stale = (
                    " (locale/sv/LC_MESSAGES/django.mo is missing or older than the .po: compile it)"
                    if compiled_catalogue_stale()
                    else ""
                )
                problems.append(f"untranslated on a Swedish page{stale}: {leftovers[:10]}")
        if problems:
            SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
            shot = SCREENSHOT_DIR / f"{self.name}-{len(stats.screenshots) + 1}.png"
            await self.page.screenshot(path=shot, full_page=True)
            stats.screenshots.append(shot)
            self.problems += [f"{what} -> {self.path}: {problem} [screenshot {shot}]" for problem in problems]
        return text

    def screenshot(self) -> Path:
        """The page as it is now (for a test that failed outside the checks)."""
        SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
        shot = SCREENSHOT_DIR / f"{self.name}-{len(stats.screenshots) + 1}.png"
        self.browser.run(self.page.screenshot(path=shot, full_page=True))
        stats.screenshots.append(shot)
        return shot

    def assert_clean(self) -> None:
        assert not self.problems, "\n".join(self.problems)

    def close(self) -> None:
        self.browser.run(self.context.close())
