"""The targets page (the fleet: filter, search, pages) and one target's page.

The list joins the registry's targets with the fleet's last poll results
(:mod:`console.fleet`), both in memory: filtering 10,000 targets is one pass.
A target's page reads its metrics' last hour from the TSDB, with a sparkline each.
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from console.fleet import PollResult
from console.humanize import about
from console.sparkline import sparkline
from console.web import render, state_of
from kemi_stats.durations import format_duration
from kemi_stats.registry.models import Profile, Target
from kemi_stats.tsdb import RangeQuery, Series, TsdbError

__all__ = ["routes", "status_of"]

#: target statuses the filter offers
STATUSES = ("failing", "ok", "unknown", "disabled")
#: metrics every polled target has, besides its profiles'
_POLL_METRICS = ("snmp_up", "snmp_poll_duration_seconds")
_HOUR = 3600.0
#: one point per poll of a 15 s interval: a target polled twice already has a line
_STEP = 15.0


def status_of(target: Target, result: PollResult | None) -> str:
    if not target.enabled:
        return "disabled"
    if result is None:
        return "unknown"
    return "ok" if result.up else "failing"


def _matches(name: str, target: Target, q: str) -> bool:
    if not q:
        return True
    q = q.lower()
    hay = (name, target.host, target.resource_id or "", *target.labels.values(), *target.profiles)
    return any(q in h.lower() for h in hay)


def _label_filter(text: str) -> tuple[str, str] | None:
    key, sep, value = text.partition("=")
    return (key.strip(), value.strip()) if sep and key.strip() else None


async def targets_page(request: web.Request) -> web.Response:
    state = state_of(request)
    query = request.query
    q = query.get("q", "").strip()
    status = query.get("status", "")
    label_text = query.get("label", "").strip()
    label = _label_filter(label_text)
    profile = query.get("profile", "")
    targets: dict[str, Target] = state.view.get("target")
    fleet = state.fleet
    rows: list[dict[str, Any]] = []
    counts = dict.fromkeys(STATUSES, 0)
    for name in sorted(targets):
        target = targets[name]
        result = fleet.get(target.resource(name))
        st = status_of(target, result)
        counts[st] += 1
        if status and st != status:
            continue
        if label and target.labels.get(label[0]) != label[1]:
            continue
        if profile and profile not in target.profiles:
            continue
        if not _matches(name, target, q):
            continue
        rows.append({"name": name, "target": target, "status": st, "result": result})
    size = state.config.page_size
    pages = max(1, math.ceil(len(rows) / size))
    try:
        page = min(max(1, int(query.get("page", "1"))), pages)
    except ValueError:
        page = 1
    base = {
        k: v
        for k, v in (("q", q), ("status", status), ("label", label_text), ("profile", profile))
        if v
    }
    now = time.time()
    return render(
        request, "targets.html",
        rows=rows[(page - 1) * size : page * size], matched=len(rows), total=len(targets),
        counts=counts, statuses=STATUSES, q=q, status=status, label=label_text, profile=profile,
        profiles=sorted(state.view.get("profile")), page=page, pages=pages,
        page_url=lambda n: "/targets?" + urlencode(base | {"page": str(n)}),
        fleet_error=fleet.error, fleet_age=None if fleet.read_at is None else about(now - fleet.read_at),
        ago=lambda t: about(now - t), fmt=format_duration,
        label_error="" if not label_text or label else f"label filter {label_text!r}: expected key=value",
    )  # fmt: skip


def _metric_names(target: Target, profiles: dict[str, Profile]) -> list[str]:
    names: list[str] = list(_POLL_METRICS) if not target.scrapes else ["up"]
    for pname in target.profiles:
        profile = profiles.get(pname)
        if profile is None:
            continue
        names += profile.metric_names()
    return list(dict.fromkeys(names))


def _label_text(series: Series) -> str:
    labels = {k: v for k, v in series.labels.items() if k != "resource"}
    return ", ".join(f"{k}={v}" for k, v in sorted(labels.items()))


async def target_page(request: web.Request) -> web.Response:
    state = state_of(request)
    name = request.match_info["name"]
    target: Target | None = state.view.lookup("target", name)
    if target is None:
        raise web.HTTPNotFound(text=f"target {name} does not exist")
    resource = target.resource(name)
    result = state.fleet.get(resource)
    end = time.time()
    names = _metric_names(target, state.view.get("profile"))
    limit = asyncio.Semaphore(8)

    async def read(metric: str) -> list[Series] | str:
        async with limit:
            try:
                q = RangeQuery(metric, end - _HOUR, end, _STEP, resource=resource)
                return await asyncio.to_thread(state.tsdb.query_range, q)
            except TsdbError as exc:
                return str(exc)

    answers = await asyncio.gather(*(read(n) for n in names))
    metrics: list[dict[str, Any]] = []
    errors: list[str] = []
    for metric, answer in zip(names, answers, strict=True):
        if isinstance(answer, str):
            errors.append(answer)
            continue
        for series in answer:
            if series.points:
                metrics.append({
                    "metric": metric, "labels": _label_text(series), "value": series.points[-1][1],
                    "at": series.points[-1][0], "spark": sparkline(series.points),
                })  # fmt: skip
    return render(
        request, "target.html", name=name, target=target, resource=resource, result=result,
        status=status_of(target, result), metrics=metrics, errors=errors[:3], fmt=format_duration,
        ago=lambda t: about(end - t),
    )  # fmt: skip


def routes() -> list[web.RouteDef]:
    return [
        web.get("/targets", targets_page, name="targets"),
        web.get("/targets/{name}", target_page, name="target"),
    ]
