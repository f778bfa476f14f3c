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


PRODUCTS = [
    DemoProduct(
        "teapot", "Ceramic Teapot", "A 1.2 l stoneware teapot with a loose-leaf infuser.", 4800, 12
    ),
    DemoProduct(
        "espresso-cups", "Espresso Cups", "Two double-walled glass cups, 80 ml each.", 2200, 25
    ),
    DemoProduct(
        "apron", "Linen Apron", "Stonewashed linen, adjustable neck strap, two pockets.", 3500, 8
    ),
    DemoProduct(
        "skillet",
        "Cast Iron Skillet",
        "A 26 cm pre-seasoned skillet that will outlive you.",
        6400,
        5,
    ),
    DemoProduct(
        "board", "Bamboo Cutting Board", "Large end-grain board with a juice groove.", 3900, 15
    ),
    DemoProduct(
        "knife", "Chef's Knife", "20 cm high-carbon steel blade, pakkawood handle.", 8900, 3
    ),
    DemoProduct(
        "kettle", "Pour-over Kettle", "Gooseneck kettle with a built-in thermometer.", 5600, 10
    ),
    DemoProduct("jars", "Glass Storage Jars", "Set of four airtight jars with oak lids.", 2900, 30),
    DemoProduct(
        "spoons",
        "Olive Wood Spoons",
        "Three hand-carved spoons for stirring and serving.",
        2400,
        20,
    ),
    DemoProduct(
        "bowl", "Stoneware Bowl", "A speckled glaze bowl for ramen, salads and more.", 1900, 40
    ),
    DemoProduct(
        "measuring-cups", "Copper Measuring Cups", "Four nesting cups from 1/4 to 1 cup.", 3200, 2
    ),
    DemoProduct(
        "planter", "Herb Planter", "Self-watering planter for three kitchen herbs.", 2700, 0
    ),
]

ACCESS_PASS = DemoProduct(
    "members-pass",
    "Amazin Members' Pass",
    "One payment, lifetime access to the members' area.",
    2900,
    0,
)
