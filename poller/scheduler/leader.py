"""Leader election through an etcd lease: one active scheduler, standbys ready to take over.

The leader holds ``<prefix>leader/<election>`` attached to a lease of ``ttl`` seconds,
created only if the key does not exist (transaction on version == 0), and refreshes
the lease every ttl/3. A standby retries the transaction every ``retry`` seconds, so
after a leader dies the standby leads at most ttl + retry seconds later (the key goes
with the lease). A leader that cannot refresh for 2/3 of the TTL steps down first, so
two leaders never overlap by the clock. A clean stop revokes the lease: hand-over is
immediate.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass, field
from typing import Any

from kemi_stats.registry.etcd import EtcdConfig, connect

__all__ = ["LeaderElection"]

log = logging.getLogger("poller.scheduler.leader")


@dataclass(eq=False)
class LeaderElection:
    """Runs in a thread; ``is_leader`` is the current state, ``on_change(bool)`` reports flips."""

    #: etcd's endpoints, TLS and user (or a plain ``host:port``)
    endpoint: EtcdConfig | str
    key: str
    identity: str
    ttl: int = 10
    _: KW_ONLY
    retry: float = 0.5
    on_change: Callable[[bool], None] | None = None
    #: an etcd client to use (connected to ``endpoint`` on first use when None)
    connection: Any = None
    changes: int = 0
    _lease: Any = field(default=None, init=False, repr=False)
    _leader: bool = field(default=False, init=False)
    _last_refresh: float = field(default=0.0, init=False, repr=False)
    _stop: threading.Event = field(default_factory=threading.Event, init=False, repr=False)
    _thread: threading.Thread | None = field(default=None, init=False, repr=False)

    @property
    def is_leader(self) -> bool:
        return self._leader

    @property
    def client(self) -> Any:
        if self.connection is None:
            self.connection = connect(self.endpoint)
        return self.connection

    def start(self) -> LeaderElection:
        self._thread = threading.Thread(target=self._run, name="kemi-leader", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop campaigning; a leader revokes its lease so a standby takes over at once."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._lease is not None:
            try:
                self.client.revoke_lease(self._lease.id)
            except Exception as exc:
                log.warning("revoke lease on %s failed: %s", self.key, exc)
            self._lease = None
        self._set(False)

    def _set(self, leader: bool) -> None:
        if leader == self._leader:
            return
        self._leader = leader
        self.changes += 1
        log.info("%s %s leadership of %s", self.identity, "took" if leader else "lost", self.key)
        if self.on_change is not None:
            try:
                self.on_change(leader)
            except Exception:
                log.exception("leader change callback failed")

    def try_acquire(self) -> bool:
        """One attempt to become leader; True if this process now leads."""
        client = self.client
        lease = client.lease(self.ttl)
        ok, _ = client.transaction(
            compare=[client.transactions.version(self.key) == 0],
            success=[client.transactions.put(self.key, self.identity, lease)],
            failure=[],
        )
        if not ok:
            try:
                client.revoke_lease(lease.id)
            except Exception:
                log.debug("revoke of unused lease failed", exc_info=True)
            return False
        self._lease = lease
        self._last_refresh = time.monotonic()
        return True

    def refresh(self) -> bool:
        """Keep the lease alive; False if it has expired or the key is no longer ours."""
        if self._lease is None:
            return False
        responses = list(self.client.refresh_lease(self._lease.id))
        ttl = int(responses[0].TTL) if responses else 0
        if ttl <= 0:
            return False
        value, _ = self.client.get(self.key)
        if value is None or value.decode() != self.identity:
            return False
        self._last_refresh = time.monotonic()
        return True

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if not self._leader:
                    if self.try_acquire():
                        self._set(True)
                        continue
                    self._stop.wait(self.retry)
                    continue
                if not self.refresh():
                    self._lease = None
                    self._set(False)
                    continue
                self._stop.wait(self.ttl / 3)
            except Exception as exc:
                log.warning("leader election on %s: %s", self.endpoint, exc)
                if self._leader and time.monotonic() - self._last_refresh > self.ttl * 2 / 3:
                    # cannot prove we still hold the lease: stop before a standby may start
                    self._lease = None
                    self._set(False)
                self._stop.wait(self.retry)
