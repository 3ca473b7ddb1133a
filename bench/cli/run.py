"""CLI benchmark: ``kemi-stats target list`` (filtered and whole) over a large registry.

    python bench/cli/run.py [--targets 10000] [--repeat 5]

Starts its own etcd on free loopback ports, imports ``--targets`` targets with
``kemi-stats target import`` (four sites, twenty racks), then runs each command
``--repeat`` times as a user would (a new ``kemi-stats`` process each time, output to a
pipe) and reports the wall time (median and worst) and the CPU seconds of the process,
with the number of targets it printed.
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.measure import bench_options
from kemi_stats.stack.process import spawn, stop_pid, wait_until
from kemi_stats.stack.servers import etcd_command, free_port, port_open

SITES = ("pangyo", "seoul", "busan", "jeju")
COMMANDS = {
    "target list --label site=pangyo -o json": ["target", "list", "--label", "site=pangyo", "-o", "json"],
    "target list --match 'rack=~r1.' -o csv": ["target", "list", "--match", "rack=~r1.", "-o", "csv"],
    "target list (table, all)": ["target", "list"],
    "target list -o json (all)": ["target", "list", "-o", "json"],
    "credential list (startup cost)": ["credential", "list"],
}  # fmt: skip


def _kemi(env: dict[str, str], args: list[str]) -> tuple[float, float, str]:
    """(wall seconds, CPU seconds of the child, stdout) of one ``kemi-stats`` run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "kemi_stats.cli", *args],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"kemi-stats {' '.join(args)}: {proc.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, proc.stdout


def _printed(args: list[str], out: str) -> int:
    if "json" in args:
        return out.count('"host"')
    return max(0, len(out.splitlines()) - 1)


def main() -> int:
    opts = bench_options(__doc__, targets=10000, repeat=5)
    with tempfile.TemporaryDirectory(prefix="kemi-bench-cli-") as tmp_dir:
        tmp = Path(tmp_dir)
        etcd = etcd_command(tmp / "etcd", free_port(), free_port())
        proc = spawn(etcd.argv, tmp / "etcd.log")
        try:
            host, port = etcd.address.rsplit(":", 1)
            if not wait_until(lambda: port_open(host, int(port)), 20):
                raise SystemExit(f"etcd did not start; see {tmp}")
            env = {**os.environ, "KEMI_ETCD_ENDPOINT": etcd.address, "KEMI_ETCD_PREFIX": "/bench/",
                   "KEMI_CONFIG": os.devnull, "KEMI_DATA_DIR": str(tmp / "data")}  # fmt: skip
            env.pop("KEMI_CONTEXT", None)
            env["KEMI_SECRETS_KEYRING_FILE"] = str(tmp / "keyring")
            _kemi(env, ["secrets", "keygen"])
            _kemi(env, ["profile", "import", "--builtin"])
            _kemi(env, ["credential", "add", "bench", "--community", "public"])
            rows = ["name,host,credential,profiles,interval,label.site,label.rack"]
            rows += [
                f"dev-{i:06d},127.{i // 62500 % 250 + 1}.{i // 250 % 250}.{i % 250 + 1},"
                f"bench,system,60s,{SITES[i % 4]},r{i % 20}"
                for i in range(int(opts.targets))
            ]
            (tmp / "targets.csv").write_text("\n".join(rows) + "\n")
            wall, _, _ = _kemi(env, ["target", "import", str(tmp / "targets.csv")])
            print(f"imported {opts.targets:,} targets in {wall:.1f} s\n")
            print(
                f"| command ({opts.targets:,} targets) | printed | wall median | wall max | CPU s (median) |"
            )
            print("|---|---|---|---|---|")
            for label, args in COMMANDS.items():
                runs = [_kemi(env, args) for _ in range(int(opts.repeat))]
                walls = [r[0] for r in runs]
                cpus = [r[1] for r in runs]
                print(
                    f"| `{label}` | {_printed(args, runs[0][2]):,} | "
                    f"{statistics.median(walls):.2f} s | {max(walls):.2f} s | "
                    f"{statistics.median(cpus):.2f} |",
                    flush=True,
                )
        finally:
            stop_pid(proc.pid)
    return 0


if __name__ == "__main__":
    sys.exit(main())
