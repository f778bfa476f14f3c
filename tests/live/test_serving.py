"""`make serve`'s server as it runs (granian, `live.asgi`): bad input refused at the door,
and a shutdown that ends every open stream instead of waiting for it."""

from __future__ import annotations

import http.client
import os
import re
import select
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path

import pytest

from scripts.serve import granian_command, serve_workers
from tests.live.conftest import REPO, free_port

MB = 1024 * 1024


@pytest.fixture(scope="module")
def server_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Production settings on a migrated SQLite file of its own, HTTPS on (behind a proxy
    that says so in X-Forwarded-Proto), static files collected as `make serve` does (the
    shop's 404 and 500 pages link its stylesheet through the manifest)."""
    database = tmp_path_factory.mktemp("serve") / "db.sqlite3"
    env = os.environ | {
        "DJANGO_SETTINGS_MODULE": "amazin.settings",
        "ENV_FILE": "/dev/null",
        "DATABASE_URL": f"sqlite:///{database}",
        "DEBUG": "0",
        "SECRET_KEY": "serving-tests-only-secret-key-0123456789-abcdefghijklmnopqrstu",
        "HTTPS": "1",
        "ALLOWED_HOSTS": "127.0.0.1",
        "LIVE_GRID_CACHE": "1",
        "LOG_LEVEL": "WARNING",
        "SITE_URL": "https://shop.example",
        "STRIPE_SECRET_KEY": "sk_test_serving_tests",
        "STRIPE_WEBHOOK_SECRET": "whsec_serving_tests",
    }
    for command in (["migrate"], ["collectstatic"]):
        subprocess.run(
            [sys.executable, "manage.py", *command, "--no-input", "-v", "0"],
            cwd=REPO,
            env=env,
            check=True,
        )
    return env


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    port: int

    def worker_rss(self) -> int:
        """Resident bytes of the (one) worker process, the one that handles requests."""
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text()
        return max(_rss(int(pid)) for pid in children.split())


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


@contextmanager
def serving(env: dict[str, str]) -> Iterator[Server]:
    port = free_port()
    command = granian_command(host="127.0.0.1", port=str(port), workers="1")
    # A session of its own: the workers can be found, and ended, by its process group.
    proc = subprocess.Popen(command, cwd=REPO, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, "server exited"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                    break
            except OSError:
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.1)  # polling a port, not hiding a race
        yield Server(proc, port)
    finally:
        stop(proc)


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop granian as a supervisor would, then make sure no worker outlives it."""
    if proc.poll() is None:
        proc.terminate()
        with suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


@pytest.fixture
def server(server_env: dict[str, str]) -> Iterator[Server]:
    with serving(server_env) as running:
        yield running


def send_body(port: int, *, total: int, chunked: bool) -> tuple[int, int]:
    """POST `total` bytes (1 MB at a time, never held whole) until the server answers.

    Returns the status and how many bytes went out before it did.
    """
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {total}"
    head = (
        "POST /stripe/webhook/ HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Forwarded-Proto: https\r\n"
        f"Content-Type: application/json\r\n{framing}\r\n\r\n"
    )
    block = b"x" * MB
    frame = b"%x\r\n%s\r\n" % (MB, block) if chunked else block
    sent = 0
    with sock:
        sock.sendall(head.encode())
        while sent < total and not select.select([sock], [], [], 0)[0]:
            try:
                sock.sendall(frame)
            except OSError:  # the server stopped reading: its answer is waiting
                break
            sent += MB
        if sent >= total and chunked:
            sock.sendall(b"0\r\n\r\n")
        response = b""
        while b"\r\n" not in response:
            data = sock.recv(4096)
            if not data:
                break
            response += data
    return int(response.split()[1]), sent


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_300_mb_body_gets_413_and_the_worker_does_not_grow(server, chunked):
    before = server.worker_rss()

    status, sent = send_body(server.port, total=300 * MB, chunked=chunked)

    assert status == HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    assert sent < 100 * MB  # refused early, not read to the end
    assert server.worker_rss() - before < 32 * MB


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_body_within_the_limit_reaches_django(server, chunked):
    status, sent = send_body(server.port, total=1 * MB, chunked=chunked)

    # The webhook read it and found no signature: Django's answer, not the guard's.
    assert status == HTTPStatus.BAD_REQUEST
    assert sent == 1 * MB


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_pages_on_the_event_loop_thread_read_the_body_too(server_env, chunked):
    with serving(server_env | {"LIVE_ASGI_PAGE_THREADS": "0"}) as inline:
        status, _ = send_body(inline.port, total=1 * MB, chunked=chunked)
        refused, _ = send_body(inline.port, total=300 * MB, chunked=chunked)

    assert status == HTTPStatus.BAD_REQUEST
    assert refused == HTTPStatus.REQUEST_ENTITY_TOO_LARGE


def get(port: int, path: str, headers: dict[str, str]) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers=headers)
        return conn.getresponse().status
    finally:
        conn.close()


def test_a_header_name_with_an_underscore_never_reaches_django(server):
    # HTTPS is on: Django redirects plain http unless the proxy header says https.
    proxied = get(server.port, "/no-such-page/", {"X-Forwarded-Proto": "https"})
    posing = get(server.port, "/no-such-page/", {"X_Forwarded_Proto": "https"})

    assert proxied == HTTPStatus.NOT_FOUND
    assert posing == HTTPStatus.MOVED_PERMANENTLY


def open_stream(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(b"GET /live/ HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n")
    head = b""
    while b"retry: 2000" not in head:  # subscribed
        data = sock.recv(4096)
        assert data, "stream closed before it opened"
        head += data
    return sock


def read_to_end(sock: socket.socket) -> bytes:
    rest = b""
    while data := sock.recv(4096):
        rest += data
    return rest


def terminate(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)  # a supervisor stopping the server (systemd, docker)


def ctrl_c(proc: subprocess.Popen[bytes]) -> None:
    os.killpg(proc.pid, signal.SIGINT)  # the terminal signals the whole process group


@pytest.mark.parametrize("stop_server", [terminate, ctrl_c], ids=["SIGTERM", "Ctrl-C"])
def test_shutdown_ends_100_open_streams_with_a_retry_hint_and_exits(server_env, stop_server):
    with serving(server_env) as server:
        streams = [open_stream(server.port) for _ in range(100)]

        started = time.monotonic()
        stop_server(server.proc)
        server.proc.wait(timeout=10)
        elapsed = time.monotonic() - started
        endings = [read_to_end(sock) for sock in streams]
        for sock in streams:
            sock.close()

    assert elapsed < 10
    assert server.proc.returncode == 0
    for ending in endings:
        hint = re.search(rb"retry: (\d+)\n\n", ending)
        assert hint and 500 <= int(hint.group(1)) <= 1000
        assert ending.endswith(b"0\r\n\r\n")  # the chunked response was ended, not cut


def test_django_refuses_a_large_content_length_before_reading(client, settings):
    # The test client's body is small; Content-Length is what Django reads by.
    declared = str(settings.MAX_REQUEST_BODY_BYTES + 1)

    refused = client.post("/stripe/webhook/", b"{}", "application/json", CONTENT_LENGTH=declared)
    accepted = client.post("/stripe/webhook/", b"{}", "application/json")

    assert refused.status_code == HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    assert accepted.status_code == HTTPStatus.BAD_REQUEST  # the webhook's own answer: unsigned


def test_the_stream_checks_allowed_hosts_like_every_page(server):
    allowed = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    allowed.request("GET", "/live/")
    opened = allowed.getresponse()
    allowed.close()

    assert opened.status == HTTPStatus.OK
    assert get(server.port, "/live/", {"Host": "evil.example"}) == HTTPStatus.BAD_REQUEST


def test_make_serve_runs_two_workers_on_sqlite_and_one_per_core_on_postgresql(monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 4)

    assert serve_workers(postgres=True, configured={}) == "4"
    assert serve_workers(postgres=False, configured={}) == "2"
    assert serve_workers(postgres=False, configured={"WEB_CONCURRENCY": "3"}) == "3"
