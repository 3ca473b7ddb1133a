"""Pipeline capacity: the highest push rate the whole local stack sustains, and who limits it.

    python bench/pipeline/run.py [--targets 300] [--interval 60] [--start-rate 40000]
        [--step 60] [--hold 300] [--lag-limit 5] [--workers calculator=2] [--partitions 4]
        [--out FILE]

1. ``kemi-stats up`` (every service, one process each, as a user runs it; its own data
   directory and free loopback ports, no demo), plus:
   * snmpsim serving ``--targets`` simulated devices (if-mib, system) that the poller
     polls every ``--interval`` seconds, registered with the CLI's registry;
   * derived metrics (a counter rate, an expression, a group sum by site) and alert
     rules over the pushed metrics, and a signed webhook receiver in this process;
   * ``--pushers`` push clients (``pusher.py``): a fleet of resources, each pushing
     ``--samples`` samples every 10 s, half the bodies line protocol, half JSON.
   * with ``--workers SERVICE=N``, N-1 more processes of that service (same settings,
     own port and data directory), which share its consumer group's partitions.
2. The search: a step holds a push rate for ``--warm`` + ``--step`` seconds and passes
   when, over the step, every consumer group's lag (``kemi_consumer_lag_seconds`` on each
   service's /metrics) stays under ``--lag-limit`` and the aggregator accepts at least
   95 % of the offered rate. The rate grows by half while steps pass, then bisects to
   within 10 %. ``--rate R`` skips the search and holds R.
3. The best rate is held for ``--hold`` seconds (5 minutes: the capacity); if that
   fails, 10 % less is held instead, and then 19 % less. Each stage's CPU (cores), memory and highest lag
   over the hold are reported.
   Every step, the hold and the latency run on a stack of their own, started empty:
   the local broker keeps every record in memory and costs more per fetch the more it
   holds, so a measurement would otherwise pay for the ones before it.
4. At 80 % of the capacity: ``--latency`` marker pushes, each timed from the POST to
   the signed webhook its rule (``bench_lat > 0.5``, no ``for``, group_wait 0) sends.

The stage that limits is the consumer group whose lag broke the limit first at the
lowest failing rate ("aggregator" when it accepted too little of the offered rate).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.measure import cpu_seconds, metric_sum, metrics_text, rss_mib, scrape
from demo.receiver import RecordingReceiver
from kemi_stats.catalogue import SERVICES
from kemi_stats.keyring import Keyring
from kemi_stats.registry.builtin import load_builtin_profiles
from kemi_stats.registry.store import Registry, parse_doc
from kemi_stats.stack.launcher import LOCAL_PARTITIONS
from kemi_stats.stack.process import spawn, stop_pid, wait_until
from kemi_stats.stack.servers import free_port, http_ok
from kemi_stats.stack.snmpsim import snmpsim_command, snmpsim_env, write_device_data

HERE = Path(__file__).resolve().parent
TOKEN = "kemi_bench_" + secrets.token_urlsafe(18)
#: consumer groups and the service whose /metrics reports them
CONSUMERS = ("poller", "calculator", "alert-evaluator", "notifier", "forwarder")
STAGES = ("aggregator", *CONSUMERS, "poller-scheduler")
SERVERS = ("broker", "etcd", "victoriametrics")
INF = float("inf")
_LAG = re.compile(r"^kemi_consumer_lag_seconds\{[^}]*\} (\S+)$", re.M)


@dataclass
class Process:
    """One process whose CPU and memory the report shows, under its stage's name."""

    stage: str
    pid: int
    url: str = ""  # its HTTP base, for /metrics


