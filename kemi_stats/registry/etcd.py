"""The etcd client, built so that a restarted etcd is reused at once, and its error mapping."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import grpc
import pyetcd
from pyetcd import exceptions as etcd_exc

from kemi_stats.errors import BackendUnavailable

__all__ = ["connect", "etcd_errors"]


def connect(endpoint: str, timeout: float = 5.0) -> pyetcd.MultiEndpointEtcd3Client:
    """A client for ``host:port``.

    The library marks an endpoint "failed" for 300 s after one error; with a single
    endpoint that would refuse every call long after etcd is back, so retry after 0.5 s.
    """
    host, _, port = endpoint.rpartition(":")
    ep = pyetcd.Endpoint(host or "127.0.0.1", int(port), secure=False, time_retry=0.5)
    return pyetcd.MultiEndpointEtcd3Client(endpoints=[ep], timeout=timeout, failover=True)


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
