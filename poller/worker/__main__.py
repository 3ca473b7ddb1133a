"""``python -m poller.worker``: one poll worker process of the consumer group."""

import sys

from kemi_stats.runtime import run_main

if __name__ == "__main__":
    sys.exit(run_main("poller", "poller.worker.service"))
