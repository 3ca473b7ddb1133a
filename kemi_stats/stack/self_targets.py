"""The platform watches itself: ``kemi-stats up`` registers its services as scrape targets.

Each service's ``/metrics`` becomes a target ``kemi-self-<service>`` (resource
``kemi:<service>``, label ``component``), written on every ``up`` so the URLs follow
the ports of this run; self targets of services this run does not start are removed.
They are marked by the label ``platform=kemi-stats``, so an operator's own targets are
never touched. The poll workers scrape them like any other target, so the platform's
throughput, lag and errors are stored next to the data (dashboard ``platform-health``).

A pipeline cannot report its own outage through itself: in production, an outside
Prometheus should scrape the services as well (README, "Operating it").
"""

from __future__ import annotations

from collections.abc import Iterable

from kemi_stats.catalogue import ServiceSpec
from kemi_stats.registry.models import Target
from kemi_stats.registry.store import Registry

__all__ = ["SELF_LABEL", "self_targets", "sync_self_targets"]

#: the label marking the targets this module manages
SELF_LABEL = ("platform", "kemi-stats")
#: how often the platform scrapes itself
INTERVAL = 15.0


def self_targets(host: str, services: Iterable[tuple[ServiceSpec, int]]) -> dict[str, Target]:
    """The scrape targets of the platform's own services: name -> target."""
    key, value = SELF_LABEL
    return {
        f"kemi-self-{spec.name}": Target.model_validate(
            {
                "scrape_url": f"http://{host}:{port}/metrics",
                "interval": INTERVAL,
                "deadline": 5.0,
                "resource_id": f"kemi:{spec.name}",
                "labels": {key: value, "component": spec.name},
                # a worker's page has series per target: large fleets make large pages
                "sample_limit": 500_000,
            }
        )
        for spec, port in services
    }


def sync_self_targets(registry: Registry, wanted: dict[str, Target]) -> tuple[int, int]:
    """Write ``wanted`` and remove the other self targets; (written, removed)."""
    key, value = SELF_LABEL
    stale = [
        ("target", e.name)
        for e in registry.list("target")
        if e.doc.labels.get(key) == value and e.name not in wanted
    ]
    registry.write_many([("target", name, t) for name, t in wanted.items()], stale)
    return len(wanted), len(stale)
