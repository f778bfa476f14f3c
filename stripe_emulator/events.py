"""Events: recording them as changes happen, retrieving and listing them.

Every resource records its events through :meth:`Events.emit`, which hands
each new event to the webhook deliverer (``on_event``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from stripe_emulator import objects
from stripe_emulator.listing import Resource, Route
from stripe_emulator.params import Obj, Params, RequestContext
from stripe_emulator.store import Store


class Events(Resource):
    def __init__(
        self,
        store: Store,
        *,
        on_event: Callable[[Obj], int] | None = None,
    ) -> None:
        super().__init__(store)
        # Called with each new event; returns how many webhooks are pending for it.
        self.on_event = on_event
        # Called before a list, so that events due by time (expiry) are there.
        self.catch_up: Callable[[], Any] = lambda: None

    def routes(self) -> list[Route]:
        return [
            ("GET", "/v1/events", lambda p, c: self.event_list(p)),
            ("GET", "/v1/events/{id}", lambda p, c, id: self.retrieve("events", id, p)),
        ]

    def emit(
        self, event_type: str, obj: Obj, ctx: RequestContext, previous: Obj | None = None
    ) -> Obj:
        event = objects.event(
            now=self.store.now(),
            event_type=event_type,
            obj=obj,
            previous=previous,
            request_id=ctx.request_id,
            idempotency_key=ctx.idempotency_key,
            pending_webhooks=0,
        )
        self.store.put("events", event)
        if self.on_event is not None:
            event["pending_webhooks"] = self.on_event(event)
            if event["pending_webhooks"]:
                self.store.put("events", event)
        return event

    def event_list(self, params: Params) -> Obj:
        with self.store.lock:
            filters = self.list_filters(params, ("type", "types", "delivery_success"))
            self.catch_up()
            if "type" in params:
                pattern = str(params["type"])
                # Stripe's `type` filter accepts a trailing `*` wildcard (`charge.*`).
                if pattern.endswith("*"):
                    filters.append(("type", "prefix", pattern[:-1]))
                else:
                    filters.append(("type", "eq", pattern))
            if "types" in params:
                types = params["types"] if isinstance(params["types"], list) else [params["types"]]
                filters.append(("type", "in", tuple(types)))
            return self.paginate("events", filters, params, "/v1/events")
