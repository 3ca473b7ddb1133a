"""The local stack's state file (``<data dir>/stack.json``): what runs, where, with which pid."""

from __future__ import annotations

import contextlib
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

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


@dataclass
class StackState:
    """Everything ``kemi-stats status`` and ``down`` need to find the stack's processes."""

    data_dir: str
    supervisor_pid: int
    status: str = "starting"  # starting | ready | failed | stopping | stopped
    detail: str = ""
    components: list[ComponentState] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)

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
        with contextlib.suppress(FileNotFoundError):
            raw: dict[str, Any] = orjson.loads(path.read_bytes())
            comps = [ComponentState(**c) for c in raw.pop("components", [])]
            return cls(components=comps, **raw)
        return None

    def component(self, name: str) -> ComponentState | None:
        return next((c for c in self.components if c.name == name), None)
