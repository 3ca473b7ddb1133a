"""Running service instances in etcd: each process registers itself under a lease.

Key layout: ``<prefix>services/<service>/<instance>``, the instance id being
``<hostname>-<pid>`` (readable in a listing; unique on a host, and a container restarted
with the same hostname and pid simply takes over its predecessor's key). The value is
an :class:`Instance` document as JSON.

The key is bound to a lease of ``KEMI_REGISTRATION_TTL`` seconds (default 15) that
:class:`InstanceRegistration` keeps alive every TTL/3: a killed process drops out when
its lease expires, a cleanly stopped one revokes the lease and drops out at once. etcd
being down never stops a service: the registration retries in the background and logs
one line per failure streak.

``kemi-stats services`` reads them back with :func:`list_instances`.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import importlib.metadata
import logging
import os
import re
import socket
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator

from kemi_stats.assignments import ASSIGNMENTS, Partitions
from kemi_stats.registry.etcd import EtcdConfig, connect, etcd_errors
from kemi_stats.settings import Settings

if TYPE_CHECKING:
    from kemi_stats.registry.store import Registry

__all__ = [
    "Instance",
    "InstanceRegistration",
    "Listing",
    "advertised_host",
    "instance_id",
    "instance_key",
    "list_instances",
    "package_version",
    "parse_instances",
    "services_prefix",
]

log = logging.getLogger("kemi_stats.instances")

#: the sub-prefix of the registration keys (etcd_auth grants every service role write on it)
SERVICES_DIR = "services/"
#: seconds a stopping service waits for its lease's revocation
STOP_WAIT = 2.0

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


class Instance(BaseModel):
    """What a running service instance says about itself (no secrets: URLs carry none)."""

    # extra fields ignored: a newer service may say more than this CLI knows
    model_config = ConfigDict(extra="ignore", frozen=True)

    name: str = Field(min_length=1)
    instance: str = Field(min_length=1)
    host: str
    pid: int = Field(ge=0)
    version: str
    started_at: dt.datetime
    health_url: str
    metrics_url: str
    #: topic -> partition numbers this instance consumes now (empty: not a consumer)
    partitions: dict[str, list[int]] = Field(default_factory=dict)

    @field_validator("health_url", "metrics_url")
    @classmethod
    def _no_credentials(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("expected an http(s) URL")
        if "@" in parts.netloc:
            raise ValueError("a URL with user info is refused (it may hold a credential)")
        return value

    def to_json(self) -> bytes:
        """The stored form."""
        return orjson.dumps(self.model_dump(mode="json"))

    def uptime(self, now: dt.datetime | None = None) -> float:
        """Seconds since the instance started (0 for a clock that is behind)."""
        now = now or dt.datetime.now(dt.UTC)
        return max(0.0, (now - self.started_at).total_seconds())


def services_prefix(prefix: str, service: str | None = None) -> str:
    """The key prefix of every registration, or of one service's."""
    return f"{prefix}{SERVICES_DIR}" + (f"{service}/" if service else "")


def instance_key(prefix: str, service: str, instance: str) -> str:
    """``<prefix>services/<service>/<instance>``."""
    return f"{services_prefix(prefix, service)}{instance}"


def instance_id(host: str | None = None, pid: int | None = None) -> str:
    """``<hostname>-<pid>``, with characters a key segment should not hold replaced by ``_``;
    ``KEMI_INSTANCE_ID`` when set (the workers of one aggregator share their supervisor's)."""
    if host is None and pid is None and os.environ.get("KEMI_INSTANCE_ID"):
        return _UNSAFE.sub("_", os.environ["KEMI_INSTANCE_ID"])
    host = host if host is not None else socket.gethostname()
    pid = pid if pid is not None else os.getpid()
    return _UNSAFE.sub("_", f"{host}-{pid}")


def advertised_host(settings: Settings) -> str:
    """The host others reach this process's HTTP listener at.

    ``KEMI_ADVERTISE_HOST`` if set; else the bind address, unless it is a wildcard
    (0.0.0.0, ::), which nobody can connect to from elsewhere: then the hostname.
    """
    if settings.advertise_host:
        return settings.advertise_host
    if settings.http_host in ("", "0.0.0.0", "::", "[::]"):
        return socket.gethostname()
    return settings.http_host


def http_base(host: str, port: int, tls: bool = False) -> str:
    """``scheme://host:port`` with an IPv6 literal in brackets."""
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{'https' if tls else 'http'}://{host}:{port}"


def package_version() -> str:
    """The installed kemi-stats version (``unknown`` when run from a bare checkout)."""
    try:
        return importlib.metadata.version("kemi-stats")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def describe(
    service: str, settings: Settings, port: int, *, tls: bool = False, host: str | None = None
) -> Instance:
    """This process's document: ``port`` is the listener serving /healthz and /metrics."""
    base = http_base(host or advertised_host(settings), port, tls)
    return Instance(
        name=service,
        instance=instance_id(),
        host=socket.gethostname(),
        pid=os.getpid(),
        version=package_version(),
        started_at=dt.datetime.now(dt.UTC),
        health_url=f"{base}/healthz",
        metrics_url=f"{base}/metrics",
    )


