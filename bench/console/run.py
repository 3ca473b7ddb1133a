"""Console benchmark: server time of every page with 10,000 targets and 1,000 firing alerts.

    python bench/console/run.py [--targets 10000] [--alerts 1000] [--requests 40]

Starts its own broker (Tansu), etcd and VictoriaMetrics on free loopback ports, then:

* writes ``--targets`` SNMP targets to the registry (three sites, two profiles), and two
  ``snmp_up`` samples per target to VictoriaMetrics (every tenth one failing, with a
  ``snmp_poll_error{reason}``);
* starts ``python -m alerting.evaluator`` with one rule (``bench-hot``: ``bench_v > 0``,
  ``for: 0``) and produces one crossing sample for each of ``--alerts`` resources: the
  evaluator holds that many firing alerts;
* starts ``python -m console`` on all three, waits for its first poll-status read, and
  requests each page ``--requests`` times in a row, one at a time.

Reported per page: the console's own server time (``kemi_console_page_seconds``, the
middleware's clock around the handler) as mean, and the client's p50/p99 over loopback.
The alerts page reads the evaluator at most once per ``KEMI_CONSOLE_ALERTS_MAX_AGE``;
``alerts (fresh read)`` sets it to 0 so every request includes that read.
"""

from __future__ import annotations

import asyncio
import os
import re
import statistics
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import orjson

from bench.measure import bench_options, broker_and_etcd
from kemi_stats.codec import encode_batch
from kemi_stats.kafka import make_producer
from kemi_stats.model import Sample, SampleBatch, Source
from kemi_stats.registry.builtin import load_builtin_profiles
from kemi_stats.registry.models import Rule, Target
from kemi_stats.registry.store import Registry
from kemi_stats.settings import Settings
from kemi_stats.stack.process import spawn, stop_pid, wait_until
from kemi_stats.stack.servers import ServerCommand, free_port, http_ok, victoria_command
from kemi_stats.topics import TopicSpec, ensure_topics

SITES = ("pangyo", "jeju", "seoul")
PAGES = {
    "alerts": "/alerts",
    "alerts filtered": "/alerts?severity=critical&match=site%3Djeju",
    "targets (page 1)": "/targets",
    "targets (page 100)": "/targets?page=100",
    "targets search": "/targets?q=dev-0042",
    "targets failing at one site": "/targets?status=failing&label=site%3Dpangyo",
    "target page": "/targets/dev-00042",
    "explorer": "/explorer?metric=snmp_up&resource=dev-00042&range=1h",
    "series API (1h)": "/api/series?metric=snmp_up&resource=dev-00042&range=1h",
    "platform": "/platform",
}


@contextmanager
def victoria(tmp: Path) -> Iterator[ServerCommand]:
    cmd = victoria_command(tmp / "vm", free_port())
    proc = spawn(cmd.argv, tmp / "vm.log")
    try:
        if not wait_until(lambda: http_ok(f"http://{cmd.address}/health"), 30):
            raise SystemExit("victoriametrics did not start")
        yield cmd
    finally:
        stop_pid(proc.pid)


def write_registry(etcd: str, prefix: str, targets: int) -> None:
    docs = [
        ("target", f"dev-{i:05d}", Target.model_validate({
            "host": "127.0.0.1", "port": 1161, "credential": "lab",
            "profiles": ["system", "if-mib"], "labels": {"site": SITES[i % 3]},
        }))
        for i in range(targets)
    ]  # fmt: skip
    docs += [("profile", name, p) for name, p in load_builtin_profiles().items()]
    docs.append(("rule", "bench-hot", Rule.model_validate({
        "metric": "bench_v", "condition": {"op": ">", "threshold": 0}, "for": "0s",
        "severity": "critical",
    })))  # fmt: skip
    with Registry(etcd, prefix) as reg:
        for start in range(0, len(docs), 1000):
            reg.write_many(docs[start : start + 1000])


