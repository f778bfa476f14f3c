"""What search engines read: the sitemap, robots.txt, each page's canonical URL, description
and OpenGraph tags, and the product pages' JSON-LD, checked against schema.org's own
vocabulary (a subset vendored in tests/fixtures/schema_org/, no network)."""

from __future__ import annotations

import json
import re
from functools import cache
from http import HTTPStatus
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest
from django.db import transaction

from live.broker import get_broker
from pagecache.cache import forget_all
from store import live
from store.models import Product
from tests.factories import ProductFactory, ReservationFactory

pytestmark = pytest.mark.django_db

VOCABULARY = (
    Path(__file__).resolve().parents[1] / "fixtures" / "schema_org" / "schemaorg-subset.jsonld"
)
SITEMAP = "{http://www.sitemaps.org/schemas/sitemap/0.9}"
SCHEMA = "https://schema.org/"


# -- schema.org's vocabulary ------------------------------------------------------------


def _ids(value: Any) -> list[str]:
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    return [item["@id"].removeprefix("schema:") for item in items]


@cache
def vocabulary() -> tuple[dict[str, list[str]], dict[str, dict[str, list[str]]], dict[str, str]]:
    """(class -> parents, property -> {domains, ranges}, enumeration member -> its type)."""
    graph = json.loads(VOCABULARY.read_text())["@graph"]
    classes, properties, members = {}, {}, {}
    for node in graph:
        name = node["@id"].removeprefix("schema:")
        kinds = node["@type"] if isinstance(node["@type"], list) else [node["@type"]]
        if "rdfs:Class" in kinds:
            classes[name] = _ids(node.get("rdfs:subClassOf"))
        elif "rdf:Property" in kinds:
            properties[name] = {
                "domains": _ids(node.get("schema:domainIncludes")),
                "ranges": _ids(node.get("schema:rangeIncludes")),
            }
        else:
            members[name] = kinds[0].removeprefix("schema:")
    return classes, properties, members


def ancestry(name: str) -> set[str]:
    classes = vocabulary()[0]
    found, todo = set(), [name]
    while todo:
        current = todo.pop()
        if current not in found:
            found.add(current)
            todo.extend(classes.get(current, []))
    return found


def schema_problems(node: dict[str, Any], path: str = "") -> list[str]:
    """Everything in `node` that schema.org's vocabulary does not allow."""
    classes, properties, members = vocabulary()
    kind = node.get("@type", "")
    if kind not in classes:
        return [f"{path}@type {kind!r} is not a schema.org type"]
    problems = []
    for key, value in node.items():
        if key.startswith("@"):
            continue
        where = f"{path}{kind}.{key}"
        spec = properties.get(key)
        if spec is None:
            problems.append(f"{where}: no such property")
            continue
        if not set(spec["domains"]) & ancestry(kind):
            problems.append(f"{where}: not a property of {kind}")
        for item in value if isinstance(value, list) else [value]:
            problems += value_problems(item, spec["ranges"], where, members)
    return problems


def value_problems(value: Any, ranges: list[str], where: str, members: dict[str, str]) -> list[str]:
    if isinstance(value, dict):
        problems = schema_problems(value, f"{where} > ")
        if not ancestry(value.get("@type", "")) & set(ranges):
            problems.append(f"{where}: a {value.get('@type')} is not one of {ranges}")
        return problems
    if isinstance(value, str) and value.startswith(SCHEMA):  # an enumeration member
        member = value.removeprefix(SCHEMA)
        if member not in members or not ancestry(members[member]) & set(ranges):
            return [f"{where}: {value} is not one of {ranges}"]
        return []
    text_like = {"Text", "URL", "Number"}
    if not any(ancestry(r) & text_like for r in ranges) and not set(ranges) & text_like:
        return [f"{where}: a literal where {ranges} is expected"]
    return []


def json_ld(html: str) -> list[dict[str, Any]]:
    found = re.findall(r'<script type="application/ld\+json">(.*?)</script>', html, re.S)
    return [json.loads(text) for text in found]


def meta(html: str, attribute: str, name: str) -> str | None:
    found = re.search(rf'<meta {attribute}="{re.escape(name)}" content="([^"]*)"', html)
    return found.group(1) if found else None


def canonical(html: str) -> str | None:
    found = re.search(r'<link rel="canonical" href="([^"]*)"', html)
    return found.group(1) if found else None


