"""Poller benchmarks: GET polls/s per worker process (1 and 2), bulk-walk OIDs/s, net-snmp snmpget
for comparison, and the scheduler's CPU and spread for 10,000 targets at 60 s.

    python bench/poller/run.py [--seconds 15] [--skip-scheduler]
    python bench/poller/run.py --mode if-mib [ifmib.py's options]   (= bench/poller/ifmib.py)

The ``if-mib`` mode is the side-by-side run against Prometheus' snmp_exporter on an
ifTable + ifXTable walk (bench/poller/ifmib.py).

Agents are Debian snmpd processes on loopback (a C agent; snmpsim tops out near 250
requests/s and would measure itself). A "worker" here is the poll engine of
poller.worker (SnmpClient + compiled plan + collect + protobuf encode) in its own
process, without Kafka, so the figure is the SNMP side of a worker.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.measure import run_commands
from kemi_stats.codec import encode_batch, encode_job
from kemi_stats.registry.models import Credential, Profile, Target
from tests.snmp_agents import SnmpAgent, start_snmpd

AGENTS = 4
TARGETS_PER_AGENT = 50
CONCURRENCY = 64

SCALARS = [
    "sysDescr",
    "sysObjectID",
    "sysContact",
    "sysName",
    "sysLocation",
    "hrSystemUptime",
    "memTotalSwap",
    "memAvailSwap",
    "memTotalReal",
    "memAvailReal",
    "memBuffer",
    "memCached",
    "ssCpuRawUser",
    "ssCpuRawNice",
    "ssCpuRawSystem",
    "ssCpuRawIdle",
    "ssCpuRawWait",
    "ssCpuRawInterrupt",
    "ssCpuRawSoftIRQ",
]  # fmt: skip  (+ sysUpTime, always fetched = 20 OIDs)


def _profile() -> Profile:
    return Profile(scalars=[{"name": n, "oid": n} for n in SCALARS])


async def _get_loop(ports: list[int], seconds: float, out: mp.Queue) -> None:  # type: ignore[type-arg]
    from poller.collect import TargetState, collect
    from poller.plan import compile_plan
    from poller.snmp import SnmpClient

    client = SnmpClient()
    profiles = {"bench": _profile()}
    cred = Credential(version="2c", community="public")
    targets = [
        (
            f"t{p}-{i}",
            Target(host="127.0.0.1", port=p, credential="c", profiles=["bench"], timeout=2),
        )
        for p in ports
        for i in range(TARGETS_PER_AGENT)
    ]
    plans = {n: compile_plan(n, t, profiles) for n, t in targets}
    assert plans[targets[0][0]].oid_count == 20
    states = {n: TargetState() for n, _ in targets}
    polls = errors = values = 0
    stop = time.monotonic() + seconds
    queue: asyncio.Queue[tuple[str, Target]] = asyncio.Queue()
    for t in targets:
        queue.put_nowait(t)

    async def runner() -> None:
        nonlocal polls, errors, values
        while time.monotonic() < stop:
            name, target = await queue.get()
            try:
                session = await client.session(name, target, cred)
                batch = await collect(name, target, plans[name], session, states[name])
                encode_batch(batch)
                polls += 1
                values += int(batch.samples[-1].value)
            except Exception:
                errors += 1
            queue.put_nowait((name, target))

    started = time.monotonic()
    cpu0 = time.process_time()
    await asyncio.gather(*(runner() for _ in range(CONCURRENCY)))
    wall = time.monotonic() - started
    out.put({"polls": polls, "errors": errors, "values": values, "wall": wall,
             "cpu": time.process_time() - cpu0})  # fmt: skip
    client.close()


def _get_worker(ports: list[int], seconds: float, out: mp.Queue) -> None:  # type: ignore[type-arg]
    asyncio.run(_get_loop(ports, seconds, out))


def bench_get(agents: list[SnmpAgent], seconds: float, workers: int) -> dict[str, float]:
    out: mp.Queue = mp.Queue()  # type: ignore[type-arg]
    ports = [a.port for a in agents]
    procs = [mp.Process(target=_get_worker, args=(ports, seconds, out)) for _ in range(workers)]
    for p in procs:
        p.start()
    results = [out.get(timeout=seconds + 60) for _ in procs]
    for p in procs:
        p.join()
    polls = sum(r["polls"] for r in results)
    wall = max(r["wall"] for r in results)
    cpu = sum(r["cpu"] for r in results)
    return {"workers": workers, "polls": polls, "errors": sum(r["errors"] for r in results),
            "polls_per_s": polls / wall, "oids_per_s": polls * 20 / wall,
            "cpu_s_per_1000": 1000 * cpu / max(1, polls), "wall": wall}  # fmt: skip


async def _walk_loop(port: int, seconds: float) -> dict[str, float]:
    from poller.snmp import SnmpClient

    client = SnmpClient()
    cred = Credential(version="2c", community="public")
    target = Target(host="127.0.0.1", port=port, credential="c", profiles=["x"], max_repetitions=50)
    oids = walks = 0
    stop = time.monotonic() + seconds
    cpu0 = time.process_time()
    started = time.monotonic()

    async def runner() -> None:
        nonlocal oids, walks
        while time.monotonic() < stop:
            session = await client.session("walk", target, cred)
            rows = await session.walk(["1.3.6.1.2.1.25", "1.3.6.1.2.1.2.2"])
            oids += sum(len(r) for r in rows.values())
            walks += 1

    await asyncio.gather(*(runner() for _ in range(4)))
    wall = time.monotonic() - started
    client.close()
    return {"walks": walks, "oids": oids, "oids_per_s": oids / wall,
            "cpu_s_per_1000_oids": 1000 * (time.process_time() - cpu0) / max(1, oids)}  # fmt: skip


def bench_snmpget(agents: list[SnmpAgent], polls: int, parallel: int = 8) -> dict[str, float]:
    from kemi_stats.registry.oids import resolve_oid

    oids = ["1.3.6.1.2.1.1.3.0"] + [resolve_oid(n) + ".0" for n in SCALARS]
    cmds = [
        ["snmpget", "-v2c", "-c", "public", "-On", "-t2", "-r0",
         f"127.0.0.1:{agents[i % len(agents)].port}", *oids]
        for i in range(polls)
    ]  # fmt: skip
    env = {"MIBS": "", "PATH": "/usr/bin:/bin"}
    failures, wall, cpu = run_commands(cmds, parallel, env)
    return {"polls": polls, "failures": failures, "polls_per_s": polls / wall,
            "cpu_s_per_1000": 1000 * cpu / polls, "parallel": parallel}  # fmt: skip


def bench_scheduler(targets: int = 10_000, interval: float = 60.0) -> dict[str, float]:
    """APScheduler with the real PollSchedule and job encoding; Kafka replaced by a counter."""
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    from kemi_stats.model import PollJob
    from poller.scheduler.schedule import PollSchedule, nominal_time

    fired: list[float] = []
    lateness: list[float] = []

    async def main() -> dict[str, float]:
        async def fire(name: str) -> None:
            now = time.time()
            scheduled = nominal_time(name, interval, now)
            encode_job(
                PollJob(name, ["if-mib"], int(scheduled * 1000), int((scheduled + 10) * 1000))
            )
            fired.append(now)
            lateness.append(now - scheduled)

        scheduler = AsyncIOScheduler(timezone="UTC")
        schedule = PollSchedule(scheduler, fire)
        scheduler.start()
        t0 = time.process_time()
        w0 = time.monotonic()
        schedule.sync(
            {f"dev-{i:05d}": Target(host="127.0.0.1", credential="c", profiles=["p"], interval=interval)
             for i in range(targets)},
            time.time(),
        )  # fmt: skip
        load_cpu, load_wall = time.process_time() - t0, time.monotonic() - w0
        c0, s0 = time.process_time(), time.monotonic()
        await asyncio.sleep(interval)
        cpu, wall = time.process_time() - c0, time.monotonic() - s0
        scheduler.shutdown(wait=False)
        per_second: dict[int, int] = {}
        first = min(fired)
        for t in fired:
            per_second[int(t - first)] = per_second.get(int(t - first), 0) + 1
        counts = [per_second.get(s, 0) for s in range(int(interval))]
        lateness.sort()
        return {"targets": targets, "fired": len(fired), "load_cpu_s": load_cpu,
                "load_wall_s": load_wall, "cpu_s_per_minute": cpu, "cpu_pct": 100 * cpu / wall,
                "min_per_s": min(counts), "max_per_s": max(counts), "mean_per_s": len(fired) / interval,
                "lateness_p50_ms": 1000 * lateness[len(lateness) // 2],
                "lateness_p99_ms": 1000 * lateness[int(len(lateness) * 0.99)],
                "lateness_max_ms": 1000 * lateness[-1]}  # fmt: skip

    return asyncio.run(main())


def main() -> None:
    if sys.argv[1:3] == ["--mode", "if-mib"]:
        sys.argv[1:3] = []
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import ifmib

        ifmib.main()
        return
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mode", choices=["get", "if-mib"], default="get")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--skip-scheduler", action="store_true")
    args = parser.parse_args()
    print(
        f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}, load {os.getloadavg()}"
    )
    with tempfile.TemporaryDirectory(prefix="kemi-bench-") as tmp:
        agents = [start_snmpd(Path(tmp) / f"snmpd-{i}", users=()) for i in range(AGENTS)]
        try:
            one = bench_get(agents, args.seconds, 1)
            print("GET 20 OIDs, 1 worker process: ", {k: round(v, 2) for k, v in one.items()})
            two = bench_get(agents, args.seconds, 2)
            print("GET 20 OIDs, 2 worker processes:", {k: round(v, 2) for k, v in two.items()})
            print(f"  scaling 2 vs 1: {two['polls_per_s'] / one['polls_per_s']:.2f}x")
            walk = asyncio.run(_walk_loop(agents[0].port, args.seconds))
            print("GETBULK walk (max-repetitions 50):", {k: round(v, 2) for k, v in walk.items()})
            net = bench_snmpget(agents, 1000)
            print("net-snmp snmpget, 8 in parallel:", {k: round(v, 2) for k, v in net.items()})
        finally:
            for a in agents:
                a.stop()
    if not args.skip_scheduler:
        sched = bench_scheduler()
        print("scheduler 10,000 targets / 60 s:", {k: round(v, 2) for k, v in sched.items()})
    print(f"load after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
