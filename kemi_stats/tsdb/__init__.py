"""Reading history back from the time-series database (VictoriaMetrics or InfluxDB).

The series naming follows the forwarder's one mapping rule, :mod:`kemi_stats.tsdb.mapping`.
"""

from kemi_stats.tsdb.errors import TsdbError
from kemi_stats.tsdb.mapping import RESOURCE_TAG, SeriesMapping, default_measurement
from kemi_stats.tsdb.query import QueryClient, make_query_client
from kemi_stats.tsdb.range_query import RangeQuery
from kemi_stats.tsdb.series import Series

__all__ = [
    "RESOURCE_TAG",
    "QueryClient",
    "RangeQuery",
    "Series",
    "SeriesMapping",
    "TsdbError",
    "default_measurement",
    "make_query_client",
]
