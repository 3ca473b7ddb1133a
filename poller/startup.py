"""What both poller processes do first: read their settings, create their topics, follow the registry."""

from __future__ import annotations

from kemi_stats.keyring import require_keyring
from kemi_stats.registry.live import LiveView
from kemi_stats.settings import Settings
from kemi_stats.topics import ensure_topics_async
from poller.settings import PollerSettings

__all__ = ["start_poller"]


async def start_poller(settings: Settings, kinds: list[str]) -> tuple[PollerSettings, LiveView]:
    """``KEMI_POLLER_*`` settings, the jobs and raw topics created, a started view of ``kinds``.

    A process that reads credentials (the worker) needs the keyring that opens them,
    checked first so that a missing one is the one line the process ends with.
    """
    keyring = require_keyring(settings, "poller worker") if "credential" in kinds else None
    ps = PollerSettings()
    await ensure_topics_async(settings, ps.topic_specs())
    return ps, await LiveView.open(settings, kinds, keyring=keyring)
