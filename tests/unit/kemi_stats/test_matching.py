from __future__ import annotations

from alerting.silences import SilenceSet
from kemi_stats.matching import Selector
from kemi_stats.registry.models import Silence, parse_matcher


def sel(*ms: str, prefix: str = "") -> Selector:
    return Selector.build([parse_matcher(m) for m in ms], prefix)


def test_matchers_are_anchored_and_missing_labels_are_empty() -> None:
    labels = {"resource": "net:core-sw-3", "site": "pangyo"}
    assert sel("resource=~'net:.*'").matches("net:core-sw-3", labels)
    assert not sel("resource=~net").matches("net:core-sw-3", labels)
    assert sel("site!=seoul", "rack!=r1").matches("x", labels)
    assert not sel("rack=r1").matches("x", labels)
    assert sel("rack=").matches("x", labels)
    assert not sel(prefix="host:").matches("net:core-sw-3", labels)


def test_silence_active_window() -> None:
    s = SilenceSet()
    s.update(
        {
            "m": Silence.model_validate(
                {"match": ["resource=host:web-01"], "starts_at": 100, "ends_at": 200}
            )
        }
    )
    assert s.covering({"resource": "host:web-01"}, 150) == "m"
    assert not s.covers({"resource": "host:web-01"}, 250)
    assert not s.covers({"resource": "host:web-02"}, 150)
