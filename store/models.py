"""The local copy of the Stripe catalog, plus what Stripe does not know: stock, and the
reservations that hold some of it for a while (a shopper on Checkout)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Self, TypedDict, TypeVar
from urllib.parse import urlsplit

from django.conf import settings
from django.db import connection, models
from django.db.models import Min, Q, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone
from django_stubs_ext import WithAnnotations

LOCAL_HOSTS = {"localhost", "127.0.0.1", "[::1]", "::1"}


def live_reservations(prefix: str = "") -> Q:
    """Reservations that hold stock now: not yet expired (released ones are deleted).

    `prefix` reaches them through a relation, e.g. "reservations__" from Product.
    """
    return Q(**{f"{prefix}expires_at__gt": timezone.now()})


def reservations_next_expiry() -> datetime | None:
    """When the earliest live reservation runs out (None: nothing is reserved)."""
    at: datetime | None = Reservation.objects.filter(live_reservations()).aggregate(
        at=Min("expires_at")
    )["at"]
    return at


def reservations_ended_product_ids(*, since: datetime, until: datetime) -> set[int]:
    """Products whose reservations ran out by the clock in (since, until]."""
    return set(
        Reservation.objects.filter(expires_at__gt=since, expires_at__lte=until).values_list(
            "product_id", flat=True
        )
    )


SEARCH_CONFIG = "english"
MAX_QUERY_LENGTH = 200  # a longer search is answered with an empty page, not run

# The grid's sort orders: `?sort=` value -> ORDER BY (always ending in the id: a stable page).
SORTS = {
    "name": ("name", "id"),
    "price": ("price__unit_amount", "id"),
    "-price": ("-price__unit_amount", "-id"),
    "newest": ("-created_at", "-id"),
}
DEFAULT_SORT = "name"


def search_vector() -> Any:
    """What full-text search reads on PostgreSQL; migration 0003 indexes this expression."""
    from django.contrib.postgres.search import SearchVector

    return SearchVector("name", "description", config=SEARCH_CONFIG)


class ProductAnnotations(TypedDict):
    """What `with_reserved` and `with_next_expiry` add to each product."""

    reserved: int
    next_expiry: datetime | None


_ProductT = TypeVar("_ProductT", bound="Product", covariant=True)
if TYPE_CHECKING:  # WithAnnotations takes one argument at runtime
    AnnotatedProduct = WithAnnotations["Product", ProductAnnotations]


class ProductQuerySet(models.QuerySet[_ProductT]):
    def search(self, query: str) -> Self:
        """Full-text search on PostgreSQL (GIN-indexed); a substring match elsewhere."""
        query = query.strip()
        if not query:
            return self
        if connection.vendor == "postgresql":
            from django.contrib.postgres.search import SearchQuery

            # The vector in WHERE, not an annotation: GROUP BY would repeat it.
            return self.alias(search=search_vector()).filter(
                search=SearchQuery(query, config=SEARCH_CONFIG, search_type="websearch")
            )
        return self.filter(Q(name__icontains=query) | Q(description__icontains=query))

    def in_category(self, slug: str) -> Self:
        return self.filter(category_slug=slug)

    def sorted_by(self, sort: str) -> Self:
        return self.order_by(*SORTS.get(sort, SORTS[DEFAULT_SORT]))

    def visible(self) -> Self:
        """What the shop sells: live in Stripe, with an active price, not the access pass."""
        products = self.filter(active=True, price__isnull=False, price__active=True).exclude(
            price__lookup_key=settings.ACCESS_PRICE_LOOKUP_KEY
        )
        if settings.ACCESS_PRICE_ID:
            products = products.exclude(price__stripe_id=settings.ACCESS_PRICE_ID)
        return products.select_related("price")

    def with_reserved(self) -> ProductQuerySet[AnnotatedProduct]:
        """Annotate `reserved`: units held by live reservations."""
        # Typed here: on a generic self, django-stubs cannot infer annotate()'s result.
        annotated: ProductQuerySet[AnnotatedProduct] = self.annotate(
            reserved=Coalesce(
                Sum("reservations__quantity", filter=live_reservations("reservations__")), 0
            )
        )
        return annotated

    def with_next_expiry(self) -> ProductQuerySet[AnnotatedProduct]:
        """Annotate `next_expiry`: when the product's earliest live reservation runs out."""
        annotated: ProductQuerySet[AnnotatedProduct] = self.annotate(
            next_expiry=Min("reservations__expires_at", filter=live_reservations("reservations__"))
        )
        return annotated


