"""SendFuture: the future-like handle :meth:`eventlog.Producer.send` returns."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError
from typing import Any, Final

from ._records import RecordMetadata

__all__ = ["SendFuture"]


def _lazy_condition_supported() -> bool:
    """Whether Future's private layout is the one SendFuture's fast path relies on.

    ``concurrent.futures.Future`` keeps its state in six private attributes and touches them
    only while holding ``self._condition`` (true from Python 3.2 to at least 3.13). If a
    later Python changes that, SendFuture falls back to the plain Future machinery.
    """
    try:
        from concurrent.futures import _base

        layout = set(vars(Future()))
        return (
            layout
            == {"_condition", "_state", "_result", "_exception", "_waiters", "_done_callbacks"}
            and _base.PENDING == "PENDING"
            and _base.FINISHED == "FINISHED"
        )
    except Exception:  # pragma: no cover - a Python without that private module
        return False


_LAZY_CONDITION: Final = _lazy_condition_supported()
# Guards the creation of a SendFuture's condition against its completion by the sender.
_condition_lock: Final = threading.Lock()


class SendFuture(Future[RecordMetadata]):
    """The result of :meth:`Producer.send`: resolves to the record's :class:`RecordMetadata`.

    A :class:`concurrent.futures.Future`, so ``result(timeout)``, ``exception()``,
    ``done()``, ``add_done_callback()``, ``concurrent.futures.wait()`` and
    ``asyncio.wrap_future()`` all work. It fails with the error of the write (for example
    :class:`~eventlog.LogClosedError`, :class:`~eventlog.TopicNotFoundError` when the topic
    was deleted meanwhile, :class:`~eventlog.DiskFullError`).

    Callbacks (:meth:`add_callback`, :meth:`add_errback`, ``add_done_callback``) run in the
    producer's sender thread right after the write, or at once in the calling thread when
    the future is already done. Keep them short: the sender writes nothing else while a
    callback runs. An exception raised by a callback is logged (logger
    ``concurrent.futures``) and ignored.

    A send cannot be cancelled once buffered (as in Kafka): :meth:`cancel` returns False.
    """

    if _LAZY_CONDITION:
        # Most futures of a busy producer are never waited on one by one. A Future's
        # threading.Condition costs about half of the producer's per-record time (creating
        # it, and notifying it on completion), so it is created only when someone first
        # uses the future; the sender completes an untouched future without it (_complete).

        def __init__(self) -> None:
            # Future.__init__ without the Condition.
            self._lazy_condition: threading.Condition | None = None
            self._state = "PENDING"
            self._result = None
            self._exception = None
            # _waiters and _done_callbacks are created with the condition: Future uses
            # them only while holding it.

        @property
        def _condition(self) -> threading.Condition:  # type: ignore[override]
            condition = self._lazy_condition
            if condition is None:
                with _condition_lock:
                    condition = self._lazy_condition
                    if condition is None:
                        self._waiters = []
                        self._done_callbacks: list[Any] = []
                        condition = self._lazy_condition = threading.Condition()
            return condition

        def __getattr__(self, name: str) -> Any:
            # Only reached for an attribute not set yet: a Future internal used without the
            # condition (not done by any Python so far) gets it created first.
            if name in ("_waiters", "_done_callbacks"):
                self._condition  # noqa: B018
                return object.__getattribute__(self, name)
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

        def done(self) -> bool:
            """Return True once the record is written or has failed."""
            return self._state == "FINISHED" or super().done()

        def result(self, timeout: float | None = None) -> RecordMetadata:
            """The record's metadata; waits up to ``timeout`` seconds (None: no limit).

            Raises:
                TimeoutError: not written within ``timeout``.
                Exception: the error that failed the write.
            """
            if self._state == "FINISHED" and self._exception is None:
                return self._result  # type: ignore[return-value]
            return super().result(timeout)

        def exception(self, timeout: float | None = None) -> BaseException | None:
            """The error that failed the write, or None once written; waits like
            :meth:`result`."""
            if self._state == "FINISHED":
                return self._exception
            return super().exception(timeout)

        def _complete(self, result: RecordMetadata | None, exc: BaseException | None) -> None:
            """Complete the future (the sender's call). While nobody has touched it, no
            one can be waiting on it or have registered a callback: set the state alone."""
            if self._lazy_condition is None:
                with _condition_lock:
                    if self._lazy_condition is None:
                        if self._state == "FINISHED":
                            raise InvalidStateError("the future is already done")
                        if exc is None:
                            self._result = result
                        else:
                            self._exception = exc
                        self._state = "FINISHED"
                        return
            if exc is None:
                self.set_result(result)  # type: ignore[arg-type]
            else:
                self.set_exception(exc)

    else:  # pragma: no cover - only on a Python whose Future differs

        def _complete(self, result: RecordMetadata | None, exc: BaseException | None) -> None:
            if exc is None:
                self.set_result(result)  # type: ignore[arg-type]
            else:
                self.set_exception(exc)

    def cancel(self) -> bool:
        """Do nothing and return False: a buffered record is always written or failed."""
        return False

    def add_callback(self, fn: Callable[[RecordMetadata], object]) -> SendFuture:
        """Call ``fn(metadata)`` when the record is written (not if it fails).

        Returns:
            This future, so that calls can be chained.
        """

        def on_done(future: Future[RecordMetadata]) -> None:
            if future.exception() is None:
                fn(future.result())

        self.add_done_callback(on_done)
        return self

    def add_errback(self, fn: Callable[[BaseException], object]) -> SendFuture:
        """Call ``fn(exception)`` if the record fails to be written (not on success).

        Returns:
            This future, so that calls can be chained.
        """

        def on_done(future: Future[RecordMetadata]) -> None:
            exc = future.exception()
            if exc is not None:
                fn(exc)

        self.add_done_callback(on_done)
        return self
