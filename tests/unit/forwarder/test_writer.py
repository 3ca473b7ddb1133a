"""The writer retries what the TSDB could not take, and bisects what it refused."""

from __future__ import annotations

import asyncio

import pytest
from influxdb_client.rest import ApiException

from forwarder.settings import ForwarderSettings
from forwarder.writer import (
    Origin,
    RejectedWrite,
    RetryableWrite,
    TsdbWriter,
    _count_fields,
    classify,
)
from kemi_stats.settings import Settings

ORIGIN = Origin({("kemi.metrics", 0): (10, 20)})


def _writer() -> TsdbWriter:
    fwd = ForwarderSettings(backoff_initial=0.01, backoff_max=0.02)
    return TsdbWriter(Settings(tsdb_url="http://127.0.0.1:9"), fwd)


@pytest.mark.parametrize(
    ("status", "kind"),
    [(400, RejectedWrite), (413, RejectedWrite), (422, RejectedWrite), (401, RetryableWrite),
     (404, RetryableWrite), (429, RetryableWrite), (500, RetryableWrite), (503, RetryableWrite)],
)  # fmt: skip
def test_classify_http_status(status: int, kind: type) -> None:
    assert isinstance(classify(ApiException(status=status, reason="x")), kind)


def test_classify_connection_errors_are_retryable() -> None:
    failure = classify(OSError("[Errno 111] Connection refused"))
    assert isinstance(failure, RetryableWrite) and failure.reason == "unreachable"


async def test_retries_until_accepted_and_reports_failing() -> None:
    w = _writer()
    calls: list[int] = []

    def post(lines: list[str]) -> None:
        calls.append(len(lines))
        if len(calls) < 4:
            raise RetryableWrite("unreachable", "Connection refused")

    w.post = post  # type: ignore[method-assign]
    try:
        assert await w.write(["a x=1 1", "b x=1 1"], 2, ORIGIN) == 2
    finally:
        w.close()
    assert calls == [2, 2, 2, 2]
    assert w.failing_since is None


async def test_failing_since_is_set_while_down() -> None:
    w = _writer()

    def post(lines: list[str]) -> None:
        raise RetryableWrite("unreachable", "Connection refused")

    w.post = post  # type: ignore[method-assign]
    task = asyncio.create_task(w.write(["a x=1 1"], 1, ORIGIN))
    await asyncio.sleep(0.1)
    assert w.failing_since is not None and "refused" in w.last_error
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    w.close()


async def test_refused_batch_is_bisected_down_to_the_bad_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    w = _writer()
    lines = [f",resource=r{i} m{i}=1,n{i}=2 1" for i in range(9)]
    bad = lines[5]
    accepted: list[str] = []

    def post(part: list[str]) -> None:
        if bad in part:
            raise RejectedWrite("http_400", "HTTP 400 bad line")
        accepted.extend(part)

    w.post = post  # type: ignore[method-assign]
    try:
        assert await w.write(lines, 18, ORIGIN) == 16
    finally:
        w.close()
    assert sorted(accepted) == sorted(x for x in lines if x != bad)
    assert "rejected a line from kemi.metrics [p0 10-20]" in caplog.text


def test_count_fields_respects_escapes() -> None:
    assert _count_fields(",k=a\\ b,resource=x m\\,1=1,n=2u 5") == 2
    assert _count_fields("garbage") == 0


async def test_a_refused_record_of_several_lines_is_split_into_its_lines() -> None:
    w = _writer()
    record = ",resource=a m=1 1\n,resource=a,k=v bad 1\n,resource=a n=2u 1"
    accepted: list[str] = []

    def post(part: list[str]) -> None:
        if any("bad" in item for item in part):
            raise RejectedWrite("http_400", "HTTP 400 bad line")
        accepted.extend(part)

    w.post = post  # type: ignore[method-assign]
    try:
        assert await w.write(["x m=1 1", record], 4, ORIGIN) == 3
    finally:
        w.close()
    assert sorted(accepted) == [",resource=a m=1 1", ",resource=a n=2u 1", "x m=1 1"]
    assert _count_fields(record) == 3
