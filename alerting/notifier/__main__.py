"""``python -m alerting.notifier`` (``kemi-stats run notifier``)."""

from __future__ import annotations

import sys

from kemi_stats.runtime import run_main

if __name__ == "__main__":
    sys.exit(run_main("notifier", "alerting.notifier.service"))
