"""remote_write ingest: one aggregator process against vmagent, the same load, the same run.

    python bench/remote_write/run.py [--seconds 15] [--clients 4] [--series 2000] [--rounds 3]
                                     [--baseline DIR]

Starts a broker (Tansu) and etcd for the aggregator, and a VictoriaMetrics for vmagent
to forward to, all on free loopback ports. Pre-builds snappy-compressed remote_write
bodies as Prometheus sends them (``--series`` series of one sample per request, node
exporter-shaped: 20 metric names, 50 hosts, job/instance/cpu/mode labels) and posts them
back to back from several aiohttp clients, first to the aggregator's ``/api/v1/write``
(every 204 only after Kafka acked), then to vmagent's ``/api/v1/write``.

Reports samples/s and CPU seconds per million samples of each process (from /proc), and
the ratio aggregator / vmagent: the figure to watch. Absolute rates depend on the machine,
and on a shared machine they drift within minutes: so the receivers take turns,
``--rounds`` times, each round's ratio comes from back-to-back phases, and the figure
is the median of the rounds' ratios. Each round starts with the next receiver, and each
phase waits for the machine to be quiet: what a server does after its phase
(VictoriaMetrics merging, the broker flushing) would otherwise be paid by whoever
always came next. ``--baseline DIR`` (another checkout, say
``git worktree add /tmp/base HEAD~3``) runs that version's aggregator too, in the same
rounds against the same broker: the way to tell a change's effect from the drift.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cramjam

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from aggregator.proto import remote_pb2 as pb
from bench.aggregator.run import SECRET, TOPIC, count_topic, drive, pct
from bench.measure import bench_options, broker_and_etcd, cpu_seconds, settle
from kemi_stats.registry.models import Token
from kemi_stats.registry.store import Registry
from kemi_stats.stack.process import spawn, stop_pid, wait_until
from kemi_stats.stack.servers import free_port, http_ok, victoria_command
from kemi_stats.topics import TopicSpec, ensure_topics

HOSTS = 50
NAMES = [f"node_metric_{i}_total" if i % 2 else f"node_metric_{i}" for i in range(20)]
HEADERS = {"Content-Encoding": "snappy", "X-Prometheus-Remote-Write-Version": "0.1.0"}


def bodies(n_bodies: int, series: int, t0_ms: int) -> list[bytes]:
    """Snappy remote_write bodies, ``series`` series of one sample each, times moving on."""
    out = []
    k = 0
    for b in range(n_bodies):
        req = pb.WriteRequest()
        for _ in range(series):
            ts = req.timeseries.add()
            # every series of a body is distinct: 50 hosts x 20 names x 3 modes x 8 cpus
            host = k % HOSTS
            ts.labels.add(name="__name__", value=NAMES[k // HOSTS % len(NAMES)])
            ts.labels.add(name="cpu", value=str(k // (HOSTS * len(NAMES) * 3) % 8))
            ts.labels.add(name="instance", value=f"10.0.{host // 250}.{host % 250}:9100")
            ts.labels.add(name="job", value="node")
            ts.labels.add(
                name="mode", value=("idle", "user", "system")[k // (HOSTS * len(NAMES)) % 3]
            )
            ts.samples.add(value=float(k % 1000) + 0.5, timestamp=t0_ms + b * 1000)
            k += 1
        out.append(bytes(cramjam.snappy.compress_raw(req.SerializeToString())))
    return out


async def measure(
    name: str, url: str, pid: int, data: list[bytes], args: argparse.Namespace
) -> tuple[int, float]:
    cpu0 = cpu_seconds(pid)
    n, lat, took = await drive(url, data, "application/x-protobuf", args.clients, args.seconds,
                               HEADERS)  # fmt: skip
    cpu = cpu_seconds(pid) - cpu0
    samples = n * args.series
    print(f"| {name} | {samples / took:,.0f} | {pct(lat, 50) * 1000:.0f} | "
          f"{pct(lat, 99) * 1000:.0f} | {cpu / samples * 1e6:.2f} |", flush=True)  # fmt: skip
    return samples, cpu / samples


async def amain(args: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench-rw-"))
    pids: list[int] = []
    try:
        with broker_and_etcd(tmp) as (broker, etcd):
            ensure_topics(broker.address, (TopicSpec(TOPIC, 12),))
            with Registry(etcd.address, "/kemi/") as reg:
                reg.create(
                    "token", "bench", Token(hash=hashlib.sha256(SECRET.encode()).hexdigest())
                )
            port = free_port()
            env = {**os.environ, "KEMI_KAFKA_BOOTSTRAP": broker.address,
                   "KEMI_ETCD_ENDPOINT": etcd.address, "KEMI_HTTP_PORT": str(port),
                   "KEMI_AGGREGATOR_TOPIC": TOPIC, "KEMI_LOG_LEVEL": "ERROR"}  # fmt: skip
            agg = spawn([sys.executable, "-m", "aggregator"], tmp / "aggregator.log", env=env)
            pids.append(agg.pid)
            receivers = [("kemi-stats aggregator", f"http://127.0.0.1:{port}", agg.pid)]
            if args.baseline:
                base_port = free_port()
                base_env = {**env, "KEMI_HTTP_PORT": str(base_port), "PYTHONPATH": args.baseline}
                baseline = spawn([sys.executable, "-m", "aggregator"], tmp / "baseline.log",
                                 env=base_env, cwd=Path(args.baseline))  # fmt: skip
                pids.append(baseline.pid)
                receivers.append(("baseline aggregator", f"http://127.0.0.1:{base_port}",
                                  baseline.pid))  # fmt: skip
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
            vmagent_url = f"http://127.0.0.1:{vmagent_port}"
            urls = [url + "/healthz" for _, url, _ in receivers]
            for url in (*urls, f"http://{vm.address}/health", vmagent_url + "/health"):
                if not wait_until(lambda u=url: http_ok(u), 30):
                    raise SystemExit(f"{url} did not answer; logs in {tmp}")
            data = bodies(32, args.series, int(time.time() * 1000) - 600_000)
            for _, url, _ in receivers:
                await drive(url + "/api/v1/write", data[:2], "application/x-protobuf", 1, 2.0,
                            HEADERS)  # fmt: skip
            await drive(vmagent_url + "/api/v1/write", data[:2], "application/x-protobuf", 1, 2.0,
                        HEADERS)  # fmt: skip
            print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}; "
                  f"{args.clients} clients, {args.series} series x 1 sample per request\n")  # fmt: skip
            print("| round | receiver | samples/s | p50 ms | p99 ms | CPU s per 1M samples |")
            print("|---|---|---|---|---|---|")
            acked = 0
            ratios: dict[str, list[float]] = {name: [] for name, _, _ in receivers}
            phases = [*receivers, ("vmagent", vmagent_url, vmagent.pid)]
            for round_ in range(1, int(args.rounds) + 1):
                cpus = {}
                # each round starts with the next receiver: none always follows another
                at = (round_ - 1) % len(phases)
                for name, url, pid in phases[at:] + phases[:at]:
                    settle()
                    n, cpus[name] = await measure(f"{round_} | {name}", url + "/api/v1/write",
                                                  pid, data, args)  # fmt: skip
                    if name != "vmagent":
                        acked += n
                theirs_cpu = cpus.pop("vmagent")
                for name, cpu in cpus.items():
                    ratios[name].append(cpu / theirs_cpu)
            print()
            for name, by_round in ratios.items():
                print(f"CPU per sample, {name} / vmagent, by round: "
                      f"{', '.join(f'{r:.2f}x' for r in by_round)}; "
                      f"median **{statistics.median(by_round):.2f}x**")  # fmt: skip
            on_topic = await count_topic(broker.address, acked)
            print(f"aggregators: {acked:,} samples answered 204 in the measured runs; "
                  f"{on_topic:,} on the topic (warm-up included)")  # fmt: skip
    finally:
        for pid in pids:
            stop_pid(pid)


def main() -> None:
    asyncio.run(
        amain(bench_options(__doc__, seconds=15.0, clients=4, series=2000, rounds=3, baseline=""))
    )


if __name__ == "__main__":
    main()
