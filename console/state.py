"""What the console's pages read: the registry view, the alerts, the fleet and the services."""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from console.alerts_source import AlertsSource
from console.fleet import FleetStatus
from console.platform_status import PlatformStatus
from console.sessions import SessionStore
from console.settings import ConsoleSettings
from kemi_stats.registry.live import LiveView
from kemi_stats.registry.models import Token, token_hash
from kemi_stats.settings import Settings
from kemi_stats.tsdb import QueryClient

__all__ = ["KINDS", "ConsoleState"]

#: the registry kinds the console follows (never credentials or receivers: it shows no secret)
KINDS = ("target", "profile", "derived", "rule", "silence", "token")


@dataclass(slots=True)
class ConsoleState:
    """The console's sources, shared by every request."""

    settings: Settings
    config: ConsoleSettings
    view: LiveView
    alerts: AlertsSource
    fleet: FleetStatus
    platform: PlatformStatus
    tsdb: QueryClient
    sessions: SessionStore
    #: topic names as the broker last listed them, or the error
    topics: list[str] | str

    def console_token(self, secret: str) -> tuple[str, str] | None:
        """The name and hash of the ``console`` token whose secret this is, or None."""
        digest = token_hash(secret)
        tokens: dict[str, Token] = self.view.get("token")
        for name, token in tokens.items():
            if token.scope == "console" and hmac.compare_digest(token.hash, digest):
                return name, digest
        return None

    def console_token_matches(self, name: str, digest: str) -> bool:
        """Whether ``name`` is still a console token with this hash."""
        token: Token | None = self.view.lookup("token", name)
        return token is not None and token.scope == "console" and token.hash == digest
