"""The calculator process: topics, live definitions, then the Faust worker (/healthz, /metrics on its web server)."""

from __future__ import annotations

import sys

from calculator.settings import PORT
from kemi_stats.errors import KemiError
from kemi_stats.runtime import setup_logging
from kemi_stats.topics import ensure_topics

__all__ = ["NAME", "PORT", "main"]

NAME = "calculator"


def main() -> int:
    """Create the topics, load the definitions, then run the worker until SIGTERM/SIGINT."""
    from faust import Worker

    from calculator.agents import definitions
    from calculator.app import app, settings
    from calculator.topics import topic_specs
    from calculator.web import healthz  # noqa: F401  (registers the pages)

    setup_logging(NAME, settings.log_level)
    try:
        (settings.data_dir / "calculator").mkdir(parents=True, exist_ok=True)
        ensure_topics(settings, topic_specs())
        definitions.start()
    except KemiError as exc:
        print(f"calculator: {exc}", file=sys.stderr)
        return 1
    worker = Worker(app, loglevel=settings.log_level.lower(), redirect_stdouts=False)
    try:
        worker.execute_from_commandline()
    finally:
        definitions.stop()
    return 0
