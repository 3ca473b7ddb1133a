"""The web console in a real browser (Debian's Chromium, headless) on ``kemi-stats up --demo``.

One walk through what the person on call does: see ``device-down`` firing for
``sw-dead``, sign in with a console token, silence it from the page (and see the
repeated webhooks stop), find ``sw-dead`` failing on the targets page with its reason,
and draw ``if_in_bps`` of ``net:sw-03`` in the explorer. Every page is screenshot at
1280x800 into the artifacts folder (``KEMI_TEST_ARTIFACTS``, default
``tests/artifacts``), with no horizontal scroll and no error in the browser's console.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import requests

from kemi_stats.stack.process import wait_until
from tests.acceptance.conftest import Demo
from tests.browser import Browser, artifacts_dir, start_browser

pytestmark = pytest.mark.acceptance

#: the device-down rule's repeat interval for this run
REPEAT_S = 30
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    b = start_browser(tmp_path_factory.mktemp("chromium"))
    try:
        yield b
    finally:
        b.close()


def _shots() -> Path:
    folder = artifacts_dir() / "console"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _page_ok(browser: Browser, name: str, *visible: str) -> None:
    """The page's key elements are shown, it does not scroll sideways, nothing went wrong
    in the browser's console; and its screenshot is written."""
    for css in visible:
        assert browser.wait_for(css).is_displayed(), f"{name}: {css} not visible"
    browser.assert_no_horizontal_scroll()
    browser.screenshot(_shots() / f"{name}.png")
    assert browser.console_errors() == [], f"{name}: errors in the browser's console"


def _dead_notices(demo: Demo) -> int:
    """Firing (and repeated) notices of device-down for net:sw-dead the receiver printed."""
    log = (demo.data / "logs" / "demo-receiver.log").read_text(errors="replace")
    return sum(
        1 for line in log.splitlines()
        if "device-down net:sw-dead" in line and "RESOLVED" not in line
    )  # fmt: skip


def _alert_row(browser: Browser, console: str) -> bool:
    browser.open(console + "/alerts")
    rows = browser.driver.find_elements(
        "css selector",
        '#rule-device-down tr.alert[data-resource="net:sw-dead"][data-status="firing"]',
    )
    return bool(rows)


