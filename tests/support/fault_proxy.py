"""A fault-injecting HTTP proxy, to put between the shop and the Stripe emulator.

Production's faults, made on purpose: an answer lost on the way back after Stripe acted, a
Stripe that answers 503, one that is slow, one that hangs until told to go on, a connection
cut before the request arrived. Rules match a method and a path (a regular expression,
searched in the path without its query) and apply to the next `times` matching requests.

    with running_fault_proxy(emulator.api_base) as proxy:
        settings.STRIPE_API_BASE = proxy.url
        proxy.add(Fault.LOSE_ANSWER, path=r"^/v1/refunds$", times=1)
        ...                                  # the refund is made, its answer never arrives
        assert proxy.seen(path=r"^/v1/refunds$") == 3   # the SDK retried twice

Standard library only; one thread per connection; listens on 127.0.0.1 and a free port.
"""

from __future__ import annotations

import contextlib
import http.client
import re
import socket
import struct
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import Enum
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailers",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
}


class Fault(Enum):
    LOSE_ANSWER = "lose_answer"  # forwarded and acted on; the connection is cut before the answer
    CUT = "cut"  # the connection is cut before anything is forwarded: nothing happened
    UNAVAILABLE = "unavailable"  # 503 without forwarding, as a load balancer answers
    SERVER_ERROR = "server_error"  # forwarded and acted on, then answered 500
    DELAY = "delay"  # forwarded after `seconds`
    HOLD = "hold"  # forwarded once `release()` is called (or after `seconds`, if set)


@dataclass
class Rule:
    fault: Fault
    path: re.Pattern[str]
    method: str | None
    times: int | None  # None: every matching request
    seconds: float = 0.0
    released: threading.Event = field(default_factory=threading.Event)
    applied: int = 0

    def matches(self, method: str, path: str) -> bool:
        if self.times is not None and self.applied >= self.times:
            return False
        return (self.method is None or self.method == method) and bool(self.path.search(path))


@dataclass
class Seen:
    method: str
    path: str
    fault: Fault | None
    status: int | None  # what the client got; None when the connection was cut


class FaultProxy:
    def __init__(self, upstream: str) -> None:
        parsed = urllib.parse.urlsplit(upstream)
        self.upstream_host = parsed.hostname or "127.0.0.1"
        self.upstream_port = parsed.port or (443 if parsed.scheme == "https" else 80)
        self.rules: list[Rule] = []
        self.log: list[Seen] = []
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> FaultProxy:
        self.thread.start()
        return self

    def stop(self) -> None:
        for rule in self.rules:
            rule.released.set()  # nothing stays held past the test
        self.server.shutdown()
        self.server.server_close()

    def add(
        self,
        fault: Fault,
        *,
        path: str,
        method: str | None = "POST",
        times: int | None = 1,
        seconds: float = 0.0,
    ) -> Rule:
        """Apply `fault` to the next `times` requests (None: all) whose path matches."""
        rule = Rule(fault, re.compile(path), method, times, seconds)
        with self.lock:
            self.rules.append(rule)
        return rule

    def clear(self) -> None:
        """No more faults; held requests go on."""
        with self.lock:
            for rule in self.rules:
                rule.released.set()
            self.rules.clear()

    def seen(self, *, path: str = "", method: str | None = None) -> int:
        """How many requests reached the proxy whose path matches (and method, if given)."""
        pattern = re.compile(path)
        with self.lock:
            return sum(
                1
                for s in self.log
                if pattern.search(s.path) and (method is None or s.method == method)
            )

    def _rule_for(self, method: str, path: str) -> Rule | None:
        with self.lock:
            for rule in self.rules:
                if rule.matches(method, path):
                    rule.applied += 1
                    return rule
        return None

    def _record(self, seen: Seen) -> None:
        with self.lock:
            self.log.append(seen)


def _handler_for(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _cut(self) -> None:
            # An abrupt close (RST): the client sees the connection die, not an answer.
            with contextlib.suppress(OSError):
                self.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
            self.close_connection = True

        def _handle(self) -> None:
            method = self.command
            path = urllib.parse.urlsplit(self.path).path
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            rule = proxy._rule_for(method, path)
            fault = rule.fault if rule else None
            if rule is not None and fault is Fault.CUT:
                proxy._record(Seen(method, path, fault, None))
                self._cut()
                return
            if rule is not None and fault is Fault.UNAVAILABLE:
                proxy._record(Seen(method, path, fault, 503))
                self._answer(503, {"Content-Type": "application/json"}, _ERROR_503)
                return
            if rule is not None and fault is Fault.DELAY:
                time.sleep(rule.seconds)
            if rule is not None and fault is Fault.HOLD:
                rule.released.wait(rule.seconds or None)
            status, headers, answer = self._forward(method, body)
            if rule is not None and fault is Fault.LOSE_ANSWER:
                proxy._record(Seen(method, path, fault, None))
                self._cut()
                return
            if rule is not None and fault is Fault.SERVER_ERROR:
                status, headers, answer = 500, {"Content-Type": "application/json"}, _ERROR_500
            proxy._record(Seen(method, path, fault, status))
            self._answer(status, headers, answer)

        def _forward(self, method: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
            upstream = http.client.HTTPConnection(
                proxy.upstream_host, proxy.upstream_port, timeout=60
            )
            try:
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                headers["Host"] = f"{proxy.upstream_host}:{proxy.upstream_port}"
                upstream.request(method, self.path, body=body or None, headers=headers)
                response = upstream.getresponse()
                answer = response.read()
                kept = {k: v for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP}
                return response.status, kept, answer
            finally:
                upstream.close()

        def _answer(self, status: int, headers: dict[str, str], body: bytes) -> None:
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_DELETE = _handle

    return Handler


_ERROR_503 = (
    b'{"error": {"type": "api_error", "message": "The service is temporarily unavailable '
    b'(injected by the test proxy)."}}'
)
_ERROR_500 = (
    b'{"error": {"type": "api_error", "message": "An unexpected error occurred '
    b'(injected by the test proxy, after the request was carried out)."}}'
)


@contextlib.contextmanager
def running_fault_proxy(upstream: str) -> Iterator[FaultProxy]:
    proxy = FaultProxy(upstream).start()
    try:
        yield proxy
    finally:
        proxy.stop()
