"""The calculator's Kafka consumer waits at most its setting per fetch, not Faust's 1.5 s."""

from __future__ import annotations

from calculator.app import create_app
from calculator.settings import CalculatorSettings
from kemi_stats.settings import Settings


async def test_the_fetch_wait_is_the_settings_one() -> None:
    app = create_app(
        Settings(kafka_bootstrap="127.0.0.1:9"), CalculatorSettings(fetch_max_wait_ms=77)
    )
    thread = app.consumer._thread  # type: ignore[attr-defined]
    consumer = thread._create_worker_consumer(app.transport)
    try:
        assert consumer._fetch_max_wait_ms == 77
    finally:
        await consumer.stop()
    assert CalculatorSettings().fetch_max_wait_ms == 100
