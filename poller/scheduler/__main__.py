"""``python -m poller.scheduler``: the poll job producer (one active leader, standbys)."""

import sys

from poller.scheduler.service import main

if __name__ == "__main__":
    sys.exit(main())
