"""Bad input stopped at the door, before it costs memory (the production ASGI entry).

- A request body larger than `max_body` (`MAX_REQUEST_BODY_BYTES`) is answered 413 before
  any of it is read: at once when its Content-Length says so; a chunked body (no length)
  (or an HTTP/2 one with no length) is read up to the limit and refused as soon as it
  passes it; within the limit it is handed on with its Content-Length, which is what
  Django reads by.
- Header names with an underscore are dropped, as nginx and gunicorn do: WSGI spells
  `X-Forwarded-Proto` and `X_Forwarded_Proto` alike (`HTTP_X_FORWARDED_PROTO`), so the
  second could pose as the first.
"""

from __future__ import annotations

from typing import Any

from live.pages import Receive, Scope, Send

Headers = list[tuple[bytes, bytes]]


class Guard:
    def __init__(self, app: Any, *, max_body: int) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers: Headers = scope["headers"]
        if any(b"_" in name for name, _ in headers):
            headers = [(name, value) for name, value in headers if b"_" not in name]
            scope = {**scope, "headers": headers}
        lengths = {value.strip() for name, value in headers if name == b"content-length"}
        if lengths:
            length = lengths.pop()
            if lengths or not length.isdigit():
                await refuse(send, 400, b"Bad Content-Length.\n")
            elif int(length) > self.max_body:
                await refuse(send, 413, b"Request body too large.\n")
            else:
                await self.app(scope, receive, send)
            return
        chunked = any(name == b"transfer-encoding" for name, _ in headers)
        if not chunked and scope.get("http_version") != "2":
            await self.app(scope, receive, send)  # HTTP/1: no length, no body
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if len(body) > self.max_body:
                await refuse(send, 413, b"Request body too large.\n")
                return
            if not message.get("more_body"):
                break
        headers = [(n, v) for n, v in headers if n != b"transfer-encoding"]
        headers.append((b"content-length", str(len(body)).encode()))
        await self.app({**scope, "headers": headers}, _replay(bytes(body), receive), send)


def _replay(body: bytes, receive: Receive) -> Receive:
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def replay() -> dict[str, Any]:
        return pending.pop() if pending else await receive()

    return replay


async def refuse(send: Send, status: int, text: bytes) -> None:
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(text)).encode()),
        (b"connection", b"close"),  # what the client still sends is not read
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": text})
