"""``python -m console``: the web console (``kemi-stats run console``)."""

import sys

from kemi_stats.runtime import run_main

if __name__ == "__main__":
    sys.exit(run_main("console", "console.service"))
