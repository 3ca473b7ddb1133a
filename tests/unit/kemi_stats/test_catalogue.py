"""The catalogue's well-known ports are the ports each service listens on by default."""

from __future__ import annotations

import importlib

import pytest

from kemi_stats.catalogue import SERVICES, available_services


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_catalogue_name_and_port_are_the_service_own(name: str) -> None:
    spec = SERVICES[name]
    module = importlib.import_module(spec.module + ".service")
    assert (name, spec.port) == (module.NAME, module.PORT)


def test_every_service_is_installed_and_runnable_as_a_module() -> None:
    assert [s.name for s in available_services()] == list(SERVICES)