# -- the checker itself ------------------------------------------------------------------


def test_the_vocabulary_check_finds_what_schema_org_does_not_allow():
    wrong = {
        "@type": "Product",
        "name": "Teapot",
        "price": "12.00",  # an Offer's, not a Product's
        "colour": "red",  # no such property
        "offers": {
            "@type": "Offer",
            "price": "12.00",
            "priceCurrency": "USD",
            "availability": "https://schema.org/Sold",  # not an ItemAvailability
        },
        "brand": {"@type": "Offer"},  # brand is a Brand or an Organization
    }

    problems = schema_problems(wrong)

    assert any("Product.price: not a property of Product" in p for p in problems)
    assert any("Product.colour: no such property" in p for p in problems)
    assert any("https://schema.org/Sold is not one of" in p for p in problems)
    assert any("Product.brand: a Offer is not one of" in p for p in problems)
    assert schema_problems({"@type": "Offer", "availability": SCHEMA + "InStock"}) == []


# -- product pages -------------------------------------------------------------------------


def test_a_product_page_has_valid_product_json_ld_with_its_offer(client):
    teapot = ProductFactory(
        name="Cast iron teapot",
        description="Holds <a litre> & a half.",
        stock=3,
        images=["/static/img/products/teapot.svg"],
        metadata={"category": "Tea & Coffee"},
        category="Tea & Coffee",
    )
    teapot.price.unit_amount, teapot.price.currency = 4800, "eur"
    teapot.price.save()

    html = client.get(f"/products/{teapot.pk}/").content.decode()

    (data,) = json_ld(html)
    assert data["@context"] == "https://schema.org"
    assert schema_problems(data) == []
    url = f"http://testserver/products/{teapot.pk}/"
    assert (data["@type"], data["name"], data["url"]) == ("Product", "Cast iron teapot", url)
    assert data["image"] == ["http://testserver/static/img/products/teapot.svg"]
    assert data["offers"] == {
        "@type": "Offer",
        "url": url,
        "price": "48.00",
        "priceCurrency": "EUR",
        "availability": "https://schema.org/InStock",
        "itemCondition": "https://schema.org/NewCondition",
    }
    assert "<a litre>" not in html.split("application/ld+json")[1].split("</script>")[0]
    assert canonical(html) == url
    assert meta(html, "property", "og:type") == "product"
    assert meta(html, "property", "og:image") == data["image"][0]
    assert meta(html, "name", "description").startswith("€48.00: Holds &lt;a litre&gt;")


def test_prices_in_other_currencies_have_their_own_digits():
    from store.seo import price_text

    assert [price_text(1234, "jpy"), price_text(1234, "usd"), price_text(1234, "kwd")] == [
        "1234",
        "12.34",
        "1.234",
    ]


def test_availability_follows_reservations_too(client):
    lamp = ProductFactory(name="Lamp", stock=1)
    ReservationFactory(product=lamp, quantity=1)

    (data,) = json_ld(client.get(f"/products/{lamp.pk}/").content.decode())

    assert data["offers"]["availability"] == "https://schema.org/OutOfStock"


@pytest.mark.django_db(transaction=True)
def test_the_cached_product_page_follows_stock_changes(client, settings):
    settings.LIVE_GRID_CACHE = True
    forget_all()  # nothing cached by an earlier test
    kettle = ProductFactory(name="Kettle", stock=2)
    url = f"/products/{kettle.pk}/"
    first = json_ld(client.get(url).content.decode())[0]["offers"]["availability"]
    cached = json_ld(client.get(url).content.decode())[0]["offers"]["availability"]
    viewer = get_broker().subscribe_sync()

    with transaction.atomic():  # as a sale or the admin's stock field changes it
        Product.objects.filter(pk=kettle.pk).update(stock=0)
        live.publish_on_commit([kettle.pk])
    viewer.queue.get(timeout=10)  # the change reached this process's broker
    after = json_ld(client.get(url).content.decode())[0]["offers"]["availability"]

    get_broker().unsubscribe(viewer)
    assert (first, cached, after) == (
        "https://schema.org/InStock",
        "https://schema.org/InStock",
        "https://schema.org/OutOfStock",
    )


# -- every page's meta -------------------------------------------------------------------


