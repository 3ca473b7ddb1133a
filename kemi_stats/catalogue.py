"""The kemi services: their names, the module each runs as, and their default HTTP ports.

The core never imports a service package; it starts them as ``python -m <module>``.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import util as import_util

__all__ = ["SERVICES", "ServiceSpec", "available_services"]


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    """A service of the platform."""

    name: str
    module: str
    port: int
    description: str


SERVICES: dict[str, ServiceSpec] = {
    s.name: s
    for s in (
        ServiceSpec(
            "poller-scheduler", "poller.scheduler", 9101, "poll job producer (leader-elected)"
        ),
        ServiceSpec(
            "poller", "poller.worker", 9102, "poll worker: SNMP and scrapes (consumer group)"
        ),
        ServiceSpec("aggregator", "aggregator", 8080, "HTTP push endpoint for agents"),
        ServiceSpec("calculator", "calculator", 9103, "Faust app deriving computed metrics"),
        ServiceSpec(
            "alert-evaluator", "alerting.evaluator", 9104, "threshold rules -> alert events"
        ),
        ServiceSpec("notifier", "alerting.notifier", 9105, "alert events -> signed webhooks"),
        ServiceSpec("forwarder", "forwarder", 9106, "samples (raw + derived) -> time-series DB"),
        ServiceSpec("console", "console", 9107, "web console: alerts, targets, explorer"),
    )
}


def _module_exists(module: str) -> bool:
    try:
        spec = import_util.find_spec(module)
    except ModuleNotFoundError:
        return False
    if spec is None:
        return False
    # a package runs through its __main__; a plain module runs itself
    if spec.submodule_search_locations:
        try:
            return import_util.find_spec(module + ".__main__") is not None
        except ModuleNotFoundError:
            return False
    return True


def available_services() -> list[ServiceSpec]:
    """The services whose code is installed, in start order."""
    return [s for s in SERVICES.values() if _module_exists(s.module)]
