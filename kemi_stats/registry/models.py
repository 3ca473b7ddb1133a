"""One strict typed model per registry kind; unknown keys are rejected, defaults live here.

Documents are stored as JSON at ``<prefix><kind plural>/<name>``. Durations are
accepted as ``30s``/``5m``/seconds and stored as seconds.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import re
import socket
import time
from collections.abc import Iterator
from types import ModuleType
from typing import Annotated, Any, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    field_validator,
    model_validator,
)

from kemi_stats.durations import format_duration, parse_duration
from kemi_stats.globs import check_metric_glob
from kemi_stats.names import (
    LABEL_PATTERN,
    InvalidName,
    NameLimits,
    check_entry_name,
    check_label_name,
    check_metric_name,
    check_resource_id,
    label_value_expected,
    label_value_problem,
    name_limits,
)
from kemi_stats.redact import redact_url
from kemi_stats.registry.oids import resolve_oid
from kemi_stats.resource_template import DEFAULT_RESOURCE_TEMPLATE, ResourceTemplate

__all__ = [
    "DEFAULT_SAMPLE_LIMIT",
    "KINDS",
    "Condition",
    "Counters",
    "Credential",
    "Derived",
    "KindSpec",
    "Matcher",
    "Profile",
    "Receiver",
    "Rule",
    "Silence",
    "Target",
    "Token",
    "parse_matcher",
    "validate_name",
]

_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)


#: names, and (label name, value) pairs, found valid under the limits object they were
#: checked with: a registry repeats a few of them in every entry (bounded, cleared when full)
_VALID: dict[object, NameLimits] = {}
_VALID_LIMIT = 65_536


def _known_valid(key: object) -> bool:
    return _VALID.get(key) is name_limits()


def _valid(key: object) -> None:
    if len(_VALID) >= _VALID_LIMIT:
        _VALID.clear()
    _VALID[key] = name_limits()


def validate_name(name: str, what: str = "name") -> str:
    """Return ``name`` if it can be a registry key, else raise ValueError naming it."""
    if not _known_valid(name):
        check_entry_name(name, what)
        _valid(name)
    return name


def _duration(value: Any) -> float:
    return parse_duration(value)


Duration = Annotated[
    float,
    BeforeValidator(_duration),
    PlainSerializer(format_duration, return_type=str, when_used="json"),
]
PositiveDuration = Annotated[Duration, Field(gt=0)]


def _check_oid(value: str) -> str:
    return resolve_oid(value)


Oid = Annotated[str, AfterValidator(_check_oid)]


def _check_labels(value: dict[str, str]) -> dict[str, str]:
    """Label names and values by the rules the aggregator applies to pushed samples."""
    for pair in value.items():
        if _known_valid(pair):
            continue
        key, text = pair
        check_label_name(key)
        problem = label_value_problem(text)
        if problem is not None:
            raise InvalidName(f"label {key!r} value", text, label_value_expected(), problem)
        _valid(pair)
    return value


Labels = Annotated[dict[str, str], AfterValidator(_check_labels)]
MetricName = Annotated[str, AfterValidator(check_metric_name)]
ResourceId = Annotated[str, AfterValidator(check_resource_id)]


#: what list/show/export/repr print in place of a secret (apply keeps the stored value for it)
MASK = "********"


class _Doc(BaseModel):
    # each kind's validator is built by its first validation: a service builds only the
    # kinds it reads (pydantic >= 2.14 builds it once when threads race, as watches do)
    model_config = ConfigDict(
        extra="forbid", validate_assignment=True, frozen=False, defer_build=True
    )
    #: fields never printed back in clear by list/show/export, nor by repr()
    secret_fields: ClassVar[frozenset[str]] = frozenset()
    #: fields whose values many documents repeat, held once in views (registry.compact)
    shared_fields: ClassVar[frozenset[str]] = frozenset()

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        for name, value in super().__repr_args__():
            yield name, (MASK if name in self.secret_fields and value else value)


# --- SNMP -------------------------------------------------------------------------

AuthProtocol = Literal["MD5", "SHA", "SHA224", "SHA256", "SHA384", "SHA512"]
PrivProtocol = Literal["DES", "AES", "AES128", "AES192", "AES256"]


class Credential(_Doc):
    """SNMP v1/v2c community or v3 user with auth and privacy keys."""

    secret_fields: ClassVar[frozenset[str]] = frozenset({"community", "auth_key", "priv_key"})

    version: Literal["1", "2c", "3"] = "2c"
    community: str | None = None
    user: str | None = None
    auth: AuthProtocol | None = None
    auth_key: str | None = None
    priv: PrivProtocol | None = None
    priv_key: str | None = None
    context: str = ""

    @model_validator(mode="after")
    def _consistent(self) -> Credential:
        if self.version in ("1", "2c"):
            if not self.community:
                raise ValueError(f"community is required for SNMP v{self.version}")
            if self.user or self.auth or self.priv:
                raise ValueError("user/auth/priv apply to SNMP v3 only")
        else:
            if not self.user:
                raise ValueError("user is required for SNMP v3")
            if self.auth and (not self.auth_key or len(self.auth_key) < 8):
                raise ValueError("auth_key must be at least 8 characters when auth is set")
            if self.priv and not self.auth:
                raise ValueError("priv requires auth (authPriv)")
            if self.priv and (not self.priv_key or len(self.priv_key) < 8):
                raise ValueError("priv_key must be at least 8 characters when priv is set")
        return self

    @property
    def security_level(self) -> str:
        if self.version != "3":
            return "community"
        return "authPriv" if self.priv else "authNoPriv" if self.auth else "noAuthNoPriv"


def _check_host(value: str) -> str:
    # inet_pton first: it takes what ipaddress takes but scoped IPv6, in a 30th of the time
    # (a registry of 100,000 targets is read whole by every list and every service)
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, value)
            return value
        except (OSError, ValueError):
            pass
    try:
        ipaddress.ip_address(value)
        return value
    except ValueError:
        pass
    if not _HOSTNAME.match(value) or value.replace(".", "").isdigit():
        raise ValueError(f"host {value!r} is not an IP address or a hostname")
    return value


#: samples a scrape may have when its target sets no ``sample_limit``
DEFAULT_SAMPLE_LIMIT = 50_000


def _check_scrape_url(value: str) -> str:
    url = urlsplit(value)
    if url.scheme not in ("http", "https") or not url.hostname:
        raise ValueError(f"scrape_url {value!r} is not an http:// or https:// URL with a host")
    return value


class Target(_Doc):
    """A device to poll over SNMP, or an HTTP endpoint to scrape (Prometheus /metrics)."""

    shared_fields: ClassVar[frozenset[str]] = frozenset(
        {"credential", "profiles", "interval", "deadline", "timeout", "labels"}
    )

    #: the agent's address; for a scrape target, the URL's host (set from it by default)
    host: Annotated[str, AfterValidator(_check_host)]
    port: int = Field(161, ge=1, le=65535)
    credential: str | None = None
    profiles: list[str] = Field(default_factory=list)
    interval: PositiveDuration = 60.0
    #: one deadline for the whole poll of this target (all requests, all retries)
    deadline: PositiveDuration = 10.0
    timeout: PositiveDuration = 2.0
    retries: int = Field(1, ge=0, le=10)
    max_repetitions: int = Field(25, ge=1, le=200)
    #: False switches table walks from GETBULK to GETNEXT, for broken agents
    bulk: bool = True
    resource_id: ResourceId | None = None
    labels: Labels = Field(default_factory=dict)
    enabled: bool = True
    #: a scrape target: the Prometheus exposition endpoint (no credential, no profiles)
    scrape_url: Annotated[str, AfterValidator(_check_scrape_url)] | None = None
    #: files the worker reads at each scrape, so a rotated secret needs no registry change
    bearer_token_file: str | None = None
    basic_user: str | None = None
    basic_password_file: str | None = None
    #: a private CA for an https:// scrape_url
    ca_file: str | None = None
    #: a scrape with more samples fails whole (reason ``sample_limit``), as in Prometheus;
    #: unset: :data:`DEFAULT_SAMPLE_LIMIT`
    sample_limit: int | None = Field(None, ge=1, le=5_000_000)

    @model_validator(mode="before")
    @classmethod
    def _host_from_scrape_url(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("scrape_url") and not data.get("host"):
            host = urlsplit(str(data["scrape_url"])).hostname
            if host:
                data = {**data, "host": host}
        return data

    @field_validator("credential")
    @classmethod
    def _cred_name(cls, value: str | None) -> str | None:
        return None if value is None else validate_name(value, "credential")

    @field_validator("profiles")
    @classmethod
    def _profile_names(cls, value: list[str]) -> list[str]:
        for p in value:
            validate_name(p, "profile")
        if len(set(value)) != len(value):
            raise ValueError(f"profiles {value} name a profile twice")
        return value

    @model_validator(mode="after")
    def _kind_and_deadline(self) -> Target:
        if self.scrape_url is None:
            if not self.credential:
                raise ValueError("credential is required for an SNMP target (or give scrape_url)")
            if not self.profiles:
                raise ValueError("profiles: an SNMP target needs at least one profile")
            for scrape_only in (
                "bearer_token_file",
                "basic_user",
                "basic_password_file",
                "ca_file",
            ):
                if getattr(self, scrape_only):
                    raise ValueError(f"{scrape_only} applies to scrape targets (scrape_url) only")
        else:
            if self.credential or self.profiles:
                raise ValueError("a scrape target (scrape_url) takes no credential or profiles")
            if self.bearer_token_file and (self.basic_user or self.basic_password_file):
                raise ValueError("bearer_token_file and basic_user: give one way to authenticate")
            if bool(self.basic_user) != bool(self.basic_password_file):
                raise ValueError("basic_user and basic_password_file go together")
        if self.deadline > self.interval:
            raise ValueError(
                f"deadline {format_duration(self.deadline)} is longer than the interval "
                f"{format_duration(self.interval)}"
            )
        return self

    @property
    def samples_allowed(self) -> int:
        """The scrape's sample limit (the target's, or the default)."""
        return self.sample_limit or DEFAULT_SAMPLE_LIMIT

    @property
    def scrapes(self) -> bool:
        """True for a scrape target (Prometheus exposition over HTTP), False for SNMP."""
        return self.scrape_url is not None

    def resource(self, name: str) -> str:
        """The resource id samples of this target carry (default: its name)."""
        return self.resource_id or name

    def batch_labels(self, name: str) -> dict[str, str]:
        """The labels of this target's batches: its own, and ``target`` (its name) unless
        it sets one."""
        labels = dict(self.labels)
        labels.setdefault("target", name)
        return labels


MetricType = Literal["gauge", "counter"]


class ScalarMetric(_Doc):
    """One scalar OID (fetched with GET; ``.0`` is appended unless already there)."""

    name: MetricName
    oid: Oid
    type: MetricType = "gauge"
    scale: float = 1.0


class TableColumn(_Doc):
    """One column of a table walk; each row gives a sample labelled by the row's index."""

    name: MetricName
    oid: Oid
    type: MetricType = "gauge"
    scale: float = 1.0


