"""Push tokens: ``Authorization: Bearer <secret>`` or ``Token <secret>`` (as Influx clients send).

InfluxDB 1.x clients may instead send ``Basic base64(user:<secret>)`` or ``?p=<secret>``
on ``/write``; the password is the token there.

The registry stores only ``sha256(secret)`` per token (kind ``token``); this index
follows the registry's live view, so adding, changing or removing a token takes
effect without a restart, and so do counter sets (kind ``counters``). 401: no or
unknown token.
"""

from __future__ import annotations

import base64
import logging
import threading
from collections.abc import Mapping

from aggregator.counters import CounterKinds, effective_sets
from aggregator.grant import Grant
from aggregator.rejection import Rejection
from kemi_stats.registry.builtin import load_builtin_counters
from kemi_stats.registry.live import Change, LiveView
from kemi_stats.registry.models import Counters, Token, token_hash
from kemi_stats.resource_template import ResourceTemplate

__all__ = ["KINDS", "TokenIndex", "parse_authorization", "token_hash"]

log = logging.getLogger("aggregator.auth")

#: the registry kinds a token index follows
KINDS = ("token", "counters")

_SCHEMES = ("bearer", "token", "basic")


def parse_authorization(header: str | None) -> str:
    """The secret in an Authorization header; 401 if there is none."""
    if not header:
        raise Rejection(
            401,
            "unauthorized",
            "no token: send 'Authorization: Bearer <token>' (or 'Token <token>')",
            expected="Authorization: Bearer <token>",
        )
    scheme, _, secret = header.strip().partition(" ")
    secret = secret.strip()
    if scheme.lower() not in _SCHEMES or not secret:
        raise Rejection(
            401,
            "unauthorized",
            f"Authorization scheme {scheme!r} is not accepted "
            "(expected 'Bearer <token>' or 'Token <token>')",
            value=scheme,
            expected="Bearer or Token",
        )
    if scheme.lower() == "basic":
        # InfluxDB 1.x clients (Telegraf's influxdb output) send user:password; password = token
        try:
            secret = base64.b64decode(secret, validate=True).decode().partition(":")[2]
        except (ValueError, UnicodeDecodeError):
            secret = ""
        if not secret:
            raise Rejection(
                401,
                "unauthorized",
                "Basic credentials carry no password (the token)",
                expected="Basic base64(user:token)",
            )
    return secret


class TokenIndex:
    """Token hash -> Grant, rebuilt from the live view on every token or counter-set change."""

    def __init__(self, view: LiveView | None = None) -> None:
        self._by_hash: dict[str, Grant] = {}
        #: tokens of other scopes (a console's): known, but they may not push
        self._not_push: dict[str, str] = {}
        self._warned: set[str] = set()
        self._builtin_counters = load_builtin_counters()
        #: False until the tokens were read once: until then no token can be told unknown
        self.loaded = False
        self._lock = threading.Lock()
        self.view = view
        if view is not None:
            view.subscribe(self._changed)
            self.load(view.get("token"), view.get("counters"))

    def load(
        self, tokens: Mapping[str, Token], counters: Mapping[str, Counters] | None = None
    ) -> None:
        """Replace the index with ``tokens`` (name -> Token) and registry counter sets."""
        sets = effective_sets(self._builtin_counters, counters or {})
        shared = CounterKinds(sets)
        index = {
            t.hash: Grant(
                name,
                t.resource_prefix,
                t.rate_limit,
                ResourceTemplate.parse(t.resource_template),
                CounterKinds(sets, t.counters) if t.counters else shared,
            )
            for name, t in tokens.items()
            if t.scope == "push"
        }
        console = {t.hash: name for name, t in tokens.items() if t.scope != "push"}
        for name, t in tokens.items():
            if t.legacy_any_resource and name not in self._warned:
                self._warned.add(name)
                log.warning(
                    "token %s: no resource prefix (stored before scopes): it may push to every "
                    "resource; give it --resource-prefix or --any-resource",
                    name,
                )
        with self._lock:
            self._by_hash = index
            self._not_push = console
            self.loaded = True

    def _changed(self, change: Change) -> None:
        if change.kind in KINDS and self.view is not None:
            self.load(self.view.get("token"), self.view.get("counters"))

    def __len__(self) -> int:
        return len(self._by_hash)

    def authenticate(self, header: str | None) -> Grant:
        """The grant of the token in ``header``; 401 if missing or unknown."""
        digest = token_hash(parse_authorization(header))
        if not self.loaded:
            raise Rejection(
                503,
                "starting",
                "the aggregator has not read its tokens from the registry yet; "
                "nothing was written, retry",
                retry_after=1,
            )
        grant = self._by_hash.get(digest)
        if grant is None and digest in self._not_push:
            raise Rejection(
                403,
                "forbidden",
                f"token {self._not_push[digest]} has the console scope: it cannot push",
                expected="a token with the push scope",
            )
        if grant is None:
            # the lookup is by sha256 of the secret, so its timing says nothing about a secret
            raise Rejection(
                401, "unauthorized", "unknown token", expected="a token from the registry"
            )
        return grant
