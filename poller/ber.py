"""SNMP v1/v2c messages in BER, lean: GET, GETNEXT and GETBULK requests, and their responses.

The hot path of a community poll, without pyasn1's object per node: a request is built
from bytes, a response is read into ``(oid, value)`` pairs in one pass. OIDs stay as the
content bytes of their BER encoding (``1.3.6.1.2.1.1.3.0`` is ``b"+\\x06\\x01\\x02\\x01\\x01\\x03\\x00"``):
a column's rows are the OIDs whose bytes start with the column's bytes, because every
sub-identifier is self-delimiting, and the next request names them as they came.

Values are converted as pysnmp's are by ``poller.snmp`` (see :data:`SnmpValue`), except
that unsigned types are read unsigned even when an agent leaves out the leading zero
byte. SNMPv3 (USM, engine discovery, privacy) is not here: it stays with pysnmp.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

__all__ = [
    "END_OF_MIB",
    "GET",
    "GETBULK",
    "GETNEXT",
    "BerError",
    "Response",
    "SnmpValue",
    "decode_response",
    "encode_request",
    "oid_bytes",
    "oid_text",
    "suffix_text",
]

#: (type, value): type is counter32 | counter64 | gauge | string
SnmpValue = tuple[str, int | float | str]
#: a walk's column ended (endOfMibView); never a value of a sample
END_OF_MIB: Final[SnmpValue] = ("end", 0)

GET: Final = 0xA0
GETNEXT: Final = 0xA1
_RESPONSE: Final = 0xA2
GETBULK: Final = 0xA5

#: request id, error status, error index, varbinds (OID bytes, value or None if absent)
Response = tuple[int, int, int, list[tuple[bytes, "SnmpValue | None"]]]


class BerError(ValueError):
    """A datagram that is not an SNMP v1/v2c response."""


def _length(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(body),)) + body


def _tlv(tag: int, content: bytes) -> bytes:
    return bytes((tag,)) + _length(len(content)) + content


def _integer(n: int) -> bytes:
    return _tlv(0x02, n.to_bytes(n.bit_length() // 8 + 1, "big", signed=True))


def oid_bytes(oid: str) -> bytes:
    """The content bytes of ``oid`` (dotted, a leading dot allowed) in BER."""
    parts = [int(p) for p in oid.strip(".").split(".")]
    if len(parts) < 2 or parts[0] > 2 or (parts[0] < 2 and parts[1] > 39):
        raise ValueError(f"not an OID: {oid!r}")
    out = bytearray()
    for n in [parts[0] * 40 + parts[1], *parts[2:]]:
        if n < 0:
            raise ValueError(f"not an OID: {oid!r}")
        chunk = [n & 0x7F]
        n >>= 7
        while n:
            chunk.append(0x80 | (n & 0x7F))
            n >>= 7
        out.extend(reversed(chunk))
    return bytes(out)


def _subids(content: bytes) -> list[int]:
    out: list[int] = []
    n = 0
    for b in content:
        n = (n << 7) | (b & 0x7F)
        if not b & 0x80:
            out.append(n)
            n = 0
    if n or (content and content[-1] & 0x80):
        raise BerError("an OID ends inside a sub-identifier")
    return out


def oid_text(content: bytes) -> str:
    """Dotted text of an OID's content bytes."""
    subids = _subids(content)
    if not subids:
        return ""
    first = subids[0]
    head = [first // 40, first % 40] if first < 80 else [2, first - 80]
    return ".".join(map(str, head + subids[1:]))


def suffix_text(content: bytes) -> tuple[str, tuple[int, ...]]:
    """A row index (the sub-identifiers after a column's OID) as text and as numbers."""
    if max(content, default=0) < 0x80:
        return ".".join(map(str, content)), tuple(content)
    subids = _subids(content)
    return ".".join(map(str, subids)), tuple(subids)


_NULL_VARBINDS: dict[bytes, bytes] = {}


def _null_varbind(oid: bytes) -> bytes:
    """The varbind (oid, NULL) of a request; kept, since polls ask for the same OIDs."""
    if len(_NULL_VARBINDS) > 200_000:
        _NULL_VARBINDS.clear()
    varbind = _NULL_VARBINDS[oid] = _tlv(0x30, _tlv(0x06, oid) + b"\x05\x00")
    return varbind


def encode_request(
    version: int,
    community: bytes,
    pdu: int,
    request_id: int,
    oids: Sequence[bytes],
    non_repeaters: int = 0,
    max_repetitions: int = 0,
) -> bytes:
    """A v1 (``version`` 0) or v2c (1) request for ``oids`` (content bytes) with NULL values."""
    known = _NULL_VARBINDS.get
    varbinds = b"".join([known(o) or _null_varbind(o) for o in oids])
    body = (
        _integer(request_id)
        + _integer(non_repeaters)
        + _integer(max_repetitions)
        + _tlv(0x30, varbinds)
    )
    return _tlv(0x30, _integer(version) + _tlv(0x04, community) + _tlv(pdu, body))


def _string(v: bytes) -> SnmpValue:
    return "string", v.decode("utf-8", "replace").rstrip("\x00")


_CONVERT = {
    0x02: lambda v: ("gauge", int.from_bytes(v, "big", signed=True)),
    0x04: _string,
    0x05: lambda v: ("string", ""),
    0x06: lambda v: ("string", oid_text(v)),
    0x40: lambda v: ("string", ".".join(map(str, v))),
    0x41: lambda v: ("counter32", int.from_bytes(v, "big")),
    0x42: lambda v: ("gauge", int.from_bytes(v, "big")),
    0x43: lambda v: ("gauge", int.from_bytes(v, "big")),
    0x44: _string,
    0x46: lambda v: ("counter64", int.from_bytes(v, "big")),
    0x47: lambda v: ("gauge", int.from_bytes(v, "big")),
    0x80: lambda v: None,
    0x81: lambda v: None,
    0x82: lambda v: END_OF_MIB,
}


def _header(data: bytes, pos: int, tag: int) -> tuple[int, int]:
    """Skip the tag at ``pos`` (it must be ``tag``); (start of its content, its length)."""
    if data[pos] != tag:
        raise BerError(f"expected tag 0x{tag:02x} at byte {pos}, found 0x{data[pos]:02x}")
    n = data[pos + 1]
    if n < 0x80:
        return pos + 2, n
    width = n & 0x7F
    if not 0 < width <= 4:
        raise BerError(f"unsupported length at byte {pos}")
    return pos + 2 + width, int.from_bytes(data[pos + 2 : pos + 2 + width], "big")


def _int_at(data: bytes, pos: int) -> tuple[int, int]:
    start, n = _header(data, pos, 0x02)
    return int.from_bytes(data[start : start + n], "big", signed=True), start + n


def decode_response(data: bytes) -> Response:
    """Read a v1/v2c Response-PDU; raise BerError if the datagram is not one."""
    try:
        start, n = _header(data, 0, 0x30)
        if start + n != len(data):
            raise BerError("message length does not match the datagram")
        _, pos = _int_at(data, start)  # version
        start, n = _header(data, pos, 0x04)  # community
        start, n = _header(data, start + n, _RESPONSE)
        request_id, pos = _int_at(data, start)
        status, pos = _int_at(data, pos)
        index, pos = _int_at(data, pos)
        start, n = _header(data, pos, 0x30)
        return request_id, status, index, _varbinds(data, start, start + n)
    except IndexError:
        raise BerError("the datagram ends early") from None


def _varbinds(data: bytes, pos: int, end: int) -> list[tuple[bytes, SnmpValue | None]]:
    out: list[tuple[bytes, SnmpValue | None]] = []
    append = out.append
    convert = _CONVERT
    while pos < end:
        if data[pos] != 0x30:
            raise BerError(f"expected a varbind at byte {pos}")
        n = data[pos + 1]
        pos += 2 if n < 0x80 else 2 + (n & 0x7F)
        if data[pos] != 0x06:
            raise BerError(f"expected an OID at byte {pos}")
        n = data[pos + 1]
        if n < 0x80:
            oid = data[pos + 2 : pos + 2 + n]
            pos += 2 + n
        else:
            start, n = _header(data, pos, 0x06)
            oid = data[start : start + n]
            pos = start + n
        tag = data[pos]
        n = data[pos + 1]
        if n < 0x80:
            raw = data[pos + 2 : pos + 2 + n]
            pos += 2 + n
        else:
            start, n = _header(data, pos, tag)
            raw = data[start : start + n]
            pos = start + n
        if pos > end:
            raise BerError("a varbind runs past the end of the message")
        fn = convert.get(tag)
        append((oid, fn(raw) if fn is not None else ("string", raw.hex(":"))))
    return out
