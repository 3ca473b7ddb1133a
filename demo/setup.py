"""What ``kemi-stats up --demo`` adds to the local stack.

* 50 simulated devices (one snmpsim process, each device on its own loopback address
  127.0.1.N:1161) with moving interface counters, CPU and memory; ``sw-07``'s CPU
  crosses 90 % every ~5 minutes; ``sw-dead`` is registered but nothing answers it;
* a push agent reading this host's /proc, with its own token;
* a webhook receiver that checks signatures and prints every alert;
* the registry entries that tie them together (profiles, credentials, targets, token,
  derived metrics, receiver, rules), written idempotently;
* in the foreground, a live terminal view.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from kemi_stats.private_file import read_secret, write_private
from kemi_stats.registry.models import KINDS
from kemi_stats.registry.store import Registry, parse_doc
from kemi_stats.stack.launcher import Supervisor
from kemi_stats.stack.process import pid_alive
from kemi_stats.stack.snmpsim import snmpsim_command, snmpsim_env, write_device_data
from kemi_stats.webhook import secret_problem

__all__ = ["DEMO_DEVICES", "attach_demo", "demo_registry"]

DEMO_DEVICES = 50
HOT_DEVICE = "sw-07"
SITES = ("pangyo", "jeju", "seoul")
SNMP_PORT = 1161
RECEIVER_PORT = 9190
_HR_CPU_1 = "1.3.6.1.2.1.25.3.3.1.2.196"


def device_name(i: int) -> str:
    return f"sw-{i:02d}"


def device_host(i: int) -> str:
    return f"127.0.1.{i}"


def _snmp_answers(host: str, port: int, community: str) -> bool:
    try:
        proc = subprocess.run(
            ["snmpget", "-v2c", "-c", community, "-t", "0.5", "-r", "0", "-On",
             f"{host}:{port}", "1.3.6.1.2.1.1.5.0"],
            capture_output=True, timeout=3, check=False,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0


def _receiver_secret(path: Path) -> str:
    """The demo receiver's signing secret, kept across runs; one from an older demo that
    ``receiver add`` would now refuse (under 16 bytes) is replaced."""
    if path.exists():
        kept = read_secret(path)
        if secret_problem(kept) is None:
            return kept
    fresh = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    write_private(path, fresh)
    return fresh


def demo_registry(
    receiver_url: str, receiver_secret: str, token_hash: str, dead_port: int
) -> list[tuple[str, str, Any]]:
    """Every registry entry of the demo, validated."""
    from kemi_stats.registry.builtin import load_builtin_profiles

    raw: list[tuple[str, str, dict[str, Any]]] = []
    for i in range(1, DEMO_DEVICES + 1):
        name = device_name(i)
        raw.append(("credential", f"sim-{name}", {"community": name}))
        raw.append(("target", name, {
            "host": device_host(i), "port": SNMP_PORT, "credential": f"sim-{name}",
            "profiles": ["system", "if-mib", "host-resources", "ucd-snmp"], "interval": "15s",
            "deadline": "10s", "resource_id": f"net:{name}", "labels": {"site": SITES[i % len(SITES)]},
        }))  # fmt: skip
    raw.append(("target", "sw-dead", {
        "host": "127.0.0.1", "port": dead_port, "credential": "sim-sw-01", "profiles": ["system"],
        "interval": "15s", "deadline": "5s", "timeout": "1s", "retries": 1,
        "resource_id": "net:sw-dead", "labels": {"site": "pangyo"},
    }))  # fmt: skip
    raw.append(("token", "demo-agent", {"hash": token_hash, "resource_prefix": "host:",
                                        "description": "the demo's push agent"}))  # fmt: skip
    raw.append(("derived", "if_in_bps", {"expr": "rate(ifHCInOctets) * 8"}))
    raw.append(("derived", "if_out_bps", {"expr": "rate(ifHCOutOctets) * 8"}))
    raw.append(("derived", "mem_used_pct",
                {"expr": "100 * (memTotalReal - memAvailReal) / memTotalReal"}))  # fmt: skip
    raw.append(("derived", "site_in_bps", {"expr": "sum(if_in_bps)", "group_by": ["site"]}))
    raw.append(("receiver", "demo-hook", {"url": receiver_url, "secret": receiver_secret,
                                          "timeout": "5s", "group_wait": "1s"}))  # fmt: skip
    raw.append(("rule", "cpu-high", {
        "metric": "hrProcessorLoad", "match": ["resource=~net:.*"], "condition": {"op": ">", "threshold": 90},
        "for": "30s", "clear": {"op": "<", "threshold": 80}, "clear_for": "30s", "severity": "critical",
        "receivers": ["demo-hook"],
        "annotations": {"summary": "CPU of {resource} at {value} (threshold {threshold})"},
    }))  # fmt: skip
    raw.append(("rule", "device-down", {
        "metric": "snmp_up", "match": ["resource=~net:.*"], "condition": {"op": "<", "threshold": 1},
        "for": "30s", "no_data": "2m", "severity": "warning", "receivers": ["demo-hook"],
        "annotations": {"summary": "{resource} does not answer SNMP"},
    }))  # fmt: skip
    out: list[tuple[str, str, Any]] = [
        ("profile", name, profile) for name, profile in load_builtin_profiles().items()
    ]
    order = list(KINDS)
    for kind, name, doc in sorted(raw, key=lambda r: order.index(r[0])):
        out.append((kind, name, parse_doc(kind, name, doc)))
    return out


def attach_demo(sup: Supervisor, live: bool) -> None:
    """Add the demo's processes and registry entries to a supervisor before it runs."""
    cfg = sup.config
    demo_dir = cfg.data_dir / "demo"
    data = demo_dir / "snmpsim"
    for i in range(1, DEMO_DEVICES + 1):
        extra = None
        if device_name(i) == HOT_DEVICE:
            # 40..100 % with a ~5 minute period: above 90 for about 70 s of each period
            extra = {
                _HR_CPU_1: (
                    "2:numeric",
                    "function=sin%<time>,rate=0.02,scale=30,offset=70,min=0,max=100",
                )
            }
        write_device_data(data, device_name(i), extra=extra)
    endpoints = [(device_host(i), SNMP_PORT) for i in range(1, DEMO_DEVICES + 1)]
    sim = snmpsim_command(data, *endpoints, cache_dir=demo_dir / "snmpsim-cache")
    receiver_secret = _receiver_secret(demo_dir / "receiver.secret")
    receiver_url = f"http://127.0.0.1:{RECEIVER_PORT}/alerts"
    token = "kemi_demo_" + secrets.token_urlsafe(24)
    write_private(demo_dir / "agent.token", token)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        dead_port = s.getsockname()[1]  # a UDP port nothing listens on once released

    aggregator_port = cfg.service_ports.get("aggregator", 8080)
    host_id = f"host:{socket.gethostname()}"
    agent = [sys.executable, "-m", "kemi_stats.cli", "agent", "--url", f"http://127.0.0.1:{aggregator_port}",
             "--interval", "10s", "--resource-id", host_id, "--label", "site=pangyo"]  # fmt: skip

    def start_devices_and_receiver(s: Supervisor) -> None:
        children = [
            s.add_child(
                "snmpsim", "demo", sim.argv,
                f"{device_host(1)}:{SNMP_PORT} (+{DEMO_DEVICES - 1} devices, udp)", None, snmpsim_env(),
                check=lambda: _snmp_answers(device_host(1), SNMP_PORT, device_name(1)),
            ),
            s.add_child(
                "demo-receiver", "demo",
                [sys.executable, "-m", "demo.receiver", "--port", str(RECEIVER_PORT),
                 "--secret-file", str(demo_dir / "receiver.secret")],
                f"127.0.0.1:{RECEIVER_PORT}", f"http://127.0.0.1:{RECEIVER_PORT}/healthz",
            ),
        ]  # fmt: skip
        s.start_extra(children)

    def register_and_start_agent(s: Supervisor) -> None:
        with Registry(cfg.etcd, cfg.prefix, keyring=cfg.ensure_keyring()) as reg:
            entries = demo_registry(receiver_url, receiver_secret,
                                    hashlib.sha256(token.encode()).hexdigest(), dead_port)  # fmt: skip
            reg.write_many(entries)
        started = time.monotonic()
        # the token reaches the agent through its environment, never its argv (ps shows argv)
        env = {**os.environ, "KEMI_AGENT_TOKEN": token}
        child = s.add_child("push-agent", "demo", agent, host_id, None, env,
                            check=lambda: time.monotonic() - started > 2)  # fmt: skip
        s.start_extra([child])
        if not pid_alive(child.pid or 0):
            raise RuntimeError(f"push agent exited; see {child.state.log}")

    sup.extra_ready.append(start_devices_and_receiver)
    sup.extra_ready.append(register_and_start_agent)
    if live:
        from demo.liveview import run_live_view

        def start_view(s: Supervisor) -> None:
            threading.Thread(target=run_live_view, args=(s,), daemon=True, name="live-view").start()

        sup.extra_ready.append(start_view)
