"""The console process: the registry view, the background readers and the web app, in the runtime.

Read-only for everyone; silences need a session signed in with a ``console`` token.
It never reads the keyring: it shows no secret and follows no kind that holds one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from console.alerts_source import AlertsSource
from console.app import build_app
from console.fleet import FleetStatus
from console.platform_status import PlatformStatus
from console.sessions import SessionStore
from console.settings import ConsoleSettings, load_console_settings
from console.state import KINDS, ConsoleState
from kemi_stats.registry.etcd import EtcdConfig
from kemi_stats.registry.live import LiveView
from kemi_stats.registry.store import Registry
from kemi_stats.runtime import ServiceRuntime
from kemi_stats.server_tls import server_tls_context
from kemi_stats.settings import Settings, load_settings
from kemi_stats.topics import list_topics_async
from kemi_stats.tsdb import make_query_client

__all__ = ["NAME", "PORT", "main"]

log = logging.getLogger(__name__)

NAME = "console"
#: default HTTP port; KEMI_HTTP_PORT overrides it
PORT = 9107


async def _topics(state: ConsoleState) -> None:
    """The broker's topics, read again every refresh interval."""
    while True:
        try:
            state.topics = await list_topics_async(state.settings)
        except Exception as exc:  # aiokafka raises its own errors, not only KemiError
            state.topics = f"cannot list topics: {exc}"
        await asyncio.sleep(state.config.refresh_interval * 4)


def build_state(settings: Settings, config: ConsoleSettings, view: LiveView) -> ConsoleState:
    tsdb = make_query_client(settings, timeout=config.read_timeout)
    return ConsoleState(
        settings=settings, config=config, view=view,
        alerts=AlertsSource(config.evaluator_url, config.alerts_max_age, config.read_timeout),
        fleet=FleetStatus(tsdb, config.refresh_interval),
        platform=PlatformStatus(config.service_urls(), config.refresh_interval, config.read_timeout),
        tsdb=tsdb, sessions=SessionStore(config.session_idle_timeout, config.max_sessions, config.session_max_age),
        topics="not read yet",
    )  # fmt: skip


def main() -> int:
    """Entry point of ``python -m console``."""
    settings = load_settings()
    config = load_console_settings()
    tls = server_tls_context(
        config.tls_cert_file, config.tls_key_file,
        cert_var="KEMI_CONSOLE_TLS_CERT_FILE", key_var="KEMI_CONSOLE_TLS_KEY_FILE",
    )  # fmt: skip
    registry = Registry(EtcdConfig.from_settings(settings), settings.etcd_prefix)
    view = LiveView(registry, KINDS).start()
    state = build_state(settings, config, view)

    async def run(runtime: ServiceRuntime) -> None:
        runtime.add_check("etcd", lambda: (view.connected, f"revision {view.revision}"))
        tasks = [
            asyncio.create_task(state.fleet.run(), name="fleet"),
            asyncio.create_task(state.platform.run(), name="platform"),
            asyncio.create_task(_topics(state), name="topics"),
        ]
        try:
            await asyncio.Event().wait()
        finally:
            for task in tasks:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*tasks)
            await state.alerts.close()
            await state.platform.close()
            view.close()

    app = build_app(state, secure=tls is not None)
    return ServiceRuntime(NAME, settings, PORT, app, ssl_context=tls).run(run)
