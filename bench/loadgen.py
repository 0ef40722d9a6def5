"""An open-loop, constant-rate HTTP load generator (asyncio, HTTP/1.1 keep-alive).

Requests are *scheduled* at a fixed rate whatever the server does, and each latency is
measured from the request's scheduled time to the end of its response — so a server that
falls behind shows its queueing delay instead of slowing the generator down (the
coordinated-omission mistake of closed-loop tools such as wrk). Connections are opened
as needed, up to ``max_connections``; a request that finds none free waits, and that wait
counts in its latency.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import numpy as np


@dataclass
class LoadResult:
    rate: float
    duration: float
    latencies_ms: np.ndarray
    errors: int
    statuses: dict[int, int] = field(default_factory=dict)

    @property
    def sent(self) -> int:
        return len(self.latencies_ms) + self.errors

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.latencies_ms, q)) if len(self.latencies_ms) else float("inf")

    def summary(self) -> dict:
        return {
            "rate": self.rate,
            "duration_s": self.duration,
            "requests": self.sent,
            "errors": self.errors,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "p50_ms": self.percentile(50),
            "p95_ms": self.percentile(95),
            "p99_ms": self.percentile(99),
            "max_ms": float(self.latencies_ms.max()) if len(self.latencies_ms) else float("inf"),
        }


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def request(self, raw: bytes) -> tuple[int, bool]:
        """Send one request; return the status and whether the connection may be reused."""
        self.writer.write(raw)
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionError("closed")
        status = int(status_line.split()[1])
        length = 0
        reusable = True
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value.strip())
            elif name == b"connection" and value.strip().lower() == b"close":
                reusable = False  # gunicorn's sync workers close after every response
        if length:
            await self.reader.readexactly(length)
        return status, reusable


def build_request(host: str, port: int, method: str, path: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}", "Connection: keep-alive"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    if body or method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _run(host: str, port: int, raw: bytes, rate: float, duration: float, max_connections: int) -> LoadResult:
    idle: list[_Connection] = []
    open_count = 0
    available = asyncio.Condition()
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    errors = 0

    async def acquire() -> _Connection:
        nonlocal open_count
        async with available:
            while not idle and open_count >= max_connections:
                await available.wait()
            if idle:
                return idle.pop()
            open_count += 1
        reader, writer = await asyncio.open_connection(host, port)
        return _Connection(reader, writer)

    async def release(connection: _Connection | None) -> None:
        nonlocal open_count
        async with available:
            if connection is None:
                open_count -= 1
            else:
                idle.append(connection)
            available.notify()

    async def one(scheduled: float) -> None:
        nonlocal errors
        connection = None
        try:
            connection = await acquire()
            status, reusable = await connection.request(raw)
            if not reusable:
                connection.writer.close()
                connection = None
            statuses[status] = statuses.get(status, 0) + 1
            if 200 <= status < 300:
                latencies.append((time.perf_counter() - scheduled) * 1000)
            else:
                errors += 1
        except (OSError, ConnectionError, ValueError, IndexError, asyncio.IncompleteReadError):
            errors += 1
            if connection is not None:
                connection.writer.close()
            connection = None
        await release(connection)

    total = int(rate * duration)
    start = time.perf_counter() + 0.05
    tasks = []
    for i in range(total):
        scheduled = start + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(scheduled)))
    await asyncio.gather(*tasks)
    for connection in idle:
        connection.writer.close()
    return LoadResult(rate, duration, np.array(latencies), errors, statuses)


def run_load(host: str, port: int, raw: bytes, rate: float, duration: float, max_connections: int = 256) -> LoadResult:
    """Send ``raw`` at ``rate`` requests/s for ``duration`` seconds; return the latencies."""
    return asyncio.run(_run(host, port, raw, rate, duration, max_connections))
