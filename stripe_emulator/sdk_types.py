"""Stripe's parameter types per endpoint, read from the installed stripe SDK.

The SDK (16.x) ships one typed class per request, generated from Stripe's
OpenAPI spec: ``stripe/params/checkout/_session_create_params.py`` holds
``SessionCreateParams``, a TypedDict whose fields are ``NotRequired[...]``
when optional, ``Literal[...]`` for enums, nested TypedDicts for hashes. Its
services say which class goes with which request:
``SessionService.create(params: "SessionCreateParams")`` calls
``self._request("post", "/v1/checkout/sessions", ...)``. Both are read here,
the services with ``ast`` (their imports are under ``TYPE_CHECKING``), so
nothing about Stripe's parameters is kept by hand. schema.py checks requests
against the tree of types read here.
"""

from __future__ import annotations

import ast
import decimal
import importlib
import re
import sys
import typing
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import stripe
from stripe._request_options import RequestOptions

# Request options (api_key, idempotency_key, ...) travel as headers, not parameters.
OPTION_KEYS = frozenset(RequestOptions.__annotations__)
SDK_ROOT = Path(stripe.__file__).parent


# -- the type tree ---------------------------------------------------------------


@dataclass(frozen=True)
class Scalar:
    kind: str  # "str", "int", "bool", "decimal", "float", "any"


@dataclass(frozen=True)
class Enum:
    values: tuple[str, ...]


@dataclass(frozen=True)
class ListOf:
    item: Node


@dataclass(frozen=True)
class MapOf:
    value: Node


@dataclass(frozen=True)
class Union:
    options: tuple[Node, ...]


@dataclass
class Hash:
    """A TypedDict: its fields (type, required), resolved on first use."""

    cls: type
    _fields: dict[str, tuple[Node, bool]] | None = field(default=None, repr=False)

    @property
    def fields(self) -> dict[str, tuple[Node, bool]]:
        if self._fields is None:
            self._fields = _fields_of(self.cls)
        return self._fields


Node = Scalar | Enum | ListOf | MapOf | Union | Hash


def _resolve(annotation: Any, namespace: dict[str, Any]) -> Any:
    if isinstance(annotation, str):
        annotation = typing.ForwardRef(annotation)
    return typing._eval_type(annotation, namespace, namespace)  # type: ignore[attr-defined]


@cache
def hash_of(cls: type) -> Hash:
    return Hash(cls)


def _fields_of(cls: type) -> dict[str, tuple[Node, bool]]:
    namespace = vars(sys.modules[cls.__module__])
    fields: dict[str, tuple[Node, bool]] = {}
    for name, annotation in cls.__annotations__.items():
        if name in OPTION_KEYS:
            continue
        resolved = _resolve(annotation, namespace)
        required = typing.get_origin(resolved) is not typing.NotRequired
        if not required:
            (resolved,) = typing.get_args(resolved)
        fields[name] = (node_of(resolved), required)
    return fields


def node_of(tp: Any) -> Node:
    """The SDK's annotation -> what the emulator checks."""
    origin = typing.get_origin(tp)
    if tp is str:
        return Scalar("str")
    if tp is bool:
        return Scalar("bool")
    if tp is int:
        return Scalar("int")
    if tp is float:
        return Scalar("float")
    if tp is decimal.Decimal:
        return Scalar("decimal")
    if origin is typing.Literal:
        return Enum(tuple(str(v) for v in typing.get_args(tp)))
    if origin in (list, typing.List):  # noqa: UP006
        return ListOf(node_of(typing.get_args(tp)[0]))
    if origin in (dict, typing.Dict):  # noqa: UP006
        return MapOf(node_of(typing.get_args(tp)[1]))
    if origin is typing.Union or type(tp).__name__ == "UnionType":
        return _union(typing.get_args(tp))
    if isinstance(tp, type) and issubclass(tp, dict) and hasattr(tp, "__annotations__"):
        return hash_of(tp)
    if getattr(origin, "__name__", "") == "UntypedStripeObject":
        return MapOf(Scalar("str"))
    return Scalar("any")


def _union(args: tuple[Any, ...]) -> Node:
    """`Literal['a', 'b']|str` is an enum (the `str` only keeps old SDKs working
    when Stripe adds a value); `Literal['']|X` is X or "" (which unsets)."""
    literals: list[str] = []
    others: list[Node] = []
    has_str = False
    for arg in args:
        node = node_of(arg)
        if isinstance(node, Enum):
            literals.extend(node.values)
        elif node == Scalar("str"):
            has_str = True
        else:
            others.append(node)
    # Dict[str, str] | UntypedStripeObject[str]: one map.
    maps = [n for n in others if isinstance(n, MapOf)]
    if len(maps) > 1:
        others = [n for n in others if not isinstance(n, MapOf)] + maps[:1]
    options: list[Node] = []
    named = [v for v in literals if v != ""]
    if named:
        options.append(Enum(tuple(dict.fromkeys(literals))))
    elif has_str:
        options.append(Scalar("str"))
    elif literals:
        options.append(Enum(("",)))
    options.extend(others)
    return options[0] if len(options) == 1 else Union(tuple(options))


# -- which class goes with which request ------------------------------------------


def _template(path: str) -> str:
    return re.sub(r"\{\w+\}", "{id}", path)


@cache
def endpoint_types(prefixes: tuple[str, ...] = ("/v1/",)) -> dict[tuple[str, str], Hash]:
    """(METHOD, "/v1/products/{id}") -> the SDK's params class, for paths under `prefixes`.

    Only the service modules that mention one of the prefixes are parsed.
    """
    found: dict[tuple[str, str], Hash] = {}
    for path in sorted(SDK_ROOT.rglob("_*_service.py")):
        source = path.read_text(encoding="utf-8")
        if not any(f'"{prefix}' in source for prefix in prefixes):
            continue
        imports = {
            alias.asname or alias.name: node.module
            for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.ImportFrom) and node.module
            for alias in node.names
        }
        for func in ast.walk(ast.parse(source)):
            if not isinstance(func, ast.FunctionDef):
                continue
            params_class = _params_annotation(func)
            request = _request_call(func)
            if params_class is None or request is None or params_class not in imports:
                continue
            method, url = request
            if not url.startswith(prefixes):
                continue
            module = importlib.import_module(imports[params_class])
            found[(method.upper(), _template(url))] = hash_of(getattr(module, params_class))
    return found


def _params_annotation(func: ast.FunctionDef) -> str | None:
    for arg in func.args.args + func.args.kwonlyargs:
        if arg.arg != "params" or arg.annotation is None:
            continue
        text = ast.unparse(arg.annotation)
        match = re.search(r"['\"](\w+Params)['\"]", text)
        if match:
            return match.group(1)
    return None


def _request_call(func: ast.FunctionDef) -> tuple[str, str] | None:
    for node in ast.walk(func):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "_request"
            and len(node.args) >= 2
            and isinstance(node.args[0], ast.Constant)
        ):
            url = node.args[1]
            if isinstance(url, ast.Call) and isinstance(url.func, ast.Attribute):
                url = url.func.value  # "/v1/x/{id}".format(...)
            if isinstance(url, ast.Constant) and isinstance(url.value, str):
                return str(node.args[0].value), url.value
    return None
