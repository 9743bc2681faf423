"""The app's frame around the pages: the run in the sidebar, and the screens shown instead of
a page when there is nothing to show."""

from collections.abc import Callable
from datetime import date

import pandas as pd
import streamlit as st

from dashboard import data
from dashboard.formatting import (
    MISSING,
    format_change,
    format_count,
    format_currency,
    format_currency_short,
    format_timestamp,
)

# Where app.py leaves the manifest of the run being displayed, for the pages to read.
MANIFEST_STATE_KEY = "app_manifest"
# Where app.py leaves the sidebar filters of this script run.
FILTERS_STATE_KEY = "app_filters"
# Keys of the sidebar filter widgets (shared by every page).
DATES_KEY = "filter_dates"
COUNTRIES_KEY = "filter_countries"
PRODUCTS_KEY = "filter_products"
# Where `lakehouse docs` serves the dbt docs site (its default port).
DOCS_URL = "http://127.0.0.1:8080"
UNFILTERED_NOTE = (
    "Sidebar filters do not apply here: this figure comes from a pre-aggregated report."
)


def remember_manifest(manifest: data.Manifest) -> None:
    st.session_state[MANIFEST_STATE_KEY] = manifest


def current_manifest() -> data.Manifest:
    """The run app.py resolved for this script run; every page starts with this."""
    manifest = st.session_state.get(MANIFEST_STATE_KEY)
    if manifest is None:
        raise RuntimeError("pages run through the entry point: streamlit run dashboard/app.py")
    return manifest


def current_filters() -> data.SalesFilter:
    """The sidebar filters of this script run (no filter when the sidebar has not run)."""
    return st.session_state.get(FILTERS_STATE_KEY, data.NO_FILTER)


def show_filters(manifest: data.Manifest) -> data.SalesFilter:
    """Date range, countries and products in the sidebar; remembered for the pages.

    A date range covering every sale counts as no date filter, and every country (or every
    product) chosen as no filter on countries (products): they select the same sales, so with
    nothing chosen — or everything — every figure reads its gold model as published.
    """
    choices = data.filter_choices(manifest)
    filters = data.NO_FILTER
    with st.sidebar:
        st.subheader("Filters")
        start = end = None
        if choices.first_date is not None:
            bounds = (choices.first_date, choices.last_date)
            chosen = st.session_state.get(DATES_KEY)
            if chosen is not None and not all(bounds[0] <= d <= bounds[1] for d in chosen):
                del st.session_state[DATES_KEY]  # a new run with other dates: start afresh
            picked = st.date_input(
                "Purchase dates",
                value=bounds,
                min_value=bounds[0],
                max_value=bounds[1],
                key=DATES_KEY,
                format="YYYY-MM-DD",
            )
            start, end = _date_range(picked, bounds)
        countries = _multiselect("Countries", choices.countries, COUNTRIES_KEY)
        products = _multiselect("Products", choices.products, PRODUCTS_KEY)
        filters = data.SalesFilter(start, end, countries, products)
        if filters.is_set:
            st.caption("Figures built on sales are recomputed from `fct_sales` for this filter.")
    st.session_state[FILTERS_STATE_KEY] = filters
    return filters


def _date_range(picked: object, bounds: tuple[date, date]) -> tuple[date | None, date | None]:
    """The chosen range, or (None, None) when it covers every sale (no date filter)."""
    values = tuple(picked) if isinstance(picked, (tuple, list)) else (picked,)
    start = values[0] if values else bounds[0]
    end = values[1] if len(values) > 1 else bounds[1]  # half-picked range: up to the last sale
    if (start, end) == bounds:
        return None, None
    return (start if start != bounds[0] else None), (end if end != bounds[1] else None)


def _multiselect(label: str, options: tuple[str, ...], key: str) -> tuple[str, ...]:
    chosen = st.session_state.get(key)
    if chosen is not None and not set(chosen) <= set(options):
        st.session_state[key] = [value for value in chosen if value in options]
    picked = tuple(st.multiselect(label, options, key=key, placeholder="All"))
    return () if set(picked) == set(options) else picked  # everything chosen: no filter


def note_unfiltered(filters: data.SalesFilter) -> None:
    """Under a figure from a pre-aggregated report: say that the filters do not apply."""
    if filters.is_set:
        st.caption(UNFILTERED_NOTE)


def share_label(filters: data.SalesFilter) -> str:
    """What a market share is a share of: every sale, or the sales the filters keep (one
    product chosen is then 100 %)."""
    return "Share of the filtered revenue" if filters.is_set else "Share of revenue"


