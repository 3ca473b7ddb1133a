"""Alerting benchmarks.

    python bench/alerting/run.py [--samples 500000] [--kafka-batches 30000] [--webhooks 200]

1. **engine**: 1,000 rules over 10,000 series (1,000 resources x 10 metrics; each rule
   selects one metric at one of 100 sites, so every series is watched by one rule and
   every sample is checked against the 100 rules of its metric once, at routing time).
   Pre-encoded SampleBatches are decoded and evaluated in-process: samples/s of
   ``decode_batch`` + ``Engine.process``.
2. **evaluator process**: the same rules and batches read from a 12-partition topic by
   ``python -m alerting.evaluator`` (fetch, decode, evaluate, checkpoint): samples/s
   from its first to its last consumed batch, sampled from its /metrics.
3. **latency**: a rule with ``for: 0``; one sample crossing the threshold produced to
   ``kemi.metrics.raw`` -> evaluator (which reads the raw topic itself) -> kemi.alerts ->
   notifier (group_wait 0) -> a signed webhook received by an aiohttp receiver in this
   process; p50/p99 over N. Then the same for a derived metric (``lat2 = lat * 2``):
   kemi.metrics.raw -> calculator (Faust) -> kemi.metrics -> evaluator -> ..., to show
   the calculator's share. The calculator runs in both, as on a stack.

Starts its own broker (Tansu) and etcd on free loopback ports and stops them.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from alerting.evaluator.engine import Engine
from bench.measure import bench_options, throwaway_keyring
from demo.receiver import RecordingReceiver
from kemi_stats.codec import decode_batch, encode_batch
from kemi_stats.kafka import make_producer
from kemi_stats.model import Sample, SampleBatch, Source
from kemi_stats.registry.models import Derived, Receiver, Rule
from kemi_stats.registry.store import Registry
from kemi_stats.settings import Settings
from kemi_stats.stack.process import spawn, stop_pid, wait_until
from kemi_stats.stack.servers import (
    broker_command,
    etcd_command,
    free_port,
    http_ok,
    port_open,
)
from kemi_stats.topics import ALL_TOPICS, TopicSpec, ensure_topics

#: the bench receiver's signing secret (16 bytes at least, as every new receiver's)
BENCH_SECRET = "bench-signing-secret-0123"
METRICS = [f"m{i}" for i in range(10)]
SITES = [f"site{i:02d}" for i in range(100)]
RESOURCES = 1000


def rules() -> dict[str, Rule]:
    out = {}
    for i in range(1000):
        metric, site = METRICS[i % 10], SITES[i // 10]
        out[f"r{i:04d}"] = Rule.model_validate(
            {"metric": metric, "match": [f"site={site}"], "condition": {"op": ">", "threshold": 90},
             "for": "2m", "clear": {"op": "<", "threshold": 80}, "receivers": ["bench"]}
        )  # fmt: skip
    return out


def batches(n: int) -> list[bytes]:
    """n encoded batches cycling over 1,000 resources, 10 samples each, 1 s apart per resource."""
    out = []
    t0 = int(time.time() * 1000) - 10 * 86400 * 1000
    for i in range(n):
        r = i % RESOURCES
        t = t0 + (i // RESOURCES) * 1000
        # mostly quiet values, with a slow wave so some series go pending/firing/resolved
        wave = 85 + 10 * ((i // RESOURCES + r) % 7 - 3) / 3
        b = SampleBatch(
            f"host:h{r:04d}", t, Source.SNMP,
            [Sample(m, wave if j == r % 10 else 10.0 + j) for j, m in enumerate(METRICS)],
            {"site": SITES[r // 10]},
        )  # fmt: skip
        out.append(encode_batch(b))
    return out


def bench_engine(n_samples: int) -> dict[str, float]:
    data = batches(n_samples // 10)
    engine = Engine()
    engine.set_rules(rules())
    # warm-up: routes resolved once per series
    for raw in data[: RESOURCES * 2]:
        engine.process(decode_batch(raw))
    started = time.perf_counter()
    cpu0 = time.process_time()
    events = 0
    for raw in data:
        events += len(engine.process(decode_batch(raw)))
    took = time.perf_counter() - started
    cpu = time.process_time() - cpu0
    n = len(data) * 10
    decode_only = time.perf_counter()
    for raw in data:
        decode_batch(raw)
    decode_took = time.perf_counter() - decode_only
    return {"samples": n, "seconds": took, "rate": n / took, "cpu_rate": n / cpu,
            "series": len(engine.series), "transitions": events,
            "decode_share": decode_took / took}  # fmt: skip


def scrape(url: str, name: str) -> float:
    with urllib.request.urlopen(url + "/metrics", timeout=2) as r:
        text = r.read().decode()
    m = re.search(rf"^{name} ([0-9.e+]+)$", text, re.M)
    return float(m.group(1)) if m else 0.0


class Servers:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.broker = broker_command(free_port())
        self.etcd = etcd_command(tmp / "etcd", free_port(), free_port())
        self.procs = [
            spawn(self.broker.argv, tmp / "broker.log"),
            spawn(self.etcd.argv, tmp / "etcd.log"),
        ]
        host, port = self.broker.address.rsplit(":", 1)
        assert wait_until(lambda: port_open(host, int(port)), 30), "broker"
        assert wait_until(lambda: http_ok(self.etcd.health_url or ""), 30), "etcd"

    def stop(self) -> None:
        for p in self.procs:
            stop_pid(p.pid)


def service_env(servers: Servers, prefix: str, data_dir: Path, **alerting: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        KEMI_KAFKA_BOOTSTRAP=servers.broker.address, KEMI_ETCD_ENDPOINT=servers.etcd.address,
        KEMI_ETCD_PREFIX=prefix, KEMI_DATA_DIR=str(data_dir), KEMI_KAFKA_SESSION_TIMEOUT_MS="6000",
        KEMI_LOG_LEVEL="WARNING",
    )  # fmt: skip
    env.update({f"KEMI_ALERTING_{k.upper()}": v for k, v in alerting.items()})
    return env


async def bench_process(servers: Servers, n_batches: int) -> dict[str, float]:
    topic = "bench.metrics"
    ensure_topics(servers.broker.address, (TopicSpec(topic, 12),))
    prefix = "/bench-eval/"
    with Registry(servers.etcd.address, prefix) as reg:
        reg.write_many([("rule", n, r) for n, r in rules().items()])
    settings = Settings(kafka_bootstrap=servers.broker.address)
    producer = make_producer(settings)
    await producer.start()
    data = batches(n_batches)
    for i, raw in enumerate(data):
        await producer.send(topic, raw, key=f"host:h{i % RESOURCES:04d}".encode())
    await producer.flush()
    await producer.stop()
    port = free_port()
    env = service_env(servers, prefix, servers.tmp / "eval-data", metrics_topic=topic, raw_topic="",
                      alerts_topic="bench.alerts", evaluator_group="bench-eval")  # fmt: skip
    env["KEMI_HTTP_PORT"] = str(port)
    url = f"http://127.0.0.1:{port}"
    proc = spawn(
        [sys.executable, "-m", "alerting.evaluator"], servers.tmp / "evaluator.log", env=env
    )
    try:
        assert wait_until(lambda: http_ok(url + "/healthz"), 60), "evaluator"
        first = last = None
        seen = 0.0
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            seen = scrape(url, "kemi_alert_evaluator_batches_total")
            now = time.monotonic()
            if seen and first is None:
                first = (now, seen)
            if seen >= n_batches:
                last = (now, seen)
                break
            await asyncio.sleep(0.1)
        assert first and last, f"evaluator consumed {seen} of {n_batches}"
        samples = (last[1] - first[1]) * 10
        took = last[0] - first[0]
        return {"samples": samples, "seconds": took, "rate": samples / took}
    finally:
        stop_pid(proc.pid)


async def bench_latency(servers: Servers, n: int, derived: bool) -> dict[str, float]:
    ensure_topics(servers.broker.address, ALL_TOPICS)
    prefix = f"/bench-lat-{uuid.uuid4().hex[:6]}/"
    receiver = await RecordingReceiver(secret=BENCH_SECRET).start()
    with Registry(servers.etcd.address, prefix, keyring=throwaway_keyring(servers.tmp)) as reg:
        reg.put("receiver", "bench", Receiver(url=receiver.url, secret=BENCH_SECRET))
        if derived:
            reg.put("derived", "lat2", Derived(expr="lat * 2"))
        reg.put("rule", "lat", Rule.model_validate(
            {"metric": "lat2" if derived else "lat", "condition": {"op": ">", "threshold": 0.5},
             "receivers": ["bench"]}
        ))  # fmt: skip
    tag = uuid.uuid4().hex[:6]
    env = service_env(servers, prefix, servers.tmp / f"lat-data-{tag}", group_wait="0",
                      evaluator_group=f"e-{tag}", notifier_group=f"n-{tag}")  # fmt: skip
    env.update(
        KEMI_CALCULATOR_APP_ID=f"c-{tag}", KEMI_CALCULATOR_RECOVERY_CONSISTENCY_CHECK="false"
    )
    procs = []
    modules = ["alerting.evaluator", "alerting.notifier", "calculator"]
    topic = "kemi.metrics.raw"
    for module in modules:
        e = dict(env, KEMI_HTTP_PORT=str(free_port()))
        procs.append(spawn([sys.executable, "-m", module], servers.tmp / f"{module}.log", env=e))
        assert wait_until(
            lambda e=e: http_ok(f"http://127.0.0.1:{e['KEMI_HTTP_PORT']}/healthz"), 60
        )
    producer = make_producer(Settings(kafka_bootstrap=servers.broker.address))
    await producer.start()
    latencies: list[float] = []
    try:
        # warm-up until the pipeline answers end to end
        for i in range(200):
            await send_sample(producer, topic, f"warm:{tag}:{i}")
            if await receiver.wait_for(
                lambda rs: any(
                    a["resource"].startswith(f"warm:{tag}:") for x in rs for a in x.json["alerts"]
                ),
                0.5,
            ):
                break
        await asyncio.sleep(1.0)
        base = len(receiver.requests)
        for i in range(n):
            resource = f"lat:{tag}:{i}"
            sent = time.monotonic()
            await send_sample(producer, topic, resource)
            ok = await receiver.wait_for(
                lambda rs, r=resource: any(
                    a["resource"] == r for x in rs[base:] for a in x.json["alerts"]
                ),
                10,
            )
            assert ok, f"no webhook for {resource}"
            got = next(
                x for x in receiver.requests[base:] if x.json["alerts"][0]["resource"] == resource
            )
            latencies.append(got.at - sent)
            await asyncio.sleep(0.02)
    finally:
        await producer.stop()
        for p in procs:
            stop_pid(p.pid)
        await receiver.stop()
    latencies.sort()
    q = statistics.quantiles(latencies, n=100)
    return {"n": n, "p50": q[49], "p99": q[98], "max": latencies[-1], "min": latencies[0]}


async def send_sample(producer, topic: str, resource: str) -> None:  # type: ignore[no-untyped-def]
    b = SampleBatch(resource, int(time.time() * 1000), Source.PUSH, [Sample("lat", 1.0)])
    await producer.send_and_wait(topic, encode_batch(b), key=b.key)


async def amain(args: argparse.Namespace) -> None:
    print(f"load before: {os.getloadavg()[0]:.2f} (1-min), {os.cpu_count()} cores")
    e = bench_engine(args.samples)
    print("\n| benchmark | samples | seconds | samples/s | notes |\n|---|---|---|---|---|")
    print(f"| engine in-process (decode + evaluate) | {e['samples']:.0f} | {e['seconds']:.2f} | "
          f"{e['rate']:,.0f} | {e['series']:.0f} series, {e['transitions']:.0f} transitions, "
          f"decode is {e['decode_share']:.0%} of the time |")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="bench-alerting-") as tmp:
        servers = Servers(Path(tmp))
        try:
            if args.kafka_batches:
                p = await bench_process(servers, args.kafka_batches)
                print(f"| evaluator process from a 12-partition topic | {p['samples']:.0f} | "
                      f"{p['seconds']:.2f} | {p['rate']:,.0f} | fetch+decode+evaluate+checkpoint |")  # fmt: skip
            if args.webhooks:
                print()
                for derived, start in (
                    (False, "raw metric: kemi.metrics.raw"),
                    (True, "derived metric: kemi.metrics.raw -> calculator -> kemi.metrics"),
                ):
                    lat = await bench_latency(servers, args.webhooks, derived)
                    print(f"latency {start} -> evaluator -> notifier -> signed webhook "
                          f"(for: 0, group_wait 0), n={lat['n']}: "
                          f"p50 {lat['p50'] * 1000:.1f} ms, p99 {lat['p99'] * 1000:.1f} ms, "
                          f"min {lat['min'] * 1000:.1f} ms, max {lat['max'] * 1000:.1f} ms")  # fmt: skip
        finally:
            servers.stop()
    print(f"load after: {os.getloadavg()[0]:.2f} (1-min)")


def main() -> None:
    args = bench_options(__doc__, samples=500_000, kafka_batches=30_000, webhooks=200)
    asyncio.run(amain(args))


if __name__ == "__main__":
    main()
