"""The local stack supervisor: starts servers and services in order, waits for health, restarts crashes.

``kemi-stats up`` runs :meth:`Supervisor.run` in the foreground, or in a detached
process that the command watches through the state file.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from kemi_stats.catalogue import SERVICES, ServiceSpec, available_services
from kemi_stats.errors import KemiError, StackError
from kemi_stats.keyring import DEFAULT_FILE, Keyring
from kemi_stats.registry.store import Registry
from kemi_stats.settings import load_settings
from kemi_stats.stack.process import pid_alive, process_start, spawn, stop_pids
from kemi_stats.stack.self_targets import self_targets, sync_self_targets
from kemi_stats.stack.servers import (
    ServerCommand,
    broker_command,
    etcd_command,
    http_ok,
    port_open,
    victoria_command,
)
from kemi_stats.stack.state import ComponentState, StackState
from kemi_stats.topics import ensure_topics

__all__ = ["StackConfig", "Supervisor"]

log = logging.getLogger(__name__)

Progress = Callable[[ComponentState, float], None]

#: the local stack's sample topics' partitions: its broker's cost grows with the record
#: batches its partitions hold (docs/local-stack.md), and one machine needs no more
LOCAL_PARTITIONS = 4


@dataclass
class StackConfig:
    """Where the local stack keeps its data and which loopback ports it uses."""

    data_dir: Path
    host: str = "127.0.0.1"
    kafka_port: int = 9092
    etcd_port: int = 2379
    etcd_peer_port: int = 2380
    vm_port: int = 8428
    prefix: str = "/kemi/"
    service_ports: dict[str, int] = field(default_factory=dict)
    only_services: list[str] | None = None
    health_timeout: float = 60.0
    #: partitions of the sample topics (raw, derived, groups): the most workers of a
    #: stage that can share its work (docs/local-stack.md: why fewer than production's)
    partitions: int = LOCAL_PARTITIONS

    @property
    def kafka(self) -> str:
        return f"{self.host}:{self.kafka_port}"

    @property
    def etcd(self) -> str:
        return f"{self.host}:{self.etcd_port}"

    @property
    def tsdb_url(self) -> str:
        return f"http://{self.host}:{self.vm_port}"

    @property
    def keyring_file(self) -> Path:
        """The keyring sealing this stack's registry secrets: ``KEMI_SECRETS_KEYRING_FILE``
        if set, else ``<data dir>/keyring.json`` (made by ``up`` when missing)."""
        named = os.environ.get("KEMI_SECRETS_KEYRING_FILE")
        return Path(named) if named else self.data_dir / DEFAULT_FILE

    def ensure_keyring(self) -> Keyring:
        """The stack's keyring, made (mode 0600) on the first ``up``."""
        path = self.keyring_file
        if not path.exists():
            Keyring.generate().save(path)
        return Keyring.load(path)

    def service_env(self) -> dict[str, str]:
        """The environment every kemi service of this stack gets."""
        return {
            "KEMI_SECRETS_KEYRING_FILE": str(self.keyring_file),
            "KEMI_KAFKA_BOOTSTRAP": self.kafka,
            "KEMI_ETCD_ENDPOINT": self.etcd,
            "KEMI_ETCD_PREFIX": self.prefix,
            "KEMI_TSDB_URL": self.tsdb_url,
            "KEMI_DATA_DIR": str(self.services_dir),
            # a group join on the local broker takes half the session timeout (docs/local-stack.md)
            "KEMI_KAFKA_SESSION_TIMEOUT_MS": "6000",
            # a service the supervisor stops is killed after its grace anyway; one whose
            # supervisor was killed ends as soon, though its broker may be gone with it
            "KEMI_STOP_TIMEOUT": str(SERVICE_GRACE),
            # the local broker reports wrong end offsets, so Faust would refuse its own
            # RocksDB state after a restart (docs/local-stack.md); real Kafka keeps the check
            "KEMI_CALCULATOR_RECOVERY_CONSISTENCY_CHECK": "false",
            # the local broker grants producer ids but forgets them when it restarts and fences
            # a producer that bumps its epoch after a timeout: an idempotent producer then
            # never has a record acked again (docs/local-stack.md)
            "KEMI_AGGREGATOR_IDEMPOTENCE": "off",
            # every service creates a sample topic it finds missing (after a restart of
            # the broker, which keeps topics in memory) with this stack's partitions
            "KEMI_SAMPLE_PARTITIONS": str(self.partitions),
            # the console reads the evaluator's alerts and every service's health where
            # this stack runs them (their ports may not be the catalogue's)
            "KEMI_CONSOLE_EVALUATOR_URL": f"http://{self.host}:{self.service_port(SERVICES['alert-evaluator'])}",
            "KEMI_CONSOLE_SERVICES": ",".join(
                f"{s.name}=http://{self.host}:{self.service_port(s)}" for s in self.services()
            ),
        }

    @property
    def services_dir(self) -> Path:
        return self.data_dir / "services"

    def services(self) -> list[ServiceSpec]:
        found = available_services()
        if self.only_services is not None:
            found = [s for s in found if s.name in self.only_services]
        return found

    def service_port(self, spec: ServiceSpec) -> int:
        return self.service_ports.get(spec.name, spec.port)


