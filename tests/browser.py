"""A small headless-Chromium harness for end-to-end tests of the web console.

Debian's Chromium and ChromeDriver are used directly (never Selenium Manager, which would try to
download a driver): :func:`start_browser` fails with a one-line message naming the binary when
either is missing, so a test without a browser FAILS instead of being skipped.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")

VIEWPORT_WIDTH = 1280
VIEWPORT_HEIGHT = 800
DEFAULT_TIMEOUT = 10.0

REPO_ROOT = Path(__file__).resolve().parent.parent

# Chromium runs as root here and the machine has no internet: no sandbox, no GPU, and nothing
# that phones home (component updates, sync, QUIC, background networking).
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    f"--window-size={VIEWPORT_WIDTH},{VIEWPORT_HEIGHT}",
)


class BrowserUnavailableError(RuntimeError):
    """Chromium or ChromeDriver is not installed where the harness expects it."""


def artifacts_dir() -> Path:
    """The folder for screenshots and other test artifacts (``KEMI_TEST_ARTIFACTS`` if set)."""
    configured = os.environ.get("KEMI_TEST_ARTIFACTS")
    return Path(configured) if configured else REPO_ROOT / "tests" / "artifacts"


class Browser:
    """A headless Chrome WebDriver with the few operations the console tests need."""

    def __init__(self, driver: webdriver.Chrome, profile_dir: Path | None = None) -> None:
        self.driver = driver
        self._profile_dir = profile_dir

    # -- navigation and page state ------------------------------------------------------------

    def open(self, url: str) -> None:
        """Load ``url`` and wait until the document has finished loading."""
        self.driver.get(url)

    def wait_for(self, css_selector: str, timeout: float = DEFAULT_TIMEOUT) -> WebElement:
        """The first element matching ``css_selector`` once it is visible."""
        element: WebElement = WebDriverWait(self.driver, timeout).until(
            ec.visibility_of_element_located((By.CSS_SELECTOR, css_selector)),
            f"no visible element matches {css_selector!r} after {timeout} s",
        )
        return element

    def wait_for_text(
        self, css_selector: str, text: str, timeout: float = DEFAULT_TIMEOUT
    ) -> WebElement:
        """The first element matching ``css_selector`` once its text contains ``text``."""
        try:
            WebDriverWait(self.driver, timeout).until(
                ec.text_to_be_present_in_element((By.CSS_SELECTOR, css_selector), text)
            )
        except TimeoutException:
            raise AssertionError(
                f"{css_selector!r} does not contain {text!r} after {timeout} s "
                f"(its text: {self._text_or_none(css_selector)!r})"
            ) from None
        return self.driver.find_element(By.CSS_SELECTOR, css_selector)

    def click(self, css_selector: str, timeout: float = DEFAULT_TIMEOUT) -> None:
        """Click the element matching ``css_selector`` once it is clickable."""
        element: WebElement = WebDriverWait(self.driver, timeout).until(
            ec.element_to_be_clickable((By.CSS_SELECTOR, css_selector)),
            f"no clickable element matches {css_selector!r} after {timeout} s",
        )
        element.click()

    def fill(self, css_selector: str, text: str, timeout: float = DEFAULT_TIMEOUT) -> None:
        """Replace the value of the input matching ``css_selector`` with ``text``."""
        element = self.wait_for(css_selector, timeout)
        element.clear()
        element.send_keys(text)

    def text(self, css_selector: str) -> str:
        """The visible text of the first element matching ``css_selector``."""
        return str(self.driver.find_element(By.CSS_SELECTOR, css_selector).text)

    def cookies(self) -> dict[str, str]:
        """The cookies of the current page, name to value."""
        return {str(c["name"]): str(c["value"]) for c in self.driver.get_cookies()}

    # -- checks and artifacts -----------------------------------------------------------------

    def set_viewport(self, width: int = VIEWPORT_WIDTH, height: int = VIEWPORT_HEIGHT) -> None:
        """Make the viewport (``innerWidth`` x ``innerHeight``) exactly ``width`` x ``height``."""
        self.driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
        )
        inner = self.viewport()
        if inner != (width, height):
            raise AssertionError(f"viewport is {inner[0]}x{inner[1]}, wanted {width}x{height}")

    def viewport(self) -> tuple[int, int]:
        """The current ``(window.innerWidth, window.innerHeight)``."""
        size = self.driver.execute_script("return [window.innerWidth, window.innerHeight];")
        return int(size[0]), int(size[1])

    def screenshot(self, path: Path | str) -> Path:
        """Write a PNG of the 1280x800 viewport to ``path`` (parent folders are created)."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        self.set_viewport()
        if not self.driver.save_screenshot(str(target)):
            raise AssertionError(f"screenshot to {target} failed")
        return target

    def console_errors(self) -> list[str]:
        """The SEVERE browser-console messages logged since the previous call.

        ChromeDriver drains its log buffer on each read, so every entry is returned once.
        Nothing is filtered out: a missing favicon is an error like any other.
        """
        entries: list[dict[str, Any]] = self.driver.get_log("browser")
        return [str(e["message"]) for e in entries if e.get("level") == "SEVERE"]

    def assert_no_horizontal_scroll(self) -> None:
        """Fail if the page is wider than the viewport (it would scroll sideways)."""
        scroll_width, inner_width = self.driver.execute_script(
            "return [document.documentElement.scrollWidth, window.innerWidth];"
        )
        if int(scroll_width) > int(inner_width):
            raise AssertionError(
                f"page scrolls horizontally on {self.driver.current_url}: "
                f"document.documentElement.scrollWidth={scroll_width} > "
                f"window.innerWidth={inner_width}"
            )

    # -- lifecycle ----------------------------------------------------------------------------

    def close(self) -> None:
        """Quit Chromium and ChromeDriver and remove the throwaway profile."""
        try:
            self.driver.quit()
        finally:
            if self._profile_dir is not None:
                shutil.rmtree(self._profile_dir, ignore_errors=True)
                self._profile_dir = None

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _text_or_none(self, css_selector: str) -> str | None:
        elements = self.driver.find_elements(By.CSS_SELECTOR, css_selector)
        return str(elements[0].text) if elements else None


