"""Aggregator processes against vmagent: the same bodies, the same run, taking turns.

The benches of the push paths (``bench/remote_write``, ``bench/lineprotocol``) start a
broker and etcd for the aggregator and a VictoriaMetrics for vmagent to forward to, all
on free loopback ports, then let the receivers take turns posting the same pre-built
bodies. The figure is the ratio of CPU per sample, aggregator / vmagent: absolute rates
depend on the machine and drift within minutes on a shared one. So each round's ratio
comes from back-to-back phases, each round starts with the next receiver (none always
pays for what another left behind: VictoriaMetrics merging, the broker flushing), each
phase first waits for the machine to be quiet, and the figure is the median of the
rounds.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import shutil
import statistics
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench.aggregator.run import SECRET, TOPIC, drive, pct
from bench.measure import broker_and_etcd, cpu_seconds, settle
from kemi_stats.registry.models import Token
from kemi_stats.registry.store import Registry
from kemi_stats.stack.process import spawn, stop_pid, wait_until
from kemi_stats.stack.servers import free_port, http_ok, victoria_command
from kemi_stats.topics import TopicSpec, ensure_topics

__all__ = ["TABLE_HEAD", "Receiver", "Stage", "Turn", "print_ratios", "rounds", "stage"]


@dataclass
class Receiver:
    """A process (or several, one port) that takes pushes at ``base``; CPU counted over ``pids``."""

    name: str
    base: str
    pids: list[int]
    is_reference: bool = False

    def cpu(self) -> float:
        return sum(cpu_seconds(pid) for pid in self.pids)


@dataclass
class Stage:
    """The servers of a comparison: the broker, the aggregators and vmagent."""

    kafka: str
    receivers: list[Receiver]
    vmagent: Receiver
    tmp: Path
    pids: list[int] = field(default_factory=list)
    #: samples the aggregators answered 204 for in the measured phases
    acked: int = 0


def _aggregator_pids(pid: int) -> list[int]:
    """``pid`` and its children (the worker processes of ``KEMI_AGGREGATOR_PROCESSES``)."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        children = []
    return [pid, *map(int, children)]


@contextlib.contextmanager
def stage(
    tmp: Path, args: argparse.Namespace, env_extra: dict[str, str] | None = None
) -> Iterator[Stage]:
    """Broker, etcd, a push token, ``python -m aggregator`` (and ``--baseline``'s), vmagent."""
    pids: list[int] = []
    try:
        with broker_and_etcd(tmp) as (broker, etcd):
            ensure_topics(broker.address, (TopicSpec(TOPIC, 12),))
            with Registry(etcd.address, "/kemi/") as reg:
                reg.create(
                    "token", "bench", Token(hash=hashlib.sha256(SECRET.encode()).hexdigest())
                )
            env = {**os.environ, "KEMI_KAFKA_BOOTSTRAP": broker.address,
                   "KEMI_ETCD_ENDPOINT": etcd.address, "KEMI_AGGREGATOR_TOPIC": TOPIC,
                   "KEMI_LOG_LEVEL": "ERROR", "KEMI_AGGREGATOR_MAX_FUTURE": "30d",
                   **(env_extra or {})}  # fmt: skip
            receivers = []
            versions = [("kemi-stats aggregator", "")]
            if getattr(args, "baseline", ""):
                versions.append(("baseline aggregator", args.baseline))
            for name, checkout in versions:
                port = free_port()
                proc_env = {**env, "KEMI_HTTP_PORT": str(port)}
                if checkout:
                    proc_env["PYTHONPATH"] = checkout
                log = tmp / (name.split()[0] + ".log")
                proc = spawn([sys.executable, "-m", "aggregator"], log, env=proc_env,
                             cwd=Path(checkout) if checkout else None)  # fmt: skip
                pids.append(proc.pid)
                receivers.append(Receiver(name, f"http://127.0.0.1:{port}", [proc.pid]))
            vm = victoria_command(tmp / "vm", free_port())
            pids.append(spawn(vm.argv, tmp / "vm.log").pid)
            vmagent_port = free_port()
            vmagent = spawn(
                [shutil.which("vmagent") or "/usr/bin/vmagent",
                 f"-remoteWrite.url=http://{vm.address}/api/v1/write",
                 f"-remoteWrite.tmpDataPath={tmp / 'vmagent'}",
                 f"-httpListenAddr=127.0.0.1:{vmagent_port}", "-loggerLevel=ERROR"],
                tmp / "vmagent.log",
            )  # fmt: skip
            pids.append(vmagent.pid)
            reference = Receiver(
                "vmagent", f"http://127.0.0.1:{vmagent_port}", [vmagent.pid], is_reference=True
            )
            checks = [r.base + "/healthz" for r in receivers]
            checks += [f"http://{vm.address}/health", reference.base + "/health"]
            for url in checks:
                if not wait_until(lambda u=url: http_ok(u), 30):
                    raise SystemExit(f"{url} did not answer; logs in {tmp}")
            for receiver in receivers:
                receiver.pids = _aggregator_pids(receiver.pids[0])
            yield Stage(broker.address, receivers, reference, tmp, pids)
    finally:
        for pid in pids:
            stop_pid(pid)


