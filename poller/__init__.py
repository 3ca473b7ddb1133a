"""kemi-stats poller: the poll scheduler (job producer) and the poll workers (SNMP, scrapes).

``poller.scheduler`` puts one PollJob per target per interval on ``kemi.poll-jobs``;
``poller.worker`` processes consume them as one group and publish SampleBatches to
``kemi.metrics.raw``.

The package itself imports nothing: the scheduler's processes import ``poller.scheduler``
and must not load the SNMP client (pysnmp) the workers use; import names from their
modules (``poller.collect``, ``poller.snmp``, ...).
"""
