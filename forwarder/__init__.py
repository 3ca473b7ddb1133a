"""The Metric Forwarder: ``kemi.metrics.raw`` + ``kemi.metrics`` -> line protocol -> the TSDB.

``python -m forwarder`` (``kemi-stats run forwarder``, part of ``kemi-stats up``)
consumes SampleBatches, writes them with influxdb-client to VictoriaMetrics
(``/api/v2/write``) or InfluxDB 2.x/3.x, and commits offsets only after the TSDB accepted
them. The mapping rule (measurement, field, tags) is in :mod:`kemi_stats.tsdb.mapping`;
the line encoder in :mod:`.lineprotocol`; retries and rejects in :mod:`.writer`; commit
order in :mod:`.offsets`; the loop in :mod:`.service`. See README.md in this folder.
"""

from forwarder.lineprotocol import BatchEncoder, EncodeStats
from forwarder.service import Forwarder
from forwarder.settings import ForwarderSettings
from forwarder.writer import TsdbWriter

__all__ = ["BatchEncoder", "EncodeStats", "Forwarder", "ForwarderSettings", "TsdbWriter"]
