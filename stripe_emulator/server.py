"""HTTP layer: routing, API keys, idempotency keys and Stripe-shaped answers."""

from __future__ import annotations

import base64
import functools
import json
import re
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from stripe_emulator import API_VERSION, testing
from stripe_emulator.api import Api
from stripe_emulator.faults import Faults
from stripe_emulator.forms import FormError, parse_form, parse_pairs
from stripe_emulator.idempotency import Idempotency, run_endpoint
from stripe_emulator.pages import checkout as checkout_page
from stripe_emulator.pages import dashboard as dashboard_page
from stripe_emulator.params import ApiError, RequestContext
from stripe_emulator.schema import KNOWN_API_VERSIONS, Schema
from stripe_emulator.store import Store, new_id
from stripe_emulator.webhooks import Deliverer

MAX_BODY = 1_000_000


@dataclass
class Route:
    method: str
    template: str
    pattern: re.Pattern[str]
    handler: Callable[..., Any]


def compile_routes(routes: list[tuple[str, str, Callable[..., Any]]]) -> list[Route]:
    """`/v1/products/{id}` -> a regex with a named group per `{name}`."""
    compiled = []
    for method, path, handler in routes:
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", path)
        compiled.append(Route(method, path, re.compile(f"^{regex}$"), handler))
    return compiled


class Emulator:
    """Everything one running emulator needs, shared by all request threads."""

    def __init__(
        self,
        store: Store,
        deliverer: Deliverer,
        *,
        public_url: str,
        quiet: bool = False,
        record: Path | None = None,
    ) -> None:
        self.store = store
        # Every /v1 request, one JSON line each, for a contract check after a test run.
        self.record = record
        self._record_lock = threading.Lock()
        self.deliverer = deliverer
        self.api = Api(store, public_url=public_url, on_event=deliverer.enqueue)
        self.idempotency = Idempotency(store)
        self.faults = Faults(store)
        self.routes = compile_routes(self.api.routes())
        # Every request is checked against the SDK's type for it before it runs.
        self.schema = Schema([(r.method, r.template) for r in self.routes])
        self.quiet = quiet
        self._stop = threading.Event()
        self._sweeper = threading.Thread(target=self._sweep, name="session-sweeper", daemon=True)

    def record_request(self, entry: dict[str, Any]) -> None:
        if self.record is None:
            return
        line = json.dumps(entry, sort_keys=True) + "\n"
        with self._record_lock, self.record.open("a", encoding="utf-8") as fh:
            fh.write(line)  # one write per line: emulators of one test run share the file

    def start_background(self) -> None:
        self.deliverer.start()
        self._sweeper.start()

    def stop_background(self) -> None:
        """Stop the background threads, so the store can be closed after."""
        self._stop.set()
        self.deliverer.stop()
        if self._sweeper.is_alive():
            self._sweeper.join(timeout=5)

    def _sweep(self) -> None:
        # Expiry is also checked on every access; this makes the expired event
        # fire on time even when nobody looks at the session.
        while not self._stop.wait(1.0):
            self.api.catch_up()


