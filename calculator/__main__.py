"""``python -m calculator``: the Faust worker deriving computed metrics (``kemi-stats run calculator``)."""

import sys

from calculator.service import main

if __name__ == "__main__":
    sys.exit(main())
