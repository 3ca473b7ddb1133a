"""The calculator process: topics, live definitions, then the Faust worker (/healthz, /metrics on its web server)."""

from __future__ import annotations

import sys
from typing import Any

from calculator.settings import PORT
from kemi_stats.assignments import ASSIGNMENTS
from kemi_stats.errors import KemiError
from kemi_stats.registry.instances import InstanceRegistration, describe
from kemi_stats.runtime import arm_stop_deadline, disarm_stop_deadline, setup_logging
from kemi_stats.settings import Settings
from kemi_stats.topics import ensure_topics

__all__ = ["NAME", "PORT", "main"]

NAME = "calculator"


def register_instance(app: Any, settings: Settings) -> None:
    """Register this worker in etcd while it runs (``kemi-stats services``), with its partitions.

    Faust runs its own loop and has no ServiceRuntime: the registration starts as an app
    task, follows Faust's rebalance signals, and is revoked before Faust shuts down.
    """
    # the port the app was made with (calculator/app.py applies KEMI_HTTP_PORT)
    registration = InstanceRegistration(settings, describe(NAME, settings, int(app.conf.web_port)))

    async def assigned(sender: Any, assigned: set[Any], **_: Any) -> None:
        # Faust's own leader-election topic is no work of this instance
        ASSIGNMENTS.update(app, [tp for tp in assigned if not tp.topic.endswith("__leader")])

    async def revoked(sender: Any, revoked: set[Any], **_: Any) -> None:
        ASSIGNMENTS.update(app, ())

    async def stopping(sender: Any, **_: Any) -> None:
        from calculator.agents import close_producer

        await registration.stop()
        await close_producer()

    async def start() -> None:
        registration.start()

    app.on_partitions_assigned.connect(assigned)
    app.on_partitions_revoked.connect(revoked)
    app.on_before_shutdown.connect(stopping)
    app.task(start)


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
    register_instance(app, settings)

    class _Worker(Worker):
        def _schedule_shutdown(self, signal: Any) -> None:
            # SIGTERM and SIGINT both come here (mode's Worker): the stop is bounded
            arm_stop_deadline(NAME, settings.stop_timeout)
            super()._schedule_shutdown(signal)

    worker = _Worker(app, loglevel=settings.log_level.lower(), redirect_stdouts=False)
    try:
        worker.execute_from_commandline()
    finally:
        definitions.stop()
        disarm_stop_deadline()
    return 0
