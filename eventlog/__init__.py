"""eventlog: an embeddable event log for Python.

What SQLite is to tables, eventlog is to logs: open a directory and get Kafka's model
(topics, partitions, offsets) on local disk, with no broker and no server process::

    import eventlog

    with eventlog.open("data/app-log") as log:
        log.create_topic("orders", partitions=3, exist_ok=True)
        meta = log.append("orders", b'{"id": 1}', key=b"ABC123")
        records = log.read("orders", partition=meta.partition, offset=0)
"""

from ._errors import (
    CorruptLogError,
    DiskFullError,
    EventLogError,
    ForkedProcessError,
    InvalidArgumentError,
    InvalidConfigError,
    InvalidRecordError,
    InvalidTopicNameError,
    LogClosedError,
    LogNotFoundError,
    NotALogError,
    OffsetOutOfRangeError,
    PartitionNotFoundError,
    PermissionDeniedError,
    ReadOnlyLogError,
    RecordTooLargeError,
    StorageError,
    TopicExistsError,
    TopicNotFoundError,
    UnsupportedFormatError,
)
from ._log import Log, open
from ._partitioner import murmur2
from ._records import (
    BatchMetadata,
    NewRecord,
    PartitionInfo,
    Record,
    RecordColumns,
    RecordMetadata,
    TopicDescription,
    TopicPartition,
)
from ._topics import TopicConfig

__version__ = "0.1.0.dev0"

__all__ = [
    "BatchMetadata",
    "CorruptLogError",
    "DiskFullError",
    "EventLogError",
    "ForkedProcessError",
    "InvalidArgumentError",
    "InvalidConfigError",
    "InvalidRecordError",
    "InvalidTopicNameError",
    "Log",
    "LogClosedError",
    "LogNotFoundError",
    "NewRecord",
    "NotALogError",
    "OffsetOutOfRangeError",
    "PartitionInfo",
    "PartitionNotFoundError",
    "PermissionDeniedError",
    "ReadOnlyLogError",
    "Record",
    "RecordColumns",
    "RecordMetadata",
    "RecordTooLargeError",
    "StorageError",
    "TopicConfig",
    "TopicDescription",
    "TopicExistsError",
    "TopicNotFoundError",
    "TopicPartition",
    "UnsupportedFormatError",
    "__version__",
    "murmur2",
    "open",
]
