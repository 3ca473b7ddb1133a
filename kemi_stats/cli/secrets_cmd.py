"""``kemi-stats secrets``: the keyring that seals registry secrets, and key rotation."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import click
import orjson

from kemi_stats.cli.context import CliContext, fail, pass_ctx
from kemi_stats.keyring import DEFAULT_FILE, Keyring, is_sealed, require_keyring, sealed_key_id
from kemi_stats.registry.models import KINDS
from kemi_stats.registry.store import sealed_fields

__all__ = ["register"]


@click.group()
def secrets() -> None:
    """The keyring that encrypts registry secrets at rest (docs/security.md)."""


def _keyring_path(obj: CliContext) -> Path:
    """The keyring file keygen and remove-key edit (never the KEMI_SECRETS_KEYRING value)."""
    s = obj.settings
    if s.secrets_keyring.get_secret_value():
        fail(
            "KEMI_SECRETS_KEYRING holds the keyring itself: edit it where it is kept, or unset "
            "it and use KEMI_SECRETS_KEYRING_FILE"
        )
    return (
        Path(s.secrets_keyring_file) if s.secrets_keyring_file else Path(s.data_dir) / DEFAULT_FILE
    )


@secrets.command("keygen")
@click.option("--id", "kid", help="The new key's id (default: k<UTC date-time>).")
@pass_ctx
def keygen(obj: CliContext, kid: str | None) -> None:
    """Add a new key to the keyring file and make it current (creates the file, mode 0600).

    Give every service the new file, then run `kemi-stats secrets rotate-key`.
    """
    path = _keyring_path(obj)
    if path.exists():
        ring = Keyring.load(path)
        new = ring.add_key(kid)
    else:
        ring = Keyring.generate(kid)
        new = ring.current
    ring.save(path)
    click.echo(f"key {new} added to {path}; it is now the current key ({len(ring.keys)} keys)")


def _census(obj: CliContext) -> Counter[str]:
    """How many secret values are sealed under each key id (``plaintext``: not sealed)."""
    registry = obj.registry
    counts: Counter[str] = Counter()
    for kind in KINDS:
        fields = sealed_fields(kind)
        if not fields:
            continue
        _, rows = registry.scan(registry.kind_prefix(kind))
        for _, raw, _ in rows:
            try:
                data = orjson.loads(raw)
            except orjson.JSONDecodeError:
                continue
            for field in fields:
                value = data.get(field)
                for item in value.values() if isinstance(value, dict) else [value]:
                    if isinstance(item, str) and item:
                        counts[sealed_key_id(item) if is_sealed(item) else "plaintext"] += 1
    return counts


@secrets.command("status")
@pass_ctx
def status(obj: CliContext) -> None:
    """Secret values in the registry per key id, and the keyring's keys."""
    counts = _census(obj)
    ring = obj.registry.keyring
    if ring is not None:
        click.echo(f"keyring {ring.path or 'KEMI_SECRETS_KEYRING'}: current key {ring.current}")
        for kid in sorted(ring.keys):
            mark = " (current)" if kid == ring.current else ""
            click.echo(f"  {kid}{mark}: {counts.pop(kid, 0)} values")
    else:
        click.echo("no keyring set (KEMI_SECRETS_KEYRING_FILE)")
    for kid, n in sorted(counts.items()):
        what = "not encrypted" if kid == "plaintext" else "sealed under a key the keyring lacks"
        click.echo(f"  {kid}: {n} values, {what}")


@secrets.command("rotate-key")
@pass_ctx
def rotate_key(obj: CliContext) -> None:
    """Re-encrypt every secret under the keyring's current key (all or nothing).

    Plaintext secrets stored before encryption are encrypted too. Afterwards the older
    keys can be removed with `kemi-stats secrets remove-key`.
    """
    require_keyring(obj.settings, "rotate-key")
    registry = obj.registry
    assert registry.keyring is not None
    counts = registry.reseal()
    click.echo(
        f"{counts['values']} secret values in {counts['entries']} entries re-encrypted under "
        f"{registry.keyring.current} ({counts['plaintext']} were not encrypted before)"
    )


@secrets.command("remove-key")
@click.argument("kid")
@pass_ctx
def remove_key(obj: CliContext, kid: str) -> None:
    """Remove an old key from the keyring file (refused while a secret is sealed under it)."""
    path = _keyring_path(obj)
    ring = Keyring.load(path)
    if kid not in ring.keys:
        fail(f"key {kid!r} is not in {path}")
    if kid == ring.current:
        fail(f"key {kid!r} is the current key; add a new one first (kemi-stats secrets keygen)")
    used = _census(obj).get(kid, 0)
    if used:
        fail(f"key {kid!r} still seals {used} values; run kemi-stats secrets rotate-key first")
    del ring.keys[kid]
    ring.save(path)
    click.echo(f"key {kid} removed from {path}")


def register(cli: click.Group) -> None:
    cli.add_command(secrets)
