"""A service stops within KEMI_STOP_TIMEOUT of SIGTERM, even when its stop waits on a dead peer;
a stop that ends in time ends as it would have.

A real process: the runtime's signal handling and its exit are what is under test.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

_SERVICE = """
import asyncio, sys
from kemi_stats.runtime import ServiceRuntime
from kemi_stats.settings import Settings

async def main(runtime):
    print("running", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        print("stopping", flush=True)
        await asyncio.shield(asyncio.sleep(float(sys.argv[1])))  # a last commit, maybe to a broker that is gone

runtime = ServiceRuntime("stuck", Settings(http_port=0), 0, worker=1)
sys.exit(runtime.run(main))
"""


def _start(tmp_path: Path, stop_timeout: str, stop_after: float = 60) -> subprocess.Popen[str]:
    env = {**os.environ, "KEMI_STOP_TIMEOUT": stop_timeout, "KEMI_DATA_DIR": str(tmp_path)}
    argv = [sys.executable, "-c", _SERVICE, str(stop_after)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)  # fmt: skip
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "running"
    return proc


def test_a_stop_that_hangs_ends_at_the_stop_timeout(tmp_path: Path) -> None:
    proc = _start(tmp_path, "1.5")
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=20)
    took = time.monotonic() - started
    assert proc.returncode == 1
    assert 1.4 < took < 6, took
    assert (
        "WARNING stuck kemi_stats.runtime: exiting now (not stopped 1.5 s after the signal)" in err
    )


def test_a_repeated_signal_changes_nothing_and_a_clean_stop_exits_0(tmp_path: Path) -> None:
    # a process group signalled, then each of its processes (the aggregator's workers)
    proc = _start(tmp_path, "60", stop_after=0.5)
    assert proc.stdout is not None
    proc.send_signal(signal.SIGTERM)
    assert proc.stdout.readline().strip() == "stopping"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "exiting now" not in err
