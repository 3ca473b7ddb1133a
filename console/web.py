"""What every console page shares: templates, the session and CSRF checks, security headers.

Pages are rendered on the server with Jinja2 (autoescaped). Every response carries a
Content-Security-Policy that allows only the console's own scripts, styles and images
(no inline script, no CDN), and is never framed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import jinja2
from aiohttp import web

from console import metrics as m
from console.humanize import compact
from console.sessions import COOKIE, Session, SessionStore
from console.state import ConsoleState
from kemi_stats.redact import redact_urls

__all__ = [
    "STATE",
    "check_csrf",
    "flash",
    "middlewares",
    "peek_session",
    "render",
    "session_of",
    "state_of",
    "user_of",
]

log = logging.getLogger(__name__)

STATE: web.AppKey[ConsoleState] = web.AppKey("console_state", ConsoleState)
_SESSION_KEY = "kemi_console_session"
_CLEARED = "kemi_console_session_cleared"

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("console", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)

_ENV.filters["compact"] = compact
#: a URL on a page shows scheme, host and port only (one may carry a password or a token)
_ENV.filters["redact"] = redact_urls

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


def peek_session(request: web.Request) -> Session | None:
    """The request's session if it has one (its cookie's), without making one."""
    session: Session | None = request.get(_SESSION_KEY)
    if session is None:
        session = state_of(request).sessions.get(request.cookies.get(COOKIE))
        if session is not None:
            request[_SESSION_KEY] = session
    return session


def session_of(request: web.Request) -> Session:
    """The request's session: the cookie's, or a new one. Only what needs a CSRF token
    asks (a form); reading pages, health probes and static files make none."""
    session = peek_session(request)
    if session is None:
        session = state_of(request).sessions.new()
        request[_SESSION_KEY] = session
    return session


def user_of(request: web.Request) -> str | None:
    """The signed-in console token's name, or None. A session whose token was removed,
    lost the console scope or was replaced (another secret under the same name) ends."""
    session = peek_session(request)
    if session is None or session.user is None:
        return None
    state = state_of(request)
    if not state.console_token_matches(session.user, session.token_hash):
        state.sessions.drop(session)
        request.pop(_SESSION_KEY, None)
        return None
    return session.user


class _LazyCsrf:
    """The session's CSRF token, made (with the session) only if a template shows it."""

    def __init__(self, request: web.Request) -> None:
        self.request = request

    def __html__(self) -> str:
        return session_of(self.request).csrf  # URL-safe base64: nothing to escape

    __str__ = __html__


def flash(request: web.Request, kind: str, text: str) -> None:
    """A message for the next page this browser sees (``kind``: ok or error)."""
    session_of(request).flash = (kind, text)


def check_csrf(request: web.Request, form: Any) -> None:
    """403 unless the form carries this session's CSRF token."""
    if not session_of(request).csrf_ok(form.get("csrf")):
        raise web.HTTPForbidden(text="the form's CSRF token is missing or wrong: reload the page")


def render(
    request: web.Request, template: str, http_status: int = 200, **context: Any
) -> web.Response:
    """The page ``template`` with ``context`` plus what the layout needs."""
    state = state_of(request)
    user = user_of(request)
    session = peek_session(request)
    message = session.pop_flash() if session is not None else None
    body = _ENV.get_template(template).render(
        user=user,
        csrf=_LazyCsrf(request),
        path=request.path_qs,
        flash=message[1] if message and message[0] == "ok" else "",
        flash_error=message[1] if message and message[0] == "error" else "",
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
        except Exception:
            log.exception("%s %s", request.method, request.path)
            response = web.HTTPInternalServerError(text="the console failed; see its log")
        page = request.match_info.route.name or "other"
        m.PAGE_SECONDS.labels(page).observe(time.perf_counter() - started)
        current: Session | None = request.get(_SESSION_KEY)
        if current is not None and current.id != sid:
            _set_cookie(response, current, secure)
        elif request.get(_CLEARED) and sid:
            response.del_cookie(COOKIE, path="/")
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


def replace_session(request: web.Request, session: Session | None) -> None:
    """Make ``session`` the request's (its cookie is set on the response; None: the
    cookie is cleared)."""
    if session is None:
        request[_SESSION_KEY] = None
        request[_CLEARED] = True
    else:
        request[_SESSION_KEY] = session
