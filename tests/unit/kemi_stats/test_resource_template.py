"""Resource templates: alternatives, ports dropped, dotted names, and errors naming the fault."""

from __future__ import annotations

import pytest

from kemi_stats.resource_template import (
    DEFAULT_RESOURCE_TEMPLATE,
    MissingTags,
    ResourceTemplate,
    strip_port,
)


def render(template: str, **tags: str) -> tuple[str, tuple[str, ...]]:
    return ResourceTemplate.parse(template).render(tags)


def test_the_default_takes_host_then_instance_without_port_then_host_name() -> None:
    assert render(DEFAULT_RESOURCE_TEMPLATE, host="web-01", instance="x:1") == ("web-01", ("host",))
    assert render(DEFAULT_RESOURCE_TEMPLATE, instance="web-01:9100") == ("web-01", ("instance",))
    tags = {"host.name": "web-02"}
    assert ResourceTemplate.parse(DEFAULT_RESOURCE_TEMPLATE).render(tags) == (
        "web-02",
        ("host.name",),
    )


def test_literal_text_and_several_placeholders() -> None:
    assert render("host:{host}", host="web-01") == ("host:web-01", ("host",))
    assert render("net:{site}/{device}", site="pangyo", device="sw1") == (
        "net:pangyo/sw1",
        ("site", "device"),
    )


def test_a_point_without_any_alternative_names_them() -> None:
    with pytest.raises(MissingTags) as info:
        render("host:{host,hostname}", region="kr")
    assert str(info.value) == "no tag 'host' or 'hostname'"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("web-01:9100", "web-01"),
        ("10.0.0.1:161", "10.0.0.1"),
        ("[::1]:9100", "::1"),
        ("fe80::1", "fe80::1"),
        ("web-01", "web-01"),
        ("web:abc", "web:abc"),
    ],
)
def test_noport_drops_only_a_trailing_port(value: str, expected: str) -> None:
    assert strip_port(value) == expected


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("host:{host", "is not closed"),
        ("host:}", "has no '{'"),
        ("host:web", "no placeholder"),
        ("{host|upper}", "filter 'upper' is not known"),
        ("{ho st}", "is not a tag name"),
        ("{}", "is not a tag name"),
    ],
)
def test_bad_templates_say_what_is_wrong(text: str, needle: str) -> None:
    with pytest.raises(ValueError) as info:
        ResourceTemplate.parse(text)
    assert needle in str(info.value)
    assert repr(text) in str(info.value)
