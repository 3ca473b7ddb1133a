"""The web console as a process on real etcd and VictoriaMetrics: who may read, who may
silence, the CSRF token on every form, sessions, HTTPS, paging and poll results.

The browser end-to-end run on the demo stack is ``tests/acceptance/test_console_e2e.py``.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urljoin

import orjson
import pytest
import requests

from kemi_stats.registry.models import Target, Token, token_hash
from kemi_stats.registry.store import Registry
from kemi_stats.stack.process import wait_until
from kemi_stats.stack.servers import free_port
from tests.cli import Cli
from tests.servers import RunningServer, ServiceProcess, service_env
from tests.tls import self_signed

pytestmark = pytest.mark.integration

CONSOLE_SECRET = "kemi_console_" + uuid.uuid4().hex
PUSH_SECRET = "kemi_push_" + uuid.uuid4().hex
TARGETS = 120
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def _csrf(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


class Console:
    def __init__(self, proc: ServiceProcess, registry: Registry, etcd: str, prefix: str) -> None:
        self.proc = proc
        self.registry = registry
        self.cli = Cli(etcd, prefix)

    @property
    def url(self) -> str:
        return self.proc.url

    def browser(self) -> requests.Session:
        """A new visitor (its own cookie jar)."""
        return requests.Session()

    def sign_in(self, http: requests.Session, secret: str) -> str:
        """Sign ``http`` in with ``secret`` through the form; the page it lands on."""
        page = http.get(self.url + "/signin", timeout=10)
        form = {"csrf": _csrf(page.text), "token": secret, "next": "/alerts"}
        return http.post(self.url + "/signin", data=form, timeout=10).text

    def signed_in(self, secret: str = CONSOLE_SECRET, name: str = "oncall") -> requests.Session:
        """A visitor signed in with ``secret`` (waiting until the console's registry view
        has a token just written)."""
        http = self.browser()
        assert wait_until(lambda: f"signed in as {name}" in self.sign_in(http, secret), 10)
        return http


def _import(vm: RunningServer, lines: str) -> None:
    req = urllib.request.Request(
        f"http://{vm.address}/api/v1/import/prometheus", data=lines.encode(), method="POST"
    )
    with urllib.request.urlopen(req, timeout=10):
        pass
    urllib.request.urlopen(f"http://{vm.address}/internal/force_flush", timeout=10).close()


def _start(env: dict[str, str], log: Path) -> ServiceProcess:
    return ServiceProcess("console", env, log).start()


@pytest.fixture(scope="module")
def console(
    kafka: RunningServer,
    etcd: RunningServer,
    victoria: RunningServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Console]:
    prefix = f"/kemi-console-{uuid.uuid4().hex[:8]}/"
    registry = Registry(etcd.address, prefix)
    registry.create("token", "oncall", Token(hash=token_hash(CONSOLE_SECRET), scope="console"))
    registry.create("token", "agent", Token(hash=token_hash(PUSH_SECRET), resource_prefix="host:"))
    registry.write_many([
        ("target", f"dev-{i:03d}", Target.model_validate({
            "host": "127.0.0.1", "port": 1161, "credential": "lab", "profiles": ["system"], "labels": {"site": ("pangyo", "jeju", "seoul")[i % 3]},
        }))
        for i in range(TARGETS)
    ])  # fmt: skip
    env = service_env(
        kafka_bootstrap=kafka.address, etcd_endpoint=etcd.address, etcd_prefix=prefix,
        tsdb_url=f"http://{victoria.address}",
        # nothing listens there: the alerts page says so instead of failing
        console_evaluator_url=f"http://127.0.0.1:{free_port()}",
        console_refresh_interval="0.5",
        # a URL with a password: no page may show it
        console_services=f"poller=http://watcher:s3cret@127.0.0.1:{free_port()}",
    )  # fmt: skip
    log = tmp_path_factory.mktemp("console") / "console.log"
    proc = _start(env, log)
    try:
        yield Console(proc, registry, etcd.address, prefix)
    finally:
        proc.stop()
        registry.close()


def test_everyone_reads_every_page_and_is_offered_no_silence(console: Console) -> None:
    http = console.browser()
    for path in ("/alerts", "/targets", "/targets/dev-001", "/explorer", "/platform",
                 "/explorer?metric=snmp_up&resource=dev-001&range=6h"):  # fmt: skip
        page = http.get(console.url + path, timeout=10)
        assert page.status_code == 200, (path, page.text[:300])
        assert "default-src 'self'" in page.headers["Content-Security-Policy"]
        assert page.headers["X-Frame-Options"] == "DENY"
        assert "Sign in" in page.text
    alerts = http.get(console.url + "/alerts", timeout=10).text
    assert "silence-form" not in alerts and "Silence…" not in alerts
    assert "alert evaluator http://127.0.0.1:" in alerts  # why no alerts are shown
    for asset in ("/static/console.css", "/static/explorer.js", "/static/refresh.js",
                  "/static/vendor/uPlot.iife.min.js", "/favicon.ico"):  # fmt: skip
        assert http.get(console.url + asset, timeout=10).status_code == 200, asset
    assert not http.cookies, "reading pages made a session"


def test_the_session_cookie_is_httponly_and_samesite_strict(console: Console) -> None:
    page = requests.get(console.url + "/signin", timeout=10)  # a form: it needs a session
    header = page.headers["Set-Cookie"]
    assert "HttpOnly" in header and "SameSite=Strict" in header and "Secure" not in header
    # reading pages, health probes and assets make no session
    for path in ("/alerts", "/targets", "/healthz", "/metrics", "/static/console.css"):
        assert "Set-Cookie" not in requests.get(console.url + path, timeout=10).headers, path


def test_silencing_needs_a_console_token(console: Console) -> None:
    http = console.browser()
    csrf = _csrf(http.get(console.url + "/signin", timeout=10).text)  # this session's own
    refused = http.post(
        console.url + "/alerts/silence",
        data={"csrf": csrf, "matchers": "alertname=device-down", "duration": "1h"},
        timeout=10, allow_redirects=False,
    )  # fmt: skip
    assert refused.status_code == 403 and "sign in" in refused.text
    assert console.registry.list("silence") == []


@pytest.mark.parametrize("secret", ["not-a-token", PUSH_SECRET])
def test_only_a_console_token_signs_in(console: Console, secret: str) -> None:
    http = console.browser()
    page = http.get(console.url + "/signin", timeout=10)
    before = http.cookies["kemi_console_session"]
    done = http.post(console.url + "/signin", data={"csrf": _csrf(page.text), "token": secret},
                     timeout=10, allow_redirects=False)  # fmt: skip
    assert done.status_code == 401
    assert "That is not a console token." in done.text
    assert http.cookies["kemi_console_session"] == before


def test_signing_in_replaces_the_session_and_its_csrf_token(console: Console) -> None:
    http = console.browser()
    page = http.get(console.url + "/signin", timeout=10)
    old_id, old_csrf = http.cookies["kemi_console_session"], _csrf(page.text)
    done = http.post(console.url + "/signin", data={"csrf": old_csrf, "token": CONSOLE_SECRET},
                     timeout=10, allow_redirects=False)  # fmt: skip
    assert done.status_code == 303 and done.headers["Location"] == "/alerts"
    new_id = http.cookies["kemi_console_session"]
    assert new_id != old_id
    assert _csrf(http.get(console.url + "/alerts", timeout=10).text) != old_csrf
    # the old id is signed out: whoever held it cannot silence
    stale = requests.get(
        console.url + "/alerts", cookies={"kemi_console_session": old_id}, timeout=10
    )
    assert "signed in as" not in stale.text


def test_a_forged_form_is_refused_and_a_real_one_writes_the_cli_s_silence(
    console: Console,
) -> None:
    http = console.signed_in()
    form = {"matchers": "alertname=device-down\nresource=net:sw-dead", "duration": "2h",
            "comment": "cabling"}  # fmt: skip
    no_token = http.post(console.url + "/alerts/silence", data=form, timeout=10,
                         allow_redirects=False)  # fmt: skip
    other = _csrf(console.browser().get(console.url + "/signin", timeout=10).text)
    wrong = http.post(console.url + "/alerts/silence", data=form | {"csrf": other}, timeout=10,
                      allow_redirects=False)  # fmt: skip
    assert no_token.status_code == 403 and wrong.status_code == 403
    assert "CSRF" in no_token.text
    assert console.registry.list("silence") == []

    csrf = _csrf(http.get(console.url + "/alerts", timeout=10).text)
    done = http.post(console.url + "/alerts/silence", data=form | {"csrf": csrf}, timeout=10)
    assert done.status_code == 200
    assert re.search(r"silence [0-9a-f]{12} added until", done.text), done.text[:500]
    listed = orjson.loads(console.cli("silence", "list", "-o", "json").stdout)
    assert len(listed) == 1
    sid, silence = next(iter(listed.items()))
    assert silence["created_by"] == "oncall"
    assert silence["match"] == ["alertname=device-down", "resource=net:sw-dead"]
    assert silence["reason"] == "cabling"
    assert 2 * 3600 - 60 < silence["ends_at"] - silence["starts_at"] <= 2 * 3600

    # it shows on the page once the console's registry view has it; then expire it
    assert wait_until(lambda: sid in http.get(console.url + "/alerts", timeout=10).text, 10)
    page = http.get(console.url + "/alerts", timeout=10).text
    expired = http.post(console.url + f"/silences/{sid}/expire", data={"csrf": _csrf(page)},
                        timeout=10)  # fmt: skip
    assert f"silence {sid} expired" in expired.text
    assert console.registry.get("silence", sid).doc.ends_at <= time.time()


def test_a_bad_silence_is_refused_with_the_reason(console: Console) -> None:
    http = console.signed_in()
    csrf = _csrf(http.get(console.url + "/alerts", timeout=10).text)
    for form, reason in (
        ({"matchers": "alertname=~(", "duration": "1h"}, "bad regular expression"),
        ({"matchers": "", "duration": "1h"}, "give at least one matcher"),
        ({"matchers": "alertname=x", "duration": "soon"}, "not a duration"),
        ({"matchers": "alertname=x", "duration": "90d"}, "longer than the console allows"),
    ):
        page = http.post(console.url + "/alerts/silence", data=form | {"csrf": csrf}, timeout=10)
        assert page.status_code == 200
        assert "silence not added" in page.text and reason in page.text, (form, page.text[:400])


def test_removing_the_token_signs_its_sessions_out(console: Console) -> None:
    console.registry.create(
        "token", "temp", Token(hash=token_hash(CONSOLE_SECRET + "x"), scope="console")
    )
    http = console.signed_in(CONSOLE_SECRET + "x", "temp")
    console.registry.delete("token", "temp")
    assert wait_until(
        lambda: "signed in as" not in http.get(console.url + "/alerts", timeout=10).text, 10
    )


@pytest.mark.parametrize(
    "target",
    ["//evil.example/", "/\t/evil.example/", "/%09/evil.example", "https://evil.example/",
     "/\\evil.example", "javascript:alert(1)"],
)  # fmt: skip
def test_sign_in_never_sends_you_to_another_site(console: Console, target: str) -> None:
    http = console.browser()
    page = http.get(console.url + "/signin", timeout=10)
    done = http.post(console.url + "/signin", timeout=10, allow_redirects=False,
                     data={"csrf": _csrf(page.text), "token": CONSOLE_SECRET, "next": target})  # fmt: skip
    assert done.status_code == 303
    location = done.headers["Location"]
    # a browser resolves it on the console itself (WHATWG URL parsing drops tabs and
    # newlines, and takes a backslash for a slash: none of those may pass)
    cleaned = location.replace("\t", "").replace("\n", "").replace("\r", "").replace("\\", "/")
    assert cleaned.startswith("/") and not cleaned.startswith("//"), location
    assert urljoin(console.url + "/signin", cleaned).startswith(console.url + "/"), location


def test_sign_in_returns_to_the_page_with_its_filters(console: Console) -> None:
    http = console.browser()
    page = http.get(console.url + "/signin", timeout=10)
    done = http.post(console.url + "/signin", timeout=10, allow_redirects=False,
                     data={"csrf": _csrf(page.text), "token": CONSOLE_SECRET,
                           "next": "/targets?label=site%3Djeju&page=2"})  # fmt: skip
    assert done.headers["Location"] == "/targets?label=site%3Djeju&page=2"


def test_a_token_replaced_under_its_name_signs_its_sessions_out(console: Console) -> None:
    secret = CONSOLE_SECRET + "r"
    console.registry.create("token", "rotating", Token(hash=token_hash(secret), scope="console"))
    http = console.signed_in(secret, "rotating")
    # the secret leaked: the token is made again, same name, new secret
    console.registry.update(
        "token", "rotating", Token(hash=token_hash(secret + "2"), scope="console")
    )
    assert wait_until(
        lambda: "signed in as" not in http.get(console.url + "/alerts", timeout=10).text, 10
    )


def test_the_series_api_answers_for_one_resource(console: Console) -> None:
    http = console.browser()
    whole_fleet = http.get(console.url + "/api/series?metric=snmp_up&range=7d", timeout=10)
    assert whole_fleet.status_code == 400 and "resource: required" in whole_fleet.json()["error"]
    bad = http.get(console.url + "/api/series?metric=1x&resource=dev-001", timeout=10)
    assert bad.status_code == 400 and bad.json()["error"].startswith("metric:")
    ok = http.get(console.url + "/api/series?metric=snmp_up&resource=dev-001&range=6h", timeout=10)
    assert ok.status_code == 200 and ok.json()["series"] == []


def test_no_url_password_reaches_a_page(console: Console) -> None:
    page = console.browser().get(console.url + "/platform", timeout=10).text
    assert "poller" in page and "s3cret" not in page and "watcher" not in page


def test_targets_are_filtered_and_paged_on_the_server(console: Console) -> None:
    http = console.browser()
    page = http.get(console.url + "/targets?label=site%3Djeju", timeout=10).text
    assert "40 of 120 targets" in page
    rows = re.findall(r'class="target" data-name="([^"]+)"', page)
    assert len(rows) == 40 and all(int(r[-3:]) % 3 == 1 for r in rows)
    first = http.get(console.url + "/targets", timeout=10).text
    assert len(re.findall(r'class="target" ', first)) == 50 and "page 1 of 3" in first
    last = http.get(console.url + "/targets?page=3", timeout=10).text
    assert re.findall(r'data-name="(dev-\d+)"', last)[-1] == "dev-119"
    assert (
        "No target matches."
        in http.get(console.url + "/targets?q=nothing-like-it", timeout=10).text
    )


def test_a_failing_target_shows_its_reason_from_the_tsdb(
    console: Console, victoria: RunningServer
) -> None:
    now_ms = int(time.time() * 1000)
    _import(victoria, (
        f'snmp_up{{resource="dev-007",target="dev-007"}} 0 {now_ms}\n'
        f'snmp_poll_error{{resource="dev-007",target="dev-007",reason="auth"}} 1 {now_ms}\n'
        f'snmp_up{{resource="dev-008",target="dev-008"}} 1 {now_ms}\n'
    ))  # fmt: skip
    http = console.browser()

    def row(name: str) -> str:
        page = http.get(console.url + f"/targets?q={name}", timeout=10).text
        found = re.search(
            rf'data-name="{name}" data-status="(\w+)".*?class="reason">([^<]*)<', page, re.S
        )
        return f"{found.group(1)} {found.group(2)}".strip() if found else ""

    assert wait_until(lambda: row("dev-007") == "failing auth", 20), row("dev-007")
    assert row("dev-008") == "ok"
    assert row("dev-009") == "unknown"
    detail = http.get(console.url + "/targets/dev-007", timeout=10).text
    assert 'class="reason">auth<' in detail


def test_https_makes_the_cookie_secure(
    kafka: RunningServer, etcd: RunningServer, victoria: RunningServer, tmp_path: Path
) -> None:
    cert, key = self_signed(tmp_path)
    port = free_port()
    env = service_env(
        kafka_bootstrap=kafka.address, etcd_endpoint=etcd.address,
        etcd_prefix=f"/kemi-console-{uuid.uuid4().hex[:8]}/", tsdb_url=f"http://{victoria.address}",
        console_tls_cert_file=str(cert), console_tls_key_file=str(key), http_port=str(port),
    )  # fmt: skip
    log = tmp_path / "console-tls.log"
    proc = subprocess.Popen([sys.executable, "-m", "console"], env=env, stdout=log.open("wb"),
                            stderr=subprocess.STDOUT)  # fmt: skip
    url = f"https://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return requests.get(url + "/healthz", verify=str(cert), timeout=2).status_code == 200
        except requests.RequestException:
            return proc.poll() is None and False

    try:
        assert wait_until(up, 30), log.read_text()
        page = requests.get(url + "/signin", verify=str(cert), timeout=10)
        header = page.headers["Set-Cookie"]
        assert "Secure" in header and "HttpOnly" in header and "SameSite=Strict" in header
        assert page.headers["Strict-Transport-Security"].startswith("max-age=")
        with pytest.raises(requests.exceptions.ConnectionError):
            requests.get(f"http://127.0.0.1:{port}/alerts", timeout=5)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("KEMI_CONSOLE_SERVICES", "poller", "console: KEMI_CONSOLE_SERVICES: "),
        ("KEMI_CONSOLE_TLS_CERT_FILE", "/nonexistent.pem",
         "console: KEMI_CONSOLE_TLS_CERT_FILE is set but KEMI_CONSOLE_TLS_KEY_FILE is not"),
    ],
)  # fmt: skip
def test_a_bad_setting_stops_the_console_with_one_line(
    variable: str, value: str, expected: str, etcd: RunningServer
) -> None:
    env = service_env(etcd_endpoint=etcd.address) | {variable: value}
    done = subprocess.run([sys.executable, "-m", "console"], env=env, capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert done.returncode == 1
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert done.stderr.startswith(expected), done.stderr
