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
from aggregator.settings import AggregatorSettings
from kemi_stats.errors import ConfigError
from kemi_stats.registry.live import LiveView
from kemi_stats.runtime import ServiceRuntime
from kemi_stats.settings import Settings, load_settings

__all__ = ["NAME", "PORT", "main", "tls_context"]

log = logging.getLogger(__name__)

NAME = "aggregator"
#: default HTTP port (/healthz, /metrics); KEMI_HTTP_PORT overrides it
PORT = 8080

_CERT_VAR = "KEMI_AGGREGATOR_TLS_CERT_FILE"
_KEY_VAR = "KEMI_AGGREGATOR_TLS_KEY_FILE"


def _readable(variable: str, path: str) -> None:
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise ConfigError(f"{variable}={path}: cannot read: {exc.strerror or exc}") from exc


def tls_context(config: AggregatorSettings) -> ssl.SSLContext | None:
    """The push listener's server context (TLS 1.2 or later), or None for plain HTTP.

    Raises :class:`ConfigError` (one line naming the variable) when only one of the
    certificate and key is set, a file cannot be read, or they are not a matching pair.
    """
    cert, key = config.tls_cert_file or None, config.tls_key_file or None
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        given, missing = (_CERT_VAR, _KEY_VAR) if key is None else (_KEY_VAR, _CERT_VAR)
        raise ConfigError(f"{given} is set but {missing} is not: HTTPS needs both (or neither)")
    _readable(_CERT_VAR, cert)
    _readable(_KEY_VAR, key)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        # password "": an encrypted key is an error, never a prompt on the terminal
        context.load_cert_chain(cert, key, password="")
    except ssl.SSLError as exc:
        raise ConfigError(
            f"{_CERT_VAR}={cert}, {_KEY_VAR}={key}: not a PEM certificate and its "
            f"unencrypted key: "
            f"{exc.reason or exc}"
        ) from exc
    return context


def main(settings: Settings | None = None) -> int:
    """Serve until SIGTERM/SIGINT; the body of ``python -m aggregator``."""
    settings = settings if settings is not None else load_settings()
    config = AggregatorSettings()
    context = tls_context(config)  # a ConfigError: one line, by kemi_stats.runtime.run_main
    delivery = Delivery(settings, config)
    handler = PushHandler(config, TokenIndex(), delivery)
    runtime = ServiceRuntime(
        NAME,
        settings,
        PORT,
        build_app(handler),
        auto_decompress=False,
        ssl_context=context,
        admin_port=config.admin_port,
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
