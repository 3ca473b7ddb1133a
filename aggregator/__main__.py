"""``python -m aggregator``: the HTTP push endpoint (``kemi-stats run aggregator``)."""

from __future__ import annotations

import sys

from aggregator.app import run

if __name__ == "__main__":
    sys.exit(run())
