"""The Faust application of the calculator, and nothing else (agents, tables and topics
live in their own modules and register on this app when imported).

Tables use Faust's RocksDB store through ``rocksdict`` under
``<data_dir>/calculator``, so counter state and open windows survive a restart even
where changelog recovery cannot be trusted (the local broker's end offsets, docs/local-stack.md).
"""

from __future__ import annotations

import faust

from calculator.settings import PORT, CalculatorSettings
from calculator.transport import CalculatorApp
from kemi_stats.codec import KAFKA_MAX_REQUEST_BYTES
from kemi_stats.kafka_security import faust_options
from kemi_stats.settings import Settings, load_settings

__all__ = ["app", "calc_settings", "create_app", "settings"]


def create_app(settings: Settings, calc: CalculatorSettings) -> faust.App:
    """The calculator's Faust app for these settings (TLS/SASL in its broker credentials)."""
    port = settings.http_port if settings.http_port is not None else PORT
    app = CalculatorApp(
        calc.app_id,
        **faust_options(settings),
        store="rocksdb://",
        datadir=str(settings.data_dir / "calculator"),
        topic_partitions=calc.table_partitions(settings),
        # the tables' changelog topics Faust creates keep as many copies as ours
        topic_replication_factor=settings.kafka_replication_factor,
        autodiscover=False,
        web_enabled=True,
        web_bind=settings.http_host,
        web_host=settings.http_host,
        web_port=port,
        broker_session_timeout=settings.kafka_session_timeout_ms / 1000.0,
        broker_heartbeat_interval=max(0.5, settings.kafka_session_timeout_ms / 4000.0),
        broker_commit_interval=calc.commit_interval,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        # a raw record of MAX_RECORD_BYTES passes on whole (Faust's default is 1,000,000)
        producer_max_request_size=KAFKA_MAX_REQUEST_BYTES,
        recovery_consistency_check=calc.recovery_consistency_check,
        table_standby_replicas=0,
        logging_config=None,
    )
    app.fetch_max_wait_ms = calc.fetch_max_wait_ms
    app.fetch_interval_ms = calc.fetch_interval_ms
    return app


settings: Settings = load_settings()
calc_settings: CalculatorSettings = CalculatorSettings()
app: faust.App = create_app(settings, calc_settings)
