"""The platform's own services as scrape targets, following the ports of this run."""

from __future__ import annotations

from kemi_stats.catalogue import SERVICES
from kemi_stats.stack.self_targets import self_targets


def test_each_service_is_a_scrape_target_at_the_port_it_runs_on() -> None:
    targets = self_targets("127.0.0.1", [(SERVICES["poller"], 9112), (SERVICES["forwarder"], 9106)])
    assert sorted(targets) == ["kemi-self-forwarder", "kemi-self-poller"]
    poller = targets["kemi-self-poller"]
    assert poller.scrape_url == "http://127.0.0.1:9112/metrics" and poller.host == "127.0.0.1"
    assert poller.resource("kemi-self-poller") == "kemi:poller"
    assert poller.labels == {"platform": "kemi-stats", "component": "poller"}
    assert poller.credential is None and poller.profiles == []
