"""Reading protobuf's wire format by hand, where a message class costs too much: base-128
varints and skipping a field by its wire type (used by the remote_write parser and the
forwarder's record shapes)."""

from __future__ import annotations

__all__ = ["MalformedWire", "read_varint", "skip_field"]


class MalformedWire(ValueError):
    """The bytes are not protobuf's wire format (a truncated read raises IndexError)."""


def read_varint(data: bytes, i: int) -> tuple[int, int]:
    """The varint at ``data[i]`` and the offset after it."""
    byte = data[i]
    if byte < 0x80:
        return byte, i + 1
    result = byte & 0x7F
    shift = 7
    i += 1
    while True:
        byte = data[i]
        result |= (byte & 0x7F) << shift
        i += 1
        if byte < 0x80:
            return result, i
        shift += 7
        if shift > 63:
            raise MalformedWire("varint longer than 10 bytes")


def skip_field(data: bytes, tag: int, i: int) -> int:
    """The offset after the value of a field with ``tag`` starting at ``i`` (it may lie past
    the end of ``data``: the caller checks it against its bounds)."""
    wire = tag & 7
    if wire == 0:
        return read_varint(data, i)[1]
    if wire == 1:
        return i + 8
    if wire == 2:
        length, i = read_varint(data, i)
        return i + length
    if wire == 5:
        return i + 4
    raise MalformedWire(f"wire type {wire}")
