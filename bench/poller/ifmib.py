"""The poll engine against Prometheus' snmp_exporter on the same IF-MIB walk, same agents, same run.

    python bench/poller/ifmib.py [--seconds 15] [--rounds 3] [--agents 10] [--inflight 10]

Both sides poll the same Debian ``snmpd`` agents on loopback with SNMP v2c and
max-repetitions 25, ``--inflight`` polls at a time (one per agent), for ``--seconds``
after a warm-up, one side after the other in each round:

- **snmp_exporter** (Debian's ``prometheus-snmp-exporter``) with a module that GETs
  sysUpTime and walks ifTable (1.3.6.1.2.1.2) and ifXTable (1.3.6.1.2.1.31.1.1), every
  column a metric; driven over HTTP (``/snmp?module=if_mib&target=...``) by threads of this
  process, whose CPU is not counted.
- **kemi-stats, full walk**: the poll engine of ``poller.worker`` (SnmpClient + compiled
  plan + collect + protobuf encode) in a process of its own, with a profile that has
  sysUpTime, ifNumber and every column of ifTable and ifXTable.
- **kemi-stats, if-mib**: the same engine with the built-in ``if-mib`` profile (10 columns,
  ifName/ifAlias lookups).
- **net-snmp** ``snmpget`` + two ``snmpbulkwalk`` per poll, for reference (a process per
  command, so mostly start-up cost).

CPU seconds per 1,000 polls and per 1,000 values come from /proc (exporter), from
``time.process_time`` in the engine process, and from the children's rusage (net-snmp).
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import multiprocessing as mp
import os
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.measure import (
    cpu_seconds,
    machine_busy_seconds,
    run_commands,
    settle,
    throwaway_keyring,
)
from kemi_stats.registry.models import Credential, Profile, Target
from kemi_stats.stack.process import spawn, stop_pid, wait_until
from kemi_stats.stack.servers import free_port, http_ok
from tests.snmp_agents import SnmpAgent, start_snmpd

SYS_UPTIME = "1.3.6.1.2.1.1.3"
IF_NUMBER = "1.3.6.1.2.1.2.1"
IF_TABLE = "1.3.6.1.2.1.2.2.1"
IF_X_TABLE = "1.3.6.1.2.1.31.1.1.1"
# (column number, name, type): type is the exporter's; our profile calls counters counters
IF_TABLE_COLUMNS = [
    (1, "ifIndex", "gauge"), (2, "ifDescr", "DisplayString"), (3, "ifType", "gauge"),
    (4, "ifMtu", "gauge"), (5, "ifSpeed", "gauge"), (6, "ifPhysAddress", "PhysAddress48"),
    (7, "ifAdminStatus", "gauge"), (8, "ifOperStatus", "gauge"), (9, "ifLastChange", "gauge"),
    (10, "ifInOctets", "counter"), (11, "ifInUcastPkts", "counter"),
    (12, "ifInNUcastPkts", "counter"), (13, "ifInDiscards", "counter"),
    (14, "ifInErrors", "counter"), (15, "ifInUnknownProtos", "counter"),
    (16, "ifOutOctets", "counter"), (17, "ifOutUcastPkts", "counter"),
    (18, "ifOutNUcastPkts", "counter"), (19, "ifOutDiscards", "counter"),
    (20, "ifOutErrors", "counter"), (21, "ifOutQLen", "gauge"), (22, "ifSpecific", "OctetString"),
]  # fmt: skip
IF_X_TABLE_COLUMNS = [
    (1, "ifName", "DisplayString"), (2, "ifInMulticastPkts", "counter"),
    (3, "ifInBroadcastPkts", "counter"), (4, "ifOutMulticastPkts", "counter"),
    (5, "ifOutBroadcastPkts", "counter"), (6, "ifHCInOctets", "counter"),
    (7, "ifHCInUcastPkts", "counter"), (8, "ifHCInMulticastPkts", "counter"),
    (9, "ifHCInBroadcastPkts", "counter"), (10, "ifHCOutOctets", "counter"),
    (11, "ifHCOutUcastPkts", "counter"), (12, "ifHCOutMulticastPkts", "counter"),
    (13, "ifHCOutBroadcastPkts", "counter"), (14, "ifLinkUpDownTrapEnable", "gauge"),
    (15, "ifHighSpeed", "gauge"), (16, "ifPromiscuousMode", "gauge"),
    (17, "ifConnectorPresent", "gauge"), (18, "ifAlias", "DisplayString"),
    (19, "ifCounterDiscontinuityTime", "gauge"),
]  # fmt: skip
MAX_REPETITIONS = 25


def _columns() -> list[tuple[str, str, str]]:
    return [(f"{IF_TABLE}.{n}", name, kind) for n, name, kind in IF_TABLE_COLUMNS] + [
        (f"{IF_X_TABLE}.{n}", name, kind) for n, name, kind in IF_X_TABLE_COLUMNS
    ]


def exporter_config(path: Path) -> None:
    """snmp_exporter 0.21's config: one module ``if_mib`` with every column a metric."""
    index = [{"labelname": "ifIndex", "type": "gauge"}]
    metrics: list[dict[str, Any]] = [
        {"name": "sysUpTime", "oid": SYS_UPTIME, "type": "gauge"},
        {"name": "ifNumber", "oid": IF_NUMBER, "type": "gauge"},
    ]
    metrics += [{"name": n, "oid": oid, "type": k, "indexes": index} for oid, n, k in _columns()]
    module = {
        "get": [f"{SYS_UPTIME}.0"],
        "walk": ["1.3.6.1.2.1.2", "1.3.6.1.2.1.31.1.1"],
        "metrics": metrics,
        "version": 2,
        "max_repetitions": MAX_REPETITIONS,
        "retries": 3,
        "timeout": "5s",
        "auth": {"community": "public"},
    }
    path.write_text(yaml.safe_dump({"if_mib": module}))