def test_on_call_walkthrough(demo: Demo, browser: Browser) -> None:
    console = demo.url("console")
    demo.kemi("rule", "update", "device-down", "--repeat-interval", f"{REPEAT_S}s")
    made = demo.kemi("token", "add", "oncall", "--scope", "console").stdout
    secret = re.search(r"secret \(shown once, store it now\): (\S+)", made)
    assert secret, made
    token = secret.group(1)

    # the alerts page shows device-down for sw-dead within its firing time (for: 30s,
    # after sw-dead's first failed polls), without anyone signed in
    assert wait_until(lambda: _alert_row(browser, console), 150, interval=2), (
        "device-down for net:sw-dead never firing on the alerts page"
    )
    _page_ok(browser, "alerts", "#rule-device-down", "#signin-link")
    assert browser.driver.find_elements("css selector", ".silence-open") == []

    # without a token: no button, and the form endpoint answers 403; a form without the
    # session's CSRF token is refused
    anonymous = requests.Session()
    csrf = _CSRF.search(anonymous.get(console + "/signin", timeout=10).text)
    assert csrf
    form = {"matchers": "alertname=device-down", "duration": "1h"}
    assert anonymous.post(console + "/alerts/silence", data=form | {"csrf": csrf.group(1)},
                          timeout=10, allow_redirects=False).status_code == 403  # fmt: skip

    # the receiver gets the firing notice and its repeats every REPEAT_S
    assert wait_until(lambda: _dead_notices(demo) >= 2, 3 * REPEAT_S + 30, interval=1), (
        f"no repeated device-down notice for net:sw-dead ({_dead_notices(demo)} so far)"
    )

    # sign in, then silence it from the page
    browser.open(console + "/signin?next=/alerts")
    _page_ok(browser, "signin", "#signin-form")
    browser.fill("#token", token)
    browser.click("#signin-submit")
    browser.wait_for_text("#signed-in-as", "signed in as oncall")
    forged = requests.post(console + "/alerts/silence", data=form, timeout=10,
                           cookies=browser.cookies(), allow_redirects=False)  # fmt: skip
    assert forged.status_code == 403, "a form without the CSRF token was accepted"
    row = '#rule-device-down tr.alert[data-resource="net:sw-dead"]'
    browser.click(f"{row} .silence-open")
    browser.fill(f"{row} textarea[name=matchers]", "alertname=device-down\nresource=net:sw-dead")
    browser.fill(f"{row} input[name=comment]", "cable cut, on site at 9")
    browser.click(f"{row} .silence-submit")
    flash = browser.wait_for("#flash").text
    assert re.match(r"silence [0-9a-f]{12} added until", flash), flash
    silenced_at = time.monotonic()
    notices = _dead_notices(demo)

    listed = orjson.loads(demo.kemi("silence", "list", "-o", "json").stdout)
    (silence,) = listed.values()
    assert silence["created_by"] == "oncall"
    assert silence["match"] == ["alertname=device-down", "resource=net:sw-dead"]
    assert silence["reason"] == "cable cut, on site at 9"

    # the evaluator marks it silenced; the page says so
    assert wait_until(
        lambda: _alert_row(browser, console) and browser.driver.find_elements(
            "css selector", f'{row}[data-silenced="yes"]'
        ) != [], 30, interval=1,
    ), "the silenced alert is not shown as silenced"  # fmt: skip
    _page_ok(browser, "alerts-silenced", "#silence-table", "#signed-in-as")

    # the targets page lists sw-dead as failing, with its reason
    browser.open(console + "/targets?q=sw-dead")
    dead = 'tr.target[data-name="sw-dead"]'
    assert browser.wait_for(f"{dead}").get_attribute("data-status") == "failing"
    assert browser.text(f"{dead} .reason") == "timeout"
    _page_ok(browser, "targets-search", "#target-table")
    browser.open(console + "/targets")
    _page_ok(browser, "targets", "#target-table", "#pager")
    browser.open(console + "/targets/sw-dead")
    assert browser.text("#target-status") == "failing"
    _page_ok(browser, "target-sw-dead", "#last-result")
    browser.open(console + "/targets/sw-03")
    _page_ok(browser, "target-sw-03", "#sample-table", "svg.spark")
    assert browser.driver.find_elements("css selector", "svg.spark polyline"), "no sparkline drawn"

    # the explorer draws if_in_bps of net:sw-03
    browser.open(console + "/explorer?metric=if_in_bps&resource=net%3Asw-03&range=1h")
    drawn = browser.wait_for("#chart[data-drawn]", timeout=30).get_attribute("data-drawn")
    assert drawn is not None and int(drawn) >= 1, browser.text("#chart-status")
    _page_ok(browser, "explorer", "#chart canvas", "#explorer-form")

    # the platform page: every service of the stack healthy
    def all_healthy() -> bool:
        browser.open(console + "/platform")
        cards = browser.driver.find_elements("css selector", "#services .card")
        return bool(cards) and all(c.get_attribute("data-healthy") == "yes" for c in cards)

    assert wait_until(all_healthy, 60, interval=2), browser.text("#services")
    _page_ok(browser, "platform", "#services", "#topics")

    # no repeated webhook for the silenced alert: two repeat intervals and more
    # (a notice already on its way when the silence was written may still arrive)
    left = silenced_at + 2 * REPEAT_S + 10 - time.monotonic()
    if left > 0:
        time.sleep(left)
    assert _dead_notices(demo) <= notices + 1, "repeated webhooks went on after the silence"
