"""The etcd client: TLS, user/password auth and several endpoints with failover, built so
that a restarted etcd is reused at once; and its error mapping.

Every service and the CLI connect through :func:`connect` with an :class:`EtcdConfig`
(from ``KEMI_ETCD_*`` settings), so TLS and auth apply everywhere the same way.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pyetcd
from pyetcd import etcdrpc
from pyetcd import exceptions as etcd_exc
from pyetcd.client import EtcdTokenCallCredentials

from kemi_stats.errors import BackendUnavailable, ConfigError
from kemi_stats.settings import Settings

__all__ = ["AuthTokenRefused", "EtcdConfig", "connect", "etcd_errors"]

log = logging.getLogger("kemi_stats.etcd")

# gRPC's C core prints its own lines (a TLS handshake failure, a dropped connection) on
# stderr; every failure reaches the caller as an exception that names etcd instead.
os.environ.setdefault("GRPC_VERBOSITY", "NONE")


#: how long an endpoint stays marked "failed" after an error before it is tried again
RETRY_AFTER = 0.5
#: a new auth token this often: etcd's simple tokens expire after 5 idle minutes and
#: vanish when etcd restarts, and a watch reconnecting with a dead token is refused
TOKEN_REFRESH = 60.0


@dataclass(frozen=True, slots=True)
class EtcdConfig:
    """Where etcd is and how to prove who we are: endpoints, TLS files, user and password."""

    endpoints: tuple[str, ...] = ("127.0.0.1:2379",)
    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""
    user: str = ""
    password: str = field(default="", repr=False)
    timeout: float = 5.0
    #: an ``https://`` endpoint was given: TLS even without a CA file (the system's CAs)
    https: bool = False

    @classmethod
    def parse(cls, endpoints: str, **options: Any) -> EtcdConfig:
        """From ``host:port[,host:port...]``; an ``https://`` scheme on any of them means TLS
        (with the system's CAs unless a CA file is given), ``http://`` is dropped."""
        given = [e.strip() for e in endpoints.split(",") if e.strip()]
        https = any(e.startswith("https://") for e in given)
        eps = tuple(_strip_scheme(e) for e in given)
        options.setdefault("https", https)
        return dataclasses.replace(cls(), endpoints=eps or cls().endpoints, **options)

    @classmethod
    def from_settings(cls, settings: Settings) -> EtcdConfig:
        """From the ``KEMI_ETCD_*`` settings: endpoints, TLS files and user."""
        return cls.parse(
            settings.etcd_endpoint,
            ca_file=settings.etcd_ca_file,
            cert_file=settings.etcd_cert_file,
            key_file=settings.etcd_key_file,
            user=settings.etcd_user,
            password=settings.etcd_password.get_secret_value(),
        )

    @property
    def label(self) -> str:
        """What error messages call this etcd."""
        return ",".join(self.endpoints)

    @property
    def secure(self) -> bool:
        return bool(self.https or self.ca_file or self.cert_file or self.key_file)


def _strip_scheme(endpoint: str) -> str:
    for scheme in ("https://", "http://"):
        endpoint = endpoint.removeprefix(scheme)
    return endpoint.rstrip("/")


class AuthTokenRefused(BackendUnavailable):
    """etcd refused a call's auth token: the client renews it at once (:meth:`_Client.renew_soon`)."""


class _Client(pyetcd.MultiEndpointEtcd3Client):
    """Failover over several endpoints; waits out an endpoint's short "failed" mark instead
    of refusing the call at once; renews its auth token in the background.

    While the mark lasts the library raises NoServerAvailableError before sending
    anything, so waiting it out is always safe: a write just after etcd came back
    (while another thread's watch still marks the endpoint failed) then goes through.
    """

    def __init__(self, endpoints: list[pyetcd.Endpoint], config: EtcdConfig) -> None:
        super().__init__(endpoints=endpoints, timeout=config.timeout, failover=True)
        self._config = config
        self._stop = threading.Event()
        self._renew_now = threading.Event()
        self._token_lock = threading.Lock()
        if config.user:
            self._first_token()
            threading.Thread(target=self._renew, name="etcd-token", daemon=True).start()

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

    def _request(self) -> etcdrpc.AuthenticateRequest:
        return etcdrpc.AuthenticateRequest(name=self._config.user, password=self._config.password)

    def _first_token(self) -> None:
        """Authenticate at construction, failing over past endpoints that do not answer."""
        for _ in self.endpoints:
            try:
                self._use_token(self.authstub.Authenticate(self._request(), self.timeout).token)
                return
            except grpc.RpcError as exc:
                if exc.code() != grpc.StatusCode.UNAVAILABLE or len(self.endpoints) == 1:
                    raise
                self.endpoint_in_use.fail()  # the next try takes another endpoint
                self._clear_old_stubs()
        raise etcd_exc.NoServerAvailableError("no etcd endpoint answered")

    def _use_token(self, token: str) -> None:
        """Every later call, and a watch when it reconnects, carries ``token``."""
        # on a TLS channel the library sends call credentials; plain channels take metadata
        credentials = (
            grpc.metadata_call_credentials(EtcdTokenCallCredentials(token))
            if self._config.secure
            else None
        )
        with self._token_lock:
            self.call_credentials, self.metadata = credentials, (("token", token),)
            watcher = self._stubs.get("watcher")
            if watcher is not None:
                watcher._metadata, watcher._credentials = self.metadata, credentials

    def renew_soon(self) -> None:
        """A call was refused for its token (etcd restarted, or it expired): get a new one."""
        self._renew_now.set()

    def _renew(self) -> None:
        """A new token every TOKEN_REFRESH, at once when asked, every 2 s while etcd fails."""
        wait, failing = TOKEN_REFRESH, False
        while not self._stop.is_set():
            self._renew_now.wait(wait)
            self._renew_now.clear()
            if self._stop.is_set():
                return
            try:
                self._use_token(self.authstub.Authenticate(self._request(), self.timeout).token)
            except Exception as exc:
                if not failing:
                    log.warning("etcd %s: cannot renew the auth token: %s", self._config.label,
                                _detail(exc))  # fmt: skip
                wait, failing = 2.0, True
                continue
            if failing:
                log.info("etcd %s: auth token renewed", self._config.label)
            wait, failing = TOKEN_REFRESH, False

    def close(self) -> None:
        self._stop.set()
        self._renew_now.set()
        super().close()


def _credentials(config: EtcdConfig) -> grpc.ChannelCredentials:
    if bool(config.cert_file) != bool(config.key_file):
        raise ConfigError(
            "etcd: KEMI_ETCD_CERT_FILE and KEMI_ETCD_KEY_FILE go together (a client "
            "certificate needs its key)"
        )
    parts: dict[str, bytes | None] = {}
    for setting, path, name in (
        ("KEMI_ETCD_CA_FILE", config.ca_file, "root_certificates"),
        ("KEMI_ETCD_KEY_FILE", config.key_file, "private_key"),
        ("KEMI_ETCD_CERT_FILE", config.cert_file, "certificate_chain"),
    ):
        try:
            parts[name] = Path(path).read_bytes() if path else None
        except OSError as exc:
            raise ConfigError(f"etcd: {setting}={path}: cannot read ({exc.strerror})") from None
    return grpc.ssl_channel_credentials(**parts)


def connect(config: EtcdConfig | str, timeout: float | None = None) -> _Client:
    """A client for ``config`` (or a plain ``host:port[,host:port]`` string).

    The library marks an endpoint "failed" for 300 s after one error; with a single
    endpoint that would refuse every call long after etcd is back, so retry after 0.5 s.
    With auth, a wrong user or password raises :class:`ConfigError` naming the user.
    """
    if isinstance(config, str):
        config = EtcdConfig.parse(config)
    if timeout is not None:
        config = dataclasses.replace(config, timeout=timeout)
    creds = _credentials(config) if config.secure else None
    eps = []
    for endpoint in config.endpoints:
        host, _, port = endpoint.rpartition(":")
        eps.append(
            pyetcd.Endpoint(
                host or "127.0.0.1",
                int(port),
                secure=config.secure,
                creds=creds,
                time_retry=RETRY_AFTER,
            )
        )
    try:
        return _Client(eps, config)
    except grpc.RpcError as exc:
        raise _auth_error(config, exc) from None


def _auth_error(config: EtcdConfig, exc: grpc.RpcError) -> Exception:
    detail = _detail(exc)
    if "authentication failed" in detail or "invalid user" in detail.lower():
        return ConfigError(
            f"etcd {config.label}: user {config.user!r}: authentication failed "
            "(check KEMI_ETCD_USER and KEMI_ETCD_PASSWORD)"
        )
    return _unavailable(config.label, "authenticate", exc)


def _detail(exc: BaseException) -> str:
    """The gRPC status text, also of the RpcError the library turned into its own error."""
    if not isinstance(exc, grpc.RpcError) and isinstance(exc.__context__, grpc.RpcError):
        exc = exc.__context__
    details = getattr(exc, "details", None)
    text = details() if callable(details) else str(exc)
    return " ".join(str(text).split())


def _unavailable(label: str, action: str, exc: BaseException) -> BackendUnavailable:
    detail = _detail(exc)
    if "permission denied" in detail:
        return BackendUnavailable(
            f"etcd {label}: {action}: permission denied for this user (KEMI_ETCD_USER, or "
            "the client certificate's common name when no user is set)"
        )
    if "invalid auth token" in detail:
        return AuthTokenRefused(
            f"etcd {label}: {action}: the auth token was refused (etcd restarted, or it "
            "expired); a new one is being requested, retry"
        )
    if "user name is empty" in detail:
        return BackendUnavailable(
            f"etcd {label}: {action}: etcd requires authentication (set KEMI_ETCD_USER "
            "and KEMI_ETCD_PASSWORD)"
        )
    if "required revision has been compacted" in detail:
        return BackendUnavailable(
            f"etcd {label}: {action}: the revision the read began at is compacted (the read "
            "took longer than etcd keeps old revisions); run it again"
        )
    if "Unwrap failed" in detail:  # etcd ended the handshake: it wants a client certificate
        detail = "etcd refused the connection: no or unknown client certificate"
    if any(word in detail for word in ("certificate", "SSL", "Tls", "TLS", "TSI_")):
        reason = detail.rpartition("OPENSSL_internal:")[2].partition(": OK")[0] or detail
        return BackendUnavailable(
            f"etcd {label}: {action}: TLS handshake failed ({reason.rstrip(')')}); check "
            "KEMI_ETCD_CA_FILE, and KEMI_ETCD_CERT_FILE/KEY_FILE if etcd wants a client certificate"
        )
    return BackendUnavailable(f"etcd {label}: {action}: unreachable ({detail})")


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
        raise _unavailable(endpoint, action, exc) from exc
    except ValueError as exc:
        if "failed node" in str(exc):
            raise BackendUnavailable(f"etcd {endpoint}: {action}: unreachable") from exc
        raise
