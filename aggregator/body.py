"""Reading a request body: size limit, content type, gzip, all before any parsing.

The size limit applies twice: to the bytes on the wire (checked against
Content-Length before reading anything, then while streaming) and to the
decompressed body, so a small gzip bomb is a 413 and not an out-of-memory.
"""

from __future__ import annotations

import zlib

from aiohttp import web

from aggregator.rejection import Rejection, invalid, over_limit

__all__ = [
    "GZIP_OR_IDENTITY",
    "JSON_TYPES",
    "LINE_PROTOCOL_TYPES",
    "OTLP_TYPES",
    "REMOTE_WRITE_TYPES",
    "check_content_type",
    "decode_body",
    "gunzip",
    "read_body",
]

#: media types accepted for line protocol: Telegraf and influxdb-client send text/plain;
#: ``curl --data-binary`` sends form-urlencoded, which InfluxDB accepts as line protocol too
LINE_PROTOCOL_TYPES = frozenset(
    {"", "text/plain", "application/octet-stream", "application/x-www-form-urlencoded"}
)
JSON_TYPES = frozenset({"", "application/json"})
#: Prometheus remote_write 1.0: snappy-compressed protobuf
REMOTE_WRITE_TYPES = frozenset({"", "application/x-protobuf"})
#: OTLP/HTTP: binary protobuf or its JSON mapping
OTLP_TYPES = frozenset({"application/x-protobuf", "application/json"})

_CHUNK = 1 << 16


def check_content_type(request: web.Request, accepted: frozenset[str]) -> None:
    """415 unless the request's media type (parameters ignored) is one of ``accepted``."""
    raw = request.headers.get("Content-Type", "")
    media = raw.split(";", 1)[0].strip().lower()
    if media not in accepted:
        shown = sorted(t for t in accepted if t)
        raise Rejection(
            415,
            "unsupported_media_type",
            f"Content-Type {raw!r} is not accepted here (expected one of {', '.join(shown)})",
            value=raw,
            expected=", ".join(shown),
        )


GZIP_OR_IDENTITY = frozenset({"identity", "gzip", "x-gzip", ""})


async def read_body(
    request: web.Request, limit: int, encodings: frozenset[str] = GZIP_OR_IDENTITY
) -> tuple[bytes, str]:
    """The body as sent and its content encoding; 413 above ``limit``, 415 for an encoding
    not in ``encodings``. :func:`decode_body` decompresses it (off the event loop if large).
    """
    encoding = request.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding not in encodings:
        shown = " or ".join(sorted(e for e in encodings if e and e != "x-gzip"))
        raise Rejection(
            415,
            "unsupported_encoding",
            f"Content-Encoding {encoding!r} is not supported here (expected {shown})",
            value=encoding,
            expected=shown,
        )
    if request.content_length is not None and request.content_length > limit:
        raise over_limit("request body bytes", request.content_length, limit, "MAX_BODY_BYTES")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(_CHUNK):
        size += len(chunk)
        if size > limit:
            raise over_limit("request body bytes", size, limit, "MAX_BODY_BYTES")
        chunks.append(chunk)
    return b"".join(chunks), encoding


def decode_body(raw: bytes, encoding: str, limit: int, max_members: int) -> bytes:
    """The body gunzipped when ``encoding`` says gzip; other encodings (snappy for
    remote_write) are left to the endpoint's parser."""
    if encoding in ("gzip", "x-gzip"):
        return gunzip(raw, limit, max_members)
    return raw


def gunzip(data: bytes, limit: int, max_members: int = 100) -> bytes:
    """Decompress a gzip body of at most ``limit`` bytes and ``max_members`` gzip members.

    Members may be concatenated, as gzip allows. The input is fed in chunks, so the
    cost is linear in its size: no member copies the rest of the body.
    """
    if not data:
        raise invalid("gzip body is empty", expected="a gzip stream")
    view = memoryview(data)
    out: list[bytes] = []
    size = pos = members = 0
    while pos < len(data):
        members += 1
        if members > max_members:
            raise over_limit(
                "gzip members",
                f"more than {max_members}",
                max_members,
                "MAX_GZIP_MEMBERS",
                "send one gzip stream",
            )
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        while not d.eof:
            if pos >= len(data):
                raise invalid(
                    f"gzip body is truncated after {len(data)} bytes",
                    expected="a complete gzip stream",
                )
            chunk = view[pos : pos + _CHUNK]
            try:
                part = d.decompress(chunk, limit - size + 1)
            except zlib.error as exc:
                raise invalid(f"gzip body is corrupt: {exc}", expected="a gzip stream") from None
            size += len(part)
            if size > limit or d.unconsumed_tail:
                raise over_limit(
                    "decompressed body bytes", f"more than {limit}", limit, "MAX_BODY_BYTES"
                )
            out.append(part)
            pos += len(chunk) - len(d.unused_data)
    return b"".join(out)
