"""deploy/compose: the compose file's Grafana finds its data source and its dashboards.

Grafana is not started. The compose file gives the grafana service's environment and bind
mounts; every provisioning YAML it mounts is rendered the way Grafana renders it (each
string value, ``$VAR`` and ``${VAR}`` from the environment, ``$$`` a literal ``$``,
nothing else), and the result is followed to the VictoriaMetrics service and to the
dashboards on disk.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shlex
from collections.abc import Iterator, Mapping
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
COMPOSE = REPO / "deploy" / "compose" / "docker-compose.yml"
GRAFANA = REPO / "deploy" / "grafana"
PROVISIONING_IN_CONTAINER = PurePosixPath("/etc/grafana/provisioning")
VM_IMAGE = "victoriametrics/victoria-metrics"
VM_DEFAULT_PORT = 8428  # VictoriaMetrics' -httpListenAddr default, :8428

# $$, ${anything}, $NAME; what is inside ${...} is checked below
_REFERENCE = re.compile(r"\$(?:\$|\{([^}]*)\}|([A-Za-z_][A-Za-z0-9_]*))")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class Unexpandable(Exception):
    """A provisioning value Grafana would not expand into what it says."""


def expand(value: str, env: Mapping[str, str], where: str) -> str:
    """``value`` with its environment references replaced, as Grafana's provisioning does."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1) if match.group(1) is not None else match.group(2)
        if not _NAME.fullmatch(name):
            raise Unexpandable(
                f"{where}: {match.group(0)!r}: Grafana expands only $VAR and ${{VAR}} "
                f"(no shell defaults such as ${{VAR:-x}})"
            )
        if name not in env:
            raise Unexpandable(
                f"{where}: ${name} is not set in the grafana service's environment "
                f"({COMPOSE.relative_to(REPO)}); Grafana would expand it to ''"
            )
        return env[name]

    return _REFERENCE.sub(replace, value)


def render(doc: Any, env: Mapping[str, str], where: str) -> Any:
    """Every string value of a parsed YAML document expanded (keys are left as written)."""
    if isinstance(doc, str):
        return expand(doc, env, where)
    if isinstance(doc, dict):
        return {k: render(v, env, f"{where}: {k}") for k, v in doc.items()}
    if isinstance(doc, list):
        return [render(v, env, f"{where}[{i}]") for i, v in enumerate(doc)]
    return doc


# --- the compose file ---------------------------------------------------------------


def compose() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return doc


def service(name: str) -> dict[str, Any]:
    svc: dict[str, Any] = compose()["services"][name]
    return svc


def vm_service() -> tuple[str, dict[str, Any]]:
    found = [(n, s) for n, s in compose()["services"].items() if s["image"].startswith(VM_IMAGE)]
    assert len(found) == 1, f"one {VM_IMAGE} service in {COMPOSE}, found {[n for n, _ in found]}"
    return found[0]


def command(svc: Mapping[str, Any]) -> list[str]:
    cmd = svc.get("command", [])
    return shlex.split(cmd) if isinstance(cmd, str) else [str(a) for a in cmd]


def environment(svc: Mapping[str, Any]) -> dict[str, str]:
    env = svc.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(k): str(v) for k, v in env.items()}


def bind_mounts(svc: Mapping[str, Any]) -> dict[PurePosixPath, Path]:
    """Container path -> host path for every bind mount (host side relative to the file)."""
    mounts: dict[PurePosixPath, Path] = {}
    for volume in svc.get("volumes", []):
        if isinstance(volume, dict):
            if volume.get("type") != "bind":
                continue
            source, target = volume["source"], volume["target"]
        else:
            source, target = volume.split(":")[:2]
            if not source.startswith(("/", ".", "~")):
                continue  # a named volume
        mounts[PurePosixPath(target)] = (COMPOSE.parent / source).resolve()
    return mounts


def host_path(mounts: Mapping[PurePosixPath, Path], path: PurePosixPath) -> Path | None:
    """Where a container path lives on the host, through the innermost mount holding it."""
    holding = [t for t in mounts if path == t or t in path.parents]
    if not holding:
        return None
    target = max(holding, key=lambda t: len(t.parts))
    return mounts[target].joinpath(*path.relative_to(target).parts)


# --- what the grafana container sees -------------------------------------------------


def provisioning_dir() -> Path:
    found = host_path(bind_mounts(service("grafana")), PROVISIONING_IN_CONTAINER)
    assert found is not None, f"no bind mount of {PROVISIONING_IN_CONTAINER} in {COMPOSE}"
    return found


def provisioning_files(kind: str) -> list[Path]:
    return sorted(p for p in (provisioning_dir() / kind).iterdir() if p.suffix in {".yaml", ".yml"})


