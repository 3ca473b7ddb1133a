"""The per-kind flags of ``add``/``update`` and how they map onto a registry document.

Each flag's value is ``None`` when not given, so ``update`` changes only what is named.
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from kemi_stats.cli.secret_input import HELP, secret_value
from kemi_stats.durations import parse_duration

__all__ = ["KIND_CLIS", "KindCli", "parse_pairs"]

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


def parse_pairs(values: tuple[str, ...], option: str) -> dict[str, str]:
    """``("a=1", "b=2")`` -> ``{"a": "1", "b": "2"}``; a UsageError names the bad one."""
    out: dict[str, str] = {}
    for v in values:
        key, sep, val = v.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{v!r} is not key=value", param_hint=option)
        out[key.strip()] = val
    return out


@dataclass
class KindCli:
    """How one kind's flags become a document, and which other entries it refers to."""

    kind: str
    options: list[Decorator]
    to_doc: Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]]
    #: (field, referenced kind) pairs checked to exist before a write
    refs: list[tuple[str, str]] = field(default_factory=list)
    auto_name: Callable[[], str] | None = None


def _set(doc: dict[str, Any], key: str, value: Any) -> None:
    if value is not None and value != ():
        doc[key] = value


def _merge_pairs(doc: dict[str, Any], key: str, values: tuple[str, ...], option: str) -> None:
    if values:
        doc[key] = {**doc.get(key, {}), **parse_pairs(values, option)}


def _fill(
    doc: dict[str, Any],
    v: dict[str, Any],
    scalars: tuple[str, ...],
    lists: tuple[str, ...] = (),
    pairs: tuple[tuple[str, str], ...] = (),
) -> dict[str, Any]:
    """Copy the given options into ``doc``: scalars if set, lists if given, K=V pairs merged."""
    for key in scalars:
        _set(doc, key, v[key])
    for key in lists:
        if v[key]:
            doc[key] = list(v[key])
    for key, option in pairs:
        _merge_pairs(doc, key, v[key], option)
    return doc


LABEL = click.option("--label", "labels", multiple=True, metavar="K=V", help="Label (repeatable).")

# --- credential ------------------------------------------------------------------------


def _credential_doc(v: dict[str, Any], doc: dict[str, Any]) -> dict[str, Any]:
    if v["community"] is not None:
        doc.setdefault("version", "2c")
    if v["v3_user"] is not None:
        doc["version"] = "3"
        doc["user"] = v["v3_user"]
    _set(doc, "version", v["snmp_version"])
    _set(doc, "community", v["community"])
    _set(doc, "auth", v["auth"])
    _set(doc, "auth_key", v["auth_key"])
    _set(doc, "priv", v["priv"])
    _set(doc, "priv_key", v["priv_key"])
    _set(doc, "context", v["context"])
    return doc


CREDENTIAL = KindCli(
    "credential",
    [
        click.option("--community", callback=secret_value, help=f"SNMP v1/v2c community (implies --snmp-version 2c) {HELP}."),
        click.option("--snmp-version", type=click.Choice(["1", "2c", "3"]), help="SNMP version."),
        click.option("--v3-user", help="SNMPv3 user name (implies --snmp-version 3)."),
        click.option("--auth", type=click.Choice(["MD5", "SHA", "SHA224", "SHA256", "SHA384", "SHA512"], case_sensitive=False), callback=lambda c, p, v: v.upper() if v else v, help="v3 auth protocol."),
        click.option("--auth-key", callback=secret_value, help=f"v3 auth passphrase (at least 8 characters) {HELP}."),
        click.option("--priv", type=click.Choice(["DES", "AES", "AES128", "AES192", "AES256"], case_sensitive=False), callback=lambda c, p, v: v.upper() if v else v, help="v3 privacy protocol."),
        click.option("--priv-key", callback=secret_value, help=f"v3 privacy passphrase (at least 8 characters) {HELP}."),
        click.option("--v3-context", "context", help="SNMPv3 context name."),
    ],
    _credential_doc,
)  # fmt: skip

# --- target --------------------------------------------------------------------------------


def _target_doc(v: dict[str, Any], doc: dict[str, Any]) -> dict[str, Any]:
    scalars = ("host", "port", "credential", "interval", "deadline", "timeout", "retries",
               "max_repetitions", "bulk", "resource_id", "enabled", "scrape_url",
               "bearer_token_file", "basic_user", "basic_password_file", "ca_file",
               "sample_limit")  # fmt: skip
    return _fill(doc, v, scalars, ("profiles",), (("labels", "--label"),))


