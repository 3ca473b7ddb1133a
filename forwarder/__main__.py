"""``python -m forwarder``: the Metric Forwarder (``kemi-stats run forwarder``)."""

import sys

from kemi_stats.runtime import run_main

if __name__ == "__main__":
    sys.exit(run_main("forwarder", "forwarder.service"))
