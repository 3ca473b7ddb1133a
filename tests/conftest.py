"""Session-wide fixtures: real servers on free loopback ports, stopped by pid at the end."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from kemi_stats.keyring import Keyring
from kemi_stats.registry.store import Registry
from kemi_stats.settings import Settings
from kemi_stats.topics import ALL_TOPICS, TopicSpec, ensure_topics
from tests.servers import RunningServer, start_broker, start_etcd, start_victoria


def pytest_configure(config: pytest.Config) -> None:
    """One keyring for the session, as a deployment has: every CLI and service process the
    tests start finds it through KEMI_SECRETS_KEYRING_FILE (inherited environment)."""
    if os.environ.get("KEMI_SECRETS_KEYRING_FILE"):
        return
    directory = tempfile.mkdtemp(prefix="kemi-keyring-")
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    path = Path(directory) / "keyring.json"
    Keyring.generate("tests").save(path)
    os.environ["KEMI_SECRETS_KEYRING_FILE"] = str(path)


def session_keyring() -> Keyring:
    return Keyring.load(Path(os.environ["KEMI_SECRETS_KEYRING_FILE"]))


@pytest.fixture(scope="session")
def servers_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("servers")


@pytest.fixture(scope="session")
def kafka(servers_dir: Path) -> Iterator[RunningServer]:
    server = start_broker(servers_dir)
    ensure_topics(server.address)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def etcd(servers_dir: Path) -> Iterator[RunningServer]:
    server = start_etcd(servers_dir)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def victoria(servers_dir: Path) -> Iterator[RunningServer]:
    server = start_victoria(servers_dir)
    yield server
    server.stop()


@pytest.fixture
def etcd_prefix() -> str:
    """A registry prefix of this test's own, so tests never see each other's entries."""
    return f"/kemi-test-{uuid.uuid4().hex[:8]}/"


@pytest.fixture
def registry(etcd: RunningServer, etcd_prefix: str) -> Iterator[Registry]:
    reg = Registry(etcd.address, etcd_prefix, keyring=session_keyring())
    yield reg
    reg.close()


@pytest.fixture
def settings(
    kafka: RunningServer, etcd: RunningServer, etcd_prefix: str, tmp_path: Path
) -> Settings:
    return Settings(
        kafka_bootstrap=kafka.address,
        etcd_endpoint=etcd.address,
        etcd_prefix=etcd_prefix,
        data_dir=tmp_path,
        kafka_session_timeout_ms=6000,
    )


@pytest.fixture
def fresh_topic(kafka: RunningServer) -> str:
    """A topic of this test's own (explicitly created: the broker would make 4 partitions)."""
    name = f"test.{uuid.uuid4().hex[:10]}"
    ensure_topics(kafka.address, (TopicSpec(name, 3),))
    return name


__all__ = ["ALL_TOPICS"]