TARGET = KindCli(
    "target",
    [
        click.option("--host", help="IP address or hostname of the agent (scrape: the URL's)."),
        click.option("--port", type=int, help="UDP port of the agent (default 161)."),
        click.option("--credential", help="Name of a credential entry."),
        click.option("--profile", "profiles", multiple=True, help="Profile name (repeatable)."),
        click.option("--interval", help="Poll interval, e.g. 60s."),
        click.option("--deadline", help="Deadline for the whole poll, e.g. 10s."),
        click.option("--timeout", help="Timeout per request, e.g. 2s."),
        click.option("--retries", type=int, help="Retries per request within the deadline."),
        click.option("--max-repetitions", type=int, help="GETBULK max-repetitions."),
        click.option(
            "--bulk/--no-bulk", default=None, help="Walk tables with GETBULK (or GETNEXT)."
        ),
        click.option("--resource-id", help="Resource id of its samples (default: the name)."),
        click.option("--enabled/--disabled", default=None, help="Poll it or not."),
        LABEL,
        click.option(
            "--scrape-url",
            metavar="URL",
            help="Scrape this Prometheus /metrics endpoint instead of polling SNMP "
            "(no credential or profiles).",
        ),
        click.option(
            "--bearer-token-file",
            metavar="FILE",
            help="Scrape with the bearer token in FILE (read by the worker).",
        ),
        click.option("--basic-user", help="Scrape with HTTP basic auth as this user."),
        click.option(
            "--basic-password-file",
            metavar="FILE",
            help="The basic auth password, in FILE (read by the worker).",
        ),
        click.option("--ca-file", metavar="FILE", help="CA bundle for an https:// scrape URL."),
        click.option(
            "--sample-limit", type=int, help="A scrape with more samples fails (default 50000)."
        ),
    ],
    _target_doc,
    refs=[("credential", "credential"), ("profiles", "profile")],
)

# --- profile --------------------------------------------------------------------------------


def _profile_doc(v: dict[str, Any], doc: dict[str, Any]) -> dict[str, Any]:
    _set(doc, "description", v["description"])
    for spec in v["scalars"]:
        name, _, rest = spec.partition("=")
        # the type is the last ':' part, and only a type: MODULE::name stays whole
        oid, colon, typ = rest.rpartition(":")
        if not colon or typ not in ("gauge", "counter"):
            oid, typ = rest, ""
        if not name or not oid:
            raise click.BadParameter(
                f"{spec!r} is not NAME=OID[:gauge|counter]", param_hint="--scalar"
            )
        scalars = [s for s in doc.get("scalars", []) if s.get("name") != name]
        scalars.append({"name": name, "oid": oid, "type": typ or "gauge"})
        doc["scalars"] = scalars
    return doc


PROFILE = KindCli(
    "profile",
    [
        click.option("--description", help="What the profile collects."),
        click.option("--scalar", "scalars", multiple=True, metavar="NAME=OID[:TYPE]",
                     help="Add or replace a scalar metric, e.g. sysUpTime=1.3.6.1.2.1.1.3:gauge."),
        click.option("--mib", "mibs", multiple=True, metavar="MODULE",
                     help="Resolve object names (UCD-SNMP-MIB::memTotalReal) through this MIB, "
                          "offline, now (repeatable; docs/mibs.md)."),
        click.option("--mib-dir", "mib_dirs", multiple=True,
                     type=click.Path(exists=True, file_okay=False, path_type=Path),
                     help="Also search this directory for MIB files."),
    ],
    _profile_doc,
)  # fmt: skip

# --- derived --------------------------------------------------------------------------------


def _derived_doc(v: dict[str, Any], doc: dict[str, Any]) -> dict[str, Any]:
    scalars = ("expr", "window", "resource_prefix", "max_rate", "description")
    return _fill(doc, v, scalars, ("group_by",), (("labels", "--label"),))


DERIVED = KindCli(
    "derived",
    [
        click.option("--expr", help="Expression, e.g. 'rate(ifHCInOctets) * 8'."),
        click.option("--window", help="Tumbling window for avg/min/max/sum/count/p95, e.g. 5m."),
        click.option(
            "--group-by",
            "group_by",
            multiple=True,
            help="Aggregate across resources by this label.",
        ),
        click.option("--resource-prefix", help="Only resources whose id starts with this."),
        click.option("--max-rate", type=float, help="Drop rates above this (counted)."),
        click.option("--description", help="What it means."),
        LABEL,
    ],
    _derived_doc,
)

# --- rule -------------------------------------------------------------------------------------

_OPS = {
    "above": ">",
    "at_least": ">=",
    "below": "<",
    "at_most": "<=",
    "equals": "==",
    "not_equals": "!=",
}


