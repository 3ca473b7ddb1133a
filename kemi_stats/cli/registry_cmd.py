"""``kemi-stats <kind> add|list|show|update|remove`` for every registry kind.

Every write is validated (the typed model, then references to other entries) before
anything is written; an error is one line naming the field and the value.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import click
import yaml

from kemi_stats.cli.context import CliContext, fail, pass_ctx
from kemi_stats.cli.kind_options import KIND_CLIS, KindCli, new_token_secret
from kemi_stats.cli.output import (
    OUTPUT_OPTION,
    SHOW_OUTPUT_OPTION,
    any_resource_warning,
    print_entries,
)
from kemi_stats.cli.selection import (
    EntryFilter,
    apply_sets,
    confirm,
    filter_options,
    match_option,
)
from kemi_stats.errors import RegistryError, ValidationError
from kemi_stats.redact import is_redacted, redact_url
from kemi_stats.registry.models import KINDS, Receiver, Token, token_hash
from kemi_stats.registry.store import MASK, Entry, Registry, dump_doc, parse_doc

__all__ = ["check_refs", "check_secret", "register"]

#: kind -> (kind that refers to it, field)
_REFERRED_BY: dict[str, list[tuple[str, str]]] = {}
for _k in KIND_CLIS.values():
    for _field, _target in _k.refs:
        _REFERRED_BY.setdefault(_target, []).append((_k.kind, _field))


def load_fields(path: str | None, kind: str) -> dict[str, Any]:
    """The fields in ``path``; the output of ``show -o yaml`` (``NAME: {fields}``) as well."""
    if not path:
        return {}
    try:
        data = yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        fail(f"--file {path}: {exc.strerror}")
    except yaml.YAMLError as exc:
        fail(f"--file {path}: not YAML/JSON: {str(exc).splitlines()[0]}")
    if not isinstance(data, dict):
        fail(f"--file {path}: expected a mapping of fields")
    fields = KINDS[kind].model.model_fields
    if len(data) == 1:
        ((key, inner),) = data.items()
        if key not in fields and isinstance(inner, dict):
            return inner  # one entry as 'show' prints it, under its name
    return data


def check_refs(
    registry: Registry, kind: str, name: str, doc: Any, known: dict[str, set[str]] | None = None
) -> None:
    """Raise ValidationError if ``doc`` names an entry (credential, profile, receiver) that does not exist."""
    for field, ref_kind in KIND_CLIS[kind].refs:
        value = getattr(doc, field)
        for ref in value if isinstance(value, list) else [] if value is None else [value]:
            exists = ref in known[ref_kind] if known is not None else registry.exists(ref_kind, ref)
            if not exists:
                raise ValidationError(
                    f"{kind} {name}: field {field!r}: {ref_kind} {ref!r} does not exist",
                    field=field,
                )


def check_secret(
    kind: str, name: str, doc: Any, option: str = "--secret", *, stored: bool = False
) -> None:
    """Raise ValidationError if a receiver is about to be written with a weak signing secret,
    or a push token without the resources it may write.

    Only writes are checked (add, update, apply), not loads: receivers stored with a short
    secret keep delivering until someone changes them; ``stored`` says the weak secret is
    the one kept from before, so the message asks for a new one."""
    if isinstance(doc, Token):
        token_problem = doc.write_problem()
        if token_problem:
            raise ValidationError(f"{kind} {name}: {token_problem}", field="resource_prefix")
        return
    problem = doc.secret_problem() if isinstance(doc, Receiver) else None
    if not problem:
        return
    if stored:
        message = f"the stored secret is weak ({problem}): give a new one with {option}"
    else:
        message = f"{option} {problem}"
    raise ValidationError(f"{kind} {name}: {message}", field="secret")


def _keep_stored_secrets(kind: str, name: str, raw: dict[str, Any], stored: Any) -> None:
    """Put back the stored secret where ``raw`` has the mask (a file made from ``show``
    output), as ``apply`` does; refuse a mask with nothing stored behind it."""
    for field in KINDS[kind].model.secret_fields:
        if raw.get(field) != MASK:
            continue
        kept = getattr(stored, field, None) if stored is not None else None
        if not kept:
            raise ValidationError(
                f"{kind} {name}: field {field!r} is masked ({MASK}, as list/show print it) "
                "and no stored value exists: give the secret",
                field=field,
            )
        raw[field] = kept


def _keep_stored_urls(kind: str, name: str, raw: dict[str, Any], stored: Any) -> None:
    """Put back the stored URLs where ``raw`` has their redacted form (a file made from
    ``show`` output); refuse a redacted URL with nothing stored behind it."""
    if kind != "receiver":
        return
    known = [stored.url, *stored.alertmanager_urls] if isinstance(stored, Receiver) else []
    by_redacted = {redact_url(u): u for u in known if u}
    ambiguous = {r for r in by_redacted if sum(redact_url(u) == r for u in known if u) > 1}
    urls = [raw.get("url") or "", *raw.get("alertmanager_urls", [])]
    for url in urls:
        if is_redacted(url) and (url not in by_redacted or url in ambiguous):
            why = "stands for several stored URLs" if url in ambiguous else "is redacted"
            raise ValidationError(
                f"{kind} {name}: URL {url} {why} (as list/show print it): give the full URL",
                field="url",
            )
    if raw.get("url"):
        raw["url"] = by_redacted.get(raw["url"], raw["url"])
    if raw.get("alertmanager_urls"):
        raw["alertmanager_urls"] = [by_redacted.get(u, u) for u in raw["alertmanager_urls"]]


def _make_group(kc: KindCli) -> click.Group:
    kind = kc.kind

    @click.group(name=kind, help=f"Manage {KINDS[kind].plural} in the registry.")
    def group() -> None:
        pass

    def with_options(fn: Any) -> Any:
        for opt in reversed(kc.options):
            fn = opt(fn)
        return fn

    name_arg = click.argument("name", required=kc.auto_name is None)

    @group.command("add", help=f"Add a {kind} (fails if the name exists).")
    @name_arg
    @click.option(
        "--file", "-f", "file", type=click.Path(), help="YAML/JSON document to start from."
    )
    @with_options
    @pass_ctx
    def add(obj: CliContext, name: str | None, file: str | None, **values: Any) -> None:
        name = name or (kc.auto_name() if kc.auto_name else None)
        assert name is not None
        raw = _mib_names(obj, kind, kc.to_doc(values, load_fields(file, kind)), values)
        secret = None
        if kind == "token":
            secret = new_token_secret()
            raw["hash"] = token_hash(secret)
        _keep_stored_urls(kind, name, raw, None)
        _keep_stored_secrets(kind, name, raw, None)
        doc = parse_doc(kind, name, raw)
        check_refs(obj.registry, kind, name, doc)
        check_secret(kind, name, doc)
        obj.registry.create(kind, name, doc)
        click.echo(f"{kind} {name} added")
        if secret:
            click.echo(f"secret (shown once, store it now): {secret}")

    if kind == "token":
        group.add_command(add, "create")

    @group.command(
        "update", help=f"Change fields of an existing {kind}, or of every one --match selects."
    )
    @click.argument("name", required=False)
    @click.option("--file", "-f", "file", type=click.Path(), help="YAML/JSON fields to set.")
    @with_options
    @match_option(f"Update every {kind} matching (repeatable, ANDed) instead of NAME.")
    @click.option(
        "--set",
        "sets",
        multiple=True,
        metavar="FIELD=VALUE",
        help="Set a field (value as YAML: 30s, 5, false; labels.K=V for one label).",
    )
    @click.option("--yes", "-y", is_flag=True, help="Do not ask before a bulk update.")
    @pass_ctx
    def update(
        obj: CliContext,
        name: str | None,
        file: str | None,
        matchers: tuple[str, ...],
        sets: tuple[str, ...],
        yes: bool,
        **values: Any,
    ) -> None:
        names = _chosen(obj, kind, name, matchers)
        changes = load_fields(file, kind)
        # many entries: read the names they may refer to once, not once per entry
        known = None
        if len(names) > 1:
            known = {k: {e.name for e in obj.registry.list(k)} for _, k in kc.refs}
        docs: list[tuple[str, str, Any]] = []
        for n, current in names:
            raw = dump_doc(current.doc)
            raw.update(changes)
            raw = apply_sets(kind, raw, sets)
            raw = _mib_names(obj, kind, kc.to_doc(values, raw), values)
            _keep_stored_urls(kind, n, raw, current.doc)
            _keep_stored_secrets(kind, n, raw, current.doc)
            doc = parse_doc(kind, n, raw)
            check_refs(obj.registry, kind, n, doc, known)
            # a receiver stored with a weak secret is given a proper one at its next change
            kept = getattr(doc, "secret", None) == getattr(current.doc, "secret", None)
            check_secret(kind, n, doc, stored=kept)
            docs.append((kind, n, doc))
        if name is None:
            confirm(
                f"update {len(docs)} {_plural(kind, len(docs))} matching {', '.join(matchers)}?",
                yes,
                required=True,
            )
        # all or nothing, and only over what was read: an entry changed meanwhile (while
        # the question was on the screen) fails the whole update rather than being lost
        obj.registry.write_many(docs, unchanged_since={(kind, n): e.mod_revision for n, e in names})
        if name is not None:
            click.echo(f"{kind} {name} updated")
        else:
            click.echo(f"{len(docs)} {_plural(kind, len(docs))} updated")

    def with_filters(fn: Any) -> Any:
        for opt in reversed(filter_options(kind)):
            fn = opt(fn)
        return fn

    @group.command("list", help=f"List {KINDS[kind].plural} (all, or those the filters select).")
    @with_filters
    @OUTPUT_OPTION
    @pass_ctx
    def list_(
        obj: CliContext,
        output: str | None,
        matchers: tuple[str, ...],
        filter_labels: tuple[str, ...],
        **filters: Any,
    ) -> None:
        chosen = EntryFilter.from_options(
            matchers,
            filter_labels,
            filters.get("filter_profile"),
            filters.get("filter_credential"),
            filters.get("filter_enabled"),
        )
        invalid: list[str] = []
        read = 0

        def counted(items: Iterable[Entry]) -> Iterator[Entry]:
            nonlocal read
            for entry in items:
                read += 1
                yield entry

        # read, filtered and printed a page at a time, in name order (etcd's key order)
        entries: Iterable[Entry] = counted(
            obj.registry.iter_entries(kind, on_invalid=lambda key, reason: invalid.append(reason))
        )
        if chosen.active:
            entries = filter(chosen.matches, entries)
        kept: list[Entry] = []
        if kind in ("counters", "token"):  # few; counters merge the built-in ones
            kept = list(entries)
            if kind == "counters":
                kept += [e for e in _builtin_counters({e.name for e in kept}) if chosen.matches(e)]
            entries = sorted(kept, key=lambda e: e.name)
        try:
            print_entries(kind, entries, output or "table")
        except RegistryError as exc:
            if read:  # some of it is printed already: say that it is not all
                fail(f"{exc} (the list above is incomplete: it stopped after {read} entries)")
            raise
        for reason in invalid:
            click.echo(f"warning: skipped invalid entry: {reason}", err=True)
        warning = any_resource_warning(kept) if kind == "token" else None
        if warning:
            click.echo(warning, err=True)

    @group.command("show", help=f"Show one {kind} (secrets masked).")
    @click.argument("name")
    @SHOW_OUTPUT_OPTION
    @pass_ctx
    def show(obj: CliContext, name: str, output: str | None) -> None:
        print_entries(kind, [obj.registry.get(kind, name)], output or "yaml")

    @group.command("remove", help=f"Remove a {kind}, or every one --match selects.")
    @click.argument("name", required=False)
    @match_option(f"Remove every {kind} matching (repeatable, ANDed) instead of NAME.")
    @click.option("--force", is_flag=True, help="Remove even if other entries refer to it.")
    @click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
    @pass_ctx
    def remove(
        obj: CliContext, name: str | None, matchers: tuple[str, ...], force: bool, yes: bool
    ) -> None:
        chosen = _chosen(obj, kind, name, matchers)
        names = [n for n, _ in chosen]
        if not force:
            for other_kind, field in _REFERRED_BY.get(kind, []):
                others = obj.registry.list(other_kind)
                for n in names:
                    users = [e.name for e in others if _refers(e, field, n)]
                    if users:
                        fail(
                            f"{kind} {n} is used by {other_kind} {', '.join(users[:5])} (use --force)"
                        )
        if name is not None:
            confirm(f"remove {kind} {name}?", yes)
        else:
            confirm(
                f"remove {len(names)} {_plural(kind, len(names))} matching {', '.join(matchers)}?",
                yes,
                required=True,
            )
        obj.registry.write_many(
            (),
            [(kind, n) for n in names],
            unchanged_since={(kind, n): e.mod_revision for n, e in chosen},
        )
        if name is not None:
            click.echo(f"{kind} {name} removed")
        else:
            click.echo(f"{len(names)} {_plural(kind, len(names))} removed")

    return group


def _mib_names(
    obj: CliContext, kind: str, raw: dict[str, Any], values: dict[str, Any]
) -> dict[str, Any]:
    """A profile's object names resolved through the MIBs given with --mib, now: what is
    stored, and all the poller sees, is numeric."""
    if kind != "profile" or not values.get("mibs"):
        return raw
    from kemi_stats.mibs import MibLibrary, resolve_profile_names

    library = MibLibrary.local(values.get("mib_dirs") or (), obj.settings.data_dir)
    return resolve_profile_names(raw, library.oids(values["mibs"]))


def _plural(kind: str, count: int) -> str:
    return kind if count == 1 else KINDS[kind].plural


def _chosen(
    obj: CliContext, kind: str, name: str | None, matchers: tuple[str, ...]
) -> list[tuple[str, Entry]]:
    """The entry NAME, or every entry ``--match`` selects (exactly one of the two given)."""
    if name is not None and matchers:
        raise click.UsageError("give NAME or --match, not both")
    if name is not None:
        return [(name, obj.registry.get(kind, name))]
    if not matchers:
        raise click.UsageError(f"give the {kind}'s NAME, or --match to choose several")
    chosen = EntryFilter.from_options(matchers)
    matched = [(e.name, e) for e in obj.registry.list(kind) if chosen.matches(e)]
    if not matched:
        fail(f"no {kind} matches {', '.join(matchers)}: nothing changed")
    return sorted(matched, key=lambda ne: ne[0])


def _refers(entry: Entry, field: str, name: str) -> bool:
    value = getattr(entry.doc, field)
    return name in value if isinstance(value, list) else value == name


def register(cli: click.Group) -> None:
    for kc in KIND_CLIS.values():
        cli.add_command(_make_group(kc))


def _builtin_counters(overridden: set[str]) -> list[Entry]:
    """The built-in counter sets no registry entry replaces, marked as built-in."""
    from kemi_stats.registry.builtin import load_builtin_counters

    return [
        Entry(
            "counters",
            name,
            doc.model_copy(update={"description": f"(built-in) {doc.description}"}),
        )
        for name, doc in load_builtin_counters().items()
        if name not in overridden
    ]
