"""Memory per service: what its imports alone cost, and what it holds idle on the stack.

    python bench/memory/run.py [--settle 60]

1. Imports: each service's module imported in a fresh interpreter (this one), its
   resident memory (VmRSS) and module count read right after.
2. Idle: ``kemi-stats up`` (no demo, every port free and chosen here, its own data
   directory) until every component is healthy, then ``--settle`` seconds of nothing
   to do; each service process's VmRSS from ``/proc``, and its PSS (shared pages
   divided among the processes sharing them: what one more process adds). ``kemi-stats down`` at the end.
3. With ``--targets N``: then N SNMP targets are registered (four sites, twenty racks,
   polled once an hour at a loopback port nothing answers, so the scheduler holds a job
   for each and polls at a trickle), and after ``--settle`` seconds more, each service's
   growth per target: what its registry view (and the scheduler's jobs) hold.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.measure import bench_options, pss_mib, rss_mib
from kemi_stats.catalogue import SERVICES
from kemi_stats.stack.servers import free_port

_RSS = (
    "import importlib, sys; importlib.import_module(sys.argv[1]); "
    "rss = [l for l in open('/proc/self/status') if l.startswith('VmRSS')][0].split()[1]; "
    "print(int(rss) / 1024, len(sys.modules))"
)


def imports() -> dict[str, tuple[float, int]]:
    out = {}
    for name, spec in SERVICES.items():
        module = f"{spec.module}.service"  # what `python -m {spec.module}` runs
        proc = subprocess.run([sys.executable, "-c", _RSS, module], capture_output=True,
                              text=True, check=True)  # fmt: skip
        rss, modules = proc.stdout.split()
        out[name] = (float(rss), int(modules))
    return out


def register_targets(etcd: str, n: int, keyring: Path) -> float:
    """Write ``n`` targets into the stack's registry; the seconds it took."""
    import socket

    from kemi_stats.keyring import Keyring
    from kemi_stats.registry.store import Registry, parse_doc

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]  # nothing listens there once released
    started = time.monotonic()
    entries = [
        ("credential", "bench-mem", parse_doc("credential", "bench-mem", {"community": "x"}))
    ]
    for i in range(n):
        doc = {"host": "127.0.0.1", "port": dead, "credential": "bench-mem",
               "profiles": ["system", "if-mib"], "interval": "1h", "resource_id": f"net:mem-{i:06d}",
               "labels": {"site": ("pangyo", "seoul", "busan", "jeju")[i % 4], "rack": f"r{i % 20}"}}  # fmt: skip
        entries.append(("target", f"mem-{i:06d}", parse_doc("target", f"mem-{i:06d}", doc)))
    with Registry(etcd, "/kemi/", keyring=Keyring.load(keyring)) as reg:
        for k in range(0, len(entries), 5000):
            reg.write_many(entries[k : k + 5000])
    return time.monotonic() - started


def _pids(data: Path) -> dict[str, int]:
    state = json.loads((data / "stack.json").read_text())
    return {
        c["name"]: int(c["pid"])
        for c in state["components"]
        if c["name"] in SERVICES and c.get("pid")
    }


def _held(data: Path) -> dict[str, float]:
    return {name: rss_mib(pid) for name, pid in _pids(data).items()}


Held = dict[str, float]


def idle(settle: float, targets: int = 0) -> tuple[Held, Held, Held]:
    """Each service's VmRSS and PSS idle, and its VmRSS with ``targets`` registered (empty without)."""
    kemi = [sys.executable, "-m", "kemi_stats.cli"]
    with tempfile.TemporaryDirectory(prefix="kemi-bench-mem-") as tmp:
        data = Path(tmp) / "stack"
        ports = [
            "--kafka-port", str(free_port()), "--etcd-port", str(free_port()),
            "--etcd-peer-port", str(free_port()), "--vm-port", str(free_port()),
        ]  # fmt: skip
        etcd_port = free_port()
        ports[3] = str(etcd_port)
        for name in SERVICES:
            ports += ["--service-port", f"{name}={free_port()}"]
        env = {**os.environ, "KEMI_CONFIG": os.devnull}
        subprocess.run([*kemi, "up", "--data-dir", str(data), "--detach", *ports], env=env,
                       check=True, capture_output=True, timeout=180)  # fmt: skip
        try:
            time.sleep(settle)
            bare = _held(data)
            shared = {name: pss_mib(pid) for name, pid in _pids(data).items()}
            loaded: dict[str, float] = {}
            if targets:
                took = register_targets(f"127.0.0.1:{etcd_port}", targets, data / "keyring.json")
                print(f"{targets:,} targets registered in {took:.0f} s", file=sys.stderr)
                time.sleep(settle)
                loaded = _held(data)
            return bare, shared, loaded
        finally:
            subprocess.run([*kemi, "down", "--data-dir", str(data)], env=env,
                           capture_output=True, timeout=120)  # fmt: skip


def main() -> int:
    opts = bench_options(__doc__, settle=60, targets=0)
    bare = imports()
    n = int(opts.targets)
    held, shared, loaded = idle(float(opts.settle), n)
    print(f"Python {sys.version.split()[0]}; idle after {opts.settle:.0f} s with nothing to do\n")
    extra = f" with {n:,} targets (MiB) | per target (bytes) |" if n else ""
    print(
        f"| service | imports alone (MiB) | modules | idle on the stack (MiB) | idle PSS (MiB) |{extra}"
    )
    print("|---|---:|---:|---:|---:|" + ("---:|---:|" if n else ""))
    for name in SERVICES:
        rss, modules = bare[name]
        nan = float("nan")
        row = f"| {name} | {rss:.1f} | {modules} | {held.get(name, nan):.1f} | {shared.get(name, nan):.1f} |"
        if n:
            grown = loaded.get(name, float("nan"))
            per = (grown - held.get(name, float("nan"))) * (1 << 20) / n
            row += f" {grown:.1f} | {per:,.0f} |"
        print(row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
