"""The demo catalog `seed_demo` creates in Stripe: kitchen goods, plus the members' pass."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DemoProduct:
    slug: str
    name: str
    description: str
    unit_amount: int  # USD cents
    stock: int
    category: str = ""  # Stripe `metadata.category`: the grid's /category/<slug>/ pages


PRODUCTS = [
    DemoProduct(
        "teapot",
        "Ceramic Teapot",
        "A 1.2 l stoneware teapot with a loose-leaf infuser.",
        4800,
        12,
        category="Tea & Coffee",
    ),
    DemoProduct(
        "espresso-cups",
        "Espresso Cups",
        "Two double-walled glass cups, 80 ml each.",
        2200,
        25,
        category="Tea & Coffee",
    ),
    DemoProduct(
        "apron",
        "Linen Apron",
        "Stonewashed linen, adjustable neck strap, two pockets.",
        3500,
        8,
        category="Linen",
    ),
    DemoProduct(
        "skillet",
        "Cast Iron Skillet",
        "A 26 cm pre-seasoned skillet that will outlive you.",
        6400,
        5,
        category="Cookware",
    ),
    DemoProduct(
        "board",
        "Bamboo Cutting Board",
        "Large end-grain board with a juice groove.",
        3900,
        15,
        category="Cookware",
    ),
    DemoProduct(
        "knife",
        "Chef's Knife",
        "20 cm high-carbon steel blade, pakkawood handle.",
        8900,
        3,
        category="Cookware",
    ),
    DemoProduct(
        "kettle",
        "Pour-over Kettle",
        "Gooseneck kettle with a built-in thermometer.",
        5600,
        10,
        category="Tea & Coffee",
    ),
    DemoProduct(
        "jars",
        "Glass Storage Jars",
        "Set of four airtight jars with oak lids.",
        2900,
        30,
        category="Storage",
    ),
    DemoProduct(
        "spoons",
        "Olive Wood Spoons",
        "Three hand-carved spoons for stirring and serving.",
        2400,
        20,
        category="Tableware",
    ),
    DemoProduct(
        "bowl",
        "Stoneware Bowl",
        "A speckled glaze bowl for ramen, salads and more.",
        1900,
        40,
        category="Tableware",
    ),
    DemoProduct(
        "measuring-cups",
        "Copper Measuring Cups",
        "Four nesting cups from 1/4 to 1 cup.",
        3200,
        2,
        category="Cookware",
    ),
    DemoProduct(
        "planter",
        "Herb Planter",
        "Self-watering planter for three kitchen herbs.",
        2700,
        0,
        category="Garden",
    ),
]

ACCESS_PASS = DemoProduct(
    "members-pass",
    "Amazin Members' Pass",
    "One payment, lifetime access to the members' area.",
    2900,
    0,
)
