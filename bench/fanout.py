"""Live fan-out: N SSE clients on one server, a few catalog changes, each client's latency.

Clients are asyncio protocols on raw sockets (no parsing beyond looking for a marker),
spread over a few processes so that 10,000 of them do not queue behind one Python thread
on the same cores as the server. Each process opens its share (`CONNECTING` at a time),
waits until the server has subscribed each one (`retry:` arrives once it has), and says
so. Then, for each round, the parent sends the marker the next change will carry, makes
the change (a rename, through `publish`), and every process reports when each of its
clients saw it: `time.time()` on the same machine, so the processes' timings merge.

Memory per stream: the resident memory of every server process (the granian supervisor
and its workers, from /proc) with the N streams open minus with none, over N.

Everything is bounded: connecting (`CONNECT_SECONDS`), each round (`timeout`); a client
that has not seen the change by then counts as dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

CONNECTING = 100  # handshakes in flight per client process: waves, not 10,000 SYNs at once
CONNECT_SECONDS = 120.0
REQUEST = b"GET /live/ HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n"
SUBSCRIBED = b"retry:"  # the stream's first bytes, sent once the viewer is subscribed


@dataclass
class Round:
    latencies: list[float]  # ms from the change request to each client's receipt, sorted
    change_ms: float  # the change request itself (commit and publish included)
    server_cpu_ms: float | None = None  # CPU the server's processes used in the round

    def row(self, connected: int) -> list[str]:
        lat = self.latencies
        if not lat:
            return [str(connected), "0", "-", "-", "-", f"{self.change_ms:.0f}", self.cpu]
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
        return [
            str(connected),
            str(len(lat)),
            f"{statistics.median(lat):.0f}",
            f"{p99:.0f}",
            f"{lat[-1]:.0f}",
            f"{self.change_ms:.0f}",
            self.cpu,
        ]

    @property
    def cpu(self) -> str:
        return "-" if self.server_cpu_ms is None else f"{self.server_cpu_ms:.0f}"


@dataclass
class Result:
    clients: int
    connected: int
    connect_seconds: float
    rss_per_stream: float | None  # bytes
    fds_per_worker: list[int]  # open descriptors each worker gained: how streams spread
    rounds: list[Round] = field(default_factory=list)


def run(
    port: int,
    publish: Callable[[str], None],
    *,
    clients: int,
    rounds: int = 3,
    processes: int = 0,
    timeout: float = 30.0,
    server_pid: int | None = None,
    gap: float = 0.0,
) -> Result:
    """`clients` viewers of `GET /live/` at `port`; `rounds` changes by `publish(name)`,
    each after a random pause of up to `gap` seconds (so that no poll lines up with them)."""
    processes = processes or max(1, min(4, clients // 2500))
    shares = [clients // processes + (i < clients % processes) for i in range(processes)]
    ctx = multiprocessing.get_context("fork")  # the parent runs no thread here
    pipes: list[Connection] = []
    procs = []
    before = _server_memory(server_pid)
    started = time.monotonic()
    for share in shares:
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_client_process, args=(port, share, child), daemon=True)
        proc.start()
        pipes.append(parent)
        procs.append(proc)
    try:
        connected = sum(_recv(pipe, CONNECT_SECONDS + 10) or 0 for pipe in pipes)
        connect_seconds = time.monotonic() - started
        after = _server_memory(server_pid)
        per_stream = None
        fds: list[int] = []
        if before and after and connected:
            per_stream = (sum(after[0].values()) - sum(before[0].values())) / connected
            fds = [after[1][pid] - before[1].get(pid, 0) for pid in after[1] if pid in before[1]]
            fds = [n for n in fds if n > 0] or fds
        result = Result(clients, connected, connect_seconds, per_stream, fds)
        print(
            f"   {connected} of {clients} subscribed in {connect_seconds:.1f} s; "
            f"descriptors gained per server process {fds}",
            flush=True,
        )
        for i in range(rounds):
            marker = f"Renamed {time.monotonic_ns()} {i}"
            for pipe in pipes:
                pipe.send(("expect", marker.encode(), timeout))
            for pipe in pipes:  # each has its marker before the change is made
                _recv(pipe, 10)
            time.sleep(random.uniform(0, gap))
            cpu = _server_cpu(server_pid)
            t0 = time.time()
            try:
                publish(marker)
            except OSError as exc:  # no answer: the clients still say whether it came
                print(f"   change {i + 1}: the change request failed: {exc!r}", flush=True)
            change_ms = (time.time() - t0) * 1000
            times: list[float] = []
            for pipe in pipes:
                times.extend(_recv(pipe, timeout + 10) or [])
            cpu_ms = None
            if cpu is not None and (cpu_after := _server_cpu(server_pid)) is not None:
                cpu_ms = (cpu_after - cpu) * 1000
            latencies = sorted((t - t0) * 1000 for t in times)
            result.rounds.append(Round(latencies, change_ms, cpu_ms))
        return result
    finally:
        for pipe in pipes:
            with contextlib.suppress(OSError):
                pipe.send(("stop",))
        for proc in procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.kill()
                proc.join()


def _recv(pipe: Connection, seconds: float) -> Any:
    if not pipe.poll(seconds):
        return None
    return pipe.recv()


# -- the server's memory ---------------------------------------------------------------------


def _server_cpu(pid: int | None) -> float | None:
    """CPU seconds (user and system) used so far by the server's processes."""
    if pid is None:
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for p in _descendants(pid):
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / ticks


