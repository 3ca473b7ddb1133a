"""Rerun every benchmark (``make bench``): bench/<name>/run.py, one after the other.

Each benchmark starts its own servers on free loopback ports and prints a Markdown
table; the collected output goes to bench/last-run.md. bench/RESULTS.md holds the
reviewed figures with the machine and the command.
"""

from __future__ import annotations

import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ORDER = [
    "codec", "poller", "scrape", "aggregator", "lineprotocol", "remote_write", "calculator", "alerting",
    "forwarder", "console", "cli", "memory", "broker", "pipeline",
]  # fmt: skip


def main() -> int:
    names = sys.argv[1:] or [n for n in ORDER if (HERE / n / "run.py").exists()]
    out = [f"# last bench run, {time.strftime('%Y-%m-%d %H:%M')} on {platform.node()} "
           f"({platform.machine()}, Python {platform.python_version()})\n"]  # fmt: skip
    failed = 0
    for name in names:
        print(f"== {name}", flush=True)
        started = time.monotonic()
        proc = subprocess.run(
            [sys.executable, str(HERE / name / "run.py")], capture_output=True, text=True
        )
        took = time.monotonic() - started
        print(proc.stdout, flush=True)
        if proc.returncode != 0:
            failed += 1
            print(proc.stderr[-3000:], file=sys.stderr)
        out.append(f"## {name} ({took:.0f} s, exit {proc.returncode})\n\n{proc.stdout}\n")
    (HERE / "last-run.md").write_text("\n".join(out))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
