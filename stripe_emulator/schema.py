"""Stripe's parameter types per endpoint, read from the installed stripe SDK.

The SDK (16.x) ships one typed class per request, generated from Stripe's
OpenAPI spec: ``stripe/params/checkout/_session_create_params.py`` holds
``SessionCreateParams``, a TypedDict whose fields are ``NotRequired[...]``
when optional, ``Literal[...]`` for enums, nested TypedDicts for hashes. Its
services say which class goes with which request:
``SessionService.create(params: "SessionCreateParams")`` calls
``self._request("post", "/v1/checkout/sessions", ...)``. Both are read here,
the services with ``ast`` (their imports are under ``TYPE_CHECKING``), so
nothing about Stripe's parameters is kept by hand.

:func:`check` validates a parsed form against a type and raises the
:class:`ApiError` Stripe answers: ``parameter_unknown``,
``parameter_missing``, ``parameter_invalid_integer`` with the full bracketed
``param`` (``line_items[0][quantity]``); booleans, decimals, enums, arrays and
hashes get Stripe's message with no code, as Stripe sends them.

This is the one module of the emulator that imports a third-party package:
the stripe SDK, installed wherever the emulator runs (it is how the app and
the tests talk to it).
"""

from __future__ import annotations

import ast
import decimal
import importlib
import json
import re
import sys
import typing
from dataclasses import dataclass, field
from functools import cache
from http import HTTPStatus
from pathlib import Path
from typing import Any

import stripe
from stripe._request_options import RequestOptions

from stripe_emulator import API_VERSION
from stripe_emulator.params import ApiError

# The API versions a request may pin in `Stripe-Version`: the account's default and the
# one the installed SDK sends unless told otherwise (`stripe.api_version`). The emulator
# answers every one of them in the same shapes; any other version is refused, as Stripe
# refuses a version it does not have, rather than answered in shapes it may not have.
KNOWN_API_VERSIONS = frozenset({API_VERSION, stripe.api_version})

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
    # typing's private evaluator (what get_type_hints uses); typeshed leaves it out.
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


# -- checking a request -----------------------------------------------------------


def unknown(param: str) -> ApiError:
    return ApiError(
        HTTPStatus.BAD_REQUEST,
        f"Received unknown parameter: {param}",
        code="parameter_unknown",
        param=param,
    )


def _invalid(message: str, param: str, code: str | None = None) -> ApiError:
    return ApiError(HTTPStatus.BAD_REQUEST, message, code=code, param=param)


def _join(path: str, key: str | int) -> str:
    return f"{path}[{key}]" if path else str(key)


def _one_of(values: tuple[str, ...]) -> str:
    shown = [v for v in values if v != ""] or ['""']
    if len(shown) == 1:
        return shown[0]
    return ", ".join(shown[:-1]) + f", or {shown[-1]}"


def check(value: Any, node: Node, path: str = "") -> None:
    """Raise Stripe's 400 for the first thing in `value` that `node` does not allow."""
    if isinstance(node, Hash):
        if not isinstance(value, dict):
            raise _invalid("Invalid hash", path)
        fields = node.fields
        for key, item in value.items():
            if key not in fields:
                raise unknown(_join(path, key))
            check(item, fields[key][0], _join(path, key))
        for key, (_, required) in fields.items():
            if required and key not in value:
                param = _join(path, key)
                raise ApiError(
                    HTTPStatus.BAD_REQUEST,
                    f"Missing required param: {param}.",
                    code="parameter_missing",
                    param=param,
                )
    elif isinstance(node, ListOf):
        if not isinstance(value, list):
            raise _invalid("Invalid array", path)
        for i, item in enumerate(value):
            check(item, node.item, _join(path, i))
    elif isinstance(node, MapOf):
        if not isinstance(value, dict):
            raise _invalid("Invalid hash", path)
        for key, item in value.items():
            check(item, node.value, _join(path, key))
    elif isinstance(node, Union):
        _check_union(value, node, path)
    elif isinstance(node, Enum):
        if not isinstance(value, str) or value not in node.values:
            raise _invalid(f"Invalid {path}: must be one of {_one_of(node.values)}", path)
    else:
        _check_scalar(value, node.kind, path)


