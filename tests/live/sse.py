"""A small Server-Sent Events client for tests: a real socket, a deadline, no sleeps."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


@dataclass
class Event:
    name: str
    id: str
    data: str

    def json(self) -> Any:
        return json.loads(self.data)


class SSEClient:
    def __init__(self, url: str, *, last_event_id: str = "", timeout: float = 10.0) -> None:
        parts = urlsplit(url)
        self.sock = socket.create_connection((parts.hostname, parts.port or 80), timeout=timeout)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        headers = [f"GET {path} HTTP/1.1", f"Host: {parts.netloc}", "Accept: text/event-stream"]
        if last_event_id:
            headers.append(f"Last-Event-ID: {last_event_id}")
        self.sock.sendall(("\r\n".join(headers) + "\r\n\r\n").encode())
        self.buffer = b""
        self.status = 0
        self.chunked = False
        self._read_head()

    def _recv(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("stream closed")
        self.buffer += data

    def _read_head(self) -> None:
        while b"\r\n\r\n" not in self.buffer:
            self._recv()
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split()[1])
        fields = {
            k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])
        }
        self.content_type = fields.get("content-type", "")
        self.chunked = fields.get("transfer-encoding", "").lower() == "chunked"
        self.raw = b""  # de-chunked body not yet parsed into events

    def _fill(self) -> None:
        if not self.chunked:
            if not self.buffer:  # bytes that came with the headers are used first
                self._recv()
            self.raw += self.buffer
            self.buffer = b""
            return
        while True:
            if b"\r\n" in self.buffer:
                size_line, rest = self.buffer.split(b"\r\n", 1)
                size = int(size_line.split(b";")[0], 16)
                if len(rest) >= size + 2:
                    self.raw += rest[:size]
                    self.buffer = rest[size + 2 :]
                    if size == 0:
                        raise ConnectionError("stream ended")
                    return
            self._recv()

    def next_event(self) -> Event:
        """The next event (comments and `retry:` lines skipped)."""
        while True:
            while b"\n\n" not in self.raw:
                self._fill()
            block, self.raw = self.raw.split(b"\n\n", 1)
            name, event_id, data = "message", "", []
            for line in block.decode().split("\n"):
                key, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                if key == "event":
                    name = value
                elif key == "id":
                    event_id = value
                elif key == "data":
                    data.append(value)
            if data:
                return Event(name, event_id, "\n".join(data))

    def wait_for(self, predicate: Callable[[Event], bool], *, timeout: float = 10.0) -> Event:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no matching event")
            self.sock.settimeout(remaining)
            event = self.next_event()
            if predicate(event):
                return event

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> SSEClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