def test_each_page_has_its_own_canonical_url_description_and_open_graph(client):
    ProductFactory(name="Skillet", category="Cookware", category_slug="cookware")
    ProductFactory(name="Cup", category="Tableware", category_slug="tableware")
    pages = {
        "/": "http://testserver/",
        "/?sort=price&per_page=24": "http://testserver/?per_page=24",
        "/?utm_source=mail": "http://testserver/",
        "/category/cookware/": "http://testserver/category/cookware/",
        "/category/tableware/?sort=-price": "http://testserver/category/tableware/",
        "/?q=cup&sort=price": "http://testserver/?q=cup",
        "/cart/": "http://testserver/cart/",
        "/accounts/login/?next=/orders/": "http://testserver/accounts/login/",
        "/accounts/signup/": "http://testserver/accounts/signup/",
    }
    seen = {}
    for path in pages:
        response = client.get(path)
        assert response.status_code == HTTPStatus.OK, path
        html = response.content.decode()
        seen[path] = canonical(html)
        assert meta(html, "name", "description"), path
        assert meta(html, "property", "og:url") == canonical(html), path
        assert meta(html, "property", "og:title"), path

    assert seen == pages
    cookware = client.get("/category/cookware/").content.decode()
    assert meta(cookware, "property", "og:title") == "Cookware · Amazin"
    assert "Cookware at Amazin" in meta(cookware, "name", "description")
    assert '<meta name="robots" content="noindex">' in client.get("/?q=cup").content.decode()


@pytest.mark.django_db(transaction=True)
def test_cached_listings_keep_each_urls_own_meta(client, settings):
    settings.LIVE_GRID_CACHE = True
    forget_all()
    ProductFactory(name="Skillet", category="Cookware", category_slug="cookware")
    ProductFactory(name="Cup", category="Tableware", category_slug="tableware")

    pages = [
        client.get(p).content.decode() for p in ("/category/cookware/", "/category/tableware/")
    ]
    again = [
        client.get(p).content.decode() for p in ("/category/cookware/", "/category/tableware/")
    ]

    assert [canonical(html) for html in pages + again] == [
        "http://testserver/category/cookware/",
        "http://testserver/category/tableware/",
    ] * 2


# -- sitemap and robots.txt --------------------------------------------------------------


def locations(xml: bytes) -> list[str]:
    root = ElementTree.fromstring(xml)
    return [element.text or "" for element in root.iter(f"{SITEMAP}loc")]


def test_the_sitemap_lists_every_product_and_category_page_for_sale(client):
    skillet = ProductFactory(name="Skillet", category="Cookware", category_slug="cookware")
    cup = ProductFactory(name="Cup", category="Tableware", category_slug="tableware")
    archived = ProductFactory(name="Old", active=False, category="Attic", category_slug="attic")

    index = client.get("/sitemap.xml")
    sections = locations(index.content)
    urls = [url for section in sections for url in locations(client.get(section).content)]

    assert index.status_code == HTTPStatus.OK
    assert index["Content-Type"].startswith("application/xml")
    assert sections == [
        "http://testserver/sitemap-pages.xml",
        "http://testserver/sitemap-categories.xml",
        "http://testserver/sitemap-products.xml",
    ]
    assert sorted(urls) == sorted(
        [
            "http://testserver/",
            "http://testserver/category/cookware/",
            "http://testserver/category/tableware/",
            f"http://testserver/products/{skillet.pk}/",
            f"http://testserver/products/{cup.pk}/",
        ]
    )
    assert f"/products/{archived.pk}/" not in " ".join(urls)


def test_the_sitemap_uses_the_shops_public_address(client, settings):
    settings.SITE_URL = "https://shop.example.com"
    product = ProductFactory()

    products = locations(client.get("/sitemap-products.xml").content)

    assert products == [f"https://shop.example.com/products/{product.pk}/"]


def test_robots_txt_names_the_sitemap_and_keeps_crawlers_out_of_private_pages(client):
    response = client.get("/robots.txt")

    text = response.content.decode()
    assert response.status_code == HTTPStatus.OK
    assert response["Content-Type"].startswith("text/plain")
    assert "Sitemap: http://testserver/sitemap.xml" in text.splitlines()
    for private in ("/admin/", "/cart/", "/checkout/", "/orders/", "/accounts/"):
        assert f"Disallow: {private}" in text.splitlines()
    assert "Disallow: /\n" not in text
