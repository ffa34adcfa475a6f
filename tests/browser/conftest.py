"""Browser tests: the sandbox's web client in headless Chromium, with the real bot behind the sandbox.

The world is what `make run` gives a newcomer: the sandbox with `--demo` data (team demo; alice, bob,
carol with password demo; the bot account made a system admin) and the bot started in-process with the
project's example playbooks, both on port 0. People act only in the browser, as a person would.

Chromium is Debian's `chromium` package, driven by Playwright for Python with `executable_path`; nothing
is downloaded. `browser.launch()` gives every run a fresh, throwaway profile (user-data-dir), and every
person gets their own browser context (own cookies, so own session). Screenshots of each step go to
test-artifacts/browser/<test name>/NN-<who>-<step>.png.

Without Chromium (or the playwright package) the tests are skipped with one line saying so; with CI=true
that is a failure instead, since CI installs both.
"""
from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator

import aiohttp
import pytest

from bot.app import BotApp
from bot.config import load_settings
from sandbox import Sandbox
from sandbox.validation import assert_no_violations
from tests.conftest import LOOPBACK, Api, sandbox_config

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "browser"
CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
EXPECT_TIMEOUT_MS = 10_000
# The web client's boot asks GET /users/me to learn whether the session cookie is valid; before signing
# in that is a 401, which Chromium logs as a console error like any failed fetch.
EXPECTED_CONSOLE = re.compile(r"status of 401 \(Unauthorized\)")


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def _missing() -> str:
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -e '.[test]')"
    if not CHROMIUM.exists():
        return f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    return ""


@dataclass
class Site:
    sb: Sandbox
    bot: BotApp
    url: str
    team_id: str


@dataclass
class Shots:
    """Numbered screenshots of one test, in the order they were taken."""

    folder: Path
    count: int = 0

    async def take(self, page: Any, who: str, step: str, focus: Any = None) -> Path:
        """Screenshot `page`; `focus` (a locator) is scrolled into view first."""
        if focus is not None:
            await focus.scroll_into_view_if_needed()
        self.count += 1
        path = self.folder / f"{self.count:02d}-{who}-{step}.png"
        await page.screenshot(path=str(path))
        return path


@dataclass
class Person:
    name: str
    page: Any
    console: list[str] = field(default_factory=list)


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    # validate=True: every /api/v4 call the web client (and the bot) makes is checked against the OpenAPI
    # spec; a disagreement fails the test at teardown.
    async with Sandbox(admin_token="admintoken", config=sandbox_config(),
                       demo=True, validate=True, allow_internal=LOOPBACK) as sb, \
            aiohttp.ClientSession() as session:
        admin = Api(session, sb.url, sb.admin_token)
        status, team, _ = await admin.get("/teams/name/demo")
        assert status == 200, team
        status, bot, _ = await admin.get("/users/username/playbooks")
        assert status == 200, bot
        status, body, _ = await admin.put(f"/users/{bot['id']}/roles", {"roles": "system_user system_admin"})
        assert status == 200, body
        status, token, _ = await admin.post(f"/users/{bot['id']}/tokens", {"description": "browser tests"})
        assert status == 200, token

        # The example incident playbook, with bob invited so a second person can watch the run live.
        playbooks = tmp_path / "playbooks"
        playbooks.mkdir()
        for example in (ROOT / "playbooks").glob("*.toml"):
            text = example.read_text()
            if example.stem == "incident":
                text = 'members = ["bob"]\n' + text
            (playbooks / example.name).write_text(text)
        settings = load_settings(tmp_path / "absent.toml", env={
            "BOT_MATTERMOST_URL": sb.url, "BOT_MATTERMOST_TOKEN": token["token"],
            "BOT_SERVER_LISTEN": "127.0.0.1:0", "BOT_SERVER_PUBLIC_URL": "http://127.0.0.1:0",
            "BOT_STORAGE_URL": f"sqlite:///{tmp_path}/bot.db", "BOT_PLAYBOOKS_DIR": str(playbooks),
        })
        app = BotApp(settings)
        await app.start()
        try:
            yield Site(sb, app, sb.url, team["id"])
        finally:
            await app.stop()
    assert_no_violations(sb.state)


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    missing = _missing()
    if missing:
        if in_ci():
            pytest.fail(f"browser tests cannot run in CI: {missing}")
        pytest.skip(f"browser tests skipped: {missing}")
    from playwright.async_api import async_playwright, expect

    expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest.fixture
def shots(request: pytest.FixtureRequest) -> Shots:
    folder = ARTIFACTS / re.sub(r"[^\w.-]+", "_", request.node.name)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return Shots(folder)


@pytest.fixture
async def people(browser: Any, site: Site) -> AsyncIterator[Any]:
    """`await people("alice")`: a signed-in person in their own browser context."""
    opened: list[tuple[Any, Person]] = []

    async def open_person(name: str, password: str = "demo", sign_in: bool = True) -> Person:
        from playwright.async_api import expect

        context = await browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-US",
                                            timezone_id="UTC")
        page = await context.new_page()
        person = Person(name, page)
        page.on("console", lambda m: m.type == "error" and person.console.append(m.text))
        page.on("pageerror", lambda e: person.console.append(f"page error: {e}"))
        opened.append((context, person))
        await page.goto(site.url)
        if sign_in:
            await page.get_by_label("Username or email").fill(name)
            await page.get_by_label("Password").fill(password)
            await page.get_by_role("button", name="Sign in").click()
            await expect(page.locator("#channel-title")).to_have_text("Town Square")
        return person

    yield open_person
    problems = []
    for context, person in opened:
        problems += [f"{person.name}: {line}" for line in person.console if not EXPECTED_CONSOLE.search(line)]
        await context.close()
    assert not problems, "the web client logged errors:\n" + "\n".join(problems)
