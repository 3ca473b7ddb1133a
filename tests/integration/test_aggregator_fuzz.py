"""schemathesis fuzzes a real aggregator process from its own OpenAPI document.

Acceptance: no 5xx, and every response conforms to the document (status codes,
content types, headers, bodies). The aggregator must still be healthy afterwards.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from kemi_stats.registry.models import Token
from kemi_stats.registry.store import Registry
from kemi_stats.stack.servers import http_ok
from kemi_stats.topics import TopicSpec, ensure_topics
from tests.servers import RunningServer, ServiceProcess, service_env

pytestmark = pytest.mark.integration

SECRET = "fuzz-" + uuid.uuid4().hex
REPO = Path(__file__).resolve().parents[2]
CHECKS = (
    "not_a_server_error,status_code_conformance,content_type_conformance,"
    "response_headers_conformance,response_schema_conformance"
)


@pytest.fixture
def aggregator(
    kafka: RunningServer, etcd: RunningServer, tmp_path: Path
) -> Iterator[ServiceProcess]:
    prefix = f"/kemi-agg-fuzz-{uuid.uuid4().hex[:8]}/"
    topic = f"test.agg.fuzz.{uuid.uuid4().hex[:8]}"
    ensure_topics(kafka.address, (TopicSpec(topic, 3),))
    registry = Registry(etcd.address, prefix)
    registry.create("token", "fuzz", Token(hash=hashlib.sha256(SECRET.encode()).hexdigest()))
    env = service_env(
        kafka_bootstrap=kafka.address,
        etcd_endpoint=etcd.address,
        etcd_prefix=prefix,
        aggregator_topic=topic,
        aggregator_max_body_bytes=str(1 << 20),
    )
    proc = ServiceProcess("aggregator", env, tmp_path / "aggregator.log").start()
    try:
        yield proc
    finally:
        proc.stop()
        registry.close()


def test_schemathesis_finds_no_5xx_and_no_schema_violation(
    aggregator: ServiceProcess, tmp_path: Path
) -> None:
    beside = Path(sys.executable).parent / "schemathesis"
    exe = str(beside) if beside.exists() else shutil.which("schemathesis") or shutil.which("st")
    argv = [exe] if exe else [sys.executable, "-m", "schemathesis.cli"]
    result = subprocess.run(
        [*argv, "run", aggregator.url + "/openapi.json",
         "--header", f"Authorization: Bearer {SECRET}",
         "--checks", CHECKS,
         "--max-examples", "60", "--seed", "20240501", "--no-shrink",
         "--phases", "examples,coverage,fuzzing",
         "--request-timeout", "20", "--no-color"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
        env={**os.environ, "SCHEMATHESIS_HOOKS": "tests.integration.schemathesis_hooks",
             "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    report = result.stdout[-6000:] + result.stderr[-2000:]
    assert result.returncode == 0, f"{report}\n--- aggregator log ---\n{aggregator.log_tail()}"
    assert "passed" in result.stdout, report
    assert http_ok(aggregator.url + "/healthz")