def full_profile() -> Profile:
    """Every column of ifTable and ifXTable, and ifNumber: the exporter module's walk."""
    columns = [
        {"name": n, "oid": oid, "type": "counter" if k == "counter" else "gauge"}
        for oid, n, k in _columns()
    ]
    return Profile.model_validate({
        "scalars": [{"name": "ifNumber", "oid": IF_NUMBER}],
        "tables": [{"name": "interfaces", "index_label": "ifIndex", "columns": columns}],
    })  # fmt: skip


# --- kemi-stats: the poll engine in a process of its own -----------------------------------


async def _engine_loop(
    ports: list[int], profile_name: str, warmup: float, seconds: float, lean: bool
) -> dict[str, float]:
    from kemi_stats.codec import encode_batch
    from kemi_stats.registry.builtin import load_builtin_profiles
    from poller.collect import TargetState, collect
    from poller.plan import compile_plan
    from poller.snmp import SnmpClient

    profiles = {"full": full_profile(), **load_builtin_profiles()}
    client = SnmpClient(lean=lean)
    cred = Credential(version="2c", community="public")
    targets = [
        (f"agent-{p}", Target(host="127.0.0.1", port=p, credential="c", profiles=[profile_name],
                              max_repetitions=MAX_REPETITIONS, timeout=5, retries=3))
        for p in ports
    ]  # fmt: skip
    plans = {n: compile_plan(n, t, profiles) for n, t in targets}
    states = {n: TargetState() for n, _ in targets}
    counted = False
    polls = errors = values = requests = 0

    async def runner(name: str, target: Target, until: float) -> None:
        nonlocal polls, errors, values, requests
        while time.monotonic() < until:
            try:
                session = await client.session(name, target, cred)
                batch = await collect(name, target, plans[name], session, states[name])
                encode_batch(batch)
            except Exception as exc:
                if counted:
                    errors += 1
                    print(f"{name}: {exc!r}", file=sys.stderr)
                continue
            if counted:
                polls += 1
                values += int(batch.samples[-1].value)
                requests += session.requests

    warm_until = time.monotonic() + warmup
    await asyncio.gather(*(runner(n, t, warm_until) for n, t in targets))
    counted = True
    cpu0, started = time.process_time(), time.monotonic()
    until = started + seconds
    await asyncio.gather(*(runner(n, t, until) for n, t in targets))
    wall, cpu = time.monotonic() - started, time.process_time() - cpu0
    client.close()
    return {"polls": polls, "errors": errors, "values": values, "requests": requests,
            "wall": wall, "cpu": cpu}  # fmt: skip


