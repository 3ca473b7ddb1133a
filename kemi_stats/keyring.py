"""The keyring that encrypts registry secrets at rest (AES-256-GCM), with key ids to rotate.

A keyring is a small JSON document, in a file (mode 0600) or in ``KEMI_SECRETS_KEYRING``::

    {"current": "k20261203", "keys": {"k20261203": "<base64 of 32 bytes>", "k20260601": "..."}}

New secrets are sealed under ``current``; older keys stay to open what was sealed under
them until ``kemi-stats secrets rotate-key`` re-sealed everything. A sealed value is a
string ``$kemi$v1$<key id>$<base64 of nonce + ciphertext + tag>``; the associated data
binds it to its entry and field, so a value copied to another entry does not open.

A keyring read from a file is read again when the file changes and a value names a key
it does not hold, so services pick up a new key without a restart.
"""

from __future__ import annotations

import base64
import os
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

from kemi_stats.errors import ConfigError
from kemi_stats.private_file import write_private

if TYPE_CHECKING:
    from kemi_stats.settings import Settings

__all__ = [
    "DEFAULT_FILE",
    "SEALED_PREFIX",
    "Keyring",
    "KeyringError",
    "is_sealed",
    "keyring_from_settings",
    "new_key_id",
    "require_keyring",
    "sealed_key_id",
]

SEALED_PREFIX = "$kemi$v1$"
#: the keyring's file in the data directory when no setting names one
DEFAULT_FILE = "keyring.json"
_KEY_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_NONCE = 12
_KEY_BYTES = 32  # AES-256


class KeyringError(ConfigError):
    """A keyring that cannot be read, or a sealed value it cannot open."""


def is_sealed(value: object) -> bool:
    return isinstance(value, str) and value.startswith(SEALED_PREFIX)


def sealed_key_id(value: str) -> str:
    """The id of the key ``value`` was sealed under."""
    return value[len(SEALED_PREFIX) :].partition("$")[0]


def new_key_id() -> str:
    return time.strftime("k%Y%m%d-%H%M%S", time.gmtime())


