"""``python -m aggregator``: the HTTP push endpoint (``kemi-stats run aggregator``)."""

import sys

from kemi_stats.runtime import run_main

if __name__ == "__main__":
    sys.exit(run_main("aggregator", "aggregator.service"))
