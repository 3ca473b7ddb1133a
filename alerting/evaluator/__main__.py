"""``python -m alerting.evaluator`` (``kemi-stats run alert-evaluator``)."""

from __future__ import annotations

import sys

from kemi_stats.runtime import run_main

if __name__ == "__main__":
    sys.exit(run_main("alert-evaluator", "alerting.evaluator.service"))
