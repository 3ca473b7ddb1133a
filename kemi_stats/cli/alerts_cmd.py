"""``kemi-stats alerts`` (pending and firing), ``alerts history`` and ``receiver test NAME``.

Alerts are read from the alert evaluator's HTTP API (``GET /api/v1/alerts``), whose
address is ``--url`` or ``KEMI_ALERTING_EVALUATOR_URL`` (default: the local stack's
evaluator). ``receiver test`` POSTs a signed, versioned test payload exactly as the
notifier would (same body schema, Standard Webhooks' ``webhook-id``/``-timestamp``/
``-signature``, the deprecated ``X-Kemi-Signature``, ``Idempotency-Key``); it prints the
receiver's URL redacted to scheme, host and port, as the notifier logs it.
"""

from __future__ import annotations

import ssl
import time
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime
from typing import Any

import click
import orjson

from kemi_stats.catalogue import SERVICES
from kemi_stats.cli.context import CliContext, fail, pass_ctx
from kemi_stats.cli.output import (
    legacy_json_option,
    output_option,
    print_csv,
    print_records,
    print_table,
)
from kemi_stats.durations import format_duration
from kemi_stats.errors import NotFoundError
from kemi_stats.keyring import require_keyring
from kemi_stats.model import AlertEvent
from kemi_stats.redact import redact_url, redact_urls
from kemi_stats.registry.models import Receiver

__all__ = ["URL_OPTION", "alerts", "evaluator_alerts", "receiver_test_command", "register"]

_DEFAULT_URL = f"http://127.0.0.1:{SERVICES['alert-evaluator'].port}"
URL_OPTION = click.option(
    "--url",
    envvar="KEMI_ALERTING_EVALUATOR_URL",
    default=_DEFAULT_URL,
    show_default=True,
    help="The alert evaluator's HTTP address.",
)


def _format(output: str, as_json: bool) -> str:
    return "json" if as_json else output


def _get(url: str, timeout: float = 5.0) -> Any:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return orjson.loads(resp.read())
    except urllib.error.HTTPError as exc:
        fail(f"alert evaluator {url}: HTTP {exc.code}")
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        fail(f"alert evaluator {url}: cannot connect ({reason}); is alert-evaluator running?")


def evaluator_alerts(url: str) -> list[dict[str, Any]]:
    """The pending and firing alerts the evaluator at ``url`` holds now."""
    return list(_get(url.rstrip("/") + "/api/v1/alerts")["alerts"])


