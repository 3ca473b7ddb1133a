"""The etcd users and roles kemi-stats runs with, and how to create them.

Every writer that exists gets only what it writes (docs/security.md, etcd):

| role | reads | writes |
|---|---|---|
| ``kemi-operator`` (the CLI) | the whole prefix | the whole prefix |
| ``kemi-service`` (poller workers, aggregator, calculator, notifier, forwarder) | the whole prefix | ``services/`` |
| ``kemi-scheduler`` (poller scheduler) | the whole prefix | ``leader/`` (its lease), ``services/`` |
| ``kemi-evaluator`` (alert evaluator) | the whole prefix | ``silences/`` (removes expired ones), ``services/`` |
| ``kemi-console`` (the web console) | the whole prefix | ``silences/`` (silences set from the page), ``services/`` |

``services/`` holds each running instance's registration under a lease
(:mod:`kemi_stats.registry.instances`): every service writes its own.

One user per role, named like it, plus etcd's ``root`` (required before auth can be
enabled). :func:`setup_auth` creates what is missing and enables auth; it is what
``kemi-stats etcd setup-auth`` runs.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import grpc
from pyetcd import etcdrpc
from pyetcd.etcdrpc import auth_pb2

from kemi_stats.private_file import read_secret, write_private
from kemi_stats.registry.instances import SERVICES_DIR

__all__ = ["ROLES", "RoleSpec", "setup_auth"]


@dataclass(frozen=True, slots=True)
class RoleSpec:
    """A role: a short description, and the sub-prefixes it may write (``""``: all)."""

    name: str
    who: str
    writes: tuple[str, ...]


#: every service registers its running instances there
SERVICES = SERVICES_DIR

ROLES: tuple[RoleSpec, ...] = (
    RoleSpec("kemi-operator", "the CLI: write configuration", ("",)),
    RoleSpec(
        "kemi-service", "services that read the registry and register themselves", (SERVICES,)
    ),
    RoleSpec("kemi-scheduler", "the poller scheduler: its leader lease", ("leader/", SERVICES)),
    RoleSpec(
        "kemi-evaluator", "the alert evaluator: removes expired silences", ("silences/", SERVICES)
    ),
    RoleSpec(
        "kemi-console", "the web console: silences set from its pages", ("silences/", SERVICES)
    ),
)

ROOT = "root"


def _range_end(prefix: str) -> bytes:
    """The end of etcd's key range for every key starting with ``prefix``."""
    raw = bytearray(prefix.encode())
    raw[-1] += 1
    return bytes(raw)


def _permissions(prefix: str, role: RoleSpec) -> list[auth_pb2.Permission]:
    def perm(kind: int, sub: str) -> auth_pb2.Permission:
        key = prefix + sub
        return auth_pb2.Permission(permType=kind, key=key.encode(), range_end=_range_end(key))

    if "" in role.writes:
        return [perm(auth_pb2.Permission.READWRITE, "")]
    return [perm(auth_pb2.Permission.READ, "")] + [
        perm(auth_pb2.Permission.READWRITE, sub) for sub in role.writes
    ]


def _exists_ok(call: Callable[[], Any]) -> bool:
    """Run an auth call; False when what it adds exists already (so setup can run twice)."""
    try:
        call()
    except grpc.RpcError as exc:
        details = exc.details() if callable(getattr(exc, "details", None)) else str(exc)
        if "already exists" in str(details):
            return False
        raise
    return True


def _password(directory: Path, user: str) -> str:
    """The user's password from ``DIR/USER.password``, made (mode 0600) when missing."""
    path = directory / f"{user}.password"
    if path.exists():
        return read_secret(path)
    value = secrets.token_urlsafe(24)
    write_private(path, value + "\n")
    return value


def setup_auth(client: Any, prefix: str, passwords: Path) -> list[str]:
    """Create the roles and users (passwords in ``passwords/USER.password``), enable auth.

    Returns one line per thing created. Idempotent: what exists is kept, passwords of
    existing users are not changed.
    """
    stub = client.authstub
    timeout = client.timeout
    done: list[str] = []

    def add_user(name: str) -> bool:
        request = etcdrpc.AuthUserAddRequest(name=name, password=_password(passwords, name))
        return _exists_ok(partial(stub.UserAdd, request, timeout))

    if add_user(ROOT):
        done.append(f"user {ROOT} (password in {passwords / (ROOT + '.password')})")
    stub.UserGrantRole(etcdrpc.AuthUserGrantRoleRequest(user=ROOT, role=ROOT), timeout)
    for role in ROLES:
        if _exists_ok(partial(stub.RoleAdd, etcdrpc.AuthRoleAddRequest(name=role.name), timeout)):
            done.append(f"role {role.name}: {role.who}")
        for perm in _permissions(prefix, role):
            request = etcdrpc.AuthRoleGrantPermissionRequest(name=role.name, perm=perm)
            stub.RoleGrantPermission(request, timeout)
        if add_user(role.name):
            done.append(f"user {role.name} (password in {passwords / (role.name + '.password')})")
        grant = etcdrpc.AuthUserGrantRoleRequest(user=role.name, role=role.name)
        stub.UserGrantRole(grant, timeout)
    stub.AuthEnable(etcdrpc.AuthEnableRequest(), timeout)
    done.append("auth enabled")
    return done
