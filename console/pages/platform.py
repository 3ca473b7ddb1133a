"""The platform page: every service instance's health, throughput and lag; topics; config revision."""

from __future__ import annotations

import time

from aiohttp import web

from console.humanize import about
from console.web import render, state_of
from kemi_stats.registry.models import KINDS

__all__ = ["routes"]


async def platform_page(request: web.Request) -> web.Response:
    state = state_of(request)
    now = time.time()
    services = list(state.platform.services.values())
    return render(
        request, "platform.html", services=services,
        healthy=sum(1 for s in services if s.healthy), topics=state.topics,
        invalid=state.view.invalid, view_connected=state.view.connected,
        read_ago=None if state.platform.read_at is None else about(now - state.platform.read_at),
        fmt=about, etcd=state.view.registry.endpoint, tsdb=state.settings.tsdb_url,
        kinds={KINDS[k].plural: len(state.view.get(k)) for k in ("target", "profile", "derived", "rule", "silence")},
    )  # fmt: skip


def routes() -> list[web.RouteDef]:
    return [web.get("/platform", platform_page, name="platform")]
