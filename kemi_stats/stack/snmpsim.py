"""Simulated and real SNMP agents on loopback: snmpsim data files and Debian snmpd.

Used by ``kemi-stats up --demo``, the integration tests and the benchmarks, so they
all poll the same devices.

snmpsim serves every data file in its data directory on every endpoint; a device is
chosen by the SNMP community, which is the data file's name (``core-sw-1.snmprec`` is
community ``core-sw-1``). So a target for a simulated device uses a v2c credential whose
community is the device name. Counters move with snmpsim's ``numeric`` variation
(value = initial + rate x seconds since the simulator started), ``sysUpTime`` too.

One snmpsim process answers about 250 requests/s in total (docs/local-stack.md); for load, run
several, or Debian ``snmpd`` (:func:`snmpd_command`), which is a real C agent.
"""

from __future__ import annotations

import os
import shutil
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path

from kemi_stats.errors import StackError
from kemi_stats.stack.servers import ServerCommand

__all__ = [
    "SnmpdUser",
    "device_records",
    "snmpd_command",
    "snmpd_env",
    "snmpsim_command",
    "snmpsim_env",
    "write_device_data",
    "write_snmpd_conf",
]

# SNMP value tags of the .snmprec format
_INTEGER, _STRING, _OID, _COUNTER32, _GAUGE32, _TIMETICKS, _COUNTER64 = 2, 4, 6, 65, 66, 67, 70

_SYS = "1.3.6.1.2.1.1"
_IF = "1.3.6.1.2.1.2.2.1"
_IFX = "1.3.6.1.2.1.31.1.1.1"
_HR_CPU = "1.3.6.1.2.1.25.3.3.1.2"
_HR_STORAGE = "1.3.6.1.2.1.25.2.3.1"
_UCD_LA = "1.3.6.1.4.1.2021.10.1"
_UCD_MEM = "1.3.6.1.4.1.2021.4"
_UCD_CPU = "1.3.6.1.4.1.2021.11"


def _oid_key(oid: str) -> tuple[int, ...]:
    return tuple(int(p) for p in oid.split("."))


def _seed(name: str, salt: int) -> int:
    """A stable per-device number: devices differ, and a device is the same in every run."""
    return zlib.crc32(f"{name}:{salt}".encode())


