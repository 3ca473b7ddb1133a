"""What the benchmarks measure of a service process, and the servers they start for it.

CPU seconds come from ``/proc/<pid>/stat``; progress from the counters on a service's own
Prometheus ``/metrics``, so a benchmark sees what an operator's Prometheus would see.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import resource
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from kemi_stats.keyring import Keyring
from kemi_stats.stack.process import spawn, stop_pid, wait_until
from kemi_stats.stack.servers import (
    ServerCommand,
    broker_command,
    etcd_command,
    free_port,
    port_open,
)

__all__ = [
    "PollerProcesses", "bench_options", "broker_and_etcd", "cpu_seconds", "machine_busy_seconds",
    "metric_sum", "metrics_text", "pss_mib", "rss_mib", "run_commands", "scrape", "settle", "start_poller",
]  # fmt: skip

_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds the process has used so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def _machine_busy_and_total() -> tuple[int, int]:
    with open("/proc/stat") as f:
        ticks = [int(x) for x in f.readline().split()[1:]]
    idle = ticks[3] + ticks[4]  # idle + iowait
    return sum(ticks) - idle, sum(ticks)


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine has been busy (all cores, idle and iowait excluded)."""
    return _machine_busy_and_total()[0] / _TICKS


def run_commands(
    commands: list[list[str]], parallel: int, env: dict[str, str]
) -> tuple[int, float, float]:
    """Run ``commands``, ``parallel`` at a time; (failures, wall seconds, their CPU seconds)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    running: list[subprocess.Popen[bytes]] = []
    failures = 0
    for cmd in commands:
        if len(running) >= parallel:
            failures += running.pop(0).wait() != 0
        running.append(
            subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        )
    for proc in running:
        failures += proc.wait() != 0
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return failures, wall, cpu


def settle(quiet: float = 0.15, longest: float = 30.0, step: float = 0.5) -> float:
    """Wait until the machine is quiet (under ``quiet`` of its CPUs busy over ``step``
    seconds), at most ``longest`` seconds; the seconds waited.

    Between phases of a comparison: a server's work after its phase (a TSDB merging what
    it was sent, a broker flushing) would otherwise be paid by the next phase's receiver.
    """
    began = time.monotonic()
    busy0, total0 = _machine_busy_and_total()
    while time.monotonic() - began < longest:
        time.sleep(step)
        busy1, total1 = _machine_busy_and_total()
        if total1 > total0 and (busy1 - busy0) / (total1 - total0) < quiet:
            break
        busy0, total0 = busy1, total1
    return time.monotonic() - began


def metrics_text(url: str, timeout: float = 2.0) -> str | None:
    """The /metrics page at ``url``, or None when it cannot be read."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return str(resp.read().decode())
    except OSError:
        return None


def metric_sum(text: str, name: str) -> float:
    """The sum of sample ``name`` over all its label sets in a /metrics page's ``text``."""
    found = re.findall(rf"^{re.escape(name)}(?:{{[^}}]*}})? (\S+)$", text, re.M)
    return sum(float(v) for v in found)


def scrape(url: str, name: str, unreachable: float = -1.0) -> float:
    """The sum of sample ``name`` over all its label sets on the /metrics page at ``url``."""
    text = metrics_text(url)
    return unreachable if text is None else metric_sum(text, name)


def _proc_mib(path: str, field: str) -> float:
    """The ``field:`` line of a /proc file (in kB) in MiB; NaN once the process is gone."""
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def pss_mib(pid: int) -> float:
    """Proportional set size of ``pid`` in MiB: its private pages, plus each page it shares
    with other processes (the Python binary, libraries) divided among them. What one more
    process of a service adds to a machine running the others; NaN once it is gone."""
    return _proc_mib(f"/proc/{pid}/smaps_rollup", "Pss:")


def rss_mib(pid: int) -> float:
    """Resident memory of ``pid`` (VmRSS) in MiB; NaN once it is gone."""
    return _proc_mib(f"/proc/{pid}/status", "VmRSS:")


@contextlib.contextmanager
def broker_and_etcd(tmp: Path) -> Iterator[tuple[ServerCommand, ServerCommand]]:
    """A Tansu broker and an etcd on free loopback ports, stopped by pid afterwards."""
    broker = broker_command(free_port())
    etcd = etcd_command(tmp / "etcd", free_port(), free_port())
    procs = [spawn(broker.argv, tmp / "broker.log"), spawn(etcd.argv, tmp / "etcd.log")]
    try:
        for cmd in (broker, etcd):
            host, port = cmd.address.rsplit(":", 1)
            if not wait_until(lambda h=host, p=int(port): port_open(h, p), 20):
                raise SystemExit(f"{cmd.name} did not start; see {tmp}")
        yield broker, etcd
    finally:
        for p in procs:
            stop_pid(p.pid)


@dataclass
class PollerProcesses:
    """A poll scheduler and one poll worker, and the worker's HTTP port."""

    scheduler: int
    worker: int
    worker_port: int

    @property
    def worker_metrics(self) -> str:
        return f"http://127.0.0.1:{self.worker_port}/metrics"


def start_poller(
    tmp: Path, broker: ServerCommand, etcd: ServerCommand, jobs: str, raw: str
) -> PollerProcesses:
    """``poller.scheduler`` and one ``poller.worker`` on topics ``jobs`` and ``raw``; their pids."""
    env = {**os.environ, "KEMI_KAFKA_BOOTSTRAP": broker.address,
           "KEMI_ETCD_ENDPOINT": etcd.address, "KEMI_POLLER_JOBS_TOPIC": jobs,
           "KEMI_POLLER_RAW_TOPIC": raw, "KEMI_LOG_LEVEL": "WARNING"}  # fmt: skip
    scheduler_port, worker_port = free_port(), free_port()
    scheduler = spawn([sys.executable, "-m", "poller.scheduler"], tmp / "scheduler.log",
                      env={**env, "KEMI_HTTP_PORT": str(scheduler_port)})  # fmt: skip
    worker = spawn([sys.executable, "-m", "poller.worker"], tmp / "worker.log",
                   env={**env, "KEMI_HTTP_PORT": str(worker_port)})  # fmt: skip
    return PollerProcesses(scheduler.pid, worker.pid, worker_port)


def throwaway_keyring(tmp: Path) -> Keyring:
    """A keyring of the run's own, which the processes it starts find in their environment
    (the poller worker and the notifier refuse to start without one)."""
    path = tmp / "keyring.json"
    if not path.exists():
        Keyring.generate("bench").save(path)
    os.environ["KEMI_SECRETS_KEYRING_FILE"] = str(path)
    return Keyring.load(path)


def bench_options(doc: str | None, **defaults: float) -> argparse.Namespace:
    """``--name VALUE`` options typed by their defaults (``kafka_batches`` is ``--kafka-batches``)."""
    parser = argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    for name, default in defaults.items():
        parser.add_argument("--" + name.replace("_", "-"), type=type(default), default=default)
    return parser.parse_args()
