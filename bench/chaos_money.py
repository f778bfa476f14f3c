"""The chaos run's money (`bench/chaos.py --money`, issue 17): after the shoppers, staff
refund twenty paid orders (one answered by a Stripe 500 after the refund was made, two that
fail later at the bank), five orders are disputed (two lost, three won), and a Checkout
Session create answers 500 during the shopping. Then, whatever webhooks were dropped:

- every paid session is one paid order (refunded, partly or not);
- no order reads refunded where Stripe says otherwise, and every refund Stripe has is on
  its order with Stripe's status;
- every dispute Stripe has is on its order, with Stripe's status;
- `check_books` exits 0; then one payment made outside the shop (a Checkout Session made
  directly at the emulator, and paid) makes it exit 1, naming that payment.

Runs in the bench process (django set up by chaos.py), against the shop's database, the
emulator and the worker that chaos.py started.
"""

from __future__ import annotations

import random
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import requests

REPO = Path(__file__).resolve().parents[1]
KEY = "sk_test_chaos_run"
REFUNDS, FAIL_LATER, DISPUTES, LOST = 20, 2, 5, 2


def emulator_post(emulator: str, path: str, data: dict[str, str]) -> Any:
    answer = requests.post(f"{emulator}{path}", data=data, timeout=30)
    answer.raise_for_status()
    return answer.json()


def before_shopping(emulator: str) -> None:
    """One Checkout Session create answers 500 after the session was made (and Stripe keeps
    that answer for its key)."""
    emulator_post(emulator, "/_emulator/faults", {"path": "/v1/checkout/sessions", "when": "after"})


