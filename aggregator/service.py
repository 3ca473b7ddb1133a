"""The aggregator process: the push app, live tokens, Kafka delivery, served by the shared runtime.

aiohttp would gunzip request bodies itself, but it accepts a truncated gzip stream as
a shorter body; the aggregator must refuse those (a cut line can still parse, e.g.
``v=12`` cut to ``v=1``), so it serves raw bodies and gunzips them in
:mod:`aggregator.body`, where the end of the stream is checked.
"""

from __future__ import annotations

import logging
import ssl

from aggregator.app import PushHandler, build_app
from aggregator.auth import KINDS, TokenIndex
from aggregator.delivery import Delivery
from aggregator.processes import RATE_FILE, shared_dir, supervise, worker_index
from aggregator.ratelimit import RateLimiter, SharedBuckets
from aggregator.settings import AggregatorSettings
from kemi_stats.registry.live import LiveView
from kemi_stats.runtime import ServiceRuntime
from kemi_stats.server_tls import server_tls_context
from kemi_stats.settings import Settings, load_settings

__all__ = ["NAME", "PORT", "main", "tls_context"]

log = logging.getLogger(__name__)

NAME = "aggregator"
#: default HTTP port (/healthz, /metrics); KEMI_HTTP_PORT overrides it
PORT = 8080

_CERT_VAR = "KEMI_AGGREGATOR_TLS_CERT_FILE"
_KEY_VAR = "KEMI_AGGREGATOR_TLS_KEY_FILE"


def tls_context(config: AggregatorSettings) -> ssl.SSLContext | None:
    """The push listener's server context (TLS 1.2 or later), or None for plain HTTP."""
    return server_tls_context(
        config.tls_cert_file, config.tls_key_file, cert_var=_CERT_VAR, key_var=_KEY_VAR
    )


def main(settings: Settings | None = None) -> int:
    """Serve until SIGTERM/SIGINT; the body of ``python -m aggregator``."""
    settings = settings if settings is not None else load_settings()
    config = AggregatorSettings()
    context = tls_context(config)  # a ConfigError: one line, by kemi_stats.runtime.run_main
    worker = worker_index()
    if config.processes > 1 and worker is None:
        return supervise(settings, config.processes)
    delivery = Delivery(settings, config)
    shared = shared_dir()
    handler = PushHandler(config, TokenIndex(), delivery)
    if shared is not None:
        handler.limiter = RateLimiter(buckets=SharedBuckets(shared / RATE_FILE))
    runtime = ServiceRuntime(
        NAME,
        settings,
        PORT,
        build_app(handler),
        auto_decompress=False,
        ssl_context=context,
        admin_port=config.admin_port,
        worker=worker,
    )
    handler.health = runtime.health

    async def serve(runtime: ServiceRuntime) -> None:
        # unhealthy (and pushes 503) until the tokens are read, never "unknown token"
        runtime.add_check("registry", lambda: (False, "reading tokens from etcd"))
        view = await LiveView.open(settings, KINDS)
        try:
            handler.tokens = TokenIndex(view)
            handler.revision = lambda: view.revision
            runtime.add_check(
                "registry",
                lambda: (
                    view.connected,
                    f"{len(handler.tokens)} tokens at revision {view.revision}",
                ),
            )
            runtime.add_check("kafka", delivery.status)
            await delivery.start()
            log.info("aggregator: %d tokens; producing to %s", len(handler.tokens), config.topic)
            await delivery.serve()
        finally:
            handler.close()
            await delivery.stop()
            view.close()

    return runtime.run(serve)