def _condition(v: dict[str, Any], prefix: str) -> dict[str, Any] | None:
    given = [(op, v[prefix + name]) for name, op in _OPS.items() if v[prefix + name] is not None]
    if len(given) > 1:
        flags = ", ".join(
            f"--{(prefix + n).replace('_', '-')}" for n in _OPS if v[prefix + n] is not None
        )
        raise click.UsageError(f"give one of {flags}, not several")
    if not given:
        return None
    return {"op": given[0][0], "threshold": given[0][1]}


def _rule_doc(v: dict[str, Any], doc: dict[str, Any]) -> dict[str, Any]:
    _fill(
        doc, v, ("metric", "resource_prefix", "clear_for", "no_data", "severity", "repeat_interval")
    )
    _set(doc, "for", v["for_"])
    cond = _condition(v, "")
    if cond:
        doc["condition"] = cond
    clear = _condition(v, "clear_")
    if clear:
        doc["clear"] = clear
    pairs = (("labels", "--label"), ("annotations", "--annotation"))
    return _fill(doc, v, (), ("match", "receivers", "group_by"), pairs)


def _threshold_options(prefix: str, what: str) -> list[Decorator]:
    return [
        click.option(f"--{prefix}{name.replace('_', '-')}", f"{prefix.replace('-', '_')}{name}",
                     type=float, help=f"{what} when the value is {op} this.")
        for name, op in _OPS.items()
    ]  # fmt: skip


RULE = KindCli(
    "rule",
    [
        click.option("--metric", help="Metric name the rule watches."),
        click.option("--match", multiple=True, metavar="MATCHER",
                     help="Label matcher: site=pangyo, resource=~'net:.*', k!=v, k!~re (repeatable)."),
        click.option("--resource-prefix", help="Only resources whose id starts with this."),
        *_threshold_options("", "Fire"),
        click.option("--for", "for_", help="How long the condition must hold before firing, e.g. 2m."),
        *_threshold_options("clear-", "Clear"),
        click.option("--clear-for", help="How long the clear condition must hold, e.g. 1m."),
        click.option("--no-data", help="Fire when a matched series sends nothing this long."),
        click.option("--severity", type=click.Choice(["critical", "warning", "info"])),
        click.option("--receiver", "receivers", multiple=True, help="Receiver name (repeatable)."),
        click.option("--group-by", "group_by", multiple=True, help="Group notifications by label."),
        click.option("--repeat-interval", help="Notify again while firing, e.g. 4h."),
        click.option("--annotation", "annotations", multiple=True, metavar="K=TEMPLATE",
                     help="Annotation template, e.g. summary='{resource} at {value}'."),
        LABEL,
    ],
    _rule_doc,
    refs=[("receivers", "receiver")],
)  # fmt: skip

# --- receiver -----------------------------------------------------------------------------------


def _receiver_doc(v: dict[str, Any], doc: dict[str, Any]) -> dict[str, Any]:
    scalars = ("url", "format", "secret", "previous_secret", "timeout", "max_retries",
               "backoff_initial", "backoff_max", "max_elapsed", "group_wait", "resend_interval",
               "basic_user", "basic_password", "bearer_token", "ca_file")  # fmt: skip
    return _fill(doc, v, scalars, ("alertmanager_urls",), pairs=(("headers", "--header"),))


RECEIVER = KindCli(
    "receiver",
    [
        click.option("--url", help="Webhook URL (http or https)."),
        click.option(
            "--format",
            type=click.Choice(["kemi", "alertmanager"]),
            help="Webhook payload: kemi's (default) or Alertmanager's webhook JSON (version 4).",
        ),
        click.option(
            "--alertmanager-url", "alertmanager_urls", multiple=True, metavar="URL",
            help="Send to Alertmanager's API instead of a webhook (repeat for an HA set).",
        ),
        click.option("--resend-interval",
                     help="Alertmanager: send firing alerts again this often (default 1m)."),
        click.option(
            "--secret", callback=secret_value,
            help=f"Webhook signing secret, at least 16 bytes: whsec_<base64> or any text {HELP}.",
        ),
        click.option(
            "--previous-secret", callback=secret_value,
            help=f"While rotating: also sign with this (old) secret; '' when done {HELP}.",
        ),
        click.option("--basic-user", help="HTTP basic auth user."),
        click.option("--basic-password", callback=secret_value, help=f"HTTP basic auth password {HELP}."),
        click.option("--bearer-token", callback=secret_value, help=f"HTTP bearer token {HELP}."),
        click.option("--ca-file", help="CA bundle (PEM) for https with a private CA."),
        click.option("--timeout", help="Request timeout, e.g. 5s."),
        click.option("--max-retries", type=int, help="Retries before dead-lettering."),
        click.option("--backoff-initial", help="First retry delay, e.g. 1s."),
        click.option("--backoff-max", help="Longest retry delay, e.g. 60s."),
        click.option("--max-elapsed", help="Give up after retrying this long, e.g. 10m."),
        click.option("--group-wait", help="Wait this long to group alerts, e.g. 2s."),
        click.option(
            "--header", "headers", multiple=True, metavar="K=V", help="Extra HTTP header."
        ),
    ],
    _receiver_doc,
)  # fmt: skip

