"""``X-Kemi-Signature``: HMAC-SHA256 of the exact request body with the receiver's secret.

The header value is ``sha256=<hex digest>``. A receiver verifies it with
:func:`verify` (or the same three lines in any language) before trusting the body.
"""

from __future__ import annotations

import hashlib
import hmac

__all__ = ["HEADER", "sign", "verify"]

HEADER = "X-Kemi-Signature"


def sign(secret: str, body: bytes) -> str:
    """The signature header value for ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str) -> bool:
    """Whether ``header`` is the signature of ``body`` (constant-time comparison)."""
    return hmac.compare_digest(sign(secret, body), header.strip())
