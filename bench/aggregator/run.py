"""Aggregator throughput: samples/s from HTTP clients into the real broker, one process.

    python bench/aggregator/run.py [--seconds 20] [--clients 4] [--lines 5000]

Starts its own broker (Tansu) and etcd on free loopback ports, registers a push token,
starts ``python -m aggregator`` and drives it with several concurrent aiohttp clients,
each posting pre-built bodies back to back: Influx line protocol at ``/api/v2/write``
(``--lines`` lines per request, 10 fields per line, 1000 hosts) and then JSON at
``/api/v1/push`` (the same samples as an array of push objects). Every request must
answer 204, which the aggregator only sends after the broker acked every record.

Reports samples/s, requests/s, p50/p99 request latency, CPU seconds of the aggregator
per 100k samples, and checks the sample count against the records on the topic.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import itertools
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.measure import bench_options, broker_and_etcd, cpu_seconds
from kemi_stats.kafka import make_consumer
from kemi_stats.proto import kemi_pb2 as pb
from kemi_stats.registry.models import Token
from kemi_stats.registry.store import Registry
from kemi_stats.settings import Settings
from kemi_stats.stack.process import spawn, stop_pid, wait_until
from kemi_stats.stack.servers import free_port, http_ok
from kemi_stats.topics import TopicSpec, ensure_topics

TOPIC = "bench.agg.raw"
SECRET = "bench-secret-0123456789"
FIELDS = 10
HOSTS = 1000


def _bodies(n_bodies: int, per_body: int, t0_s: int) -> list[list[tuple[int, int, int]]]:
    """(host, second, k) per line or object; host k % HOSTS at second t0 + k // HOSTS."""
    k = itertools.count()
    return [[(i % HOSTS, t0_s + i // HOSTS, i) for i in itertools.islice(k, per_body)]
            for _ in range(n_bodies)]  # fmt: skip


def line_bodies(n_bodies: int, lines: int, t0_s: int) -> list[bytes]:
    """Line-protocol bodies; each line is one host at one second with FIELDS fields."""
    return [
        "".join(
            f"cpu,host=host-{h:04d},site=s{h % 3} "
            + ",".join(f"f{j}={(k * 7 + j) % 1000}.5" for j in range(FIELDS))
            + f" {sec}\n"
            for h, sec, k in body
        ).encode()
        for body in _bodies(n_bodies, lines, t0_s)
    ]


def json_bodies(n_bodies: int, objects: int, t0_s: int) -> list[bytes]:
    """JSON push bodies with the same samples: objects of FIELDS metrics each."""

    def push(h: int, sec: int, k: int) -> dict[str, object]:
        metrics = {f"cpu_f{j}": (k * 7 + j) % 1000 + 0.5 for j in range(FIELDS)}
        return {"resource_id": f"host-{h:04d}", "time": sec, "labels": {"site": f"s{h % 3}"},
                "metrics": metrics}  # fmt: skip

    return [orjson.dumps([push(*row) for row in body]) for body in _bodies(n_bodies, objects, t0_s)]


async def drive(
    url: str,
    bodies: list[bytes],
    content_type: str,
    clients: int,
    seconds: float,
    extra_headers: dict[str, str] | None = None,
) -> tuple[int, list[float], float]:
    """Post the bodies round-robin from ``clients`` tasks for ``seconds``; (requests, latencies)."""
    latencies: list[float] = []
    failures: list[str] = []
    stop_at = time.monotonic() + seconds
    headers = {"Authorization": f"Bearer {SECRET}", "Content-Type": content_type,
               **(extra_headers or {})}  # fmt: skip
    counter = itertools.count()

    async def client(session: aiohttp.ClientSession) -> None:
        while time.monotonic() < stop_at:
            body = bodies[next(counter) % len(bodies)]
            t = time.perf_counter()
            async with session.post(url, data=body, headers=headers) as resp:
                await resp.read()
                if resp.status != 204:
                    failures.append(f"{resp.status} {(await resp.text())[:200]}")
                    await asyncio.sleep(0.05)
                    continue
            latencies.append(time.perf_counter() - t)

    started = time.monotonic()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        await asyncio.gather(*(client(session) for _ in range(clients)))
    took = time.monotonic() - started
    if failures:
        print(f"  {len(failures)} non-204 answers, first: {failures[0]}", file=sys.stderr)
    return len(latencies), latencies, took


async def count_topic(bootstrap: str, want: int, wait: float = 60) -> int:
    """Samples on the bench topic (reads until ``want``, or nothing came for ``wait`` s).

    Counts with the protobuf message alone (no model objects): tens of millions of
    samples must be counted in a minute or two.
    """
    consumer = make_consumer(Settings(kafka_bootstrap=bootstrap), TOPIC, group_id="bench-count")
    await consumer.start()
    n = 0
    deadline = time.monotonic() + wait
    try:
        while n < want and time.monotonic() < deadline:
            for recs in (await consumer.getmany(timeout_ms=500, max_records=50_000)).values():
                n += sum(len(pb.SampleBatch.FromString(r.value).samples) for r in recs)
                deadline = time.monotonic() + wait
    finally:
        await consumer.stop()
    return n


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else values[0]


async def amain(args: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench-agg-"))
    with broker_and_etcd(tmp) as (broker, etcd):
        await run(args, tmp, broker.address, etcd.address)


async def run(args: argparse.Namespace, tmp: Path, kafka: str, etcd: str) -> None:
    agg_pid = 0
    try:
        ensure_topics(kafka, (TopicSpec(TOPIC, 12),))
        with Registry(etcd, "/kemi/") as reg:
            reg.create("token", "bench", Token(hash=hashlib.sha256(SECRET.encode()).hexdigest()))
        port = free_port()
        env = {**os.environ, "KEMI_KAFKA_BOOTSTRAP": kafka,
               "KEMI_ETCD_ENDPOINT": etcd, "KEMI_HTTP_PORT": str(port),
               "KEMI_AGGREGATOR_TOPIC": TOPIC, "KEMI_LOG_LEVEL": "WARNING",
               "KEMI_AGGREGATOR_MAX_FUTURE": "30d"}  # fmt: skip
        agg = spawn([sys.executable, "-m", "aggregator"], tmp / "aggregator.log", env=env)
        agg_pid = agg.pid
        base = f"http://127.0.0.1:{port}"
        if not wait_until(lambda: http_ok(base + "/healthz"), 30):
            raise SystemExit(f"aggregator did not start; see {tmp / 'aggregator.log'}")
        t0 = int(time.time()) - 3600
        runs = [
            ("line protocol", f"{base}/api/v2/write?precision=s", "text/plain; charset=utf-8",
             line_bodies(16, args.lines, t0)),
            ("JSON", f"{base}/api/v1/push", "application/json",
             json_bodies(16, args.lines, t0 + 10_000)),
        ]  # fmt: skip
        # warm-up: the producer connects and the first requests pay for imports
        warm, _, _ = await drive(runs[0][1], runs[0][3][:1], runs[0][2], 1, 2.0)
        print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}; "
              f"{args.clients} clients, {args.lines} lines/objects x {FIELDS} fields per request\n")  # fmt: skip
        print("| format | samples/s | requests/s | p50 ms | p99 ms | CPU s per 100k samples |")
        print("|---|---|---|---|---|---|")
        total = 0
        for name, url, ctype, bodies in runs:
            cpu0 = cpu_seconds(agg_pid)
            n, lat, took = await drive(url, bodies, ctype, args.clients, args.seconds)
            cpu = cpu_seconds(agg_pid) - cpu0
            samples = n * args.lines * FIELDS
            total += samples
            print(f"| {name} | {samples / took:,.0f} | {n / took:.1f} | "
                  f"{pct(lat, 50) * 1000:.0f} | {pct(lat, 99) * 1000:.0f} | "
                  f"{cpu / samples * 100_000:.2f} |", flush=True)  # fmt: skip
        total += warm * args.lines * FIELDS
        on_topic = await count_topic(kafka, total)
        print(f"\nsamples acknowledged with 204 (warm-up included): {total:,}; "
              f"on the topic: {on_topic:,}")  # fmt: skip
    finally:
        if agg_pid:
            stop_pid(agg_pid)


def main() -> None:
    asyncio.run(amain(bench_options(__doc__, seconds=20.0, clients=4, lines=5000)))


if __name__ == "__main__":
    main()
