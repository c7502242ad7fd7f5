"""The argument tables of the kafka-python-compatible clients, and ``bootstrap_servers``.

Every argument kafka-python's clients take is in exactly one table per client:

* accepted: it means here what it means in kafka-python (with the default given);
* ignored: accepted and without effect, for the reason given (mostly: there is no
  network, so socket, security and retry settings have nothing to act on);
* refused: its meaning cannot be kept, so a non-default value raises
  :class:`~eventlog.kafka.errors.KafkaConfigurationError` with the reason, instead of
  being silently ignored.

Any other name raises ``KafkaConfigurationError`` too, as kafka-python does.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any, Final

import attrs

from .._log import Log
from .._log import open as _open
from .errors import KafkaConfigurationError, NoBrokersAvailable

__all__ = ["ADMIN", "CONSUMER", "PRODUCER", "ConfigTable", "LogHandle", "open_log"]

_NETWORK: Final = "no network: eventlog.kafka reads and writes a log directory directly"
_SECURITY: Final = "no network, so no TLS/SASL; protect the log directory with file permissions"
_METRICS: Final = (
    "no metrics registry (the producer's and consumer's metrics() return a small dictionary)"
)
_VERSION: Final = "no broker to negotiate a protocol version with"


def _shared() -> dict[str, str]:
    """Settings every kafka-python client takes that only concern the network."""
    out = dict.fromkeys(
        (
            "bootstrap_timeout_ms",
            "client_dns_lookup",
            "connections_max_idle_ms",
            "kafka_client",
            "max_in_flight_requests_per_connection",
            "metadata_max_age_ms",
            "proxy_url",
            "receive_buffer_bytes",
            "receive_message_max_bytes",
            "reconnect_backoff_max_ms",
            "reconnect_backoff_ms",
            "request_timeout_ms",
            "retry_backoff_ms",
            "selector",
            "send_buffer_bytes",
            "socket_options",
            "socks5_proxy",
            "sock_chunk_bytes",
            "sock_chunk_buffer_count",
        ),
        _NETWORK,
    )
    out.update(
        dict.fromkeys(
            (
                "security_protocol",
                "sasl_kerberos_domain_name",
                "sasl_kerberos_name",
                "sasl_kerberos_service_name",
                "sasl_mechanism",
                "sasl_oauth_token_provider",
                "sasl_plain_password",
                "sasl_plain_username",
                "ssl_cafile",
                "ssl_certfile",
                "ssl_check_hostname",
                "ssl_ciphers",
                "ssl_context",
                "ssl_crlfile",
                "ssl_keyfile",
                "ssl_password",
            ),
            _SECURITY,
        )
    )
    out.update(
        dict.fromkeys(
            (
                "metric_reporters",
                "metrics_enabled",
                "metrics_num_samples",
                "metrics_sample_window_ms",
                "metric_group_prefix",
            ),
            _METRICS,
        )
    )
    out["api_version"] = _VERSION
    out["api_version_auto_timeout_ms"] = _VERSION
    return out


@attrs.frozen
class ConfigTable:
    """One client's arguments: accepted (with defaults), ignored and refused (with reasons)."""

    client: str
    accepted: Mapping[str, Any]
    ignored: Mapping[str, str]
    refused: Mapping[str, str]

    def parse(self, configs: Mapping[str, Any]) -> dict[str, Any]:
        """The accepted arguments with defaults filled in.

        Raises:
            KafkaConfigurationError: an unknown argument, or a refused one given a value.
        """
        unknown = sorted(set(configs) - set(self.accepted) - set(self.ignored) - set(self.refused))
        if unknown:
            raise KafkaConfigurationError(
                f"Unrecognized configs: {unknown}: {self.client} takes the arguments of "
                f"kafka-python's {self.client} (see docs/how-to/kafka-python.md)"
            )
        for name, reason in self.refused.items():
            if configs.get(name) is not None:
                raise KafkaConfigurationError(
                    f"{self.client}({name}={configs[name]!r}) is not supported: {reason}"
                )
        out = dict(self.accepted)
        out.update((k, v) for k, v in configs.items() if k in self.accepted)
        return out


PRODUCER: Final = ConfigTable(
    client="KafkaProducer",
    accepted={
        "bootstrap_servers": None,
        "client_id": None,
        "key_serializer": None,
        "value_serializer": None,
        "acks": -1,
        "compression_type": None,
        "batch_size": 16384,
        "linger_ms": 0,
        "partitioner": None,
        "max_request_size": 1_048_576,
        "max_block_ms": 60_000,
        "buffer_memory": 33_554_432,
        "allow_auto_create_topics": True,
        "enable_idempotence": True,
    },
    ignored={
        **_shared(),
        "retries": "a write fails only for reasons a retry cannot fix (disk full, topic "
        "deleted), so there is nothing to retry",
        "delivery_timeout_ms": "records are written as soon as the sender thread is free; "
        "nothing waits on a network",
        "transaction_timeout_ms": "transactions go through Log.transaction() (see "
        "transactional_id)",
    },
    refused={
        "transactional_id": "KafkaProducer transactions are not offered; use eventlog's "
        "own exactly-once API, log.transaction() (appends and consumer-group offset commits "
        "in one atomic commit), or log.processor() (docs/explanation/transactions.md)",
    },
)

