"""The browser harness (tests/browser.py) against a tiny aiohttp site on a loopback port."""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web

from tests.browser import Browser, artifacts_dir, start_browser

pytestmark = pytest.mark.integration

# A 1x1 transparent GIF: the site serves a favicon, so a favicon 404 never shows in the console.
FAVICON = bytes.fromhex(
    "47494638396101000100800000000000ffffff21f90401000000002c00000000010001000002024401003b"
)

BUTTON_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>button</title></head>
<body>
  <p id="status">idle</p>
  <input id="name" type="text">
  <button id="go" onclick="document.getElementById('status').textContent =
      'clicked ' + document.getElementById('name').value">go</button>
</body></html>"""

WIDE_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>wide</title></head>
<body><div id="wide" style="width: 3000px; height: 10px; background: red">wide</div></body></html>"""

CONSOLE_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>console</title></head>
<body><p id="done">done</p><script>console.error("boom");</script></body></html>"""


def _html(body: str) -> web.Response:
    return web.Response(text=body, content_type="text/html")


def _app() -> web.Application:
    app = web.Application()

    async def button(_: web.Request) -> web.Response:
        resp = _html(BUTTON_PAGE)
        resp.set_cookie("kemi_session", "abc123")
        return resp

    async def wide(_: web.Request) -> web.Response:
        return _html(WIDE_PAGE)

    async def console(_: web.Request) -> web.Response:
        return _html(CONSOLE_PAGE)

    async def favicon(_: web.Request) -> web.Response:
        return web.Response(body=FAVICON, content_type="image/gif")

    app.router.add_get("/", button)
    app.router.add_get("/wide", wide)
    app.router.add_get("/console", console)
    app.router.add_get("/favicon.ico", favicon)
    return app


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    """The base URL of the test site, served from a thread with its own event loop."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))  # the kernel picks a free port; held, so no race
    port = sock.getsockname()[1]
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(_app())
    loop.run_until_complete(runner.setup())
    loop.run_until_complete(web.SockSite(runner, sock).start())
    thread = threading.Thread(target=loop.run_forever, name="browser-test-site", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
        sock.close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    started = time.monotonic()
    b = start_browser(tmp_path_factory.mktemp("browser"))
    print(f"\nChromium started in {time.monotonic() - started:.2f} s")
    yield b
    b.close()


@pytest.fixture
def page(browser: Browser) -> Browser:
    """The shared browser with its console log drained, so each test sees only its own."""
    browser.console_errors()
    return browser


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()[:24]
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_click_changes_text(page: Browser, site: str) -> None:
    page.open(f"{site}/")
    assert page.text("#status") == "idle"
    page.fill("#name", "kemi")
    page.click("#go")
    page.wait_for_text("#status", "clicked kemi")
    assert page.text("#status") == "clicked kemi"
    assert page.cookies()["kemi_session"] == "abc123"


def test_wait_for_text_times_out_with_a_clear_message(page: Browser, site: str) -> None:
    page.open(f"{site}/")
    with pytest.raises(AssertionError, match=r"'#status' does not contain 'never'.*'idle'"):
        page.wait_for_text("#status", "never", timeout=0.5)


def test_narrow_page_has_no_horizontal_scroll(page: Browser, site: str) -> None:
    page.open(f"{site}/")
    page.assert_no_horizontal_scroll()


def test_wide_page_fails_horizontal_scroll_check(page: Browser, site: str) -> None:
    page.open(f"{site}/wide")
    page.wait_for("#wide")
    with pytest.raises(AssertionError, match=r"scrollWidth=30\d\d > window.innerWidth=1280"):
        page.assert_no_horizontal_scroll()


def test_console_errors(page: Browser, site: str) -> None:
    page.open(f"{site}/")
    page.wait_for("#status")
    assert page.console_errors() == []

    page.open(f"{site}/console")
    page.wait_for("#done")
    errors = page.console_errors()
    assert len(errors) == 1, errors
    assert "boom" in errors[0]
    assert page.console_errors() == []  # drained: only entries since the previous call


def test_screenshot_is_1280x800(page: Browser, site: str, tmp_path: Path) -> None:
    page.open(f"{site}/")
    page.wait_for("#status")
    target = page.screenshot(tmp_path / "nested" / "dir" / "button.png")
    assert target.is_file()
    assert _png_size(target) == (1280, 800)
    assert page.viewport() == (1280, 800)


def test_artifacts_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("KEMI_TEST_ARTIFACTS", raising=False)
    assert artifacts_dir() == Path(__file__).resolve().parents[1] / "artifacts"
    monkeypatch.setenv("KEMI_TEST_ARTIFACTS", str(tmp_path))
    assert artifacts_dir() == tmp_path
