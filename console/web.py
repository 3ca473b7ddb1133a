"""What every console page shares: templates, the session and CSRF checks, security headers.

Pages are rendered on the server with Jinja2 (autoescaped). Every response carries a
Content-Security-Policy that allows only the console's own scripts, styles and images
(no inline script, no CDN), and is never framed.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import jinja2
from aiohttp import web

from console import metrics as m
from console.humanize import compact
from console.sessions import COOKIE, Session, SessionStore
from console.state import ConsoleState

__all__ = [
    "STATE",
    "check_csrf",
    "middlewares",
    "render",
    "session_of",
    "state_of",
    "user_of",
]

STATE: web.AppKey[ConsoleState] = web.AppKey("console_state", ConsoleState)
_SESSION_KEY = "kemi_console_session"

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("console", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)

_ENV.filters["compact"] = compact

_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


def state_of(request: web.Request) -> ConsoleState:
    return request.app[STATE]


def session_of(request: web.Request) -> Session:
    """The request's session: the cookie's, or a new one (health probes and static files,
    which never ask, make none)."""
    session: Session | None = request.get(_SESSION_KEY)
    if session is None:
        store = state_of(request).sessions
        session = store.get(request.cookies.get(COOKIE)) or store.new()
        request[_SESSION_KEY] = session
    return session


def user_of(request: web.Request) -> str | None:
    """The signed-in console token's name, or None; a token removed since signs out."""
    session = session_of(request)
    if session.user is not None and not state_of(request).console_token_exists(session.user):
        session.user = None
    return session.user


def check_csrf(request: web.Request, form: Any) -> None:
    """403 unless the form carries this session's CSRF token."""
    if not session_of(request).csrf_ok(form.get("csrf")):
        raise web.HTTPForbidden(text="the form's CSRF token is missing or wrong: reload the page")


def render(
    request: web.Request, template: str, http_status: int = 200, **context: Any
) -> web.Response:
    """The page ``template`` with ``context`` plus what the layout needs."""
    session = session_of(request)
    state = state_of(request)
    body = _ENV.get_template(template).render(
        user=user_of(request),
        csrf=session.csrf,
        path=request.path,
        flash=request.query.get("flash", ""),
        flash_error=request.query.get("error", ""),
        revision=state.view.revision,
        **context,
    )
    return web.Response(text=body, status=http_status, content_type="text/html", charset="utf-8")


def _set_cookie(response: web.StreamResponse, session: Session, secure: bool) -> None:
    response.set_cookie(
        COOKIE, session.id, httponly=True, samesite="Strict", secure=secure, path="/"
    )


def middlewares(store: SessionStore, secure: bool) -> list[Any]:
    """The session middleware (every request has a session) and the security headers."""

    @web.middleware
    async def sessions(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        sid = request.cookies.get(COOKIE)
        started = time.perf_counter()
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            response = exc
        page = request.match_info.route.name or "other"
        m.PAGE_SECONDS.labels(page).observe(time.perf_counter() - started)
        current: Session | None = request.get(_SESSION_KEY)
        if current is not None and current.id != sid:
            _set_cookie(response, current, secure)
        m.SESSIONS.labels("all").set(len(store))
        m.SESSIONS.labels("signed_in").set(store.signed_in())
        for name, value in _HEADERS.items():
            response.headers.setdefault(name, value)
        if secure:
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        if response.content_type == "text/html":
            response.headers.setdefault("Cache-Control", "no-store")
        if isinstance(response, web.HTTPException):
            raise response
        return response

    return [sessions]


def replace_session(request: web.Request, session: Session) -> None:
    """Make ``session`` the request's (its cookie is set on the response)."""
    request[_SESSION_KEY] = session
