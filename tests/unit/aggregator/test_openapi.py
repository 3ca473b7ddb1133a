"""The OpenAPI document states the platform's name rules, not a copy of them."""

from __future__ import annotations

import re

from aggregator.openapi import openapi_document
from kemi_stats.names import is_label_name, is_metric_name, name_limits


def test_name_rules_come_from_the_core() -> None:
    schemas = openapi_document()["components"]["schemas"]
    limits = name_limits()
    resource_id = schemas["PushObject"]["properties"]["resource_id"]
    assert resource_id["maxLength"] == limits.resource_id_max_length
    assert schemas["MetricName"]["maxLength"] == limits.metric_max_length
    assert schemas["LabelName"]["maxLength"] == limits.label_max_length
    for name in ("cpu_user", "node:cpu.pct", "1x", "a-b", "site"):
        assert (re.search(schemas["MetricName"]["pattern"], name) is not None) == (
            is_metric_name(name)
        )
        assert (re.search(schemas["LabelName"]["pattern"], name) is not None) == (
            is_label_name(name)
        )
