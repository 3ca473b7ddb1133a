"""The evaluator's durable state: series states, consumed offsets and history, in one SQLite file.

Why a local file and not Kafka or etcd: states and the offsets they reflect must be
saved *together*, atomically, or a restart either replays samples into a newer state
or skips samples; one SQLite transaction gives that. A compacted changelog topic
would need the end offset to know when recovery is done, which the local broker
reports wrongly (docs/local-stack.md), and etcd is the configuration store: a state write per
changed series per second does not belong there. The cost of a local file is that
an evaluator instance owns its partitions stickily (one instance per data
directory); see alerting/README.md.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

__all__ = ["SeriesRow", "StateStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS series (
    rule TEXT NOT NULL, skey TEXT NOT NULL, partition INTEGER NOT NULL, data BLOB NOT NULL,
    PRIMARY KEY (rule, skey)
);
CREATE INDEX IF NOT EXISTS series_partition ON series (partition);
CREATE TABLE IF NOT EXISTS offsets (
    topic TEXT NOT NULL, partition INTEGER NOT NULL, next_offset INTEGER NOT NULL,
    PRIMARY KEY (topic, partition)
);
CREATE TABLE IF NOT EXISTS rules (name TEXT PRIMARY KEY, doc BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS history (id INTEGER PRIMARY KEY AUTOINCREMENT, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

#: ``series.partition`` holds a slot (raw partition p: p, derived partition p: 65536 + p)
#: rather than the partition of the one sample topic the evaluator read before
_SLOTS = "slots"


@dataclass(slots=True)
class SeriesRow:
    """One persisted (rule, series) state."""

    rule: str
    skey: str
    partition: int
    data: dict[str, Any]


class StateStore:
    """A SQLite file (WAL) holding everything the evaluator needs after a restart."""

    def __init__(self, path: Path, history_size: int = 10000) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.history_size = history_size
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def use_slots(self, derived: set[str], derived_base: int) -> int | None:
        """Key a store saved before slots by slot, once: the series of a ``derived`` metric
        move to ``derived_base + partition``, the others (raw metrics) keep their partition.

        Returns how many moved, or None when the store was keyed by slot already (or new).
        """
        db = self._db
        if db.execute(
            "SELECT 1 FROM meta WHERE name = 'layout' AND value = ?", (_SLOTS,)
        ).fetchone():
            return None
        db.execute("BEGIN")
        try:
            rows = db.execute("SELECT rule, skey, partition, data FROM series").fetchall()
            moved = [
                (partition + derived_base, rule, skey)
                for rule, skey, partition, data in rows
                if partition < derived_base
                and orjson.loads(data)["labels"].get("metric") in derived
            ]
            db.executemany("UPDATE series SET partition = ? WHERE rule = ? AND skey = ?", moved)
            db.execute("INSERT OR REPLACE INTO meta (name, value) VALUES ('layout', ?)", (_SLOTS,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return len(moved) if rows else None

    def close(self) -> None:
        self._db.close()

    def load_series(self, partitions: Iterable[int] | None = None) -> Iterator[SeriesRow]:
        """Persisted states, of the given partitions only if given."""
        if partitions is None:
            cur = self._db.execute("SELECT rule, skey, partition, data FROM series")
        else:
            parts = sorted(set(partitions))
            if not parts:
                return
            marks = ",".join("?" * len(parts))
            cur = self._db.execute(
                f"SELECT rule, skey, partition, data FROM series WHERE partition IN ({marks})",
                parts,
            )
        for rule, skey, partition, data in cur:
            yield SeriesRow(rule, skey, partition, orjson.loads(data))

    def offsets(self, topic: str) -> dict[int, int]:
        """The next offset to consume per partition, as of the last checkpoint."""
        cur = self._db.execute(
            "SELECT partition, next_offset FROM offsets WHERE topic = ?", (topic,)
        )
        return dict(cur.fetchall())

    def rule_docs(self) -> dict[str, dict[str, Any]]:
        """The rule documents as of the last checkpoint (to resolve alerts of deleted rules)."""
        return {n: orjson.loads(d) for n, d in self._db.execute("SELECT name, doc FROM rules")}

    def history(self, limit: int) -> list[dict[str, Any]]:
        """The newest ``limit`` transitions, oldest first."""
        cur = self._db.execute("SELECT data FROM history ORDER BY id DESC LIMIT ?", (limit,))
        return [orjson.loads(d) for (d,) in reversed(cur.fetchall())]

    def checkpoint(
        self,
        *,
        upserts: Iterable[SeriesRow] = (),
        deletes: Iterable[tuple[str, str]] = (),
        offsets: Mapping[tuple[str, int], int] | None = None,
        history: Iterable[dict[str, Any]] = (),
        rules: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        """Write states, offsets, history (and the rule set) in one transaction."""
        db = self._db
        db.execute("BEGIN")
        try:
            db.executemany(
                "INSERT OR REPLACE INTO series (rule, skey, partition, data) VALUES (?, ?, ?, ?)",
                ((r.rule, r.skey, r.partition, orjson.dumps(r.data)) for r in upserts),
            )
            db.executemany("DELETE FROM series WHERE rule = ? AND skey = ?", list(deletes))
            if offsets:
                db.executemany(
                    "INSERT OR REPLACE INTO offsets (topic, partition, next_offset)"
                    " VALUES (?, ?, ?)",
                    [(t, p, o) for (t, p), o in offsets.items()],
                )
            rows = [(orjson.dumps(h),) for h in history]
            if rows:
                db.executemany("INSERT INTO history (data) VALUES (?)", rows)
                db.execute(
                    "DELETE FROM history WHERE id <= (SELECT MAX(id) FROM history) - ?",
                    (self.history_size,),
                )
            if rules is not None:
                db.execute("DELETE FROM rules")
                db.executemany(
                    "INSERT INTO rules (name, doc) VALUES (?, ?)",
                    [(n, orjson.dumps(d)) for n, d in rules.items()],
                )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
