"""Products and prices: create, retrieve, update, delete (products), list."""

from __future__ import annotations

import copy
from http import HTTPStatus
from typing import Any

from stripe_emulator import objects
from stripe_emulator.events import Events
from stripe_emulator.listing import Resource, Route
from stripe_emulator.params import (
    ApiError,
    Obj,
    Params,
    RequestContext,
    apply_metadata,
    changed,
    check_known,
    currency_of,
    missing,
    optional_str,
    to_amount,
    to_bool,
    to_int,
    to_str,
)
from stripe_emulator.store import Store


class Catalog(Resource):
    def __init__(self, store: Store, events: Events) -> None:
        super().__init__(store)
        self.events = events
        self.emit = events.emit

    def routes(self) -> list[Route]:
        return [
            ("POST", "/v1/products", lambda p, c: self.product_create(p, c)),
            ("GET", "/v1/products", lambda p, c: self.product_list(p)),
            ("GET", "/v1/products/{id}", lambda p, c, id: self.retrieve("products", id, p)),
            ("POST", "/v1/products/{id}", lambda p, c, id: self.product_update(id, p, c)),
            ("DELETE", "/v1/products/{id}", lambda p, c, id: self.product_delete(id, c)),
            ("POST", "/v1/prices", lambda p, c: self.price_create(p, c)),
            ("GET", "/v1/prices", lambda p, c: self.price_list(p)),
            ("GET", "/v1/prices/{id}", lambda p, c, id: self.retrieve("prices", id, p)),
            ("POST", "/v1/prices/{id}", lambda p, c, id: self.price_update(id, p, c)),
        ]

    # products ---------------------------------------------------------------------

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
            unit_amount=to_amount(data["unit_amount"], f"{param}[unit_amount]"),
            recurring=self._recurring(data.get("recurring"), f"{param}[recurring]"),
            metadata=apply_metadata({}, data.get("metadata", {}), f"{param}[metadata]"),
        )

    def product_retrieve(self, product_id: str, params: Params) -> Obj:
        return self.retrieve("products", product_id, params)

    def product_update(self, product_id: str, params: Params, ctx: RequestContext) -> Obj:
        with self.store.lock:
            product = self.get("products", product_id)
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
        price = self.get("prices", price_id, "default_price")
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
            product = self.get("products", product_id)
            if self.store.find("prices", [("product", "eq", product_id)], limit=1):
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
            filters = self.list_filters(params, ("active", "ids", "url"))
            if "ids" in params:
                ids = params["ids"]
                wanted = (
                    tuple(i for i in ids if isinstance(i, str)) if isinstance(ids, list) else ()
                )
                filters.append(("id", "in", wanted))
            return self.paginate("products", filters, params, "/v1/products")

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
        for other in self.store.find("prices", [("lookup_key", "eq", lookup_key)]):
            if other["id"] == keep:
                continue
            if not transfer:
                raise ApiError(
                    HTTPStatus.BAD_REQUEST,
                    f"A price ({other['id']}) already uses that lookup key.",
                    param="lookup_key",
                )
            other["lookup_key"] = None
            self.store.put("prices", other)

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
                self.get("products", product_id, "product")
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
                unit_amount=to_amount(params["unit_amount"], "unit_amount"),
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

    def price_update(self, price_id: str, params: Params, ctx: RequestContext) -> Obj:
        with self.store.lock:
            price = self.get("prices", price_id)
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
            filters = self.list_filters(
                params, ("active", "product", "currency", "type", "lookup_keys")
            )
            if "active" not in params:
                # "Returns a list of your active prices ... For the list of inactive prices,
                # set active to false." (the SDK's PriceService.list): no `active`, active ones.
                filters.append(("active", "eq", True))
            for key in ("product", "type"):
                if key in params:
                    filters.append((key, "eq", params[key]))
            if "currency" in params:
                filters.append(("currency", "eq", str(params["currency"]).lower()))
            if "lookup_keys" in params:
                keys = params["lookup_keys"]
                keys = keys if isinstance(keys, list) else [keys]
                filters.append(("lookup_key", "in", tuple(k for k in keys if isinstance(k, str))))
            return self.paginate("prices", filters, params, "/v1/prices")
