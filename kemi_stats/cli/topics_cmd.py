"""``kemi-stats topics ensure|list`` and ``kemi-stats tail TOPIC``."""

from __future__ import annotations

import click
import orjson
import yaml
from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

from kemi_stats.cli.context import CliContext, fail, pass_ctx
from kemi_stats.cli.output import output_option, print_records
from kemi_stats.codec import record_to_json
from kemi_stats.errors import CodecError, ConfigError
from kemi_stats.kafka_security import connect_error, kafka_python_options
from kemi_stats.topics import ALL_TOPICS, Replication, ensure_topics, list_topics, resolved

__all__ = ["register"]


@click.group()
def topics() -> None:
    """Kafka topics of the platform."""


@topics.command("ensure")
@click.option(
    "--replication-factor", type=click.IntRange(min=1), default=None,
    help="Replicas of each topic; existing topics with fewer are refused "
    "[default: KEMI_KAFKA_REPLICATION_FACTOR, 1].",
)  # fmt: skip
@click.option(
    "--min-insync-replicas", type=click.IntRange(min=1), default=None,
    help="Replicas that must hold a record before it is acked (topic config min.insync.replicas) "
    "[default: KEMI_KAFKA_MIN_INSYNC_REPLICAS, 1].",
)  # fmt: skip
@pass_ctx
def topics_ensure(
    obj: CliContext, replication_factor: int | None, min_insync_replicas: int | None
) -> None:
    """Create every kemi topic that is missing (idempotent); refuse under-replicated ones."""
    settings = obj.settings
    factor = settings.kafka_replication_factor if replication_factor is None else replication_factor
    insync = (
        settings.kafka_min_insync_replicas if min_insync_replicas is None else min_insync_replicas
    )
    try:
        replication = Replication(factor, insync)
    except ConfigError:
        fail(
            f"--min-insync-replicas (or KEMI_KAFKA_MIN_INSYNC_REPLICAS) {insync}: expected at "
            f"most the replication factor, {factor}"
        )
    created = ensure_topics(settings, replication=replication)
    for spec in resolved(ALL_TOPICS, settings):
        state = "created" if spec.name in created else f"exists (replication >= {factor})"
        click.echo(f"{spec.name:<22} {spec.partitions:>3} partitions  {state}")
    if created:
        click.echo(f"created with replication factor {factor}, min.insync.replicas {insync}")


@topics.command("list")
@output_option()
@pass_ctx
def topics_list(obj: CliContext, output: str) -> None:
    """List the topics the broker knows."""
    print_records([{"topic": name} for name in list_topics(obj.settings)], ["topic"], output)


@click.command()
@click.argument("topic")
@click.option("--from-beginning", is_flag=True, help="Start at the oldest record, not the newest.")
@click.option("-n", "count", type=click.IntRange(min=1), help="Stop after N records.")
@click.option("--timeout", type=float, default=None, help="Stop after this many idle seconds.")
@click.option(
    "--output",
    "-o",
    type=click.Choice(["json", "yaml"]),
    default="json",
    help="json: one JSON line per record (default); yaml: one YAML document per record.",
)
@pass_ctx
def tail(
    obj: CliContext,
    topic: str,
    from_beginning: bool,
    count: int | None,
    timeout: float | None,
    output: str,
) -> None:
    """Print records of TOPIC as they arrive, decoded from the wire format."""
    bootstrap = obj.settings.kafka_bootstrap
    try:
        consumer = KafkaConsumer(
            bootstrap_servers=bootstrap, enable_auto_commit=False, client_id="kemi-tail",
            consumer_timeout_ms=int(timeout * 1000) if timeout else float("inf"),
            **kafka_python_options(obj.settings),
        )  # fmt: skip
    except KafkaError as exc:
        fail(connect_error(obj.settings, exc))
    try:
        parts = consumer.partitions_for_topic(topic)
        if not parts:
            fail(f"topic {topic!r} does not exist on {bootstrap}")
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        consumer.assign(tps)
        if from_beginning:
            consumer.seek_to_beginning(*tps)
        else:
            consumer.seek_to_end(*tps)
        for seen, record in enumerate(consumer, start=1):
            try:
                line = record_to_json(topic, record.value)
            except CodecError as exc:
                line = f'{{"error": "{exc}", "partition": {record.partition}, "offset": {record.offset}}}'
            if output == "yaml":
                line = (
                    "---\n"
                    + yaml.safe_dump(
                        orjson.loads(line), sort_keys=False, allow_unicode=True
                    ).rstrip()
                )
            click.echo(line)
            if count is not None and seen >= count:
                break
    finally:
        consumer.close()


def register(cli: click.Group) -> None:
    cli.add_command(topics)
    cli.add_command(tail)
