"""eventlog: an embeddable event log for Python.

What SQLite is to tables, eventlog is to logs: open a directory and get Kafka's model
(topics, partitions, offsets) on local disk, with no broker and no server process::

    import eventlog

    with eventlog.open("data/app-log") as log:
        log.create_topic("orders", partitions=3, exist_ok=True)
        meta = log.append("orders", b'{"id": 1}', key=b"ABC123")
        records = log.read("orders", partition=meta.partition, offset=0)
"""

from . import serde
from ._check import CheckReport, Problem
from ._compaction import CompactionResult
from ._consumer import Consumer, RebalanceListener
from ._errors import (
    ClientClosedError,
    CommitFailedError,
    ConcurrencyError,
    CorruptLogError,
    DeserializationError,
    DiskFullError,
    DuplicateSequenceError,
    EventLogError,
    FencedInstanceIdError,
    ForkedProcessError,
    GroupNotEmptyError,
    GroupNotFoundError,
    IllegalStateError,
    InconsistentGroupProtocolError,
    InvalidArgumentError,
    InvalidConfigError,
    InvalidRecordError,
    InvalidTopicNameError,
    LogClosedError,
    LogNotFoundError,
    NoOffsetForPartitionError,
    NotALogError,
    OffsetOutOfRangeError,
    OutOfOrderSequenceError,
    PartitionNotFoundError,
    PermissionDeniedError,
    ProducerTimeoutError,
    ReadOnlyLogError,
    RecordTooLargeError,
    SerializationError,
    StorageError,
    TopicExistsError,
    TopicNotFoundError,
    UnsupportedFormatError,
)
from ._future import SendFuture
from ._group_admin import GroupDescription, MemberDescription, PartitionOffsets
from ._groups import OffsetAndMetadata
from ._log import Log, open
from ._partitioner import murmur2
from ._processing import Processor
from ._producer import Producer
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
from ._replay import replay
from ._retention import RetentionResult
from ._table import Table
from ._topics import TopicConfig
from ._transaction import Transaction

__version__ = "0.1.0.dev0"

__all__ = [
    "BatchMetadata",
    "CheckReport",
    "ClientClosedError",
    "CommitFailedError",
    "CompactionResult",
    "ConcurrencyError",
    "Consumer",
    "CorruptLogError",
    "DeserializationError",
    "DiskFullError",
    "DuplicateSequenceError",
    "EventLogError",
    "FencedInstanceIdError",
    "ForkedProcessError",
    "GroupDescription",
    "GroupNotEmptyError",
    "GroupNotFoundError",
    "IllegalStateError",
    "InconsistentGroupProtocolError",
    "InvalidArgumentError",
    "InvalidConfigError",
    "InvalidRecordError",
    "InvalidTopicNameError",
    "Log",
    "LogClosedError",
    "LogNotFoundError",
    "MemberDescription",
    "NewRecord",
    "NoOffsetForPartitionError",
    "NotALogError",
    "OffsetAndMetadata",
    "OffsetOutOfRangeError",
    "OutOfOrderSequenceError",
    "PartitionInfo",
    "PartitionNotFoundError",
    "PartitionOffsets",
    "PermissionDeniedError",
    "Problem",
    "Processor",
    "Producer",
    "ProducerTimeoutError",
    "ReadOnlyLogError",
    "RebalanceListener",
    "Record",
    "RecordColumns",
    "RecordMetadata",
    "RecordTooLargeError",
    "RetentionResult",
    "SendFuture",
    "SerializationError",
    "StorageError",
    "Table",
    "TopicConfig",
    "TopicDescription",
    "TopicExistsError",
    "TopicNotFoundError",
    "TopicPartition",
    "Transaction",
    "UnsupportedFormatError",
    "__version__",
    "murmur2",
    "open",
    "replay",
    "serde",
]
