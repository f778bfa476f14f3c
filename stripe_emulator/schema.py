"""Checking a request against Stripe's parameter types for its endpoint.

The types are read from the installed stripe SDK (sdk_types.py).
:func:`check` validates a parsed form against a type and raises the
:class:`ApiError` Stripe answers: ``parameter_unknown``,
``parameter_missing``, ``parameter_invalid_integer`` with the full bracketed
``param`` (``line_items[0][quantity]``); booleans, decimals, enums, arrays and
hashes get Stripe's message with no code, as Stripe sends them.

This module and sdk_types.py are the only ones of the emulator that import a
third-party package: the stripe SDK, installed wherever the emulator runs (it
is how the app and the tests talk to it).
"""

from __future__ import annotations

import json
import re
import sys
from http import HTTPStatus
from pathlib import Path
from typing import Any

import stripe

from stripe_emulator import API_VERSION
from stripe_emulator.params import ApiError
from stripe_emulator.sdk_types import Enum, Hash, ListOf, MapOf, Node, Union, endpoint_types

# The API versions a request may pin in `Stripe-Version`: the account's default and the
# one the installed SDK sends unless told otherwise (`stripe.api_version`). The emulator
# answers every one of them in the same shapes; any other version is refused, as Stripe
# refuses a version it does not have, rather than answered in shapes it may not have.
KNOWN_API_VERSIONS = frozenset({API_VERSION, stripe.api_version})


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
