"""``python -m kemi_stats.forwarder``: the Metric Forwarder (``kemi-stats run forwarder``)."""

from __future__ import annotations

import sys

from kemi_stats.forwarder.config import ForwarderSettings
from kemi_stats.forwarder.service import Forwarder
from kemi_stats.service import ServiceRuntime
from kemi_stats.settings import load_settings
from kemi_stats.topics import ensure_topics


def main() -> int:
    """Start the forwarder with /healthz and /metrics; run until SIGTERM/SIGINT."""
    settings = load_settings()
    runtime = ServiceRuntime("forwarder", settings)

    async def _main(rt: ServiceRuntime) -> None:
        forwarder = Forwarder(settings, ForwarderSettings())
        rt.add_check("kafka", forwarder.kafka_check)
        rt.add_check("tsdb", forwarder.tsdb_check)
        ensure_topics(settings.kafka_bootstrap)
        await forwarder.run()

    return runtime.run(_main)


if __name__ == "__main__":
    sys.exit(main())
