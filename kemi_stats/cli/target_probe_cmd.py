"""``kemi-stats target test`` and ``target walk``: poll a device once, or walk a subtree,
through the poller's own plan, collect and SNMP code (imported lazily: the CLI does
not load the poller to list targets)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import click

from kemi_stats.cli.context import CliContext, fail, pass_ctx
from kemi_stats.cli.output import output_option, print_document, print_records
from kemi_stats.errors import NotFoundError, ValidationError
from kemi_stats.redact import redact_urls
from kemi_stats.registry.models import Credential, Profile, Target
from kemi_stats.registry.oids import SYMBOLS, resolve_oid
from kemi_stats.registry.store import dump_doc, parse_doc

__all__ = ["register"]

#: where ``target walk`` starts without an OID: mib-2, as snmpwalk does
MIB2 = "1.3.6.1.2.1"


def _resolve(
    obj: CliContext,
    name: str | None,
    fields: dict[str, Any],
) -> tuple[str, Target]:
    """The registered target ``name`` (flags override its fields), or an ad-hoc one."""
    given = {
        k: list(v) if isinstance(v, tuple) else v for k, v in fields.items() if v not in (None, ())
    }
    if name is None:
        if not given.get("host") and not given.get("scrape_url"):
            fail("give a target's NAME, or --host (or --scrape-url) for an unregistered device")
        adhoc = str(given.get("host") or "adhoc")
        return adhoc, parse_doc("target", adhoc, given)
    entry = obj.registry.get("target", name)
    if not given:
        return name, entry.doc
    return name, parse_doc("target", name, {**dump_doc(entry.doc), **given})


def _credential(obj: CliContext, target: Target) -> Credential | None:
    if not target.credential:
        return None
    try:
        doc = obj.registry.get("credential", target.credential).doc
    except NotFoundError:
        raise ValidationError(
            f"credential {target.credential!r} does not exist", field="credential"
        ) from None
    assert isinstance(doc, Credential)
    return doc


def _profiles(obj: CliContext, target: Target) -> dict[str, Profile]:
    out: dict[str, Profile] = {}
    for pname in target.profiles:
        try:
            doc = obj.registry.get("profile", pname).doc
        except NotFoundError:
            raise ValidationError(f"profile {pname!r} does not exist", field="profiles") from None
        assert isinstance(doc, Profile)
        out[pname] = doc
    return out


_DEVICE_OPTIONS = [
    click.option("--host", help="Device address (an unregistered device, or override)."),
    click.option("--port", type=int, help="UDP port of the agent (default 161)."),
    click.option("--credential", help="Name of a credential entry."),
    click.option("--profile", "profiles", multiple=True, help="Profile name (repeatable)."),
    click.option("--scrape-url", help="A /metrics URL to scrape instead of SNMP."),
    click.option("--timeout", help="Timeout per request, e.g. 2s."),
    click.option("--retries", type=int, help="Retries per request."),
    click.option("--deadline", help="Deadline for the whole poll, e.g. 10s."),
]


def _device_options(fn: Any) -> Any:
    for opt in reversed(_DEVICE_OPTIONS):
        fn = opt(fn)
    return fn


@click.command("test")
@click.argument("name", required=False)
@_device_options
@output_option()
@pass_ctx
def target_test(obj: CliContext, name: str | None, output: str, **fields: Any) -> None:
    """Poll a target once, as the poller does, and print its samples (nothing is stored).

    NAME is a registered target; without it, --host, --credential and --profile
    describe a device not registered yet. Exits 1 with the poll's reason on failure."""
    from poller.errors import PollError
    from poller.one_shot import poll_once

    tname, target = _resolve(obj, name, fields)
    credential = None if target.scrapes else _credential(obj, target)
    profiles = {} if target.scrapes else _profiles(obj, target)
    try:
        outcome = asyncio.run(poll_once(tname, target, credential, profiles))
    except PollError as exc:
        # a scrape URL's user info or query may be a credential
        fail(f"target {tname}: {exc.reason}: {redact_urls(exc.detail)}")
    batch = outcome.batch
    rows = [
        {
            "metric": s.metric,
            "labels": dict(s.labels),
            "value": s.value,
            "kind": s.kind.value,
        }
        for s in batch.samples
    ]
    if output in ("json", "yaml"):
        summary = {
            "target": tname,
            "resource_id": batch.resource_id,
            "time_ms": batch.time_ms,
            "labels": batch.labels,
            "requests": outcome.requests,
            "seconds": round(outcome.seconds, 3),
            "samples": rows,
        }
        print_document(summary, output)
        return
    print_records(rows, ["metric", "labels", "value", "kind"], output)
    if output == "table":
        labels = ",".join(f"{k}={v}" for k, v in batch.labels.items())
        click.echo(
            f"target {tname} (resource {batch.resource_id}{', ' + labels if labels else ''}): "
            f"{len(rows)} samples, {outcome.requests} requests in {outcome.seconds:.3f} s",
            err=True,
        )


