"""Memory per service: what its imports alone cost, and what it holds idle on the stack.

    python bench/memory/run.py [--settle 60]

1. Imports: each service's module imported in a fresh interpreter (this one), its
   resident memory (VmRSS) and module count read right after.
2. Idle: ``kemi-stats up`` (no demo, every port free and chosen here, its own data
   directory) until every component is healthy, then ``--settle`` seconds of nothing
   to do; each service process's VmRSS from ``/proc``. ``kemi-stats down`` at the end.
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

from bench.measure import bench_options
from kemi_stats.catalogue import SERVICES
from kemi_stats.stack.servers import free_port

_RSS = (
    "import importlib, sys; importlib.import_module(sys.argv[1]); "
    "rss = [l for l in open('/proc/self/status') if l.startswith('VmRSS')][0].split()[1]; "
    "print(int(rss) / 1024, len(sys.modules))"
)


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
    return float("nan")


def imports() -> dict[str, tuple[float, int]]:
    out = {}
    for name, spec in SERVICES.items():
        module = f"{spec.module}.service"  # what `python -m {spec.module}` runs
        proc = subprocess.run([sys.executable, "-c", _RSS, module], capture_output=True,
                              text=True, check=True)  # fmt: skip
        rss, modules = proc.stdout.split()
        out[name] = (float(rss), int(modules))
    return out


def idle(settle: float) -> dict[str, float]:
    kemi = [sys.executable, "-m", "kemi_stats.cli"]
    with tempfile.TemporaryDirectory(prefix="kemi-bench-mem-") as tmp:
        data = Path(tmp) / "stack"
        ports = [
            "--kafka-port", str(free_port()), "--etcd-port", str(free_port()),
            "--etcd-peer-port", str(free_port()), "--vm-port", str(free_port()),
        ]  # fmt: skip
        for name in SERVICES:
            ports += ["--service-port", f"{name}={free_port()}"]
        env = {**os.environ, "KEMI_CONFIG": os.devnull}
        subprocess.run([*kemi, "up", "--data-dir", str(data), "--detach", *ports], env=env,
                       check=True, capture_output=True, timeout=180)  # fmt: skip
        try:
            time.sleep(settle)
            state = json.loads((data / "stack.json").read_text())
            return {
                c["name"]: _rss_mib(int(c["pid"]))
                for c in state["components"]
                if c["name"] in SERVICES and c.get("pid")
            }
        finally:
            subprocess.run([*kemi, "down", "--data-dir", str(data)], env=env,
                           capture_output=True, timeout=120)  # fmt: skip


def main() -> int:
    opts = bench_options(__doc__, settle=60)
    bare = imports()
    held = idle(float(opts.settle))
    print(f"Python {sys.version.split()[0]}; idle after {opts.settle:.0f} s with nothing to do\n")
    print("| service | imports alone (MiB) | modules | idle on the stack (MiB) |")
    print("|---|---:|---:|---:|")
    for name in SERVICES:
        rss, modules = bare[name]
        print(f"| {name} | {rss:.1f} | {modules} | {held.get(name, float('nan')):.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
