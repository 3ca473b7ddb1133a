"""``python -m poller.scheduler``: the poll job producer (one active leader, standbys)."""

import sys

from kemi_stats.runtime import run_main

if __name__ == "__main__":
    sys.exit(run_main("poller-scheduler", "poller.scheduler.service"))
