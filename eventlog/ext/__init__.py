"""Integrations of eventlog with other libraries, each an optional extra.

- :mod:`eventlog.ext.eventsourcing`: a persistence module for the ``eventsourcing``
  library (install ``eventlog[eventsourcing]``).
- :mod:`eventlog.ext.kafka`: mirrors between a log and a Kafka cluster (install
  ``eventlog[kafka]``).

Nothing here is imported by ``import eventlog``: each module needs its library installed.
"""
