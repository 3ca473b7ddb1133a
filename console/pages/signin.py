"""Signing in with a ``console`` token, and out."""

from __future__ import annotations

import logging
import re

from aiohttp import web

from console import metrics as m
from console.web import check_csrf, render, replace_session, session_of, state_of

__all__ = ["routes"]

log = logging.getLogger(__name__)


#: a path of this console, with its query: no scheme, no host, no backslash, no control
#: character (browsers and yarl drop tabs and newlines, turning ``/\t/evil`` into ``//evil``)
_LOCAL_PATH = re.compile(r"/(?![/\\])[A-Za-z0-9/_.~%=&?:+,;@!$'()*-]*")


def _next(target: str) -> str:
    """Only a path of this console (never another site) is a place to go back to."""
    return target if _LOCAL_PATH.fullmatch(target) else "/alerts"


async def signin_page(request: web.Request) -> web.Response:
    return render(
        request, "signin.html", next=_next(request.query.get("next", "/alerts")), failed=False
    )


async def signin(request: web.Request) -> web.Response:
    form = await request.post()
    check_csrf(request, form)
    state = state_of(request)
    secret = str(form.get("token", "")).strip()
    found = state.console_token(secret) if secret else None
    target = _next(str(form.get("next", "/alerts")))
    if found is None:
        m.SIGN_INS.labels("refused").inc()
        log.info("sign-in refused from %s", request.remote)
        return render(request, "signin.html", http_status=401, next=target, failed=True)
    name, digest = found
    m.SIGN_INS.labels("ok").inc()
    log.info("signed in: token %s from %s", name, request.remote)
    replace_session(request, state.sessions.sign_in(session_of(request), name, digest))
    raise web.HTTPSeeOther(target)


async def signout(request: web.Request) -> web.Response:
    form = await request.post()
    check_csrf(request, form)
    state = state_of(request)
    state.sessions.drop(session_of(request))
    replace_session(request, None)
    raise web.HTTPSeeOther("/alerts")


def routes() -> list[web.RouteDef]:
    return [
        web.get("/signin", signin_page, name="signin_page"),
        web.post("/signin", signin, name="signin"),
        web.post("/signout", signout, name="signout"),
    ]