def write_poll_results(vm: str, targets: int) -> None:
    now = int(time.time() * 1000)
    lines = []
    for i in range(targets):
        up = 0 if i % 10 == 0 else 1
        for t in (now - 15_000, now):
            lines.append(f'snmp_up{{resource="dev-{i:05d}",target="dev-{i:05d}"}} {up} {t}')
            if not up:
                lines.append(f'snmp_poll_error{{resource="dev-{i:05d}",reason="timeout"}} 1 {t}')
    req = urllib.request.Request(
        f"http://{vm}/api/v1/import/prometheus", data="\n".join(lines).encode(), method="POST"
    )
    urllib.request.urlopen(req, timeout=60).close()
    urllib.request.urlopen(f"http://{vm}/internal/force_flush", timeout=30).close()


async def produce_crossings(broker: str, topic: str, alerts: int) -> None:
    producer = make_producer(Settings(kafka_bootstrap=broker))
    await producer.start()
    now = int(time.time() * 1000)
    for i in range(alerts):
        batch = SampleBatch(f"dev-{i:05d}", now, Source.PUSH, [Sample("bench_v", 1.0)],
                            {"site": SITES[i % 3]})  # fmt: skip
        await producer.send(topic, encode_batch(batch), key=batch.key)
    await producer.flush()
    await producer.stop()


def get_json(url: str) -> dict[str, object]:
    with urllib.request.urlopen(url, timeout=30) as resp:
        return dict(orjson.loads(resp.read()))


def page_seconds(metrics_url: str) -> dict[str, tuple[float, float]]:
    """route name -> (sum, count) of kemi_console_page_seconds."""
    text = urllib.request.urlopen(metrics_url, timeout=10).read().decode()
    out: dict[str, list[float]] = {}
    for m in re.finditer(
        r'^kemi_console_page_seconds_(sum|count)\{page="([^"]+)"\} (\S+)$', text, re.M
    ):
        out.setdefault(m.group(2), [0.0, 0.0])[["sum", "count"].index(m.group(1))] = float(
            m.group(3)
        )
    return {k: (v[0], v[1]) for k, v in out.items()}


def poll_results_read(url: str) -> bool:
    """Whether the console's targets page counts any target as ok (its first TSDB read)."""
    page = urllib.request.urlopen(url + "/targets", timeout=30).read().decode()
    found = re.search(r'class="badge ok">(\d+) ok<', page)
    return bool(found) and int(found.group(1)) > 0


def measure(url: str, path: str, n: int) -> list[float]:
    times = []
    for _ in range(n):
        started = time.perf_counter()
        with urllib.request.urlopen(url + path, timeout=30) as resp:
            resp.read()
            assert resp.status == 200, path
        times.append(time.perf_counter() - started)
    return times


def start_console(env: dict[str, str], tmp: Path, name: str) -> tuple[int, str]:
    port = free_port()
    proc = spawn([sys.executable, "-m", "console"], tmp / f"{name}.log",
                 env={**env, "KEMI_HTTP_PORT": str(port)})  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    if not wait_until(lambda: http_ok(url + "/healthz"), 60):
        raise SystemExit(f"console did not start; see {tmp / (name + '.log')}")
    return proc.pid, url


