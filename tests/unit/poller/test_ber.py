"""The lean BER codec against pysnmp's own: same request bytes, same values read back."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyasn1.codec.ber import decoder, encoder
from pysnmp.proto import api

from poller.ber import (
    END_OF_MIB,
    GET,
    GETBULK,
    GETNEXT,
    BerError,
    decode_response,
    encode_request,
    oid_bytes,
    oid_text,
    suffix_text,
)
from poller.pysnmp_engine import convert_value

V2C = api.v2c


def _pysnmp_request(version: int, pdu_type: int, rid: int, oids: list[str], reps: int) -> bytes:
    proto = api.v1 if version == 0 else V2C
    pdu_class = {GET: proto.GetRequestPDU, GETNEXT: proto.GetNextRequestPDU}.get(pdu_type)
    pdu = pdu_class() if pdu_class is not None else V2C.GetBulkRequestPDU()
    api_pdu = proto.apiPDU if pdu_class is not None else V2C.apiBulkPDU
    api_pdu.set_defaults(pdu)
    api_pdu.set_request_id(pdu, rid)
    if pdu_class is None:
        V2C.apiBulkPDU.set_non_repeaters(pdu, 0)
        V2C.apiBulkPDU.set_max_repetitions(pdu, reps)
    api_pdu.set_varbinds(pdu, [(o, proto.Null("")) for o in oids])
    msg = proto.Message()
    proto.apiMessage.set_defaults(msg)
    proto.apiMessage.set_community(msg, "s3cr3t")
    proto.apiMessage.set_pdu(msg, pdu)
    return bytes(encoder.encode(msg))


def _pysnmp_response(rid: int, status: int, index: int, varbinds: list[tuple[str, Any]]) -> bytes:
    pdu = V2C.ResponsePDU()
    V2C.apiPDU.set_defaults(pdu)
    V2C.apiPDU.set_request_id(pdu, rid)
    V2C.apiPDU.set_error_status(pdu, status)
    V2C.apiPDU.set_error_index(pdu, index)
    V2C.apiPDU.set_varbinds(pdu, varbinds)
    msg = V2C.Message()
    V2C.apiMessage.set_defaults(msg)
    V2C.apiMessage.set_community(msg, "public")
    V2C.apiMessage.set_pdu(msg, pdu)
    return bytes(encoder.encode(msg))


_OIDS = st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=14).map(
    lambda tail: ".".join(map(str, [1, 3, *tail]))
)


@settings(max_examples=150, deadline=None)
@given(
    version=st.sampled_from([0, 1]),
    pdu_type=st.sampled_from([GET, GETNEXT, GETBULK]),
    rid=st.integers(0, 2**31 - 1),
    oids=st.lists(_OIDS, min_size=1, max_size=40),
    reps=st.integers(0, 200),
)
def test_requests_are_byte_identical_to_pysnmp(
    version: int, pdu_type: int, rid: int, oids: list[str], reps: int
) -> None:
    if version == 0 and pdu_type == GETBULK:
        version = 1
    ours = encode_request(
        version, b"s3cr3t", pdu_type, rid, [oid_bytes(o) for o in oids], 0,
        reps if pdu_type == GETBULK else 0,
    )  # fmt: skip
    assert ours == _pysnmp_request(version, pdu_type, rid, oids, reps)


_VALUES = st.one_of(
    st.integers(-(2**31), 2**31 - 1).map(V2C.Integer32),
    st.binary(max_size=300).map(V2C.OctetString),
    st.text(max_size=40).map(lambda s: V2C.OctetString(s.encode())),
    st.just(V2C.Null("")),
    _OIDS.map(V2C.ObjectIdentifier),
    st.binary(min_size=4, max_size=4).map(V2C.IpAddress),
    st.integers(0, 2**32 - 1).map(V2C.Counter32),
    st.integers(0, 2**32 - 1).map(V2C.Gauge32),
    st.integers(0, 2**32 - 1).map(V2C.TimeTicks),
    st.integers(0, 2**32 - 1).map(V2C.Unsigned32),
    st.binary(max_size=20).map(V2C.Opaque),
    st.integers(0, 2**64 - 1).map(V2C.Counter64),
    st.sampled_from([V2C.NoSuchObject(""), V2C.NoSuchInstance(""), V2C.EndOfMibView("")]),
)


@settings(max_examples=200, deadline=None)
@given(
    rid=st.integers(0, 2**31 - 1),
    status=st.integers(0, 18),
    index=st.integers(0, 100),
    varbinds=st.lists(st.tuples(_OIDS, _VALUES), max_size=60),
)
def test_responses_read_as_pysnmp_reads_them(
    rid: int, status: int, index: int, varbinds: list[tuple[str, Any]]
) -> None:
    data = _pysnmp_response(rid, status, index, varbinds)
    msg, _ = decoder.decode(data, asn1Spec=V2C.Message())
    theirs = V2C.apiPDU.get_varbinds(V2C.apiMessage.get_pdu(msg))
    got_rid, got_status, got_index, ours = decode_response(data)
    assert (got_rid, got_status, got_index) == (rid, status, index)
    assert len(ours) == len(theirs)
    for (oid, value), (name, their_value) in zip(ours, theirs, strict=True):
        assert oid_text(oid) == ".".join(map(str, name.asTuple()))
        assert value == convert_value(their_value)


def test_value_kinds_and_end_of_mib() -> None:
    data = _pysnmp_response(7, 0, 0, [
        ("1.3.6.1.2.1.1.3.0", V2C.TimeTicks(123)),
        ("1.3.6.1.2.1.2.2.1.10.1", V2C.Counter32(2**32 - 1)),
        ("1.3.6.1.2.1.31.1.1.1.6.1", V2C.Counter64(2**64 - 1)),
        ("1.3.6.1.2.1.2.2.1.2.1", V2C.OctetString(b"eth0\x00")),
        ("1.3.6.1.2.1.4.20.1.1.10.0.0.1", V2C.IpAddress("10.0.0.1")),
        ("1.3.6.1.2.1.1.9.9", V2C.NoSuchInstance("")),
        ("1.3.6.1.2.1.1.9.9", V2C.EndOfMibView("")),
    ])  # fmt: skip
    values = [v for _, v in decode_response(data)[3]]
    assert values == [
        ("gauge", 123), ("counter32", 2**32 - 1), ("counter64", 2**64 - 1),
        ("string", "eth0"), ("string", "10.0.0.1"), None, END_OF_MIB,
    ]  # fmt: skip


def _tlv(tag: int, content: bytes) -> bytes:
    assert len(content) < 0x80
    return bytes((tag, len(content))) + content


def test_unsigned_values_without_their_leading_zero_read_unsigned() -> None:
    # some agents send Counter32 4294967295 as ff ff ff ff, which pysnmp reads as -1
    varbind = _tlv(0x30, _tlv(0x06, oid_bytes("1.3.6.1.2.1.2.2.1.10.1")) + _tlv(0x41, b"\xff" * 4))
    pdu = _tlv(0xA2, b"\x02\x01\x01\x02\x01\x00\x02\x01\x00" + _tlv(0x30, varbind))
    data = _tlv(0x30, b"\x02\x01\x01" + _tlv(0x04, b"public") + pdu)
    assert decode_response(data)[3][0][1] == ("counter32", 2**32 - 1)


def test_every_truncation_of_a_response_is_a_ber_error() -> None:
    data = _pysnmp_response(9, 0, 0, [
        ("1.3.6.1.2.1.2.2.1.10.1", V2C.Counter32(5)), ("1.3.6.1.2.1.2.2.1.2.1", V2C.OctetString("x" * 200)),
    ])  # fmt: skip
    for cut in range(len(data)):
        with pytest.raises(BerError):
            decode_response(data[:cut])


_VALID = _pysnmp_response(3, 0, 0, [
    ("1.3.6.1.2.1.2.2.1.10.1", V2C.Counter32(5)), ("1.3.6.1.2.1.2.2.1.2.1", V2C.OctetString("eth0")),
    ("1.3.6.1.2.1.31.1.1.1.6.1", V2C.Counter64(2**40)), ("1.3.6.1.2.1.1.2.0", V2C.ObjectIdentifier("1.3.6.1.4.1.8072")),
])  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=200) | st.tuples(st.integers(0, len(_VALID) - 1), st.integers(0, 255)))
def test_garbage_and_corrupted_responses_are_ber_errors_or_responses(
    case: bytes | tuple[int, int],
) -> None:
    if isinstance(case, tuple):
        at, byte = case
        case = _VALID[:at] + bytes((byte,)) + _VALID[at + 1 :]
    with contextlib.suppress(BerError):
        decode_response(case)


def test_oids_and_row_indexes() -> None:
    assert oid_bytes("1.3.6.1.2.1.1.3.0") == b"+\x06\x01\x02\x01\x01\x03\x00"
    assert oid_bytes(".1.3.6.1.4.1.2021.10.1.3.1") == oid_bytes("1.3.6.1.4.1.2021.10.1.3.1")
    assert oid_text(oid_bytes("1.3.6.1.4.1.4294967295.128.0")) == "1.3.6.1.4.1.4294967295.128.0"
    assert suffix_text(oid_bytes("1.3.6.1.2.1.2.2.1.10.12")[9:]) == ("12", (12,))
    assert suffix_text(bytes([0x81, 0x00, 0x05])) == ("128.5", (128, 5))
    with pytest.raises(ValueError):
        oid_bytes("1.3.x")
    with pytest.raises(BerError):
        suffix_text(bytes([0x81]))
