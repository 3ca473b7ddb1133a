"""``python -m aggregator``: the HTTP push endpoint (``kemi-stats run aggregator``)."""

import sys

from aggregator.service import main

if __name__ == "__main__":
    sys.exit(main())
