"""The ``kemi-stats`` CLI as a user runs it in tests: a real process, exit code and output."""

from __future__ import annotations

import os
import subprocess
import sys

__all__ = ["Cli"]


class Cli:
    """``kemi-stats`` against one etcd and registry prefix; ``env`` adds variables to the
    test's environment, and a ``None`` value removes one (``KEMI_SECRETS_KEYRING_FILE=None``:
    a user without the keyring)."""

    def __init__(self, etcd: str, prefix: str, **env: str | None) -> None:
        self.env = {**os.environ, "KEMI_ETCD_ENDPOINT": etcd, "KEMI_ETCD_PREFIX": prefix}
        # the user's config file and context stay out of the tests (a test gives its own)
        self.env["KEMI_CONFIG"] = os.devnull
        self.env.pop("KEMI_CONTEXT", None)
        for name, value in env.items():
            if value is None:
                self.env.pop(name, None)
            else:
                self.env[name] = value

    def __call__(
        self, *args: str, ok: bool = True, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        # never the test runner's terminal: a command that would ask, asks nobody
        stdin = {"input": input} if input is not None else {"stdin": subprocess.DEVNULL}
        proc = subprocess.run(
            [sys.executable, "-m", "kemi_stats.cli", *args],
            env=self.env, capture_output=True, text=True, timeout=120, **stdin,
        )  # fmt: skip
        if ok:
            assert proc.returncode == 0, proc.stderr
        return proc
