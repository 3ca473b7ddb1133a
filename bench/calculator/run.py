"""Calculator throughput: raw samples/s through one Faust worker, and what limits it.

    python bench/calculator/run.py [--resources 500] [--steps 40] [--workers N]

Starts its own broker (Tansu) and etcd on free loopback ports, registers two derived
definitions (``if_in_bps = rate(ifHCInOctets) * 8`` and
``mem_used_pct = 100 * (memTotalReal - memAvailReal) / memTotalReal``), fills a
12-partition raw topic with SampleBatches (``--resources`` resources x ``--steps`` polls,
each batch ``--interfaces`` (default 4) x 4 Counter64 + sysUpTime + 2 memory gauges +
1 CPU gauge = 20 samples by default), then starts ``--workers`` ``python -m calculator``
processes of one app id and samples their /metrics until every
raw sample was processed. Reports raw samples/s (first to last processed), derived
samples produced, CPU seconds of the worker per 100k samples, and, for comparison, the
same batches through the pure per-batch path (decode + BatchProcessor + encode, no
Faust, no Kafka) in this process.
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

from bench.measure import broker_and_etcd, cpu_seconds, scrape
from calculator.definitions import compile_definitions
from calculator.processor import BatchProcessor
from calculator.state import ResourceState
from kemi_stats.codec import decode_batch, encode_batch
from kemi_stats.kafka import make_producer
from kemi_stats.model import MetricKind, Sample, SampleBatch, Source
from kemi_stats.registry.models import Derived
from kemi_stats.registry.store import Registry
from kemi_stats.settings import Settings
from kemi_stats.stack.process import spawn, stop_pid, wait_until
from kemi_stats.stack.servers import free_port, http_ok
from kemi_stats.topics import TopicSpec, ensure_topics

PARTITIONS = 12
DERIVED = {
    "if_in_bps": "rate(ifHCInOctets) * 8",
    "mem_used_pct": "100 * (memTotalReal - memAvailReal) / memTotalReal",
}
C64 = MetricKind.COUNTER64


def batches(resources: int, steps: int, t0_ms: int, interfaces: int) -> list[SampleBatch]:
    """Poll-ordered batches: every resource at step 0, then every resource at step 1, ..."""
    out = []
    for step in range(steps):
        t = t0_ms + step * 60_000
        for r in range(resources):
            samples = [Sample("sysUpTime", 100_000 + step * 6000, {}, MetricKind.GAUGE)]
            for i in range(interfaces):
                labels = {"ifName": f"eth{i}", "ifIndex": str(i + 1)}
                base = (r * 7 + i) * 1_000_000 + step * 7_500_000
                samples += [
                    Sample("ifHCInOctets", base, labels, C64),
                    Sample("ifHCOutOctets", base // 2, labels, C64),
                    Sample("ifHCInUcastPkts", base // 500, labels, C64),
                    Sample("ifHCOutUcastPkts", base // 900, labels, C64),
                ]
            samples += [
                Sample("memTotalReal", 16_000_000, {}, MetricKind.GAUGE),
                Sample("memAvailReal", 4_000_000 + step * 1000, {}, MetricKind.GAUGE),
                Sample("hrProcessorLoad", (r + step) % 100, {}, MetricKind.GAUGE),
            ]
            out.append(SampleBatch(f"net:bench-{r:04d}", t, Source.SNMP, samples,
                                   labels={"site": f"s{r % 3}"}))  # fmt: skip
    return out


def bench_pure(encoded: list[bytes]) -> tuple[float, int]:
    """The per-batch path alone: samples/s and derived samples produced."""
    defs = compile_definitions({n: Derived(expr=e) for n, e in DERIVED.items()})
    proc = BatchProcessor(defs)
    states: dict[bytes, bytes] = {}
    n_samples = produced = 0
    started = time.perf_counter()
    for raw in encoded:
        batch = decode_batch(raw)
        state = ResourceState.from_bytes(states.get(batch.key))
        res = proc.process(batch, state)
        states[batch.key] = state.to_bytes()
        for out in res.derived:
            encode_batch(out)
        n_samples += len(batch.samples)
        produced += res.produced
    return n_samples / (time.perf_counter() - started), produced


async def fill(bootstrap: str, topic: str, encoded: list[tuple[bytes, bytes]]) -> None:
    producer = make_producer(Settings(kafka_bootstrap=bootstrap), linger_ms=20)
    await producer.start()
    try:
        futures = [await producer.send(topic, value, key=key) for key, value in encoded]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--resources", type=int, default=500)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--interfaces", type=int, default=4, help="per resource (4 Counter64 each)")
    parser.add_argument("--workers", type=int, default=1, help="Faust workers of one app id")
    args = parser.parse_args()

    t0 = (int(time.time()) - 86400) * 1000
    all_batches = batches(args.resources, args.steps, t0, args.interfaces)
    encoded = [(b.key, encode_batch(b)) for b in all_batches]
    total = sum(len(b.samples) for b in all_batches)
    per = len(all_batches[0].samples)
    pure_rate, pure_produced = bench_pure([v for _, v in encoded])

    tmp = Path(tempfile.mkdtemp(prefix="bench-calc-"))
    with broker_and_etcd(tmp) as (broker, etcd):
        run(args, tmp, broker.address, etcd.address, encoded, total, per, pure_rate, pure_produced)


def run(args: argparse.Namespace, tmp: Path, kafka: str, etcd: str,
        encoded: list[tuple[bytes, bytes]], total: int, per: int, pure_rate: float,
        pure_produced: int) -> None:  # fmt: skip
    calc_pids: list[int] = []
    try:
        raw, out, groups = "bench.calc.raw", "bench.calc.out", "bench.calc.groups"
        ensure_topics(kafka, tuple(TopicSpec(n, PARTITIONS) for n in (raw, out, groups)))
        with Registry(etcd, "/kemi/") as reg:
            for name, expr in DERIVED.items():
                reg.create("derived", name, Derived(expr=expr))
        asyncio.run(fill(kafka, raw, encoded))

        env = {**os.environ, "KEMI_KAFKA_BOOTSTRAP": kafka,
               "KEMI_ETCD_ENDPOINT": etcd, "KEMI_LOG_LEVEL": "WARNING",
               "KEMI_KAFKA_SESSION_TIMEOUT_MS": "6000",
               "KEMI_CALCULATOR_APP_ID": "bench-calc", "KEMI_CALCULATOR_INPUT_TOPIC": raw,
               "KEMI_CALCULATOR_OUTPUT_TOPIC": out, "KEMI_CALCULATOR_GROUPS_TOPIC": groups,
               "KEMI_CALCULATOR_PARTITIONS": str(PARTITIONS),
               "KEMI_CALCULATOR_RECOVERY_CONSISTENCY_CHECK": "false"}  # fmt: skip
        started = time.monotonic()
        urls = []
        for n in range(args.workers):
            port = free_port()
            calc = spawn(
                [sys.executable, "-m", "calculator"], tmp / f"calculator-{n}.log",
                env={**env, "KEMI_HTTP_PORT": str(port), "KEMI_DATA_DIR": str(tmp / f"data-{n}")},
            )  # fmt: skip
            calc_pids.append(calc.pid)
            urls.append(f"http://127.0.0.1:{port}")
        for url in urls:
            if not wait_until(lambda url=url: http_ok(f"{url}/healthz"), 60):
                raise SystemExit(f"calculator did not start; see {tmp}/calculator-*.log")

        def total_of(metric: str) -> float:
            return sum(scrape(f"{u}/metrics", metric, unreachable=0.0) for u in urls)

        def cpu_now() -> float:
            return sum(cpu_seconds(pid) for pid in calc_pids)

        first_at = last_at = 0.0
        cpu_first = 0.0
        done = 0.0
        deadline = time.monotonic() + 600
        while done < total and time.monotonic() < deadline:
            done = total_of("kemi_calculator_samples_in_total")
            now = time.monotonic()
            if done and not first_at:
                first_at, cpu_first, first_done = now, cpu_now(), done
            last_at = now
            time.sleep(0.2)
        cpu = cpu_now()
        derived = total_of("kemi_calculator_derived_samples_total")
        steady = (done - first_done) / (last_at - first_at) if last_at > first_at else 0.0
        wall = last_at - started
        print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}; "
              f"{args.resources} resources x {args.steps} polls x {per} samples = {total:,} raw "
              f"samples on {PARTITIONS} partitions; definitions: rate, expression; "
              f"{args.workers} worker(s)\n")  # fmt: skip
        print("| figure | result |")
        print("|---|---|")
        print(
            f"| Faust worker, steady rate (first to last processed) | **{steady:,.0f} samples/s** |"
        )
        print(f"| Faust worker, wall time incl. start-up and group join | {wall:.1f} s "
              f"({total / wall:,.0f} samples/s) |")  # fmt: skip
        print(f"| processed / derived samples produced | {done:,.0f} / {derived:,.0f} |")
        print(f"| worker CPU per 100k raw samples (steady part) | "
              f"{(cpu - cpu_first) / max(done - first_done, 1) * 100_000:.2f} s |")  # fmt: skip
        print(f"| pure per-batch path (decode, process, encode), no Faust | "
              f"{pure_rate:,.0f} samples/s ({pure_produced:,} derived) |")  # fmt: skip
        if done < total:
            print(f"\nINCOMPLETE: {done:,.0f} of {total:,} processed; see {tmp}")
            raise SystemExit(1)
    finally:
        for pid in calc_pids:
            stop_pid(pid)


if __name__ == "__main__":
    main()
