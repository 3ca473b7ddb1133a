"""The operator CLI against a real etcd: the documented examples, errors, bulk import, apply/export."""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import pytest

from kemi_stats.registry.store import Registry
from tests.cli import Cli
from tests.servers import RunningServer

pytestmark = pytest.mark.integration


@pytest.fixture
def cli(etcd: RunningServer, etcd_prefix: str) -> Cli:
    return Cli(etcd.address, etcd_prefix)


def _seed(cli: Cli) -> None:
    cli("credential", "add", "lab-v2", "--community", "public")
    cli("credential", "add", "lab-v3", "--v3-user", "kemi", "--auth", "SHA256", "--auth-key",
        "authpass123", "--priv", "AES", "--priv-key", "privpass123")  # fmt: skip
    cli("profile", "add", "system", "--scalar", "sysUpTime=1.3.6.1.2.1.1.3")
    cli("profile", "add", "if-mib", "--scalar", "ifNumber=1.3.6.1.2.1.2.1")


def test_documented_examples_work_as_written(cli: Cli, registry: Registry) -> None:
    _seed(cli)
    cli("target", "add", "core-sw-3", "--host", "127.0.0.3", "--credential", "lab-v3", "--profile",
        "if-mib", "--profile", "system", "--interval", "60s", "--label", "site=pangyo")  # fmt: skip
    token = cli("token", "create", "agents-web", "--resource-prefix", "host:web-").stdout
    assert "secret (shown once" in token
    cli("receiver", "add", "ops-hook", "--url", "https://hooks.example/kemi", "--secret", "S3CRET-0123456789",
        "--timeout", "5s")  # fmt: skip
    cli("rule", "add", "cpu-high", "--metric", "cpu_usage_pct", "--match", "site=pangyo", "--above",
        "90", "--for", "2m", "--clear-below", "80", "--clear-for", "1m", "--severity", "critical",
        "--receiver", "ops-hook")  # fmt: skip
    cli("rule", "add", "sw-silent", "--metric", "snmp_up", "--match", "resource=~net:.*", "--below",
        "1", "--no-data", "3m", "--severity", "warning", "--receiver", "ops-hook")  # fmt: skip
    cli(
        "silence",
        "add",
        "--match",
        "resource=host:web-01",
        "--duration",
        "2h",
        "--reason",
        "disk swap",
    )
    cli("derived", "add", "if_in_bps", "--expr", "rate(ifHCInOctets) * 8")
    cli("derived", "add", "cpu_load_5m", "--expr", "avg(hrProcessorLoad)", "--window", "5m")

    target = registry.get("target", "core-sw-3").doc
    assert (target.host, target.credential, target.profiles, target.interval, target.labels) == (
        "127.0.0.3", "lab-v3", ["if-mib", "system"], 60.0, {"site": "pangyo"})  # fmt: skip
    rule = registry.get("rule", "cpu-high").doc
    assert (str(rule.condition), rule.for_, str(rule.clear), rule.clear_for) == (
        "> 90",
        120,
        "< 80",
        60,
    )
    assert len(registry.get("token", "agents-web").doc.hash) == 64

    # secrets never come back
    shown = (
        cli("credential", "list", "-o", "json").stdout + cli("receiver", "show", "ops-hook").stdout
    )
    shown += cli("token", "show", "agents-web", "-o", "json").stdout
    for secret in (
        "public",
        "authpass123",
        "privpass123",
        "S3CRET-0123456789",
        token.split(": ")[-1].strip(),
    ):
        assert secret not in shown
    assert "core-sw-3" in cli("target", "list").stdout

    cli("target", "update", "core-sw-3", "--interval", "30s")
    assert registry.get("target", "core-sw-3").doc.interval == 30
    cli("target", "remove", "core-sw-3")
    assert not registry.exists("target", "core-sw-3")


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["target", "add", "t", "--host", "300.1.1.1", "--credential", "lab-v2", "--profile", "system"], "field 'host'"),
        (["target", "add", "t", "--host", "127.0.0.1", "--port", "70000", "--credential", "lab-v2", "--profile", "system"], "field 'port'"),
        (["target", "add", "t", "--host", "127.0.0.1", "--credential", "nope", "--profile", "system"], "credential 'nope' does not exist"),
        (["target", "add", "t", "--host", "127.0.0.1", "--credential", "lab-v2", "--profile", "nope"], "profile 'nope' does not exist"),
        (["target", "add", "t", "--host", "127.0.0.1", "--credential", "lab-v2", "--profile", "system", "--interval", "5x"], "'5x' is not a duration"),
        (["profile", "add", "p", "--scalar", "x=1.3.x"], "is not an OID"),
        (["rule", "add", "r", "--metric", "cpu", "--above", "ninety"], "'--above': 'ninety' is not a valid float"),
        (["credential", "add", "lab-v2", "--community", "x"], "already exists"),
        (["target", "add", "--bogus"], "No such option: --bogus"),
        (["derived", "add", "d", "--expr", "1 +"], "does not parse"),
        (["derived", "add", "d", "--expr", '__import__("os")'], "unknown function __import__()"),
        (["derived", "add", "d", "--expr", "x.__class__"], "attribute access is not allowed"),
        (["credential", "add", "c", "--v3-user", "u", "--auth", "SHA", "--auth-key", "short"], "credential c: auth_key must be at least 8 characters"),
    ],
)  # fmt: skip
def test_errors_are_one_line_and_write_nothing(
    cli: Cli, registry: Registry, args: list[str], needle: str
) -> None:
    _seed(cli)
    before = registry.scan(registry.prefix)[1]
    proc = cli(*args, ok=False)
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert registry.scan(registry.prefix)[1] == before