def _engine_process(args: tuple[Any, ...], out: Any) -> None:
    out.put(asyncio.run(_engine_loop(*args)))


def bench_engine(
    agents: list[SnmpAgent],
    profile: str,
    warmup: float,
    seconds: float,
    processes: int = 1,
    lean: bool = True,
) -> dict[str, float]:
    out: mp.Queue[dict[str, float]] = mp.Queue()
    ports = [a.port for a in agents]
    share = [ports[i::processes] for i in range(processes)]
    procs = [
        mp.Process(target=_engine_process, args=((s, profile, warmup, seconds, lean), out))
        for s in share
    ]
    busy0, began = machine_busy_seconds(), time.monotonic()
    for p in procs:
        p.start()
    results = [out.get(timeout=warmup + seconds + 120) for _ in procs]
    for p in procs:
        p.join()
    machine = (machine_busy_seconds() - busy0) / (time.monotonic() - began)
    polls = sum(r["polls"] for r in results)
    values = sum(r["values"] for r in results)
    cpu = sum(r["cpu"] for r in results)
    wall = max(r["wall"] for r in results)
    return {"polls": polls, "errors": sum(r["errors"] for r in results),
            "polls_per_s": polls / wall, "values_per_poll": values / max(1, polls),
            "requests_per_poll": sum(r["requests"] for r in results) / max(1, polls),
            "cpu_per_1000_polls": 1000 * cpu / max(1, polls),
            "cpu_per_1000_values": 1000 * cpu / max(1, values),
            "machine_cores": machine}  # fmt: skip


# --- the whole worker: jobs from Kafka, the poll, the batch produced and acked -------------


def bench_worker(
    agents: list[SnmpAgent], per_agent: int, seconds: float, tmp: Path
) -> dict[str, float]:
    """``poller.scheduler`` and one ``poller.worker`` with ``per_agent`` full-walk targets on
    each agent, polled every second: the worker's CPU per poll, from /proc and its /metrics."""
    from bench.measure import broker_and_etcd, scrape, start_poller
    from kemi_stats.registry.store import Registry
    from kemi_stats.topics import TopicSpec, ensure_topics

    with broker_and_etcd(tmp) as (broker, etcd):
        jobs, raw = "bench.ifmib.jobs", "bench.ifmib.raw"
        ensure_topics(broker.address, (TopicSpec(jobs, 6), TopicSpec(raw, 6)))
        with Registry(etcd.address, "/kemi/", keyring=throwaway_keyring(tmp)) as reg:
            reg.put("credential", "bench", Credential(version="2c", community="public"))
            reg.put("profile", "full", full_profile())
            reg.write_many(
                ("target", f"agent-{a.port}-{n}", Target(
                    host="127.0.0.1", port=a.port, credential="bench", profiles=["full"],
                    interval=1.0, deadline=1.0, timeout=0.5, retries=1,
                    max_repetitions=MAX_REPETITIONS))
                for a in agents for n in range(per_agent)
            )  # fmt: skip
        poller = start_poller(tmp, broker, etcd, jobs, raw)
        metrics = poller.worker_metrics
        try:
            health = f"http://127.0.0.1:{poller.worker_port}/healthz"
            if not wait_until(lambda: http_ok(health), 60):
                raise SystemExit(f"the worker did not start; see {tmp / 'worker.log'}")
            time.sleep(10)  # warm-up: every target polled a few times
            polls0, cpu0 = scrape(metrics, "kemi_poller_polls_total"), cpu_seconds(poller.worker)
            sched0 = cpu_seconds(poller.scheduler)
            time.sleep(seconds)
            polls = scrape(metrics, "kemi_poller_polls_total") - polls0
            cpu = cpu_seconds(poller.worker) - cpu0
            errors = scrape(metrics, "kemi_poller_errors_total")
            return {"polls": polls, "polls_per_s": polls / seconds, "errors_total": errors,
                    "cpu_per_1000_polls": 1000 * cpu / max(1, polls),
                    "scheduler_cpu_per_1000_polls":
                        1000 * (cpu_seconds(poller.scheduler) - sched0) / max(1, polls)}  # fmt: skip
        finally:
            stop_pid(poller.worker)
            stop_pid(poller.scheduler)


