"""How numbers and times read on the dashboard: one place, so every page shows them alike.

Money is shown in euros with a leading symbol, comma thousands and two decimals (`€1,234.50`,
`-€12.00`). The generated data carries no currency of its own; the symbol is a presentation
choice made here only. Rounding is half away from zero on the exact decimal value, as in gold.
Percent values are already in percent units (`12.5` → `12.50%`), as the `*_pct` columns are.
Missing values read as an em dash.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal

CURRENCY_SYMBOL = "€"
MISSING = "—"

# Plotly hover / tick formats matching the helpers below (d3-format syntax).
PLOTLY_CURRENCY = CURRENCY_SYMBOL + "%{y:,.2f}"
PLOTLY_AXIS_CURRENCY_PREFIX = CURRENCY_SYMBOL


def is_missing(value: object) -> bool:
    """None, or a missing number as pandas hands it over (NaN)."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def round_half_away(value: Decimal | float, decimals: int = 2) -> Decimal:
    """Round like gold does (half away from zero); floats go through their shortest repr."""
    exact = value if isinstance(value, Decimal) else Decimal(str(value))
    return exact.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)


def format_currency(value: Decimal | float | None, decimals: int = 2) -> str:
    if is_missing(value):
        return MISSING
    rounded = round_half_away(value, decimals)
    sign = "-" if rounded < 0 else ""
    return f"{sign}{CURRENCY_SYMBOL}{abs(rounded):,.{decimals}f}"


def format_currency_short(value: Decimal | float | None) -> str:
    """Card-sized money: exact below a million, else in millions (€10.17M) or billions
    (€10.37B)."""
    if is_missing(value):
        return MISSING
    exact = value if isinstance(value, Decimal) else Decimal(str(value))
    if abs(exact) < 1_000_000:
        return format_currency(exact)
    unit, suffix = (Decimal(1_000_000_000), "B") if abs(exact) >= 999_995_000 else (None, "M")
    scaled = round_half_away(exact / (unit or Decimal(1_000_000)), 2)
    sign = "-" if scaled < 0 else ""
    return f"{sign}{CURRENCY_SYMBOL}{abs(scaled):,.2f}{suffix}"


def format_share(value: Decimal | float | None) -> str:
    """A share in percent; a positive share too small to show at two decimals reads `<0.01%`."""
    if not is_missing(value) and 0 < value < Decimal("0.005"):
        return "<0.01%"
    return format_percent(value)


def format_count(value: int | None) -> str:
    return MISSING if is_missing(value) else f"{int(value):,}"


def format_percent(value: Decimal | float | None, decimals: int = 2) -> str:
    if is_missing(value):
        return MISSING
    return f"{round_half_away(value, decimals):,.{decimals}f}%"


def format_change(value: Decimal | float | None) -> str | None:
    """A growth in percent with its sign (`+4.21%`, `-3.00%`); None stays None (no delta)."""
    if is_missing(value):
        return None
    rounded = round_half_away(value)
    return f"{'+' if rounded >= 0 else ''}{rounded:,.2f}%"


def format_date_range(start: date, end: date) -> str:
    """`2025-06-01 – 2025-06-30` (en dash), or one date when both ends are the same day."""
    return start.isoformat() if start == end else f"{start.isoformat()} – {end.isoformat()}"


PERIOD_FORMATS = {"daily": "%a %d %b %Y", "weekly": "week of %d %b %Y", "monthly": "%B %Y"}


def format_period(start: date, grain: str) -> str:
    """A period by its first day: `Mon 03 Jun 2024`, `week of 03 Jun 2024`, `June 2024`."""
    return start.strftime(PERIOD_FORMATS[grain])


def format_timestamp(value: str | None) -> str:
    """An ISO-8601 timestamp as `YYYY-MM-DD HH:MM:SS UTC`; unparsable text is shown as given."""
    if not value:
        return MISSING
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def format_age(value: str | None, now: datetime) -> str:
    """How long ago an ISO-8601 timestamp was: `just now`, `42 min ago`, `3 h 05 min ago`,
    `2 days ago`; unparsable text is shown as given."""
    if not value:
        return MISSING
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    minutes = int((now - moment).total_seconds() // 60)
    if minutes < 1:
        return "just now"
    if minutes < 60:
        return f"{minutes} min ago"
    if minutes < 48 * 60:
        return f"{minutes // 60} h {minutes % 60:02d} min ago"
    return f"{minutes // (24 * 60)} days ago"


# st.column_config number formats for tables: euros (`€1,234.50`), percent units, and counts
# with thousands separators (in the reader's locale).
TABLE_CURRENCY = "euro"
TABLE_PERCENT = "%.2f%%"
TABLE_COUNT = "localized"