class RequestHandler(BaseHTTPRequestHandler):
    server_version = "StripeEmulator/1.0"
    protocol_version = "HTTP/1.1"
    # Headers and body leave in two writes; with Nagle on, a kept-alive client
    # (the SDK's) waited for its own delayed ACK: 40 ms on every call.
    disable_nagle_algorithm = True
    emulator: Emulator  # set on the subclass made by make_server

    # -- plumbing ----------------------------------------------------------------

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def log_message(self, format: str, *args: Any) -> None:
        if not self.emulator.quiet:
            super().log_message(format, *args)

    def _read_body(self) -> None:
        # Read the whole body before anything can fail: on a kept-alive
        # connection unread bytes would be taken for the next request.
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self.close_connection = True
            self._raw_body = ""
            raise ApiError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "Request body too large.")
        self._raw_body = self.rfile.read(length).decode("utf-8", errors="replace") if length else ""

    def _body(self) -> str:
        return self._raw_body

    def send_body(
        self,
        status: int,
        body: bytes,
        content_type: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_json(self, status: int, data: Any, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(data, indent=2).encode("utf-8")
        self.send_body(status, body, "application/json", headers)

    def send_html(self, status: int, html: str) -> None:
        self.send_body(status, html.encode("utf-8"), "text/html; charset=utf-8")

    def redirect(self, location: str) -> None:
        self.send_body(HTTPStatus.SEE_OTHER, b"", "text/plain", {"Location": location})

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        path = url.path
        try:
            self._read_body()
            if path.startswith("/v1/"):
                self._api(method, path, url.query)
            elif path == "/healthz":
                self.send_body(HTTPStatus.OK, b"ok", "text/plain")
            elif path.startswith("/_emulator/"):
                emulator = self.emulator
                self.send_json(
                    *testing.handle(
                        emulator.api,
                        emulator.deliverer,
                        emulator.faults,
                        method,
                        path,
                        url.query,
                        self._body(),
                    )
                )
            elif path == "/" or path.startswith(("/pay/", "/dashboard/")):
                self._page(method, path, url.query)
            else:
                raise ApiError(
                    HTTPStatus.NOT_FOUND, f"Unrecognized request URL ({method}: {path})."
                )
        except ApiError as exc:
            self.send_json(exc.status, exc.body())
        except FormError as exc:
            self.send_json(HTTPStatus.BAD_REQUEST, ApiError(400, str(exc), param=exc.param).body())
        except Exception:
            # A bug in the emulator: say so in Stripe's shape instead of dropping
            # the connection, and leave the traceback in the log.
            traceback.print_exc()
            error = ApiError(HTTPStatus.INTERNAL_SERVER_ERROR, "Emulator bug.", type="api_error")
            self.send_json(error.status, error.body())

    # -- the Stripe API ------------------------------------------------------------

    def _api_key(self) -> str:
        header = self.headers.get("Authorization", "")
        scheme, _, credentials = header.partition(" ")
        key = credentials.strip()
        if scheme.lower() == "basic":
            try:
                key = base64.b64decode(key).decode().partition(":")[0]
            except ValueError:
                key = ""
        if not key or scheme.lower() not in ("bearer", "basic"):
            raise ApiError(
                HTTPStatus.UNAUTHORIZED,
                "You did not provide an API key. You need to provide your API key in the "
                "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer "
                "YOUR_SECRET_KEY').",
            )
        if not key.startswith("sk_test_"):
            shown = key[:8] + "*" * max(0, len(key) - 12) + key[-4:]
            raise ApiError(
                HTTPStatus.UNAUTHORIZED,
                f"Invalid API Key provided: {shown}",
                code="api_key_invalid",
            )
        return key

    def _api_version(self) -> str:
        """The version the request pins (the SDK always sends one), or the account's."""
        version = (self.headers.get("Stripe-Version") or API_VERSION).strip()
        if version not in KNOWN_API_VERSIONS:
            raise ApiError(HTTPStatus.BAD_REQUEST, f"Invalid Stripe API version: {version}")
        return version

    def _api(self, method: str, path: str, query: str) -> None:
        request_id = new_id("req_", 14)
        headers = {"Request-Id": request_id, "Stripe-Version": API_VERSION}
        record: dict[str, Any] = {"method": method, "path": path, "endpoint": None}
        try:
            api_key = self._api_key()
            headers["Stripe-Version"] = self._api_version()
            body = self._body()
            params = parse_form(body if method == "POST" else query)
            record["params"] = params
            for route in self.emulator.routes:
                match = route.pattern.match(path)
                if match and route.method == method:
                    break
            else:
                raise ApiError(
                    HTTPStatus.NOT_FOUND, f"Unrecognized request URL ({method}: {path})."
                )
            record["endpoint"] = route.template
            idempotency_key = self.headers.get("Idempotency-Key") if method == "POST" else None
            ctx = RequestContext(request_id, idempotency_key)
            handler = functools.partial(route.handler, params, ctx, **match.groupdict())
            emulator = self.emulator

            def validate() -> None:
                emulator.schema.check(route.method, route.template, params)

            def endpoint() -> Any:
                return emulator.faults.run(method, path, route.template, handler)

            if idempotency_key:
                status, data, replayed = emulator.idempotency.run(
                    api_key=api_key,
                    key=idempotency_key,
                    method=method,
                    path=path,
                    params=params,
                    validate=validate,
                    endpoint=endpoint,
                )
                if replayed:
                    headers["Idempotent-Replayed"] = "true"
                headers["Idempotency-Key"] = idempotency_key
            else:
                validate()
                status, data = run_endpoint(endpoint)
        except ApiError as exc:
            status, data = exc.status, exc.body()
        except FormError as exc:
            status, data = HTTPStatus.BAD_REQUEST, ApiError(400, str(exc), param=exc.param).body()
        if "params" in record:
            self.emulator.record_request({**record, "status": int(status)})
        self.send_json(status, data, headers)

    # -- HTML pages ------------------------------------------------------------------

    def _page(self, method: str, path: str, query: str) -> None:
        if path.startswith("/pay/"):
            session_id = path.removeprefix("/pay/").strip("/")
            if method == "GET":
                status, html = checkout_page.checkout_get(self.emulator.api.checkout, session_id)
                self.send_html(status, html)
                return
            if method == "POST":
                form = parse_pairs(parse_qsl(self._body(), keep_blank_values=True))
                outcome = checkout_page.checkout_post(self.emulator.api.checkout, session_id, form)
                if outcome.redirect:
                    self.redirect(outcome.redirect)
                else:
                    self.send_html(outcome.status, outcome.html)
                return
        elif method == "GET" and path == "/":
            notice = dict(parse_qsl(query)).get("notice", "")
            self.send_html(
                HTTPStatus.OK,
                dashboard_page.dashboard(self.emulator.api, self.emulator.deliverer, notice),
            )
            return
        elif method == "POST" and path.startswith("/dashboard/"):
            form = parse_pairs(parse_qsl(self._body(), keep_blank_values=True))
            emulator = self.emulator
            self.redirect(
                dashboard_page.dashboard_action(emulator.api, emulator.deliverer, path, form)
            )
            return
        raise ApiError(HTTPStatus.METHOD_NOT_ALLOWED, f"{method} is not allowed on {path}.")


def make_server(emulator: Emulator, host: str, port: int) -> ThreadingHTTPServer:
    handler = type("BoundHandler", (RequestHandler,), {"emulator": emulator})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server