@dataclass
class Turn:
    """One load to compare on: a path, its bodies and how many samples each carries."""

    label: str
    path: str
    bodies: list[bytes]
    samples_per_body: int
    content_type: str
    headers: dict[str, str] = field(default_factory=dict)


async def _measure(
    stage_: Stage, receiver: Receiver, turn: Turn, round_: int, args: argparse.Namespace
) -> float:
    cpu0 = receiver.cpu()
    n, lat, took = await drive(receiver.base + turn.path, turn.bodies, turn.content_type,
                               int(args.clients), args.seconds, turn.headers)  # fmt: skip
    cpu = receiver.cpu() - cpu0
    samples = n * turn.samples_per_body
    if not samples:
        raise SystemExit(f"{receiver.name} accepted nothing; logs under the run's folder")
    print(f"| {turn.label} | {round_} | {receiver.name} | {samples / took:,.0f} | "
          f"{pct(lat, 50) * 1000:.0f} | {pct(lat, 99) * 1000:.0f} | "
          f"{cpu / samples * 1e6:.2f} |", flush=True)  # fmt: skip
    if not receiver.is_reference:
        stage_.acked += samples
    return cpu / samples


async def rounds(stage_: Stage, turn: Turn, args: argparse.Namespace) -> dict[str, list[float]]:
    """``args.rounds`` rounds of every receiver on ``turn``; each aggregator's ratio by round."""
    phases = [*stage_.receivers, stage_.vmagent]
    for receiver in phases:  # warm-up: connections, imports, first series
        await drive(receiver.base + turn.path, turn.bodies[:2], turn.content_type, 1, 2.0,
                    turn.headers)  # fmt: skip
    ratios: dict[str, list[float]] = {r.name: [] for r in stage_.receivers}
    for round_ in range(1, int(args.rounds) + 1):
        at = (round_ - 1) % len(phases)
        cpus: dict[str, float] = {}
        for receiver in phases[at:] + phases[:at]:
            settle()
            cpus[receiver.name] = await _measure(stage_, receiver, turn, round_, args)
        theirs = cpus.pop(stage_.vmagent.name)
        for name, cpu in cpus.items():
            ratios[name].append(cpu / theirs)
    return ratios


def print_ratios(label: str, ratios: dict[str, list[float]]) -> dict[str, float]:
    """One line per aggregator: its ratios by round and their median (returned)."""
    medians = {}
    for name, by_round in ratios.items():
        medians[name] = statistics.median(by_round)
        print(f"{label}: CPU per sample, {name} / vmagent, by round: "
              f"{', '.join(f'{r:.2f}x' for r in by_round)}; "
              f"median **{medians[name]:.2f}x**")  # fmt: skip
    return medians


TABLE_HEAD: Sequence[str] = (
    "| load | round | receiver | samples/s | p50 ms | p99 ms | CPU s per 1M samples |",
    "|---|---|---|---|---|---|---|",
)
