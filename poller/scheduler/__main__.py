"""``python -m poller.scheduler``: the poll job producer (one active leader, standbys)."""

from __future__ import annotations

import sys

from kemi_stats.service import ServiceRuntime
from kemi_stats.settings import load_settings
from poller.scheduler.service import main

if __name__ == "__main__":
    sys.exit(ServiceRuntime("poller-scheduler", load_settings()).run(main))
