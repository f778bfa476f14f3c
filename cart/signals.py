"""What cart announces, so that a higher app acts on it without cart importing it."""

from __future__ import annotations

from django.dispatch import Signal

# Sent with `cart=` (a browser's cart), `user=` and `target=` (the user's own cart, or None)
# when that browser logs in, just before `cart` joins `target` (or, with none, becomes the
# user's cart). Outside any transaction, so a receiver may call out: payments settles the
# cart's open checkout with Stripe first, so that one browser never holds two payable
# checkouts for the same lines.
cart_merging = Signal()
