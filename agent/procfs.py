"""What the push agent reads from /proc: cpu, memory, load, disk and network.

Each reader returns push objects (``{"labels": ..., "metrics": ...}``) without
resource id or time; the agent adds those. CPU is reported as percentages over
the last interval (so the first collection has none); disk and network are raw
64-bit counters, which the calculator turns into rates.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["ProcReader"]

PushObject = dict[str, Any]

_CPU_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")
_SECTOR = 512
# /proc/diskstats: skip partitions' virtual twins that only double-count
_SKIP_DISKS = ("loop", "ram", "zram", "fd", "sr")


def _counter(value: int) -> dict[str, Any]:
    return {"value": value, "kind": "counter"}


@dataclass
class ProcReader:
    """Reads /proc (or another root, for tests) and remembers the last CPU sample."""

    root: Path = Path("/proc")
    _last_cpu: list[int] | None = field(default=None, repr=False)

    def collect(self) -> list[PushObject]:
        """Every object the agent pushes for one interval; a missing file is skipped."""
        objects: list[PushObject] = []
        for reader in (self.cpu, self.memory, self.load, self.disks, self.network):
            try:
                objects.extend(reader())
            except (OSError, ValueError, IndexError):
                continue
        return [o for o in objects if o["metrics"]]

    def cpu(self) -> list[PushObject]:
        with open(self.root / "stat") as f:
            first = f.readline().split()
        if first[0] != "cpu":
            return []
        ticks = [int(x) for x in first[1 : 1 + len(_CPU_FIELDS)]]
        last, self._last_cpu = self._last_cpu, ticks
        if last is None:
            return []
        delta = [max(now - before, 0) for now, before in zip(ticks, last, strict=False)]
        total = sum(delta)
        if total == 0:
            return []
        pct = {name: 100.0 * d / total for name, d in zip(_CPU_FIELDS, delta, strict=False)}
        metrics = {f"cpu_{name}_pct": round(v, 3) for name, v in pct.items()}
        metrics["cpu_usage_pct"] = round(100.0 - pct["idle"] - pct.get("iowait", 0.0), 3)
        metrics["cpu_count"] = os.cpu_count() or 1
        return [{"metrics": metrics}]

    def memory(self) -> list[PushObject]:
        info: dict[str, int] = {}
        with open(self.root / "meminfo") as f:
            for line in f:
                key, _, rest = line.partition(":")
                parts = rest.split()
                if parts:
                    info[key] = int(parts[0]) * (1024 if len(parts) > 1 else 1)
        total = info.get("MemTotal", 0)
        available = info.get("MemAvailable", info.get("MemFree", 0))
        metrics: dict[str, Any] = {
            "mem_total_bytes": total,
            "mem_available_bytes": available,
            "mem_used_bytes": total - available,
            "mem_used_pct": round(100.0 * (total - available) / total, 3) if total else 0.0,
            "swap_total_bytes": info.get("SwapTotal", 0),
            "swap_used_bytes": info.get("SwapTotal", 0) - info.get("SwapFree", 0),
        }
        return [{"metrics": metrics}]

    def load(self) -> list[PushObject]:
        with open(self.root / "loadavg") as f:
            parts = f.read().split()
        return [
            {
                "metrics": {
                    "load1": float(parts[0]),
                    "load5": float(parts[1]),
                    "load15": float(parts[2]),
                }
            }
        ]

    def disks(self) -> list[PushObject]:
        objects: list[PushObject] = []
        with open(self.root / "diskstats") as f:
            for line in f:
                parts = line.split()
                if len(parts) < 14:
                    continue
                device = parts[2]
                if device.startswith(_SKIP_DISKS):
                    continue
                reads, read_sectors, writes, write_sectors = (
                    int(parts[3]), int(parts[5]), int(parts[7]), int(parts[9]),
                )  # fmt: skip
                io_ms = int(parts[12])
                objects.append(
                    {
                        "labels": {"device": device},
                        "metrics": {
                            "disk_reads": _counter(reads),
                            "disk_writes": _counter(writes),
                            "disk_read_bytes": _counter(read_sectors * _SECTOR),
                            "disk_written_bytes": _counter(write_sectors * _SECTOR),
                            "disk_io_ms": _counter(io_ms),
                        },
                    }
                )
        return objects

    def network(self) -> list[PushObject]:
        objects: list[PushObject] = []
        with open(self.root / "net" / "dev") as f:
            lines = f.readlines()[2:]
        for line in lines:
            name, _, rest = line.partition(":")
            parts = rest.split()
            if len(parts) < 16:
                continue
            objects.append(
                {
                    "labels": {"interface": name.strip()},
                    "metrics": {
                        "net_rx_bytes": _counter(int(parts[0])),
                        "net_rx_packets": _counter(int(parts[1])),
                        "net_rx_errors": _counter(int(parts[2])),
                        "net_rx_dropped": _counter(int(parts[3])),
                        "net_tx_bytes": _counter(int(parts[8])),
                        "net_tx_packets": _counter(int(parts[9])),
                        "net_tx_errors": _counter(int(parts[10])),
                        "net_tx_dropped": _counter(int(parts[11])),
                    },
                }
            )
        return objects
