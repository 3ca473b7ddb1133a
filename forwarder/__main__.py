"""``python -m forwarder``: the Metric Forwarder (``kemi-stats run forwarder``)."""

import sys

from forwarder.service import main

if __name__ == "__main__":
    sys.exit(main())
