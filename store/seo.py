"""What search engines and link previews read: canonical URLs, descriptions, OpenGraph,
JSON-LD `Product` data, the sitemap, robots.txt and the favicon.

Every absolute URL is built from SITE_URL (the shop's public address), never from the
request's Host header. The grid and the product page are served from the shared page cache
(`store.views.serve_page`), keyed by what the URL asks for (the listing, the product): their
meta comes from the same key, so each URL's page carries its own; a product's JSON-LD
availability follows its stock because the page is rebuilt when its card changes.
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.sitemaps import Sitemap
from django.db.models import Max
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.templatetags.static import static
from django.urls import reverse
from django.utils.safestring import SafeString, mark_safe
from django.utils.text import Truncator
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_GET

from store.models import Product
from store.money import format_money, minor_unit_digits

SITE_NAME = "Amazin"
DEFAULT_DESCRIPTION = (
    "Amazin sells kitchen and home goods made in small batches: see what is in stock, "
    "live, and pay securely on Stripe Checkout."
)
DESCRIPTION_LENGTH = 160
# The characters that could end a <script> element or open a comment inside it.
_SCRIPT_ESCAPES = {ord("<"): "\\u003C", ord(">"): "\\u003E", ord("&"): "\\u0026"}


def absolute(path: str) -> str:
    """`path` on the shop's public address (a full URL is kept as it is)."""
    if "://" in path:
        return path
    return f"{settings.SITE_URL}{path}"


def page_meta(request: HttpRequest) -> dict[str, Any]:
    """Every page's defaults: its canonical URL is its own path, without the query."""
    return {"canonical_url": absolute(request.path)}


def _describe(text: str) -> str:
    return Truncator(" ".join(text.split())).chars(DESCRIPTION_LENGTH)


def listing_meta(*, path: str, category_name: str, q: str) -> dict[str, Any]:
    """A grid page's meta. `path` is its canonical path: its category, search, page size
    and page (another sort shows the same products in another order)."""
    if category_name:
        description = f"{category_name} at {SITE_NAME}: {DEFAULT_DESCRIPTION}"
        title = f"{category_name} · {SITE_NAME}"
    elif q:
        description = f"Products matching “{q}” at {SITE_NAME}."
        title = f"“{q}” · {SITE_NAME}"
    else:
        description, title = DEFAULT_DESCRIPTION, SITE_NAME
    return {
        "canonical_url": absolute(path),
        "meta_description": _describe(description),
        "og_title": title,
        # A search result is not a page to index: its products' own pages are.
        "noindex": bool(q),
    }


def price_text(amount: int, currency: str) -> str:
    """A price as schema.org wants it: major units, a dot, the currency's digits."""
    digits = minor_unit_digits(currency.upper())
    return f"{Decimal(amount).scaleb(-digits):.{digits}f}"


def product_json_ld(product: Any, url: str) -> dict[str, Any]:
    """schema.org `Product` with one `Offer`: price, currency, and availability from the
    units a shopper can buy now (stock less live reservations), as the page shows them."""
    price = product.price
    data: dict[str, Any] = {
        "@context": "https://schema.org",
        "@type": "Product",
        "name": product.name,
        "sku": product.stripe_id,
        "url": url,
    }
    if product.description:
        data["description"] = product.description
    if product.image:
        data["image"] = [absolute(product.image)]
    if product.category:
        data["category"] = product.category
    if price is not None and price.unit_amount is not None:
        available = product.available()
        data["offers"] = {
            "@type": "Offer",
            "url": url,
            "price": price_text(price.unit_amount, price.currency),
            "priceCurrency": price.currency.upper(),
            "availability": "https://schema.org/" + ("InStock" if available > 0 else "OutOfStock"),
            "itemCondition": "https://schema.org/NewCondition",
        }
    return data


def json_ld_script(data: dict[str, Any]) -> SafeString:
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":")).translate(_SCRIPT_ESCAPES)
    return mark_safe(f'<script type="application/ld+json">{text}</script>')


def product_meta(product: Any) -> dict[str, Any]:
    url = absolute(reverse("store:detail", args=[product.pk]))
    price = product.price
    shown = format_money(price.unit_amount, price.currency) if price else ""
    description = product.description or f"{product.name} at {SITE_NAME}"
    return {
        "canonical_url": url,
        "meta_description": _describe(f"{shown}: {description}" if shown else description),
        "og_title": product.name,
        "og_type": "product",
        "og_image": absolute(product.image) if product.image else "",
        "json_ld": json_ld_script(product_json_ld(product, url)),
    }


# -- the sitemap ---------------------------------------------------------------------------


class ShopSitemap(Sitemap[Any]):
    """Absolute URLs on SITE_URL's scheme and host."""

    @property
    def protocol(self) -> str:  # type: ignore[override]
        scheme: str = urlsplit(settings.SITE_URL).scheme
        return scheme

    def get_domain(self, site: Any = None) -> str:
        host: str = urlsplit(settings.SITE_URL).netloc
        return host


class PagesSitemap(ShopSitemap):
    def items(self) -> list[str]:
        return ["store:grid"]

    def location(self, item: str) -> str:
        return reverse(item)


class CategorySitemap(ShopSitemap):
    def items(self) -> list[str]:
        return list(
            Product.objects.visible()
            .exclude(category_slug="")
            .order_by("category_slug")
            .values_list("category_slug", flat=True)
            .distinct()
        )

    def location(self, item: str) -> str:
        return reverse("store:category", args=[item])


class ProductSitemap(ShopSitemap):
    limit = 10_000  # URLs per sitemap page (the protocol allows 50,000)

    def items(self) -> Any:
        return Product.objects.visible().select_related(None).order_by("pk").only("updated_at")

    def location(self, item: Product) -> str:
        return reverse("store:detail", args=[item.pk])

    def lastmod(self, item: Product) -> datetime:
        return item.updated_at

    def get_latest_lastmod(self) -> datetime | None:
        # Django's own reads every item; one aggregate does.
        latest: datetime | None = Product.objects.visible().aggregate(at=Max("updated_at"))["at"]
        return latest


SITEMAPS: dict[str, type[Sitemap[Any]]] = {
    "pages": PagesSitemap,
    "categories": CategorySitemap,
    "products": ProductSitemap,
}


@require_GET
def robots_txt(request: HttpRequest) -> HttpResponse:
    """What crawlers may read: the catalog, not carts, checkouts, accounts or the admin."""
    lines = [
        "User-agent: *",
        *(
            f"Disallow: {path}"
            for path in ("/admin/", "/cart/", "/checkout/", "/orders/", "/accounts/")
        ),
        "Disallow: /dashboard/",
        "Disallow: /live/",
        "",
        f"Sitemap: {absolute(reverse('store:sitemap'))}",
        "",
    ]
    return HttpResponse("\n".join(lines), content_type="text/plain; charset=utf-8")


@require_GET
@cache_control(max_age=86_400, public=True)
def favicon(request: HttpRequest) -> HttpResponse:
    """`/favicon.ico`, which browsers ask for on any page (the admin's, a PDF...)."""
    return HttpResponseRedirect(static("img/favicon.ico"))
