"""The aggregator over HTTPS, with its health and metrics pages on a listener of their own.

One aggregator (module scope) serves pushes over HTTPS with a throwaway CA's
certificate and ``/metrics``, ``/healthz``, ``/livez``, ``/readyz`` on a plain-HTTP
admin port; a bad TLS setting is a one-line error and exit status 1.
"""

from __future__ import annotations

import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import orjson
import pytest

from kemi_stats.stack.servers import free_port
from tests.integration.test_aggregator_push import Aggregator, running_aggregator
from tests.servers import RunningServer, service_env
from tests.tls import ThrowawayCA

pytestmark = pytest.mark.integration

ADMIN_PAGES = ("/metrics", "/healthz", "/livez", "/readyz")


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> ThrowawayCA:
    return ThrowawayCA(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="module")
def admin_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def tls_aggregator(
    kafka: RunningServer,
    etcd: RunningServer,
    ca: ThrowawayCA,
    admin_port: int,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Aggregator]:
    cert, key = ca.issue("aggregator")
    trusting = ssl.create_default_context(cafile=str(ca.cert))
    with running_aggregator(
        kafka,
        etcd,
        tmp_path_factory.mktemp("aggregator-tls"),
        client_ssl=trusting,
        admin_port=admin_port,
        aggregator_tls_cert_file=str(cert),
        aggregator_tls_key_file=str(key),
    ) as agg:
        yield agg


async def _get(url: str, ssl_context: ssl.SSLContext | bool = True) -> tuple[int, bytes]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(url, ssl=ssl_context, timeout=aiohttp.ClientTimeout(total=10)) as resp,
    ):
        return resp.status, await resp.read()


async def test_push_over_https_trusting_the_ca(tls_aggregator: Aggregator) -> None:
    assert tls_aggregator.url.startswith("https://")
    body = orjson.dumps({"resource_id": "host:tls-push", "metrics": {"up": 1}})
    status, _, text = await tls_aggregator.post("/api/v1/push", body)
    assert status == 204, text
    status, text = await _get(
        tls_aggregator.url + "/openapi.json", tls_aggregator.client_ssl or True
    )
    assert status == 200, text


async def test_plain_http_to_the_https_port_fails(tls_aggregator: Aggregator) -> None:
    plain = f"http://127.0.0.1:{tls_aggregator.proc.port}/openapi.json"
    with pytest.raises(aiohttp.ClientError):
        await _get(plain)


async def test_a_client_not_trusting_the_ca_fails_verification(
    tls_aggregator: Aggregator,
) -> None:
    system_cas = ssl.create_default_context()
    with pytest.raises(aiohttp.ClientConnectorCertificateError):
        await _get(tls_aggregator.url + "/openapi.json", system_cas)


async def test_admin_pages_on_the_admin_port_only(
    tls_aggregator: Aggregator, admin_port: int
) -> None:
    admin = f"http://127.0.0.1:{admin_port}"
    status, text = await _get(admin + "/metrics")
    assert status == 200
    assert b"kemi_aggregator_" in text
    for page in ("/healthz", "/livez", "/readyz"):
        status, text = await _get(admin + page)
        assert status == 200, (page, text)
    for page in ADMIN_PAGES:
        status, _ = await _get(tls_aggregator.url + page, tls_aggregator.client_ssl or True)
        assert status == 404, page


def _run_aggregator(tmp_path: Path, **settings: str) -> subprocess.CompletedProcess[str]:
    env = service_env(http_port=str(free_port()), **settings)
    return subprocess.run(
        [sys.executable, "-m", "aggregator"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_missing_key_file_exits_1_naming_it(tmp_path: Path, ca: ThrowawayCA) -> None:
    cert, _ = ca.issue("aggregator-missing-key")
    missing = tmp_path / "nowhere.key"
    done = _run_aggregator(
        tmp_path, aggregator_tls_cert_file=str(cert), aggregator_tls_key_file=str(missing)
    )
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "KEMI_AGGREGATOR_TLS_KEY_FILE" in lines[0]
    assert str(missing) in lines[0]


def test_a_certificate_without_a_key_exits_1_naming_both(tmp_path: Path, ca: ThrowawayCA) -> None:
    cert, _ = ca.issue("aggregator-no-key")
    done = _run_aggregator(tmp_path, aggregator_tls_cert_file=str(cert))
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "KEMI_AGGREGATOR_TLS_CERT_FILE" in lines[0]
    assert "KEMI_AGGREGATOR_TLS_KEY_FILE" in lines[0]
