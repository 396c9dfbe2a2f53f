"""A small HTTP/1.1 load generator: keep-alive connections on asyncio, requests pre-rendered.

Two shapes of load: closed loop (a fixed number of connections, each sending its next request
as soon as the answer arrives) for throughput, and open loop (requests start on a fixed
schedule whatever the server does) for latency. Open-loop latency counts from the scheduled
start, so a stalled server cannot hide its queue by slowing the sender down.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

IDLE_LIMIT_S = 1.0
"""Pooled connections idle longer than this are dropped; gunicorn closes them after 2 s."""
CONNECT_TIMEOUT_S = 5.0
ANSWER_TIMEOUT_S = 30.0


class ProtocolError(Exception):
    """The server answered something that is not HTTP/1.1 as expected."""


@dataclass
class LoadResult:
    """What one run of load produced."""

    sent: int = 0
    ok: int = 0
    """Answers with a 2xx status."""
    statuses: dict[int, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    """Requests that got no answer, by exception type."""
    elapsed_s: float = 0.0
    latencies_s: list[float] = field(default_factory=list)
    """One entry per answered request (any status)."""
    lag_s: float = 0.0
    """Open loop only: how late the sender started its most delayed request."""

    @property
    def throughput(self) -> float:
        """2xx answers per second over the run."""
        return self.ok / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def problems(self) -> str:
        """Describe non-2xx answers and failures, or return an empty string."""
        bad = [
            f"{count} x HTTP {status}"
            for status, count in sorted(self.statuses.items())
            if not 200 <= status < 300
        ]
        bad += [f"{count} x {name}" for name, count in sorted(self.errors.items())]
        return ", ".join(bad)

    def merge(self, other: LoadResult) -> None:
        """Add another run's counts and samples to this one."""
        self.sent += other.sent
        self.ok += other.ok
        for status, count in other.statuses.items():
            self.statuses[status] = self.statuses.get(status, 0) + count
        for name, count in other.errors.items():
            self.errors[name] = self.errors.get(name, 0) + count
        self.elapsed_s += other.elapsed_s
        self.latencies_s += other.latencies_s
        self.lag_s = max(self.lag_s, other.lag_s)

    def record(self, status: int, latency_s: float) -> None:
        """Count one answer."""
        self.statuses[status] = self.statuses.get(status, 0) + 1
        if 200 <= status < 300:
            self.ok += 1
        self.latencies_s.append(latency_s)

    def fail(self, exc: BaseException) -> None:
        """Count one request that got no answer."""
        name = type(exc).__name__
        self.errors[name] = self.errors.get(name, 0) + 1


class Connection:
    """One keep-alive HTTP/1.1 connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.reusable = True
        self.last_used = time.monotonic()

    @classmethod
    async def open(cls, host: str, port: int) -> Connection:
        """Connect to ``host:port``."""
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port), CONNECT_TIMEOUT_S
        )
        return cls(reader, writer)

    async def exchange(self, request: bytes) -> int:
        """Send one request and read its whole answer; return the status code."""
        self.writer.write(request)
        await self.writer.drain()
        status = await asyncio.wait_for(self._read_answer(), ANSWER_TIMEOUT_S)
        self.last_used = time.monotonic()
        return status

    async def _read_answer(self) -> int:
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        parts = lines[0].split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
            raise ProtocolError(f"not an HTTP status line: {lines[0][:80]!r}")
        status = int(parts[1])
        length = 0
        chunked = False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value.strip())
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif name == b"connection" and value.strip().lower() == b"close":
                self.reusable = False
        if parts[0] == b"HTTP/1.0":
            self.reusable = False
        if chunked:
            await self._skip_chunks()
        elif length:
            await self.reader.readexactly(length)
        return status

    async def _skip_chunks(self) -> None:
        while True:
            size_line = await self.reader.readuntil(b"\r\n")
            size = int(size_line.split(b";", 1)[0].strip(), 16)
            await self.reader.readexactly(size + 2)
            if size == 0:
                return

    def close(self) -> None:
        """Close the socket."""
        self.reusable = False
        self.writer.close()


async def closed_loop(
    host: str,
    port: int,
    next_request: Callable[[], bytes],
    *,
    connections: int,
    duration_s: float,
) -> LoadResult:
    """Keep ``connections`` requests in flight for ``duration_s``; measure what comes back."""
    result = LoadResult()
    started = time.monotonic()
    deadline = started + duration_s

    async def run_one() -> None:
        connection: Connection | None = None
        try:
            while time.monotonic() < deadline:
                if connection is None or not connection.reusable:
                    if connection is not None:
                        connection.close()
                    connection = await Connection.open(host, port)
                request = next_request()
                result.sent += 1
                begun = time.monotonic()
                try:
                    status = await connection.exchange(request)
                except (OSError, asyncio.IncompleteReadError, TimeoutError, ProtocolError) as exc:
                    result.fail(exc)
                    connection.close()
                    connection = None
                    continue
                result.record(status, time.monotonic() - begun)
        finally:
            if connection is not None:
                connection.close()

    await asyncio.gather(*(run_one() for _ in range(connections)))
    result.elapsed_s = time.monotonic() - started
    return result


async def open_loop(
    host: str,
    port: int,
    request_for: Callable[[int], bytes],
    *,
    rate: float,
    duration_s: float,
    max_connections: int = 256,
    on_send: Callable[[int, float], None] | None = None,
) -> LoadResult:
    """Start request ``i`` at ``i / rate`` seconds for ``duration_s``, whatever the answers.

    ``on_send(i, t)`` is told the monotonic time just before request ``i`` is written.
    Latency counts from the scheduled start, so time spent waiting for a connection counts.
    """
    result = LoadResult()
    count = int(rate * duration_s)
    idle: list[Connection] = []
    slots = asyncio.Semaphore(max_connections)
    tasks: list[asyncio.Task[None]] = []
    started = time.monotonic()

    async def take() -> Connection:
        while idle:
            connection = idle.pop()
            if connection.reusable and time.monotonic() - connection.last_used < IDLE_LIMIT_S:
                return connection
            connection.close()
        return await Connection.open(host, port)

    async def send(index: int, scheduled: float) -> None:
        request = request_for(index)
        async with slots:
            try:
                connection = await take()
            except (OSError, TimeoutError) as exc:
                result.fail(exc)
                return
            if on_send is not None:
                on_send(index, time.monotonic())
            try:
                status = await connection.exchange(request)
            except (OSError, asyncio.IncompleteReadError, TimeoutError, ProtocolError) as exc:
                result.fail(exc)
                connection.close()
                return
            result.record(status, time.monotonic() - scheduled)
            if connection.reusable:
                idle.append(connection)
            else:
                connection.close()

    for index in range(count):
        scheduled = started + index / rate
        delay = scheduled - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        else:
            result.lag_s = max(result.lag_s, -delay)
        result.sent += 1
        tasks.append(asyncio.create_task(send(index, scheduled)))
    await asyncio.gather(*tasks)
    result.elapsed_s = time.monotonic() - started
    for connection in idle:
        connection.close()
    return result
