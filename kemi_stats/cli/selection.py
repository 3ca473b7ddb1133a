"""Choosing registry entries from the command line: ``--match`` and ``--label`` filters,
``--set`` field changes, and the confirmation a bulk or destructive change asks for.

An entry is matched on a label set made of its name (``name``), its scalar fields as
``show`` prints them (``host``, ``interval: 1m``, ``severity``, ...; no secret, no URL)
and, for a target, its labels, which take precedence over a field of the same name.
``--match`` has the meaning it has in rules and silences (:mod:`kemi_stats.matching`);
``--label K=V`` is an exact ``K=V``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import click
import yaml

from kemi_stats.cli.context import fail
from kemi_stats.cli.kind_options import parse_pairs
from kemi_stats.matching import compile_matcher
from kemi_stats.registry.models import KINDS, Matcher, Target, parse_matcher
from kemi_stats.registry.store import Entry, dump_doc

__all__ = [
    "EntryFilter",
    "apply_sets",
    "confirm",
    "entry_labels",
    "filter_options",
    "interactive",
    "match_option",
]

Decorator = Callable[[Any], Any]


def _check_matcher(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> Any:
    for text in values:
        try:
            parse_matcher(text)
        except ValueError as exc:
            raise click.BadParameter(str(exc), ctx, param) from None
    return values


def match_option(help_text: str) -> Decorator:
    """``--match MATCHER`` (repeatable, ANDed), checked as the rules' matchers are."""
    return click.option(
        "--match",
        "matchers",
        multiple=True,
        metavar="MATCHER",
        callback=_check_matcher,
        help=help_text,
    )


def filter_options(kind: str) -> list[Decorator]:
    """The filters ``list`` takes for ``kind``."""
    options = [
        click.option(
            "--label",
            "filter_labels",
            multiple=True,
            metavar="K=V",
            help="Only entries with this label (or field) value (repeatable).",
        ),
        match_option("Only entries matching, e.g. site=~pangyo|seoul (repeatable, ANDed)."),
    ]
    if kind == "target":
        options += [
            click.option("--profile", "filter_profile", help="Only targets polling this profile."),
            click.option("--credential", "filter_credential", help="Only targets using it."),
            click.option(
                "--enabled/--disabled", "filter_enabled", default=None, help="Only these."
            ),
        ]
    return options


def entry_labels(entry: Entry) -> dict[str, str]:
    """The label set ``--match`` sees for an entry: its fields as ``show`` prints them
    (``interval`` is ``1m``, ``enabled`` is ``true``), never a secret or a URL."""
    out: dict[str, str] = {}
    hidden = _secret_fields(entry.kind)
    for key, value in dump_doc(entry.doc).items():
        if key in hidden or key.endswith("url"):
            continue  # a URL may hold a token (a scrape URL's query, a webhook's path)
        if isinstance(value, bool):
            out[key] = "true" if value else "false"
        elif isinstance(value, str | int | float):
            out[key] = str(value)
    if isinstance(entry.doc, Target):
        out.update(entry.doc.labels)
    out["name"] = entry.name
    return out


def _secret_fields(kind: str) -> frozenset[str]:
    return frozenset(KINDS[kind].model.secret_fields)


@dataclass(frozen=True)
class EntryFilter:
    """Which entries a command acts on; empty: all of them."""

    tests: tuple[Callable[[Mapping[str, str]], bool], ...] = ()
    profile: str | None = None
    credential: str | None = None
    enabled: bool | None = None
    #: what was asked, for messages (``site=pangyo, profile=if-mib``)
    text: str = ""

    @classmethod
    def from_options(
        cls,
        matchers: tuple[str, ...] = (),
        labels: tuple[str, ...] = (),
        profile: str | None = None,
        credential: str | None = None,
        enabled: bool | None = None,
    ) -> EntryFilter:
        pairs = parse_pairs(labels, "--label")
        # --label K=V is literal: V is no regex and no operator
        given = [parse_matcher(t) for t in matchers]
        given += [Matcher(label=k, op="=", value=v) for k, v in pairs.items()]
        tests = tuple(compile_matcher(m) for m in given)
        texts = [*matchers, *(f"{k}={v}" for k, v in pairs.items())]
        extra = [f"profile={profile}"] if profile else []
        extra += [f"credential={credential}"] if credential else []
        extra += [] if enabled is None else ["enabled" if enabled else "disabled"]
        return cls(tests, profile, credential, enabled, ", ".join([*texts, *extra]))

    @property
    def active(self) -> bool:
        return bool(self.text)

    def matches(self, entry: Entry) -> bool:
        doc = entry.doc
        if self.profile is not None and self.profile not in getattr(doc, "profiles", ()):
            return False
        if self.credential is not None and getattr(doc, "credential", None) != self.credential:
            return False
        if self.enabled is not None and getattr(doc, "enabled", True) != self.enabled:
            return False
        if not self.tests:
            return True
        labels = entry_labels(entry)
        return all(t(labels) for t in self.tests)


def apply_sets(kind: str, raw: dict[str, Any], sets: tuple[str, ...]) -> dict[str, Any]:
    """``raw`` with each ``--set field=value`` applied. The value is text, converted by the
    field's type as a flag's would be (``30s``, ``5``, ``false``); ``[a, b]`` or ``{k: v}``
    is a list or a mapping; empty unsets the field; ``labels.site=x`` sets one key of a
    mapping field."""
    fields = KINDS[kind].model.model_fields
    for key, text in parse_pairs(sets, "--set").items():
        head, dot, sub = key.partition(".")
        if head not in fields:
            raise click.BadParameter(
                f"{key!r}: {kind} has no field {head!r} (fields: {', '.join(fields)})",
                param_hint="--set",
            )
        if dot:
            current = raw.get(head)
            if current is not None and not isinstance(current, dict):
                raise click.BadParameter(
                    f"{key!r}: field {head!r} is not a mapping", param_hint="--set"
                )
            raw[head] = {**(current or {}), sub: text}
        elif not text:
            raw.pop(head, None)
        elif text[0] in "[{":
            try:
                raw[head] = yaml.safe_load(text)
            except yaml.YAMLError:
                raise click.BadParameter(
                    f"{key!r}: not a YAML list or mapping", param_hint="--set"
                ) from None
        else:
            raw[head] = text
    return raw


def interactive() -> bool:
    """Whether a person can answer a question (stdin and stderr are terminals)."""
    return sys.stdin.isatty() and sys.stderr.isatty()


def confirm(question: str, yes: bool, *, required: bool = False) -> None:
    """Ask ``question`` on a terminal unless ``yes``; abort on no. Off a terminal, go on,
    or refuse when ``required`` (a bulk change never happens unasked)."""
    if yes:
        return
    if interactive():
        if not click.confirm(question, default=False, err=True):
            fail("aborted: nothing changed")
        return
    if required:
        fail(f"{question.rstrip('?')}: not on a terminal, so give --yes to confirm")
