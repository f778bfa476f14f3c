from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore
from django.contrib.sessions.models import Session
from django.db import connection
from django.db.models import Sum
from django.http import HttpRequest
from django.utils import timezone

from cart.models import MAX_LINE_QUANTITY, Cart, CartItem
from store.models import Product
from store.visitors import (
    CARTS,
    MEMO_SECONDS,
    SESSIONS,
    STRANGER,
    USERS,
    Visitor,
    memoised,
    session_topic_id,
)

# The anonymous cart is found through the session's data, not its key: login cycles the key
# (session fixation), but keeps the data, so the merge on login can still find the cart.
SESSION_CART_ID = "cart_id"


def cart_for_request(request: HttpRequest) -> Cart | None:
    """The cart of this browser (or of the logged-in user), without creating one."""
    if request.user.is_authenticated:
        return Cart.objects.filter(user=request.user).first()
    cart_id = request.session.get(SESSION_CART_ID)
    if cart_id is None:
        return None
    return Cart.objects.filter(pk=cart_id, user__isnull=True).first()


def _session_row(request: HttpRequest) -> tuple[int | None, int, datetime] | None:
    """Load the session in ONE query with its own cart's id and count, and its expiry.

    Only for database sessions not loaded yet; None then, or when there is no such session
    (expired: Django starts a new, empty one).
    """
    session = request.session
    key = session.session_key
    if (
        not key
        or getattr(session, "_session_cache", None) is not None
        or not isinstance(session, DatabaseSessionStore)
    ):
        return None
    sql = (
        f"SELECT s.session_data, s.expire_date, c.id, (SELECT SUM(i.quantity)"
        f" FROM {CartItem._meta.db_table} i WHERE i.cart_id = c.id)"
        f" FROM {Session._meta.db_table} s"
        f" LEFT JOIN {Cart._meta.db_table} c ON c.session_key = s.session_key"
        " AND c.user_id IS NULL WHERE s.session_key = %s AND s.expire_date > %s"
    )
    now = timezone.now()
    # SQLite stores it as naive UTC text, and adapting a datetime costs ~0.1 ms.
    sqlite = connection.vendor == "sqlite"
    expiry = str(now.replace(tzinfo=None)) if sqlite else now
    with connection.cursor() as cursor:
        cursor.execute(sql, [key, expiry])
        row = cursor.fetchone()
    if row is None:
        return None
    data, expire_date, cart_id, count = row
    if isinstance(expire_date, str):  # SQLite through a raw cursor: the stored text
        expire_date = datetime.fromisoformat(expire_date)
    if expire_date.tzinfo is None:  # SQLite stores UTC, naive
        expire_date = expire_date.replace(tzinfo=UTC)
    # As SessionStore.load() would (the private cache django-stubs leaves out).
    session._session_cache = session.decode(data)  # type: ignore[attr-defined]
    session.accessed = True  # the response varies by the cookie (Vary: Cookie)
    return cart_id, int(count or 0), expire_date


def _session_and_count(request: HttpRequest) -> int | None:
    """Load the session and count its cart in ONE query (the header of every page asks).

    None when the answer needs the usual path (the session loaded already or gone, a
    logged-in user, a cart that is not the session's own): the session is loaded then.
    """
    row = _session_row(request)
    if row is None:
        return None
    cart_id, count, _ = row
    session = request.session
    if SESSION_KEY in session or session.get(SESSION_CART_ID) != cart_id:
        return None
    return count


def visitor(request: HttpRequest) -> Visitor | None:
    """What the header of a cached page shows this visitor (`store.visitors`): from this
    process's memo when nothing it depends on changed, else read (one query for a visitor
    who is not logged in, three for one who is) and memoised. Display only: never use it
    to decide what a visitor may do."""
    key = request.session.session_key
    if not key:  # no session saved yet, so no cart, no login (logging in saves one)
        return STRANGER
    return memoised(key, lambda: _visitor_read(request, key))


