"""asyncio front ends for the producer and the consumer: :class:`AsyncProducer` and
:class:`AsyncConsumer`.

Both wrap the thread-based clients (:class:`eventlog.Producer`, :class:`eventlog.Consumer`)
and never block the event loop on disk or on waiting for records::

    async with AsyncProducer(log, value_serializer=eventlog.serde.json) as producer:
        meta = await producer.send_and_wait("orders", {"id": 1})

    async with AsyncConsumer(log, "orders", group="billing",
                             value_deserializer=eventlog.serde.json) as consumer:
        async for record in consumer:
            ...
            await consumer.commit()

The names and shapes follow aiokafka (``send`` returns a future, ``getmany`` returns
``{TopicPartition: [Record, ...]}``, ``getone``, ``async for``), so code written for it
reads the same.

How it works:

- The producer's ``send()`` checks, serializes and buffers a record in the calling thread
  without waiting, so :meth:`AsyncProducer.send` calls it directly on the loop. Only two
  things could block: a full buffer (it waits for space asynchronously instead, up to
  ``max_block_ms``) and the read of a topic's definition the first time the producer
  sees the topic (done in the loop's default executor). Flushing and closing run there
  too.
- A :class:`Consumer` is used by one thread at a time. Each :class:`AsyncConsumer` owns one
  dedicated thread that makes every call on its consumer: polls, commits, rebalances.
  Rebalance listener callbacks therefore run in that thread, never on the event loop.
  Waiting for records is a series of short polls (at most 0.1 s each), so cancelling a
  ``getmany()`` takes effect promptly.
- Cancellation loses no record: records a cancelled poll fetched anyway, like records
  fetched for ``getone()`` or iteration and not handed out yet, have their positions moved
  back before the consumer's next call, so they are returned again and never committed
  unseen.
"""

from __future__ import annotations

from ._aio_consumer import AsyncConsumer
from ._aio_producer import AsyncProducer

__all__ = ["AsyncConsumer", "AsyncProducer"]
