"""The dedup stage: a persistent notification log, and what each alert still needs sent.

The log records, per receiver, every alert notification delivered (see
:func:`~alerting.notifier.payload.alert_key`). It makes redelivered records (after a
notifier or evaluator restart) harmless, and it decides resolved notifications: a
resolved alert is sent only to receivers that were told it was firing (not when
the firing was silenced or never got out).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable
from pathlib import Path

from alerting.notifier.payload import alert_key
from kemi_stats.codec import decode_alert, encode_alert
from kemi_stats.model import AlertEvent

__all__ = ["NotificationLog", "to_send"]

_RETENTION_S = 30 * 86400


class NotificationLog:
    """(receiver, alert key) pairs delivered, in SQLite, cached in memory."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS sent (receiver TEXT NOT NULL, key TEXT NOT NULL,"
            " at REAL NOT NULL, PRIMARY KEY (receiver, key))"
        )
        self._db.execute("DELETE FROM sent WHERE at < ?", (time.time() - _RETENTION_S,))
        self._sent: set[tuple[str, str]] = set(self._db.execute("SELECT receiver, key FROM sent"))
        # firing alerts an Alertmanager receiver was told about, re-sent until they resolve
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS active (receiver TEXT NOT NULL, fingerprint TEXT NOT NULL,"
            " event BLOB NOT NULL, PRIMARY KEY (receiver, fingerprint))"
        )
        self._active: dict[str, dict[str, AlertEvent]] = {}
        for receiver, fingerprint, blob in self._db.execute("SELECT * FROM active"):
            self._active.setdefault(receiver, {})[fingerprint] = decode_alert(blob)

    def close(self) -> None:
        self._db.close()

    def has(self, receiver: str, key: str) -> bool:
        return (receiver, key) in self._sent

    def record(self, receiver: str, keys: Iterable[str]) -> None:
        rows = [(receiver, k, time.time()) for k in keys]
        self._db.executemany(
            "INSERT OR REPLACE INTO sent (receiver, key, at) VALUES (?, ?, ?)", rows
        )
        self._sent.update((receiver, r[1]) for r in rows)

    def track_active(self, receiver: str, events: Iterable[AlertEvent]) -> None:
        """Remember delivered firing alerts of ``receiver``, forget resolved ones."""
        active = self._active.setdefault(receiver, {})
        for ev in events:
            if ev.status == "resolved":
                active.pop(ev.fingerprint, None)
                self._db.execute(
                    "DELETE FROM active WHERE receiver = ? AND fingerprint = ?",
                    (receiver, ev.fingerprint),
                )
            else:
                active[ev.fingerprint] = ev
                self._db.execute(
                    "INSERT OR REPLACE INTO active (receiver, fingerprint, event) VALUES (?, ?, ?)",
                    (receiver, ev.fingerprint, encode_alert(ev)),
                )

    def active(self, receiver: str) -> list[AlertEvent]:
        """The firing alerts ``receiver`` was told about and not yet told resolved."""
        return list(self._active.get(receiver, {}).values())


def _firing_key(event: AlertEvent) -> str:
    return f"{event.fingerprint}:firing:{event.starts_at_ms}"


def to_send(
    log: NotificationLog, receiver: str, events: Iterable[AlertEvent]
) -> tuple[list[AlertEvent], list[str]]:
    """The events still to notify and the log keys to record once they are delivered.

    * firing: unless that firing was delivered already;
    * repeat: as a reminder; or as the first firing notice if the firing never went
      out (e.g. it was silenced and the silence ended);
    * resolved: only if the firing was delivered, and only once.
    """
    out: list[AlertEvent] = []
    keys: list[str] = []
    for ev in events:
        firing = _firing_key(ev)
        if ev.status == "firing":
            if not log.has(receiver, firing):
                out.append(ev)
                keys.append(firing)
        elif ev.status == "repeat":
            key = alert_key(ev)
            if not log.has(receiver, firing):
                out.append(ev)
                keys += [firing, key]
            elif not log.has(receiver, key):
                out.append(ev)
                keys.append(key)
        elif ev.status == "resolved":
            key = alert_key(ev)
            if log.has(receiver, firing) and not log.has(receiver, key):
                out.append(ev)
                keys.append(key)
    return out, keys
