"""Resource operations: what each Stripe endpoint does to the state.

Every public method runs under the store lock, validates its parameters the
way Stripe does (unknown parameter, missing parameter, bad integer ...), makes
its change, records the events the change causes and saves. The HTTP layer,
the hosted Checkout page and the dashboard all call these same methods, so a
change made anywhere fires the same events.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from stripe_emulator import objects
from stripe_emulator.cards import Card, CardError, charge_card
from stripe_emulator.objects import ZERO_DECIMAL, public
from stripe_emulator.store import Store, new_id

Params = dict[str, Any]
Obj = dict[str, Any]

# Stripe accepts expires_at from 30 minutes to 24 hours ahead. The slack
# absorbs clock differences between the app and this process, so an app that
# asks for exactly "now + 30 min" is not refused for being one second late.
EXPIRES_MIN = 30 * 60
EXPIRES_MAX = 24 * 3600
EXPIRES_SLACK = 10

# Prefix of an id -> the collection that holds it, for generic `expand`.
ID_PREFIXES = {
    "prod_": "products",
    "price_": "prices",
    "cs_": "checkout_sessions",
    "pi_": "payment_intents",
    "ch_": "charges",
    "re_": "refunds",
    "evt_": "events",
}
OBJECT_NAMES = {
    "products": "product",
    "prices": "price",
    "checkout_sessions": "checkout.session",
    "payment_intents": "payment_intent",
    "charges": "charge",
    "refunds": "refund",
    "events": "event",
}


class ApiError(Exception):
    """An error answered in Stripe's shape: ``{"error": {...}}``."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = int(status)
        self.message = message
        self.type = type
        self.code = code
        self.param = param

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {
            "type": self.type,
            "code": self.code,
            "message": self.message,
            "param": self.param,
        }
        if self.code:
            error["doc_url"] = f"https://stripe.com/docs/error-codes/{self.code.replace('_', '-')}"
        return {"error": error}


@dataclass(frozen=True)
class RequestContext:
    """Who caused a change; copied into the `request` field of its events."""

    request_id: str | None = None
    idempotency_key: str | None = None


AUTOMATIC = RequestContext()


# -- parameter helpers -------------------------------------------------------


def missing(param: str) -> ApiError:
    return ApiError(
        HTTPStatus.BAD_REQUEST,
        f"Missing required param: {param}.",
        code="parameter_missing",
        param=param,
    )


def not_found(kind: str, obj_id: str, param: str = "id") -> ApiError:
    return ApiError(
        HTTPStatus.NOT_FOUND,
        f"No such {kind}: '{obj_id}'",
        code="resource_missing",
        param=param,
    )


def check_known(params: Params, allowed: Iterable[str]) -> None:
    allowed_set = set(allowed) | {"expand"}
    for key in params:
        if key not in allowed_set:
            raise ApiError(
                HTTPStatus.BAD_REQUEST,
                f"Received unknown parameter: {key}",
                code="parameter_unknown",
                param=key,
            )


def to_int(value: Any, param: str, *, minimum: int | None = None) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and value.strip().lstrip("-").isdigit():
        number = int(value)
    else:
        raise ApiError(
            HTTPStatus.BAD_REQUEST,
            f"Invalid integer: {value}",
            code="parameter_invalid_integer",
            param=param,
        )
    if minimum is not None and number < minimum:
        raise ApiError(
            HTTPStatus.BAD_REQUEST,
            f"This value must be greater than or equal to {minimum}.",
            code="parameter_invalid_integer",
            param=param,
        )
    return number


def to_bool(value: Any, param: str) -> bool:
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return value == "true"
    raise ApiError(
        HTTPStatus.BAD_REQUEST,
        f"Invalid boolean: {value}",
        code="parameter_invalid_boolean",
        param=param,
    )


def to_str(value: Any, param: str) -> str:
    if not isinstance(value, str):
        raise ApiError(
            HTTPStatus.BAD_REQUEST,
            f"Invalid string: {value!r}",
            code="parameter_invalid_string",
            param=param,
        )
    return value


def optional_str(value: Any, param: str) -> str | None:
    """Stripe unsets a nullable field when it is sent as an empty string."""
    text = to_str(value, param)
    return text or None


def apply_metadata(current: dict[str, str], value: Any, param: str = "metadata") -> dict[str, str]:
    """Merge like Stripe: "" for a key deletes it, "" for the whole hash clears it."""
    if value == "":
        return {}
    if not isinstance(value, dict):
        raise ApiError(
            HTTPStatus.BAD_REQUEST, "Invalid hash", code="parameter_invalid", param=param
        )
    merged = dict(current)
    for key, item in value.items():
        text = to_str(item, f"{param}[{key}]")
        if text == "":
            merged.pop(key, None)
        else:
            merged[key] = text
    return merged