# --- snmp_exporter -------------------------------------------------------------------------


def _exporter_values(body: str) -> int:
    m = re.search(r"^snmp_scrape_pdus_returned (\S+)$", body, re.M)
    return int(float(m.group(1))) if m else 0


def bench_exporter(
    port: int, pid: int, agents: list[SnmpAgent], warmup: float, seconds: float
) -> dict[str, float]:
    polls = errors = values = 0
    counting = False
    lock = threading.Lock()

    def driver(agent: SnmpAgent, until: float) -> None:
        nonlocal polls, errors, values
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        path = f"/snmp?module=if_mib&target=127.0.0.1:{agent.port}"
        while time.monotonic() < until:
            conn.request("GET", path)
            resp = conn.getresponse()
            body = resp.read().decode()
            ok = resp.status == 200 and "ifHCInOctets" in body
            if counting:
                with lock:
                    polls += ok
                    errors += not ok
                    values += _exporter_values(body) if ok else 0
        conn.close()

    def run(until: float) -> None:
        threads = [threading.Thread(target=driver, args=(a, until)) for a in agents]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    run(time.monotonic() + warmup)
    counting = True
    cpu0, started = cpu_seconds(pid), time.monotonic()
    run(started + seconds)
    wall, cpu = time.monotonic() - started, cpu_seconds(pid) - cpu0
    return {"polls": polls, "errors": errors, "polls_per_s": polls / wall,
            "values_per_poll": values / max(1, polls),
            "cpu_per_1000_polls": 1000 * cpu / max(1, polls),
            "cpu_per_1000_values": 1000 * cpu / max(1, values)}  # fmt: skip


# --- net-snmp ------------------------------------------------------------------------------


def bench_netsnmp(agents: list[SnmpAgent], polls: int, parallel: int) -> dict[str, float]:
    env = {"MIBS": "", "PATH": "/usr/bin:/bin"}

    def commands(port: int) -> list[list[str]]:
        where = f"127.0.0.1:{port}"
        base = ["-v2c", "-c", "public", "-On", "-t5", "-r3"]
        return [
            ["snmpget", *base, where, f"{SYS_UPTIME}.0"],
            ["snmpbulkwalk", *base, f"-Cr{MAX_REPETITIONS}", where, "1.3.6.1.2.1.2"],
            ["snmpbulkwalk", *base, f"-Cr{MAX_REPETITIONS}", where, "1.3.6.1.2.1.31.1.1"],
        ]

    commands_ = [c for n in range(polls) for c in commands(agents[n % len(agents)].port)]
    failures, wall, cpu = run_commands(commands_, parallel, env)
    return {"polls": polls, "failures": failures, "polls_per_s": polls / wall,
            "cpu_per_1000_polls": 1000 * cpu / polls}  # fmt: skip


