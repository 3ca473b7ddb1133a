"""The local stack's state file (``<data dir>/stack.json``): what runs, where, with which pid."""

from __future__ import annotations

import contextlib
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

from kemi_stats.stack.process import runs

__all__ = ["ComponentState", "StackState"]


@dataclass
class ComponentState:
    """One supervised process of the stack."""

    name: str
    kind: str  # server | service | demo
    address: str
    log: str
    pid: int | None = None
    health_url: str | None = None
    status: str = "pending"  # pending | starting | up | failed | stopped
    restarts: int = 0
    detail: str = ""
    argv: list[str] = field(default_factory=list)
    started: int | None = None  # start time in clock ticks since boot: with pid, one process

    def running(self) -> bool:
        """Whether the process started for this component still runs (not just its pid)."""
        return runs(self.pid, self.argv, self.started)


@dataclass
class StackState:
    """Everything ``kemi-stats status`` and ``down`` need to find the stack's processes."""

    data_dir: str
    supervisor_pid: int
    status: str = "starting"  # starting | ready | failed | stopping | stopped
    detail: str = ""
    components: list[ComponentState] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    supervisor_started: int | None = None

    def supervisor_running(self) -> bool:
        """Whether the supervisor that wrote this state still runs."""
        return runs(self.supervisor_pid, [], self.supervisor_started)

    def orphans(self) -> list[ComponentState]:
        """Components that still run although their supervisor is gone."""
        if self.supervisor_running():
            return []
        return [c for c in self.components if c.running()]

    @staticmethod
    def path(data_dir: Path) -> Path:
        return data_dir / "stack.json"

    def save(self) -> None:
        path = self.path(Path(self.data_dir))
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(orjson.dumps(asdict(self), option=orjson.OPT_INDENT_2))
        os.replace(tmp, path)

    @classmethod
    def load(cls, data_dir: Path) -> StackState | None:
        path = cls.path(data_dir)
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            raw: dict[str, Any] = orjson.loads(path.read_bytes())
            comps = [ComponentState(**c) for c in raw.pop("components", [])]
            return cls(components=comps, **raw)
        return None

    def component(self, name: str) -> ComponentState | None:
        return next((c for c in self.components if c.name == name), None)
