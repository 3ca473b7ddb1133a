"""``python -m alerting.evaluator`` (``kemi-stats run alert-evaluator``)."""

from __future__ import annotations

import sys

from alerting.evaluator.service import main

if __name__ == "__main__":
    sys.exit(main())
