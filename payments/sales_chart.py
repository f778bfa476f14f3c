"""The staff home's chart of daily sales, drawn on the server as SVG (no script, no CDN).

The geometry is computed here; `admin/includes/_sales_chart.html` draws it with a title and
a description (its accessible name), and the same figures follow as a table.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.html import format_html_join
from django.utils.safestring import SafeString

from payments.staff_home import Sales
from store.money import format_money, minor_unit_digits

WIDTH = 640
HEIGHT = 220
LEFT = 84  # room for the axis labels (larger on a phone: static/css/admin.css)
RIGHT = 8
TOP = 12
BOTTOM = 28  # room for the day labels
GAP = 2


# Coordinates are text, written once here: the template prints them as they are (a float
# in a template goes through number localisation, 400 times a page).


def _n(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


@dataclass(frozen=True)
class Bar:
    x: str
    y: str
    width: str
    height: str
    label: str  # "3 Dec: $120.00"


@dataclass(frozen=True)
class Tick:
    y: str
    label: str


@dataclass(frozen=True)
class DayLabel:
    x: str
    label: str


@dataclass(frozen=True)
class Chart:
    currency: str
    title: str
    description: str
    width: int
    height: int
    plot_left: int
    plot_right: int
    label_x: int  # where the axis labels end
    label_y: int  # the day labels' baseline
    bars: list[Bar]
    ticks: list[Tick]
    days: list[DayLabel]
    rows: list[tuple[str, str, str]]  # (day, net, orders), oldest first

    # The repeated parts, written here in one pass rather than by the template's loops (a
    # 30-day chart and its table are 300 template variables: a third of the page's time).
    @property
    def bars_svg(self) -> SafeString:
        return format_html_join(
            "",
            '<rect class="chart-bar" x="{}" y="{}" width="{}" height="{}"><title>{}</title></rect>',
            ((b.x, b.y, b.width, b.height, b.label) for b in self.bars),
        )

    @property
    def rows_html(self) -> SafeString:
        return format_html_join(
            "", '<tr><th scope="row">{}</th><td>{}</td><td>{}</td></tr>', self.rows
        )


def nice_ceiling(value: int, currency: str) -> int:
    """The axis' top in minor units: 1, 2 or 5 times a power of ten major units, >= value."""
    step: int = 10 ** minor_unit_digits(currency.upper())
    while True:
        for factor in (1, 2, 5):
            if step * factor >= value:
                return step * factor
        step *= 10


def chart_build(sales: Sales) -> Chart:
    currency = sales.currency
    nets = [max(figures.net, 0) for _, figures in sales.days]
    top = nice_ceiling(max(nets, default=0) or 1, currency)
    plot_width = WIDTH - LEFT - RIGHT
    plot_height = HEIGHT - TOP - BOTTOM
    baseline = TOP + plot_height
    slot = plot_width / max(len(nets), 1)
    bars = []
    for n, ((day, figures), net) in enumerate(zip(sales.days, nets, strict=True)):
        height = plot_height * net / top
        bars.append(
            Bar(
                x=_n(LEFT + n * slot + GAP / 2),
                y=_n(baseline - height),
                width=_n(slot - GAP),
                height=_n(height),
                label=f"{day:%-d %b}: {format_money(figures.net, currency)}",
            )
        )
    ticks = [
        Tick(
            y=_n(baseline - plot_height * part / 2),
            label=format_money(top * part // 2, currency),
        )
        for part in (0, 1, 2)
    ]
    final = len(sales.days) - 1
    days = [  # today, and every week back from it
        DayLabel(x=_n(LEFT + n * slot + slot / 2), label=f"{day:%-d %b}")
        for n, (day, _) in enumerate(sales.days)
        if (final - n) % 7 == 0
    ]
    total = sum(figures.net for _, figures in sales.days)
    best_day, best = max(sales.days, key=lambda item: item[1].net, default=(None, None))
    first, last = sales.days[0][0], sales.days[-1][0]
    code = currency.upper()
    description = (
        f"Net sales in {code} each day from {first:%-d %B} to {last:%-d %B %Y}: "
        f"{format_money(total, currency)} in all"
    )
    if best_day is not None and best is not None and best.net > 0:
        description += f"; the best day was {best_day:%-d %B}, {format_money(best.net, currency)}"
    return Chart(
        currency=currency,
        title=f"Daily sales, last {len(sales.days)} days ({code})",
        description=description + ".",
        width=WIDTH,
        height=HEIGHT,
        plot_left=LEFT,
        plot_right=WIDTH - RIGHT,
        label_x=LEFT - 6,
        label_y=HEIGHT - 8,
        bars=bars,
        ticks=ticks,
        days=days,
        rows=[
            (f"{day:%a %-d %b}", format_money(figures.net, currency), str(figures.orders))
            for day, figures in sales.days
        ],
    )
