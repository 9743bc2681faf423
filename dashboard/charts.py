"""Plotly figures shared by the pages: built from the small frames `data.py` returns.

Every figure has a title, axis titles with units and hover text; money reads in euros
(`formatting.CURRENCY_SYMBOL`), percentages with a `%` sign.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from dashboard.formatting import CURRENCY_SYMBOL, PLOTLY_CURRENCY

LEGEND_ON_TOP = {"orientation": "h", "yanchor": "bottom", "y": 1.02, "xanchor": "right", "x": 1}
MONEY_AXIS = {"tickprefix": CURRENCY_SYMBOL, "tickformat": ",.0f"}


def _layout(figure: go.Figure, *, title: str, x_label: str, y_label: str, **extra) -> go.Figure:
    figure.update_layout(
        title={"text": title},
        xaxis={"title": {"text": x_label}, **extra.pop("xaxis", {})},
        yaxis={"title": {"text": y_label}, **extra.pop("yaxis", {})},
        legend=LEGEND_ON_TOP,
        margin={"t": 80},
        **extra,
    )
    return figure


def revenue_trend(
    frame: pd.DataFrame,
    *,
    x: str,
    revenue: str,
    averages: dict[str, str] | None = None,
    title: str,
    period_label: str,
    hover_date_format: str = "%a %d %b %Y",
    anomalies: pd.DataFrame | None = None,
) -> go.Figure:
    """Revenue per period as a line, moving averages (column → label) as more lines, and
    anomalous days (`sale_date`, `total_revenue`, `z_score`, `direction`) as markers."""
    figure = go.Figure()
    figure.add_trace(
        go.Scatter(
            x=frame[x],
            y=frame[revenue],
            mode="lines",
            name="Revenue",
            line={"width": 1.5},
            hovertemplate=f"Revenue: {PLOTLY_CURRENCY}<extra></extra>",
        )
    )
    for column, label in (averages or {}).items():
        figure.add_trace(
            go.Scatter(
                x=frame[x],
                y=frame[column],
                mode="lines",
                name=label.capitalize(),
                line={"width": 2.5},
                hovertemplate=f"{label.capitalize()}: {PLOTLY_CURRENCY}<extra></extra>",
            )
        )
    if anomalies is not None and not anomalies.empty:
        figure.add_trace(
            go.Scatter(
                x=anomalies["sale_date"],
                y=anomalies["total_revenue"],
                mode="markers",
                name="Anomaly",
                marker={"size": 11, "symbol": "diamond", "color": "crimson"},
                customdata=anomalies[["z_score", "direction"]],
                hovertemplate=(
                    f"Anomaly ({'%{customdata[1]}'}): {PLOTLY_CURRENCY}, "
                    "z = %{customdata[0]:.2f}<extra></extra>"
                ),
            )
        )
    return _layout(
        figure,
        title=title,
        x_label=period_label,
        y_label=f"Revenue ({CURRENCY_SYMBOL})",
        xaxis={"hoverformat": hover_date_format},
        yaxis={**MONEY_AXIS, "rangemode": "tozero"},
        hovermode="x unified",
    )


def growth_bars(
    frame: pd.DataFrame, *, x: str, growth: str, title: str, period_label: str
) -> go.Figure:
    """Growth in percent vs the previous period; green up, red down."""
    values = frame[growth]
    figure = go.Figure(
        go.Bar(
            x=frame[x],
            y=values,
            name="Growth",
            marker={"color": ["seagreen" if v >= 0 else "indianred" for v in values.fillna(0)]},
            hovertemplate="%{x|%d %b %Y}: %{y:+,.2f}%<extra></extra>",
        )
    )
    return _layout(
        figure,
        title=title,
        x_label=period_label,
        y_label="Growth vs previous period (%)",
        yaxis={"ticksuffix": "%", "tickformat": ",.0f"},
    )


def orders_vs_customers(frame: pd.DataFrame, *, x: str, title: str, period_label: str) -> go.Figure:
    figure = go.Figure()
    for column, name in (("total_orders", "Orders"), ("unique_customers", "Customers")):
        figure.add_trace(
            go.Scatter(
                x=frame[x],
                y=frame[column],
                mode="lines",
                name=name,
                hovertemplate=f"{name}: %{{y:,}}<extra></extra>",
            )
        )
    return _layout(
        figure,
        title=title,
        x_label=period_label,
        y_label="Count (orders, customers)",
        yaxis={"rangemode": "tozero"},
        hovermode="x unified",
    )


def bars(
    frame: pd.DataFrame,
    *,
    category: str,
    value: str,
    title: str,
    category_label: str,
    value_label: str,
    money: bool = False,
    percent: bool = False,
    horizontal: bool = False,
) -> go.Figure:
    """One bar per category (in the frame's order)."""
    if money:
        number = PLOTLY_CURRENCY.replace("y", "x") if horizontal else PLOTLY_CURRENCY
        axis = MONEY_AXIS
    else:
        number = "%{x:,.2f}" if horizontal else "%{y:,.2f}"
        if not percent:
            number = number.replace(",.2f", ",")
        axis = {"ticksuffix": "%"} if percent else {}
    if percent:
        number += "%"
    label = "%{y}" if horizontal else "%{x}"
    figure = go.Figure(
        go.Bar(
            x=frame[value] if horizontal else frame[category],
            y=frame[category] if horizontal else frame[value],
            orientation="h" if horizontal else "v",
            hovertemplate=f"{label}: {number}<extra></extra>",
        )
    )
    if horizontal:
        return _layout(
            figure,
            title=title,
            x_label=value_label,
            y_label=category_label,
            xaxis=axis,
            yaxis={"autorange": "reversed"},
        )
    return _layout(figure, title=title, x_label=category_label, y_label=value_label, yaxis=axis)


def rfm_segments(frame: pd.DataFrame) -> go.Figure:
    """Clients per RFM segment (`rfm_segment`, `clients`), one horizontal bar each."""
    return bars(
        frame,
        category="rfm_segment",
        value="clients",
        title="Clients per RFM segment",
        category_label="RFM segment",
        value_label="Clients (count)",
        horizontal=True,
    )


def histogram(
    frame: pd.DataFrame,
    *,
    count: str,
    title: str,
    value_label: str,
    count_label: str,
    money: bool = False,
    whole_numbers: bool = False,
) -> go.Figure:
    """Bins computed in DuckDB (`bin_start`, `bin_end`, a count) drawn as adjoining bars.

    Bins of whole numbers hold start … end − 1: their bars are centred on the values."""
    if whole_numbers:
        first, last = frame["bin_start"], frame["bin_end"] - 1
        left, right = first - 0.5, last + 0.5
        ranges = [
            f"{a:,.0f}" if a == b else f"{a:,.0f}–{b:,.0f}"
            for a, b in zip(first, last, strict=True)
        ]
    else:
        left, right = frame["bin_start"], frame["bin_end"]
        prefix = CURRENCY_SYMBOL if money else ""
        ranges = [f"{prefix}{a:,.2f} – {prefix}{b:,.2f}" for a, b in zip(left, right, strict=True)]
    figure = go.Figure(
        go.Bar(
            x=(left + right) / 2,
            y=frame[count],
            width=right - left,
            customdata=ranges,
            hovertemplate=f"%{{customdata}}: %{{y:,}} {count_label.lower()}<extra></extra>",
            marker={"line": {"width": 0.5, "color": "white"}},
        )
    )
    return _layout(
        figure,
        title=title,
        x_label=value_label,
        y_label=count_label,
        xaxis=MONEY_AXIS if money else {},
        bargap=0,
    )


def heatmap(
    matrix: pd.DataFrame,
    *,
    title: str,
    x_label: str,
    y_label: str,
    value_label: str,
    value_format: str = ",.0f",
    value_suffix: str = "",
    color_max: float | None = None,
) -> go.Figure:
    """A matrix (index → rows, columns → columns) as a heat map with the values written in;
    missing cells stay blank. Tall matrices get taller figures, so every row stays legible.
    `color_max` caps the colour scale (cells above it take the darkest colour)."""
    values = matrix.to_numpy(dtype=float)
    capped = color_max is not None and np.isfinite(color_max)  # NaN: nothing to cap on
    text = [
        ["" if np.isnan(v) else f"{v:{value_format}}{value_suffix}" for v in row] for row in values
    ]
    figure = go.Figure(
        go.Heatmap(
            z=values,
            x=[str(c) for c in matrix.columns],
            y=[str(i) for i in matrix.index],
            colorscale="Blues",
            zmax=color_max if capped else None,
            zmin=0 if capped else None,
            colorbar={"title": {"text": value_label}},
            text=text,
            texttemplate="%{text}",
            textfont={"size": 10},
            xgap=1,
            ygap=1,
            hovertemplate=(
                f"{y_label}: %{{y}}<br>{x_label}: %{{x}}<br>"
                f"{value_label}: %{{z:{value_format}}}{value_suffix}<extra></extra>"
            ),
        )
    )
    return _layout(
        figure,
        title=title,
        x_label=x_label,
        y_label=y_label,
        xaxis={"type": "category"},
        yaxis={"type": "category", "autorange": "reversed"},
        height=max(450, 160 + 24 * len(matrix.index)),
    )


def box_from_statistics(
    statistics: pd.Series, *, name: str, title: str, value_label: str, money: bool = False
) -> go.Figure:
    """A box plot drawn from published percentiles: box p25–p75, median, whiskers min–max."""
    figure = go.Figure(
        go.Box(
            name=name,
            x=[name],
            q1=[statistics["p25"]],
            median=[statistics["median"]],
            q3=[statistics["p75"]],
            lowerfence=[statistics["min"]],
            upperfence=[statistics["max"]],
            mean=[statistics["mean"]],
            boxmean=True,
            hoverinfo="y",
        )
    )
    return _layout(
        figure,
        title=title,
        x_label="",
        y_label=value_label,
        yaxis=MONEY_AXIS if money else {},
    )


def price_ranges(frame: pd.DataFrame, *, title: str) -> go.Figure:
    """Per product, the unit price range (min to max) as a bar, and the average as a marker."""
    figure = go.Figure()
    figure.add_trace(
        go.Bar(
            x=frame["product"],
            y=frame["max_price"] - frame["min_price"],
            base=frame["min_price"],
            name="Min – max",
            customdata=frame[["min_price", "max_price"]],
            hovertemplate=(
                f"%{{x}}: {CURRENCY_SYMBOL}%{{customdata[0]:,.2f}} – "
                f"{CURRENCY_SYMBOL}%{{customdata[1]:,.2f}}<extra></extra>"
            ),
        )
    )
    figure.add_trace(
        go.Scatter(
            x=frame["product"],
            y=frame["avg_price"],
            mode="markers",
            name="Average",
            marker={
                "size": 14,
                "symbol": "line-ew-open",
                "line": {"width": 3, "color": "#1a1a1a"},
            },
            hovertemplate=f"%{{x}} average: {PLOTLY_CURRENCY}<extra></extra>",
        )
    )
    return _layout(
        figure,
        title=title,
        x_label="Product",
        y_label=f"Unit price ({CURRENCY_SYMBOL})",
        yaxis={"tickprefix": CURRENCY_SYMBOL, "tickformat": ",.2f"},
    )


def recent_days(frame: pd.DataFrame, *, title: str, previous_label: str) -> go.Figure:
    """Daily revenue of a window as bars, the same days of the previous window as a line."""
    figure = go.Figure()
    figure.add_trace(
        go.Bar(
            x=frame["sale_date"],
            y=frame["total_revenue"],
            name="Revenue",
            customdata=frame[["total_orders"]],
            hovertemplate=(
                f"Revenue: {PLOTLY_CURRENCY} (%{{customdata[0]:,}} orders)<extra></extra>"
            ),
        )
    )
    figure.add_trace(
        go.Scatter(
            x=frame["sale_date"],
            y=frame["previous_revenue"],
            mode="lines",
            name=previous_label,
            line={"dash": "dot", "width": 2, "color": "gray"},
            customdata=frame[["previous_date", "previous_orders"]],
            hovertemplate=(
                f"{previous_label} (%{{customdata[0]|%d %b}}): {PLOTLY_CURRENCY} "
                "(%{customdata[1]:,} orders)<extra></extra>"
            ),
        )
    )
    return _layout(
        figure,
        title=title,
        x_label="Sale date",
        y_label=f"Revenue ({CURRENCY_SYMBOL})",
        xaxis={"hoverformat": "%a %d %b %Y"},
        yaxis={**MONEY_AXIS, "rangemode": "tozero"},
        hovermode="x unified",
    )


def donut(frame: pd.DataFrame, *, label: str, value: str, title: str, unit: str) -> go.Figure:
    """Shares of a whole (a few parts) as a ring, with the count and share on hover."""
    figure = go.Figure(
        go.Pie(
            labels=frame[label],
            values=frame[value],
            hole=0.55,
            sort=False,
            textinfo="percent",
            textposition="inside",
            hovertemplate=f"%{{label}}: %{{value:,}} {unit} (%{{percent}})<extra></extra>",
        )
    )
    figure.update_layout(title={"text": title}, legend=LEGEND_ON_TOP, margin={"t": 80})
    return figure


def reconciliation(frame: pd.DataFrame, *, title: str) -> go.Figure:
    """Per entity, its bronze rows split into silver and quarantined rows (stacked bars)."""
    figure = go.Figure()
    for column, name, color in (
        ("silver_rows", "Silver", "seagreen"),
        ("quarantined_rows", "Quarantined", "indianred"),
    ):
        figure.add_trace(
            go.Bar(
                x=frame[column],
                y=frame["entity"],
                orientation="h",
                name=name,
                marker={"color": color},
                customdata=frame[["bronze_rows"]],
                hovertemplate=(
                    f"%{{y}}: %{{x:,}} {name.lower()} rows of %{{customdata[0]:,}} in bronze"
                    "<extra></extra>"
                ),
            )
        )
    return _layout(
        figure,
        title=title,
        x_label="Rows (count)",
        y_label="Entity",
        barmode="stack",
        height=260,
    )
