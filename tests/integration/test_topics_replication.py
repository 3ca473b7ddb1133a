"""Topic replication against the real broker: created as asked, under-replicated topics refused.

The session broker's standard topics were created with replication factor 1 (the
default); a service or ``kemi-stats topics ensure`` told to require 2 refuses them with
one line naming the topic, its replication and the minimum.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import uuid

import pytest

from kemi_stats.errors import TopicReplicationError
from kemi_stats.settings import Settings, load_settings
from kemi_stats.stack.servers import free_port
from kemi_stats.topic_admin_rdkafka import RdTopicAdmin
from kemi_stats.topics import Admin, Replication, TopicSpec, ensure_topics, list_topics
from tests.servers import RunningServer, service_env

pytestmark = pytest.mark.integration

REFUSAL = re.compile(
    r"topic (kemi\.\S+): replication factor 1 is below the required 2 "
    r"\(KEMI_KAFKA_REPLICATION_FACTOR\)"
)


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], env=env, capture_output=True, text=True, timeout=120
    )


def _last_line(text: str) -> str:
    return text.strip().splitlines()[-1]


def _admin(via: str, bootstrap: str) -> Admin | None:
    """The admin client ``via`` names: None for aiokafka's (the default)."""
    if via == "aiokafka":
        return None
    return RdTopicAdmin(load_settings().model_copy(update={"kafka_bootstrap": bootstrap}))


@pytest.mark.parametrize("via", ["aiokafka", "librdkafka"])
def test_ensure_refuses_a_topic_with_fewer_replicas_than_required(
    kafka: RunningServer, via: str
) -> None:
    name = f"test.{uuid.uuid4().hex[:10]}"
    spec = (TopicSpec(name, 3),)
    admin = _admin(via, kafka.address)
    assert ensure_topics(kafka.address, spec, Replication(1, 1), admin) == [name]
    assert ensure_topics(kafka.address, spec, Replication(1, 1), admin) == []
    assert name in list_topics(kafka.address)
    settings = load_settings().model_copy(update={"kafka_bootstrap": kafka.address})
    replicas = asyncio.run(RdTopicAdmin(settings).replicas([name]))
    assert len(replicas[name]) == 3  # the partitions asked for
    with pytest.raises(TopicReplicationError) as refused:
        ensure_topics(kafka.address, spec, Replication(2, 1), admin)
    message = str(refused.value)
    assert "\n" not in message
    assert message.startswith(
        f"topic {name}: replication factor 1 is below the required 2 "
        "(KEMI_KAFKA_REPLICATION_FACTOR)"
    ), message


@pytest.mark.parametrize("service", ["forwarder", "aggregator"])
def test_a_service_refuses_to_run_on_under_replicated_topics(
    settings: Settings, service: str
) -> None:
    env = service_env(
        kafka_bootstrap=settings.kafka_bootstrap,
        etcd_endpoint=settings.etcd_endpoint,
        etcd_prefix=f"/kemi-repl-{uuid.uuid4().hex[:8]}/",
        kafka_replication_factor="2",
        kafka_min_insync_replicas="2",
        http_port=str(free_port()),
        forwarder_group_id=f"fw-{uuid.uuid4().hex[:8]}",
    )
    done = _run(["-m", service], env)
    assert done.returncode == 1, done.stderr
    line = _last_line(done.stderr)
    assert line.startswith(f"{service}: ") and REFUSAL.search(line), done.stderr


def test_cli_ensure_refuses_under_replicated_topics(settings: Settings) -> None:
    env = service_env(kafka_bootstrap=settings.kafka_bootstrap)
    done = _run(["-m", "kemi_stats.cli", "topics", "ensure", "--replication-factor", "2"], env)
    assert done.returncode == 1, done.stderr
    line = _last_line(done.stderr)
    assert line.startswith("error: ") and REFUSAL.search(line), done.stderr


def test_cli_ensure_at_the_existing_replication_succeeds(settings: Settings) -> None:
    env = service_env(kafka_bootstrap=settings.kafka_bootstrap)
    done = _run(["-m", "kemi_stats.cli", "topics", "ensure", "--replication-factor", "1"], env)
    assert done.returncode == 0, done.stderr
    assert "kemi.metrics " in done.stdout and "exists (replication >= 1)" in done.stdout


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--replication-factor", "0"], "'--replication-factor': 0 is not in the range x>=1"),
        (["--min-insync-replicas", "0"], "'--min-insync-replicas': 0 is not in the range x>=1"),
        (
            ["--replication-factor", "1", "--min-insync-replicas", "2"],
            "--min-insync-replicas (or KEMI_KAFKA_MIN_INSYNC_REPLICAS) 2: expected at most the "
            "replication factor, 1",
        ),
    ],
)
def test_cli_ensure_refuses_a_bad_option_naming_it(
    settings: Settings, args: list[str], named: str
) -> None:
    env = service_env(kafka_bootstrap=settings.kafka_bootstrap)
    done = _run(["-m", "kemi_stats.cli", "topics", "ensure", *args], env)
    assert done.returncode != 0
    line = _last_line(done.stderr)
    assert line.startswith("error: ") and named in line, done.stderr


def test_librdkafka_reads_a_topics_min_insync_replicas(kafka: RunningServer) -> None:
    # aiokafka's DescribeConfigs is dropped by the local broker; librdkafka's is answered
    name = f"test.{uuid.uuid4().hex[:10]}"
    settings = load_settings().model_copy(update={"kafka_bootstrap": kafka.address})
    assert ensure_topics(kafka.address, (TopicSpec(name, 1),), Replication(1, 1)) == [name]
    admin = RdTopicAdmin(settings)
    assert asyncio.run(admin.min_insync([name])) == {name: "1"}
    replicas = asyncio.run(admin.replicas([name, "test.not-there"]))
    assert [len(partition) for partition in replicas[name]] == [1]  # one partition, one copy
    assert replicas["test.not-there"] == []  # reported without replicas: not checked
