"""The etcd client, built so that a restarted etcd is reused at once, and its error mapping."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import grpc
import pyetcd
from pyetcd import exceptions as etcd_exc

from kemi_stats.errors import BackendUnavailable

__all__ = ["connect", "etcd_errors"]


#: how long an endpoint stays marked "failed" after an error before it is tried again
RETRY_AFTER = 0.5


class _Client(pyetcd.MultiEndpointEtcd3Client):
    """Waits out an endpoint's short "failed" mark instead of refusing the call at once.

    While the mark lasts the library raises NoServerAvailableError before sending
    anything, so waiting it out is always safe: a write just after etcd came back
    (while another thread's watch still marks the endpoint failed) then goes through.
    """

    @property
    def channel(self) -> object:
        deadline = time.monotonic() + RETRY_AFTER + 0.1
        while True:
            try:
                return super().channel
            except etcd_exc.NoServerAvailableError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.05)


def connect(endpoint: str, timeout: float = 5.0) -> pyetcd.MultiEndpointEtcd3Client:
    """A client for ``host:port``.

    The library marks an endpoint "failed" for 300 s after one error; with a single
    endpoint that would refuse every call long after etcd is back, so retry after 0.5 s.
    """
    host, _, port = endpoint.rpartition(":")
    ep = pyetcd.Endpoint(host or "127.0.0.1", int(port), secure=False, time_retry=RETRY_AFTER)
    return _Client(endpoints=[ep], timeout=timeout, failover=True)


@contextlib.contextmanager
def etcd_errors(endpoint: str, action: str) -> Iterator[None]:
    """Turn client failures into :class:`BackendUnavailable` naming etcd and the action."""
    try:
        yield
    except (
        etcd_exc.ConnectionFailedError,
        etcd_exc.ConnectionTimeoutError,
        etcd_exc.NoServerAvailableError,
        etcd_exc.InternalServerError,
        grpc.RpcError,
    ) as exc:
        raise BackendUnavailable(f"etcd {endpoint}: {action}: unreachable ({exc})") from exc
    except ValueError as exc:
        if "failed node" in str(exc):
            raise BackendUnavailable(f"etcd {endpoint}: {action}: unreachable") from exc
        raise