def _shape(node: Node) -> str:
    if node == Enum(("",)):
        return "empty"  # `Literal['']`: only the way to unset, never the best explanation
    if isinstance(node, Hash | MapOf):
        return "dict"
    if isinstance(node, ListOf):
        return "list"
    return "str"


def _check_union(value: Any, node: Union, path: str) -> None:
    shape = "dict" if isinstance(value, dict) else "list" if isinstance(value, list) else "str"
    first: ApiError | None = None
    # The option of the value's own shape explains a failure best.
    for option in sorted(node.options, key=lambda o: (_shape(o) == "empty", _shape(o) != shape)):
        try:
            check(value, option, path)
            return
        except ApiError as exc:
            first = first or exc
    assert first is not None
    raise first


_INTEGER = re.compile(r"-?\d+")
_DECIMAL = re.compile(r"-?(\d+(\.\d*)?|\.\d+)")


def _check_scalar(value: Any, kind: str, path: str) -> None:
    if kind == "any":
        return
    if not isinstance(value, str):
        shown = "array" if isinstance(value, list) else "hash"
        if kind == "int":
            raise _invalid(f"Invalid integer: {shown}", path, "parameter_invalid_integer")
        raise _invalid(f"Invalid {_KIND_NAMES[kind]}: {shown}", path)
    if kind == "int" and not _INTEGER.fullmatch(value):
        raise _invalid(f"Invalid integer: {value}", path, "parameter_invalid_integer")
    if kind == "bool" and value not in ("true", "false"):
        raise _invalid(f"Invalid boolean: {value}", path)
    if kind in ("decimal", "float") and not _DECIMAL.fullmatch(value):
        raise _invalid(f"Invalid {_KIND_NAMES[kind]}: {value}", path)


_KIND_NAMES = {"str": "string", "bool": "boolean", "decimal": "decimal", "float": "float"}


class Schema:
    """The SDK's params type for each of the emulator's routes."""

    def __init__(self, routes: list[tuple[str, str]]) -> None:
        prefixes = tuple(sorted({path.partition("{")[0] for _, path in routes}))
        types = endpoint_types(prefixes)
        missing = [f"{m} {p}" for m, p in routes if (m, p) not in types]
        if missing:
            raise RuntimeError(
                f"stripe {stripe.VERSION} has no params type for: {', '.join(missing)}"
            )
        self.types = {key: types[key] for key in routes}

    def check(self, method: str, template: str, params: dict[str, Any]) -> None:
        check(params, self.types[(method, template)])


# -- checking a recording (`--record FILE`) ---------------------------------------


def check_recording(path: Path) -> list[str]:
    """Each recorded request replayed through the SDK's types: one line per problem.

    A problem names the endpoint, the parameters sent and Stripe's answer to them.
    """
    types = endpoint_types()
    problems: list[str] = []
    seen: set[str] = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        entry = json.loads(line)
        key = json.dumps([entry["method"], entry["endpoint"], entry["params"]], sort_keys=True)
        if key in seen:
            continue
        seen.add(key)
        call = f"{entry['method']} {entry['endpoint'] or entry['path']} {entry['params']}"
        hash_type = types.get((entry["method"], entry["endpoint"] or ""))
        if hash_type is None:
            problems.append(f"{call}: not an endpoint of stripe {stripe.VERSION}")
            continue
        try:
            check(entry["params"], hash_type)
        except ApiError as exc:
            problems.append(f"{call}: {exc.code or 'invalid'} {exc.param}: {exc.message}")
    return problems


def main(argv: list[str] | None = None) -> int:
    """`python -m stripe_emulator.schema FILE`: check a recording; exit 1 on a problem."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m stripe_emulator.schema RECORDING.jsonl", file=sys.stderr)
        return 2
    problems = check_recording(Path(args[0]))
    for problem in problems:
        print(problem)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