def money_phase(
    *, emulator: str, env: dict[str, str], seed: int, timeout: float
) -> tuple[list[str], list[str]]:
    """Refunds, disputes, the checks and the books; returns (summary lines, problems)."""
    import stripe

    from payments import refunds
    from payments.models import Order, Refund

    client = stripe.StripeClient(KEY, base_addresses={"api": emulator})
    rng = random.Random(seed)
    paid = list(Order.objects.filter(status=Order.Status.PAID, amount_total__gt=0).order_by("pk"))
    rng.shuffle(paid)
    disputed, refunded = paid[:DISPUTES], paid[DISPUTES : DISPUTES + REFUNDS]

    for n, order in enumerate(disputed):
        intent = client.v1.payment_intents.retrieve(order.stripe_payment_intent_id)
        dispute = emulator_post(
            emulator, f"/_emulator/charges/{intent.latest_charge}/dispute", {"reason": "fraudulent"}
        )["dispute"]
        outcome = "lost" if n < LOST else "won"
        emulator_post(emulator, f"/_emulator/disputes/{dispute['id']}/decide", {"outcome": outcome})

    emulator_post(emulator, "/_emulator/faults", {"path": "/v1/refunds", "when": "after"})
    outcomes: dict[str, int] = defaultdict(int)
    for n, order in enumerate(refunded):
        refund = refunds.order_refund(  # every other one in full, the others a third
            order_id=order.pk,
            request_token=f"chaos-{order.pk}",
            reason="chaos run",
            everything=bool(n % 2),
            amount=None if n % 2 else max(order.amount_total // 3, 1),
        )
        outcomes[refund.status] += 1
    staff = Refund.objects.filter(source=Refund.Source.STAFF, status="succeeded")
    made = list(staff.exclude(stripe_refund_id=None).order_by("pk"))
    for refund in rng.sample(made, k=FAIL_LATER):  # the bank gives it back later
        emulator_post(
            emulator,
            f"/_emulator/refunds/{refund.stripe_refund_id}/transition",
            {"to": "failed", "failure_reason": "expired_or_canceled_card"},
        )

    began = time.monotonic()
    problems = differences(client)
    while problems and time.monotonic() - began < timeout:
        time.sleep(1)
        problems = differences(client)
    settled = time.monotonic() - began

    # The 500 on a refund hit the first staff refund: Stripe made it (and kept the 500 for its
    # key); the shop must have it once, whoever told it (the webhook, the look).
    first = refunded[0]
    first_made = client.v1.refunds.list(params={"payment_intent": first.stripe_payment_intent_id})
    if len(first_made.data) != 1:
        problems.append(f"{first}: {len(first_made.data)} refunds at Stripe, not 1")
    unused = requests.get(f"{emulator}/_emulator/faults", timeout=30).json()["data"]
    if unused:
        problems.append(f"Stripe 500s asked for and never used: {unused}")
    books = check_books(env)
    outside = pay_outside_the_shop(client, emulator)
    after = check_books(env)
    lines = [
        f"{'staff refunds asked (first answers)':<40} {dict(sorted(outcomes.items()))}",
        f"{'  failed later at the bank':<40} {FAIL_LATER}",
        f"{'  the one answered 500 (made at Stripe)':<40} {len(first_made.data)} refund there",
        f"{'Stripe 500s (Checkout create, refund)':<40} {2 - len(unused)} of 2 used",
        f"{'disputes (lost / won)':<40} {DISPUTES} ({LOST} / {DISPUTES - LOST})",
        f"{'shop agreed with Stripe after':<40} {settled:.1f} s",
        f"{'check_books':<40} exit {books.returncode}",
        f"{'  after a payment outside the shop':<40} exit {after.returncode}, naming {outside}",
    ]
    if books.returncode != 0:
        problems.append(f"check_books exited {books.returncode}:\n{books.stdout}")
    if after.returncode != 1 or outside not in after.stdout:
        problems.append(f"check_books did not name {outside} (exit {after.returncode}):\n"
                        f"{after.stdout}")  # fmt: skip
    return lines, problems


def differences(client: Any) -> list[str]:
    """Where the shop does not (yet) say what Stripe says about refunds and disputes."""
    from payments.models import Dispute, Order, Refund

    problems = []
    back: dict[str, int] = defaultdict(int)
    for refund in client.v1.refunds.list(params={"limit": 100}).auto_paging_iter():
        intent = refund.payment_intent
        if refund.status == "succeeded":
            back[intent] += refund.amount
        row = Refund.objects.filter(stripe_refund_id=refund.id).first()
        if (
            row is None
            or row.status != refund.status
            or row.order.stripe_payment_intent_id != intent
        ):
            problems.append(f"refund {refund.id} ({refund.status}) is {row!r} in the shop")
    for dispute in client.v1.disputes.list(params={"limit": 100}).auto_paging_iter():
        on = Dispute.objects.filter(stripe_dispute_id=dispute.id).select_related("order").first()
        if on is None or on.status != dispute.status:
            problems.append(f"dispute {dispute.id} ({dispute.status}) is {on!r} in the shop")
        elif on.order.stripe_payment_intent_id != dispute.payment_intent:
            problems.append(f"dispute {dispute.id} is on {on.order}, not its payment's order")
    for order in Order.objects.exclude(stripe_payment_intent_id=""):
        returned = back.get(order.stripe_payment_intent_id, 0)
        says_refunded = order.status == Order.Status.REFUNDED
        if order.amount_refunded != returned or says_refunded != (
            returned >= order.amount_total > 0
        ):
            problems.append(
                f"{order} reads {order.status}, {order.amount_refunded} refunded; Stripe "
                f"returned {returned} of {order.amount_total}"
            )
    if Refund.objects.filter(status=Refund.Status.REQUESTED).exists():
        problems.append("a refund is still waiting for Stripe's answer")
    return problems


def check_books(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", "check_books", "--grace", "0", "--days", "1"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def pay_outside_the_shop(client: Any, emulator: str) -> str:
    """A Checkout Session made at Stripe directly (no order), and paid: its charge's id."""
    from store.models import Price

    price = Price.objects.filter(active=True, unit_amount__gt=0).order_by("pk").first()
    assert price is not None
    session = client.v1.checkout.sessions.create(
        params={
            "mode": "payment",
            "line_items": [{"price": price.stripe_id, "quantity": 1}],
            "success_url": "http://127.0.0.1/outside",
            "cancel_url": "http://127.0.0.1/outside",
        }
    )
    paid = emulator_post(
        emulator,
        f"/_emulator/sessions/{session.id}/pay",
        {"card": "4242424242424242", "email": "outside@example.com"},
    )
    assert paid["paid"], paid
    intent = client.v1.payment_intents.retrieve(
        client.v1.checkout.sessions.retrieve(session.id).payment_intent
    )
    return str(intent.latest_charge)