@dataclass
class Keyring:
    """Keys by id and the current one; ``path`` when it came from a file (reloaded on change)."""

    keys: dict[str, bytes]
    current: str
    path: Path | None = None
    #: how many times the file was read again (a view re-reads entries a new key may open)
    generation: int = 0
    _stamp: tuple[int, int, int] = field(default=(0, 0, 0), repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __repr__(self) -> str:  # never the keys
        return f"Keyring(current={self.current!r}, ids={sorted(self.keys)}, path={self.path})"

    # --- loading ----------------------------------------------------------------------

    @classmethod
    def parse(cls, text: str | bytes, where: str, path: Path | None = None) -> Keyring:
        try:
            data = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise KeyringError(f"keyring {where}: not JSON ({exc})") from None
        if not isinstance(data, dict) or not isinstance(data.get("keys"), dict):
            raise KeyringError(f'keyring {where}: expected {{"current": ID, "keys": {{ID: KEY}}}}')
        keys: dict[str, bytes] = {}
        for kid, encoded in data["keys"].items():
            if not _KEY_ID.match(str(kid)):
                raise KeyringError(
                    f"keyring {where}: key id {kid!r}: expected [A-Za-z0-9_.-]{{1,64}}"
                )
            try:
                raw = base64.b64decode(str(encoded), validate=True)
            except ValueError:
                raw = b""
            if len(raw) != 32:
                raise KeyringError(f"keyring {where}: key {kid!r}: expected 32 bytes in base64")
            keys[str(kid)] = raw
        current = data.get("current")
        if current not in keys:
            raise KeyringError(f"keyring {where}: current {current!r} is not one of its keys")
        return cls(keys, str(current), path)

    @classmethod
    def load(cls, path: Path) -> Keyring:
        try:
            stamp = _stamp(path)
            text = path.read_bytes()
        except OSError as exc:
            raise KeyringError(f"keyring {path}: cannot read ({exc.strerror})") from None
        ring = cls.parse(text, str(path), path)
        ring._stamp = stamp
        return ring

    def reload_if_changed(self) -> bool:
        """Read the file again if it changed (a new inode, size or mtime); whether it did.

        A file that cannot be read or parsed right now keeps the keys held: services go
        on opening what they could, and the next call tries again.
        """
        if self.path is None:
            return False
        with self._lock:
            try:
                if _stamp(self.path) == self._stamp:
                    return False
                fresh = Keyring.load(self.path)
            except (OSError, KeyringError):
                return False
            self.keys, self.current, self._stamp = fresh.keys, fresh.current, fresh._stamp
            self.generation += 1
            return True

    # --- writing a keyring file -------------------------------------------------------

    def dumps(self) -> str:
        keys = {k: base64.b64encode(v).decode() for k, v in self.keys.items()}
        return orjson.dumps(
            {"current": self.current, "keys": keys}, option=orjson.OPT_INDENT_2
        ).decode()

    def save(self, path: Path) -> None:
        write_private(path, self.dumps() + "\n")

    @classmethod
    def generate(cls, kid: str | None = None) -> Keyring:
        kid = kid or new_key_id()
        if not _KEY_ID.match(kid):
            raise KeyringError(f"key id {kid!r}: expected [A-Za-z0-9_.-]{{1,64}}")
        return cls({kid: os.urandom(_KEY_BYTES)}, kid)

    def add_key(self, kid: str | None = None) -> str:
        """A new key, made current; its id."""
        kid = kid or new_key_id()
        if not _KEY_ID.match(kid):
            raise KeyringError(f"key id {kid!r}: expected [A-Za-z0-9_.-]{{1,64}}")
        if kid in self.keys:
            raise KeyringError(f"key id {kid!r} exists already")
        self.keys[kid] = os.urandom(_KEY_BYTES)
        self.current = kid
        return kid

    # --- sealing ----------------------------------------------------------------------

    def seal(self, plaintext: str, context: str) -> str:
        """``plaintext`` sealed under the current key, bound to ``context`` (kind/name/field)."""
        self.reload_if_changed()
        with self._lock:  # one id and its key, even while a reload swaps them
            kid, key = self.current, self.keys[self.current]
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # imported here: see open()

        nonce = os.urandom(_NONCE)
        sealed = AESGCM(key).encrypt(nonce, plaintext.encode(), context.encode())
        return f"{SEALED_PREFIX}{kid}${base64.b64encode(nonce + sealed).decode()}"

    def open(self, value: str, context: str) -> str:
        """The plaintext of a sealed ``value``; KeyringError naming the key when it cannot."""
        kid, _, payload = value[len(SEALED_PREFIX) :].partition("$")
        key = self.keys.get(kid)
        if key is None and self.reload_if_changed():
            key = self.keys.get(kid)
        if key is None:
            raise KeyringError(f"sealed with key {kid!r}, which the keyring does not hold")
        # cryptography (7 MiB) is imported by the first seal or open: a service that holds
        # no sealed secret (most, at rest) never pays for it
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        try:
            raw = base64.b64decode(payload, validate=True)
            return AESGCM(key).decrypt(raw[:_NONCE], raw[_NONCE:], context.encode()).decode()
        except (ValueError, InvalidTag):
            raise KeyringError(
                f"sealed value does not open with key {kid!r} (altered, or copied from "
                "another entry)"
            ) from None


def _stamp(path: Path) -> tuple[int, int, int]:
    """What tells a rewritten file: a new inode (a Secret volume's swap, an atomic
    replace), another size, or another mtime in nanoseconds."""
    st = path.stat()
    return st.st_ino, st.st_size, st.st_mtime_ns


def keyring_from_settings(settings: Settings) -> Keyring | None:
    """The keyring the settings name: ``KEMI_SECRETS_KEYRING`` (the JSON itself), else
    ``KEMI_SECRETS_KEYRING_FILE``, else ``<data dir>/keyring.json`` if it exists."""
    text = settings.secrets_keyring.get_secret_value()
    if text:
        return Keyring.parse(text, "KEMI_SECRETS_KEYRING")
    if settings.secrets_keyring_file:
        return Keyring.load(Path(settings.secrets_keyring_file))
    default = Path(settings.data_dir) / DEFAULT_FILE
    return Keyring.load(default) if default.exists() else None


def require_keyring(settings: Settings, who: str) -> Keyring:
    """The keyring, or a one-line KeyringError saying ``who`` needs one and how to give it."""
    ring = keyring_from_settings(settings)
    if ring is None:
        raise KeyringError(
            f"{who} reads registry secrets and needs the keyring: set "
            "KEMI_SECRETS_KEYRING_FILE (make one with: kemi-stats secrets keygen)"
        )
    return ring
