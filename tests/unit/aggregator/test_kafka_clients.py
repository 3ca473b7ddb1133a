"""The aggregator talks to Kafka through librdkafka alone: producer, probe and topic admin."""

from __future__ import annotations

import subprocess
import sys


def test_the_aggregator_loads_one_kafka_client_library() -> None:
    # aiokafka would add 60 modules and 2.6 MiB idle to each aggregator process
    code = (
        "import sys, aggregator.service, aggregator.delivery;"
        "print('aiokafka' in sys.modules, 'confluent_kafka' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True"]