def _row(name: str, r: dict[str, float], exporter: dict[str, float] | None = None) -> str:
    ratio = f"{r['cpu_per_1000_polls'] / exporter['cpu_per_1000_polls']:.2f}x" if exporter else ""
    return (
        f"| {name} | {r['polls_per_s']:,.0f} | {r.get('values_per_poll', 0):.0f} | "
        f"{r.get('requests_per_poll', 0):.1f} | {r['cpu_per_1000_polls']:.2f} | "
        f"{r.get('cpu_per_1000_values', 0):.3f} | {ratio} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--agents", type=int, default=10)
    parser.add_argument("--pysnmp", action="store_true", help="also the engine without lean BER")
    args = parser.parse_args()
    exporter_bin = shutil.which("prometheus-snmp-exporter") or shutil.which("snmp_exporter")
    if not exporter_bin:
        raise SystemExit("install Debian's prometheus-snmp-exporter (apt-get install -y ...)")
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}, "
          f"load {os.getloadavg()}; {args.agents} snmpd agents, v2c, max-repetitions "
          f"{MAX_REPETITIONS}, {args.agents} polls in flight, {args.seconds:g} s per phase\n")  # fmt: skip
    tmp = Path(tempfile.mkdtemp(prefix="bench-ifmib-"))
    agents = [start_snmpd(tmp / f"snmpd-{i}", users=()) for i in range(args.agents)]
    port = free_port()
    exporter_config(tmp / "snmp.yml")
    exporter = spawn([exporter_bin, f"--config.file={tmp / 'snmp.yml'}",
                      f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
                     tmp / "exporter.log")  # fmt: skip
    try:
        if not wait_until(lambda: http_ok(f"http://127.0.0.1:{port}/metrics"), 30):
            raise SystemExit(f"snmp_exporter did not start; see {tmp / 'exporter.log'}")
        head = "| round | poller | polls/s | values/poll | requests/poll | CPU s / 1,000 polls | CPU s / 1,000 values | vs exporter |"
        print(head + "\n|---|---|---|---|---|---|---|---|")
        full_ratios, ifmib = [], []
        for n in range(1, args.rounds + 1):
            settle()
            theirs = bench_exporter(port, exporter.pid, agents, args.warmup, args.seconds)
            settle()
            full = bench_engine(agents, "full", args.warmup, args.seconds)
            settle()
            small = bench_engine(agents, "if-mib", args.warmup, args.seconds)
            print(_row(f"{n} snmp_exporter if_mib", theirs).replace("| 0.0 |", "| - |", 1))
            print(_row(f"{n} kemi-stats, full walk", full, theirs))
            print(_row(f"{n} kemi-stats, if-mib profile", small, theirs))
            if args.pysnmp:
                settle()
                old = bench_engine(agents, "full", args.warmup, args.seconds, lean=False)
                print(_row(f"{n} kemi-stats, full walk, pysnmp", old, theirs))
            sys.stdout.flush()
            full_ratios.append(full["cpu_per_1000_polls"] / theirs["cpu_per_1000_polls"])
            ifmib.append(small["cpu_per_1000_polls"])
            for r in (theirs, full, small):
                if r["errors"]:
                    print(f"  errors: {r['errors']:.0f}")
        print(f"\nfull walk, CPU per poll, kemi-stats / snmp_exporter: median "
              f"**{statistics.median(full_ratios):.2f}x**; if-mib profile: median "
              f"**{statistics.median(ifmib):.2f}** CPU s per 1,000 polls\n")  # fmt: skip
        settle()
        print(
            "Throughput with the full walk, engine processes (machine CPU seconds used over the phase):"
        )
        for processes in (1, 2):
            r = bench_engine(agents, "full", args.warmup, args.seconds, processes)
            print(f"- {processes} process(es): {r['polls_per_s']:,.0f} polls/s, "
                  f"{r['machine_cores']:.2f} of {os.cpu_count()} cores busy "
                  f"(engine + agents, start-up and warm-up included)")  # fmt: skip
        settle()
        per_agent = 20
        engine = bench_engine(agents, "full", args.warmup, args.seconds)
        whole = bench_worker(agents, per_agent, args.seconds, tmp)
        print(f"\nThe whole worker ({len(agents) * per_agent} full-walk targets every second): "
              f"{whole['polls_per_s']:,.0f} polls/s, {whole['cpu_per_1000_polls']:.2f} CPU s per "
              f"1,000 polls (errors so far: {whole['errors_total']:.0f}); the poll engine alone "
              f"{engine['cpu_per_1000_polls']:.2f}, so the rest (job decode, plan lookup, batch "
              f"encode, produce and ack, self-metrics) is "
              f"{whole['cpu_per_1000_polls'] - engine['cpu_per_1000_polls']:.2f}; "
              f"the scheduler {whole['scheduler_cpu_per_1000_polls']:.2f}")  # fmt: skip
        settle()
        net = bench_netsnmp(agents, 300, args.agents)
        print(f"- net-snmp snmpget + 2 snmpbulkwalk: {net['cpu_per_1000_polls']:.1f} CPU s per "
              f"1,000 polls ({net['failures']:.0f} failures), a process per command")  # fmt: skip
    finally:
        stop_pid(exporter.pid)
        for a in agents:
            a.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
