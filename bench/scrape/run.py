"""Scrape targets: one poll worker process against Debian's Prometheus, same pages, same run.

    python bench/scrape/run.py [--targets 100] [--series 1000] [--interval 1.0]
                               [--seconds 20] [--rounds 3]

Starts a broker (Tansu) and etcd, one process serving ``--targets`` node_exporter-sized
pages (``--series`` series each, values moving on at every request: bench/scrape/pages.py),
the poll scheduler and one poll worker with every page registered as a scrape target,
and Prometheus scraping the same pages at the same interval. Both scrape at once; each
round measures, over ``--seconds``, the scrapes each one was served (counted by the page
server, by User-Agent) and the CPU seconds of the worker and of Prometheus (from /proc).

The figure is CPU seconds per 1,000 scrapes, ours / Prometheus', the median of the
rounds. Prometheus' figure includes appending to its TSDB (its job); ours includes
producing every scrape to Kafka and waiting for the ack (ours).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.measure import bench_options, broker_and_etcd, cpu_seconds, scrape, start_poller
from kemi_stats.registry.models import Target
from kemi_stats.registry.store import Registry
from kemi_stats.stack.process import spawn, stop_pid, wait_until
from kemi_stats.stack.servers import free_port, http_ok
from kemi_stats.topics import TopicSpec, ensure_topics

HERE = Path(__file__).resolve().parent


def counts(pages: str) -> dict[str, int]:
    with urllib.request.urlopen(f"{pages}/counts", timeout=5) as resp:
        return dict(json.loads(resp.read()))


def prometheus_config(path: Path, pages: str, targets: int, interval: float) -> None:
    host = pages.removeprefix("http://")
    every = f"{round(interval * 1000)}ms"
    config = {
        "global": {"scrape_interval": every, "scrape_timeout": every},
        "scrape_configs": [
            {"job_name": f"t{n}", "metrics_path": f"/t/{n}/metrics",
             "static_configs": [{"targets": [host]}]}
            for n in range(targets)
        ],
    }  # fmt: skip
    path.write_text(yaml.safe_dump(config))


def main(args: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench-scrape-"))
    pids: list[int] = []
    targets, interval = int(args.targets), float(args.interval)
    try:
        with broker_and_etcd(tmp) as (broker, etcd):
            jobs, raw = "bench.scrape.jobs", "bench.scrape.raw"
            ensure_topics(broker.address, (TopicSpec(jobs, 6), TopicSpec(raw, 6)))
            page_port = free_port()
            pages = f"http://127.0.0.1:{page_port}"
            pids.append(spawn([sys.executable, str(HERE / "pages.py"), str(page_port),
                               str(targets), str(int(args.series))], tmp / "pages.log").pid)  # fmt: skip
            if not wait_until(lambda: http_ok(f"{pages}/counts"), 30):
                raise SystemExit(f"the page server did not start; see {tmp}")
            with Registry(etcd.address, "/kemi/") as reg:
                reg.write_many(
                    ("target", f"page-{n}", Target.model_validate({
                        "scrape_url": f"{pages}/t/{n}/metrics", "interval": interval,
                        "deadline": interval}))
                    for n in range(targets)
                )  # fmt: skip
            poller = start_poller(tmp, broker, etcd, jobs, raw)
            worker_port = poller.worker_port
            pids += [poller.scheduler, poller.worker]
            prom_port = free_port()
            prometheus_config(tmp / "prometheus.yml", pages, targets, interval)
            prom = spawn([shutil.which("prometheus") or "/usr/bin/prometheus",
                          f"--config.file={tmp / 'prometheus.yml'}",
                          f"--storage.tsdb.path={tmp / 'prom-data'}",
                          f"--web.listen-address=127.0.0.1:{prom_port}", "--log.level=warn"],
                         tmp / "prometheus.log")  # fmt: skip
            pids.append(prom.pid)
            for url in (f"http://127.0.0.1:{worker_port}/healthz",
                        f"http://127.0.0.1:{prom_port}/-/ready"):  # fmt: skip
                if not wait_until(lambda u=url: http_ok(u), 60):
                    raise SystemExit(f"{url} did not answer; logs in {tmp}")
            time.sleep(max(10.0, 3 * interval))  # warm-up: first pages read in full
            print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}; "
                  f"{targets} targets of {int(args.series)} series every {interval:g} s, "
                  f"scraped by both at once\n")  # fmt: skip
            warm_errors = scrape(f"http://127.0.0.1:{worker_port}/metrics",
                                 "kemi_poller_errors_total")  # fmt: skip
            print("| round | scraper | scrapes/s | CPU s per 1,000 scrapes | ratio |")
            print("|---|---|---|---|---|")
            ratios = []
            for round_ in range(1, int(args.rounds) + 1):
                c0, ours0, theirs0 = (
                    counts(pages),
                    cpu_seconds(poller.worker),
                    cpu_seconds(prom.pid),
                )
                sched0 = cpu_seconds(poller.scheduler)
                started = time.monotonic()
                time.sleep(float(args.seconds))
                took = time.monotonic() - started
                c1, ours1, theirs1 = (
                    counts(pages),
                    cpu_seconds(poller.worker),
                    cpu_seconds(prom.pid),
                )
                ours_n, theirs_n = c1["other"] - c0["other"], c1["prometheus"] - c0["prometheus"]
                ours = (ours1 - ours0) / ours_n * 1000
                theirs = (theirs1 - theirs0) / theirs_n * 1000
                ratios.append(ours / theirs)
                sched = (cpu_seconds(poller.scheduler) - sched0) / ours_n * 1000
                print(f"| {round_} | kemi-stats poll worker | {ours_n / took:,.1f} | {ours:.2f} "
                      f"(scheduler {sched:.2f}) | {ours / theirs:.2f}x |")  # fmt: skip
                print(f"| {round_} | Prometheus | {theirs_n / took:,.1f} | {theirs:.2f} | |",
                      flush=True)  # fmt: skip
            with urllib.request.urlopen(f"http://127.0.0.1:{worker_port}/metrics") as resp:
                page = resp.read().decode()
            errors = re.findall(r'^kemi_poller_errors_total\{reason="(\w+)"\} (\S+)$', page, re.M)
            ok = scrape(f"http://127.0.0.1:{worker_port}/metrics", "kemi_poller_polls_total")
            print(f"\nCPU per scrape, poll worker / Prometheus: median **{statistics.median(ratios):.2f}x**; "
                  f"worker: {ok:.0f} scrapes, failed by reason: "
                  f"{', '.join(f'{r} {float(n):.0f}' for r, n in errors) or 'none'} "
                  f"({warm_errors:.0f} of them in the warm-up)")  # fmt: skip
    finally:
        for pid in pids:
            stop_pid(pid)


if __name__ == "__main__":
    main(bench_options(__doc__, targets=100, series=1000, interval=1.0, seconds=20.0, rounds=3))