def rendered(kind: str) -> Iterator[dict[str, Any]]:
    env = environment(service("grafana"))
    for path in provisioning_files(kind):
        yield render(yaml.safe_load(path.read_text()), env, str(path.relative_to(REPO)))


def datasources() -> list[dict[str, Any]]:
    return [ds for doc in rendered("datasources") for ds in doc.get("datasources", [])]


def providers() -> list[dict[str, Any]]:
    return [p for doc in rendered("dashboards") for p in doc.get("providers", [])]


def datasource_references(node: Any) -> Iterator[Any]:
    """Every ``datasource`` value in a dashboard: panels, targets, template variables."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "datasource":
                yield value
            yield from datasource_references(value)
    elif isinstance(node, list):
        for item in node:
            yield from datasource_references(item)


# --- tests --------------------------------------------------------------------------


def test_expand_follows_grafana() -> None:
    env = {"URL": "http://vm:8428"}
    assert expand("$URL/x ${URL} $$URL", env, "f") == "http://vm:8428/x http://vm:8428 $URL"
    with pytest.raises(Unexpandable, match=r"only \$VAR and \$\{VAR\}"):
        expand("${URL:-http://127.0.0.1:8428}", env, "f")
    with pytest.raises(Unexpandable, match=r"\$MISSING is not set"):
        expand("${MISSING}", env, "f")


def test_grafana_mounts_the_repository_provisioning() -> None:
    assert provisioning_dir() == GRAFANA / "provisioning"
    assert provisioning_files("datasources"), "no data source provisioning file"
    assert provisioning_files("dashboards"), "no dashboard provider file"


def test_every_provisioning_value_expands_in_compose() -> None:
    problems = []
    for kind in ("datasources", "dashboards"):
        try:
            list(rendered(kind))
        except Unexpandable as exc:
            problems.append(str(exc))
    assert not problems, "\n".join(problems)


def test_datasource_url_is_the_compose_victoriametrics() -> None:
    name, vm = vm_service()
    listen = [a.split("=", 1)[1] for a in command(vm) if a.startswith("-httpListenAddr=")]
    port = int(listen[-1].rsplit(":", 1)[1]) if listen else VM_DEFAULT_PORT
    [ds] = [ds for ds in datasources() if ds["type"] == "prometheus"]
    url = urlsplit(ds["url"])
    assert (url.scheme, url.hostname, url.port) == ("http", name, port), ds["url"]


def test_dashboards_provider_reads_the_repository_dashboards() -> None:
    mounts = bind_mounts(service("grafana"))
    files = [p for p in providers() if p.get("type", "file") == "file"]
    assert files, "no file dashboard provider"
    for provider in files:
        path = PurePosixPath(provider["options"]["path"])
        assert path.is_absolute(), f"provider {provider['name']}: {path} is not a container path"
        assert host_path(mounts, path) == GRAFANA / "dashboards", (
            f"provider {provider['name']} reads {path}; compose mounts {mounts}"
        )
    assert sorted(p.name for p in (GRAFANA / "dashboards").glob("*.json")) == [
        "alerts.json",
        "fleet-overview.json",
        "host.json",
        "interfaces.json",
        "platform-health.json",
    ]


def test_dashboards_are_what_generate_py_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = importlib.util.spec_from_file_location("grafana_generate", GRAFANA / "generate.py")
    assert spec is not None and spec.loader is not None
    generate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generate)
    monkeypatch.setattr(generate, "OUT", tmp_path)
    generate.main()
    for written in sorted(tmp_path.glob("*.json")):
        committed = GRAFANA / "dashboards" / written.name
        assert committed.exists(), f"{committed.name}: run python deploy/grafana/generate.py"
        assert json.loads(committed.read_text()) == json.loads(written.read_text()), (
            f"{committed.name} differs from generate.py's; run python deploy/grafana/generate.py"
        )


def test_dashboards_reference_the_provisioned_datasource() -> None:
    uids = {ds["uid"] for ds in datasources() if "uid" in ds}
    names = {ds["name"] for ds in datasources()}
    for path in sorted((GRAFANA / "dashboards").glob("*.json")):
        refs = list(datasource_references(json.loads(path.read_text())))
        assert refs, f"{path.name}: no datasource reference"
        for ref in refs:
            if isinstance(ref, dict):
                assert ref.get("uid") in uids, f"{path.name}: datasource {ref}; provisioned {uids}"
            else:
                assert ref in names | uids, f"{path.name}: datasource {ref!r}; provisioned {names}"


def test_victoriametrics_stores_a_duplicate_sample_once() -> None:
    _, vm = vm_service()
    assert "-dedup.minScrapeInterval=1ms" in command(vm)