class InstanceRegistration:
    """Keeps ``<prefix>services/<service>/<instance>`` in etcd under a lease while it runs.

    etcd calls are synchronous gRPC: they run in a thread (``asyncio.to_thread``) so
    the service's event loop never waits on etcd.
    """

    def __init__(
        self,
        settings: Settings,
        document: Instance,
        partitions: Callable[[], Partitions] | None = None,
    ) -> None:
        self.document = document
        self.key = instance_key(settings.etcd_prefix, document.name, document.instance)
        self.ttl = settings.registration_ttl
        self.interval = self.ttl / 3
        # every call must end before the next keepalive is due
        self._config = EtcdConfig.from_settings(settings)
        self._timeout = min(self._config.timeout, max(1.0, self.interval))
        self._partitions = partitions if partitions is not None else ASSIGNMENTS.snapshot
        self._client: Any = None
        self._lease: Any = None
        self._stored: bytes | None = None
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        # a tick still running in its thread when the task is cancelled must not grant a
        # lease after the revoke: both hold this lock, and nothing is granted once closed
        self._lock = threading.Lock()
        self._closed = False
        #: True while the key is known to be in etcd (for tests and health pages)
        self.registered = False

    def changed(self) -> None:
        """The document changed (a rebalance): write it now rather than at the next tick."""
        self._changed.set()

    def current(self) -> Instance:
        """The document with this moment's partitions."""
        return self.document.model_copy(update={"partitions": self._partitions()})

    def start(self) -> InstanceRegistration:
        """Run in the background of the running event loop; follow partition changes."""
        ASSIGNMENTS.on_change(self.changed)
        self._task = asyncio.create_task(self.run(), name=f"register {self.key}")
        return self

    async def stop(self) -> None:
        """Stop keeping the lease alive and revoke it: the key goes at once."""
        ASSIGNMENTS.remove_callback(self.changed)
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            # a healthy etcd revokes in milliseconds; a hung one must not hold the
            # service's stop: the lease then expires by itself within the TTL
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(task, STOP_WAIT)

    async def run(self) -> None:
        """Register, then keep the lease alive every TTL/3 and rewrite on change, until cancelled."""
        failing = False
        try:
            while True:
                self._changed.clear()
                doc = self.current().to_json()
                try:
                    await asyncio.to_thread(self._sync, doc)
                except Exception as exc:  # etcd down or refusing: never the service's end
                    self.registered = False
                    if not failing:
                        log.warning("registration %s failed (retrying every %.0f s): %s",
                                    self.key, self.interval, exc)  # fmt: skip
                    failing = True
                else:
                    self.registered = True
                    if failing:
                        log.info("registration %s: registered again", self.key)
                    failing = False
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), self.interval)
        finally:
            await asyncio.to_thread(self._revoke)

    def _sync(self, doc: bytes) -> None:
        """One tick: connect if needed, keep the lease alive (or get a new one), write if due."""
        with self._lock, etcd_errors(self._config.label, f"register {self.key}"):
            if self._closed:
                return
            if self._client is None:
                self._client = connect(self._config, timeout=self._timeout)
            client = self._client
            if self._lease is not None and _refresh(client, self._lease.id) <= 0:
                # etcd forgot the lease (down longer than the TTL, or restarted): start over
                self._lease = None
            if self._lease is None:
                self._lease = client.lease(self.ttl)
                self._stored = None
            if doc != self._stored:
                client.put(self.key, doc, lease=self._lease)
                self._stored = doc
            else:
                # written only if missing: someone may have deleted the key (a clean-up)
                # while the lease lives; a present key costs etcd no write and no revision
                txn = client.transactions
                client.transaction(
                    compare=[txn.version(self.key) > 0],
                    success=[],
                    failure=[txn.put(self.key, doc, lease=self._lease)],
                )

    def _revoke(self) -> None:
        """Revoke the lease (its key with it) and close the client; a failure only logs."""
        with self._lock:
            self._closed = True
            lease, self._lease = self._lease, None
            client, self._client = self._client, None
            self.registered = False
        try:
            if lease is not None and client is not None:
                with etcd_errors(self._config.label, f"deregister {self.key}"):
                    client.revoke_lease(lease.id)
        except Exception as exc:
            log.info("registration %s: not revoked (it expires in %s s): %s", self.key,
                     self.ttl, exc)  # fmt: skip
        finally:
            if client is not None:
                with contextlib.suppress(Exception):
                    client.close()


def _refresh(client: Any, lease_id: int) -> int:
    """Keep the lease alive; its remaining TTL (0 or less: etcd no longer has it)."""
    responses = list(client.refresh_lease(lease_id))
    return int(responses[-1].TTL) if responses else 0


@dataclass(frozen=True, slots=True)
class Listing:
    """The instances registered, and one line per key that could not be read."""

    instances: list[Instance]
    problems: list[str]


def parse_instances(
    prefix: str, rows: Iterable[tuple[str, bytes]], service: str | None = None
) -> Listing:
    """Documents from ``(key, value)`` rows, sorted by service and instance; bad rows reported."""
    instances: list[Instance] = []
    problems: list[str] = []
    base = services_prefix(prefix)
    for key, value in rows:
        name, _, instance = key.removeprefix(base).partition("/")
        if service is not None and name != service:
            continue
        try:
            doc = Instance.model_validate(orjson.loads(value))
        except (ValueError, TypeError) as exc:  # JSON or pydantic: one line, no value quoted
            problems.append(f"{key}: skipped: {_first_line(exc)}")
            continue
        if (doc.name, doc.instance) != (name, instance):
            problems.append(f"{key}: skipped: the document names {doc.name}/{doc.instance}")
            continue
        instances.append(doc)
    instances.sort(key=lambda d: (d.name, d.instance))
    return Listing(instances, problems)


def _first_line(exc: BaseException) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        first = errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        return f"{where}: {first.get('msg')}" if where else str(first.get("msg"))
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def list_instances(registry: Registry, service: str | None = None) -> Listing:
    """Every registered instance (of ``service`` if given), read in pages at one revision;
    BackendUnavailable if etcd fails."""
    _, rows = registry.scan(services_prefix(registry.prefix, service))
    return parse_instances(registry.prefix, [(key, value) for key, value, _ in rows], service)
