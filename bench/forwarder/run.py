"""Forwarder throughput: points/s from a Kafka topic into VictoriaMetrics, one forwarder process.

    python bench/forwarder/run.py [--batches 150000] [--shape-memory-mb N] [--forwarders N] [--outage 0]

Starts its own broker (Tansu) and VictoriaMetrics on free loopback ports, fills a
12-partition topic with SampleBatches (half interface batches: 5 interfaces x 4 Counter64
with ifName/ifIndex labels; half host batches: 20 unlabelled gauges; 20 samples each),
then starts ``python -m forwarder`` and samples its /metrics until every point
is written. Reports the steady rate (first to last written point), the wall time including
group join, CPU seconds of the forwarder and of VictoriaMetrics, and checks the point
count against VictoriaMetrics' own ``vm_rows_inserted_total{type="influx"}``.
With ``--outage S`` VictoriaMetrics is stopped S seconds after the forwarder starts, for S
seconds, and the count check shows whether anything was lost.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.measure import cpu_seconds, scrape
from kemi_stats.codec import encode_batch
from kemi_stats.kafka import make_producer
from kemi_stats.model import MetricKind, Sample, SampleBatch, Source
from kemi_stats.settings import Settings
from kemi_stats.stack.process import spawn, stop_pid, wait_until
from kemi_stats.stack.servers import (
    broker_command,
    free_port,
    http_ok,
    port_open,
    victoria_command,
)
from kemi_stats.topics import TopicSpec, ensure_topics

TOPIC = "bench.metrics"


def make_batch(i: int, t0: int) -> SampleBatch:
    t = t0 + (i // 1000) * 1000
    if i % 2:
        return SampleBatch(
            f"net:sw-{i % 1000:04d}", t, Source.SNMP, labels={"site": "pangyo", "role": "access"},
            samples=[
                Sample(m, 10**12 + i * 7 + k, {"ifName": f"Gi0/{k}", "ifIndex": str(k)},
                       MetricKind.COUNTER64)
                for k in range(5)
                for m in ("ifHCInOctets", "ifHCOutOctets", "ifInErrors", "ifOutErrors")
            ],
        )  # fmt: skip
    return SampleBatch(
        f"host:web-{i % 1000:04d}", t, Source.PUSH, labels={"site": "pangyo"},
        samples=[Sample(f"host_metric_{k}", (i * 31 + k) % 1000 / 10) for k in range(20)],
    )  # fmt: skip


async def fill(bootstrap: str, batches: int) -> int:
    producer = make_producer(Settings(kafka_bootstrap=bootstrap), linger_ms=20)
    await producer.start()
    t0 = int(time.time() * 1000) - (batches // 1000 + 1) * 1000
    points = 0
    try:
        pending = []
        for i in range(batches):
            b = make_batch(i, t0)
            points += len(b.samples)
            pending.append(await producer.send(TOPIC, encode_batch(b), key=b.key))
            if len(pending) >= 5000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return points


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batches", type=int, default=150_000)
    ap.add_argument("--shape-memory-mb", type=int, default=None,
                    help="KEMI_FORWARDER_SHAPE_MEMORY_MB (0: every record decoded)")  # fmt: skip
    ap.add_argument("--forwarders", type=int, default=1,
                    help="forwarder processes in one group (they share the partitions)")  # fmt: skip
    ap.add_argument("--outage", type=float, default=0.0, help="stop VictoriaMetrics this long")
    ap.add_argument("--outage-at", type=float, default=6.0, help="seconds after forwarder start")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="kemi-bench-fw-"))
    broker = broker_command(free_port())
    vm_cmd = victoria_command(tmp / "vm", free_port())
    procs = []
    try:
        b = spawn(broker.argv, tmp / "broker.log")
        procs.append(b)
        vm = spawn(vm_cmd.argv, tmp / "vm.log")  # with -dedup.minScrapeInterval=1ms, as the stack
        procs.append(vm)
        host, port = broker.address.rsplit(":", 1)
        assert wait_until(lambda: port_open(host, int(port)), 30), "broker did not start"
        assert wait_until(lambda: http_ok(vm_cmd.health_url or ""), 30), "vm did not start"
        ensure_topics(broker.address, (TopicSpec(TOPIC, 12),))
        t = time.monotonic()
        points = asyncio.run(fill(broker.address, args.batches))
        print(f"filled {TOPIC}: {args.batches} batches, {points} points in "
              f"{time.monotonic() - t:.1f} s")  # fmt: skip
        env = dict(os.environ)
        env.update(
            KEMI_KAFKA_BOOTSTRAP=broker.address, KEMI_KAFKA_SESSION_TIMEOUT_MS="6000",
            KEMI_TSDB_URL=f"http://{vm_cmd.address}",
            KEMI_FORWARDER_TOPIC=TOPIC, KEMI_FORWARDER_RAW_TOPIC="", KEMI_FORWARDER_GROUP_ID="bench", KEMI_LOG_LEVEL="WARNING",
            KEMI_FORWARDER_BACKOFF_MAX="2",
        )  # fmt: skip
        if args.shape_memory_mb is not None:
            env["KEMI_FORWARDER_SHAPE_MEMORY_MB"] = str(args.shape_memory_mb)
        started = time.monotonic()
        forwarders = []
        urls = []
        for n in range(args.forwarders):
            http = free_port()
            fw = spawn(
                [sys.executable, "-m", "forwarder"], tmp / f"forwarder-{n}.log",
                env={**env, "KEMI_HTTP_PORT": str(http)},
            )  # fmt: skip
            procs.append(fw)
            forwarders.append(fw)
            urls.append(f"http://127.0.0.1:{http}/metrics")

        def total(metric: str) -> float:
            return sum(scrape(u, metric) for u in urls)

        def fw_cpu_now() -> float:
            return sum(cpu_seconds(p.pid) for p in forwarders)

        first_t = last_t = None
        first_cpu = first_written = 0.0
        samples: list[tuple[float, float]] = []
        vm_down_at = None
        restarted = False
        deadline = time.monotonic() + 600 + 2 * args.outage
        while time.monotonic() < deadline:
            written = total("kemi_forwarder_points_written_total")
            now = time.monotonic()
            samples.append((now, written))
            if written > 0 and first_t is None:
                first_t, first_cpu, first_written = now, fw_cpu_now(), written
            if args.outage and vm_down_at is None and now - started > args.outage_at:
                stop_pid(vm.pid)
                vm.wait()
                vm_down_at = now
                print(f"victoriametrics stopped at {now - started:.1f} s, {written:.0f} points")
            if vm_down_at is not None and not restarted and now - vm_down_at > args.outage:
                restarted = True
                vm = spawn(
                    vm_cmd.argv, tmp / "vm.log"
                )  # with -dedup.minScrapeInterval=1ms, as the stack
                procs[1] = vm
                wait_until(lambda: http_ok(vm_cmd.health_url or ""), 30)
                print(f"victoriametrics back at {time.monotonic() - started:.1f} s")
            if written >= points:
                last_t = now
                break
            time.sleep(0.1)
        fw_cpu = fw_cpu_now()
        vm_cpu = cpu_seconds(vm.pid)
        wall = time.monotonic() - started
        if last_t is None or first_t is None:
            print(f"did not finish: {samples[-1][1]:.0f}/{points} points written")
            print((tmp / "forwarder-0.log").read_text()[-3000:])
            return 1
        steady = last_t - first_t
        urllib.request.urlopen(f"http://{vm_cmd.address}/internal/force_flush").read()
        q = urllib.parse.urlencode({"query": 'sum(count_over_time({site="pangyo"}[2h]))'})
        with urllib.request.urlopen(f"http://{vm_cmd.address}/api/v1/query?{q}") as resp:
            stored = float(json.loads(resp.read())["data"]["result"][0]["value"][1])
        malformed = total("kemi_forwarder_malformed_records_total")
        errors = total("kemi_forwarder_write_errors_total")
        print(f"points written         {points} by {args.forwarders} forwarder process(es)")
        print(f"steady rate            {(points - first_written) / steady:,.0f} points/s "
              f"({steady:.2f} s from first to last write)")  # fmt: skip
        print(f"wall incl. group join  {wall:.2f} s ({points / wall:,.0f} points/s)")
        steady_cpu = fw_cpu - first_cpu
        steady_points = points - first_written
        print(f"forwarder CPU, steady  {steady_cpu:.2f} s for {steady_points:.0f} points "
              f"({steady_cpu / steady_points * 1e6:.2f} us/point, first to last write)")  # fmt: skip
        print(f"forwarder CPU, total   {fw_cpu:.1f} s ({fw_cpu / points * 1e6:.2f} us/point, "
              "with start-up and group join)")  # fmt: skip
        print(f"victoriametrics CPU    {vm_cpu:.1f} s (this run since its last start)")
        print(f"points stored (VM)     {stored:.0f}  malformed {malformed:.0f}  "
              f"write errors {errors:.0f}")  # fmt: skip
        print("all points stored" if stored == points else f"MISMATCH: {points - stored:.0f}")
        return 0
    finally:
        for p in reversed(procs):
            stop_pid(p.pid)


if __name__ == "__main__":
    sys.exit(main())
