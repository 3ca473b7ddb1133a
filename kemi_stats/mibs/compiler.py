"""MIB modules compiled offline with pysmi into JSON documents in a cache, and loaded."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pysmi.codegen.jsondoc import JsonCodeGen
from pysmi.compiler import MibCompiler
from pysmi.error import PySmiError
from pysmi.parser import SmiV1CompatParser
from pysmi.reader.callback import CallbackReader
from pysmi.reader.localfile import FileReader
from pysmi.searcher.anyfile import AnyFileSearcher
from pysmi.searcher.stub import StubSearcher
from pysmi.writer.localfile import FileWriter

from kemi_stats.errors import NotFoundError, ValidationError
from kemi_stats.mibs.base_mibs import BASE_MIBS

__all__ = ["DEFAULT_MIB_DIRS", "MibLibrary"]

#: where Debian's libsnmp-base (and snmp-mibs-downloader) put MIB files
DEFAULT_MIB_DIRS: tuple[Path, ...] = (Path("/usr/share/snmp/mibs"),)

#: modules pysmi parses for their symbols but never generates code for
_STUBS = tuple(dict.fromkeys((*JsonCodeGen.baseMibs, *BASE_MIBS)))


class MibLibrary:
    """MIB modules found in local directories, compiled to JSON once and cached."""

    def __init__(self, dirs: Sequence[Path], cache_root: Path) -> None:
        self.dirs = tuple(dirs)
        # one cache per search path: the same module name may differ between paths
        key = hashlib.sha256("\0".join(str(d.resolve()) for d in self.dirs).encode())
        self.cache_dir = cache_root / key.hexdigest()[:16]
        self._modules: dict[str, dict[str, Any] | None] = {}

    @classmethod
    def local(cls, extra_dirs: Sequence[Path], data_dir: Path) -> MibLibrary:
        """The CLI's library: ``extra_dirs`` first, then the system's MIB folder; its cache
        under the data dir."""
        return cls([*extra_dirs, *DEFAULT_MIB_DIRS], data_dir / "mib-cache")

    def searched(self) -> str:
        """The directories searched, for error messages."""
        return ", ".join(str(d) for d in self.dirs) or "(none)"

    def module(self, name: str) -> dict[str, Any]:
        """The compiled JSON of module ``name``; raise NotFoundError or ValidationError."""
        if name in BASE_MIBS or name in _STUBS:
            raise ValidationError(f"MIB {name} is a base module (types only): name a vendor MIB")
        # pysmi skips a module whose JSON is newer than its file: a re-run costs a parse check
        self._compile(name)
        doc = self.load(name)
        if doc is None:
            raise NotFoundError(f"MIB {name} compiled but its JSON is missing in {self.cache_dir}")
        return doc

    def names(self, modules: Sequence[str]) -> dict[str, str]:
        """Numeric OID -> object name for every object of ``modules`` (compiled as needed)."""
        out: dict[str, str] = {}
        for module in modules:
            for symbol, node in self.module(module).items():
                if isinstance(node, dict) and isinstance(node.get("oid"), str):
                    out[node["oid"]] = str(node.get("name") or symbol)
        return out

    def oids(self, modules: Sequence[str]) -> dict[str, str]:
        """Object name -> numeric OID for every object of ``modules``."""
        return {name: oid for oid, name in self.names(modules).items()}

    def load(self, name: str) -> dict[str, Any] | None:
        """The cached JSON of an already compiled module (None: not compiled, or a stub)."""
        if name not in self._modules:
            path = self.cache_dir / f"{name}.json"
            self._modules[name] = json.loads(path.read_text()) if path.is_file() else None
        return self._modules[name]

    def _compile(self, name: str) -> None:
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        compiler = MibCompiler(
            SmiV1CompatParser(),
            JsonCodeGen(),
            FileWriter(str(self.cache_dir)).set_options(suffix=".json"),
        )
        # local directories only, then the bundled base modules: never a URL
        compiler.add_sources(*(FileReader(str(d)) for d in self.dirs if d.is_dir()))
        compiler.add_sources(CallbackReader(_base_mib))
        compiler.add_searchers(
            AnyFileSearcher(str(self.cache_dir)).set_options(exts=[".json"]),
            StubSearcher(*_STUBS),
        )
        try:
            results = compiler.compile(name, genTexts=False)
        except PySmiError as exc:
            raise ValidationError(f"MIB {name}: {_first_line(exc)}") from None
        self._modules.pop(name, None)
        self._check(name, {k: str(v) for k, v in results.items()}, results)

    def _check(self, name: str, statuses: dict[str, str], results: dict[str, Any]) -> None:
        status = statuses.get(name, "missing")
        if status in ("compiled", "untouched"):
            return
        if status == "missing":
            raise NotFoundError(f"MIB {name} not found (searched {self.searched()})")
        missing = sorted(m for m, s in statuses.items() if s == "missing")
        if missing:
            raise NotFoundError(
                f"MIB {name} imports {', '.join(missing)}, not found (searched {self.searched()})"
            )
        failed = {m: results[m] for m, s in statuses.items() if s == "failed"}
        reason = "; ".join(f"{m}: {_first_line(getattr(r, 'error', r))}" for m, r in failed.items())
        raise ValidationError(f"MIB {name} does not compile ({reason or status})")


def _base_mib(name: str, _ctx: object) -> str:
    # CallbackReader reads an empty answer as "not here"
    return BASE_MIBS.get(name, "")


def _first_line(exc: object) -> str:
    return (str(exc).strip().splitlines() or ["unknown error"])[0]
