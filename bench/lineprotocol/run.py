"""Influx line protocol: the aggregator against vmagent, the same bodies, the same run.

    python bench/lineprotocol/run.py [--seconds 15] [--clients 4] [--lines 5000]
                                     [--hosts 50,1000,5000] [--rounds 3]
                                     [--processes 1] [--baseline DIR]

Telegraf-shaped bodies posted back to back to ``/write?precision=s`` of both receivers
(``bench/versus.py`` has the servers and the turns)::

    cpu,host=web-00042,site=pangyo,cpu=cpu7 usage_user=12.5,usage_system=3.25,usage_idle=84.25 1796360000

``--lines`` lines of 3 fields per body, one time per body, spread over ``--hosts``
distinct hosts (each host's lines differ by their ``cpu`` tag, as Telegraf's cpu input
sends one line per core): the aggregator writes one Kafka record per host per body, so
the host count sets its records per sample. For each host count the table gives
samples/s, latency and CPU per sample of every receiver by round, then the median ratio
of CPU per sample, aggregator / vmagent. ``--processes N`` runs the aggregator with
``KEMI_AGGREGATOR_PROCESSES=N`` (its CPU is the sum of its processes).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.aggregator.run import count_topic
from bench.measure import bench_options
from bench.versus import TABLE_HEAD, Turn, print_ratios, rounds, stage

FIELDS = 3


def bodies(n_bodies: int, lines: int, hosts: int, t0_s: int) -> list[bytes]:
    """``n_bodies`` bodies of ``lines`` lines over ``hosts`` hosts, body ``b`` at ``t0_s + b``."""
    out = []
    for b in range(n_bodies):
        rows = []
        for k in range(lines):
            n = b * lines + k
            rows.append(
                f"cpu,host=web-{k % hosts:05d},site=pangyo,cpu=cpu{k // hosts} "
                f"usage_user={n % 100}.5,usage_system={n % 37}.25,usage_idle={n % 91}.75 "
                f"{t0_s + b}\n"
            )
        out.append("".join(rows).encode())
    return out


async def amain(args: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench-lp-"))
    env = {"KEMI_AGGREGATOR_PROCESSES": str(args.processes)}
    with stage(tmp, args, env) as stage_:
        print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}; "
              f"{args.clients} clients, {args.lines} lines x {FIELDS} fields per request, "
              f"aggregator processes: {args.processes}\n")  # fmt: skip
        print("\n".join(TABLE_HEAD))
        results = []
        t0 = int(time.time()) - 3000
        for i, hosts in enumerate(int(h) for h in args.hosts.split(",")):
            data = bodies(16, args.lines, hosts, t0 + 100 * i)
            turn = Turn(f"{hosts} hosts/body", "/write?precision=s", data, args.lines * FIELDS,
                        "text/plain; charset=utf-8")  # fmt: skip
            results.append((turn.label, await rounds(stage_, turn, args)))
        print()
        for label, ratios in results:
            print_ratios(label, ratios)
        on_topic = await count_topic(stage_.kafka, stage_.acked)
        print(f"aggregators: {stage_.acked:,} samples answered 204 in the measured runs; "
              f"{on_topic:,} on the topic (warm-up included)")  # fmt: skip


def main() -> None:
    options = bench_options(__doc__, seconds=15.0, clients=4, lines=5000, hosts="50,1000,5000",
                            rounds=3, processes=1, baseline="")  # fmt: skip
    asyncio.run(amain(options))


if __name__ == "__main__":
    main()
