"""Files only their owner may read: secrets written to disk never pass through the umask."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

__all__ = ["read_secret", "write_private"]


def write_private(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` atomically, mode 0600 from the first byte.

    A keyring is rewritten this way: a crash or a full disk mid-write leaves the old
    file whole (losing it would lose every secret sealed under its keys), and a service
    re-reading it sees the old or the new file, never half of one.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # a leftover temp file keeps its mode through O_CREAT
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def read_secret(path: Path) -> str:
    """A secret kept in a file: its first line, without surrounding blanks (an editor's
    trailing newline is no part of a password)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return lines[0].strip() if lines else ""