def _when(ms: int) -> str:
    if not ms:
        return "-"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _ago(ms: int, now_ms: int) -> str:
    seconds = max(0, (now_ms - ms) // 1000)
    return format_duration(float(seconds)) if seconds else "0s"


def _table(
    rows: list[list[str]], header: list[str], output: str = "table", empty: str = ""
) -> None:
    if output == "csv":
        names = [h.split(" (")[0].lower() for h in header]  # SINCE (UTC) -> since
        print_csv(names, rows)
        return
    if not rows and empty:
        click.echo(empty)
        return
    print_table(header, rows)


@click.group(invoke_without_command=True)
@URL_OPTION
@output_option()
@legacy_json_option
@click.option("--rule", help="Only alerts of this rule.")
@click.pass_context
def alerts(ctx: click.Context, url: str, output: str, as_json: bool, rule: str | None) -> None:
    """List pending and firing alerts, with since when (see also: alerts history)."""
    ctx.ensure_object(CliContext)
    if ctx.invoked_subcommand is not None:
        return
    doc = _get(url.rstrip("/") + "/api/v1/alerts")
    items = [a for a in doc["alerts"] if rule is None or a["rule"] == rule]
    output = _format(output, as_json)
    if output in ("json", "yaml"):
        print_records(items, [], output)
        return
    now_ms = int(doc.get("now_ms") or time.time() * 1000)
    rows = [
        [
            a["status"] + (" (silenced)" if a.get("silenced") else ""),
            f"{_when(a['since_ms'])} ({_ago(a['since_ms'], now_ms)} ago)",
            a["rule"],
            a["severity"],
            a["resource"],
            a["metric"],
            f"{a['value']:g} {a['condition']}" if a["kind"] == "threshold" else a["condition"],
            a["fingerprint"],
        ]
        for a in items
    ]
    _table(
        rows,
        ["STATUS", "SINCE (UTC)", "RULE", "SEVERITY", "RESOURCE", "METRIC", "VALUE", "FINGERPRINT"],
        output,
        "no pending or firing alerts",
    )


@alerts.command("history")
@URL_OPTION
@output_option()
@legacy_json_option
@click.option("-n", "--limit", type=click.IntRange(1, 100000), default=50, show_default=True)
def alerts_history(url: str, output: str, as_json: bool, limit: int) -> None:
    """Show recent alert transitions (pending, firing, repeat, resolved, ok), oldest first."""
    doc = _get(url.rstrip("/") + f"/api/v1/alerts/history?limit={limit}")
    items = doc["transitions"]
    output = _format(output, as_json)
    if output in ("json", "yaml"):
        print_records(items, [], output)
        return
    rows = [
        [
            _when(e["event_time_ms"]),
            e["status"] + (" (silenced)" if e.get("silenced") else ""),
            e["rule"],
            e["severity"],
            e["resource_id"],
            e["metric"],
            e["reason"],
        ]
        for e in items
    ]
    _table(
        rows,
        ["TIME (UTC)", "STATUS", "RULE", "SEVERITY", "RESOURCE", "METRIC", "REASON"],
        output,
        "no transitions yet",
    )


def _test_event(name: str) -> AlertEvent:
    """A firing alert for a test notification."""
    key = uuid.uuid4().hex
    return AlertEvent(
        fingerprint=key[:16],
        rule="kemi-test",
        status="firing",
        severity="info",
        resource_id="kemi:test",
        metric="kemi_test",
        labels={"alertname": "kemi-test", "severity": "info", "resource": "kemi:test"},
        annotations={"summary": f"test notification from kemi-stats to receiver {name}"},
        value=1.0,
        threshold=0.0,
        reason="kemi-stats receiver test",
        starts_at_ms=int(time.time() * 1000),
    )


def _post(name: str, url: str, body: bytes, headers: dict[str, str], receiver: Receiver) -> str:
    """POST once and print the answer; what went wrong ("" if it was accepted)."""
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    context = ssl.create_default_context(cafile=receiver.ca_file) if receiver.ca_file else None
    started = time.perf_counter()
    where = redact_url(url)
    try:
        with urllib.request.urlopen(request, timeout=receiver.timeout, context=context) as resp:
            status, answer = resp.status, resp.read(300)
    except urllib.error.HTTPError as exc:
        status, answer = exc.code, exc.read(300)
    except (urllib.error.URLError, OSError) as exc:
        elapsed = time.perf_counter() - started
        why = redact_urls(str(getattr(exc, "reason", exc)))
        problem = f"{where}: {why} after {elapsed:.2f} s"
        click.echo(f"receiver {name}: {problem}")
        return f"{problem} (would be retried)"
    elapsed_ms = (time.perf_counter() - started) * 1000
    text = answer.decode(errors="replace").strip()
    click.echo(f"receiver {name}: {where} answered HTTP {status} in {elapsed_ms:.0f} ms")
    if text:
        click.echo(f"  body: {text}")
    if 200 <= status < 300:
        return ""
    retry = "would be retried" if status >= 500 or status == 429 else "is final (no retry)"
    return f"HTTP {status} {retry}"


@click.command("test")
@click.argument("name")
@pass_ctx
def receiver_test_command(obj: CliContext, name: str) -> None:
    """Send a test notification to receiver NAME (every URL of it) and report the answers."""
    from alerting.notifier.payload import notification
    from alerting.settings import AlertingSettings

    require_keyring(obj.settings, "receiver test")  # it signs and authenticates in clear
    try:
        receiver = obj.registry.get("receiver", name).doc
    except NotFoundError:
        fail(f"receiver {name} does not exist")
    links = AlertingSettings().links(obj.settings.tsdb_url)
    notice = notification(name, receiver, "kemi-test{}", {}, [_test_event(name)], links, test=True)
    problems = [_post(name, r.url, r.body, r.headers, receiver) for r in notice.requests]
    click.echo(f"  idempotency key: {notice.idempotency_key}")
    failed = [p for p in problems if p]
    if len(failed) == 1 and len(problems) == 1:
        fail(f"receiver {name}: {failed[0]}")
    if failed:
        fail(f"receiver {name}: {len(failed)} of {len(problems)} destinations failed: {failed[0]}")


def register(cli: click.Group) -> None:
    cli.add_command(alerts)
    receiver = cli.commands.get("receiver")
    if isinstance(receiver, click.Group):
        receiver.add_command(receiver_test_command, "test")
    else:
        cli.add_command(receiver_test_command, "receiver-test")