class TableLookup(_Doc):
    """A column whose value labels the rows (e.g. ifName), cached between polls."""

    label: Annotated[str, AfterValidator(check_label_name)]
    oid: Oid


class Table(_Doc):
    """A conceptual table walked with GETBULK (or GETNEXT)."""

    name: str
    index_label: str = "index"
    columns: list[TableColumn] = Field(min_length=1)
    lookups: list[TableLookup] = Field(default_factory=list)
    #: lookup columns are walked again every this many polls
    lookup_refresh: int = Field(10, ge=1)


class Profile(_Doc):
    """Metric definitions: scalars and tables with their OIDs and types."""

    description: str = ""
    scalars: list[ScalarMetric] = Field(default_factory=list)
    tables: list[Table] = Field(default_factory=list)

    def metric_names(self) -> list[str]:
        """The metrics a poll with this profile yields: its scalars, then its tables' columns."""
        return [m.name for m in self.scalars] + [c.name for t in self.tables for c in t.columns]

    @model_validator(mode="after")
    def _not_empty(self) -> Profile:
        if not self.scalars and not self.tables:
            raise ValueError("a profile needs at least one scalar or table")
        names = self.metric_names()
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"metric names defined twice: {', '.join(dup)}")
        return self


# --- derived metrics -----------------------------------------------------------------


