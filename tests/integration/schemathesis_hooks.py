"""schemathesis hooks for the aggregator's document: send binary bodies as they are.

remote_write and OTLP bodies are ``application/x-protobuf``; schemathesis has no
serializer for it, so generated values go out as raw bytes (the aggregator must answer
them with a 4xx, never a 5xx).
"""

from __future__ import annotations

from typing import Any

import schemathesis


@schemathesis.serializer("application/x-protobuf")
def protobuf(ctx: Any, value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    return str(value).encode()