@dataclass
class _Child:
    state: ComponentState
    argv: list[str]
    env: dict[str, str] | None
    check: Callable[[], bool] | None = None
    pid: int | None = None
    next_restart: float = 0.0
    backoff: float = 1.0


class Supervisor:
    """Runs the whole stack and keeps it running until told to stop."""

    def __init__(self, config: StackConfig, progress: Progress | None = None) -> None:
        self.config = config
        self.progress = progress or (lambda c, t: None)
        self.logs = config.data_dir / "logs"
        self.children: list[_Child] = []
        self.stop_event = threading.Event()
        self.state = StackState(
            data_dir=str(config.data_dir), supervisor_pid=os.getpid(),
            supervisor_started=process_start(os.getpid()),
        )  # fmt: skip
        self.extra_ready: list[Callable[[Supervisor], None]] = []

    # --- preparation -------------------------------------------------------------------

    def check(self) -> None:
        """Fail early, in one line, on an unwritable data dir or a port in use."""
        cfg = self.config
        try:
            self.logs.mkdir(parents=True, exist_ok=True)
            probe = cfg.data_dir / ".write-test"
            probe.write_text("ok")
            probe.unlink()
        except OSError as exc:
            raise StackError(f"data dir {cfg.data_dir}: not writable ({exc.strerror})") from None
        existing = StackState.load(cfg.data_dir)
        if existing and existing.supervisor_pid != os.getpid() and existing.supervisor_running():
            raise StackError(
                f"a stack is already running from {cfg.data_dir} (supervisor pid "
                f"{existing.supervisor_pid}); run 'kemi-stats down' first"
            )
        ports = [("broker", cfg.kafka_port, "--kafka-port"), ("etcd", cfg.etcd_port, "--etcd-port"),
                 ("etcd", cfg.etcd_peer_port, "--etcd-peer-port"),
                 ("victoriametrics", cfg.vm_port, "--vm-port")]  # fmt: skip
        ports += [(s.name, cfg.service_port(s), "--service-port") for s in cfg.services()]
        owners: dict[int, str] = {}
        for name, port, flag in ports:
            if port in owners and owners[port] != name:
                raise StackError(
                    f"{name}: port {port} is also given to {owners[port]} (pick another with {flag})",
                    component=name,
                )
            owners[port] = name
        for name, port, flag in ports:
            if port_open(cfg.host, port):
                raise StackError(
                    f"{name}: port {cfg.host}:{port} is in use (pick another with {flag})",
                    component=name,
                )

    def stop_orphans(self) -> list[ComponentState]:
        """Stop what a dead supervisor of this data dir left running; return what was stopped.

        Only processes that still run the command recorded for them are stopped, so a pid
        the kernel has since given to another program is left alone.
        """
        existing = StackState.load(self.config.data_dir)
        if existing is None or existing.supervisor_pid == os.getpid():
            return []
        orphans = existing.orphans()
        if orphans:
            stop_in_order(orphans)
            for comp in existing.components:
                comp.status = "stopped"
            existing.status = "stopped"
            existing.detail = "stopped after its supervisor had gone"
            existing.save()
        return orphans

    def _server_commands(self) -> list[ServerCommand]:
        cfg = self.config
        return [
            broker_command(cfg.kafka_port, cfg.host),
            etcd_command(cfg.data_dir / "etcd", cfg.etcd_port, cfg.etcd_peer_port, cfg.host),
            victoria_command(cfg.data_dir / "victoria-metrics", cfg.vm_port, cfg.host),
        ]

    # --- running -------------------------------------------------------------------------

    def add_child(
        self, name: str, kind: str, argv: list[str], address: str, health_url: str | None,
        env: dict[str, str] | None = None, check: Callable[[], bool] | None = None,
    ) -> _Child:  # fmt: skip
        """Register a process to start and supervise (used by the demo too).

        Health is ``check()`` if given, else GET ``health_url``, else a TCP connect to ``address``.
        """
        comp = ComponentState(
            name=name, kind=kind, address=address, log=str(self.logs / f"{name}.log"),
            health_url=health_url,
        )  # fmt: skip
        child = _Child(comp, argv, env, check)
        self.children.append(child)
        self.state.components.append(comp)
        return child

    def _start(self, child: _Child) -> None:
        # forked from the main thread only: the parent-death signal fires when the forking
        # thread ends, and the main thread lives as long as the supervisor
        proc = spawn(child.argv, Path(child.state.log), env=child.env, die_with_parent=True)
        child.pid = proc.pid
        child.state.pid = proc.pid
        child.state.argv = child.argv
        child.state.started = process_start(proc.pid)
        child.state.status = "starting"
        self.state.save()

    def _healthy(self, child: _Child) -> bool:
        if child.check is not None:
            return child.check()
        if child.state.health_url:
            return http_ok(child.state.health_url)
        host, _, port = child.state.address.rpartition(":")
        return port_open(host, int(port))

    def _wait_healthy(self, children: list[_Child]) -> None:
        started = time.monotonic()
        pending = list(children)
        while pending:
            if self.stop_event.is_set():
                raise StackError("interrupted while starting")
            for child in list(pending):
                if child.pid is not None and not pid_alive(child.pid):
                    self._fail(child, "exited during start-up")
                if self._healthy(child):
                    child.state.status = "up"
                    self.state.save()
                    self.progress(child.state, time.monotonic() - started)
                    pending.remove(child)
            if time.monotonic() - started > self.config.health_timeout:
                self._fail(pending[0], f"not healthy after {self.config.health_timeout:.0f} s")
            time.sleep(0.1)

    def _fail(self, child: _Child, why: str) -> None:
        child.state.status = "failed"
        child.state.detail = why
        self.state.status = "failed"
        self.state.detail = f"{child.state.name}: {why}; see {child.state.log}"
        self.state.save()
        self.progress(child.state, 0.0)
        raise StackError(self.state.detail, component=child.state.name)

    def start_all(self) -> None:
        """Start servers one by one, create topics, then every service at once."""
        cfg = self.config
        self._reset_kafka_bound_state()
        cfg.ensure_keyring()
        self.state.env = cfg.service_env()
        self.state.save()
        base_env = {**os.environ, **cfg.service_env()}
        for cmd in self._server_commands():
            child = self.add_child(cmd.name, "server", cmd.argv, cmd.address, cmd.health_url)
            self._start(child)
            self._wait_healthy([child])
        self._ensure_topics()
        services = []
        for spec in cfg.services():
            port = cfg.service_port(spec)
            env = {**base_env, "KEMI_HTTP_PORT": str(port)}
            child = self.add_child(
                spec.name, "service", [sys.executable, "-m", spec.module],
                f"{cfg.host}:{port}", f"http://{cfg.host}:{port}/healthz", env,
            )  # fmt: skip
            services.append(child)
        for child in services:
            self._start(child)
        self._wait_healthy(services)
        self._watch_itself()
        for hook in self.extra_ready:
            hook(self)
        self.state.status = "ready"
        self.state.save()

    def _watch_itself(self) -> None:
        """Register the services' own /metrics as scrape targets (see ``self_targets``)."""
        cfg = self.config
        wanted = self_targets(cfg.host, ((s, cfg.service_port(s)) for s in cfg.services()))
        with Registry(cfg.etcd, cfg.prefix) as registry:
            written, removed = sync_self_targets(registry, wanted)
        log.info("self targets: %d written, %d removed", written, removed)

    def _reset_kafka_bound_state(self) -> None:
        """Drop what services saved against the previous broker's offsets.

        The local broker keeps topics in memory only, so every ``up`` starts with empty
        topics. Saved offsets and the state that goes with them (calculator tables,
        evaluator checkpoints, notifier positions) would point past the new topics' ends.
        Production brokers keep their topics, and services keep their state there.
        """
        services = self.config.services_dir
        if services.exists():
            shutil.rmtree(services)
            log.info("local broker starts empty: reset service state in %s", services)

    def _ensure_topics(self) -> None:
        cfg = self.config
        ensure_topics(load_settings().model_copy(
            update={"kafka_bootstrap": cfg.kafka, "sample_partitions": cfg.partitions}
        ))  # fmt: skip

    def _broker_back(self) -> None:
        """The broker restarted, empty (memory storage): its topics are made again at
        once, before a producer's first send has the broker make one of its own kind."""
        try:
            self._ensure_topics()
        except KemiError as exc:
            log.warning("broker restarted: topics not made again (%s)", exc)
        else:
            log.info("broker restarted empty: topics made again")

    def start_extra(self, children: list[_Child]) -> None:
        """Start and wait for processes added after :meth:`start_all` (e.g. the demo's)."""
        for child in children:
            self._start(child)
        self._wait_healthy(children)

    def supervise(self) -> None:
        """Restart crashed processes (with backoff) until stopped."""
        while not self.stop_event.wait(0.5):
            now = time.monotonic()
            for child in self.children:
                if child.pid is None or pid_alive(child.pid):
                    if child.state.status == "restarting" and child.pid and self._healthy(child):
                        child.state.status = "up"
                        child.backoff = 1.0
                        self.state.save()
                        if child.state.name == "broker":
                            self._broker_back()
                    continue
                if child.state.status != "restarting":
                    child.state.status = "restarting"
                    child.state.detail = f"exited; restarting in {child.backoff:.0f} s"
                    child.next_restart = now + child.backoff
                    child.backoff = min(child.backoff * 2, 30.0)
                    self.state.save()
                elif now >= child.next_restart:
                    child.state.restarts += 1
                    self._start(child)
                    child.state.status = "restarting"

    def stop_all(self) -> None:
        """Stop everything, demo and services first, servers last, in bounded time."""
        self.state.status = "stopping"
        self.state.save()
        stop_in_order([c.state for c in self.children if c.pid is not None])
        for child in self.children:
            if child.pid is not None:
                child.state.status = "stopped"
                child.pid = None
        self.state.status = "stopped"
        self.state.save()

    def run(self, on_ready: Callable[[], None] | None = None) -> None:
        """Start, supervise until SIGINT, SIGTERM or SIGHUP, then stop everything.

        SIGHUP is what a closed terminal sends: the stack goes with it, as with Ctrl-C.
        """

        def _stop(signum: int, frame: object) -> None:
            self.stop_event.set()

        for sig in STOP_SIGNALS:
            signal.signal(sig, _stop)
        self.check()
        try:
            self.start_all()
            if on_ready:
                on_ready()
            self.supervise()
        finally:
            self.stop_all()


STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)

#: seconds a service gets to stop before SIGKILL (its KEMI_STOP_TIMEOUT on this stack)
SERVICE_GRACE = 8.0
# seconds each tier gets between SIGTERM and SIGKILL; the stop is bounded by their sum + 15
STOP_TIERS = (("demo", 5.0), ("service", SERVICE_GRACE), ("server", 5.0))


def stop_in_order(components: list[ComponentState]) -> list[ComponentState]:
    """Stop components tier by tier (demo, services, servers), each tier at once.

    Each tier gets SIGTERM, then SIGKILL after its grace; returns what is still alive.
    """
    left: list[ComponentState] = []
    kinds = {kind for kind, _ in STOP_TIERS}
    for kind, grace in STOP_TIERS:
        tier = [
            c for c in components if (c.kind == kind or (kind == "demo" and c.kind not in kinds))
        ]
        pids = {c.pid: c for c in tier if c.pid is not None}
        stuck = stop_pids(list(pids), timeout=grace)
        left += [pids[p] for p in stuck]
    return left


def describe(spec: ServiceSpec) -> str:
    return f"{spec.name} ({SERVICES[spec.name].description})"