class Product(models.Model):
    stripe_id = models.CharField(max_length=255, unique=True)
    name = models.CharField(max_length=255, blank=True)
    description = models.TextField(blank=True)
    images = models.JSONField(default=list, blank=True)
    active = models.BooleanField(default=False)
    deleted = models.BooleanField(default=False, help_text="Deleted in Stripe; kept for orders.")
    metadata = models.JSONField(default=dict, blank=True)
    # Stripe's `metadata.category`, as written there, and its slug for `/category/<slug>/`.
    category = models.CharField(max_length=100, blank=True)
    category_slug = models.SlugField(max_length=100, blank=True)
    # Stripe's `default_price` id; the Price row may arrive after the product.
    default_price_stripe_id = models.CharField(max_length=255, blank=True)
    # The price the shop sells at: the default price if active, else the newest active one.
    price = models.ForeignKey(
        "store.Price", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    stock = models.PositiveIntegerField(default=0, help_text="Units on hand (Amazin's own).")
    # `created` of the newest Stripe event applied; older events are ignored.
    stripe_event_created = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ProductQuerySet.as_manager()

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(stock__gte=0), name="product_stock_not_negative"),
        ]
        # The grid's sort orders (name, newest); price sorts through the Price row.
        indexes = [
            models.Index(fields=["name", "id"], name="product_name"),
            models.Index(fields=["created_at", "id"], name="product_created"),
            # The category links read this index alone (no table, no join).
            models.Index(fields=["category_slug", "category", "active"], name="product_category"),
            # The staff home's "low on stock".
            models.Index(fields=["stock"], condition=Q(active=True), name="product_active_stock"),
        ]

    def __str__(self) -> str:
        return self.name or self.stripe_id

    @property
    def image(self) -> str:
        """The first image. One of the shop's own static files is shown by its path, so it
        works on whatever host and port serves the shop: Stripe needs absolute URLs, so
        seed_demo gave it the address the shop had then."""
        url = self.images[0] if self.images else ""
        parts = urlsplit(url)
        ours = parts.hostname in LOCAL_HOSTS or parts.netloc == urlsplit(settings.SITE_URL).netloc
        if ours and parts.path.startswith("/" + settings.STATIC_URL.lstrip("/")):
            return parts.path
        return url

    def available(self) -> int:
        """Stock minus live reservations; needs `with_reserved()` on the queryset."""
        return max(self.stock - getattr(self, "reserved", 0), 0)


class Price(models.Model):
    class Type(models.TextChoices):
        ONE_TIME = "one_time"
        RECURRING = "recurring"

    stripe_id = models.CharField(max_length=255, unique=True)
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="prices")
    unit_amount = models.BigIntegerField(null=True, blank=True, help_text="In minor units.")
    currency = models.CharField(max_length=3)
    active = models.BooleanField(default=True)
    type = models.CharField(max_length=16, choices=Type.choices, default=Type.ONE_TIME)
    lookup_key = models.CharField(max_length=255, blank=True)
    stripe_created = models.BigIntegerField(default=0)
    stripe_event_created = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-stripe_created", "-id"]

    def __str__(self) -> str:
        return f"{self.stripe_id} ({self.unit_amount} {self.currency})"


class Reservation(models.Model):
    """Units of a product held for a `holder` until `expires_at`.

    The holder is an opaque key chosen by whoever reserved (payments uses "order:<pk>"), so
    the catalog knows nothing of orders. Released or taken reservations are deleted; an
    expired one no longer counts and is deleted by its holder's release.
    """

    product = models.ForeignKey(Product, on_delete=models.CASCADE, related_name="reservations")
    quantity = models.PositiveIntegerField()
    holder = models.CharField(max_length=64)
    expires_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["expires_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(quantity__gt=0), name="reservation_quantity_positive"
            ),
        ]
        indexes = [
            models.Index(fields=["expires_at"], name="reservation_expires_at"),
            models.Index(fields=["holder"], name="reservation_holder"),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.product} for {self.holder}"