def test_etcd_unreachable_is_one_line(etcd_prefix: str) -> None:
    proc = Cli("127.0.0.1:9", etcd_prefix)("target", "list", ok=False)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()]
    assert "etcd 127.0.0.1:9" in proc.stderr and "unreachable" in proc.stderr


def _write_csv(path: Path, n: int, bad_row: int | None = None) -> None:
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["name", "host", "credential", "profiles", "interval", "labels"])
        for i in range(n):
            host = "127.0.0.999" if i == bad_row else f"127.0.{i // 250}.{i % 250 + 1}"
            w.writerow([f"dev-{i:05d}", host, "lab-v2", "system;if-mib", "60s", f"site=s{i % 5}"])


def test_import_10k_targets_all_or_nothing(cli: Cli, registry: Registry, tmp_path: Path) -> None:
    _seed(cli)
    bad = tmp_path / "bad.csv"
    _write_csv(bad, 10_000, bad_row=7_000)
    proc = cli("target", "import", str(bad), ok=False)
    assert proc.returncode == 1 and "line 7002" in proc.stderr and "dev-07000" in proc.stderr
    assert registry.list("target") == []

    good = tmp_path / "good.csv"
    _write_csv(good, 10_000)
    started = time.monotonic()
    cli("target", "import", str(good))
    elapsed = time.monotonic() - started
    assert len(registry.list("target")) == 10_000
    assert elapsed < 20, f"import took {elapsed:.1f} s"


