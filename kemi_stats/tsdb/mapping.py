"""How kemi samples are named in the time-series database: the one mapping rule.

Every sample of a :class:`~kemi_stats.model.SampleBatch` becomes one field of one
InfluxDB line-protocol point:

==============  =====================================================================
measurement     ``KEMI_FORWARDER_MEASUREMENT``; by default empty for VictoriaMetrics
                and ``kemi`` for InfluxDB (which requires one)
field key       the sample's metric name, e.g. ``ifHCInOctets``
field value     a counter (counter32/counter64) holding a non-negative integer is an
                unsigned integer (``123u``), exact up to 2**64-1; everything else is a
                float
tags            the batch labels, then the sample labels over them, then
                ``resource=<resource id>`` over both; a tag with an empty key or value
                is left out (the same as an absent label, as in Prometheus)
timestamp       the batch time, millisecond precision
==============  =====================================================================

Samples of one batch with the same labels share one line, one field each.

VictoriaMetrics names a series ``<measurement>_<field>``, or just ``<field>`` when the
measurement is empty, so on the local stack a series is named after its metric:
``ifHCInOctets{resource="net:core-sw-3", ifName="Gi0/1", site="pangyo"}``. In InfluxDB the
same series is ``_measurement="kemi"``, ``_field="ifHCInOctets"`` with the same tags.
VictoriaMetrics keeps every value with float64-like precision (about 16 significant
digits), so a Counter64 above 2**53 comes back rounded (measured: 2**64-1 reads back as
1.8446744073709548e19, a relative error of 2e-16; rates over such counters are unaffected
in practice); InfluxDB stores the unsigned integer exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["RESOURCE_TAG", "SeriesMapping", "default_measurement"]

#: the tag that carries the resource id (the Kafka key of the batch)
RESOURCE_TAG = "resource"

_DEFAULT_MEASUREMENT = {"victoriametrics": "", "influxdb": "kemi"}


def default_measurement(tsdb_kind: str) -> str:
    """The measurement the forwarder writes by default to a TSDB of ``tsdb_kind``."""
    return _DEFAULT_MEASUREMENT.get(tsdb_kind, "kemi")


@dataclass(frozen=True, slots=True)
class SeriesMapping:
    """The measurement in use, and the series names it gives in each TSDB."""

    measurement: str = ""

    def victoria_name(self, metric: str) -> str:
        """The VictoriaMetrics series name (``__name__``) of ``metric``."""
        return f"{self.measurement}_{metric}" if self.measurement else metric

    def metric_from_victoria(self, name: str) -> str:
        """The kemi metric name of a VictoriaMetrics series name."""
        prefix = f"{self.measurement}_"
        if self.measurement and name.startswith(prefix):
            return name[len(prefix) :]
        return name