def currency_of(value: Any, param: str = "currency") -> str:
    text = to_str(value, param).lower()
    if len(text) != 3 or not text.isalpha():
        raise ApiError(
            HTTPStatus.BAD_REQUEST,
            f"Invalid currency: {text}. Stripe currencies are three-letter ISO codes.",
            code="parameter_invalid_string",
            param=param,
        )
    return text


def format_amount(amount: int, currency: str) -> str:
    """Money for messages and pages: minor units -> "$12.34" / "¥1200"."""
    symbols = {"usd": "$", "eur": "€", "gbp": "£", "jpy": "¥", "cad": "CA$", "aud": "A$"}
    if currency in ZERO_DECIMAL:
        major = f"{amount:,}"
    else:
        sign = "-" if amount < 0 else ""
        units, cents = divmod(abs(amount), 100)
        major = f"{sign}{units:,}.{cents:02d}"
    symbol = symbols.get(currency)
    return f"{symbol}{major}" if symbol else f"{major} {currency.upper()}"


def changed(before: Obj, after: Obj) -> Obj:
    """Old values of the top-level fields that changed (`previous_attributes`)."""
    return {k: before.get(k) for k in after if not k.startswith("_") and before.get(k) != after[k]}


# -- the operations ----------------------------------------------------------


class Api:
    """All resource operations over one store."""

    def __init__(
        self,
        store: Store,
        *,
        public_url: str,
        on_event: Callable[[Obj], int] | None = None,
    ) -> None:
        self.store = store
        self.public_url = public_url.rstrip("/")
        # Called with each new event; returns how many webhooks are pending for it.
        self.on_event = on_event

    # events -----------------------------------------------------------------

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
        return event

    # generic reads ----------------------------------------------------------

    def _get(self, collection: str, obj_id: str, param: str = "id") -> Obj:
        obj = self.store.get(collection, obj_id)
        if obj is None:
            raise not_found(OBJECT_NAMES[collection], obj_id, param)
        return obj

    def render(self, obj: Obj, expand: Any = None) -> Obj:
        """The public JSON of an object with the requested `expand` paths applied."""
        result = public(obj)
        for path in self._expand_paths(expand):
            result = self._expand(result, obj, path.split("."), path)
        return result

    @staticmethod
    def _expand_paths(expand: Any) -> list[str]:
        if expand is None:
            return []
        if isinstance(expand, str):
            return [expand]
        if isinstance(expand, list) and all(isinstance(p, str) for p in expand):
            return expand
        raise ApiError(HTTPStatus.BAD_REQUEST, "Invalid array", param="expand")

    def _expand(self, node: Any, source: Any, parts: list[str], full: str) -> Any:
        if not parts:
            return node
        head, rest = parts[0], parts[1:]
        if isinstance(node, dict) and node.get("object") == "list" and head == "data":
            node["data"] = [self._expand(item, item, rest, full) for item in node["data"]]
            return node
        if not isinstance(node, dict):
            raise self._cannot_expand(full)
        if head == "line_items" and node.get("object") == "checkout.session":
            items = self.store.get("checkout_sessions", node["id"]) or {}
            value: Any = objects.list_object(
                f"/v1/checkout/sessions/{node['id']}/line_items",
                copy.deepcopy(items.get("_line_items", [])),
                False,
            )
        elif head in node:
            value = node[head]
            if isinstance(value, str):
                value = self._resolve(value, full)
        else:
            raise self._cannot_expand(full)
        node[head] = self._expand(value, value, rest, full) if value is not None else None
        return node

    def _resolve(self, obj_id: str, full: str) -> Obj:
        for prefix, collection in ID_PREFIXES.items():
            if obj_id.startswith(prefix):
                found = self.store.get(collection, obj_id)
                if found is not None:
                    return public(found)
        raise self._cannot_expand(full)

    @staticmethod
    def _cannot_expand(path: str) -> ApiError:
        return ApiError(
            HTTPStatus.BAD_REQUEST,
            f"This property cannot be expanded ({path}).",
            param="expand",
        )

    def paginate(
        self,
        items: list[Obj],
        params: Params,
        url: str,
    ) -> Obj:
        """Cursor pagination over a newest-first list, as Stripe's list endpoints do."""
        limit = to_int(params.get("limit", 10), "limit", minimum=1)
        if limit > 100:
            raise ApiError(
                HTTPStatus.BAD_REQUEST,
                "This value must be less than or equal to 100.",
                code="parameter_invalid_integer",
                param="limit",
            )
        ids = [item["id"] for item in items]
        if params.get("starting_after"):
            start = self._cursor(ids, params["starting_after"], "starting_after") + 1
            page = items[start : start + limit]
            has_more = start + limit < len(items)
        elif params.get("ending_before"):
            end = self._cursor(ids, params["ending_before"], "ending_before")
            begin = max(0, end - limit)
            page = items[begin:end]
            has_more = begin > 0
        else:
            page = items[:limit]
            has_more = len(items) > limit
        data = [self.render(item) for item in page]
        result = objects.list_object(url, data, has_more)
        for path in self._expand_paths(params.get("expand")):
            result = self._expand(result, result, path.split("."), path)
        return result

    @staticmethod
    def _cursor(ids: list[str], cursor: Any, param: str) -> int:
        try:
            return ids.index(cursor)
        except ValueError:
            raise ApiError(
                HTTPStatus.BAD_REQUEST,
                f"No such object: '{cursor}'",
                code="resource_missing",
                param=param,
            ) from None

    # products -----------------------------------------------------------------

    PRODUCT_FIELDS = (
        "name",
        "description",
        "active",
        "images",
        "metadata",
        "url",
        "shippable",
        "statement_descriptor",
        "tax_code",
        "unit_label",
    )

    def _product_fields(self, params: Params, product: Obj) -> None:
        for key in self.PRODUCT_FIELDS:
            if key not in params:
                continue
            value = params[key]
            if key == "name":
                name = to_str(value, key).strip()
                if not name:
                    raise ApiError(HTTPStatus.BAD_REQUEST, "A product needs a name.", param=key)
                product[key] = name
            elif key in ("active", "shippable"):
                product[key] = to_bool(value, key)
            elif key == "images":
                images = [] if value == "" else value
                if not isinstance(images, list):
                    raise ApiError(HTTPStatus.BAD_REQUEST, "Invalid array", param=key)
                product[key] = [to_str(v, f"images[{i}]") for i, v in enumerate(images)]
            elif key == "metadata":
                product[key] = apply_metadata(product["metadata"], value)
            else:
                product[key] = optional_str(value, key)

    def product_create(self, params: Params, ctx: RequestContext) -> Obj:
        with self.store.lock:
            check_known(params, (*self.PRODUCT_FIELDS, "id", "default_price_data"))
            if "name" not in params:
                raise missing("name")
            product = objects.product(now=self.store.now(), name="")
            if params.get("id"):
                product_id = to_str(params["id"], "id")
                if self.store.get("products", product_id):
                    raise ApiError(
                        HTTPStatus.BAD_REQUEST,
                        f"Product already exists: '{product_id}'",
                        code="resource_already_exists",
                        param="id",
                    )
                product["id"] = product_id
            self._product_fields(params, product)
            price = None
            if "default_price_data" in params:
                price = self._price_from_data(params["default_price_data"], product["id"])
                product["default_price"] = price["id"]
            self.store.put("products", product)
            self.emit("product.created", product, ctx)
            if price is not None:
                self.store.put("prices", price)
                self.emit("price.created", price, ctx)
            self.store.save()
            return self.render(product, params.get("expand"))

    def _price_from_data(self, data: Any, product_id: str) -> Obj:
        param = "default_price_data"
        if not isinstance(data, dict):
            raise ApiError(HTTPStatus.BAD_REQUEST, "Invalid hash", param=param)
        check_known(data, ("currency", "unit_amount", "recurring", "metadata", "tax_behavior"))
        if "currency" not in data:
            raise missing(f"{param}[currency]")
        if "unit_amount" not in data:
            raise missing(f"{param}[unit_amount]")
        return objects.price(
            now=self.store.now(),
            product_id=product_id,
            currency=currency_of(data["currency"], f"{param}[currency]"),
            unit_amount=to_int(data["unit_amount"], f"{param}[unit_amount]", minimum=0),
            recurring=self._recurring(data.get("recurring"), f"{param}[recurring]"),
            metadata=apply_metadata({}, data.get("metadata", {}), f"{param}[metadata]"),
        )

    def product_retrieve(self, product_id: str, params: Params) -> Obj:
        with self.store.lock:
            return self.render(self._get("products", product_id), params.get("expand"))

    def product_update(self, product_id: str, params: Params, ctx: RequestContext) -> Obj:
        with self.store.lock:
            product = self._get("products", product_id)
            check_known(params, (*self.PRODUCT_FIELDS, "default_price"))
            before = copy.deepcopy(product)
            updated = copy.deepcopy(product)
            self._product_fields(params, updated)
            if "default_price" in params:
                updated["default_price"] = self._default_price(params["default_price"], product_id)
            if changed(before, updated):
                updated["updated"] = max(self.store.now(), int(before["updated"]))
                self.store.put("products", updated)
                self.emit("product.updated", updated, ctx, changed(before, updated))
                self.store.save()
            return self.render(updated, params.get("expand"))

    def _default_price(self, value: Any, product_id: str) -> str | None:
        price_id = optional_str(value, "default_price")
        if price_id is None:
            return None
        price = self._get("prices", price_id, "default_price")
        if price["product"] != product_id:
            raise ApiError(
                HTTPStatus.BAD_REQUEST,
                f"The price '{price_id}' does not belong to product '{product_id}'.",
                param="default_price",
            )
        if not price["active"]:
            raise ApiError(
                HTTPStatus.BAD_REQUEST,
                "The default price must be active.",
                param="default_price",
            )
        return price_id

    def product_delete(self, product_id: str, ctx: RequestContext) -> Obj:
        with self.store.lock:
            product = self._get("products", product_id)
            if any(p["product"] == product_id for p in self.store.all("prices")):
                # Stripe refuses this too: archive the product instead.
                raise ApiError(
                    HTTPStatus.BAD_REQUEST,
                    "This product cannot be deleted because it has one or more "
                    "user-created prices.",
                )
            self.store.delete("products", product_id)
            self.emit("product.deleted", product, ctx)
            self.store.save()
            return objects.deleted_product(product_id)

    def product_list(self, params: Params) -> Obj:
        with self.store.lock:
            check_known(
                params,
                ("active", "ids", "limit", "starting_after", "ending_before", "created", "url"),
            )
            items = self.store.all("products")
            if "active" in params:
                active = to_bool(params["active"], "active")
                items = [p for p in items if p["active"] == active]
            if "ids" in params:
                wanted = set(params["ids"]) if isinstance(params["ids"], list) else set()
                items = [p for p in items if p["id"] in wanted]
            items = self._filter_created(items, params)
            return self.paginate(items, params, "/v1/products")

    def _filter_created(self, items: list[Obj], params: Params) -> list[Obj]:
        if "created" not in params:
            return items
        created = params["created"]
        if not isinstance(created, dict):
            value = to_int(created, "created")
            return [o for o in items if o["created"] == value]
        ops = {
            "gt": lambda a, b: a > b,
            "gte": lambda a, b: a >= b,
            "lt": lambda a, b: a < b,
            "lte": lambda a, b: a <= b,
        }
        for op, raw in created.items():
            if op not in ops:
                raise ApiError(
                    HTTPStatus.BAD_REQUEST,
                    f"Received unknown parameter: created[{op}]",
                    code="parameter_unknown",
                    param=f"created[{op}]",
                )
            bound = to_int(raw, f"created[{op}]")
            items = [o for o in items if ops[op](o["created"], bound)]
        return items

    # prices -------------------------------------------------------------------

    @staticmethod
    def _recurring(value: Any, param: str) -> Obj | None:
        if value is None:
            return None
        if not isinstance(value, dict):
            raise ApiError(HTTPStatus.BAD_REQUEST, "Invalid hash", param=param)
        interval = value.get("interval")
        if interval is None:
            raise missing(f"{param}[interval]")
        if interval not in ("day", "week", "month", "year"):
            raise ApiError(
                HTTPStatus.BAD_REQUEST,
                f"Invalid {param}[interval]: must be one of day, week, month, or year",
                param=f"{param}[interval]",
            )
        count = to_int(value.get("interval_count", 1), f"{param}[interval_count]", minimum=1)
        return objects.recurring(interval, count)

    def _check_lookup_key(self, lookup_key: str | None, transfer: bool, keep: str | None) -> None:
        """Lookup keys are unique among prices; `transfer_lookup_key` moves one."""
        if lookup_key is None:
            return
        for other in self.store.all("prices"):
            if other["lookup_key"] != lookup_key or other["id"] == keep:
                continue
            if not transfer:
                raise ApiError(
                    HTTPStatus.BAD_REQUEST,
                    f"A price ({other['id']}) already uses that lookup key.",
                    param="lookup_key",
                )
            other["lookup_key"] = None

    def price_create(self, params: Params, ctx: RequestContext) -> Obj:
        with self.store.lock:
            check_known(
                params,
                (
                    "currency",
                    "unit_amount",
                    "product",
                    "product_data",
                    "recurring",
                    "metadata",
                    "nickname",
                    "lookup_key",
                    "transfer_lookup_key",
                    "active",
                    "tax_behavior",
                ),
            )
            for required in ("currency", "unit_amount"):
                if required not in params:
                    raise missing(required)
            if "product" not in params and "product_data" not in params:
                raise missing("product")
            new_product = None
            if "product" in params:
                product_id = to_str(params["product"], "product")
                self._get("products", product_id, "product")
            else:
                data = params["product_data"]
                if not isinstance(data, dict) or "name" not in data:
                    raise missing("product_data[name]")
                check_known(data, ("name", "active", "metadata", "statement_descriptor", "id"))
                new_product = objects.product(now=self.store.now(), name="")
                self._product_fields(data, new_product)
                product_id = new_product["id"]
            lookup_key = optional_str(params.get("lookup_key", ""), "lookup_key")
            transfer = to_bool(params.get("transfer_lookup_key", False), "transfer_lookup_key")
            self._check_lookup_key(lookup_key, transfer, None)
            price = objects.price(
                now=self.store.now(),
                product_id=product_id,
                currency=currency_of(params["currency"]),
                unit_amount=to_int(params["unit_amount"], "unit_amount", minimum=0),
                recurring=self._recurring(params.get("recurring"), "recurring"),
                metadata=apply_metadata({}, params.get("metadata", {})),
                nickname=optional_str(params.get("nickname", ""), "nickname"),
                lookup_key=lookup_key,
                active=to_bool(params.get("active", True), "active"),
            )
            if "tax_behavior" in params:
                price["tax_behavior"] = self._tax_behavior(params["tax_behavior"])
            if new_product is not None:
                self.store.put("products", new_product)
                self.emit("product.created", new_product, ctx)
            self.store.put("prices", price)
            self.emit("price.created", price, ctx)
            self.store.save()
            return self.render(price, params.get("expand"))

    @staticmethod
    def _tax_behavior(value: Any) -> str:
        if value not in ("inclusive", "exclusive", "unspecified"):
            raise ApiError(
                HTTPStatus.BAD_REQUEST,
                "Invalid tax_behavior: must be one of inclusive, exclusive, or unspecified",
                param="tax_behavior",
            )
        return str(value)

    def price_retrieve(self, price_id: str, params: Params) -> Obj:
        with self.store.lock:
            return self.render(self._get("prices", price_id), params.get("expand"))

    def price_update(self, price_id: str, params: Params, ctx: RequestContext) -> Obj:
        with self.store.lock:
            price = self._get("prices", price_id)
            check_known(
                params,
                (
                    "active",
                    "metadata",
                    "lookup_key",
                    "nickname",
                    "transfer_lookup_key",
                    "tax_behavior",
                ),
            )
            before = copy.deepcopy(price)
            updated = copy.deepcopy(price)
            if "active" in params:
                updated["active"] = to_bool(params["active"], "active")
            if "metadata" in params:
                updated["metadata"] = apply_metadata(updated["metadata"], params["metadata"])
            if "nickname" in params:
                updated["nickname"] = optional_str(params["nickname"], "nickname")
            if "tax_behavior" in params:
                updated["tax_behavior"] = self._tax_behavior(params["tax_behavior"])
            if "lookup_key" in params:
                lookup_key = optional_str(params["lookup_key"], "lookup_key")
                transfer = to_bool(params.get("transfer_lookup_key", False), "transfer_lookup_key")
                self._check_lookup_key(lookup_key, transfer, price_id)
                updated["lookup_key"] = lookup_key
            if changed(before, updated):
                self.store.put("prices", updated)
                self.emit("price.updated", updated, ctx, changed(before, updated))
                self.store.save()
            return self.render(updated, params.get("expand"))

    def price_list(self, params: Params) -> Obj:
        with self.store.lock:
            check_known(
                params,
                (
                    "active",
                    "product",
                    "currency",
                    "type",
                    "lookup_keys",
                    "limit",
                    "starting_after",
                    "ending_before",
                    "created",
                ),
            )
            items = self.store.all("prices")
            if "active" in params:
                active = to_bool(params["active"], "active")
                items = [p for p in items if p["active"] == active]
            if "product" in params:
                items = [p for p in items if p["product"] == params["product"]]
            if "currency" in params:
                items = [p for p in items if p["currency"] == str(params["currency"]).lower()]
            if "type" in params:
                items = [p for p in items if p["type"] == params["type"]]
            if "lookup_keys" in params:
                keys = params["lookup_keys"]
                keys = set(keys) if isinstance(keys, list) else {keys}
                items = [p for p in items if p["lookup_key"] in keys]
            items = self._filter_created(items, params)
            return self.paginate(items, params, "/v1/prices")

    # checkout sessions --------------------------------------------------------

    SESSION_PARAMS = (
        "mode",
        "line_items",
        "success_url",
        "cancel_url",
        "customer_email",
        "client_reference_id",
        "metadata",
        "expires_at",
        "automatic_tax",
        "payment_intent_data",
        "payment_method_types",
        "locale",
        "submit_type",
        "ui_mode",
    )

    def session_create(self, params: Params, ctx: RequestContext) -> Obj:
        with self.store.lock:
            check_known(params, self.SESSION_PARAMS)
            if "mode" not in params:
                raise missing("mode")
            if params["mode"] != "payment":
                raise ApiError(
                    HTTPStatus.BAD_REQUEST,
                    "The emulator supports mode=payment only.",
                    param="mode",
                )
            now = self.store.now()
            line_items, currency = self._line_items(params.get("line_items"))
            expires_at = self._expires_at(params.get("expires_at"), now)
            fields: Obj = {}
            for key in ("success_url", "cancel_url"):
                if key in params:
                    fields[key] = self._url(params[key], key)
            for key in ("customer_email", "client_reference_id", "locale", "submit_type"):
                if key in params:
                    fields[key] = optional_str(params[key], key)
            if "metadata" in params:
                fields["metadata"] = apply_metadata({}, params["metadata"])
            automatic_tax = False
            if "automatic_tax" in params:
                tax = params["automatic_tax"]
                if not isinstance(tax, dict) or "enabled" not in tax:
                    raise missing("automatic_tax[enabled]")
                automatic_tax = to_bool(tax["enabled"], "automatic_tax[enabled]")
            session = objects.checkout_session(
                now=now,
                public_url=self.public_url,
                line_items=line_items,
                currency=currency,
                expires_at=expires_at,
                automatic_tax=automatic_tax,
                **fields,
            )
            session["_payment_intent_data"] = self._payment_intent_data(
                params.get("payment_intent_data")
            )
            self.store.put("checkout_sessions", session)
            self.store.save()
            return self.render(session, params.get("expand"))

    @staticmethod
    def _payment_intent_data(value: Any) -> Obj:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise ApiError(HTTPStatus.BAD_REQUEST, "Invalid hash", param="payment_intent_data")
        check_known(value, ("metadata", "description", "receipt_email"))
        data: Obj = {}
        if "metadata" in value:
            data["metadata"] = apply_metadata(
                {}, value["metadata"], "payment_intent_data[metadata]"
            )
        for key in ("description", "receipt_email"):
            if key in value:
                data[key] = optional_str(value[key], f"payment_intent_data[{key}]")
        return data

    @staticmethod
    def _url(value: Any, param: str) -> str:
        text = to_str(value, param)
        if not text.startswith(("http://", "https://")):
            raise ApiError(
                HTTPStatus.BAD_REQUEST,
                "Not a valid URL",
                code="url_invalid",
                param=param,
            )
        return text

    def _expires_at(self, value: Any, now: int) -> int:
        if value is None:
            return now + EXPIRES_MAX
        expires_at = to_int(value, "expires_at")
        if expires_at < now + EXPIRES_MIN - EXPIRES_SLACK:
            raise ApiError(
                HTTPStatus.BAD_REQUEST,
                "The `expires_at` timestamp must be at least 30 minutes from "
                "Checkout Session creation.",
                param="expires_at",
            )
        if expires_at > now + EXPIRES_MAX + EXPIRES_SLACK:
            raise ApiError(
                HTTPStatus.BAD_REQUEST,
                "The `expires_at` timestamp must be less than 24 hours from "
                "Checkout Session creation.",
                param="expires_at",
            )
        return expires_at

    def _line_items(self, value: Any) -> tuple[list[Obj], str]:
        if value is None or value == []:
            raise missing("line_items")
        if not isinstance(value, list):
            raise ApiError(HTTPStatus.BAD_REQUEST, "Invalid array", param="line_items")
        items: list[Obj] = []
        currency = None
        for i, raw in enumerate(value):
            param = f"line_items[{i}]"
            if not isinstance(raw, dict):
                raise ApiError(HTTPStatus.BAD_REQUEST, "Invalid hash", param=param)
            check_known(raw, ("price", "quantity"))
            if "price" not in raw:
                raise missing(f"{param}[price]")
            if "quantity" not in raw:
                raise missing(f"{param}[quantity]")
            price = self._line_item_price(raw["price"], f"{param}[price]")
            quantity = to_int(raw["quantity"], f"{param}[quantity]", minimum=1)
            if currency is not None and price["currency"] != currency:
                raise ApiError(
                    HTTPStatus.BAD_REQUEST,
                    "All prices on a Checkout Session must use the same currency.",
                    param=f"{param}[price]",
                )
            currency = price["currency"]
            product = self.store.get("products", price["product"]) or {"name": ""}
            items.append(
                objects.line_item(price_obj=price, product_name=product["name"], quantity=quantity)
            )
        assert currency is not None
        return items, currency

    def _line_item_price(self, value: Any, param: str) -> Obj:
        price_id = to_str(value, param)
        price = self.store.get("prices", price_id)
        if price is None:
            raise ApiError(
                HTTPStatus.BAD_REQUEST,
                f"No such price: '{price_id}'",
                code="resource_missing",
                param=param,
            )
        product = self.store.get("products", price["product"])
        if not price["active"]:
            raise ApiError(
                HTTPStatus.BAD_REQUEST,
                "The price specified is inactive. This field only accepts active prices.",
                param=param,
            )
        if product is None or not product["active"]:
            raise ApiError(
                HTTPStatus.BAD_REQUEST,
                "The price specified is set to a product that is not active.",
                param=param,
            )
        if price["type"] == "recurring":
            raise ApiError(
                HTTPStatus.BAD_REQUEST,
                "You specified `payment` mode but passed a recurring price. Either switch to "
                "`subscription` mode or use only one-time prices.",
                param=param,
            )
        return price

    def session(self, session_id: str, param: str = "id") -> Obj:
        """The stored session (private fields included), expired first if due."""
        with self.store.lock:
            self.expire_due_sessions()
            return self._get("checkout_sessions", session_id, param)

    def session_retrieve(self, session_id: str, params: Params) -> Obj:
        with self.store.lock:
            return self.render(self.session(session_id), params.get("expand"))

    def session_line_items(self, session_id: str, params: Params) -> Obj:
        with self.store.lock:
            check_known(params, ("limit", "starting_after", "ending_before"))
            session = self.session(session_id)
            # Line items keep the order they were given in, unlike other lists.
            return self.paginate(
                session["_line_items"],
                params,
                f"/v1/checkout/sessions/{session_id}/line_items",
            )

    def session_list(self, params: Params) -> Obj:
        with self.store.lock:
            check_known(
                params,
                ("payment_intent", "status", "limit", "starting_after", "ending_before", "created"),
            )
            self.expire_due_sessions()
            items = self.store.all("checkout_sessions")
            if "payment_intent" in params:
                items = [s for s in items if s["payment_intent"] == params["payment_intent"]]
            if "status" in params:
                items = [s for s in items if s["status"] == params["status"]]
            items = self._filter_created(items, params)
            return self.paginate(items, params, "/v1/checkout/sessions")

    def session_expire(self, session_id: str, params: Params, ctx: RequestContext) -> Obj:
        with self.store.lock:
            check_known(params, ())
            session = self.session(session_id)
            if session["status"] != "open":
                raise ApiError(
                    HTTPStatus.BAD_REQUEST,
                    'Only Checkout Sessions with a status in ["open"] can be expired. '
                    f'This Checkout Session has a status of "{session["status"]}".',
                )
            self._expire(session, ctx)
            self.store.save()
            return self.render(session, params.get("expand"))

    def _expire(self, session: Obj, ctx: RequestContext) -> None:
        session["status"] = "expired"
        session["url"] = None
        self.emit("checkout.session.expired", session, ctx)

    def expire_due_sessions(self) -> int:
        """Expire open sessions past `expires_at`; each fires its event exactly once."""
        with self.store.lock:
            now = self.store.now()
            due = [
                s
                for s in self.store.state["checkout_sessions"].values()
                if s["status"] == "open" and s["expires_at"] <= now
            ]
            for session in sorted(due, key=lambda s: (s["expires_at"], s["_seq"])):
                self._expire(session, AUTOMATIC)
            if due:
                self.store.save()
            return len(due)

    def session_pay(
        self,
        session_id: str,
        *,
        card_number: str,
        expiry: str,
        cvc: str,
        email: str,
        name: str | None,
    ) -> Obj:
        """Pay an open session with a test card; raises CardError when refused."""
        with self.store.lock:
            session = self.session(session_id)
            if session["status"] != "open":
                raise CardError(
                    f"session_{session['status']}",
                    "This Checkout Session has expired."
                    if session["status"] == "expired"
                    else "This Checkout Session is already paid.",
                    HTTPStatus.CONFLICT,
                )
            email = email.strip()
            if "@" not in email:
                raise CardError("email_invalid", "Enter a valid email address.", 400)
            card = charge_card(card_number, expiry, cvc)
            self._complete(session, card, email, (name or "").strip() or None)
            self.store.save()
            return session

    def _complete(self, session: Obj, card: Card, email: str, name: str | None) -> None:
        now = self.store.now()
        payment_method = new_id("pm_")
        amount = int(session["amount_total"])
        intent = objects.payment_intent(
            now=now,
            amount=amount,
            currency=session["currency"],
            payment_method=payment_method,
            **session.get("_payment_intent_data", {}),
        )
        charge = objects.charge(
            now=now,
            amount=amount,
            currency=session["currency"],
            payment_intent_id=intent["id"],
            payment_method=payment_method,
            card=card.as_dict(),
            email=email,
            name=name,
            receipt_url=f"{self.public_url}/pay/{session['id']}",
        )
        charge["_session"] = session["id"]
        intent["latest_charge"] = charge["id"]
        self.store.put("payment_intents", intent)
        self.store.put("charges", charge)
        session.update(
            status="complete",
            payment_status="paid",
            payment_intent=intent["id"],
            url=None,
            customer_details=objects.customer_details(email=email, name=name),
            collected_information={
                "business_name": None,
                "individual_name": None,
                "shipping_details": None,
            },
        )
        self.emit("payment_intent.succeeded", intent, AUTOMATIC)
        self.emit("checkout.session.completed", session, AUTOMATIC)

    # payment intents and charges ----------------------------------------------

    def payment_intent_retrieve(self, intent_id: str, params: Params) -> Obj:
        with self.store.lock:
            return self.render(self._get("payment_intents", intent_id), params.get("expand"))

    def payment_intent_list(self, params: Params) -> Obj:
        with self.store.lock:
            check_known(params, ("limit", "starting_after", "ending_before", "created"))
            items = self._filter_created(self.store.all("payment_intents"), params)
            return self.paginate(items, params, "/v1/payment_intents")

    def charge_retrieve(self, charge_id: str, params: Params) -> Obj:
        with self.store.lock:
            return self.render(self._get("charges", charge_id), params.get("expand"))

    def charge_list(self, params: Params) -> Obj:
        with self.store.lock:
            check_known(
                params, ("payment_intent", "limit", "starting_after", "ending_before", "created")
            )
            items = self.store.all("charges")
            if "payment_intent" in params:
                items = [c for c in items if c["payment_intent"] == params["payment_intent"]]
            items = self._filter_created(items, params)
            return self.paginate(items, params, "/v1/charges")

    # refunds ------------------------------------------------------------------

    def refund_create(self, params: Params, ctx: RequestContext) -> Obj:
        with self.store.lock:
            check_known(params, ("payment_intent", "charge", "amount", "reason", "metadata"))
            charge = self._refund_charge(params)
            remaining = int(charge["amount"]) - int(charge["amount_refunded"])
            if remaining <= 0:
                raise ApiError(
                    HTTPStatus.BAD_REQUEST,
                    f"Charge {charge['id']} has already been refunded.",
                    code="charge_already_refunded",
                )
            amount = remaining
            if "amount" in params:
                amount = to_int(params["amount"], "amount", minimum=1)
            if amount > remaining:
                currency = charge["currency"]
                raise ApiError(
                    HTTPStatus.BAD_REQUEST,
                    f"Refund amount ({format_amount(amount, currency)}) is greater than "
                    f"unrefunded amount on charge ({format_amount(remaining, currency)})",
                    param="amount",
                )
            reason = params.get("reason")
            if reason is not None and reason not in (
                "duplicate",
                "fraudulent",
                "requested_by_customer",
            ):
                raise ApiError(
                    HTTPStatus.BAD_REQUEST,
                    "Invalid reason: must be one of duplicate, fraudulent, or "
                    "requested_by_customer",
                    param="reason",
                )
            refund = objects.refund(
                now=self.store.now(),
                amount=amount,
                charge_obj=charge,
                reason=reason,
                metadata=apply_metadata({}, params.get("metadata", {})),
            )
            before = copy.deepcopy(charge)
            charge["amount_refunded"] = int(charge["amount_refunded"]) + amount
            charge["refunded"] = charge["amount_refunded"] >= charge["amount"]
            charge["refunds"]["data"].insert(0, public(refund))
            charge["refunds"]["total_count"] = len(charge["refunds"]["data"])
            self.store.put("refunds", refund)
            self.emit("refund.created", refund, ctx)
            self.emit("charge.refunded", charge, ctx, changed(before, charge))
            self.store.save()
            return self.render(refund, params.get("expand"))

    def _refund_charge(self, params: Params) -> Obj:
        if params.get("charge"):
            return self._get("charges", to_str(params["charge"], "charge"), "charge")
        if not params.get("payment_intent"):
            raise missing("payment_intent")
        intent = self._get(
            "payment_intents", to_str(params["payment_intent"], "payment_intent"), "payment_intent"
        )
        if intent["status"] != "succeeded" or not intent["latest_charge"]:
            raise ApiError(
                HTTPStatus.BAD_REQUEST,
                "This PaymentIntent does not have a successful charge to refund.",
                param="payment_intent",
            )
        return self._get("charges", intent["latest_charge"], "payment_intent")

    def refund_retrieve(self, refund_id: str, params: Params) -> Obj:
        with self.store.lock:
            return self.render(self._get("refunds", refund_id), params.get("expand"))

    def refund_list(self, params: Params) -> Obj:
        with self.store.lock:
            check_known(
                params,
                ("payment_intent", "charge", "limit", "starting_after", "ending_before", "created"),
            )
            items = self.store.all("refunds")
            for key in ("payment_intent", "charge"):
                if key in params:
                    items = [r for r in items if r[key] == params[key]]
            items = self._filter_created(items, params)
            return self.paginate(items, params, "/v1/refunds")

    # events -------------------------------------------------------------------

    def event_retrieve(self, event_id: str, params: Params) -> Obj:
        with self.store.lock:
            return self.render(self._get("events", event_id), params.get("expand"))

    def event_list(self, params: Params) -> Obj:
        with self.store.lock:
            check_known(
                params,
                (
                    "type",
                    "types",
                    "created",
                    "delivery_success",
                    "limit",
                    "starting_after",
                    "ending_before",
                ),
            )
            self.expire_due_sessions()
            items = self.store.all("events")
            if "type" in params:
                items = [e for e in items if _type_matches(e["type"], str(params["type"]))]
            if "types" in params:
                types = params["types"] if isinstance(params["types"], list) else [params["types"]]
                items = [e for e in items if e["type"] in types]
            items = self._filter_created(items, params)
            return self.paginate(items, params, "/v1/events")


def _type_matches(event_type: str, pattern: str) -> bool:
    """Stripe's `type` filter accepts a trailing `*` wildcard (`charge.*`)."""
    if pattern.endswith("*"):
        return event_type.startswith(pattern[:-1])
    return event_type == pattern
