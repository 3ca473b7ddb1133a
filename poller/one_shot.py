"""One poll of one target under its deadline, and one walk of a subtree.

The poll worker runs :func:`poll_snmp` and :func:`scrape` for each job;
``kemi-stats target test`` and ``target walk`` run the same functions once, so what
an operator sees from the command line is what the poller stores.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from kemi_stats.codec import decode_batch
from kemi_stats.model import SampleBatch
from kemi_stats.registry.models import Credential, Profile, Target
from poller.collect import TargetState, collect
from poller.errors import PollError
from poller.plan import PollPlan, compile_plan
from poller.scrape import ScrapedBatch, Scraper
from poller.snmp import PollSession, SnmpClient, SnmpValue

__all__ = ["PollOutcome", "WalkOutcome", "poll_once", "poll_snmp", "scrape", "walk"]


@dataclass(frozen=True, slots=True)
class PollOutcome:
    """A finished poll: its batch, the requests it took and how long it ran."""

    batch: SampleBatch
    requests: int
    seconds: float


@dataclass(frozen=True, slots=True)
class WalkOutcome:
    """A finished walk: ``(oid, value)`` rows in the agent's order, requests and time."""

    rows: list[tuple[str, SnmpValue]]
    requests: int
    seconds: float


async def poll_snmp(
    client: SnmpClient,
    name: str,
    target: Target,
    credential: Credential,
    plan: PollPlan,
    state: TargetState,
    *,
    remaining: float,
    revision: int = 0,
) -> tuple[SampleBatch, int]:
    """Poll an SNMP target within ``remaining`` seconds: its batch and the requests sent;
    PollError says why it failed."""
    session: PollSession | None = None
    try:
        async with asyncio.timeout(remaining):
            session = await client.session(name, target, credential, time.monotonic() + remaining)
            batch = await collect(name, target, plan, session, state, revision=revision)
            return batch, session.requests
    except TimeoutError:
        if session is None or session.answered == 0:
            # the agent never answered: the deadline only cut the retries short
            raise PollError(
                name, "timeout", f"no response within the deadline ({remaining:.1f} s)"
            ) from None
        raise PollError(
            name, "deadline", f"poll not finished within its deadline ({target.deadline:g} s)"
        ) from None


async def scrape(
    scraper: Scraper, name: str, target: Target, time_ms: int, *, remaining: float, revision: int
) -> ScrapedBatch:
    """Scrape a /metrics target within ``remaining`` seconds; PollError says why it failed."""
    try:
        async with asyncio.timeout(remaining):
            return await scraper.scrape(name, target, time_ms, revision)
    except TimeoutError:
        raise PollError(
            name, "timeout", f"no complete answer within the deadline ({remaining:.1f} s)"
        ) from None


async def poll_once(
    name: str,
    target: Target,
    credential: Credential | None,
    profiles: dict[str, Profile],
) -> PollOutcome:
    """Poll ``target`` once, as a worker would, within the target's deadline."""
    started = time.monotonic()
    if target.scrapes:
        scraper = Scraper()
        try:
            scraped = await scrape(
                scraper, name, target, int(time.time() * 1000),
                remaining=target.deadline, revision=0,
            )  # fmt: skip
        finally:
            await scraper.close()
        return PollOutcome(decode_batch(scraped.value), 1, time.monotonic() - started)
    if credential is None:
        raise PollError(name, "config", f"credential {target.credential} does not exist")
    plan = compile_plan(name, target, profiles)
    client = SnmpClient()
    try:
        batch, requests = await poll_snmp(
            client, name, target, credential, plan, TargetState(), remaining=target.deadline
        )
    finally:
        client.close()
    return PollOutcome(batch, requests, time.monotonic() - started)


async def walk(name: str, target: Target, credential: Credential, root: str) -> WalkOutcome:
    """Walk the subtree under numeric OID ``root`` within the target's deadline."""
    started = time.monotonic()
    client = SnmpClient()
    session: PollSession | None = None
    try:
        async with asyncio.timeout(target.deadline):
            session = await client.session(
                name, target, credential, time.monotonic() + target.deadline
            )
            rows = (await session.walk([root]))[root]
            if not rows:
                # a leaf (sysUpTime.0) has nothing under it: read it, as snmpwalk does
                value = (await session.get([root]))[0]
                rows = [("", value)] if value is not None else []
    except TimeoutError:
        answered = session is not None and session.answered > 0
        reason, what = ("deadline", "walk not finished") if answered else ("timeout", "no response")
        raise PollError(name, reason, f"{what} within {target.deadline:g} s") from None
    finally:
        client.close()
    prefix = root.lstrip(".")
    return WalkOutcome(
        [(f"{prefix}.{suffix}" if suffix else prefix, value) for suffix, value in rows],
        session.requests,
        time.monotonic() - started,
    )
