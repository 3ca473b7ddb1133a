"""The calculator's state tables (RocksDB locally, changelog topics in Kafka).

``resources``: resource id -> :class:`~calculator.state.ResourceState` bytes (last
counter readings, sysUpTime, open windows), co-partitioned with the input topic.
``groups``: group key -> :class:`~calculator.state.GroupState` bytes, co-partitioned
with the groups topic.
"""

from __future__ import annotations

from calculator.app import app

__all__ = ["group_table", "resource_table"]

resource_table = app.Table(
    "resources",
    key_type=bytes,
    value_type=bytes,
    help="per-resource counter readings and open windows",
)
group_table = app.Table(
    "groups",
    key_type=bytes,
    value_type=bytes,
    help="open group-aggregate buckets per group key",
)