def test_export_then_apply_dry_run_reports_no_difference(
    cli: Cli, registry: Registry, tmp_path: Path
) -> None:
    _seed(cli)
    cli(
        "target",
        "add",
        "sw1",
        "--host",
        "127.0.0.3",
        "--credential",
        "lab-v3",
        "--profile",
        "system",
    )
    cli(
        "receiver",
        "add",
        "hook",
        "--url",
        "http://127.0.0.1:9/x",
        "--secret",
        "s3-secret-0123456789",
    )
    out = tmp_path / "reg"
    cli("export", str(out))
    assert "no difference" in cli("apply", "-f", str(out), "--dry-run").stdout
    assert "s3-secret-0123456789" not in (out / "receivers.yaml").read_text()

    text = (out / "targets.yaml").read_text().replace("127.0.0.3", "127.0.0.4")
    (out / "targets.yaml").write_text(text)
    (out / "receivers.yaml").write_text("receivers: {}\n")
    dry = cli("apply", "-f", str(out), "--dry-run", "--prune").stdout
    assert "~ target sw1: host" in dry and "- receiver hook" in dry
    assert registry.get("target", "sw1").doc.host == "127.0.0.3"
    cli("apply", "-f", str(out), "--prune")
    assert registry.get("target", "sw1").doc.host == "127.0.0.4"
    assert not registry.exists("receiver", "hook")
    # the stored secret survived the masked export round trip
    assert registry.get("credential", "lab-v3").doc.auth_key == "authpass123"


def test_csv_row_with_more_fields_than_the_header_is_refused(
    cli: Cli, registry: Registry, tmp_path: Path
) -> None:
    _seed(cli)
    path = tmp_path / "extra.csv"
    path.write_text(
        "name,host,credential,profiles\n"
        "ok-1,127.0.0.21,lab-v2,system\n"
        "bad-2,127.0.0.22,lab-v2,system,surplus\n"
    )
    proc = cli("target", "import", str(path), ok=False)
    assert proc.returncode == 1
    assert proc.stderr.strip() == "error: extra.csv line 3: 5 fields, the header has 4"
    assert registry.list("target") == []


def test_show_output_is_accepted_by_add(cli: Cli, registry: Registry, tmp_path: Path) -> None:
    _seed(cli)
    shown = tmp_path / "system.yaml"
    shown.write_text(cli("profile", "show", "system", "-o", "yaml").stdout)
    cli("profile", "add", "system-copy", "-f", str(shown))
    assert registry.get("profile", "system-copy").doc == registry.get("profile", "system").doc


def test_receiver_headers_are_masked_and_kept_by_apply(
    cli: Cli, registry: Registry, tmp_path: Path
) -> None:
    cli("receiver", "add", "hdr", "--url", "https://hooks.example/x", "--secret", "S3CRET-0123456789",
        "--header", "Authorization=Bearer TOPSECRET")  # fmt: skip
    for output in ("table", "json", "yaml"):
        assert "TOPSECRET" not in cli("receiver", "show", "hdr", "-o", output).stdout
        assert "TOPSECRET" not in cli("receiver", "list", "-o", output).stdout
    cli("export", str(tmp_path / "reg"))
    exported = "".join(p.read_text() for p in (tmp_path / "reg").iterdir())
    assert "TOPSECRET" not in exported and "S3CRET-0123456789" not in exported
    assert "no difference" in cli("apply", "-f", str(tmp_path / "reg"), "--dry-run").stdout
    cli("apply", "-f", str(tmp_path / "reg"))
    assert registry.get("receiver", "hdr").doc.headers == {"Authorization": "Bearer TOPSECRET"}


def test_a_long_list_streams_in_name_order_from_one_revision(
    cli: Cli, registry: Registry, tmp_path: Path
) -> None:
    _seed(cli)
    targets = tmp_path / "targets.csv"
    _write_csv(targets, 1_600)  # four pages of etcd reads
    cli("target", "import", str(targets))
    names = [f"dev-{i:05d}" for i in range(1_600)]

    listed = cli("target", "list", "-o", "json").stdout
    assert list(json.loads(listed)) == names
    rows = list(
        csv.reader(cli("target", "list", "--label", "site=s1", "-o", "csv").stdout.splitlines())
    )
    assert [r[0] for r in rows[1:]] == names[1::5]

    # what changes while a list is being read is not in it: every page is read at the first's revision
    entries = registry.iter_entries("target")
    first = next(entries)
    registry.delete("target", names[-1])
    registry.put("target", "dev-99999", first.doc)
    assert [first.name, *(e.name for e in entries)] == names
    assert [e.name for e in registry.iter_entries("target")][-2:] == [names[-2], "dev-99999"]
