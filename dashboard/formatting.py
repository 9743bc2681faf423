"""How numbers and times read on the dashboard: one place, so every page shows them alike.

Money is shown in euros with a leading symbol, comma thousands and two decimals (`€1,234.50`,
`-€12.00`). The generated data carries no currency of its own; the symbol is a presentation
choice made here only. Rounding is half away from zero on the exact decimal value, as in gold.
Percent values are already in percent units (`12.5` → `12.50%`), as the `*_pct` columns are.
Missing values read as an em dash.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal

CURRENCY_SYMBOL = "€"
MISSING = "—"

# Plotly hover / tick formats matching the helpers below (d3-format syntax).
PLOTLY_CURRENCY = CURRENCY_SYMBOL + "%{y:,.2f}"
PLOTLY_AXIS_CURRENCY_PREFIX = CURRENCY_SYMBOL


def round_half_away(value: Decimal | float, decimals: int = 2) -> Decimal:
    """Round like gold does (half away from zero); floats go through their shortest repr."""
    exact = value if isinstance(value, Decimal) else Decimal(str(value))
    return exact.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)


def format_currency(value: Decimal | float | None, decimals: int = 2) -> str:
    if value is None:
        return MISSING
    rounded = round_half_away(value, decimals)
    sign = "-" if rounded < 0 else ""
    return f"{sign}{CURRENCY_SYMBOL}{abs(rounded):,.{decimals}f}"


def format_currency_short(value: Decimal | float | None) -> str:
    """Card-sized money: exact below a million, else in millions (€10.17M)."""
    if value is None:
        return MISSING
    exact = value if isinstance(value, Decimal) else Decimal(str(value))
    if abs(exact) < 1_000_000:
        return format_currency(exact)
    millions = round_half_away(exact / Decimal(1_000_000), 2)
    sign = "-" if millions < 0 else ""
    return f"{sign}{CURRENCY_SYMBOL}{abs(millions):,.2f}M"


def format_count(value: int | None) -> str:
    return MISSING if value is None else f"{int(value):,}"


def format_percent(value: Decimal | float | None, decimals: int = 2) -> str:
    if value is None:
        return MISSING
    return f"{round_half_away(value, decimals):,.{decimals}f}%"


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


# st.column_config number formats for tables: euros (`€1,234.50`) and percent units.
TABLE_CURRENCY = "euro"
TABLE_PERCENT = "%.2f%%"
