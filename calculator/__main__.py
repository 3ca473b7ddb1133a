"""``python -m calculator``: the Faust worker deriving computed metrics (``kemi-stats run calculator``)."""

import sys

from kemi_stats.runtime import run_main

if __name__ == "__main__":
    sys.exit(run_main("calculator", "calculator.service"))
