from __future__ import annotations

from django.http import HttpRequest

from cart.selectors import cart_item_count, visitor


def cart_summary(request: HttpRequest) -> dict[str, object]:
    """The header's item count, computed only if a template asks for it; and for the
    cached pages (`store.views`), the whole header's visitor, memoised per session."""
    return {
        "cart_count": lambda: cart_item_count(request),
        "header_visitor": lambda: visitor(request),
    }
