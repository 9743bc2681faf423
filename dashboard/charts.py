"""Plotly figures shared by the pages: built from the small frames `data.py` returns."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from dashboard.formatting import CURRENCY_SYMBOL, PLOTLY_CURRENCY


def revenue_trend(
    frame: pd.DataFrame,
    *,
    x: str,
    revenue: str,
    average: str | None,
    title: str,
    period_label: str,
    average_label: str = "7-day moving average",
    hover_date_format: str = "%a %d %b %Y",
) -> go.Figure:
    """Revenue per period as a line, with an optional moving average as a second line."""
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
    if average is not None:
        figure.add_trace(
            go.Scatter(
                x=frame[x],
                y=frame[average],
                mode="lines",
                name=average_label.capitalize(),
                line={"width": 2.5},
                hovertemplate=f"{average_label.capitalize()}: {PLOTLY_CURRENCY}<extra></extra>",
            )
        )
    figure.update_layout(
        title={"text": title},
        xaxis={"title": {"text": period_label}, "hoverformat": hover_date_format},
        yaxis={
            "title": {"text": f"Revenue ({CURRENCY_SYMBOL})"},
            "tickprefix": CURRENCY_SYMBOL,
            "tickformat": ",.0f",
            "rangemode": "tozero",
        },
        hovermode="x unified",
        legend={
            "orientation": "h",
            "yanchor": "bottom",
            "y": 1.02,
            "xanchor": "right",
            "x": 1,
        },
        margin={"t": 80},
    )
    return figure
