"""kemi-stats alerting: the threshold evaluator and the webhook notifier.

``python -m alerting.evaluator`` and ``python -m alerting.notifier`` run them; this
package exports the pieces other code (tests, benchmarks) may build on.
"""

from __future__ import annotations

from alerting.fingerprint import fingerprint
from alerting.rules import CompiledRule
from alerting.settings import AlertingSettings
from alerting.silences import SilenceSet
from alerting.state import AlertKind, Phase, SeriesState, Timing, Transition, on_sample, on_tick

__all__ = [
    "AlertKind",
    "AlertingSettings",
    "CompiledRule",
    "Phase",
    "SeriesState",
    "SilenceSet",
    "Timing",
    "Transition",
    "fingerprint",
    "on_sample",
    "on_tick",
]
