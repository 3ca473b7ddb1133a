"""The operator's toolbox against a real etcd: filters, bulk changes and their confirmation,
one ``-o`` everywhere, config-file contexts, and secrets kept out of argv."""

from __future__ import annotations

import csv
import io
import os
import pty
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
import yaml

from kemi_stats.errors import ConflictError
from kemi_stats.registry.builtin import load_builtin_profiles
from kemi_stats.registry.models import Credential, Target
from kemi_stats.registry.store import Registry
from tests.cli import Cli
from tests.servers import RunningServer

pytestmark = pytest.mark.integration


@pytest.fixture
def cli(etcd: RunningServer, etcd_prefix: str) -> Cli:
    return Cli(etcd.address, etcd_prefix)


def _fleet(registry: Registry, count: int = 30) -> None:
    """``count`` targets over three sites, two profiles and two credentials."""
    for name, profile in load_builtin_profiles().items():
        registry.put("profile", name, profile)
    registry.put("credential", "lab", Credential(version="2c", community="public"))
    registry.put("credential", "core", Credential(version="2c", community="core-secret"))
    docs = []
    for i in range(count):
        site = ("pangyo", "seoul", "busan")[i % 3]
        docs.append(
            (
                "target",
                f"sw-{i:03d}",
                Target(
                    host=f"127.0.1.{i % 250 + 1}",
                    credential="core" if i % 5 == 0 else "lab",
                    profiles=["if-mib"] if i % 2 else ["if-mib", "system"],
                    labels={"site": site, "rack": f"r{i % 4}"},
                    enabled=i % 7 != 0,
                ),
            )
        )
    registry.write_many(docs)


def _names(out: str) -> set[str]:
    return set(orjson.loads(out))


def test_list_filters_select_what_they_say(cli: Cli, registry: Registry) -> None:
    _fleet(registry)
    pangyo = _names(cli("target", "list", "--label", "site=pangyo", "-o", "json").stdout)
    assert pangyo == {f"sw-{i:03d}" for i in range(30) if i % 3 == 0}
    # --match means what it means in rules and silences: regexes anchored, ANDed
    matched = cli("target", "list", "--match", "site=~pan.*|bus.*", "--match", "rack!=r0",
                  "-o", "json").stdout  # fmt: skip
    assert _names(matched) == {f"sw-{i:03d}" for i in range(30) if i % 3 in (0, 2) and i % 4 != 0}
    # fields are labels too: host, interval, name ...
    assert _names(cli("target", "list", "--match", "name=~sw-00[0-2]", "-o", "json").stdout) == {
        "sw-000", "sw-001", "sw-002"}  # fmt: skip
    assert _names(cli("target", "list", "--profile", "system", "-o", "json").stdout) == {
        f"sw-{i:03d}" for i in range(30) if i % 2 == 0
    }
    assert _names(
        cli("target", "list", "--credential", "core", "--disabled", "-o", "json").stdout
    ) == {f"sw-{i:03d}" for i in range(30) if i % 5 == 0 and i % 7 == 0}
    # other kinds filter on their fields
    assert _names(cli("credential", "list", "--match", "version=2c", "-o", "json").stdout) == {
        "lab", "core"}  # fmt: skip
    bad = cli("target", "list", "--match", "site=~(", ok=False)
    assert bad.returncode == 2
    assert "--match" in bad.stderr and "bad regular expression" in bad.stderr


def test_bulk_update_and_remove_count_and_need_confirmation(cli: Cli, registry: Registry) -> None:
    _fleet(registry)
    refused = cli("target", "update", "--match", "site=seoul", "--set", "interval=30s", ok=False)
    assert refused.returncode == 1
    assert "update 10 targets matching site=seoul" in refused.stderr and "--yes" in refused.stderr
    assert all(e.doc.interval == 60 for e in registry.list("target"))

    done = cli("target", "update", "--match", "site=seoul", "--set", "interval=30s",
               "--set", "labels.tier=edge", "--yes")  # fmt: skip
    assert done.stdout.strip() == "10 targets updated"
    for e in registry.list("target"):
        seoul = e.doc.labels["site"] == "seoul"
        assert (e.doc.interval, e.doc.labels.get("tier")) == (
            (30.0, "edge") if seoul else (60.0, None)
        )

    # a bad value is refused for all before any is written
    bad = cli(
        "target", "update", "--match", "site=pangyo", "--set", "interval=soon", "-y", ok=False
    )
    assert bad.returncode == 1 and "interval" in bad.stderr
    assert {
        e.doc.interval for e in registry.list("target") if e.doc.labels["site"] == "pangyo"
    } == {60.0}
    unknown = cli(
        "target", "update", "--match", "site=pangyo", "--set", "colour=red", "-y", ok=False
    )
    assert unknown.returncode == 2 and "no field 'colour'" in unknown.stderr

    assert cli("target", "remove", "--match", "site=busan", ok=False).returncode == 1
    removed = cli("target", "remove", "--match", "site=busan", "--yes")
    assert removed.stdout.strip() == "10 targets removed"
    assert len(registry.list("target")) == 20
    none = cli("target", "remove", "--match", "site=busan", "--yes", ok=False)
    assert none.returncode == 1 and "no target matches site=busan" in none.stderr
    both = cli("target", "remove", "sw-000", "--match", "site=pangyo", ok=False)
    assert both.returncode == 2 and "not both" in both.stderr


