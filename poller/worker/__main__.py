"""``python -m poller.worker``: one poll worker process of the consumer group."""

from __future__ import annotations

import sys

from kemi_stats.service import ServiceRuntime
from kemi_stats.settings import load_settings
from poller.worker.service import main

if __name__ == "__main__":
    sys.exit(ServiceRuntime("poller", load_settings()).run(main))
