"""etcd with TLS, client certificates and users: the CLI and services connect with the
right settings and fail with one line naming the cause otherwise."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest

from kemi_stats.errors import BackendUnavailable, ConfigError
from kemi_stats.registry.etcd import AuthTokenRefused, EtcdConfig, connect
from kemi_stats.registry.store import Registry
from kemi_stats.stack.process import wait_until
from kemi_stats.stack.servers import ServerCommand, etcd_command, free_ports
from poller.scheduler.leader import LeaderElection
from tests.servers import RunningServer, ServiceProcess
from tests.tls import ThrowawayCA

pytestmark = pytest.mark.integration

PREFIX = "/kemi-sec/"


@dataclass
class SecureEtcd:
    server: RunningServer
    ca: ThrowawayCA
    client_cert: Path
    client_key: Path
    passwords: Path

    @property
    def address(self) -> str:
        return self.server.address

    def config(self, user: str = "", **changes: str) -> EtcdConfig:
        password = (self.passwords / f"{user}.password").read_text().strip() if user else ""
        options = {
            "ca_file": str(self.ca.cert),
            "cert_file": str(self.client_cert),
            "key_file": str(self.client_key),
            "user": user,
            "password": password,
            **changes,
        }
        return EtcdConfig.parse(self.address, **options)

    def env(self, user: str = "kemi-operator", **changes: str) -> dict[str, str]:
        """Settings as a deployment passes them: KEMI_ETCD_* variables."""
        cfg = self.config(user, **changes)
        return {
            **os.environ,
            "KEMI_ETCD_ENDPOINT": self.address,
            "KEMI_ETCD_PREFIX": PREFIX,
            "KEMI_ETCD_CA_FILE": cfg.ca_file,
            "KEMI_ETCD_CERT_FILE": cfg.cert_file,
            "KEMI_ETCD_KEY_FILE": cfg.key_file,
            "KEMI_ETCD_USER": cfg.user,
            "KEMI_ETCD_PASSWORD": cfg.password,
        }


def _tls_etcd_command(tmp: Path, ca: ThrowawayCA) -> ServerCommand:
    port, peer = free_ports(2)
    cert, key = ca.issue("etcd-server")
    plain = etcd_command(tmp / "etcd-data", port, peer)
    client = f"https://127.0.0.1:{port}"
    argv = [a.replace(f"http://127.0.0.1:{port}", client) for a in plain.argv]
    argv += ["--cert-file", str(cert), "--key-file", str(key), "--trusted-ca-file", str(ca.cert),
             "--client-cert-auth"]  # fmt: skip
    return ServerCommand("etcd-tls", argv, plain.address)


def kemi(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kemi_stats.cli", *args],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


@pytest.fixture(scope="module")
def secure_etcd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureEtcd]:
    tmp = tmp_path_factory.mktemp("etcd-tls")
    ca = ThrowawayCA(tmp / "ca")
    client_cert, client_key = ca.issue("kemi-client", client=True)
    server = RunningServer(_tls_etcd_command(tmp, ca), tmp / "etcd.log").start()
    etcd = SecureEtcd(server, ca, client_cert, client_key, tmp / "passwords")
    try:
        setup = kemi(etcd.env(user="") | {"KEMI_ETCD_USER": "", "KEMI_ETCD_PASSWORD": ""},
                     "etcd", "setup-auth", "--passwords-dir", str(etcd.passwords))  # fmt: skip
        assert setup.returncode == 0, setup.stderr
        assert "auth enabled" in setup.stdout
        assert oct((etcd.passwords / "kemi-operator.password").stat().st_mode & 0o777) == "0o600"
        yield etcd
    finally:
        server.stop()


def test_cli_writes_and_reads_over_tls_with_a_user(secure_etcd: SecureEtcd) -> None:
    env = secure_etcd.env()
    added = kemi(env, "credential", "add", "lab", "--community", "public-sec")
    assert added.returncode == 0, added.stderr
    listed = kemi(env, "credential", "list", "-o", "json")
    assert listed.returncode == 0, listed.stderr
    assert '"lab"' in listed.stdout


def test_password_from_a_file_flag(secure_etcd: SecureEtcd) -> None:
    env = secure_etcd.env()
    env.pop("KEMI_ETCD_PASSWORD")
    pw_file = str(secure_etcd.passwords / "kemi-operator.password")
    done = kemi(env, "--etcd-password-file", pw_file, "credential", "list")
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ("wrong-ca", "TLS handshake failed"),
        ("wrong-password", "user 'kemi-operator': authentication failed"),
        ("no-key", "KEMI_ETCD_CERT_FILE and KEMI_ETCD_KEY_FILE go together"),
        ("no-client-cert", "TLS handshake failed"),
        ("no-user", "permission denied for this user (KEMI_ETCD_USER"),
    ],
)
def test_wrong_settings_fail_in_one_line(
    secure_etcd: SecureEtcd, tmp_path: Path, change: str, expected: str
) -> None:
    env = secure_etcd.env()
    if change == "wrong-ca":
        env["KEMI_ETCD_CA_FILE"] = str(ThrowawayCA(tmp_path / "other", "another CA").cert)
    elif change == "wrong-password":
        env["KEMI_ETCD_PASSWORD"] = "not-the-password"
    elif change == "no-key":
        env["KEMI_ETCD_KEY_FILE"] = ""
    elif change == "no-client-cert":
        env["KEMI_ETCD_KEY_FILE"] = env["KEMI_ETCD_CERT_FILE"] = ""
    else:
        env["KEMI_ETCD_USER"] = env["KEMI_ETCD_PASSWORD"] = ""
    done = kemi(env, "credential", "list")
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ") and expected in lines[0], lines[0]
    assert "not-the-password" not in done.stderr


def test_roles_give_each_writer_only_its_keys(secure_etcd: SecureEtcd) -> None:
    service_env = secure_etcd.env(user="kemi-service")
    refused = kemi(service_env, "credential", "add", "sneaky", "--community", "x")
    assert refused.returncode == 1
    assert "permission denied" in refused.stderr
    read = kemi(service_env, "credential", "list")
    assert read.returncode == 0, read.stderr
    # the console's user sets silences and nothing else
    console_env = secure_etcd.env(user="kemi-console")
    silenced = kemi(console_env, "silence", "add", "alertname=device-down", "--duration", "1h")
    assert silenced.returncode == 0, silenced.stderr
    refused = kemi(console_env, "derived", "add", "sneaky", "--expr", "a * 2")
    assert refused.returncode == 1 and "permission denied" in refused.stderr, refused.stderr


def test_scheduler_user_leads_and_a_read_only_user_cannot(secure_etcd: SecureEtcd) -> None:
    key = f"{PREFIX}leader/poller"
    scheduler = LeaderElection(secure_etcd.config("kemi-scheduler"), key, "sched-1", 3).start()
    try:
        assert wait_until(lambda: scheduler.is_leader, 10)
    finally:
        scheduler.stop()
    reader = LeaderElection(secure_etcd.config("kemi-service"), key, "reader", 3).start()
    try:
        assert not wait_until(lambda: reader.is_leader, 2)
    finally:
        reader.stop()


def test_failover_to_the_endpoint_that_answers(secure_etcd: SecureEtcd) -> None:
    dead = f"127.0.0.1:{free_ports(1)[0]}"
    good = secure_etcd.config("kemi-service")
    config = EtcdConfig.parse(
        f"{dead},{secure_etcd.address}",
        ca_file=good.ca_file,
        cert_file=good.cert_file,
        key_file=good.key_file,
        user=good.user,
        password=good.password,
    )
    with Registry(config, PREFIX) as registry:
        # the first calls may land on the dead endpoint; the client moves on
        def reads() -> bool:
            try:
                registry.revision()
                return True
            except BackendUnavailable:
                return False

        assert wait_until(reads, 10)


def test_wrong_password_is_a_config_error(secure_etcd: SecureEtcd) -> None:
    with pytest.raises(ConfigError, match="authentication failed"):
        connect(secure_etcd.config("kemi-operator", password="nope"))


def _scheduler_detail(proc: ServiceProcess) -> str:
    with urllib.request.urlopen(proc.url + "/healthz", timeout=2) as resp:
        checks = orjson.loads(resp.read())["checks"]
    return str(checks.get("scheduler", {}).get("detail", "starting"))


def test_a_service_runs_over_tls_with_its_user_and_sees_live_changes(
    secure_etcd: SecureEtcd, kafka: RunningServer, tmp_path: Path
) -> None:
    env = secure_etcd.env(user="kemi-scheduler") | {"KEMI_KAFKA_BOOTSTRAP": kafka.address}
    proc = ServiceProcess("poller.scheduler", env, tmp_path / "scheduler.log").start()
    try:
        assert wait_until(lambda: _scheduler_detail(proc).startswith("leader;"), 20)
        operator = secure_etcd.env()
        kemi(operator, "profile", "add", "sys", "--scalar", "sysUpTime=1.3.6.1.2.1.1.3")
        added = kemi(operator, "target", "add", "sec-t1", "--host", "127.0.0.1", "--credential",
                     "lab", "--profile", "sys")  # fmt: skip
        assert added.returncode == 0, added.stderr
        assert wait_until(lambda: "1 targets scheduled" in _scheduler_detail(proc), 20), (
            _scheduler_detail(proc)
        )
        assert "registry connected" in _scheduler_detail(proc)
    finally:
        proc.stop()
    assert secure_etcd.env(user="kemi-scheduler")["KEMI_ETCD_PASSWORD"] not in proc.log_tail(100000)


def test_a_refused_token_is_renewed_at_once(secure_etcd: SecureEtcd) -> None:
    """etcd refuses a token it no longer knows (it expired, or etcd restarted and forgot
    its simple tokens): the first refused call says so and asks for a new token, and the
    calls after it go through, long before the 60 s renewal."""
    with Registry(secure_etcd.config("kemi-service"), PREFIX) as registry:
        registry.revision()
        registry.client._use_token("forgotten.by-etcd")  # as after a restart of etcd
        with pytest.raises(AuthTokenRefused, match="the auth token was refused"):
            registry.list("credential")

        def reads() -> bool:
            try:
                registry.list("credential")
                return True
            except BackendUnavailable:
                return False

        assert wait_until(reads, 10)
        secure_etcd.server.restart()  # and the same client reads on after a real restart
        assert wait_until(reads, 15)