def _expressions() -> ModuleType:
    # the expression compiler (with simpleeval, 1 MiB) comes with the first derived entry
    # validated: a service that reads none (all but the calculator) does not hold it
    from kemi_stats import expressions

    return expressions


def _check_expr(value: str) -> str:
    # the calculator's own compiler: what is accepted here is what it can run
    _expressions().compile_expression(value)
    return value


class Derived(_Doc):
    """A computed metric: an expression over a resource's metrics, a window, or a group."""

    expr: Annotated[str, AfterValidator(_check_expr)]
    window: PositiveDuration | None = None
    group_by: list[str] = Field(default_factory=list)
    #: restrict inputs to resources whose id starts with this
    resource_prefix: str = ""
    #: rates above this are dropped and counted (e.g. interface speed in units/s)
    max_rate: float | None = Field(None, gt=0)
    labels: Labels = Field(default_factory=dict)
    description: str = ""

    @model_validator(mode="before")
    @classmethod
    def _expr_length(cls, data: Any) -> Any:
        # checked on the document, not the field, so the error does not echo the whole text
        expr = data.get("expr") if isinstance(data, dict) else None
        if isinstance(expr, str):
            expressions = _expressions()
            try:
                expressions.check_expression_length(expr)
            except expressions.ExpressionError as exc:
                raise ValueError(f"field 'expr': {exc}") from None
        return data

    @model_validator(mode="after")
    def _runnable(self) -> Derived:
        expressions = _expressions()
        expressions.derived_mode(
            expressions.compile_expression(self.expr), self.window, self.group_by
        )
        return self


