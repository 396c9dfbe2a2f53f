"""Group commit for the inbox: deliveries that arrive together are stored by one statement."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from sqlalchemy.exc import DBAPIError

from plugin.storage.db import Database
from plugin.storage.deliveries import NewDelivery, store_deliveries


class _Waiting:
    """One request's delivery, waiting for the statement that stores it."""

    __slots__ = ("delivery", "error", "outcome", "settled", "wake")

    def __init__(self, delivery: NewDelivery) -> None:
        self.delivery = delivery
        self.settled = False
        self.outcome: tuple[int, bool] = (0, False)
        self.error: BaseException | None = None
        # Held until a writer settles this delivery or hands this request the next batch;
        # a bare lock is the cheapest thing a thread can sleep on.
        self.wake = threading.Lock()
        self.wake.acquire()

    def settle(self, outcome: tuple[int, bool] | None, error: BaseException | None) -> None:
        """Record the outcome (or the error) and wake the request."""
        if outcome is not None:
            self.outcome = outcome
        self.error = error
        self.settled = True
        self.wake.release()

    def result(self) -> tuple[int, bool]:
        """Return the outcome, or raise the error the statement met."""
        if self.error is not None:
            raise self.error
        return self.outcome


class DeliveryWriter:
    """Stores the deliveries of concurrent requests together, each committed before it returns.

    A request arriving while nothing is being written writes its own delivery at once. Requests
    arriving during a write queue up; when the write ends, the first of them is woken to write
    the whole queue in one statement, and the rest are woken as that statement settles them
    (leader and followers, as databases flush their logs). A lone webhook pays one round trip
    and a burst far fewer than one each; the INSERT is a single atomic statement in autocommit
    (see :meth:`Database.autocommit`), so what a request is told is stored is committed.
    """

    def __init__(self, database: Database) -> None:
        self._database = database
        self._lock = threading.Lock()
        self._queued: list[_Waiting] = []
        self._writing = False

    @property
    def waiting(self) -> int:
        """How many requests wait for the next statement."""
        with self._lock:
            return len(self._queued)

    def store(self, delivery: NewDelivery) -> tuple[int, bool]:
        """Store ``delivery`` once per tenant; return its row id and True if it was new."""
        mine = _Waiting(delivery)
        with self._lock:
            self._queued.append(mine)
            follow, self._writing = self._writing, True
        if follow:
            mine.wake.acquire()
            if mine.settled:
                return mine.result()
            # Woken unsettled: this request writes the next batch, its own delivery included.
        with self._lock:
            batch, self._queued = self._queued, []
        try:
            outcomes = self._store([waiting.delivery for waiting in batch])
        except BaseException as exc:
            # Every request in the batch gets the error (a 503 that its sender retries).
            for waiting in batch:
                waiting.settle(None, exc)
        else:
            for waiting, outcome in zip(batch, outcomes, strict=True):
                waiting.settle(outcome, None)
        finally:
            with self._lock:
                if self._queued:
                    self._queued[0].wake.release()
                else:
                    self._writing = False
        return mine.result()

    def _store(self, deliveries: list[NewDelivery]) -> list[tuple[int, bool]]:
        now = datetime.now(UTC)
        try:
            with self._database.autocommit() as connection:
                return store_deliveries(connection, deliveries, now=now)
        except DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
        # The server closed the connection (a restart, an idle timeout): one more try on a
        # new one. A statement that reached the server before the drop stored its rows, and
        # ON CONFLICT finds them again; such a delivery is answered as a duplicate and the
        # sweeper, not this request, queues it.
        with self._database.autocommit() as connection:
            return store_deliveries(connection, deliveries, now=now)
