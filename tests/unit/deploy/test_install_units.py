"""scripts/install: the distro units the apt install started are stopped, the user's are not.

The script runs as it is, copied into a temporary checkout, with fake ``dpkg-query``,
``apt-get``, ``systemctl``, ``sudo`` and ``.venv/bin/python`` first on PATH. The fakes keep
a small machine in a state directory: installed packages, active units. Like Debian's
postinst scripts, the fake ``apt-get install`` starts etcd and victoria-metrics. Every
fake logs its command line, so the tests assert what the user reads and what was run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
APT_PACKAGES = ["etcd-server", "victoria-metrics", "snmpd", "snmp", "libsnmp-base", "python3-venv"]

FAKES = {
    "dpkg-query": """
pkg="${@: -1}"
[ -e "$FAKE_STATE/installed/$pkg" ] || { echo "dpkg-query: no packages found matching $pkg" >&2; exit 1; }
printf 'install ok installed'
""",
    "apt-get": """
[ "${1-}" = update ] && exit 0
shift  # install
for arg; do
  case "$arg" in -*) continue ;; esac
  touch "$FAKE_STATE/installed/$arg"
  # Debian's postinst starts the service
  case "$arg" in
    etcd-server) touch "$FAKE_STATE/active/etcd" ;;
    victoria-metrics) touch "$FAKE_STATE/active/victoria-metrics" ;;
  esac
done
""",
    "systemctl": """
unit="${@: -1}"
case "$1" in
  is-active) [ -e "$FAKE_STATE/active/$unit" ] ;;
  disable) rm -f "$FAKE_STATE/active/$unit" ;;
  *) exit 1 ;;
esac
""",
    "sudo": 'exec "$@"\n',
}
FAKE_PYTHON = """
case "$1" in
  -c) [ ! -e "$FAKE_STATE/venv-broken" ] ;;
  -m) shift; echo "pip $*" >>"$FAKE_STATE/log" ;;