# --- alerting -------------------------------------------------------------------------

Op = Literal[">", ">=", "<", "<=", "==", "!="]
_NEGATION: dict[str, str] = {">": "<=", ">=": "<", "<": ">=", "<=": ">", "==": "!=", "!=": "=="}
_MATCHER = re.compile(rf"^\s*({LABEL_PATTERN})\s*(=~|!~|!=|=)\s*(.*?)\s*$")


class Matcher(BaseModel):
    """A label matcher: ``site=pangyo``, ``resource=~net:.*`` (``resource`` is the resource id)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    label: str
    op: Literal["=", "!=", "=~", "!~"]
    value: str

    def __str__(self) -> str:
        return f"{self.label}{self.op}{self.value}"


def parse_matcher(text: str) -> Matcher:
    """Parse ``label(=|!=|=~|!~)value``; raise ValueError naming the text if it is not one."""
    m = _MATCHER.match(text)
    if not m:
        raise ValueError(f"matcher {text!r} is invalid (expected label=value, !=, =~ or !~)")
    label, op, value = m.groups()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        value = value[1:-1]
    if op in ("=~", "!~"):
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"matcher {text!r}: bad regular expression: {exc}") from None
    return Matcher(label=label, op=op, value=value)  # type: ignore[arg-type]


def _matchers(value: Any) -> Any:
    if isinstance(value, list):
        return [parse_matcher(v) if isinstance(v, str) else v for v in value]
    return value


Matchers = Annotated[
    list[Matcher],
    BeforeValidator(_matchers),
    PlainSerializer(lambda ms: [str(m) for m in ms], return_type=list[str], when_used="json"),
]


class Condition(_Doc):
    """``value <op> threshold``."""

    op: Op
    threshold: float

    def holds(self, value: float) -> bool:
        t = self.threshold
        match self.op:
            case ">":
                return value > t
            case ">=":
                return value >= t
            case "<":
                return value < t
            case "<=":
                return value <= t
            case "==":
                return value == t
            case _:
                return value != t

    def negated(self) -> Condition:
        return Condition(op=_NEGATION[self.op], threshold=self.threshold)  # type: ignore[arg-type]

    def __str__(self) -> str:
        return f"{self.op} {self.threshold:g}"


class Rule(_Doc):
    """An alert rule: which series, when to fire, when to clear, whom to tell."""

    metric: MetricName
    match: Matchers = Field(default_factory=list)
    resource_prefix: str = ""
    condition: Condition | None = None
    for_: Duration = Field(0.0, alias="for")
    clear: Condition | None = None
    clear_for: Duration = 0.0
    no_data: Duration | None = None
    severity: Literal["critical", "warning", "info"] = "warning"
    labels: Labels = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    receivers: list[str] = Field(default_factory=list)
    group_by: list[str] = Field(default_factory=list)
    repeat_interval: Duration = 4 * 3600.0

    model_config = ConfigDict(extra="forbid", validate_assignment=True, populate_by_name=True)

    @model_validator(mode="after")
    def _has_trigger(self) -> Rule:
        if self.condition is None and self.no_data is None:
            raise ValueError("a rule needs a condition (--above/--below/...) or --no-data")
        if self.clear is not None and self.condition is None:
            raise ValueError("a clear condition needs a firing condition")
        return self

    @property
    def effective_clear(self) -> Condition | None:
        """The clear condition; by default the negation of the firing condition."""
        if self.clear is not None:
            return self.clear
        return self.condition.negated() if self.condition else None


class Receiver(_Doc):
    """Where alert notifications go: a webhook (``url``, signed with ``secret``, in kemi's
    payload or Alertmanager's), or Alertmanager itself (``alertmanager_urls``, its API)."""

    #: headers often carry credentials (Authorization, API keys): masked as a whole
    secret_fields: ClassVar[frozenset[str]] = frozenset(
        {"secret", "previous_secret", "headers", "basic_password", "bearer_token"}
    )

    url: str = ""
    #: the webhook's payload: kemi's own (version 1) or Alertmanager's webhook (version 4)
    format: Literal["kemi", "alertmanager"] = "kemi"
    #: Alertmanager instances (an HA pair: every one gets every alert)
    alertmanager_urls: list[str] = Field(default_factory=list)
    #: firing alerts are sent to Alertmanager again this often (under its resolve_timeout)
    resend_interval: PositiveDuration = 60.0
    #: the webhook signing key (``whsec_<base64>`` or any text); at least 16 bytes for a new
    #: one, a shorter stored one still signs (see :meth:`secret_problem`)
    secret: str = ""
    #: while a secret is rotated: requests carry a signature with this one too, so receivers
    #: still holding it keep accepting; clear it once they all have ``secret``
    previous_secret: str = ""
    basic_user: str = ""
    basic_password: str = ""
    bearer_token: str = ""
    #: a CA bundle (PEM) for https URLs signed by a private CA, read where the notifier runs
    ca_file: str = ""
    timeout: PositiveDuration = 5.0
    max_retries: int = Field(8, ge=0, le=100)
    backoff_initial: PositiveDuration = 1.0
    backoff_max: PositiveDuration = 60.0
    #: give up (dead-letter) after retrying this long
    max_elapsed: PositiveDuration = 600.0
    group_wait: Duration = 2.0
    headers: dict[str, str] = Field(default_factory=dict)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if value and not re.match(r"^https?://[^\s/]+", value):
            raise ValueError(f"url {value!r} is not an http(s) URL")
        return value

    @field_validator("alertmanager_urls")
    @classmethod
    def _alertmanager_urls(cls, value: list[str]) -> list[str]:
        for url in value:
            if not re.match(r"^https?://[^\s/]+", url):
                raise ValueError(f"alertmanager URL {url!r} is not an http(s) URL")
        return [u.rstrip("/") for u in value]

    @model_validator(mode="after")
    def _one_destination(self) -> Receiver:
        if bool(self.url) == bool(self.alertmanager_urls):
            raise ValueError(
                "a receiver needs either url (a webhook) or alertmanager_urls (Alertmanager)"
            )
        if self.bearer_token and (self.basic_user or self.basic_password):
            raise ValueError("bearer_token and basic_user/basic_password exclude each other")
        if self.basic_password and not self.basic_user:
            raise ValueError("basic_password needs basic_user")
        return self

    @property
    def is_alertmanager(self) -> bool:
        return bool(self.alertmanager_urls)

    @property
    def signed(self) -> bool:
        """Whether its requests are signed: kemi's webhook always, Alertmanager's webhook
        when given a secret, Alertmanager's API never."""
        return bool(self.url) and (self.format == "kemi" or bool(self.secret))

    def signing_secrets(self) -> list[str]:
        """The secrets its requests are signed with, the current one first."""
        return [self.secret, self.previous_secret] if self.previous_secret else [self.secret]

    def secret_problem(self) -> str | None:
        """Why this receiver's signing secret may not be written now (None if it may).

        Not a validator on purpose: receivers stored before the 16-byte rule must keep
        loading and delivering; ``add``, ``update`` and ``apply`` call this instead, so a
        weak secret is replaced the next time its receiver is changed."""
        from kemi_stats.webhook import secret_problem

        if not self.signed:
            return None
        if not self.secret:
            return "is required: kemi's webhook is always signed"
        return secret_problem(self.secret)

    @property
    def weak_secret(self) -> bool:
        """Whether it signs with a secret a new receiver could not have (``receiver list``
        marks it)."""
        return self.secret_problem() is not None

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        for name, value in super().__repr_args__():
            if name == "url" and value:
                value = redact_url(value)
            elif name == "alertmanager_urls":
                value = [redact_url(u) for u in value]
            yield name, value

    def auth_headers(self) -> dict[str, str]:
        """Authorization for the receiver's requests (basic or bearer), if it has any."""
        if self.bearer_token:
            return {"Authorization": f"Bearer {self.bearer_token}"}
        if self.basic_user:
            raw = f"{self.basic_user}:{self.basic_password}".encode()
            return {"Authorization": "Basic " + base64.b64encode(raw).decode()}
        return {}


def _check_template(value: str) -> str:
    ResourceTemplate.parse(value)
    return value


MetricGlob = Annotated[str, AfterValidator(check_metric_glob)]


def token_hash(secret: str) -> str:
    """What the registry stores of a token secret: its SHA-256, in hex."""
    return hashlib.sha256(secret.encode()).hexdigest()


class Token(_Doc):
    """A token: only the SHA-256 of the secret is stored.

    ``push`` tokens write samples to the aggregator, within ``resource_prefix`` or, when
    ``any_resource`` says so explicitly, anywhere. ``console`` tokens sign in to a web
    console and can never push.
    """

    secret_fields: ClassVar[frozenset[str]] = frozenset({"hash"})

    hash: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    scope: Literal["push", "console"] = "push"
    resource_prefix: str = ""
    #: a push token that may write every resource, even polled devices' ``net:`` ones
    any_resource: bool = False
    #: how a pushed point's resource id is built from its tags (see resource_template)
    resource_template: Annotated[str, AfterValidator(_check_template)] = DEFAULT_RESOURCE_TEMPLATE
    #: line-protocol metrics (measurement_field globs) this token's pushes carry as counters
    counters: list[MetricGlob] = Field(default_factory=list)
    #: samples per second this token may push; 0 means no limit
    rate_limit: float = Field(0.0, ge=0)
    created_at: float = Field(default_factory=time.time)
    description: str = ""

    @property
    def legacy_any_resource(self) -> bool:
        """A push token stored before scopes, with no prefix: it still writes anywhere,
        and ``token list`` warns until it is updated."""
        return self.scope == "push" and not self.resource_prefix and not self.any_resource

    def write_problem(self) -> str | None:
        """Why this token may not be written now (None if it may). Not a validator: tokens
        stored before scopes keep working; ``create``, ``update`` and ``apply`` ask this."""
        if self.scope == "console" and (self.resource_prefix or self.any_resource):
            return "a console token cannot push: --resource-prefix and --any-resource do not apply"
        if self.resource_prefix and self.any_resource:
            return "--resource-prefix and --any-resource exclude each other"
        if self.legacy_any_resource:
            return (
                "--resource-prefix is required for a push token (the resources it may write, "
                "e.g. host:web-); --any-resource lets it write every resource"
            )
        return None


class Counters(_Doc):
    """Line-protocol metrics that are counters: globs over ``measurement_field`` names.

    Every entry applies to every token's line-protocol pushes, with the built-in sets
    (``telegraf``: Telegraf's standard counter fields); an entry named like a built-in
    set replaces it, and ``enabled: false`` turns it off.
    """

    metrics: list[MetricGlob] = Field(default_factory=list)
    kind: Literal["counter64", "counter32", "float_counter"] = "counter64"
    enabled: bool = True
    description: str = ""

    @model_validator(mode="after")
    def _has_metrics(self) -> Counters:
        if self.enabled and not self.metrics:
            raise ValueError("metrics: an enabled counter set needs at least one metric glob")
        return self


class Silence(_Doc):
    """A maintenance window: alerts whose labels match are recorded but not notified."""

    match: Matchers = Field(min_length=1)
    starts_at: float = Field(default_factory=time.time)
    ends_at: float
    reason: str = ""
    created_by: str = ""

    @model_validator(mode="after")
    def _ordered(self) -> Silence:
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self

    def active(self, now: float) -> bool:
        return self.starts_at <= now < self.ends_at


class KindSpec(BaseModel):
    """A registry kind: its CLI name, its key segment and its model."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)
    name: str
    plural: str
    model: type[_Doc]


KINDS: dict[str, KindSpec] = {
    spec.name: spec
    for spec in (
        KindSpec(name="credential", plural="credentials", model=Credential),
        KindSpec(name="profile", plural="profiles", model=Profile),
        KindSpec(name="target", plural="targets", model=Target),
        KindSpec(name="derived", plural="derived", model=Derived),
        KindSpec(name="receiver", plural="receivers", model=Receiver),
        KindSpec(name="rule", plural="rules", model=Rule),
        KindSpec(name="token", plural="tokens", model=Token),
        KindSpec(name="counters", plural="counters", model=Counters),
        KindSpec(name="silence", plural="silences", model=Silence),
    )
}
