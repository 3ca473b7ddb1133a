"""Why a push is refused, and the JSON error body every refusal carries.

A request is all-or-nothing: any :class:`Rejection` raised while reading,
parsing, authorising or delivering it means none of its samples were written
(except the one documented case of a 503 after the records were handed to
Kafka: see ``Delivery``).

Body::

    {"error": "invalid", "message": "line 3: field 'usage' ...",
     "line": 3, "path": null, "value": "abc", "expected": "a float, ..."}
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

__all__ = ["Rejection", "invalid", "over_limit"]


class Rejection(Exception):
    """A push refused with an HTTP status, a machine reason and a sentence for people."""

    def __init__(
        self,
        status: int,
        reason: str,
        message: str,
        *,
        line: int | None = None,
        path: str | None = None,
        value: Any = None,
        expected: str | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message
        self.line = line
        self.path = path
        self.value = value
        self.expected = expected
        self.retry_after = retry_after

    def body(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"error": self.reason, "message": self.message}
        if self.line is not None:
            doc["line"] = self.line
        if self.path is not None:
            doc["path"] = self.path
        if self.value is not None:
            doc["value"] = _shown(self.value)
        if self.expected is not None:
            doc["expected"] = self.expected
        if self.retry_after is not None:
            doc["retry_after"] = self.retry_after
        return doc

    def response(self) -> web.Response:
        headers = {}
        if self.retry_after is not None:
            headers["Retry-After"] = str(self.retry_after)
        if self.status == 401:
            headers["WWW-Authenticate"] = 'Bearer realm="kemi-stats"'
        return web.Response(
            status=self.status,
            body=orjson.dumps(self.body()),
            content_type="application/json",
            headers=headers,
        )


def _shown(value: Any, limit: int = 200) -> str:
    """The offending value as text, cut so that a 100k-tag line does not echo back whole."""
    if isinstance(value, str):
        text = value
    else:
        try:
            text = repr(value)
        except RecursionError:
            text = f"a {type(value).__name__} nested too deep to show"
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} characters)"


def over_limit(
    what: str, value: int | str, limit: int, setting: str, advice: str = ""
) -> Rejection:
    """A 413 for a request over one of its limits: names the value, the limit and the
    ``KEMI_AGGREGATOR_*`` variable that sets it; nothing of the request was written."""
    return Rejection(
        413,
        "too_large",
        f"{what}: {value}, over the limit of {limit} (KEMI_AGGREGATOR_{setting}); nothing was "
        f"written, {advice or 'split it into smaller requests'}",
        value=value,
        expected=f"at most {limit}",
    )


def invalid(message: str, **kwargs: Any) -> Rejection:
    """A 400 for a body that does not parse or validate."""
    return Rejection(400, "invalid", message, **kwargs)
