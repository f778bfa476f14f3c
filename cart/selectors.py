from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.models import Session
from django.db import connection
from django.db.models import Sum
from django.http import HttpRequest
from django.utils import timezone

from cart.models import MAX_LINE_QUANTITY, Cart, CartItem
from store.models import Product

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


def _session_and_count(request: HttpRequest) -> int | None:
    """Load the session and count its cart in ONE query (the header of every page asks).

    Only for database sessions not loaded yet; None when the answer needs the usual path
    (a logged-in user, a cart that is not the session's own): the session is loaded then.
    """
    session = request.session
    key = session.session_key
    if (
        not key
        or getattr(session, "_session_cache", None) is not None
        or settings.SESSION_ENGINE != "django.contrib.sessions.backends.db"
    ):
        return None
    sql = (
        f"SELECT s.session_data, c.id, (SELECT SUM(i.quantity) FROM {CartItem._meta.db_table} i"
        f" WHERE i.cart_id = c.id) FROM {Session._meta.db_table} s"
        f" LEFT JOIN {Cart._meta.db_table} c ON c.session_key = s.session_key"
        " AND c.user_id IS NULL WHERE s.session_key = %s AND s.expire_date > %s"
    )
    now = timezone.now()
    # SQLite stores it as naive UTC text, and adapting a datetime costs ~0.1 ms.
    expiry = str(now.replace(tzinfo=None)) if connection.vendor == "sqlite" else now
    with connection.cursor() as cursor:
        cursor.execute(sql, [key, expiry])
        row = cursor.fetchone()
    if row is None:
        return None  # no such session (expired): Django starts a new, empty one
    data, cart_id, count = row
    # As SessionStore.load() would (the private cache django-stubs leaves out).
    session._session_cache = session.decode(data)  # type: ignore[attr-defined]
    session.accessed = True  # the response varies by the cookie (Vary: Cookie)
    if SESSION_KEY in session or session.get(SESSION_CART_ID) != cart_id:
        return None
    return int(count or 0)


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
    visible = {p.pk: p for p in Product.objects.visible().with_reserved().filter(pk__in=ids)}
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
    return CartView(lines=lines)
