"""Registry models: strict, with errors that name the field and the value."""

from __future__ import annotations

import pytest

from kemi_stats.errors import ValidationError
from kemi_stats.registry.models import Rule, parse_matcher
from kemi_stats.registry.oids import resolve_oid
from kemi_stats.registry.store import dump_doc, parse_doc


def _target(**kw: object) -> dict[str, object]:
    return {"host": "127.0.0.3", "credential": "lab", "profiles": ["system"], **kw}


def test_target_defaults_and_durations() -> None:
    t = parse_doc("target", "sw1", _target(interval="30s"))
    assert t.interval == 30 and t.port == 161 and t.resource("sw1") == "sw1"
    assert dump_doc(t)["interval"] == "30s"


@pytest.mark.parametrize(
    ("doc", "needle"),
    [
        (_target(host="999.1.1.1"), "field 'host'"),
        (_target(port=0), "field 'port'"),
        (_target(interval="5x"), "'5x' is not a duration"),
        (_target(colour="red"), "unknown field 'colour'"),
        (_target(interval="5s", deadline="10s"), "deadline 10s is longer than the interval 5s"),
        ({"credential": "lab", "profiles": ["system"]}, "field 'host' is required"),
        (_target(labels={"site": "a\nb"}), "label 'site' value .* contains control characters"),
        (_target(labels={"site": "x" * 5000}), r"is 5000 characters long \(at most 4096\)"),
    ],
)
def test_target_errors_name_the_field(doc: dict[str, object], needle: str) -> None:
    with pytest.raises(ValidationError, match=needle):
        parse_doc("target", "sw1", doc)


def test_bad_names_are_rejected() -> None:
    with pytest.raises(ValidationError, match="target name"):
        parse_doc("target", "has space", _target())


def test_credentials_v2c_and_v3() -> None:
    assert parse_doc("credential", "c", {"community": "public"}).version == "2c"
    v3 = parse_doc("credential", "c", {"version": "3", "user": "kemi", "auth": "SHA256",
                                      "auth_key": "authpass1", "priv": "AES", "priv_key": "privpass1"})  # fmt: skip
    assert v3.security_level == "authPriv"
    with pytest.raises(ValidationError, match="priv requires auth"):
        parse_doc(
            "credential", "c", {"version": "3", "user": "u", "priv": "AES", "priv_key": "privpass1"}
        )


def test_oids_resolve_names_once() -> None:
    assert resolve_oid("IF-MIB::ifHCInOctets") == "1.3.6.1.2.1.31.1.1.1.6"
    assert resolve_oid("sysUpTime.0") == "1.3.6.1.2.1.1.3.0"
    assert resolve_oid(".1.3.6.1") == "1.3.6.1"
    with pytest.raises(ValueError, match="not an OID"):
        resolve_oid("1.3.x")
    with pytest.raises(ValidationError, match="scalars.0.oid"):
        parse_doc("profile", "p", {"scalars": [{"name": "x", "oid": "bogus"}]})


def test_rule_conditions_and_default_clear() -> None:
    r = Rule.model_validate(
        {"metric": "cpu", "condition": {"op": ">", "threshold": 90}, "for": "2m"}
    )
    assert r.for_ == 120
    clear = r.effective_clear
    assert clear is not None and clear.holds(90) and not clear.holds(90.1)
    with pytest.raises(ValidationError, match="needs a condition"):
        parse_doc("rule", "r", {"metric": "cpu"})


def test_matchers() -> None:
    m = parse_matcher("resource=~'net:.*'")
    assert (m.label, m.op, m.value) == ("resource", "=~", "net:.*")
    with pytest.raises(ValueError, match="bad regular expression"):
        parse_matcher("a=~(")


def test_derived_expression_must_parse() -> None:
    assert parse_doc("derived", "d", {"expr": "rate(x) * 8"}).expr == "rate(x) * 8"
    with pytest.raises(ValidationError, match="does not parse"):
        parse_doc("derived", "d", {"expr": "rate(x) *"})


def test_a_scrape_target_needs_no_credential_and_takes_its_host_from_the_url() -> None:
    t = parse_doc("target", "app", {"scrape_url": "https://127.0.0.1:9100/metrics"})
    assert t.scrapes and t.host == "127.0.0.1" and t.credential is None and t.profiles == []
    assert t.samples_allowed == 50_000 and dump_doc(t).keys() == {"host", "port", "profiles",
        "interval", "deadline", "timeout", "retries", "max_repetitions", "bulk", "labels",
        "enabled", "scrape_url"}  # fmt: skip


@pytest.mark.parametrize(
    ("doc", "needle"),
    [
        ({"host": "127.0.0.3", "profiles": ["system"]}, "credential is required for an SNMP"),
        (_target(profiles=[]), "an SNMP target needs at least one profile"),
        (_target(bearer_token_file="/t"), "bearer_token_file applies to scrape targets"),
        ({"scrape_url": "ftp://127.0.0.1/m"}, "not an http:// or https:// URL"),
        ({"scrape_url": "http://127.0.0.1/m", "credential": "lab"}, "takes no credential"),
        (
            {
                "scrape_url": "http://127.0.0.1/m",
                "bearer_token_file": "/t",
                "basic_user": "u",
                "basic_password_file": "/p",
            },
            "give one way to authenticate",
        ),
        ({"scrape_url": "http://127.0.0.1/m", "basic_user": "u"}, "go together"),
        ({"scrape_url": "http://127.0.0.1/m", "sample_limit": 0}, "field 'sample_limit'"),
    ],
)
def test_scrape_and_snmp_targets_refuse_each_others_fields(
    doc: dict[str, object], needle: str
) -> None:
    with pytest.raises(ValidationError, match=needle):
        parse_doc("target", "t", doc)


@pytest.mark.parametrize(
    ("expr", "reason"),
    [
        ("2**3999999 + x", "2**3999999 is too large for a sample"),
        ("3999999**3999999 + x", "3999999**3999999 is too large for a sample"),
        ("x << 10000", "a constant shift must be 0 to 64"),
        (" + ".join(["x"] * 20_000), "expression is 79997 characters long, at most 4096"),
    ],
)
def test_derived_expressions_too_large_to_run_are_refused_in_one_short_line(
    expr: str, reason: str
) -> None:
    with pytest.raises(ValidationError) as info:
        parse_doc("derived", "d", {"expr": expr})
    message = str(info.value)
    assert message.startswith("derived d: field 'expr': ") and reason in message
    assert "\n" not in message and len(message) < 200
