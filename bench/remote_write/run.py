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
import os
import sys
import tempfile
import time
from pathlib import Path

import cramjam

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from aggregator.proto import remote_pb2 as pb
from bench.aggregator.run import count_topic
from bench.measure import bench_options
from bench.versus import TABLE_HEAD, Turn, print_ratios, rounds, stage

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


async def amain(args: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench-rw-"))
    with stage(tmp, args) as stage_:
        data = bodies(32, args.series, int(time.time() * 1000) - 600_000)
        turn = Turn(f"{args.series} series", "/api/v1/write", data, args.series,
                    "application/x-protobuf", HEADERS)  # fmt: skip
        print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}; "
              f"{args.clients} clients, {args.series} series x 1 sample per request\n")  # fmt: skip
        print("\n".join(TABLE_HEAD))
        ratios = await rounds(stage_, turn, args)
        print()
        print_ratios(turn.label, ratios)
        on_topic = await count_topic(stage_.kafka, stage_.acked)
        print(f"aggregators: {stage_.acked:,} samples answered 204 in the measured runs; "
              f"{on_topic:,} on the topic (warm-up included)")  # fmt: skip


def main() -> None:
    asyncio.run(
        amain(bench_options(__doc__, seconds=15.0, clients=4, series=2000, rounds=3, baseline=""))
    )


if __name__ == "__main__":
    main()
