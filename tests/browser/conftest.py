"""Fixtures for tests that drive a real browser: Debian's Chromium through Playwright's sync API.

Nothing here downloads a browser build: Playwright launches the system binary given by
``OMNIHOOK_TEST_CHROMIUM`` (default ``/usr/bin/chromium``; ``.ci/run`` installs it). Tests skip,
saying why, when the binary or Playwright is missing.

Rules for tests in this folder:

- Write them as plain ``def`` tests. Playwright's sync API drives its own event loop and, between
  calls, leaves that loop marked as the thread's running loop; a pytest-asyncio test or async
  fixture in the same thread would then fail with "Cannot run the event loop while another loop
  is running". Collection stops with a usage error on an ``async def`` test here.
- For the same reason, don't call ``asyncio.run`` in a browser test: use ``run_async(coro)``, which
  runs the coroutine on a fresh loop in a worker thread.
- Serve the app under test with ``serve_app(app).url`` (tests/conftest.py): uvicorn runs in its own
  thread with its own loop, which is fine.

Playwright and the browser start once for this package (``scope="package"``, not "session"), so
they stop, and the running-loop mark goes away, before the async tests in other folders run.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import re
import shutil
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, ViewportSize

T = TypeVar("T")

HERE = Path(__file__).resolve().parent
DEFAULT_CHROMIUM = "/usr/bin/chromium"
VIEWPORT: ViewportSize = {"width": 1280, "height": 800}
# Playwright's default is 30 s a call; a local page that takes more than this is broken, and a
# failing test should say so quickly.
DEFAULT_TIMEOUT_MS = 5_000

_saved: list[Path] = []


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if HERE not in item.path.parents:
            continue
        item.add_marker(pytest.mark.browser)
        function = getattr(item, "function", None)
        if function is not None and inspect.iscoroutinefunction(function):
            raise pytest.UsageError(
                f"{item.nodeid}: browser tests must be plain `def` tests: Playwright's sync API "
                "leaves its own loop marked running, which breaks pytest-asyncio (see "
                "tests/browser/conftest.py)"
            )


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _saved:
        terminalreporter.write_line(
            f"browser screenshots ({len(_saved)}) in {_saved[0].parent}", bold=True
        )


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "page"


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """The Chromium executable Playwright launches; skips when it or Playwright is missing."""
    # .ci/run requires the browser: there a missing one fails the run instead of skipping.
    missing = pytest.fail if os.environ.get("OMNIHOOK_REQUIRE_BROWSER") else pytest.skip
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as exc:
        missing(f"Playwright is not importable ({exc}): run `uv sync` (dev group)")
    path = os.environ.get("OMNIHOOK_TEST_CHROMIUM") or DEFAULT_CHROMIUM
    resolved = shutil.which(path)
    if resolved is None:
        missing(
            f"no Chromium executable at {path}: `apt-get update && apt-get install -y chromium` "
            "as root (.ci/run does), or set OMNIHOOK_TEST_CHROMIUM"
        )
        raise AssertionError("unreachable")
    return resolved


@pytest.fixture(scope="session")
def artifacts_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where screenshots go: ``$OMNIHOOK_TEST_ARTIFACTS`` if set, else ``browser-artifacts`` in
    pytest's base temp (``/tmp/pytest-of-<user>/pytest-<N>/``, the last three runs kept)."""
    configured = os.environ.get("OMNIHOOK_TEST_ARTIFACTS")
    path = Path(configured) if configured else tmp_path_factory.getbasetemp() / "browser-artifacts"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="package")
def browser(chromium_path: str) -> Iterator[Browser]:
    """One headless Chromium for all the tests in this folder."""
    from playwright.sync_api import sync_playwright

    # Never fetch a browser build, whatever a call below might try.
    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    with sync_playwright() as playwright:
        # Playwright adds --no-sandbox itself unless chromium_sandbox=True; Chromium refuses its
        # sandbox as root, which is how CI runs, so keep it off.
        browser = playwright.chromium.launch(executable_path=chromium_path, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser: Browser, artifacts_dir: Path, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A page in a fresh browser context (no cookies or storage shared between tests), 1280x800,
    5 s default timeout; its screenshot is saved as ``<module>--<test>.png`` on teardown."""
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    page = context.new_page()
    try:
        yield page
    finally:
        try:
            if not page.is_closed():
                path = artifacts_dir / f"{_test_name(request)}.png"
                page.screenshot(path=path, full_page=True)
                _saved.append(path)
        finally:
            context.close()


@pytest.fixture
def screenshot(artifacts_dir: Path, request: pytest.FixtureRequest) -> Callable[[Page, str], Path]:
    """``screenshot(page, name)`` saves ``<module>--<test>--<name>.png`` now; returns its path."""

    def take(page: Page, name: str) -> Path:
        path = artifacts_dir / f"{_test_name(request)}--{_safe(name)}.png"
        page.screenshot(path=path, full_page=True)
        _saved.append(path)
        return path

    return take


def _test_name(request: pytest.FixtureRequest) -> str:
    return f"{_safe(request.node.path.stem)}--{_safe(request.node.name)}"


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to its end on a fresh event loop in a worker thread (``asyncio.run`` in the
    test's own thread fails while Playwright's loop is marked running there)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()