def sales_cards(
    totals: data.SalesTotals,
    compared: data.ComparedTotals | None,
    comparison: data.Comparison | None,
    *,
    label_suffix: str = "",
) -> None:
    """Revenue, orders, clients and average order value, each with its change in percent
    between the windows of `comparison` (none when the earlier window has no sales or starts
    before the first sale)."""
    # label, value shown, the SalesTotals attribute the change is computed on, meaning
    cards = (
        (
            "Total revenue",
            format_currency_short(totals.revenue),
            "revenue",
            f"Sum of order totals: {format_currency(totals.revenue)}.",
        ),
        ("Orders", format_count(totals.orders), "orders", "Purchase lines (one per order)."),
        (
            "Clients",
            format_count(totals.clients),
            "clients",
            "Distinct clients with at least one order.",
        ),
        (
            "Average order value",
            format_currency(totals.avg_order_value),
            "exact_avg_order_value",
            "Revenue ÷ orders, rounded once.",
        ),
    )
    partial = comparison is not None and comparison.partial_base
    for column, (label, value, measure, meaning) in zip(st.columns(len(cards)), cards, strict=True):
        change = None
        if compared is not None and not partial:
            change = data.change_pct(
                getattr(compared.current, measure), getattr(compared.previous, measure)
            )
        why = " — no change: that period starts before the first sale" if partial else ""
        column.metric(
            label + label_suffix,
            value,
            delta=format_change(change),
            help=meaning + (f"  \nChange: {comparison.describe()}{why}." if comparison else ""),
            border=True,
        )


def show_table(
    frame: pd.DataFrame,
    *,
    key: str,
    file_name: str,
    column_config: dict | None = None,
    height: int | str = "auto",
    csv: Callable[[], bytes] | None = None,
) -> None:
    """A table and a button to download it as CSV (the raw, unformatted values).

    `csv` makes the file instead, for a table that shows only the first rows of a long list."""
    st.dataframe(
        frame,
        hide_index=True,
        column_config=column_config,
        width="stretch",
        height=height,
        placeholder=MISSING,
    )
    st.download_button(
        "Download CSV" if csv is None else "Download the full list (CSV)",
        csv or (lambda: frame.to_csv(index=False).encode()),
        file_name=f"{file_name}.csv",
        mime="text/csv",
        key=f"{key}_download",
        icon=":material/download:",
        on_click="ignore",  # the file is made on click, not at every rerun
    )


def show_run(manifest: data.Manifest) -> None:
    with st.sidebar:
        st.subheader("Run displayed")
        st.markdown(
            f"**Run id**  \n`{manifest.run_id}`  \n"
            f"**As-of date**  \n{manifest.as_of_date}  \n"
            f"**Published at**  \n{format_timestamp(manifest.published_at)}"
        )
        st.caption(f"Read from `{data.lake_location()}`")
        st.subheader("Lineage")
        st.markdown(
            f"[dbt docs: lineage graph]({DOCS_URL}) — served by `lakehouse docs` (`make docs`)."
        )
        if manifest.has_docs:
            st.download_button(
                "dbt docs of this run",
                lambda: data.docs_page(manifest),
                file_name=f"dbt-docs-{manifest.run_id}.html",
                mime="text/html",
                on_click="ignore",
                icon=":material/account_tree:",
                key="sidebar_docs_download",
                help="The lineage site published with the run: one self-contained HTML page.",
            )


def show_no_data() -> None:
    st.title("Retail lakehouse")
    st.info(
        "No data yet — run `make demo` (or `lakehouse run`) to build and publish the first "
        "export, then reload this page.",
        icon=":material/hourglass_empty:",
    )
    st.caption(f"The dashboard looks for `latest.json` in `{data.lake_location()}`.")


def show_unreachable(error: data.LakeUnreachableError) -> None:
    st.title("Retail lakehouse")
    st.error(
        f"Cannot use the object store at **{error.endpoint}**.",
        icon=":material/cloud_off:",
    )
    st.markdown(
        "- Start the embedded store with `lakehouse objectstore start` (or `make demo`), "
        "or the MinIO stack with `docker compose up -d`;\n"
        "- or point `S3_ENDPOINT` (and `S3_ACCESS_KEY_ID` / `S3_SECRET_ACCESS_KEY`) at a "
        "running store in `.env`;\n"
        "- or set `LAKE_DIR` to read a lake from local folders.\n\n"
        "Then reload this page."
    )
    with st.expander("Details"):
        st.code(error.detail, language=None)


def show_broken_export(error: data.DashboardDataError) -> None:
    st.error(str(error), icon=":material/error:")
