"""Browser sessions: who is signed in, and the CSRF token every form carries.

A session is made only when a page needs a CSRF token (the sign-in form, a signed-in
page's forms): reading pages makes none. Its random id travels in an HttpOnly,
SameSite=Strict cookie (Secure when the console serves HTTPS). Reading needs no
sign-in; changing anything (silences) needs a session signed in with a ``console``
token, and every POST must carry the session's CSRF token. Signing in replaces the
session id (a fixated id learns nothing) and binds the session to the token's hash, so
a token removed, or replaced under the same name, signs its sessions out.

Anonymous and signed-in sessions are kept apart, each pool capped and evicting its
least recently used: a flood of anonymous visitors can never sign anyone out. A
signed-in session ends after ``idle_timeout`` without a request, and after
``max_age`` whatever happens (a wall display reloading every 30 s stays no longer).
Sessions live in this process's memory: a restart signs everyone out, which costs a
sign-in and keeps tokens out of any store.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass, field

__all__ = ["COOKIE", "Session", "SessionStore"]

#: the session cookie's name
COOKIE = "kemi_console_session"


@dataclass(slots=True)
class Session:
    """One browser's session."""

    id: str
    csrf: str
    #: the console token's name when signed in, else None
    user: str | None = None
    #: the hash of the token it signed in with
    token_hash: str = ""
    created: float = field(default_factory=time.monotonic)
    last_seen: float = field(default_factory=time.monotonic)
    #: a message for the next page this session sees: (kind, text), kind "ok" or "error"
    flash: tuple[str, str] | None = None

    def csrf_ok(self, given: object) -> bool:
        """Whether a form's CSRF token is this session's (constant-time)."""
        return isinstance(given, str) and bool(given) and hmac.compare_digest(given, self.csrf)

    def pop_flash(self) -> tuple[str, str] | None:
        message, self.flash = self.flash, None
        return message


class SessionStore:
    """Sessions by id, in two pools (anonymous, signed in), each LRU-capped; idle or old
    ones expire."""

    def __init__(self, idle_timeout: float, max_sessions: int, max_age: float = 86400.0) -> None:
        self.idle_timeout = idle_timeout
        self.max_sessions = max_sessions
        self.max_age = max_age
        self._anonymous: OrderedDict[str, Session] = OrderedDict()
        self._signed: OrderedDict[str, Session] = OrderedDict()

    def __len__(self) -> int:
        return len(self._anonymous) + len(self._signed)

    def signed_in(self) -> int:
        """How many signed-in sessions are held."""
        return len(self._signed)

    def get(self, sid: str | None) -> Session | None:
        """The live session of ``sid`` (touched), or None if unknown or expired."""
        if not sid:
            return None
        pool = self._signed if sid in self._signed else self._anonymous
        session = pool.get(sid)
        if session is None:
            return None
        now = time.monotonic()
        if now - session.last_seen > self.idle_timeout or now - session.created > self.max_age:
            del pool[sid]
            return None
        session.last_seen = now
        pool.move_to_end(sid)
        return session

    def new(self) -> Session:
        """A fresh anonymous session (a new id and CSRF token)."""
        session = Session(secrets.token_urlsafe(32), secrets.token_urlsafe(32))
        self._add(self._anonymous, session)
        return session

    def sign_in(self, old: Session, user: str, token_hash: str) -> Session:
        """A new session for ``user`` replacing ``old`` (new id and CSRF token)."""
        self.drop(old)
        session = Session(secrets.token_urlsafe(32), secrets.token_urlsafe(32), user, token_hash)
        self._add(self._signed, session)
        return session

    def drop(self, session: Session) -> None:
        self._anonymous.pop(session.id, None)
        self._signed.pop(session.id, None)

    def _add(self, pool: OrderedDict[str, Session], session: Session) -> None:
        pool[session.id] = session
        while len(pool) > self.max_sessions:
            pool.popitem(last=False)