def device_records(
    name: str,
    *,
    interfaces: int = 4,
    cpus: int = 2,
    rate_bps: int = 125_000,
    extra: dict[str, tuple[int, str]] | None = None,
) -> list[str]:
    """The .snmprec lines of one simulated device (system, IF-MIB, HOST-RESOURCES, UCD-SNMP).

    ``rate_bps`` is the byte rate of interface 1's ifHCInOctets; other counters move at
    stable per-device fractions of it. ``extra`` adds ``oid -> (tag, value)`` records.
    """
    recs: dict[str, tuple[str, str]] = {}

    def put(oid: str, tag: int | str, value: object) -> None:
        recs[oid] = (str(tag), str(value))

    def counter(oid: str, tag: int, rate: float, salt: int) -> None:
        initial = _seed(name, salt) % 1_000_000_000
        wrap = ",wrap=1" if tag == _COUNTER32 else ""
        put(oid, f"{tag}:numeric", f"rate={rate:g},initial={initial}{wrap}")

    put(f"{_SYS}.1.0", _STRING, f"kemi simulated device {name}")
    put(f"{_SYS}.2.0", _OID, "1.3.6.1.4.1.8072.3.2.10")
    put(f"{_SYS}.3.0", f"{_TIMETICKS}:numeric", f"rate=100,initial={_seed(name, 0) % 10_000_000}")
    put(f"{_SYS}.4.0", _STRING, "noc@example.com")
    put(f"{_SYS}.5.0", _STRING, name)
    put(f"{_SYS}.6.0", _STRING, "loopback lab")
    for i in range(1, interfaces + 1):
        r = rate_bps * (1.0 if i == 1 else ((_seed(name, i) % 90) + 10) / 100)
        put(f"{_IF}.1.{i}", _INTEGER, i)
        put(f"{_IF}.2.{i}", _STRING, f"eth{i - 1}")
        put(f"{_IF}.5.{i}", _GAUGE32, 1_000_000_000)
        put(f"{_IF}.8.{i}", _INTEGER, 1 if i != interfaces or interfaces == 1 else 2)
        counter(f"{_IF}.10.{i}", _COUNTER32, r, 10 + i)
        counter(f"{_IF}.13.{i}", _COUNTER32, 0.01, 20 + i)
        counter(f"{_IF}.14.{i}", _COUNTER32, 0.02, 30 + i)
        counter(f"{_IF}.16.{i}", _COUNTER32, r / 2, 40 + i)
        counter(f"{_IF}.19.{i}", _COUNTER32, 0.01, 50 + i)
        counter(f"{_IF}.20.{i}", _COUNTER32, 0.02, 60 + i)
        put(f"{_IFX}.1.{i}", _STRING, f"eth{i - 1}")
        counter(f"{_IFX}.6.{i}", _COUNTER64, r, 70 + i)
        counter(f"{_IFX}.7.{i}", _COUNTER64, r / 1000, 80 + i)
        counter(f"{_IFX}.10.{i}", _COUNTER64, r / 2, 90 + i)
        counter(f"{_IFX}.11.{i}", _COUNTER64, r / 2000, 100 + i)
        put(f"{_IFX}.15.{i}", _GAUGE32, 1000)
        put(f"{_IFX}.18.{i}", _STRING, f"uplink {i} of {name}" if i == 1 else f"port {i}")
    for c in range(1, cpus + 1):
        index = 195 + c
        wave = f"function=sin%<time>,rate=0.05,scale=20,offset={30 + 10 * c},min=0,max=100"
        put(f"{_HR_CPU}.{index}", f"{_INTEGER}:numeric", wave)
    for idx, (descr, size, used) in enumerate(
        (("Physical memory", 4_000_000, 2_500_000), ("/", 25_000_000, 9_000_000)), start=1
    ):
        put(f"{_HR_STORAGE}.1.{idx}", _INTEGER, idx)
        put(f"{_HR_STORAGE}.3.{idx}", _STRING, descr)
        put(f"{_HR_STORAGE}.4.{idx}", _INTEGER, 1024)
        put(f"{_HR_STORAGE}.5.{idx}", _INTEGER, size)
        put(f"{_HR_STORAGE}.6.{idx}", _INTEGER, used + _seed(name, 200 + idx) % 100_000)
    for idx, (la_name, la) in enumerate(
        (("Load-1", "0.42"), ("Load-5", "0.35"), ("Load-15", "0.30")), 1
    ):
        put(f"{_UCD_LA}.1.{idx}", _INTEGER, idx)
        put(f"{_UCD_LA}.2.{idx}", _STRING, la_name)
        put(f"{_UCD_LA}.3.{idx}", _STRING, la)
    put(f"{_UCD_MEM}.5.0", _INTEGER, 4_000_000)
    put(f"{_UCD_MEM}.6.0", f"{_INTEGER}:numeric",
        "function=sin%<time>,rate=0.02,scale=200000,offset=1500000,min=0,max=4000000")  # fmt: skip
    for sub, share in (
        (50, 0.3),
        (51, 0.01),
        (52, 0.1),
        (53, 1.5),
        (54, 0.05),
        (56, 0.01),
        (61, 0.02),
    ):
        counter(f"{_UCD_CPU}.{sub}.0", _COUNTER32, 100 * share, 300 + sub)
    for oid, (tag, value) in (extra or {}).items():
        put(oid, tag, value)
    return [
        f"{oid}|{tag}|{value}"
        for oid, (tag, value) in sorted(recs.items(), key=lambda kv: _oid_key(kv[0]))
    ]


def write_device_data(data_dir: Path, name: str, **options: object) -> Path:
    """Write the data file of simulated device ``name`` (its community) and return its path.

    Options are those of :func:`device_records` (interfaces, cpus, rate_bps, extra).
    """
    if not name or "/" in name or name.startswith("."):
        raise StackError(
            f"snmpsim device {name!r}: the name must be a plain file name", component="snmpsim"
        )
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / f"{name}.snmprec"
    lines = device_records(name, **options)  # type: ignore[arg-type]
    tmp = path.with_suffix(".tmp")
    tmp.write_text("\n".join(lines) + "\n")
    tmp.replace(path)
    return path


