"""The alerts page: firing and pending alerts grouped by rule; silencing and expiring.

A silence added here is the entry ``kemi-stats silence add`` writes
(:mod:`kemi_stats.registry.silencing`), with the signed-in token's name as its author.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from typing import Any

from aiohttp import web

from console import metrics as m
from console.humanize import about
from console.web import check_csrf, flash, render, state_of, user_of
from kemi_stats.durations import format_duration, parse_duration
from kemi_stats.errors import KemiError, NotFoundError
from kemi_stats.matching import Selector
from kemi_stats.registry.models import Silence, parse_matcher
from kemi_stats.registry.silencing import expired_now, new_silence, new_silence_id

__all__ = ["routes"]

log = logging.getLogger(__name__)

_SEVERITY_ORDER = {"critical": 0, "warning": 1, "info": 2}


def _ago(since_ms: int, now_ms: int) -> str:
    return about((now_ms - since_ms) / 1000)


def _filter(
    alerts: list[dict[str, Any]], severity: str, match: str
) -> tuple[list[dict[str, Any]], str]:
    """The alerts of ``severity`` whose labels match every matcher of ``match``; or an error."""
    out = [a for a in alerts if not severity or a["severity"] == severity]
    texts = [t for t in match.replace(",", " ").split() if t]
    if not texts:
        return out, ""
    try:
        selector = Selector.build([parse_matcher(t) for t in texts])
    except ValueError as exc:
        return out, str(exc)
    return [a for a in out if selector.matches(a["resource"], a["labels"])], ""


def _groups(alerts: list[dict[str, Any]], now_ms: int) -> list[dict[str, Any]]:
    by_rule: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for a in alerts:
        by_rule[a["rule"]].append(a | {"ago": _ago(a["since_ms"], now_ms)})
    groups = []
    for rule, items in by_rule.items():
        items.sort(key=lambda a: (a["status"] != "firing", a["since_ms"]))
        groups.append({
            "rule": rule, "severity": items[0]["severity"], "alerts": items,
            "firing": sum(a["status"] == "firing" for a in items),
            "pending": sum(a["status"] == "pending" for a in items),
            "silenced": sum(bool(a.get("silenced")) for a in items),
        })  # fmt: skip
    groups.sort(key=lambda g: (_SEVERITY_ORDER.get(g["severity"], 9), -g["firing"], g["rule"]))
    return groups


async def alerts_page(request: web.Request) -> web.Response:
    state = state_of(request)
    view = await state.alerts.current()
    severity = request.query.get("severity", "")
    match = request.query.get("match", "")
    shown, match_error = _filter(view.alerts, severity, match)
    now = time.time()
    silences = sorted(
        ((name, s) for name, s in state.view.get("silence").items() if s.ends_at > now),
        key=lambda item: item[1].starts_at,
    )
    return render(
        request, "alerts.html",
        groups=_groups(shown, view.now_ms), total=len(view.alerts), shown=len(shown),
        firing=sum(a["status"] == "firing" for a in view.alerts),
        pending=sum(a["status"] == "pending" for a in view.alerts),
        error=view.error, severity=severity, match=match, match_error=match_error,
        severities=sorted({a["severity"] for a in view.alerts}, key=lambda s: _SEVERITY_ORDER.get(s, 9)),
        silences=[{"id": n, "doc": s, "active": s.active(now),
                   "ends_in": about(s.ends_at - now)} for n, s in silences],
        now=now,
    )  # fmt: skip


def _back(request: web.Request, ok: str = "", error: str = "") -> web.HTTPSeeOther:
    """Back to the alerts page, which shows the message once (kept in the session, never
    in the URL: a link cannot put words in the console's mouth)."""
    flash(request, "error" if error else "ok", error or ok)
    return web.HTTPSeeOther("/alerts")


def _require_user(request: web.Request) -> str:
    user = user_of(request)
    if user is None:
        raise web.HTTPForbidden(text="sign in with a console token to change silences")
    return user


async def silence_add(request: web.Request) -> web.Response:
    form = await request.post()
    check_csrf(request, form)
    user = _require_user(request)
    state = state_of(request)
    matchers = [t.strip() for t in str(form.get("matchers", "")).splitlines() if t.strip()]
    try:
        duration = parse_duration(str(form.get("duration", "")).strip() or "1h")
        if duration > state.config.max_silence:
            raise ValueError(
                f"duration {format_duration(duration)} is longer than the console allows "
                f"({format_duration(state.config.max_silence)})"
            )
        silence = new_silence(
            matchers, duration, comment=str(form.get("comment", "")).strip(), author=user
        )
    except ValueError as exc:
        raise _back(request, error=f"silence not added: {exc}") from None
    sid = new_silence_id()
    try:
        await asyncio.to_thread(state.view.registry.create, "silence", sid, silence)
    except KemiError as exc:
        log.warning("silence %s by %s: %s", sid, user, exc)
        raise _back(request, error=f"silence not added: {exc}") from None
    m.SILENCES.labels("added").inc()
    log.info("silence %s added by %s: %s", sid, user, " ".join(matchers))
    until = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(silence.ends_at))
    raise _back(request, ok=f"silence {sid} added until {until}")


async def silence_expire(request: web.Request) -> web.Response:
    form = await request.post()
    check_csrf(request, form)
    user = _require_user(request)
    state = state_of(request)
    sid = request.match_info["id"]
    try:
        entry = await asyncio.to_thread(state.view.registry.get, "silence", sid)
        doc: Silence = entry.doc
        if doc.ends_at > time.time():
            await asyncio.to_thread(state.view.registry.update, "silence", sid, expired_now(doc))
    except NotFoundError:
        raise _back(request, error=f"silence {sid} does not exist") from None
    except KemiError as exc:
        raise _back(request, error=f"silence {sid} not expired: {exc}") from None
    m.SILENCES.labels("expired").inc()
    log.info("silence %s expired by %s", sid, user)
    raise _back(request, ok=f"silence {sid} expired")


def routes() -> list[web.RouteDef]:
    return [
        web.get("/alerts", alerts_page, name="alerts"),
        web.post("/alerts/silence", silence_add, name="silence_add"),
        web.post("/silences/{id}/expire", silence_expire, name="silence_expire"),
    ]