def _require(binary: Path, what: str) -> None:
    if not (binary.is_file() and os.access(binary, os.X_OK)):
        raise BrowserUnavailableError(
            f"{what} not found at {binary}: install it (Debian: apt-get install chromium "
            "chromium-driver) - browser tests cannot run without it"
        )


def start_browser(tmp_dir: Path) -> Browser:
    """Start headless Chromium with a fresh profile under ``tmp_dir`` and a 1280x800 viewport.

    Raises :class:`BrowserUnavailableError` (one line naming the binary) when Chromium or
    ChromeDriver is missing, so the calling test fails rather than skips.
    """
    _require(CHROMIUM, "Chromium")
    _require(CHROMEDRIVER, "ChromeDriver")
    tmp_dir.mkdir(parents=True, exist_ok=True)
    profile_dir = Path(tempfile.mkdtemp(prefix="chromium-profile-", dir=tmp_dir))

    options = Options()
    options.binary_location = str(CHROMIUM)
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile_dir}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # An explicit driver path is what keeps Selenium Manager (and its downloads) out of the way.
    service = Service(
        executable_path=str(CHROMEDRIVER), log_output=str(tmp_dir / "chromedriver.log")
    )
    try:
        driver = webdriver.Chrome(service=service, options=options)
    except BaseException:
        shutil.rmtree(profile_dir, ignore_errors=True)
        raise
    browser = Browser(driver, profile_dir)
    try:
        browser.set_viewport()
    except BaseException:
        browser.close()
        raise
    return browser
