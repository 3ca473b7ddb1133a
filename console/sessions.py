"""Browser sessions: who is signed in, and the CSRF token every form carries.

Every visitor gets a session (a random id in an HttpOnly, SameSite=Strict cookie,
Secure when the console serves HTTPS). Reading needs no sign-in; changing anything
(silences) needs a session signed in with a ``console`` token, and every POST must
carry the session's CSRF token. Signing in replaces the session id (a fixated id
learns nothing). Sessions live in this process's memory: a restart signs everyone
out, which costs a sign-in and keeps tokens out of any store.
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
    last_seen: float = field(default_factory=time.monotonic)

    def csrf_ok(self, given: str | None) -> bool:
        """Whether a form's CSRF token is this session's (constant-time)."""
        return bool(given) and hmac.compare_digest(str(given), self.csrf)


class SessionStore:
    """Sessions by id, the least recently used dropped first; idle ones expire."""

    def __init__(self, idle_timeout: float, max_sessions: int) -> None:
        self.idle_timeout = idle_timeout
        self.max_sessions = max_sessions
        self._sessions: OrderedDict[str, Session] = OrderedDict()

    def __len__(self) -> int:
        return len(self._sessions)

    def signed_in(self) -> int:
        """How many sessions are signed in now."""
        return sum(1 for s in self._sessions.values() if s.user is not None)

    def get(self, sid: str | None) -> Session | None:
        """The live session of ``sid`` (touched), or None if unknown or expired."""
        if not sid:
            return None
        session = self._sessions.get(sid)
        if session is None:
            return None
        now = time.monotonic()
        if now - session.last_seen > self.idle_timeout:
            del self._sessions[sid]
            return None
        session.last_seen = now
        self._sessions.move_to_end(sid)
        return session

    def new(self, user: str | None = None) -> Session:
        """A fresh session (a new id and CSRF token)."""
        session = Session(secrets.token_urlsafe(32), secrets.token_urlsafe(32), user)
        self._sessions[session.id] = session
        while len(self._sessions) > self.max_sessions:
            self._sessions.popitem(last=False)
        return session

    def sign_in(self, old: Session, user: str) -> Session:
        """A new session for ``user`` replacing ``old`` (new id and CSRF token)."""
        self.drop(old)
        return self.new(user)

    def drop(self, session: Session) -> None:
        self._sessions.pop(session.id, None)