CONSUMER: Final = ConfigTable(
    client="KafkaConsumer",
    accepted={
        "bootstrap_servers": None,
        "client_id": None,
        "group_id": None,
        "group_instance_id": None,
        "key_deserializer": None,
        "value_deserializer": None,
        "auto_offset_reset": "latest",
        "enable_auto_commit": True,
        "auto_commit_interval_ms": 5000,
        "default_offset_commit_callback": None,
        "max_poll_records": 500,
        "max_poll_interval_ms": 300_000,
        "session_timeout_ms": None,
        "heartbeat_interval_ms": None,
        "partition_assignment_strategy": ("range",),
        "consumer_timeout_ms": float("inf"),
        "allow_auto_create_topics": True,
        "isolation_level": "read_uncommitted",
    },
    ignored={
        **_shared(),
        "fetch_min_bytes": "records are read from local disk: nothing to batch up",
        "fetch_max_wait_ms": "records are read from local disk: nothing to batch up",
        "fetch_max_bytes": "records are read from local disk; max_poll_records bounds a poll",
        "max_partition_fetch_bytes": "records are read from local disk; max_poll_records "
        "bounds a poll",
        "check_crcs": "eventlog verifies every stored batch's checksum always",
        "exclude_internal_topics": "a log has no internal topics",
        "client_rack": "a log has no replicas to choose from",
        "enable_incremental_fetch_sessions": "no fetch sessions without a network",
        "legacy_iterator": "kafka-python 2.0's iterator switch; iteration is one "
        "implementation here",
    },
    refused={},
)

ADMIN: Final = ConfigTable(
    client="KafkaAdminClient",
    accepted={"bootstrap_servers": None, "client_id": None},
    ignored=_shared(),
    refused={},
)

# host:port, or a comma-separated list of them: what a Kafka cluster address looks like.
_HOST_PORT: Final = re.compile(r"^\s*[\w.\-\[\]:]+:\d+\s*(,\s*[\w.\-\[\]:]+:\d+\s*)*$")
_HOW: Final = (
    "eventlog.kafka opens a log directory, not a Kafka cluster: pass its path, "
    "bootstrap_servers='eventlog:PATH' (relative or absolute) or 'eventlog:///abs/path', "
    "or an open eventlog.Log"
)


@attrs.define
class LogHandle:
    """The log a client uses, and whether the client opened it (and so closes it)."""

    log: Log
    owned: bool

    def release(self) -> None:
        if self.owned:
            self.log.close()


def _path_of(value: object) -> str:
    if isinstance(value, os.PathLike):
        return os.fsdecode(value)
    if not isinstance(value, str):
        raise KafkaConfigurationError(
            f"bootstrap_servers must be a path, an 'eventlog:' URL, a list holding one of "
            f"them, or an eventlog.Log; got {type(value).__name__} {value!r}"
        )
    if value.startswith("eventlog:"):
        rest = value[len("eventlog:") :]
        if rest.startswith("///"):
            rest = rest[2:]
        elif rest.startswith("//"):
            raise KafkaConfigurationError(
                f"bootstrap_servers {value!r}: an eventlog URL names a directory, not a host; "
                f"write 'eventlog:///absolute/path' or 'eventlog:relative/path'"
            )
        if not rest:
            raise KafkaConfigurationError(f"bootstrap_servers {value!r} names no directory")
        return rest
    # "localhost" alone is kafka-python's default bootstrap_servers.
    if (_HOST_PORT.match(value) or value.strip() == "localhost") and not os.path.isdir(value):
        raise NoBrokersAvailable(f"bootstrap_servers {value!r} is a network address; {_HOW}")
    if not value.strip():
        raise KafkaConfigurationError(f"bootstrap_servers is empty; {_HOW}")
    return value


def open_log(client: str, bootstrap_servers: object) -> LogHandle:
    """Open the log ``bootstrap_servers`` names (an open Log is used as is, not closed).

    Opening one directory several times in a process shares one LMDB environment (the
    storage layer counts references), so a producer, consumers and an admin client on
    the same path work together; each closes its own handle.

    Raises:
        KafkaConfigurationError: no or a malformed ``bootstrap_servers``.
        NoBrokersAvailable: a ``host:port`` address.
        eventlog errors of :func:`eventlog.open` (NotALogError, ...).
    """
    if bootstrap_servers is None:
        raise KafkaConfigurationError(f"{client} needs bootstrap_servers; {_HOW}")
    if isinstance(bootstrap_servers, Log):
        if bootstrap_servers.closed:
            raise KafkaConfigurationError(
                f"bootstrap_servers: the log {bootstrap_servers.path!r} is closed"
            )
        return LogHandle(bootstrap_servers, owned=False)
    value = bootstrap_servers
    if isinstance(value, list | tuple):
        if len(value) != 1:
            raise KafkaConfigurationError(
                f"bootstrap_servers lists {len(value)} entries; a client opens one log "
                f"directory, so give exactly one; {_HOW}"
            )
        value = value[0]
    return LogHandle(_open(_path_of(value)), owned=True)