def _on_terminal(cli: Cli, args: list[str], answer: bytes) -> tuple[int, str]:
    """Run the CLI with a pseudo-terminal for stdin and stderr, answering its question."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "kemi_stats.cli", *args],
        env=cli.env, stdin=slave, stdout=subprocess.PIPE, stderr=slave,
    )  # fmt: skip
    os.close(slave)
    seen = b""
    while b"[y/N]" not in seen:
        chunk = os.read(master, 1024)
        assert chunk, seen
        seen += chunk
    os.write(master, answer)
    out, _ = proc.communicate(timeout=60)
    try:
        while chunk := os.read(master, 1024):
            seen += chunk
    except OSError:
        pass  # the terminal closed with the process
    os.close(master)
    return proc.returncode, seen.decode() + out.decode()


def test_remove_asks_on_a_terminal(cli: Cli, registry: Registry) -> None:
    _fleet(registry, 3)
    code, text = _on_terminal(cli, ["target", "remove", "sw-001"], b"n\n")
    assert code == 1 and "remove target sw-001?" in text and "aborted" in text
    assert registry.exists("target", "sw-001")
    code, text = _on_terminal(cli, ["target", "remove", "sw-001"], b"y\n")
    assert code == 0 and "target sw-001 removed" in text
    assert not registry.exists("target", "sw-001")
    # off a terminal a single remove goes on, as scripts expect; --yes never asks
    cli("target", "remove", "sw-002", "--yes")
    assert not registry.exists("target", "sw-002")


def test_apply_prune_asks_and_dry_run_exit_code(
    cli: Cli, registry: Registry, tmp_path: Path
) -> None:
    _fleet(registry, 3)
    cli("export", str(tmp_path / "reg"))
    same = cli("apply", "-f", str(tmp_path / "reg"), "--dry-run", "--exit-code")
    assert "no difference" in same.stdout
    (tmp_path / "reg" / "targets.yaml").write_text(
        (tmp_path / "reg" / "targets.yaml").read_text().replace("r1", "r9")
    )
    changed = cli("apply", "-f", str(tmp_path / "reg"), "--dry-run", "--exit-code", ok=False)
    assert changed.returncode == 1 and "1 to change" in changed.stdout
    assert cli("apply", "-f", str(tmp_path / "reg"), "--dry-run").returncode == 0
    assert cli("apply", "-f", str(tmp_path / "reg"), "--exit-code", ok=False).returncode == 2

    data = yaml.safe_load((tmp_path / "reg" / "targets.yaml").read_text())
    data["targets"].pop("sw-002")
    (tmp_path / "reg" / "targets.yaml").write_text(yaml.safe_dump(data))
    code, text = _on_terminal(cli, ["apply", "-f", str(tmp_path / "reg"), "--prune"], b"n\n")
    assert code == 1 and "remove 1 entries" in text
    assert registry.exists("target", "sw-002")
    cli("apply", "-f", str(tmp_path / "reg"), "--prune", "--yes")
    assert not registry.exists("target", "sw-002")


def test_one_output_option_everywhere(cli: Cli, registry: Registry) -> None:
    _fleet(registry, 6)
    as_json = orjson.loads(cli("target", "list", "-o", "json").stdout)
    as_yaml = yaml.safe_load(cli("target", "list", "-o", "yaml").stdout)
    assert as_json == as_yaml and len(as_json) == 6
    rows = list(csv.DictReader(io.StringIO(cli("target", "list", "-o", "csv").stdout)))
    assert [r["name"] for r in rows] == sorted(as_json)
    assert rows[0]["labels"] == "site=pangyo,rack=r0"
    assert yaml.safe_load(cli("target", "show", "sw-001", "-o", "yaml").stdout)["sw-001"]["host"]
    assert orjson.loads(cli("config", "get-contexts", "-o", "json").stdout) == {
        "current-context": None, "contexts": {}}  # fmt: skip
    for command in (
        ["target", "list"], ["credential", "list"], ["silence", "list"], ["alerts"],
        ["alerts", "history"], ["silence", "query"], ["topics", "list"], ["query"],
        ["status"], ["target", "test"], ["target", "walk"], ["config", "get-contexts"],
        ["services"],
    ):  # fmt: skip
        help_text = cli(*command, "--help").stdout
        assert "-o, --output [table|json|yaml" in help_text, command
    assert "-o, --output [json|yaml]" in cli("tail", "--help").stdout


def test_contexts_switch_every_command_between_registries(
    etcd: RunningServer, tmp_path: Path
) -> None:
    config = tmp_path / "config.yaml"
    cli = Cli(etcd.address, "/unused/", KEMI_CONFIG=str(config), KEMI_ETCD_PREFIX=None,
              KEMI_ETCD_ENDPOINT=None)  # fmt: skip
    cli.env["KEMI_CONFIG"] = str(config)
    cli("config", "set-context", "staging", f"etcd_endpoint={etcd.address}",
        "etcd-prefix=/ctx-staging/")  # fmt: skip
    cli("config", "set-context", "production", f"etcd_endpoint={etcd.address}",
        "etcd_prefix=/ctx-production/")  # fmt: skip
    assert config.stat().st_mode & 0o777 == 0o600
    assert cli("config", "current-context").stdout.strip() == "staging"  # the first one made
    cli("credential", "add", "c1", "--community", "public")
    cli("profile", "import", "--builtin")
    cli("target", "add", "only-in-staging", "--host", "127.0.0.1", "--credential", "c1",
        "--profile", "system")  # fmt: skip
    cli("config", "use-context", "production")
    assert cli("target", "list", "-o", "json").stdout.strip() == "{}"
    assert "only-in-staging" in cli("target", "list", "--context", "staging").stdout
    assert "only-in-staging" in cli("--context", "staging", "target", "list").stdout
    # a KEMI_* variable overrides the context, a flag overrides both
    cli.env["KEMI_ETCD_PREFIX"] = "/ctx-staging/"
    assert "only-in-staging" in cli("target", "list").stdout
    assert (
        cli("--prefix", "/ctx-production/", "target", "list", "-o", "json").stdout.strip() == "{}"
    )
    del cli.env["KEMI_ETCD_PREFIX"]
    marked = [line.split() for line in cli("config", "get-contexts").stdout.splitlines()[1:]]
    assert [row[:2] for row in marked if row[0] == "*"] == [["*", "production"]]
    contexts = orjson.loads(cli("config", "get-contexts", "-o", "json").stdout)
    assert contexts["current-context"] == "production"
    assert contexts["contexts"]["staging"]["etcd_prefix"] == "/ctx-staging/"
    missing = cli("target", "list", "--context", "qa", ok=False)
    assert missing.returncode == 1
    assert missing.stderr.strip() == (
        f"error: context 'qa' is not in {config} (contexts: production, staging)"
    )
    secret = cli("config", "set-context", "qa", "etcd_password=hunter2", ok=False)
    assert secret.returncode == 1 and "hunter2" not in secret.stderr
    assert "etcd_password_file" in secret.stderr


def test_secrets_from_stdin_file_and_environment(
    cli: Cli, registry: Registry, tmp_path: Path
) -> None:
    key_file = tmp_path / "priv"
    key_file.write_text("privpass-from-file\n")
    cli.env["SNMP_AUTH"] = "authpass-from-env"
    cli("credential", "add", "v3", "--v3-user", "kemi", "--auth", "SHA", "--auth-key",
        "env:SNMP_AUTH", "--priv", "AES", "--priv-key", f"file:{key_file}")  # fmt: skip
    doc = registry.get("credential", "v3").doc
    assert (doc.auth_key, doc.priv_key) == ("authpass-from-env", "privpass-from-file")
    cli("credential", "update", "v3", "--auth-key", "-", input="authpass-from-stdin\n")
    assert registry.get("credential", "v3").doc.auth_key == "authpass-from-stdin"
    cli("receiver", "add", "hook", "--url", "http://127.0.0.1:9/hook", "--secret", "-",
        input="a-signing-secret-of-32-bytes-long\n")  # fmt: skip
    assert registry.get("receiver", "hook").doc.secret == "a-signing-secret-of-32-bytes-long"
    empty = cli("credential", "update", "v3", "--priv-key", "-", ok=False)
    assert empty.returncode == 2 and "--priv-key" in empty.stderr and "empty" in empty.stderr
    unset = cli("credential", "update", "v3", "--priv-key", "env:NOPE_NOT_SET", ok=False)
    assert unset.returncode == 2 and "NOPE_NOT_SET is not set" in unset.stderr


def test_bulk_writes_are_all_or_nothing_over_what_was_read(registry: Registry) -> None:
    _fleet(registry, 4)
    read = {e.name: e for e in registry.list("target")}
    # someone changes sw-002 between the read and the write (while the question is asked)
    registry.update("target", "sw-002", read["sw-002"].doc.model_copy(update={"port": 1161}))
    changed = [("target", n, e.doc.model_copy(update={"retries": 5})) for n, e in read.items()]
    with pytest.raises(ConflictError, match="sw-002 changed since it was read"):
        registry.write_many(
            changed, unchanged_since={("target", n): e.mod_revision for n, e in read.items()}
        )
    after = {e.name: e.doc for e in registry.list("target")}
    assert {d.retries for d in after.values()} == {1}  # nothing written
    assert after["sw-002"].port == 1161  # and the other change kept


def test_a_broken_context_never_locks_the_config_commands(
    etcd: RunningServer, tmp_path: Path
) -> None:
    config = tmp_path / "config.yaml"
    cli = Cli(etcd.address, "/broken-ctx/", KEMI_CONFIG=str(config))
    cli("config", "set-context", "broken", f"etcd_endpoint={etcd.address}",
        f"etcd_password_file={tmp_path / 'gone'}")  # fmt: skip
    cli("config", "set-context", "good", f"etcd_endpoint={etcd.address}")
    assert cli("config", "current-context").stdout.strip() == "broken"
    # the config commands and the local stack's read no context; others warn and go on
    cli("config", "use-context", "good")
    cli("config", "use-context", "broken")
    listed = cli("credential", "list")
    assert f"etcd_password_file {tmp_path / 'gone'}: No such file or directory" in listed.stderr
    status = cli("status", "--data-dir", str(tmp_path / "no-stack"), ok=False)
    assert "warning" not in status.stderr and "no stack in" in status.stderr
    assert "--context" not in cli("status", "--help").stdout


def test_apply_exit_code_tells_a_difference_from_trouble(
    cli: Cli, registry: Registry, tmp_path: Path
) -> None:
    _fleet(registry, 2)
    cli("export", str(tmp_path / "reg"))
    (tmp_path / "reg" / "targets.yaml").write_text("targets: [1, 2\n")
    broken = cli("apply", "-f", str(tmp_path / "reg"), "--dry-run", "--exit-code", ok=False)
    assert broken.returncode == 2 and broken.stderr.startswith("error: ")


def test_target_test_never_prints_a_scrape_urls_secrets(cli: Cli) -> None:
    url = "http://bob:S3CRETPW@127.0.0.1:9/metrics?token=QSECRET"
    failed = cli("target", "test", "--scrape-url", url, "--deadline", "2s", ok=False)
    assert failed.returncode == 1 and "connection" in failed.stderr
    assert "S3CRETPW" not in failed.stderr and "QSECRET" not in failed.stderr


def test_profile_names_resolve_through_mibs_when_written(
    cli: Cli, registry: Registry, tmp_path: Path
) -> None:
    cli.env["KEMI_DATA_DIR"] = str(tmp_path / "data")
    # names the registry does not know offline: only UCD-SNMP-MIB's file defines them
    cli("profile", "add", "ucd-named", "--mib", "UCD-SNMP-MIB",
        "--scalar", "memShared=UCD-SNMP-MIB::memShared",
        "--scalar", "ssCpuRawKernel=ssCpuRawKernel.0:counter")  # fmt: skip
    doc = registry.get("profile", "ucd-named").doc
    assert [(s.name, s.oid, s.type) for s in doc.scalars] == [
        ("memShared", "1.3.6.1.4.1.2021.4.13", "gauge"),
        ("ssCpuRawKernel", "1.3.6.1.4.1.2021.11.55.0", "counter"),
    ]
    (tmp_path / "table.yaml").write_text(
        "tables:\n  - name: dskTable\n    index_label: dskIndex\n"
        "    columns: [{name: dskTotal, oid: 'UCD-SNMP-MIB::dskTotal'}]\n"
        "    lookups: [{label: dskPath, oid: dskPath}]\n"
    )
    cli(
        "profile",
        "update",
        "ucd-named",
        "-f",
        str(tmp_path / "table.yaml"),
        "--mib",
        "UCD-SNMP-MIB",
    )
    table = registry.get("profile", "ucd-named").doc.tables[0]
    assert (table.columns[0].oid, table.lookups[0].oid) == (
        "1.3.6.1.4.1.2021.9.1.6", "1.3.6.1.4.1.2021.9.1.2")  # fmt: skip
    # without the MIB the name is unknown: one line naming it, nothing written
    unknown = cli("profile", "add", "nope", "--scalar", "m=UCD-SNMP-MIB::dskTotal", ok=False)
    assert unknown.returncode == 1 and "dskTotal" in unknown.stderr
    assert not registry.exists("profile", "nope")
