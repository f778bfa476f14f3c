"""The Stripe API the emulator speaks, assembled from one module per resource.

    catalog.py    products, prices
    shipping.py   shipping rates
    coupons.py    coupons, promotion codes
    checkout.py   Checkout Sessions (create, read, list, expire), over
    paying.py     paying one (the hosted page's action), expiry when due, settling
    payments.py   PaymentIntents (read, cancel), Charges, Customers
    intents.py    creating a PaymentIntent paid with a test PaymentMethod
    refunds.py    Refunds and their statuses
    disputes.py   Disputes (opened by test cards and the dashboard)
    events.py     events (recorded by all of the above, handed to webhooks.py)

They share params.py (Stripe's error shape, parameter parsing) and
listing.py (reads, `expand`, pagination). Every operation runs under the
store lock, validates its parameters the way Stripe does, makes its change,
records the events the change causes and saves. The HTTP layer, the hosted
Checkout page and the dashboard all call these same operations, so a change
made anywhere fires the same events.
"""

from __future__ import annotations

from collections.abc import Callable

from stripe_emulator.catalog import Catalog
from stripe_emulator.checkout import Checkout
from stripe_emulator.coupons import Coupons
from stripe_emulator.disputes import Disputes
from stripe_emulator.events import Events
from stripe_emulator.intents import PaymentIntents
from stripe_emulator.listing import Route
from stripe_emulator.params import Obj
from stripe_emulator.payments import Payments
from stripe_emulator.refunds import Refunds
from stripe_emulator.shipping import Shipping
from stripe_emulator.store import Store


class Api:
    """Every resource over one store."""

    def __init__(
        self,
        store: Store,
        *,
        public_url: str,
        on_event: Callable[[Obj], int] | None = None,
    ) -> None:
        self.store = store
        self.events = Events(store, on_event=on_event)
        self.catalog = Catalog(store, self.events)
        self.shipping = Shipping(store)
        self.coupons = Coupons(store)
        self.checkout = Checkout(store, self.events, public_url=public_url, coupons=self.coupons)
        self.payments = Payments(store, self.events)
        self.intents = PaymentIntents(store, self.events)
        self.refunds = Refunds(store, self.events)
        self.disputes = Disputes(store, self.events)
        # A test card that disputes its charge does it once the charge is made.
        self.checkout.on_charge = self.intents.on_charge = self.disputes.on_charge
        self.refunds.refund_blocked = self.disputes.refund_blocked
        # What is due by time happens before events are listed, so its events are in
        # the list: sessions past `expires_at` expire, test cards' refunds change.
        self.events.catch_up = self.catch_up

    def catch_up(self) -> None:
        with self.store.lock:
            self.checkout.expire_due_sessions()
            self.refunds.settle_due()

    def routes(self) -> list[Route]:
        return [
            *self.catalog.routes(),
            *self.shipping.routes(),
            *self.coupons.routes(),
            *self.checkout.routes(),
            *self.payments.routes(),
            *self.intents.routes(),
            *self.refunds.routes(),
            *self.disputes.routes(),
            *self.events.routes(),
        ]
