"""What payments announces, so that higher apps (accounts) act on it without payments
importing them.

All are sent inside the transaction that changes the order's status, with the order row
locked, so their receivers run in that transaction: what a receiver writes (an entitlement
granted or revoked) commits or rolls back together with the order being marked paid or
refunded. A signal sent on commit would be lost if the process died between the commit and
the receiver (a paid pass that grants nothing, with no retry, since a paid order returns at
once), and a receiver error could no longer make Stripe retry. Receivers must therefore
only write to the database: no network call (send mail with `transaction.on_commit`).
"""

from __future__ import annotations

from django.dispatch import Signal

# Sent with `order=`: the order was just marked paid (its stock taken).
order_paid = Signal()

# Sent with `order=`: Stripe refunded the order in full and it is marked refunded (again on
# each redelivery of the event: receivers are idempotent).
order_refunded = Signal()

# Sent with `order=`: money the order had given back or lost came back to the shop (a refund
# that had succeeded failed; a lost dispute was reversed), and the order holds its money
# again: receivers restore what `order_refunded` or `order_dispute_lost` took away.
order_unrefunded = Signal()

# Sent with `order=`: the shop lost a dispute of the order's payment (the money is gone):
# receivers take back what the order granted, as for a refund.
order_dispute_lost = Signal()
