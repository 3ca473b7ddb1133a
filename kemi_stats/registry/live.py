"""A live, typed view of the registry for services: a snapshot, then a watch from its revision.

The view never misses a change: the watch starts at the snapshot's revision + 1, and
whenever the watch breaks (etcd restarted, revision compacted) the snapshot is read
again and compared with the cache, so a change made while etcd was away is still
delivered to subscribers. Invalid entries, and entries that fail to parse for any
other reason, are skipped, logged with key and reason, and counted; the service
keeps running.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from kemi_stats.errors import KemiError, ValidationError
from kemi_stats.keyring import Keyring
from kemi_stats.registry.compact import compact
from kemi_stats.registry.etcd import EtcdConfig
from kemi_stats.registry.models import KINDS
from kemi_stats.registry.store import Registry
from kemi_stats.settings import Settings

__all__ = ["Change", "LiveView"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Change:
    """One entry added, updated or removed. ``new`` is None for a removal."""

    kind: str
    name: str
    old: Any
    new: Any
    revision: int

    @property
    def action(self) -> str:
        if self.old is None:
            return "add"
        return "remove" if self.new is None else "update"


Subscriber = Callable[[Change], None]


class LiveView:
    """Follows the registry: ``view.get("target")`` is always the latest valid set."""

    def __init__(
        self,
        registry: Registry,
        kinds: Iterable[str] | None = None,
        *,
        retry_interval: float = 0.5,
    ) -> None:
        self.registry = registry
        self.kinds = tuple(kinds) if kinds is not None else tuple(KINDS)
        self.retry_interval = retry_interval
        self._cache: dict[str, dict[str, Any]] = {k: {} for k in self.kinds}
        self._invalid: dict[str, str] = {}
        self._keyring_generation = 0
        self._subscribers: list[Subscriber] = []
        self._revision = 0
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.reloads = 0
        self.invalid_total = 0
        self.connected = False

    # --- public API -----------------------------------------------------------------

    def get(self, kind: str) -> dict[str, Any]:
        """The current valid entries of ``kind`` by name (a snapshot; do not mutate)."""
        return self._cache[kind]

    def lookup(self, kind: str, name: str) -> Any | None:
        return self._cache[kind].get(name)

    @property
    def revision(self) -> int:
        """The etcd revision the view reflects."""
        return self._revision

    @property
    def invalid(self) -> dict[str, str]:
        """Keys currently skipped as invalid, with the reason."""
        return dict(self._invalid)

    def subscribe(self, fn: Subscriber) -> None:
        """Call ``fn(change)`` (from the watch thread) for every change from now on."""
        self._subscribers.append(fn)

    def subscribe_on(self, loop: asyncio.AbstractEventLoop, fn: Subscriber) -> None:
        """Call ``fn(change)`` on ``loop`` (not the watch thread) for every change from now on."""

        def hand_over(change: Change) -> None:
            loop.call_soon_threadsafe(fn, change)

        self._subscribers.append(hand_over)

    def start(self, wait: float | None = 10.0) -> LiveView:
        """Start following; wait up to ``wait`` seconds for the first snapshot."""
        self._thread = threading.Thread(target=self._run, name="kemi-live-view", daemon=True)
        self._thread.start()
        if wait is not None and not self._ready.wait(wait):
            raise KemiError(
                f"etcd {self.registry.endpoint}: no registry snapshot after {wait:.0f} s"
            )
        return self

    def wait_ready(self, timeout: float | None = None) -> bool:
        return self._ready.wait(timeout)

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)

    @classmethod
    async def open(
        cls, settings: Settings, kinds: Iterable[str], *, keyring: Keyring | None = None
    ) -> LiveView:
        """A started view of ``kinds`` on the settings' etcd (the first snapshot read off the loop).

        A service that uses secrets in clear (SNMP communities, webhook secrets) passes
        its ``keyring`` (:func:`kemi_stats.keyring.require_keyring`); the others read
        sealed secrets as they are and never need the key.
        """
        registry = Registry(
            EtcdConfig.from_settings(settings), settings.etcd_prefix, keyring=keyring
        )
        view = cls(registry, kinds)
        await asyncio.to_thread(view.start)
        return view

    def close(self) -> None:
        """Stop following and close the registry connection."""
        self.stop()
        self.registry.close()

    # --- the loop -------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                revision = self._load_snapshot()
                self._follow(revision)
            except Exception as exc:
                self.connected = False
                log.warning(
                    "registry watch on %s broke: %s; reloading", self.registry.endpoint, exc
                )
                self._stop.wait(self.retry_interval)

    def _load_snapshot(self) -> int:
        revision, rows = self.registry.scan(self.registry.prefix)
        fresh: dict[str, dict[str, Any]] = {k: {} for k in self.kinds}
        invalid: dict[str, str] = {}
        for key, value, _ in rows:
            parsed = self._parse(key, value)
            if parsed is None:
                continue
            kind, name, doc, reason = parsed
            if reason:
                invalid[key] = reason
            else:
                fresh[kind][name] = doc
        with self._lock:
            changes = []
            for kind in self.kinds:
                old, new = self._cache[kind], fresh[kind]
                for name in old.keys() | new.keys():
                    if old.get(name) != new.get(name):
                        changes.append(Change(kind, name, old.get(name), new.get(name), revision))
            for key, reason in invalid.items():
                if self._invalid.get(key) != reason:
                    self._report_invalid(key, reason)
            self._invalid = invalid
            self._cache = fresh
            self._revision = revision
        self.reloads += 1
        self.connected = True
        self._ready.set()
        self._notify(changes)
        return revision

    def _parse(self, key: str, value: bytes) -> tuple[str, str, Any, str] | None:
        split = self.registry.split_key(key)
        if split is None or split[0].name not in self.kinds:
            return None
        spec, name = split
        try:
            return spec.name, name, compact(self.registry.decode(spec.name, name, value)), ""
        except (ValidationError, orjson.JSONDecodeError) as exc:
            return spec.name, name, None, str(exc)
        except Exception as exc:  # whatever one entry breaks, the others are still served
            return spec.name, name, None, f"{spec.name} {name}: {type(exc).__name__}: {exc}"

    def _keyring_moved(self) -> bool:
        """Whether entries skipped for a key the keyring lacked may open now: the keyring
        file changed since (``rotate-key`` can run before a service has the new file)."""
        ring = self.registry.keyring if self._invalid else None
        if ring is None:
            return False
        ring.reload_if_changed()
        if ring.generation == self._keyring_generation:
            return False
        self._keyring_generation = ring.generation
        return True

    def _report_invalid(self, key: str, reason: str) -> None:
        self.invalid_total += 1
        log.error("registry entry %s skipped: %s", key, reason)

    def _follow(self, revision: int) -> None:
        events: queue.Queue[Any] = queue.Queue()
        client = self.registry.client
        watch_id = client.add_watch_prefix_callback(
            self.registry.prefix, events.put, start_revision=revision + 1
        )
        try:
            while not self._stop.is_set():
                try:
                    item = events.get(timeout=1.0)
                except queue.Empty:
                    if self._keyring_moved():
                        log.info("keyring changed: reading the registry again")
                        return  # the loop loads a fresh snapshot
                    continue
                if item is None or isinstance(item, BaseException):
                    raise KemiError(f"watch ended: {item!r}")
                self._apply(item.events, int(item.header.revision))
        finally:
            try:
                client.cancel_watch(watch_id)
            except Exception:
                log.debug("cancel watch failed", exc_info=True)

    def _apply(self, watch_events: list[Any], revision: int) -> None:
        changes: list[Change] = []
        with self._lock:
            cache = {k: v for k, v in self._cache.items()}
            touched: set[str] = set()
            for ev in watch_events:
                key = ev.key.decode()
                split = self.registry.split_key(key)
                if split is None or split[0].name not in self.kinds:
                    continue
                kind, name = split[0].name, split[1]
                if kind not in touched:
                    cache[kind] = dict(cache[kind])
                    touched.add(kind)
                old = cache[kind].get(name)
                if type(ev).__name__ == "DeleteEvent":
                    self._invalid.pop(key, None)
                    new = None
                else:
                    parsed = self._parse(key, ev.value)
                    assert parsed is not None
                    _, _, new, reason = parsed
                    if reason:
                        self._invalid[key] = reason
                        self._report_invalid(key, reason)
                        # keep serving the last valid version rather than dropping it
                        continue
                    self._invalid.pop(key, None)
                if new is None:
                    cache[kind].pop(name, None)
                else:
                    cache[kind][name] = new
                if old != new:
                    changes.append(Change(kind, name, old, new, int(ev.mod_revision or revision)))
            self._cache = cache
            self._revision = revision
        self._notify(changes)

    def _notify(self, changes: list[Change]) -> None:
        for change in changes:
            for fn in self._subscribers:
                try:
                    fn(change)
                except Exception:
                    log.exception("registry subscriber failed on %s %s", change.kind, change.name)