esac
"""


@dataclass
class Run:
    lines: list[str]  # stdout, then stderr
    calls: list[str]  # every command a fake ran, in order

    def ran(self, command: str) -> list[str]:
        """The calls of one command (``apt-get``, ``systemctl``, ``pip``)."""
        return [c for c in self.calls if c.split()[0] == command]


@dataclass
class Machine:
    root: Path

    @property
    def state(self) -> Path:
        return self.root / "state"

    def installed(self, *packages: str) -> None:
        for pkg in packages:
            (self.state / "installed" / pkg).touch()

    def running(self, *units: str) -> None:
        for unit in units:
            (self.state / "active" / unit).touch()

    def active(self) -> set[str]:
        return {p.name for p in (self.state / "active").iterdir()}

    def install(self, *args: str, systemd: bool = True, python: bool = False) -> Run:
        log = self.state / "log"
        log.write_text("")
        env = {
            "PATH": f"{self.root / 'bin'}:{os.environ['PATH']}",
            "HOME": str(self.root),
            "FAKE_STATE": str(self.state),
            "KEMI_SYSTEMD_DIR": str(self.root / ("systemd" if systemd else "no-systemd")),
            **({} if python else {"KEMI_INSTALL_SKIP_PYTHON": "1"}),
        }
        proc = subprocess.run(
            ["bash", str(self.root / "repo" / "scripts" / "install"), *args],
            env=env, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return Run((proc.stdout + proc.stderr).splitlines(), log.read_text().splitlines())


@pytest.fixture
def machine(tmp_path: Path) -> Machine:
    for d in ("bin", "systemd", "state/installed", "state/active", "repo/scripts"):
        (tmp_path / d).mkdir(parents=True)
    for name, body in FAKES.items():
        # each fake logs its own command line first
        write_script(tmp_path / "bin" / name, f'echo "{name} $*" >>"$FAKE_STATE/log"\n{body}')
    shutil.copy(REPO / "scripts" / "install", tmp_path / "repo" / "scripts" / "install")
    return Machine(tmp_path)


def write_script(path: Path, body: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/usr/bin/env bash\nset -u\n" + body)
    path.chmod(0o755)


def stopping(unit: str) -> str:
    return (
        f"install: stopping and disabling the distro's {unit} unit (kemi-stats up starts its own)"
    )


# --- the distro units ---------------------------------------------------------------


def test_units_the_install_started_are_stopped_and_disabled(machine: Machine) -> None:
    run = machine.install()
    assert run.lines == [
        "install: apt packages " + " ".join(APT_PACKAGES),
        stopping("etcd"),
        stopping("victoria-metrics"),
        "install: done (apt only: KEMI_INSTALL_SKIP_PYTHON=1)",
    ]
    assert [c for c in run.ran("systemctl") if "disable" in c] == [
        "systemctl disable --now etcd",
        "systemctl disable --now victoria-metrics",
    ]
    assert machine.active() == set()


def test_a_unit_running_before_the_install_is_left_running(machine: Machine) -> None:
    machine.running("etcd")
    run = machine.install()
    assert "install: leaving the etcd unit running (it was running before this install)" in (
        run.lines
    )
    assert stopping("etcd") not in run.lines
    assert stopping("victoria-metrics") in run.lines
    assert [c for c in run.ran("systemctl") if "disable" in c] == [
        "systemctl disable --now victoria-metrics"
    ]
    assert machine.active() == {"etcd"}


def test_without_systemd_no_unit_is_touched(machine: Machine) -> None:
    run = machine.install(systemd=False)
    assert run.ran("apt-get")[-1].startswith("apt-get install")
    assert run.ran("systemctl") == []
    assert not [line for line in run.lines if "unit" in line]


def test_packages_already_installed_touch_nothing(machine: Machine) -> None:
    machine.installed(*APT_PACKAGES)
    machine.running("etcd", "victoria-metrics")
    run = machine.install()
    assert run.lines == ["install: done (apt only: KEMI_INSTALL_SKIP_PYTHON=1)"]
    assert run.ran("apt-get") == []
    assert run.ran("systemctl") == []
    assert machine.active() == {"etcd", "victoria-metrics"}


# --- the extras into .venv ----------------------------------------------------------


@pytest.fixture
def checkout(machine: Machine) -> Machine:
    """All apt packages there, a .venv whose python is the fake, an old setup.cfg."""
    machine.installed(*APT_PACKAGES)
    write_script(machine.root / "repo" / ".venv" / "bin" / "python", FAKE_PYTHON)
    setup_cfg = machine.root / "repo" / "setup.cfg"
    setup_cfg.write_text("[metadata]\nname = kemi-stats\n")
    os.utime(setup_cfg, (time.time() - 3600, time.time() - 3600))
    return machine


def test_up_then_test_installs_the_test_extra_once(checkout: Machine) -> None:
    up = checkout.install("local", python=True)
    assert "install: pip install -e '.[local]' into .venv" in up.lines
    assert up.ran("pip") == ["pip pip install -q --disable-pip-version-check -e .[local]"]
    assert checkout.install("local", python=True).ran("pip") == []

    test = checkout.install("test,local", python=True)
    assert "install: pip install -e '.[test,local]' into .venv" in test.lines
    assert test.ran("pip") == ["pip pip install -q --disable-pip-version-check -e .[test,local]"]
    assert checkout.install("test,local", python=True).ran("pip") == []
    assert checkout.install("local", python=True).ran("pip") == []  # test,local holds local


def test_default_extra_is_local(checkout: Machine) -> None:
    assert checkout.install(python=True).ran("pip")[0].endswith("-e .[local]")
    assert checkout.install("local", python=True).ran("pip") == []


def test_reinstall_after_setup_cfg_changed_or_a_module_went_missing(checkout: Machine) -> None:
    checkout.install("local", python=True)
    setup_cfg = checkout.root / "repo" / "setup.cfg"
    os.utime(setup_cfg, (time.time() + 60, time.time() + 60))
    assert checkout.install("local", python=True).ran("pip")[0].endswith("-e .[local]")

    os.utime(setup_cfg, (time.time() - 3600, time.time() - 3600))
    (checkout.state / "venv-broken").touch()
    assert checkout.install("local", python=True).ran("pip")[0].endswith("-e .[local]")


def test_an_unknown_extra_name_is_refused(checkout: Machine) -> None:
    proc = subprocess.run(
        ["bash", str(checkout.root / "repo" / "scripts" / "install"), "te st;rm"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "install: extra 'st;rm': expected a name of setup.cfg's" in proc.stderr