def _descendants(pid: int) -> list[int]:
    """`pid` and every process under it."""
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        with contextlib.suppress(OSError):
            for task in os.listdir(f"/proc/{p}/task"):
                todo.extend(
                    int(c) for c in Path(f"/proc/{p}/task/{task}/children").read_text().split()
                )
    return found


def _server_memory(pid: int | None) -> tuple[dict[int, int], dict[int, int]] | None:
    """RSS (bytes) and open descriptors of `pid` and all its descendants, by pid."""
    if pid is None:
        return None
    rss: dict[int, int] = {}
    fds: dict[int, int] = {}
    for p in _descendants(pid):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    rss[p] = int(line.split()[1]) * 1024
            fds[p] = len(os.listdir(f"/proc/{p}/fd"))
    return rss, fds


# -- a client process ------------------------------------------------------------------------


class Viewer(asyncio.Protocol):
    """One SSE client: notes when the stream is subscribed and when it shows the marker."""

    def __init__(self, state: State) -> None:
        self.state = state
        self.subscribed: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self.tail = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(REQUEST)

    def data_received(self, data: bytes) -> None:
        state = self.state
        if not self.subscribed.done():
            self.tail += data
            if SUBSCRIBED in self.tail:
                self.subscribed.set_result(True)
            return
        marker = state.marker
        if not marker or self in state.seen:
            return
        window = self.tail + data
        if marker in window:
            state.seen[self] = time.time()
            if len(state.seen) == state.expected:
                state.all_seen.set()
            self.tail = b""
        else:
            self.tail = window[-len(marker) :]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.subscribed.done():
            self.subscribed.set_result(False)
        self.state.lost += 1


@dataclass
class State:
    marker: bytes = b""
    seen: dict[Viewer, float] = field(default_factory=dict)
    expected: int = 0
    all_seen: asyncio.Event = field(default_factory=asyncio.Event)
    lost: int = 0


def _client_process(port: int, count: int, pipe: Connection) -> None:
    asyncio.run(_clients(port, count, pipe))


async def _clients(port: int, count: int, pipe: Connection) -> None:
    loop = asyncio.get_running_loop()
    state = State()
    limit = asyncio.Semaphore(CONNECTING)
    viewers: list[Viewer] = []

    async def connect() -> None:
        async with limit:
            try:
                _, viewer = await asyncio.wait_for(
                    loop.create_connection(lambda: Viewer(state), "127.0.0.1", port), 30
                )
                if await asyncio.wait_for(viewer.subscribed, 30):
                    viewers.append(viewer)
                elif viewer.transport:
                    viewer.transport.close()
            except (OSError, TimeoutError):
                pass

    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.gather(*(connect() for _ in range(count))), CONNECT_SECONDS)
    for viewer in viewers:
        viewer.tail = b""
    pipe.send(len(viewers))
    while True:
        command = await loop.run_in_executor(None, pipe.recv)
        if command[0] != "expect":
            break
        _, marker, timeout = command
        state.seen.clear()
        state.expected = len(viewers)
        state.all_seen.clear()
        state.marker = marker
        pipe.send("ready")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(state.all_seen.wait(), timeout)
        state.marker = b""
        pipe.send(list(state.seen.values()))
    for viewer in viewers:
        if viewer.transport:
            viewer.transport.close()
