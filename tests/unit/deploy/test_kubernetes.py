"""deploy/kubernetes: every service probed for liveness and readiness, sized, protected.

The manifests are loaded as Kubernetes would read them; every Deployment and StatefulSet
must run a catalogued service on its port, probe ``/livez`` for liveness (a dependency
outage must not restart pods) and ``/readyz`` for readiness, and declare resource requests
and limits. Every service with more than one replica has a PodDisruptionBudget, and a Job
creates the topics with the replication the ConfigMap asks every service to require.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from kemi_stats.catalogue import SERVICES
from kemi_stats.settings import Settings

MANIFEST = Path(__file__).resolve().parents[3] / "deploy" / "kubernetes" / "kemi-stats.yaml"
WORKLOADS = ("Deployment", "StatefulSet")
RUNTIME_PROBES = ("/livez", "/readyz")


def documents() -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(MANIFEST.read_text()) if d]


def of_kind(*kinds: str) -> list[dict[str, Any]]:
    return [d for d in documents() if d["kind"] in kinds]


def container(doc: dict[str, Any]) -> dict[str, Any]:
    [only] = doc["spec"]["template"]["spec"]["containers"]
    return dict(only)


def service_of(doc: dict[str, Any]) -> str:
    """The catalogued service a workload runs (``kemi-stats run NAME``)."""
    args = container(doc)["args"]
    assert args[:3] == ["kemi-stats", "run", args[2]], args
    return str(args[2])


def name(doc: dict[str, Any]) -> str:
    return str(doc["metadata"]["name"])


def config_map() -> dict[str, str]:
    [cm] = of_kind("ConfigMap")
    return dict(cm["data"])


@pytest.mark.parametrize("doc", of_kind(*WORKLOADS), ids=name)
def test_every_workload_probes_liveness_and_readiness(doc: dict[str, Any]) -> None:
    service = service_of(doc)
    c = container(doc)
    [port] = c["ports"]
    assert port["containerPort"] == SERVICES[service].port, name(doc)
    live, ready = RUNTIME_PROBES
    for probe, path in (("livenessProbe", live), ("readinessProbe", ready)):
        assert probe in c, f"{name(doc)}: no {probe}"
        assert c[probe]["httpGet"] == {"path": path, "port": port["name"]}, (name(doc), probe)


@pytest.mark.parametrize("doc", of_kind(*WORKLOADS, "Job"), ids=name)
def test_every_container_has_resource_requests_and_limits(doc: dict[str, Any]) -> None:
    resources = container(doc).get("resources", {})
    for bound in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(resources.get(bound, {})), f"{name(doc)}: {bound}"


def test_every_service_runs_once() -> None:
    services = [service_of(d) for d in of_kind(*WORKLOADS)]
    assert sorted(services) == sorted(SERVICES)


def test_every_scaled_workload_has_a_disruption_budget() -> None:
    budgets = {
        tuple(sorted(pdb["spec"]["selector"]["matchLabels"].items())): pdb
        for pdb in of_kind("PodDisruptionBudget")
    }
    scaled = [d for d in of_kind(*WORKLOADS) if d["spec"]["replicas"] > 1]
    assert scaled
    for doc in scaled:
        selector = tuple(sorted(doc["spec"]["selector"]["matchLabels"].items()))
        assert selector in budgets, f"{name(doc)}: no PodDisruptionBudget"
        assert budgets[selector]["spec"].get("maxUnavailable") == 1, name(doc)


def test_a_job_ensures_the_topics() -> None:
    [job] = of_kind("Job")
    c = container(job)
    assert c["args"] == ["kemi-stats", "topics", "ensure"]
    assert c["envFrom"] == [{"configMapRef": {"name": "kemi-stats"}}]
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "OnFailure"


def test_topics_are_replicated_three_times_two_in_sync() -> None:
    env = {k: v for k, v in config_map().items() if k.startswith("KEMI_KAFKA_")}
    settings = Settings.model_validate({k.removeprefix("KEMI_").lower(): v for k, v in env.items()})
    assert (settings.kafka_replication_factor, settings.kafka_min_insync_replicas) == (3, 2)
