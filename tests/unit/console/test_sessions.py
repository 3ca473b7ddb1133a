"""Browser sessions: ids, CSRF tokens, idle expiry and the LRU cap."""

from __future__ import annotations

import time

import pytest

from console.sessions import Session, SessionStore


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    # Session.last_seen's default_factory holds the real time.monotonic, so the fake
    # clock starts at the real reading and is moved forward from there.
    now = [time.monotonic()]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    return now


def test_new_sessions_have_distinct_ids_and_tokens_and_can_be_got_back() -> None:
    store = SessionStore(idle_timeout=60, max_sessions=10)
    a, b = store.new(), store.new()
    assert a.id != b.id and a.csrf != b.csrf and a.id != a.csrf
    assert a.user is None
    assert store.get(a.id) is a
    assert store.get(b.id) is b
    assert len(store) == 2
    assert store.signed_in() == 0


def test_get_of_unknown_or_empty_id_is_none() -> None:
    store = SessionStore(idle_timeout=60, max_sessions=10)
    store.new()
    assert store.get("nope") is None
    assert store.get("") is None
    assert store.get(None) is None


def test_sign_in_gives_a_new_id_and_csrf_and_kills_the_old_id() -> None:
    store = SessionStore(idle_timeout=60, max_sessions=10)
    old = store.new()
    new = store.sign_in(old, "ops", "a" * 64)
    assert new.user == "ops"
    assert new.id != old.id
    assert new.csrf != old.csrf
    assert store.get(old.id) is None
    assert store.get(new.id) is new
    assert len(store) == 1
    assert store.signed_in() == 1


def test_idle_session_expires(clock: list[float]) -> None:
    store = SessionStore(idle_timeout=60, max_sessions=10)
    s = store.new()
    clock[0] += 59
    assert store.get(s.id) is s  # touched: idle time starts again
    clock[0] += 59
    assert store.get(s.id) is s
    clock[0] += 61
    assert store.get(s.id) is None
    assert len(store) == 0


def test_the_oldest_session_is_dropped_first_at_the_cap() -> None:
    store = SessionStore(idle_timeout=3600, max_sessions=3)
    a, b, c = store.new(), store.new(), store.new()
    d = store.new()
    assert len(store) == 3
    assert store.get(a.id) is None
    assert all(store.get(s.id) is s for s in (b, c, d))


def test_get_refreshes_recency() -> None:
    store = SessionStore(idle_timeout=3600, max_sessions=3)
    a, b, c = store.new(), store.new(), store.new()
    assert store.get(a.id) is a  # a is now the most recently used; b the oldest
    store.new()
    assert store.get(b.id) is None
    assert store.get(a.id) is a
    assert store.get(c.id) is c


@pytest.mark.parametrize(("given", "ok"), [("", False), (None, False), ("wrong", False)])
def test_csrf_ok_refuses_empty_none_and_wrong(given: str | None, ok: bool) -> None:
    s = Session("id", "the-token")
    assert s.csrf_ok(given) is ok


def test_csrf_ok_accepts_the_sessions_token() -> None:
    s = Session("id", "the-token")
    assert s.csrf_ok("the-token") is True
    assert s.csrf_ok("the-token ") is False


def test_a_flood_of_anonymous_visitors_signs_nobody_out() -> None:
    store = SessionStore(idle_timeout=60, max_sessions=10)
    signed = store.sign_in(store.new(), "ops", "a" * 64)
    for _ in range(1000):
        store.new()
    assert store.get(signed.id) is signed
    assert store.signed_in() == 1 and len(store) == 11


def test_a_busy_session_still_ends_at_its_max_age(clock: list[float]) -> None:
    store = SessionStore(idle_timeout=60, max_sessions=10, max_age=300)
    s = store.sign_in(store.new(), "ops", "a" * 64)
    for _ in range(9):
        clock[0] += 30  # a wall display reloading every 30 s
        assert store.get(s.id) is s
    clock[0] += 31
    assert store.get(s.id) is None


def test_a_flash_is_shown_once() -> None:
    s = SessionStore(idle_timeout=60, max_sessions=10).new()
    s.flash = ("ok", "silence added")
    assert s.pop_flash() == ("ok", "silence added")
    assert s.pop_flash() is None
