"""A profile document from compiled MIB modules: tables, their columns and lookups, scalars."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kemi_stats.errors import NotFoundError, ValidationError
from kemi_stats.mibs.syntax import ValueKind, value_kind

__all__ = ["MibObject", "ProfileRequest", "build_profile"]

Loader = Callable[[str], Mapping[str, Any] | None]


@dataclass(frozen=True)
class MibObject:
    """One object of a compiled module, with the module it is defined in."""

    name: str
    module: str
    doc: Mapping[str, Any]

    @property
    def oid(self) -> str:
        return str(self.doc["oid"])

    @property
    def nodetype(self) -> str:
        return str(self.doc.get("nodetype", ""))


@dataclass(frozen=True)
class ProfileRequest:
    """What to put in the profile, by MIB object name."""

    tables: Sequence[str] = ()
    columns: Sequence[str] = ()
    lookups: Sequence[str] = ()
    scalars: Sequence[str] = ()
    description: str = ""


def build_profile(
    modules: Mapping[str, Mapping[str, Any]],
    request: ProfileRequest,
    load: Loader,
    searched: str = "",
) -> tuple[dict[str, Any], list[str]]:
    """The profile fields (numeric OIDs) for ``request`` and notes for the user; raise
    NotFoundError or ValidationError naming the MIB, table or column."""
    notes: list[str] = []
    if not request.tables and not request.scalars:
        raise ValidationError("give at least one --table or --scalar")
    finder = _Finder(modules, load, searched)
    tables = [finder.table(name) for name in request.tables]
    columns = _assign(finder, tables, request.columns, "column")
    lookups = _assign(finder, tables, request.lookups, "lookup")
    doc: dict[str, Any] = {
        "description": request.description
        or f"{', '.join(modules)} {', '.join([*request.tables, *request.scalars])} "
        "(kemi-stats profile generate)"
    }
    scalars = [_scalar(finder, name, notes) for name in request.scalars]
    if scalars:
        doc["scalars"] = scalars
    if tables:
        doc["tables"] = [_table(finder, t, columns[t.name], lookups[t.name], notes) for t in tables]
    return doc, notes


class _Finder:
    """Object lookup across the requested modules."""

    def __init__(
        self, modules: Mapping[str, Mapping[str, Any]], load: Loader, searched: str
    ) -> None:
        self.modules = modules
        self.load = load
        self.searched = searched

    def where(self) -> str:
        dirs = f" (searched {self.searched})" if self.searched else ""
        return ", ".join(self.modules) + dirs

    def get(self, name: str) -> MibObject | None:
        for module, doc in self.modules.items():
            obj = doc.get(name)
            if isinstance(obj, Mapping) and obj.get("class") == "objecttype":
                return MibObject(name, module, obj)
        return None

    def table(self, name: str) -> MibObject:
        obj = self.get(name)
        if obj is None:
            raise NotFoundError(f"table {name} not found in MIB {self.where()}")
        if obj.nodetype != "table":
            raise ValidationError(f"{name} in MIB {obj.module} is a {obj.nodetype}, not a table")
        return obj

    def row(self, table: MibObject) -> MibObject:
        for name, obj in self.modules[table.module].items():
            if (
                isinstance(obj, Mapping)
                and obj.get("nodetype") == "row"
                and str(obj.get("oid", "")).rpartition(".")[0] == table.oid
            ):
                return MibObject(name, table.module, obj)
        raise ValidationError(f"table {table.name} in MIB {table.module} has no row (entry)")

    def columns(self, table: MibObject) -> list[MibObject]:
        row = self.row(table)
        found = [
            MibObject(name, table.module, obj)
            for name, obj in self.modules[table.module].items()
            if isinstance(obj, Mapping)
            and obj.get("nodetype") == "column"
            and str(obj.get("oid", "")).rpartition(".")[0] == row.oid
        ]
        # in the table's order, not the JSON's alphabetical one
        return sorted(found, key=lambda c: int(c.oid.rpartition(".")[2]))

    def kind(self, obj: MibObject) -> ValueKind:
        syntax = obj.doc.get("syntax")
        if not isinstance(syntax, Mapping):
            return "other"
        return value_kind(syntax, self.modules[obj.module], self.load)


def _assign(
    finder: _Finder, tables: list[MibObject], names: Sequence[str], what: str
) -> dict[str, list[MibObject]]:
    # each column goes to the requested table it belongs to
    out: dict[str, list[MibObject]] = {t.name: [] for t in tables}
    members = {t.name: {c.name: c for c in finder.columns(t)} for t in tables}
    for name in names:
        owner = next((t for t, cols in members.items() if name in cols), None)
        if owner is not None:
            out[owner].append(members[owner][name])
            continue
        asked = ", ".join(t.name for t in tables) or "(no --table given)"
        obj = finder.get(name)
        if obj is None:
            raise NotFoundError(f"{what} {name} not found in MIB {finder.where()}")
        raise ValidationError(
            f"{what} {name} (a {obj.nodetype} of MIB {obj.module}, {obj.oid}) is not a column "
            f"of table {asked}"
        )
    return out


def _metric_type(finder: _Finder, obj: MibObject, notes: list[str]) -> str:
    kind = finder.kind(obj)
    if kind == "text":
        # the poller reads numeric text (laLoad "0.42") as a number, other text is dropped
        notes.append(f"{obj.name} is text: polled as a gauge where the agent's text is a number")
        return "gauge"
    if kind == "other":
        syntax = obj.doc.get("syntax", {}).get("type", "?")
        raise ValidationError(
            f"{obj.name} in MIB {obj.module} has syntax {syntax}, not a number or text"
        )
    return kind


def _scalar(finder: _Finder, name: str, notes: list[str]) -> dict[str, Any]:
    obj = finder.get(name)
    if obj is None:
        raise NotFoundError(f"scalar {name} not found in MIB {finder.where()}")
    if obj.nodetype != "scalar":
        raise ValidationError(f"{name} in MIB {obj.module} is a {obj.nodetype}, not a scalar")
    return {"name": name, "oid": obj.oid, "type": _metric_type(finder, obj, notes)}


def _table(
    finder: _Finder,
    table: MibObject,
    columns: list[MibObject],
    lookups: list[MibObject],
    notes: list[str],
) -> dict[str, Any]:
    indices = _index_names(finder.row(table))
    if not columns:
        # by default every readable number of the table, not its index
        columns = [
            c
            for c in finder.columns(table)
            if c.name not in indices
            and c.doc.get("maxaccess") in ("read-only", "read-write", "read-create")
            and finder.kind(c) in ("counter", "gauge")
        ]
        if not columns:
            raise ValidationError(
                f"table {table.name} in MIB {table.module} has no numeric column: give --column"
            )
    out: dict[str, Any] = {
        "name": table.name,
        "index_label": indices[0] if len(indices) == 1 else "index",
    }
    if lookups:
        out["lookups"] = [{"label": lk.name, "oid": lk.oid} for lk in lookups]
    out["columns"] = [
        {"name": c.name, "oid": c.oid, "type": _metric_type(finder, c, notes)} for c in columns
    ]
    return out


def _index_names(row: MibObject) -> list[str]:
    indices = row.doc.get("indices") or []
    return [str(i.get("object")) for i in indices if isinstance(i, Mapping)]
