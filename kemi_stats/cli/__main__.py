"""``python -m kemi_stats.cli`` is ``kemi-stats``."""

from kemi_stats.cli.main import main

main()