def _snmpsim_binary() -> str:
    # beside this interpreter first: a virtualenv's scripts need not be on PATH
    beside = Path(sys.executable).parent / "snmpsim-command-responder"
    path = str(beside) if beside.exists() else shutil.which("snmpsim-command-responder")
    if not path:
        raise StackError(
            "snmpsim: snmpsim-command-responder not found; "
            "install the local stack's extra: pip install 'kemi-stats[local]'",
            component="snmpsim",
        )
    return path


def snmpsim_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment snmpsim needs (it refuses to run as root without SNMPSIM_ALLOW_ROOT)."""
    env = dict(os.environ if base is None else base)
    env["SNMPSIM_ALLOW_ROOT"] = "true"
    return env


def snmpsim_command(
    data_dir: Path,
    *endpoints: tuple[str, int],
    cache_dir: Path | None = None,
    name: str = "snmpsim",
) -> ServerCommand:
    """snmpsim serving every data file of ``data_dir`` on each UDP ``(host, port)`` endpoint.

    Start it with :func:`snmpsim_env`; its address is the first endpoint (UDP, so a
    readiness probe must send an SNMP request, not open a TCP connection).
    """
    if not endpoints:
        raise StackError("snmpsim: at least one endpoint is required", component="snmpsim")
    cache = cache_dir or data_dir.parent / f"{data_dir.name}-cache"
    argv = [_snmpsim_binary(), f"--data-dir={data_dir}", f"--cache-dir={cache}",
            "--logging-method=null"]  # fmt: skip
    argv += [f"--agent-udpv4-endpoint={host}:{port}" for host, port in endpoints]
    host, port = endpoints[0]
    return ServerCommand(name, argv, f"{host}:{port}")


@dataclass(frozen=True, slots=True)
class SnmpdUser:
    """An SNMPv3 user of a Debian snmpd (authPriv when priv is set)."""

    name: str
    auth: str = "SHA"
    auth_key: str = "authpass123"
    priv: str | None = "AES"
    priv_key: str | None = "privpass123"


def write_snmpd_conf(
    path: Path,
    *,
    community: str = "public",
    users: tuple[SnmpdUser, ...] = (),
    sys_name: str = "kemi-snmpd",
) -> Path:
    """A minimal snmpd.conf: read-only community and v3 users, no traps, no AgentX."""
    lines = [
        f"rocommunity {community} 127.0.0.1",
        f"sysName {sys_name}",
        "sysLocation loopback lab",
        "sysContact noc@example.com",
        # UCD-SNMP-MIB's dskTable has a row for the root file system
        "disk / 1%",
        "master no",
        "dontLogTCPWrappersConnects yes",
    ]
    for u in users:
        priv = f" {u.priv} {u.priv_key}" if u.priv else ""
        lines.append(f"createUser {u.name} {u.auth} {u.auth_key}{priv}")
        lines.append(f"rouser {u.name} {'priv' if u.priv else 'auth'}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    os.chmod(path, 0o644)
    return path


def snmpd_command(
    conf: Path, port: int, persistent_dir: Path, host: str = "127.0.0.1"
) -> ServerCommand:
    """Debian's net-snmp agent in the foreground on a high UDP port, as nobody when run as root.

    Start it with ``env={"MIBS": "", "SNMP_PERSISTENT_DIR": str(persistent_dir)}`` (see
    :func:`snmpd_env`); the persistent directory must be writable by the agent.
    """
    path = shutil.which("snmpd") or (
        "/usr/sbin/snmpd" if Path("/usr/sbin/snmpd").exists() else None
    )
    if not path:
        raise StackError(
            "snmpd: binary not found; install it with: apt-get install -y snmpd", component="snmpd"
        )
    persistent_dir.mkdir(parents=True, exist_ok=True)
    argv = [path, "-f", "-Lo", "-C", "-I", "-smux", "-c", str(conf)]
    if os.geteuid() == 0:
        shutil.chown(persistent_dir, "nobody", "nogroup")
        argv += ["-u", "nobody", "-g", "nogroup"]
    argv.append(f"udp:{host}:{port}")
    return ServerCommand("snmpd", argv, f"{host}:{port}")


def snmpd_env(persistent_dir: Path, base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for :func:`snmpd_command` (no MIB loading, a private persistent dir)."""
    env = dict(os.environ if base is None else base)
    env.update(MIBS="", SNMP_PERSISTENT_DIR=str(persistent_dir))
    return env