def _visitor_read(request: HttpRequest, key: str) -> Visitor | None:
    row = _session_row(request)
    session = request.session
    shared = "_messages" not in session
    if row is None:  # loaded already (no expiry at hand) or gone: answered, not memoised
        if not request.user.is_anonymous:
            return None
        count = cart_item_count(request)
        return Visitor(shared=shared, count=count, cart_id=session.get(SESSION_CART_ID))
    expires = min(timezone.now() + timedelta(seconds=MEMO_SECONDS), row[2])
    depends: list[tuple[str, int]] = [(SESSIONS, session_topic_id(key))]
    if SESSION_KEY in session:
        user = request.user
        if not user.is_authenticated or session.session_key != key:
            return None  # the session was no longer valid (Django flushed it)
        found = (
            Cart.objects.filter(user=user)
            .annotate(n=Sum("items__quantity"))
            .values_list("pk", "n")
            .first()
        )
        # USERS: their first cart, their members' pass (the grid's banner).
        depends.append((USERS, user.pk))
        if found:
            depends.append((CARTS, found[0]))
        count = int(found[1] or 0) if found else 0
        return Visitor(
            shared=shared,
            count=count,
            user_id=user.pk,
            cart_id=found[0] if found else None,
            depends=tuple(depends),
            expires=expires,
        )
    cart_id, count, _ = row
    if session.get(SESSION_CART_ID) != cart_id:
        count = cart_item_count(request)
    if session.get(SESSION_CART_ID) is not None:
        depends.append((CARTS, session[SESSION_CART_ID]))
    own = session.get(SESSION_CART_ID)
    return Visitor(shared=shared, count=count, cart_id=own, depends=tuple(depends), expires=expires)


def cart_item_count(request: HttpRequest) -> int:
    """Units in this browser's (or user's) cart: with the session in one query when it is
    not loaded yet, else one query through the cart's owner."""
    count = _session_and_count(request)
    if count is not None:
        return count
    if request.user.is_authenticated:
        items = CartItem.objects.filter(cart__user=request.user)
    else:
        cart_id = request.session.get(SESSION_CART_ID)
        if cart_id is None:
            return 0
        items = CartItem.objects.filter(cart_id=cart_id, cart__user__isnull=True)
    return items.aggregate(n=Sum("quantity"))["n"] or 0


@dataclass(frozen=True)
class CartLine:
    item: CartItem
    product: Product
    for_sale: bool
    max_quantity: int

    @property
    def unit_amount(self) -> int:
        return self.product.price.unit_amount or 0 if self.product.price else 0

    @property
    def currency(self) -> str:
        return self.product.price.currency if self.product.price else ""

    @property
    def line_total(self) -> int:
        return self.unit_amount * self.item.quantity


@dataclass(frozen=True)
class CartView:
    lines: list[CartLine]
    # When the page changes by the clock alone: a reservation of one of its products ends.
    expires: datetime | None = None

    @property
    def total(self) -> int:
        return sum(line.line_total for line in self.lines if line.for_sale)

    @property
    def currency(self) -> str:
        return next((line.currency for line in self.lines if line.for_sale), "usd")

    @property
    def count(self) -> int:
        return sum(line.item.quantity for line in self.lines)

    @property
    def mixed_currencies(self) -> bool:
        return len({line.currency for line in self.lines if line.for_sale}) > 1

    @property
    def can_check_out(self) -> bool:
        return (
            bool(self.lines)
            and all(line.for_sale for line in self.lines)
            and not self.mixed_currencies
        )


def cart_view(cart: Cart | None) -> CartView:
    """The cart page's lines: two queries whatever the cart's size."""
    if cart is None:
        return CartView(lines=[])
    items = list(cart.items.select_related("product__price"))
    ids = [item.product_id for item in items]
    visible = {
        p.pk: p
        for p in Product.objects.visible().with_reserved().with_next_expiry().filter(pk__in=ids)
    }
    lines = []
    for item in items:
        product = visible.get(item.product_id)
        lines.append(
            CartLine(
                item=item,
                product=product or item.product,
                for_sale=product is not None,
                max_quantity=min(product.available(), MAX_LINE_QUANTITY) if product else 0,
            )
        )
    expiries = [p.next_expiry for p in visible.values() if p.next_expiry is not None]
    return CartView(lines=lines, expires=min(expiries, default=None))
