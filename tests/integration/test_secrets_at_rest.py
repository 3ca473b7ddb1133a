"""Registry secrets sealed in etcd under the operator's keyring; rotation while services run."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from demo.receiver import Received, RecordingReceiver
from kemi_stats.codec import encode_alert
from kemi_stats.kafka import make_producer
from kemi_stats.keyring import Keyring
from kemi_stats.model import AlertEvent
from kemi_stats.private_file import write_private
from kemi_stats.registry.live import LiveView
from kemi_stats.registry.store import Registry
from kemi_stats.settings import Settings
from kemi_stats.stack.process import wait_until
from tests.cli import Cli
from tests.integration.alerting_support import running
from tests.servers import RunningServer, ServiceProcess

pytestmark = pytest.mark.integration

COMMUNITY = "community-" + uuid.uuid4().hex[:12]
AUTH_KEY = "authkey-" + uuid.uuid4().hex[:12]
HOOK_SECRET = "hook-secret-" + uuid.uuid4().hex[:16]
NEW_SECRET = "new-hook-secret-" + uuid.uuid4().hex[:16]
HEADER = "Bearer header-" + uuid.uuid4().hex[:12]
ALL = (COMMUNITY, AUTH_KEY, HOOK_SECRET, HEADER)


@pytest.fixture
def keyring_file(tmp_path: Path) -> Path:
    return tmp_path / "keyring.json"


@pytest.fixture
def cli(etcd: RunningServer, etcd_prefix: str, keyring_file: Path) -> Cli:
    return Cli(etcd.address, etcd_prefix, KEMI_SECRETS_KEYRING_FILE=str(keyring_file))


def keyless(etcd: RunningServer, prefix: str, data_dir: Path) -> Cli:
    """The CLI of a user without the keyring: no setting names one, and the data dir
    (where ``kemi-stats up`` would keep one) has none."""
    return Cli(etcd.address, prefix, KEMI_SECRETS_KEYRING_FILE=None, KEMI_SECRETS_KEYRING=None,
               KEMI_DATA_DIR=str(data_dir))  # fmt: skip


def raw_values(etcd: RunningServer, prefix: str) -> str:
    """Everything stored under ``prefix``, read straight from etcd."""
    with Registry(etcd.address, prefix) as reg:
        _, rows = reg.scan(prefix)
    return "\n".join(value.decode() for _, value, _ in rows)


def test_secrets_are_sealed_in_etcd_and_open_with_the_keyring(
    cli: Cli, etcd: RunningServer, etcd_prefix: str, keyring_file: Path, tmp_path: Path
) -> None:
    made = cli("secrets", "keygen", "--id", "first").stdout
    assert "key first added" in made
    assert oct(keyring_file.stat().st_mode & 0o777) == "0o600"
    cli("credential", "add", "v2", "--community", COMMUNITY)
    cli("credential", "add", "v3", "--v3-user", "kemi", "--auth", "SHA", "--auth-key", AUTH_KEY)
    cli("receiver", "add", "hook", "--url", "https://hooks.example/x", "--secret", HOOK_SECRET,
        "--header", f"Authorization={HEADER}")  # fmt: skip
    stored = raw_values(etcd, etcd_prefix)
    assert "$kemi$v1$first$" in stored
    assert not [s for s in ALL if s in stored]
    with Registry(etcd.address, etcd_prefix, keyring=Keyring.load(keyring_file)) as reg:
        assert reg.get("credential", "v2").doc.community == COMMUNITY
        assert reg.get("credential", "v3").doc.auth_key == AUTH_KEY
        hook = reg.get("receiver", "hook").doc
        assert (hook.secret, hook.headers) == (HOOK_SECRET, {"Authorization": HEADER})
    # listing needs no key, and shows none
    listed = keyless(etcd, etcd_prefix, tmp_path)("credential", "list", "-o", "json").stdout
    assert '"v2"' in listed and not [s for s in ALL if s in listed]


def test_writing_a_secret_without_a_keyring_fails_in_one_line(
    etcd: RunningServer, etcd_prefix: str, tmp_path: Path
) -> None:
    done = keyless(etcd, etcd_prefix, tmp_path)(
        "credential", "add", "v2", "--community", COMMUNITY, ok=False
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "error: credential v2: field 'community' is a secret and no keyring is set: set "
        "KEMI_SECRETS_KEYRING_FILE (make one with: kemi-stats secrets keygen)"
    ]


def test_plaintext_from_before_is_read_then_sealed_by_rotate_key(
    cli: Cli, etcd: RunningServer, etcd_prefix: str, keyring_file: Path
) -> None:
    with Registry(etcd.address, etcd_prefix) as reg:
        reg.client.put(f"{etcd_prefix}credentials/old", f'{{"community": "{COMMUNITY}"}}')
    cli("secrets", "keygen", "--id", "k1")
    assert "plaintext: 1 values, not encrypted" in cli("secrets", "status").stdout
    with Registry(etcd.address, etcd_prefix, keyring=Keyring.load(keyring_file)) as reg:
        assert reg.get("credential", "old").doc.community == COMMUNITY
    out = cli("secrets", "rotate-key").stdout
    assert "1 secret values in 1 entries re-encrypted under k1 (1 were not encrypted" in out
    assert COMMUNITY not in raw_values(etcd, etcd_prefix)
    cli("secrets", "keygen", "--id", "k2")
    refused = cli("secrets", "remove-key", "k1", ok=False)
    assert "still seals 1 values" in refused.stderr
    cli("secrets", "rotate-key")
    assert "k1: 0 values" in cli("secrets", "status").stdout
    cli("secrets", "remove-key", "k1")
    with Registry(etcd.address, etcd_prefix, keyring=Keyring.load(keyring_file)) as reg:
        assert reg.get("credential", "old").doc.community == COMMUNITY


def test_a_value_copied_to_another_entry_does_not_open(
    cli: Cli, etcd: RunningServer, etcd_prefix: str, keyring_file: Path
) -> None:
    cli("secrets", "keygen")
    cli("credential", "add", "a", "--community", COMMUNITY)
    with Registry(etcd.address, etcd_prefix) as reg:
        value, _ = reg.client.get(f"{etcd_prefix}credentials/a")
        reg.client.put(f"{etcd_prefix}credentials/b", value)
    with Registry(etcd.address, etcd_prefix, keyring=Keyring.load(keyring_file)) as reg:
        bad: list[str] = []
        names = [e.name for e in reg.list("credential", lambda key, why: bad.append(why))]
    assert names == ["a"]
    assert "credential b: field 'community': sealed value does not open" in bad[0]


# --- rotation under a running notifier ---------------------------------------------


@pytest.fixture
def own_keyring(keyring_file: Path) -> Keyring:
    ring = Keyring.generate("before")
    ring.save(keyring_file)
    return ring


@pytest.fixture
def notifier(
    alerting_env: dict[str, str], keyring_file: Path, own_keyring: Keyring, tmp_path: Path
) -> Iterator[ServiceProcess]:
    env = alerting_env | {"KEMI_SECRETS_KEYRING_FILE": str(keyring_file)}
    yield from running("alerting.notifier", env, tmp_path / "notifier.log")


@pytest.fixture
async def produce(settings: Settings, topics: dict[str, str]) -> AsyncIterator:  # type: ignore[type-arg]
    producer = make_producer(settings)
    await producer.start()

    async def send(event: AlertEvent) -> None:
        await producer.send_and_wait(topics["alerts"], encode_alert(event), key=event.key)

    yield send
    await producer.stop()


def more_than(n: int) -> Callable[[list[Received]], bool]:
    return lambda requests: len(requests) > n


def _alert(receiver: str) -> AlertEvent:
    return AlertEvent(
        fingerprint=uuid.uuid4().hex[:16], rule="cpu-high", status="firing", severity="critical",
        resource_id="host:web-01", metric="cpu_usage_pct", value=95.0, threshold=90.0,
        labels={"alertname": "cpu-high", "resource": "host:web-01"}, annotations={},
        starts_at_ms=1_700_000_000_000, event_time_ms=1_700_000_000_000, receivers=[receiver],
    )  # fmt: skip


async def test_rotation_keeps_a_running_notifier_delivering(
    etcd: RunningServer, etcd_prefix: str, keyring_file: Path, notifier: ServiceProcess, produce
) -> None:  # type: ignore[no-untyped-def]
    cli = Cli(etcd.address, etcd_prefix, KEMI_SECRETS_KEYRING_FILE=str(keyring_file))
    hook = await RecordingReceiver(secret=HOOK_SECRET).start()
    try:
        cli("receiver", "add", "hook", "--url", hook.url, "--secret", HOOK_SECRET,
            "--timeout", "2s", "--backoff-initial", "0.2s")  # fmt: skip
        await produce(_alert("hook"))
        assert await hook.wait_for(lambda rs: len(rs) >= 1, 30), notifier.log_tail()
        cli("secrets", "keygen", "--id", "after")
        cli("secrets", "rotate-key")
        assert "$kemi$v1$after$" in raw_values(etcd, etcd_prefix)
        cli("secrets", "remove-key", "before")
        # a new secret, sealed under the new key alone: signing with it proves the
        # notifier opened it (a view that could not would keep the old secret)
        cli("receiver", "update", "hook", "--secret", NEW_SECRET)
        hook.secret = NEW_SECRET
        deadline = time.monotonic() + 30
        while not any(r.signature_ok for r in hook.requests[1:]):
            assert time.monotonic() < deadline, notifier.log_tail()
            await produce(_alert("hook"))
            await hook.wait_for(more_than(len(hook.requests)), 5)
        assert notifier.proc is not None and notifier.proc.poll() is None
        log = notifier.log_tail(1_000_000)
        assert "skipped" not in log
        assert HOOK_SECRET not in log and NEW_SECRET not in log
    finally:
        await hook.stop()


def test_notifier_without_a_keyring_refuses_to_start(
    alerting_env: dict[str, str], tmp_path: Path
) -> None:
    env = {k: v for k, v in alerting_env.items() if k != "KEMI_SECRETS_KEYRING_FILE"}
    done = subprocess.run(
        [sys.executable, "-m", "alerting.notifier"], env=env, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        "notifier: notifier reads registry secrets and needs the keyring: set "
        "KEMI_SECRETS_KEYRING_FILE (make one with: kemi-stats secrets keygen)"
    )


def test_show_output_fed_back_keeps_the_stored_secret(
    cli: Cli, etcd: RunningServer, etcd_prefix: str, keyring_file: Path, tmp_path: Path
) -> None:
    cli("secrets", "keygen")
    cli("credential", "add", "v2", "--community", COMMUNITY)
    shown = tmp_path / "v2.yaml"
    shown.write_text(cli("credential", "show", "v2", "-o", "yaml").stdout)
    assert COMMUNITY not in shown.read_text() and "********" in shown.read_text()
    cli("credential", "update", "v2", "-f", str(shown))
    with Registry(etcd.address, etcd_prefix, keyring=Keyring.load(keyring_file)) as reg:
        assert reg.get("credential", "v2").doc.community == COMMUNITY
    refused = cli("credential", "add", "v9", "-f", str(shown), ok=False)
    assert refused.returncode == 1
    assert "field 'community' is masked (********" in refused.stderr


def test_a_view_opens_entries_once_its_keyring_file_has_the_new_key(
    etcd: RunningServer, etcd_prefix: str, tmp_path: Path
) -> None:
    """rotate-key may run before a service has the new keyring file; when the file
    arrives, the entries it skipped are read again without a restart."""
    service_file, operator_file = tmp_path / "service.json", tmp_path / "operator.json"
    ring = Keyring.generate("old")
    ring.save(service_file)
    ring.add_key("new")
    ring.save(operator_file)
    view = LiveView(
        Registry(etcd.address, etcd_prefix, keyring=Keyring.load(service_file)), ["credential"]
    ).start()
    try:
        Cli(etcd.address, etcd_prefix, KEMI_SECRETS_KEYRING_FILE=str(operator_file))("credential", "add", "c", "--community",
                                                      COMMUNITY)  # fmt: skip
        assert wait_until(lambda: bool(view.invalid), 10)
        assert "sealed with key 'new'" in next(iter(view.invalid.values()))
        write_private(service_file, operator_file.read_text())
        assert wait_until(lambda: "c" in view.get("credential"), 10)
        assert view.get("credential")["c"].community == COMMUNITY
        assert not view.invalid
    finally:
        view.close()
