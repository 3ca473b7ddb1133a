"""Renamed standard topics are created like the standard ones; replication asked and checked."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError
from aiokafka.protocol.admin import CreateTopicsResponse_v1, DescribeConfigsResponse_v0

from kemi_stats import topics
from kemi_stats.errors import BrokerError, ConfigError, TopicReplicationError
from kemi_stats.settings import Settings
from kemi_stats.topic_admin import TopicAdmin
from kemi_stats.topics import (
    ALERTS,
    ALL_TOPICS,
    METRICS,
    METRICS_GROUPS,
    METRICS_RAW,
    POLL_JOBS,
    Replication,
    TopicSpec,
    ensure_topics,
    renamed_specs,
)

_STANDARD = {spec.name: spec for spec in ALL_TOPICS}


def test_renamed_specs_keep_partitions_and_configs() -> None:
    raw, alerts = renamed_specs({METRICS_RAW: "test.raw", ALERTS: "test.alerts"})
    assert (raw.name, alerts.name) == ("test.raw", "test.alerts")
    for spec, standard in ((raw, METRICS_RAW), (alerts, ALERTS)):
        like = _STANDARD[standard]
        assert (spec.partitions, spec.configs) == (like.partitions, like.configs)
        assert spec.configs is not like.configs


def test_renamed_specs_may_override_partitions() -> None:
    (spec,) = renamed_specs({METRICS: METRICS}, partitions=3)
    assert (spec.name, spec.partitions) == (METRICS, 3)
    assert spec.configs == _STANDARD[METRICS].configs


def test_an_unknown_standard_topic_is_named() -> None:
    with pytest.raises(ValueError, match="'kemi.nope' is not a standard topic"):
        renamed_specs({"kemi.nope": "x"})


class FakeAdmin:
    """The admin calls ensure_topics makes, answered from plain data."""

    bootstrap = "kafka:9092"

    def __init__(self, replicas: dict[str, list[list[int]]]) -> None:
        self.replicas_of = replicas
        #: (name, partitions, replication factor, configs) of each topic created
        self.created: list[tuple[str, int, int, dict[str, str]]] = []
        #: topic -> min.insync.replicas as the broker reports it
        self.min_insync_of: dict[str, str] = {}
        self.configs_readable = True

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def list_topics(self) -> list[str]:
        return list(self.replicas_of)

    async def create_topic(self, spec: TopicSpec, factor: int, configs: dict[str, str]) -> bool:
        self.created.append((spec.name, spec.partitions, factor, configs))
        return True

    async def replicas(self, names: list[str]) -> dict[str, list[list[int]]]:
        return {n: self.replicas_of[n] for n in names}

    async def min_insync(self, names: list[str]) -> dict[str, str]:
        if not self.configs_readable:
            raise topics.ConfigsUnreadable("kafka kafka:9092: socket disconnected")
        return {n: self.min_insync_of[n] for n in names if n in self.min_insync_of}


@pytest.fixture
def admin(monkeypatch: pytest.MonkeyPatch) -> FakeAdmin:
    fake = FakeAdmin({"three": [[1, 2, 3], [2, 3, 1]], "short": [[1, 2, 3], [4]], "silent": [[]]})
    monkeypatch.setattr(topics, "_admin", lambda bootstrap: fake)
    return fake


def test_missing_topics_are_created_with_the_replication_asked_for(admin: FakeAdmin) -> None:
    spec = TopicSpec("new", 6, configs={"retention.ms": "1000"})
    assert ensure_topics("kafka:9092", (spec,), Replication(3, 2)) == ["new"]
    assert admin.created == [("new", 6, 3, {"retention.ms": "1000", "min.insync.replicas": "2"})]


def test_an_existing_topic_counts_its_least_replicated_partition(admin: FakeAdmin) -> None:
    ensure_topics("kafka:9092", (TopicSpec("three", 1),), Replication(3, 2))
    with pytest.raises(TopicReplicationError, match=r"^topic short: replication factor 1 is below"):
        ensure_topics("kafka:9092", (TopicSpec("short", 1),), Replication(2, 1))


def test_one_broker_listed_three_times_is_one_copy(admin: FakeAdmin) -> None:
    admin.replicas_of["same"] = [[7, 7, 7]]
    with pytest.raises(TopicReplicationError, match="replication factor 1 is below the required 3"):
        ensure_topics("kafka:9092", (TopicSpec("same", 1),), Replication(3, 2))


def test_an_existing_topic_with_too_low_min_insync_replicas_is_refused(admin: FakeAdmin) -> None:
    admin.min_insync_of["three"] = "1"
    with pytest.raises(
        TopicReplicationError,
        match=r"^topic three: min.insync.replicas 1 is below the required 2 \(KEMI_KAFKA_MIN_",
    ):
        ensure_topics("kafka:9092", (TopicSpec("three", 1),), Replication(3, 2))
    admin.min_insync_of["three"] = "2"
    assert ensure_topics("kafka:9092", (TopicSpec("three", 1),), Replication(3, 2)) == []


def test_unreadable_topic_configs_are_not_refused(admin: FakeAdmin) -> None:
    admin.configs_readable = False
    assert ensure_topics("kafka:9092", (TopicSpec("three", 1),), Replication(3, 2)) == []


def test_a_broker_that_reports_no_replicas_is_not_refused(admin: FakeAdmin) -> None:
    assert ensure_topics("kafka:9092", (TopicSpec("silent", 1),), Replication(3, 2)) == []


def test_replication_defaults_to_the_settings(
    admin: FakeAdmin, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KEMI_KAFKA_REPLICATION_FACTOR", "3")
    monkeypatch.setenv("KEMI_KAFKA_MIN_INSYNC_REPLICAS", "2")
    ensure_topics("kafka:9092", (TopicSpec("new", 1),))
    [(_, _, factor, configs)] = admin.created
    assert (factor, configs["min.insync.replicas"]) == (3, "2")


@pytest.mark.parametrize(
    ("factor", "insync", "message"),
    [
        (0, 1, "replication factor 0: expected at least 1"),
        (2, 3, "min in-sync replicas 3: expected 1 to the replication factor"),
        (2, 0, "min in-sync replicas 0: expected 1 to the replication factor"),
    ],
)
def test_impossible_replication_is_refused(factor: int, insync: int, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Replication(factor, insync)


def test_settings_refuse_more_insync_replicas_than_replicas() -> None:
    with pytest.raises(ValueError, match="KEMI_KAFKA_MIN_INSYNC_REPLICAS=3: expected at most"):
        Settings.model_validate({"kafka_replication_factor": 2, "kafka_min_insync_replicas": 3})


class FakeClient:
    """aiokafka's admin client answering with the protocol's own response objects."""

    def __init__(self, create_errors: list[tuple[str, int, str | None]]) -> None:
        self.create_errors = create_errors

    async def create_topics(self, new: list[Any]) -> CreateTopicsResponse_v1:
        return CreateTopicsResponse_v1(topic_errors=self.create_errors)

    async def describe_configs(self, resources: list[Any]) -> list[DescribeConfigsResponse_v0]:
        entry = ("min.insync.replicas", "2", False, False, False)
        other = ("retention.ms", "1000", False, False, False)
        return [DescribeConfigsResponse_v0(throttle_time_ms=0, resources=[
            (0, None, 2, "a", [other, entry]), (0, None, 2, "b", [other]),
        ])]  # fmt: skip


def _admin_with(client: FakeClient) -> TopicAdmin:
    admin = TopicAdmin(Settings())
    admin._client = client  # type: ignore[assignment]
    return admin


async def test_the_brokers_answers_are_read_from_aiokafka_responses() -> None:
    spec = TopicSpec("t", 1)
    assert await _admin_with(FakeClient([("t", 0, None)])).create_topic(spec, 1, {})
    assert not await _admin_with(FakeClient([("t", 36, "exists")])).create_topic(spec, 1, {})
    with pytest.raises(BrokerError, match=r"create topic t: Replication factor: 3 larger than"):
        await _admin_with(
            FakeClient([("t", 38, "Replication factor: 3 larger than available brokers: 1.")])
        ).create_topic(spec, 3, {})
    assert await _admin_with(FakeClient([])).min_insync(["a", "b"]) == {"a": "2"}


async def test_a_broker_that_drops_a_configs_request_leaves_them_unread() -> None:
    class Dropping(FakeClient):
        async def describe_configs(self, resources: list[Any]) -> list[DescribeConfigsResponse_v0]:
            raise KafkaConnectionError("socket disconnected")

    with pytest.raises(topics.ConfigsUnreadable, match="socket disconnected"):
        await _admin_with(Dropping([])).min_insync(["a"])


def test_importing_the_topic_table_loads_no_kafka_client() -> None:
    # the CLI imports it for every command; aiokafka comes with the first topic call
    code = (
        "import sys, kemi_stats.topics, kemi_stats.kafka_security; print('aiokafka' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_sample_topics_get_the_settings_partitions_wherever_they_are_created(
    admin: FakeAdmin,
) -> None:
    # the local stack's 4: a service that finds a sample topic missing (its broker lost
    # them) makes it as the stack did, co-partitioned with the calculator's tables
    settings = Settings(kafka_bootstrap="kafka:9092", sample_partitions=4)
    renamed = renamed_specs({METRICS_RAW: "test.raw", POLL_JOBS: "test.jobs"})
    fixed = renamed_specs({METRICS: "test.derived"}, partitions=6)
    ensure_topics(settings, (*renamed, *fixed), Replication(1, 1))
    assert {name: n for name, n, _, _ in admin.created} == {
        "test.raw": 4, "test.jobs": 12, "test.derived": 6,
    }  # fmt: skip
    ensure_topics(Settings(kafka_bootstrap="kafka:9092"), ALL_TOPICS, Replication(1, 1))
    assert {name: n for name, n, _, _ in admin.created[3:]} == {
        spec.name: (12 if spec.name in (METRICS_RAW, METRICS, METRICS_GROUPS) else spec.partitions)
        for spec in ALL_TOPICS
    }
