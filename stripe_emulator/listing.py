"""Shared by every resource: reading objects, `expand`, cursor pagination.

A resource class derives from :class:`Resource` and gets ``get`` (404 in
Stripe's shape), ``render`` (public JSON with the requested `expand` paths)
and ``paginate`` (a Stripe list over a store query, newest first).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any

from stripe_emulator import objects
from stripe_emulator.objects import public
from stripe_emulator.params import (
    ApiError,
    Filter,
    Obj,
    Params,
    check_known,
    created_filters,
    not_found,
    to_bool,
    to_int,
)
from stripe_emulator.store import BadCursor, Store

# Prefix of an id -> the collection that holds it, for generic `expand`.
ID_PREFIXES = {
    "prod_": "products",
    "price_": "prices",
    "cs_": "checkout_sessions",
    "pi_": "payment_intents",
    "ch_": "charges",
    "re_": "refunds",
    "dp_": "disputes",
    "evt_": "events",
    "cus_": "customers",
    "shr_": "shipping_rates",
    "promo_": "promotion_codes",
}
OBJECT_NAMES = {
    "products": "product",
    "prices": "price",
    "checkout_sessions": "checkout.session",
    "payment_intents": "payment_intent",
    "charges": "charge",
    "refunds": "refund",
    "disputes": "dispute",
    "events": "event",
    "customers": "customer",
    "shipping_rates": "shipping_rate",
    "coupons": "coupon",
    "promotion_codes": "promotion_code",
}
PAGE_PARAMS = ("limit", "starting_after", "ending_before")

# (method, path with {name} groups, handler(params, ctx, **groups) -> JSON-able)
Route = tuple[str, str, Callable[..., Any]]


class Resource:
    """Reads every resource needs, over one store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def get(self, collection: str, obj_id: str, param: str = "id") -> Obj:
        obj = self.store.get(collection, obj_id)
        if obj is None:
            raise not_found(OBJECT_NAMES[collection], obj_id, param)
        return obj

    def retrieve(self, collection: str, obj_id: str, params: Params) -> Obj:
        with self.store.lock:
            return self.render(self.get(collection, obj_id), params.get("expand"))

    # -- expand ------------------------------------------------------------------

    def render(self, obj: Obj, expand: Any = None) -> Obj:
        """The public JSON of an object with the requested `expand` paths applied."""
        result = public(obj)
        for path in expand_paths(expand):
            result = self._expand(result, path.split("."), path)
        return result

    def _expand(self, node: Any, parts: list[str], full: str) -> Any:
        if not parts:
            return node
        head, rest = parts[0], parts[1:]
        if isinstance(node, dict) and node.get("object") == "list" and head == "data":
            node["data"] = [self._expand(item, rest, full) for item in node["data"]]
            return node
        if not isinstance(node, dict):
            raise cannot_expand(full)
        if head == "line_items" and node.get("object") == "checkout.session":
            items = self.store.get("checkout_sessions", node["id"]) or {}
            value: Any = objects.list_object(
                f"/v1/checkout/sessions/{node['id']}/line_items",
                copy.deepcopy(items.get("_line_items", [])),
                False,
            )
        elif head == "refunds" and node.get("object") == "charge":
            refunds = self.store.find("refunds", [("charge", "eq", node["id"])], limit=11)
            value = objects.list_object(
                f"/v1/charges/{node['id']}/refunds",
                [public(r) for r in refunds[:10]],
                len(refunds) > 10,
            )
        elif head in node:
            value = node[head]
            if isinstance(value, str):
                value = self._resolve(value, full)
        else:
            raise cannot_expand(full)
        node[head] = self._expand(value, rest, full) if value is not None else None
        return node

    def _resolve(self, obj_id: str, full: str) -> Obj:
        for prefix, collection in ID_PREFIXES.items():
            if obj_id.startswith(prefix):
                found = self.store.get(collection, obj_id)
                if found is not None:
                    return public(found)
        raise cannot_expand(full)

    # -- lists -------------------------------------------------------------------

    @staticmethod
    def list_filters(params: Params, allowed: Iterable[str]) -> list[Filter]:
        """Check a list's parameters, `allowed` and those every list takes (`created`,
        paging): its filters, to add to, start with `active` when it is given."""
        check_known(params, (*allowed, "created", *PAGE_PARAMS))
        if "active" in params:
            return [("active", "eq", to_bool(params["active"], "active"))]
        return []

    def paginate(self, collection: str, filters: list[Filter], params: Params, url: str) -> Obj:
        """Cursor pagination over a newest-first list, as Stripe's list endpoints do,
        filtered by `filters` and by `created`, which every list takes."""
        filters = [*filters, *created_filters(params)]
        limit = page_limit(params)
        cursor_param = "starting_after" if params.get("starting_after") else "ending_before"
        try:
            page, has_more = self.store.page(
                collection,
                filters,
                limit=limit,
                starting_after=params.get("starting_after") or None,
                ending_before=params.get("ending_before") or None,
            )
        except BadCursor as exc:
            raise bad_cursor(exc.args[0], cursor_param) from None
        return self._list(page, has_more, params, url)

    def paginate_items(self, items: list[Obj], params: Params, url: str) -> Obj:
        """The same pagination over a list held in memory, kept in its own order."""
        limit = page_limit(params)
        ids = [item["id"] for item in items]
        if params.get("starting_after"):
            start = _index(ids, params["starting_after"], "starting_after") + 1
            page = items[start : start + limit]
            has_more = start + limit < len(items)
        elif params.get("ending_before"):
            end = _index(ids, params["ending_before"], "ending_before")
            begin = max(0, end - limit)
            page = items[begin:end]
            has_more = begin > 0
        else:
            page = items[:limit]
            has_more = len(items) > limit
        return self._list(page, has_more, params, url)

    def _list(self, page: list[Obj], has_more: bool, params: Params, url: str) -> Obj:
        result = objects.list_object(url, [self.render(item) for item in page], has_more)
        for path in expand_paths(params.get("expand")):
            result = self._expand(result, path.split("."), path)
        return result


def expand_paths(expand: Any) -> list[str]:
    if expand is None:
        return []
    if isinstance(expand, str):
        return [expand]
    if isinstance(expand, list) and all(isinstance(p, str) for p in expand):
        return expand
    raise ApiError(HTTPStatus.BAD_REQUEST, "Invalid array", param="expand")


def cannot_expand(path: str) -> ApiError:
    return ApiError(
        HTTPStatus.BAD_REQUEST,
        f"This property cannot be expanded ({path}).",
        param="expand",
    )


def page_limit(params: Params) -> int:
    limit = to_int(params.get("limit", 10), "limit", minimum=1)
    if limit > 100:
        raise ApiError(
            HTTPStatus.BAD_REQUEST,
            "This value must be less than or equal to 100.",
            code="parameter_invalid_integer",
            param="limit",
        )
    return limit


def bad_cursor(cursor: Any, param: str) -> ApiError:
    return ApiError(
        HTTPStatus.BAD_REQUEST,
        f"No such object: '{cursor}'",
        code="resource_missing",
        param=param,
    )


def _index(ids: list[str], cursor: Any, param: str) -> int:
    try:
        return ids.index(cursor)
    except ValueError:
        raise bad_cursor(cursor, param) from None
