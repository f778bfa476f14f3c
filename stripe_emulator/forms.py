"""Turn Stripe's flat bracketed form keys into nested dicts and lists.

The official SDKs encode ``{"line_items": [{"price": "p", "quantity": 2}]}`` as
``line_items[0][price]=p&line_items[0][quantity]=2`` and ``expand=["a"]`` as
``expand[0]=a``; curl users often write ``expand[]=a``. Both are accepted.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl

_SEGMENT = re.compile(r"\[([^\[\]]*)\]")


class FormError(ValueError):
    """A key that cannot be parsed (for example ``a[b`` or mixed list/dict use)."""

    def __init__(self, message: str, param: str) -> None:
        super().__init__(message)
        self.param = param


def split_key(key: str) -> list[str]:
    """``a[b][0][]`` -> ``["a", "b", "0", ""]``."""
    head, bracket, rest = key.partition("[")
    if not bracket:
        return [key]
    rest = "[" + rest
    parts = [head]
    pos = 0
    for match in _SEGMENT.finditer(rest):
        if match.start() != pos:
            raise FormError(f"Invalid parameter name: {key}", key)
        parts.append(match.group(1))
        pos = match.end()
    if pos != len(rest) or not head:
        raise FormError(f"Invalid parameter name: {key}", key)
    return parts


def parse_pairs(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Build a nested structure; numeric or empty segments make lists."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        parts = split_key(key)
        _assign(root, parts, value, key)
    return _finalise(root)


def parse_form(body: str) -> dict[str, Any]:
    """Parse an ``application/x-www-form-urlencoded`` body or a query string."""
    return parse_pairs(parse_qsl(body, keep_blank_values=True))


# Lists are collected as dicts keyed by index first ("_list" marker), then
# turned into real lists once every key has been seen, because the indexes of
# one list may arrive in any order.
_LIST = "\x00list"


def _assign(node: dict[str, Any], parts: list[str], value: str, key: str) -> None:
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if i > 0 and (part == "" or part.isdigit()):
            if node.get(_LIST) is False:
                raise FormError(f"Invalid array: {key}", key)
            node[_LIST] = True
            if part == "":
                part = str(sum(1 for k in node if k != _LIST))
        elif i > 0:
            if node.get(_LIST) is True:
                raise FormError(f"Invalid hash: {key}", key)
            node[_LIST] = False
        if last:
            node[part] = value
            return
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child


def _finalise(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    is_list = node.pop(_LIST, False)
    items = {k: _finalise(v) for k, v in node.items()}
    if is_list:
        return [items[k] for k in sorted(items, key=int)]
    return items