def _oid_names(
    obj: CliContext, mibs: tuple[str, ...], mib_dirs: tuple[Path, ...]
) -> dict[str, str]:
    """OID -> name: the registry's known names, then those of the MIBs given."""
    names = {oid: name for name, oid in SYMBOLS.items()}
    if mibs:
        from kemi_stats.mibs import MibLibrary

        names.update(MibLibrary.local(mib_dirs, obj.settings.data_dir).names(mibs))
    return names


def _root(text: str, names: dict[str, str]) -> str:
    """The numeric OID of ``text``: numeric, a name the registry knows, or one of a MIB
    given with --mib (``MODULE::`` prefix and instance suffix allowed)."""
    try:
        return resolve_oid(text)
    except ValueError as exc:
        head, dot, suffix = text.split("::")[-1].partition(".")
        by_name = {name: oid for oid, name in names.items()}
        if head in by_name:
            return by_name[head] + (dot + suffix if dot else "")
        fail(f"OID: {exc}; or give the MIB that defines it with --mib")


def _name_of(oid: str, names: dict[str, str]) -> str:
    """``ifHCInOctets.3`` for a known object's instance, else the numeric OID."""
    head = oid
    while "." in head:
        head, _, _ = head.rpartition(".")
        known = names.get(head)
        if known:
            return f"{known}{oid[len(head) :]}"
    return oid


@click.command("walk")
@click.argument("name", required=False)
@click.argument("oid", required=False)
@_device_options
@click.option("--mib", "mibs", multiple=True, help="Name objects from this MIB (repeatable).")
@click.option(
    "--mib-dir",
    "mib_dirs",
    multiple=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Also search this directory for MIB files (before /usr/share/snmp/mibs).",
)
@output_option()
@pass_ctx
def target_walk(
    obj: CliContext,
    name: str | None,
    oid: str | None,
    mibs: tuple[str, ...],
    mib_dirs: tuple[Path, ...],
    output: str,
    **fields: Any,
) -> None:
    """Walk a subtree of a device (default mib-2) and print OIDs, names, types and values.

    NAME is a registered target (or give --host and --credential); OID is numeric or
    a name the registry knows (sysUpTime, ifXTable, ...)."""
    from poller.errors import PollError
    from poller.one_shot import walk

    # `target walk --host H --credential C OID`, unless NAME is a target to override
    adhoc_oid = name is not None and oid is None and fields.get("host")
    if adhoc_oid and not obj.registry.exists("target", str(name)):
        name, oid = None, name
    # a walk reads no profile; an SNMP target's model wants one, so name any
    tname, target = _resolve(obj, name, {**fields, "profiles": () if name else ("walk",)})
    if target.scrapes:
        fail(f"target {tname} is a scrape target: walk reads SNMP agents only")
    credential = _credential(obj, target)
    if credential is None:
        fail(f"target {tname}: give --credential (walk needs SNMP credentials)")
    names = _oid_names(obj, mibs, mib_dirs)
    root = _root(oid, names) if oid else MIB2
    try:
        outcome = asyncio.run(walk(tname, target, credential, root))
    except PollError as exc:
        fail(f"target {tname}: {exc.reason}: {exc.detail}")
    rows = [
        {"oid": o, "name": _name_of(o, names), "type": t, "value": v} for o, (t, v) in outcome.rows
    ]
    print_records(rows, ["oid", "name", "type", "value"], output)
    if output == "table":
        click.echo(
            f"{len(rows)} objects under {root}, {outcome.requests} requests "
            f"in {outcome.seconds:.3f} s",
            err=True,
        )


def register(cli: click.Group) -> None:
    group = cli.commands["target"]
    assert isinstance(group, click.Group)
    group.add_command(target_test)
    group.add_command(target_walk)
