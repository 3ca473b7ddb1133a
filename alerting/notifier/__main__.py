"""``python -m alerting.notifier`` (``kemi-stats run notifier``)."""

from __future__ import annotations

import sys

from alerting.notifier.service import main

if __name__ == "__main__":
    sys.exit(main())