def main() -> None:
    opts = bench_options(__doc__, targets=10_000, alerts=1_000, requests=40)
    with tempfile.TemporaryDirectory(prefix="kemi-bench-console-") as tmp_name:
        tmp = Path(tmp_name)
        with broker_and_etcd(tmp) as (broker, etcd), victoria(tmp) as vm:
            prefix = "/bench-console/"
            started = time.monotonic()
            write_registry(etcd.address, prefix, opts.targets)
            write_poll_results(vm.address, opts.targets)
            print(f"registry and poll results for {opts.targets} targets in "
                  f"{time.monotonic() - started:.1f} s", flush=True)  # fmt: skip
            topic = "bench.console.metrics"
            ensure_topics(
                broker.address, (TopicSpec(topic, 3), TopicSpec("bench.console.alerts", 3))
            )
            env = {**os.environ, "KEMI_KAFKA_BOOTSTRAP": broker.address,
                   "KEMI_ETCD_ENDPOINT": etcd.address, "KEMI_ETCD_PREFIX": prefix,
                   "KEMI_TSDB_URL": f"http://{vm.address}", "KEMI_LOG_LEVEL": "WARNING",
                   "KEMI_DATA_DIR": str(tmp / "data"), "KEMI_ALERTING_METRICS_TOPIC": topic, "KEMI_ALERTING_RAW_TOPIC": "",
                   "KEMI_ALERTING_ALERTS_TOPIC": "bench.console.alerts"}  # fmt: skip
            eval_port = free_port()
            evaluator = spawn([sys.executable, "-m", "alerting.evaluator"], tmp / "evaluator.log",
                              env={**env, "KEMI_HTTP_PORT": str(eval_port)})  # fmt: skip
            eval_url = f"http://127.0.0.1:{eval_port}"
            pids = [evaluator.pid]
            try:
                if not wait_until(lambda: http_ok(eval_url + "/healthz"), 60):
                    raise SystemExit(f"evaluator did not start; see {tmp / 'evaluator.log'}")
                asyncio.run(produce_crossings(broker.address, topic, opts.alerts))

                def firing() -> int:
                    alerts = get_json(eval_url + "/api/v1/alerts")["alerts"]
                    assert isinstance(alerts, list)
                    return sum(1 for a in alerts if a["status"] == "firing")

                if not wait_until(lambda: firing() >= opts.alerts, 120, interval=1):
                    raise SystemExit(f"the evaluator holds {firing()} firing alerts")
                print(f"evaluator holds {firing()} firing alerts", flush=True)
                env["KEMI_CONSOLE_EVALUATOR_URL"] = eval_url
                env["KEMI_CONSOLE_SERVICES"] = f"alert-evaluator={eval_url}"
                results: dict[str, tuple[float, float, float]] = {}
                for name, max_age in (("cached", "2"), ("fresh", "0")):
                    pid, url = start_console(
                        env | {"KEMI_CONSOLE_ALERTS_MAX_AGE": max_age}, tmp, name
                    )
                    pids.append(pid)
                    ok = wait_until(lambda u=url: poll_results_read(u), 60, interval=0.5)
                    assert ok, "the console never read the poll results"
                    pages = PAGES if name == "cached" else {"alerts (fresh read)": "/alerts"}
                    for page, path in pages.items():
                        measure(url, path, 3)  # warm up
                        before = page_seconds(url + "/metrics")
                        times = measure(url, path, opts.requests)
                        after = page_seconds(url + "/metrics")
                        grown = {k: (after[k][0] - before.get(k, (0.0, 0.0))[0],
                                     after[k][1] - before.get(k, (0.0, 0.0))[1]) for k in after}  # fmt: skip
                        total, count = max(grown.values(), key=lambda sc: sc[1])
                        times.sort()
                        results[page] = (
                            total / count if count else float("nan"),
                            statistics.median(times),
                            times[min(len(times) - 1, int(len(times) * 0.99))],
                        )
                        print(f"{page}: server mean {results[page][0] * 1000:.1f} ms, client "
                              f"p50 {results[page][1] * 1000:.1f} ms, p99 {results[page][2] * 1000:.1f} ms",
                              flush=True)  # fmt: skip
            finally:
                for pid in pids:
                    stop_pid(pid)
    print()
    print(
        f"| page ({opts.targets:,} targets, {opts.alerts:,} firing alerts) | server mean | client p50 | client p99 |"
    )
    print("|---|---|---|---|")
    for page, (server, p50, p99) in results.items():
        print(f"| {page} | {server * 1000:.1f} ms | {p50 * 1000:.1f} ms | {p99 * 1000:.1f} ms |")


if __name__ == "__main__":
    main()
