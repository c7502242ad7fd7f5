"""``eventlog.kafka.admin``: where ``kafka.admin``'s names are (``from kafka.admin import
KafkaAdminClient, NewTopic`` becomes ``from eventlog.kafka.admin import ...``)."""

from ._admin import KafkaAdminClient, NewTopic

__all__ = ["KafkaAdminClient", "NewTopic"]
