"""What the local broker (Tansu) costs for the sample topics' traffic, by layout, batch size
and fetch pacing.

    python bench/broker/run.py [--seconds 120] [--rate 2000]

One producer writes ``--rate`` records/s of 900 bytes (a 20-sample batch) to a "raw"
topic (12 partitions, as in production, or the local stack's 4), in bursts every 10 ms. Three consumer groups stand for the
calculator, the alert evaluator and the forwarder:

* **pass-through**: the calculator reads raw and writes each record again to "out"; the
  evaluator and the forwarder read "out" (the layout before raw samples were read directly);
* **direct**: all three read raw (and an empty "out", as they read the derived topic).

Each configuration runs on a fresh broker for ``--seconds``; the figures are the broker's
CPU (cores) over the run and over its last quarter (it grows as the broker fills). ``linger`` is the raw producer's (the aggregator's ``linger.ms``);
``pace`` is the least time between two fetches of one consumer while it keeps up
(the forwarder's is twice the others').
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.measure import bench_options, cpu_seconds
from kemi_stats.kafka import make_consumer, make_producer
from kemi_stats.settings import Settings
from kemi_stats.stack.process import spawn, stop_pid, wait_until
from kemi_stats.stack.servers import broker_command, free_port, port_open
from kemi_stats.topics import TopicSpec, ensure_topics

#: (layout, partitions, raw producer's linger ms, pace s)
CONFIGS = [
    ("pass-through", 12, 5, 0.0),
    ("direct", 12, 5, 0.0),
    ("direct", 12, 5, 0.1),
    ("pass-through", 12, 5, 0.1),
    ("direct", 12, 50, 0.1),
    ("direct", 4, 50, 0.1),
]


async def _traffic(
    address: str, layout: str, partitions: int, linger: int, pace: float, opts: object
) -> None:
    settings = Settings(kafka_bootstrap=address)
    ensure_topics(address, (TopicSpec("raw", partitions), TopicSpec("out", partitions)))
    rate, seconds = int(opts.rate), float(opts.seconds)  # type: ignore[attr-defined]
    feeder = make_producer(settings, linger_ms=linger)
    again = make_producer(settings)
    await feeder.start()
    await again.start()
    stop = time.monotonic() + seconds

    async def feed() -> None:
        i = 0
        while time.monotonic() < stop:
            for _ in range(rate // 100):
                await feeder.send("raw", b"x" * 900, key=str(i).encode())
                i += 1
            await asyncio.sleep(0.01)

    async def consume(group: str, topics: list[str], wait: int, gap: float, out: bool) -> None:
        c = make_consumer(settings, *topics, group_id=group, fetch_max_wait_ms=wait)
        await c.start()
        try:
            while time.monotonic() < stop:
                fetched = await c.getmany(timeout_ms=100, max_records=2000)
                if out:
                    for recs in fetched.values():
                        for r in recs:
                            await again.send("out", r.value, key=r.key)
                if gap:
                    await asyncio.sleep(gap)
        finally:
            await c.stop()

    if layout == "pass-through":
        readers = [("calc", ["raw"], 100, pace, True), ("eval", ["out"], 50, pace, False),
                   ("fwd", ["out"], 500, 2 * pace, False)]  # fmt: skip
    else:
        readers = [("calc", ["raw"], 100, pace, False), ("eval", ["raw", "out"], 50, pace, False),
                   ("fwd", ["raw", "out"], 500, 2 * pace, False)]  # fmt: skip
    try:
        await asyncio.gather(feed(), *(consume(*r) for r in readers))
    finally:
        await feeder.stop()
        await again.stop()


def _mark(pid: int, marks: list[float]) -> None:
    marks.append(cpu_seconds(pid))


def main() -> int:
    opts = bench_options(__doc__, seconds=120.0, rate=2000)
    print(f"{opts.rate} records/s of 900 bytes for {opts.seconds:.0f} s per configuration\n")
    print(
        "| layout | partitions | raw producer's linger (ms) | pace (ms) | broker (cores) | last quarter (cores) |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for layout, partitions, linger, pace in CONFIGS:
        with tempfile.TemporaryDirectory(prefix="kemi-bench-broker-") as tmp:
            broker = broker_command(free_port())
            proc = spawn(broker.argv, Path(tmp) / "broker.log")
            try:
                host, port = broker.address.rsplit(":", 1)
                if not wait_until(lambda h=host, p=int(port): port_open(h, p), 20):
                    raise SystemExit(f"broker did not start; see {tmp}")
                quarter = opts.seconds / 4
                marks: list[float] = []
                timer = threading.Timer(3 * quarter, _mark, (proc.pid, marks))
                before = cpu_seconds(proc.pid)
                timer.start()
                asyncio.run(_traffic(broker.address, layout, partitions, linger, pace, opts))
                after = cpu_seconds(proc.pid)
                cores = (after - before) / opts.seconds
                last = (after - marks[0]) / quarter if marks else float("nan")
            finally:
                stop_pid(proc.pid)
        print(f"| {layout} | {partitions} | {linger} | {pace * 1000:.0f} | {cores:.2f} | {last:.2f} |",
              flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
