"""The notification pipeline, assembled in one place.

```
kemi.alerts record
  -> route        one job per receiver named by the rule (pending/ok transitions stop here)
  -> per-receiver queue and task   (a slow or dead receiver only ever waits for itself)
       -> group        by rule + group_by labels, for the receiver's group_wait
       -> silence      drop alerts covered by a silence
       -> dedup        drop what was delivered already; resolved only after a delivered firing
       -> retry(send)  POST the payload (kemi's signed webhook, Alertmanager's webhook, or
                       Alertmanager's API: every URL of an HA set); backoff + jitter on
                       timeout/connection/5xx/429
       (Alertmanager receivers: the firing alerts are sent again every resend_interval)
       -> log | dead-letter   record delivered keys, or publish to kemi.alerts.dead
  -> ack          the record's offset becomes committable when every receiver acked it
```
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from prometheus_client import Counter, Gauge, Histogram

from alerting.notifier.deadletter import DeadLetters
from alerting.notifier.dedup import NotificationLog, to_send
from alerting.notifier.group import Group, Grouper, Job
from alerting.notifier.payload import HttpRequest, Links, notification
from alerting.notifier.retry import Outcome, RetryPolicy, deliver
from alerting.notifier.send import DeliveryError, WebhookSender
from alerting.notifier.silence import not_silenced
from alerting.settings import AlertingSettings
from alerting.silences import SilenceSet
from kemi_stats.model import AlertEvent
from kemi_stats.redact import redact_urls
from kemi_stats.registry.models import Receiver

__all__ = ["NOTIFIED_STATUSES", "Pipeline", "ReceiverWorker"]

log = logging.getLogger(__name__)

#: transitions that can become notifications; pending and ok are only recorded
NOTIFIED_STATUSES = frozenset({"firing", "repeat", "resolved"})

NOTIFICATIONS = Counter(
    "kemi_notifier_notifications_total",
    "Notifications by receiver and outcome",
    ["receiver", "outcome"],
)
ALERTS_SKIPPED = Counter(
    "kemi_notifier_alerts_skipped_total", "Alerts not notified, by reason", ["receiver", "reason"]
)
ATTEMPTS = Counter("kemi_notifier_attempts_total", "HTTP attempts", ["receiver"])
DELIVERY_SECONDS = Histogram(
    "kemi_notifier_delivery_seconds", "From group flush to delivered (incl. retries)", ["receiver"]
)
RESENDS = Counter(
    "kemi_notifier_resends_total",
    "Re-sends of firing alerts to Alertmanager, by outcome",
    ["receiver", "outcome"],
)
QUEUED = Gauge("kemi_notifier_queued_jobs", "Jobs waiting in a receiver's queue", ["receiver"])


class ReceiverWorker:
    """One receiver: its queue, its open groups and the task that flushes them in order."""

    def __init__(self, name: str, pipeline: Pipeline) -> None:
        self.name = name
        self.pipeline = pipeline
        self.queue: asyncio.Queue[Job] = asyncio.Queue()
        self.grouper = Grouper()
        self.task: asyncio.Task[None] | None = None
        self.busy_since: float | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self._run(), name=f"receiver:{self.name}")

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task

    def put(self, job: Job) -> None:
        self.queue.put_nowait(job)
        QUEUED.labels(self.name).set(self.queue.qsize())

    def _resend_interval(self) -> float | None:
        receiver = self.pipeline.receiver(self.name)
        return (
            receiver.resend_interval if receiver is not None and receiver.is_alertmanager else None
        )

    async def _run(self) -> None:
        next_resend = time.monotonic()
        while True:
            deadline = self.grouper.next_deadline()
            every = self._resend_interval()
            if every is not None:
                deadline = next_resend if deadline is None else min(deadline, next_resend)
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                job = await asyncio.wait_for(self.queue.get(), timeout)
            except TimeoutError:
                pass
            else:
                self.grouper.add(job, time.monotonic(), self.pipeline.group_wait(self.name))
                QUEUED.labels(self.name).set(self.queue.qsize())
                continue
            for group in self.grouper.due(time.monotonic()):
                try:
                    await self._flush(group)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    # not acked: the records stay uncommitted and come back after a restart
                    log.exception("receiver %s: group %s failed", self.name, group.key)
            if every is not None and time.monotonic() >= next_resend:
                next_resend = time.monotonic() + every
                try:
                    await self.resend()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("receiver %s: re-send failed", self.name)

    async def _flush(self, group: Group) -> None:
        p = self.pipeline
        events = group.events()
        receiver = p.receiver(self.name)
        if receiver is None:
            reason = f"receiver {self.name} is not defined in the registry"
            await p.dead.publish(self.name, [e for e in events if e.status != "resolved"], reason)
            NOTIFICATIONS.labels(self.name, "dead").inc()
            log.error("%s: %d alert(s) dead-lettered", reason, len(events))
        else:
            keep, muted = not_silenced(p.silences, events, time.time())
            if muted:
                ALERTS_SKIPPED.labels(self.name, "silenced").inc(len(muted))
            send, keys = to_send(p.log, self.name, keep)
            if len(send) < len(keep):
                ALERTS_SKIPPED.labels(self.name, "dedup").inc(len(keep) - len(send))
            if send:
                await self._deliver(receiver, group, send, keys)
        for job in group.jobs:
            job.ack()

    async def _deliver(
        self, receiver: Receiver, group: Group, events: list[AlertEvent], keys: list[str]
    ) -> None:
        p = self.pipeline
        notice = notification(self.name, receiver, group.key, group.labels, events, p.links)
        policy = RetryPolicy.for_receiver(
            receiver, p.settings.backoff_initial, p.settings.backoff_max
        )

        async def post(request: HttpRequest) -> Outcome:
            async def send_once() -> int:
                ATTEMPTS.labels(self.name).inc()
                # signed again: the timestamp is the attempt's, receivers refuse old ones
                return await p.sender.send(
                    self.name, request.url, request.body, request.headers_at(), receiver.timeout,
                    receiver.ca_file,
                )  # fmt: skip

            return await deliver(send_once, policy)

        self.busy_since = time.monotonic()
        try:
            outcomes = await _first_success(
                [asyncio.create_task(post(r)) for r in notice.requests], receiver.timeout
            )
        finally:
            self.busy_since = None
        delivered = [o for o in outcomes if o.ok]
        for o in outcomes:
            if not o.ok and delivered:
                log.warning("receiver %s: one destination failed: %s", self.name, o.reason)
        if delivered:
            p.log.record(self.name, keys)
            if receiver.is_alertmanager:
                p.log.track_active(self.name, events)
            NOTIFICATIONS.labels(self.name, "delivered").inc()
            DELIVERY_SECONDS.labels(self.name).observe(min(o.elapsed for o in delivered))
            log.info(
                "receiver %s: delivered %s (%d alert(s), %d attempt(s), key %s)",
                self.name, notice.status, len(events), sum(o.attempts for o in outcomes),
                notice.idempotency_key,
            )  # fmt: skip
        else:
            # redacted at the source already; again here, as reasons are kept for days
            reason = redact_urls("; ".join(o.reason for o in outcomes))
            await p.dead.publish(self.name, events, reason)
            NOTIFICATIONS.labels(self.name, "dead").inc()
            log.error("receiver %s: dead-lettered %d alert(s): %s", self.name, len(events), reason)

    async def resend(self) -> None:
        """Send an Alertmanager receiver's firing alerts again (once, no retries): Alertmanager
        resolves an alert by itself when its ``endsAt`` passes without a re-send."""
        p = self.pipeline
        receiver = p.receiver(self.name)
        if receiver is None or not receiver.is_alertmanager:
            return
        active, _ = not_silenced(p.silences, p.log.active(self.name), time.time())
        if not active:
            return
        notice = notification(self.name, receiver, "", {}, active, p.links)
        for request in notice.requests:
            ATTEMPTS.labels(self.name).inc()
            try:
                await p.sender.send(
                    self.name, request.url, request.body, request.headers_at(), receiver.timeout,
                    receiver.ca_file,
                )  # fmt: skip
            except DeliveryError as exc:
                RESENDS.labels(self.name, "failed").inc()
                log.warning("receiver %s: re-send of %d alert(s) failed: %s",
                            self.name, len(active), exc)  # fmt: skip
            else:
                RESENDS.labels(self.name, "sent").inc()


async def _first_success(tasks: list[asyncio.Task[Outcome]], grace: float) -> list[Outcome]:
    """The outcomes of POSTs to every destination of a notification (every Alertmanager of an
    HA set gets every alert). Once one destination took it, the others get ``grace`` seconds
    more, then their retries stop: one Alertmanager down must not hold the receiver for
    minutes, and the firing alerts reach it again with the next re-send."""
    pending = set(tasks)
    try:
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            if any(t.result().ok for t in done):
                if pending:
                    done, pending = await asyncio.wait(pending, timeout=grace)
                break
    finally:
        for t in pending:
            t.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
    cut = f"stopped: another destination took it and {grace:g} s passed"
    return [
        t.result() if t.done() and not t.cancelled() else Outcome(False, 0, 0.0, reason=cut)
        for t in tasks
    ]


@dataclass
class Pipeline:
    """Routes alert transitions to per-receiver workers and holds what the stages share."""

    settings: AlertingSettings
    #: the receivers in force now (the registry's live view)
    receivers: Callable[[], dict[str, Receiver]]
    silences: SilenceSet
    #: the notification log (what was delivered already)
    log: NotificationLog
    sender: WebhookSender
    dead: DeadLetters
    #: what Alertmanager-format payloads link to
    links: Links = field(default_factory=lambda: Links("", ""))
    workers: dict[str, ReceiverWorker] = field(default_factory=dict)

    def receiver(self, name: str) -> Receiver | None:
        return self.receivers().get(name)

    def group_wait(self, name: str) -> float:
        if self.settings.group_wait is not None:
            return self.settings.group_wait
        r = self.receiver(name)
        return r.group_wait if r is not None else 0.0

    def targets(self, event: AlertEvent) -> list[str]:
        """The receivers a transition goes to (none for pending/ok)."""
        if event.status not in NOTIFIED_STATUSES:
            return []
        return list(dict.fromkeys(event.receivers))

    def submit(self, event: AlertEvent, receivers: list[str], ack: Callable[[], None]) -> None:
        for name in receivers:
            worker = self.workers.get(name)
            if worker is None:
                worker = self.workers[name] = ReceiverWorker(name, self)
                worker.start()
            worker.put(Job(event, ack))

    async def stop(self) -> None:
        for worker in self.workers.values():
            await worker.stop()

    def stuck(self, longer_than: float) -> list[str]:
        """Receivers whose current delivery has been retrying for more than ``longer_than`` s."""
        now = time.monotonic()
        return [
            n for n, w in self.workers.items() if w.busy_since and now - w.busy_since > longer_than
        ]
