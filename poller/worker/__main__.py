"""``python -m poller.worker``: one poll worker process of the consumer group."""

import sys

from poller.worker.service import main

if __name__ == "__main__":
    sys.exit(main())
