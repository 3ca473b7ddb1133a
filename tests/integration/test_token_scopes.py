"""Token scopes: a push token names the resources it may write (or says any, loudly); a
console token never pushes; tokens stored before scopes keep working, with a warning."""

from __future__ import annotations

import asyncio
import hashlib
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from kemi_stats.registry.models import Token
from kemi_stats.registry.store import Registry
from tests.cli import Cli
from tests.integration.test_aggregator_push import SECRET, running_aggregator
from tests.servers import RunningServer

pytestmark = pytest.mark.integration


def kemi(etcd: str, prefix: str, *args: str) -> subprocess.CompletedProcess[str]:
    return Cli(etcd, prefix)(*args, ok=False)


def test_token_create_without_a_prefix_fails_and_names_the_flag(
    etcd: RunningServer, etcd_prefix: str
) -> None:
    done = kemi(etcd.address, etcd_prefix, "token", "create", "agents")
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "error: token agents: --resource-prefix is required for a push token (the resources "
        "it may write, e.g. host:web-); --any-resource lets it write every resource"
    ]
    assert "secret" not in done.stdout


def test_any_resource_is_explicit_and_listed_loudly(
    etcd: RunningServer, etcd_prefix: str, registry: Registry
) -> None:
    made = kemi(etcd.address, etcd_prefix, "token", "create", "ops", "--any-resource")
    assert made.returncode == 0, made.stderr
    registry.put("token", "old", Token(hash="a" * 64))  # as stored before scopes
    listed = kemi(etcd.address, etcd_prefix, "token", "list")
    assert listed.returncode == 0, listed.stderr
    rows = {line.split()[0]: line for line in listed.stdout.splitlines()[1:]}
    assert "!! ANY RESOURCE" in rows["ops"]
    assert "!! ANY RESOURCE (no prefix, from before scopes: update it)" in rows["old"]
    assert "warning: 1 push token(s) without a resource prefix may write every" in listed.stderr
    refused = kemi(etcd.address, etcd_prefix, "token", "update", "old", "--description", "x")
    assert refused.returncode == 1 and "--resource-prefix is required" in refused.stderr
    fixed = kemi(etcd.address, etcd_prefix, "token", "update", "old", "--resource-prefix", "h:")
    assert fixed.returncode == 0, fixed.stderr
    assert "warning" not in kemi(etcd.address, etcd_prefix, "token", "list").stderr


def test_a_console_token_cannot_push_and_an_old_token_still_can(
    kafka: RunningServer, etcd: RunningServer, tmp_path: Path
) -> None:
    with running_aggregator(kafka, etcd, tmp_path) as agg:
        prefix = agg.registry.prefix
        made = kemi(etcd.address, prefix, "token", "create", "console-1", "--scope", "console")
        assert made.returncode == 0, made.stderr
        console_secret = made.stdout.strip().rsplit(" ", 1)[-1]
        refused = kemi(etcd.address, prefix, "token", "create", "c2", "--scope", "console",
                       "--resource-prefix", "host:")  # fmt: skip
        assert refused.returncode == 1 and "a console token cannot push" in refused.stderr
        line = f"cpu,host=h-{uuid.uuid4().hex[:6]} usage=1 {int(time.time())}".encode()

        async def push(token: str) -> int:
            for _ in range(50):  # the aggregator follows the registry live
                status, _, _ = await agg.post("/write?precision=s", line, token=token)
                if status != 401:
                    return status
                await asyncio.sleep(0.1)
            return status

        assert asyncio.run(push(console_secret)) == 403
        # "ops" was stored without a prefix before scopes existed: it keeps pushing
        assert asyncio.run(push(SECRET)) == 204
        assert hashlib.sha256(console_secret.encode()).hexdigest() not in agg.proc.log_tail()