@dataclass
class Stack:
    data: Path
    ports: dict[str, int]
    kafka: str
    etcd: str
    vm: str
    procs: list[Process] = field(default_factory=list)
    extra: list[int] = field(default_factory=list)  # pids this bench started

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    def lags(self) -> dict[str, float]:
        """Highest consumer lag (s) per stage, over its processes and topics."""
        out: dict[str, float] = {}
        for p in self.procs:
            if p.stage in CONSUMERS and p.url:
                text = metrics_text(p.url + "/metrics", timeout=3)
                # a service that does not answer its /metrics is not keeping up either
                values = [float(v) for v in _LAG.findall(text)] or [0.0] if text else [INF]
                out[p.stage] = max(out.get(p.stage, 0.0), *values)
        return out

    def total(self, stage: str, name: str) -> float:
        return sum(scrape(p.url + "/metrics", name, unreachable=0.0)
                   for p in self.procs if p.stage == stage and p.url)  # fmt: skip

    def cpu(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for p in self.procs:
            with contextlib.suppress(OSError):
                out[p.stage] = out.get(p.stage, 0.0) + cpu_seconds(p.pid)
        return out

    def rss(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for p in self.procs:
            out[p.stage] = out.get(p.stage, 0.0) + rss_mib(p.pid)
        return out


def kemi(*argv: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kemi_stats.cli", *argv], env=env,
                          capture_output=True, text=True, timeout=240)  # fmt: skip


def start_stack(tmp: Path, env: dict[str, str], partitions: int) -> Stack:
    data = tmp / "stack"
    ports = {name: free_port() for name in SERVICES}
    kafka, etcd, etcd_peer, vm = free_port(), free_port(), free_port(), free_port()
    argv = ["up", "--data-dir", str(data), "--detach", "--kafka-port", str(kafka),
            "--etcd-port", str(etcd), "--etcd-peer-port", str(etcd_peer), "--vm-port", str(vm),
            "--partitions", str(partitions)]  # fmt: skip
    for name, port in ports.items():
        argv += ["--service-port", f"{name}={port}"]
    done = kemi(*argv, env=env)
    if done.returncode:
        raise SystemExit(f"kemi-stats up failed:\n{done.stdout}{done.stderr}")
    stack = Stack(data, ports, f"127.0.0.1:{kafka}", f"127.0.0.1:{etcd}", f"http://127.0.0.1:{vm}")
    state = json.loads((data / "stack.json").read_text())
    for c in state["components"]:
        name, pid = c["name"], c.get("pid")
        if not pid:
            continue
        if name in SERVICES:
            stack.procs.append(Process(name, int(pid), stack.url(name)))
        else:
            stage = next((s for s in SERVERS if s in name), name)
            stack.procs.append(Process(stage, int(pid)))
    return stack


def add_workers(stack: Stack, service: str, n: int, tmp: Path) -> None:
    """N-1 more processes of ``service``: its own environment, another port and data dir."""
    first = next(p for p in stack.procs if p.stage == service)
    base = dict(
        item.split("=", 1)
        for item in Path(f"/proc/{first.pid}/environ").read_bytes().decode().split("\0")
        if "=" in item
    )
    module = SERVICES[service].module
    for k in range(1, n):
        port = free_port()
        env = {**base, "KEMI_HTTP_PORT": str(port), "KEMI_DATA_DIR": str(tmp / f"{service}-{k}")}
        proc = spawn([sys.executable, "-m", module], tmp / f"{service}-{k}.log", env=env)
        stack.extra.append(proc.pid)
        url = f"http://127.0.0.1:{port}"
        health = url + "/healthz"
        if not wait_until(lambda: http_ok(health), 90):  # noqa: B023 (waited for here)
            raise SystemExit(f"{service} worker {k} did not become healthy; see {tmp}")
        stack.procs.append(Process(service, proc.pid, url))


def register(stack: Stack, targets: int, interval: int, snmp_port: int, receiver: str,
             secret: str) -> None:  # fmt: skip
    keyring = Keyring.load(stack.data / "keyring.json")
    raw: list[tuple[str, str, dict[str, Any]]] = [
        ("credential", "bench-sim", {"community": "bench"}),
        ("token", "bench", {"hash": hashlib.sha256(TOKEN.encode()).hexdigest(),
                            "counters": ["bench_c_*"], "description": "pipeline bench"}),
        ("derived", "bench_c0_rate", {"expr": "rate(bench_c_c0)"}),
        ("derived", "bench_m01", {"expr": "bench_m0 + bench_m1"}),
        ("derived", "bench_site_m0", {"expr": "sum(bench_m0)", "group_by": ["site"]}),
        ("derived", "bench_if_in_bps", {"expr": "rate(ifHCInOctets) * 8"}),
        ("receiver", "bench-hook", {"url": receiver, "secret": secret, "group_wait": "0s"}),
        ("rule", "bench-lat", {"metric": "bench_lat", "condition": {"op": ">", "threshold": 0.5},
                               "receivers": ["bench-hook"]}),
        ("rule", "bench-m0-high", {"metric": "bench_m0", "condition": {"op": ">", "threshold": 1e12},
                                   "receivers": ["bench-hook"]}),
        ("rule", "bench-if-errors", {"metric": "ifInErrors", "condition": {"op": ">", "threshold": 1e12},
                                     "receivers": ["bench-hook"]}),
    ]  # fmt: skip
    for i in range(targets):
        raw.append(("target", f"sim-{i:05d}", {
            "host": "127.0.0.1", "port": snmp_port, "credential": "bench-sim",
            "profiles": ["system", "if-mib"], "interval": f"{interval}s",
            "resource_id": f"net:sim-{i:05d}", "labels": {"site": f"s{i % 4}"},
        }))  # fmt: skip
    entries = [("profile", n, p) for n, p in load_builtin_profiles().items()]
    entries += [(kind, name, parse_doc(kind, name, doc)) for kind, name, doc in raw]
    with Registry(stack.etcd, "/kemi/", keyring=keyring) as reg:
        reg.write_many(entries)


class Load:
    """The push clients at one total rate; restarted for each rate."""

    def __init__(self, url: str, pushers: int, samples: int, tmp: Path) -> None:
        self.url, self.pushers, self.samples, self.tmp = url, pushers, samples, tmp
        self.procs: list[subprocess.Popen[bytes]] = []
        self.rate = 0.0

    def start(self, rate: float) -> None:
        self.stop()
        self.rate = rate
        env = {**os.environ, "KEMI_BENCH_TOKEN": TOKEN}
        for k in range(self.pushers):
            stats = self.tmp / f"pusher-{k}.json"
            stats.unlink(missing_ok=True)
            with open(self.tmp / f"pusher-{k}.log", "ab") as log_file:
                self.procs.append(subprocess.Popen(
                    [sys.executable, str(HERE / "pusher.py"), "--url", self.url,
                     "--rate", str(rate / self.pushers), "--stats", str(stats),
                     "--samples", str(self.samples), "--first", str(k * 1_000_000)],
                    env=env, stdout=subprocess.DEVNULL, stderr=log_file,
                ))  # fmt: skip

    def stats(self) -> list[dict[str, Any]]:
        out = []
        for k in range(len(self.procs)):
            try:
                out.append(json.loads((self.tmp / f"pusher-{k}.json").read_text()))
            except (OSError, ValueError):
                out.append({})
        return out

    def cpu(self) -> float:
        total = 0.0
        for p in self.procs:
            with contextlib.suppress(OSError):
                total += cpu_seconds(p.pid)
        return total

    def stop(self) -> None:
        for p in self.procs:
            p.send_signal(signal.SIGINT)
        for p in self.procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        self.procs = []
        self.rate = 0.0


@dataclass
class Step:
    rate: float
    passed: bool
    seconds: float
    accepted: float  # samples/s the aggregator acked
    polled: float  # SNMP values/s the poller read
    lag: dict[str, float]  # highest per stage over the step
    limiter: str = ""
    cores: dict[str, float] = field(default_factory=dict)
    rss: dict[str, float] = field(default_factory=dict)
    request_p99_ms: float = 0.0
    errors: int = 0
    #: VictoriaMetrics' bytes per stored row at the end of the step (its own /metrics)
    tsdb_bytes_per_row: float = 0.0


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def run_step(stack: Stack, load: Load, snmpsim_pid: int, rate: float, warm: float,
             seconds: float, limit: float) -> Step:  # fmt: skip
    load.start(rate)
    time.sleep(warm)
    t0 = time.monotonic()
    acc0 = stack.total("aggregator", "kemi_aggregator_samples_accepted_total")
    pol0 = stack.total("poller", "kemi_poller_values_total")
    cpu0, load0, sim0 = stack.cpu(), load.cpu(), cpu_seconds(snmpsim_pid)
    worst: dict[str, float] = {}
    p99s: list[float] = []
    limiter = ""
    while time.monotonic() - t0 < seconds:
        time.sleep(2.0)
        lags = stack.lags()
        for stage, lag in lags.items():
            worst[stage] = max(worst.get(stage, 0.0), lag)
        p99s += [s["p99_ms"] for s in load.stats() if "p99_ms" in s]
        over = [s for s, v in sorted(lags.items(), key=lambda kv: -kv[1]) if v >= limit]
        if over:
            limiter = over[0]
            break
    took = time.monotonic() - t0
    accepted = (stack.total("aggregator", "kemi_aggregator_samples_accepted_total") - acc0) / took
    polled = (stack.total("poller", "kemi_poller_values_total") - pol0) / took
    cpu1 = stack.cpu()
    cores = {s: (cpu1.get(s, 0.0) - cpu0.get(s, 0.0)) / took for s in cpu1}
    cores["push clients"] = (load.cpu() - load0) / took
    cores["snmpsim"] = (cpu_seconds(snmpsim_pid) - sim0) / took
    errors = sum(int(s.get("errors", 0)) for s in load.stats())
    vm = metrics_text(stack.vm + "/metrics") or ""
    rows = metric_sum(vm, "vm_rows")
    per_row = metric_sum(vm, "vm_data_size_bytes") / rows if rows else 0.0
    if not limiter and accepted < 0.95 * rate:
        limiter = "aggregator (or the push clients)"
    return Step(rate, not limiter, took, accepted, polled, worst, limiter, cores, stack.rss(),
                max(p99s, default=0.0), errors, per_row)  # fmt: skip


Measure = Callable[[float, float], Step]


def search(measure: Measure, args: argparse.Namespace) -> tuple[float, list[Step]]:
    """The highest rate whose step passes, to within ``--resolution``; and every step."""
    steps: list[Step] = []
    best, fail = 0.0, 0.0
    rate = float(args.start_rate)
    while True:
        step = measure(rate, args.step)
        steps.append(step)
        if step.passed:
            best = rate
            rate = rate * 1.5 if not fail else (best + fail) / 2
        else:
            fail = rate
            rate = (best + fail) / 2 if best else rate / 2
        if fail and best and (fail - best) / best <= args.resolution:
            break
        if (not best and rate < 1000) or rate > args.max_rate:
            break
    return best, steps


def fmt_lags(lags: dict[str, float]) -> str:
    return ", ".join(f"{s} {v:.1f}s" for s, v in lags.items())


async def latency(stack: Stack, receiver: RecordingReceiver, n: int) -> list[float]:
    import aiohttp

    out: list[float] = []
    tag = secrets.token_hex(3)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with aiohttp.ClientSession() as http:
        for i in range(n):
            resource = f"lat-{tag}-{i}"
            base = len(receiver.requests)
            sent = time.monotonic()
            async with http.post(stack.url("aggregator") + "/api/v1/push", headers=headers,
                                 json={"resource_id": resource, "metrics": {"bench_lat": 1.0}}) as r:  # fmt: skip
                if r.status != 204:
                    raise SystemExit(f"latency push answered {r.status}: {await r.text()}")

            def arrived(rs: list[Any], base: int = base, resource: str = resource) -> bool:
                return any(a["resource"] == resource for x in rs[base:] if x.is_json
                           for a in x.json.get("alerts", []))  # fmt: skip

            if not await receiver.wait_for(arrived, 30):
                raise SystemExit(f"no webhook for {resource} within 30 s")
            got = next(x.at for x in receiver.requests[base:] if x.is_json and any(
                a["resource"] == resource for a in x.json.get("alerts", [])))  # fmt: skip
            out.append(got - sent)
            await asyncio.sleep(0.2)
    return out


def table(step: Step, title: str) -> str:
    rows = [f"**{title}**: {step.rate:,.0f} samples/s offered for {step.seconds:.0f} s, "
            f"{step.accepted:,.0f}/s pushed samples acked by the aggregator, "
            f"{step.polled:,.0f}/s SNMP values polled; push requests' worst 1-second p99 "
            f"{step.request_p99_ms:.0f} ms, "
            f"{step.errors} failed requests\n",
            "| stage | CPU (cores) | memory (MiB) | highest lag (s) |", "|---|---:|---:|---:|"]  # fmt: skip
    for stage in (*STAGES, "console", *SERVERS, "push clients", "snmpsim"):
        if stage in step.cores:
            lag = f"{step.lag[stage]:.2f}" if stage in step.lag else ""
            mem = step.rss.get(stage, float("nan"))
            rows.append(f"| {stage} | {step.cores[stage]:.2f} | {mem:.0f} | {lag} |")
    kemi = sum(v for s, v in step.cores.items() if s in SERVICES)
    rows.append(f"| **all kemi services** | **{kemi:.2f}** | | |")
    return "\n".join(rows)


class Bench:
    """What lives across measurements (simulated devices, webhook receiver) and a fresh
    stack for each: the local broker keeps every record in memory and costs more per
    fetch the more it holds (docs/capacity.md), so no step inherits another's data."""

    def __init__(self, args: argparse.Namespace, tmp: Path, receiver: RecordingReceiver,
                 secret: str) -> None:  # fmt: skip
        self.args, self.tmp, self.receiver, self.secret = args, tmp, receiver, secret
        self.env = {**os.environ, "KEMI_CONFIG": os.devnull}
        self.snmp_port = free_port()
        write_device_data(tmp / "snmpsim", "bench", interfaces=args.interfaces)
        cmd = snmpsim_command(tmp / "snmpsim", ("127.0.0.1", self.snmp_port))
        self.sim = spawn(cmd.argv, tmp / "snmpsim.log", env=snmpsim_env())
        self.runs = 0

    def close(self) -> None:
        stop_pid(self.sim.pid)

    @contextlib.contextmanager
    def stack(self) -> Iterator[tuple[Stack, Load]]:
        """A fresh stack with the bench's registry, its first polls under way, and its load."""
        self.runs += 1
        run_dir = self.tmp / f"run-{self.runs}"
        run_dir.mkdir()
        stack: Stack | None = None
        load: Load | None = None
        try:
            stack = start_stack(run_dir, self.env, self.args.partitions)
            load = Load(stack.url("aggregator"), self.args.pushers, self.args.samples, run_dir)
            for spec in self.args.workers:
                service, n = spec.split("=")
                add_workers(stack, service, int(n), run_dir)
            register(stack, self.args.targets, self.args.interval, self.snmp_port,
                     self.receiver.url, self.secret)  # fmt: skip
            time.sleep(min(self.args.interval, 15))  # the first polls go out
            yield stack, load
        finally:
            if load is not None:
                load.stop()
            for pid in stack.extra if stack is not None else ():
                stop_pid(pid)
            try:
                kemi("down", "--data-dir", str(run_dir / "stack"), env=self.env)
            finally:
                if not self.args.keep:
                    shutil.rmtree(run_dir, ignore_errors=True)

    def measure(self, rate: float, seconds: float) -> Step:
        with self.stack() as (stack, load):
            step = run_step(stack, load, self.sim.pid, rate, self.args.warm, seconds,
                            self.args.lag_limit)  # fmt: skip
        verdict = "pass" if step.passed else f"FAIL ({step.limiter})"
        log(f"rate {rate:,.0f} for {step.seconds:.0f} s: {verdict}; acked {step.accepted:,.0f}/s, "
            f"broker {step.cores.get('broker', 0):.2f} cores, lags {fmt_lags(step.lag)}")  # fmt: skip
        return step

    async def latency(self, rate: float, n: int) -> list[float]:
        with self.stack() as (stack, load):
            load.start(rate)
            await asyncio.sleep(self.args.warm)
            return await latency(stack, self.receiver, n)


async def amain(args: argparse.Namespace) -> int:
    tmp = Path(tempfile.mkdtemp(prefix="kemi-bench-pipeline-"))
    log(f"working in {tmp}")
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    receiver = await RecordingReceiver(secret=secret).start()
    bench = Bench(args, tmp, receiver, secret)
    try:
        steps: list[Step] = []
        if args.rate:
            best = args.rate
        else:
            best, steps = await asyncio.to_thread(search, bench.measure, args)
        if not best:
            print("no rate passed")
            return 1
        held = None
        holds: list[Step] = []
        for attempt in range(3):
            rate = best * 0.9**attempt
            log(f"holding {rate:,.0f} samples/s for {args.hold:.0f} s")
            held = await asyncio.to_thread(bench.measure, rate, args.hold)
            holds.append(held)
            if held.passed:
                break
        assert held is not None
        capacity = held.rate if held.passed else 0.0
        failing = [s for s in [*steps, *holds] if not s.passed]
        limiter = min(failing, key=lambda s: s.rate).limiter if failing else "none found"
        lat: list[float] = []
        if capacity and args.latency:
            lat = await bench.latency(args.latency_share * capacity, args.latency)
        report(args, [*steps, *holds[:-1]], held, capacity, limiter, lat)
        return 0 if held.passed else 1
    finally:
        bench.close()
        await receiver.stop()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


def report(args: argparse.Namespace, steps: list[Step], held: Step, capacity: float,
           limiter: str, lat: list[float]) -> None:  # fmt: skip
    machine = f"{os.cpu_count()} cores, Python {sys.version.split()[0]}"
    workers = ", ".join(args.workers) or "one process per service"
    print(f"machine: {machine}; {workers}; sample topics of {args.partitions} partitions; {args.targets} SNMP targets every {args.interval} s "
          f"({args.interfaces} interfaces); pushes of {args.samples} samples per resource every "
          f"10 s, 50 resources per request, half line protocol, half JSON; {args.pushers} push "
          "clients; a fresh stack for every measurement\n")  # fmt: skip
    print(
        "| rate offered (samples/s) | seconds | result | acked/s | polled/s | broker (cores) | highest lag |"
    )
    print("|---:|---:|---|---:|---:|---:|---|")
    for s in steps:
        print(f"| {s.rate:,.0f} | {s.seconds:.0f} | {'pass' if s.passed else 'fail: ' + s.limiter} | "
              f"{s.accepted:,.0f} | {s.polled:,.0f} | {s.cores.get('broker', 0):.2f} | {fmt_lags(s.lag)} |")  # fmt: skip
    print()
    title = (f"Capacity (held {args.hold:.0f} s, every lag under {args.lag_limit:.0f} s)"
             if held.passed else "Hold FAILED")  # fmt: skip
    print(table(held, title))
    total = held.accepted + held.polled
    print(
        f"\nVictoriaMetrics at the end: {held.tsdb_bytes_per_row:.2f} bytes per stored row "
        "(its parts still merging)"
    )
    print(f"\n**pipeline capacity: {total:,.0f} samples/s** ({held.accepted:,.0f} pushed + "
          f"{held.polled:,.0f} polled); **limiting stage: {limiter}**"
          if held.passed else f"\n**no capacity held**; limiting stage: {limiter}")  # fmt: skip
    if lat:
        lat.sort()
        q = statistics.quantiles(lat, n=100, method="inclusive")
        print(f"\nalert latency at {args.latency_share:.0%} of it ({args.latency_share * capacity:,.0f} "
              f"samples/s pushed), push -> signed webhook, n={len(lat)}: p50 {q[49] * 1000:.0f} ms, "
              f"p99 {q[98] * 1000:.0f} ms, max {lat[-1] * 1000:.0f} ms")  # fmt: skip
    if args.out:
        args.out.write_text(json.dumps({
            "capacity": total, "pushed": held.accepted, "polled": held.polled,
            "limiter": limiter, "steps": [s.__dict__ for s in steps], "hold": held.__dict__,
            "latency": lat, "workers": args.workers, "partitions": args.partitions,
        }, indent=1))  # fmt: skip


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--targets", type=int, default=300, help="SNMP targets polled")
    p.add_argument("--interval", type=int, default=60, help="their poll interval (s)")
    p.add_argument("--interfaces", type=int, default=8, help="interfaces per simulated device")
    p.add_argument("--samples", type=int, default=20, help="samples per pushed resource")
    p.add_argument("--pushers", type=int, default=2, help="push client processes")
    p.add_argument("--start-rate", type=float, default=40_000, help="first push rate (samples/s)")
    p.add_argument("--max-rate", type=float, default=1_000_000)
    p.add_argument("--resolution", type=float, default=0.1, help="stop bisecting within this share")
    p.add_argument("--warm", type=float, default=15.0, help="seconds at a rate before measuring")
    p.add_argument("--step", type=float, default=60.0, help="seconds a search step measures")
    p.add_argument("--hold", type=float, default=300.0, help="seconds the capacity is held")
    p.add_argument("--lag-limit", type=float, default=5.0, help="highest lag allowed (s)")
    p.add_argument("--latency", type=int, default=50, help="alert latency samples at 80 %%")
    p.add_argument("--latency-share", type=float, default=0.8, help="of the capacity, for latency")
    p.add_argument("--rate", type=float, default=0.0, help="no search: hold this push rate")
    p.add_argument(
        "--workers",
        action="append",
        default=[],
        metavar="SERVICE=N",
        help="run N processes of SERVICE (repeatable)",
    )
    p.add_argument("--partitions", type=int, default=LOCAL_PARTITIONS,
                   help="the sample topics' partitions (kemi-stats up --partitions)")  # fmt: skip
    p.add_argument("--out", type=Path, help="also write the results as JSON here")
    p.add_argument("--keep", action="store_true", help="keep the working directory and logs")
    args = p.parse_args()
    for spec in args.workers:
        problem = workers_problem(spec, args.partitions)
        if problem:
            p.error(f"--workers {spec}: {problem}")
    return asyncio.run(amain(args))


#: the services whose workers share the sample topics' partitions
_SAMPLE_READERS = ("calculator", "alert-evaluator", "forwarder")


def workers_problem(spec: str, partitions: int) -> str:
    """Why ``SERVICE=N`` cannot run as asked ("" when it can)."""
    service, _, n = spec.partition("=")
    if service not in SERVICES:
        return f"unknown service (expected one of {', '.join(SERVICES)})"
    if not n.isdecimal() or int(n) < 1:
        return "N must be a whole number of processes, at least 1"
    if service in _SAMPLE_READERS and int(n) > partitions:
        return (f"{n} workers share {partitions} partitions: {int(n) - partitions} would sit "
                "idle (raise --partitions)")  # fmt: skip
    return ""


if __name__ == "__main__":
    sys.exit(main())