# --- token ----------------------------------------------------------------------------------------


def _token_doc(v: dict[str, Any], doc: dict[str, Any]) -> dict[str, Any]:
    doc = _fill(
        doc,
        v,
        ("scope", "resource_prefix", "resource_template", "rate_limit", "description"),
        ("counters",),
    )
    if v.get("any_resource") is not None:
        doc["any_resource"] = v["any_resource"]
    return doc


TOKEN = KindCli(
    "token",
    [
        click.option(
            "--scope",
            type=click.Choice(["push", "console"]),
            help="push (default): write samples; console: sign in to a web console, never push.",
        ),
        click.option(
            "--resource-prefix",
            help="Resources this push token may write, e.g. host:web- (required, or --any-resource).",
        ),
        click.option(
            "--any-resource/--no-any-resource",
            default=None,
            help="Let this push token write every resource, polled devices' too (listed loudly).",
        ),
        click.option(
            "--resource-template",
            metavar="TEMPLATE",
            help="How a point's resource id is built from its tags, e.g. 'host:{host}' "
            "(default {host,instance|noport,host.name}).",
        ),
        click.option(
            "--counter",
            "counters",
            multiple=True,
            metavar="GLOB",
            help="Line-protocol metrics (measurement_field) that are counters (repeatable).",
        ),
        click.option("--rate-limit", type=float, help="Samples per second (0: no limit)."),
        click.option("--description", help="Who uses it."),
    ],
    _token_doc,
)


def new_token_secret() -> str:
    """A fresh push-token secret (shown once)."""
    return "kemi_" + secrets.token_urlsafe(32)


# --- counters ---------------------------------------------------------------------------------------


def _counters_doc(v: dict[str, Any], doc: dict[str, Any]) -> dict[str, Any]:
    return _fill(doc, v, ("kind", "enabled", "description"), ("metrics",))


COUNTERS = KindCli(
    "counters",
    [
        click.option(
            "--metric",
            "metrics",
            multiple=True,
            metavar="GLOB",
            help="Line-protocol metric (measurement_field glob) that is a counter (repeatable).",
        ),
        click.option(
            "--kind",
            type=click.Choice(["counter64", "counter32", "float_counter"]),
            help="Counter kind: integers that wrap at 2^64 or 2^32, or a float that only resets.",
        ),
        click.option("--enabled/--disabled", default=None, help="Turn the set on or off."),
        click.option("--description", help="What these counters are."),
    ],
    _counters_doc,
)

# --- silence ---------------------------------------------------------------------------------------


def _silence_doc(v: dict[str, Any], doc: dict[str, Any]) -> dict[str, Any]:
    if v["match"]:
        doc["match"] = list(v["match"])
    now = time.time()
    if v["starts"] is not None:
        doc["starts_at"] = now + parse_duration(v["starts"])
    doc.setdefault("starts_at", now)
    if v["duration"] is not None:
        try:
            doc["ends_at"] = doc["starts_at"] + parse_duration(v["duration"])
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--duration") from None
    _set(doc, "reason", v["reason"])
    _set(doc, "created_by", v["created_by"])
    return doc


SILENCE = KindCli(
    "silence",
    [
        click.option(
            "--match", multiple=True, metavar="MATCHER", help="Label matcher (repeatable)."
        ),
        click.option("--starts", help="Start this long from now (default: now)."),
        click.option("--duration", help="How long it lasts, e.g. 2h."),
        click.option("--comment", "--reason", "reason", help="Why (shown with silenced alerts)."),
        click.option("--author", "--created-by", "created_by", help="Who set it."),
    ],
    _silence_doc,
    auto_name=lambda: uuid.uuid4().hex[:12],
)

KIND_CLIS: dict[str, KindCli] = {
    k.kind: k
    for k in (CREDENTIAL, TARGET, PROFILE, DERIVED, RULE, RECEIVER, TOKEN, COUNTERS, SILENCE)
}
