"""Receiver URLs without what makes them credentials, for logs, errors and listings.

A webhook URL is often a bearer secret of its own: Slack's ``/services/T000/B000/XXXX``,
a ``?token=`` query, ``user:password@``. Anything printed (a log line, a dead letter's
``reason``, ``receiver list``) shows only scheme, host and port, and ``/…`` where a
path, query or fragment was cut, so an operator still sees *where* it went.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

__all__ = ["ELLIPSIS", "is_redacted", "redact_url", "redact_urls"]

#: what replaces a path, query and fragment
ELLIPSIS = "…"

# a URL inside free text (an aiohttp or urllib error message): up to blank or quote
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")


def redact_url(url: str) -> str:
    """``https://user:pw@hooks.example.com:8443/services/T0/B0/XX?token=t`` ->
    ``https://hooks.example.com:8443/…``; a URL with nothing to hide is returned as is."""
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unbalanced IPv6 bracket: nothing of it is safe to show
        return ELLIPSIS if url else url
    if not parts.scheme or not parts.netloc:
        return ELLIPSIS if url else url
    host = parts.netloc.rpartition("@")[2]
    hidden = "@" in parts.netloc or parts.path not in ("", "/") or parts.query or parts.fragment
    return (
        f"{parts.scheme}://{host}/{ELLIPSIS}" if hidden else f"{parts.scheme}://{host}{parts.path}"
    )


def redact_urls(text: str) -> str:
    """``text`` with every URL in it redacted (error messages quote the URL they failed on)."""
    return _URL_IN_TEXT.sub(lambda m: redact_url(m.group()), text)


def is_redacted(url: str) -> bool:
    """Whether ``url`` is what :func:`redact_url` prints in place of a longer one (a file
    made from ``show`` output carries it back, and must not replace the stored URL)."""
    return url.endswith(ELLIPSIS)
