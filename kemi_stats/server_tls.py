"""The server side of HTTPS for a service's listener, from a certificate and key file.

The aggregator (``KEMI_AGGREGATOR_TLS_*``) and the console (``KEMI_CONSOLE_TLS_*``)
serve HTTPS the same way: TLS 1.2 or later, an unencrypted PEM key, and a one-line
:class:`~kemi_stats.errors.ConfigError` naming the variable when something is wrong.
"""

from __future__ import annotations

import ssl

from kemi_stats.errors import ConfigError

__all__ = ["server_tls_context"]


def _readable(variable: str, path: str) -> None:
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise ConfigError(f"{variable}={path}: cannot read: {exc.strerror or exc}") from exc


def server_tls_context(
    cert: str | None, key: str | None, *, cert_var: str, key_var: str
) -> ssl.SSLContext | None:
    """The listener's server context, or None for plain HTTP (neither file given).

    Raises :class:`ConfigError` (one line naming the variable) when only one of the
    certificate and key is set, a file cannot be read, or they are not a matching pair.
    """
    cert, key = cert or None, key or None
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        given, missing = (cert_var, key_var) if key is None else (key_var, cert_var)
        raise ConfigError(f"{given} is set but {missing} is not: HTTPS needs both (or neither)")
    _readable(cert_var, cert)
    _readable(key_var, key)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        # password "": an encrypted key is an error, never a prompt on the terminal
        context.load_cert_chain(cert, key, password="")
    except ssl.SSLError as exc:
        raise ConfigError(
            f"{cert_var}={cert}, {key_var}={key}: not a PEM certificate and its "
            f"unencrypted key: {exc.reason or exc}"
        ) from exc
    return context
