"""Per-token rate limits in samples per second (the registry Token's ``rate_limit``).

A token bucket that may go into debt: a request is admitted while the bucket is
not empty and then pays for all its samples, so one large request is never
refused forever, and the long-run rate still holds. An empty bucket answers 429
with the seconds until it refills above zero.

The buckets live in a :class:`LocalBuckets` dict, or, when the aggregator runs
several processes on one port (``KEMI_AGGREGATOR_PROCESSES``), in
:class:`SharedBuckets`: a small file every process maps, locked for the moment of
one request's charge, so a token's limit holds over all of them whichever process
a connection lands on. ``time.monotonic`` is the machine's clock (CLOCK_MONOTONIC),
the same in every process.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import math
import mmap
import os
import struct
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol

__all__ = ["Bucket", "LocalBuckets", "RateLimiter", "SharedBuckets"]

log = logging.getLogger(__name__)

#: (rate, level, stamp) of one token's bucket
Bucket = tuple[float, float, float]


class Buckets(Protocol):
    def update(self, name: str, change: Callable[[Bucket | None], Bucket]) -> None:
        """Replace ``name``'s bucket by ``change(bucket)`` (None: none yet), atomically."""


class LocalBuckets:
    """Buckets of this process alone."""

    def __init__(self) -> None:
        self._buckets: dict[str, Bucket] = {}

    def update(self, name: str, change: Callable[[Bucket | None], Bucket]) -> None:
        self._buckets[name] = change(self._buckets.get(name))


#: one slot: the token name's 8-byte digest (0: free), then rate, level, stamp
_SLOT = struct.Struct("<Qddd")


class SharedBuckets:
    """Buckets in a file every process of the aggregator maps (``slots`` tokens at most).

    A slot is found by the 64-bit BLAKE2 digest of the token name, probing linearly.
    A ``fcntl`` lock on the file covers each update: a request's charge, not its work.
    When every slot is taken (more tokens with limits than ``slots``), a token without
    one is limited in this process alone, and a warning says so once.
    """

    def __init__(self, path: Path, slots: int = 4096) -> None:
        self.slots = slots
        size = slots * _SLOT.size
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if os.fstat(fd).st_size < size:
                os.ftruncate(fd, size)
            self._map = mmap.mmap(fd, size)
        finally:
            os.close(fd)
        self._lock_fd = os.open(path, os.O_RDWR)
        self._local = LocalBuckets()
        self.full = False

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        fcntl.lockf(self._lock_fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.lockf(self._lock_fd, fcntl.LOCK_UN)

    def _slot(self, digest: int) -> int | None:
        """The slot holding ``digest``, or the first free one on its probe; None: full."""
        start = digest % self.slots
        for i in range(self.slots):
            at = (start + i) % self.slots
            held = _SLOT.unpack_from(self._map, at * _SLOT.size)[0]
            if held == digest or held == 0:
                return at
        return None

    def update(self, name: str, change: Callable[[Bucket | None], Bucket]) -> None:
        digest = _digest(name)
        with self._locked():
            at = self._slot(digest)
            if at is not None:
                held, rate, level, stamp = _SLOT.unpack_from(self._map, at * _SLOT.size)
                bucket = change((rate, level, stamp) if held else None)
                _SLOT.pack_into(self._map, at * _SLOT.size, digest, *bucket)
                return
        if not self.full:
            log.warning(
                "rate limits: all %d shared slots are taken; token %s (and any further one) "
                "is limited in each worker process alone",
                self.slots,
                name,
            )
        self.full = True
        self._local.update(name, change)


def _digest(name: str) -> int:
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "little") or 1


class RateLimiter:
    """Token buckets by token name; a bucket holds at most one second of its rate."""

    def __init__(
        self, clock: Callable[[], float] = time.monotonic, buckets: Buckets | None = None
    ) -> None:
        self._clock = clock
        self.buckets: Buckets = buckets if buckets is not None else LocalBuckets()

    def admit(self, name: str, rate: float, samples: int) -> int | None:
        """None if admitted (and charged), else the whole seconds to wait before retrying."""
        if rate <= 0:
            return None
        refused: list[float] = []

        def charge(bucket: Bucket | None) -> Bucket:
            # read under the lock of shared buckets: a stamp never moves back
            now = self._clock()
            old_rate, level, stamp = bucket if bucket is not None else (rate, rate, now)
            if old_rate != rate:
                level = min(level, rate)
            now = max(now, stamp)
            level = min(rate, level + (now - stamp) * rate)
            if level <= 0:
                refused.append(level)
                return (rate, level, now)
            return (rate, level - samples, now)

        self.buckets.update(name, charge)
        if refused:
            return max(1, math.ceil(-refused[0] / rate + 1e-9))
        return None
