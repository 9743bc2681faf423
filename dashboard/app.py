"""Streamlit entry point: `streamlit run dashboard/app.py`.

Resolves the published run once per script run, shows it in the sidebar, and hands over to the
page chosen in the navigation. When there is nothing to show (no export yet, store down, a
broken export) it shows what to do instead of a traceback.
"""

import streamlit as st

from dashboard import data, shell

st.set_page_config(page_title="Retail lakehouse", page_icon=":material/storefront:", layout="wide")

# Pages live in views/, not pages/: a folder named pages/ beside the entry point switches on
# Streamlit's legacy multipage mode, which runs a page file without this script (on the first
# run after a server start, and on every AppTest rerun).
page = st.navigation(
    [
        st.Page("views/overview.py", title="Overview", icon=":material/dashboard:", default=True),
        st.Page("views/temporal.py", title="Temporal", icon=":material/timeline:"),
        st.Page("views/clients.py", title="Clients", icon=":material/group:"),
        st.Page("views/products.py", title="Products", icon=":material/inventory_2:"),
        st.Page("views/geography.py", title="Geography", icon=":material/public:"),
        st.Page("views/statistics.py", title="Statistics", icon=":material/query_stats:"),
        st.Page("views/data_quality.py", title="Data quality", icon=":material/verified:"),
    ]
)

try:
    manifest = data.load_manifest()
except data.LakeUnreachableError as error:
    shell.show_unreachable(error)
except data.DashboardDataError as error:
    shell.show_broken_export(error)
else:
    if manifest is None:
        shell.show_no_data()
    else:
        shell.remember_manifest(manifest)
        try:
            shell.show_filters(manifest)
            page.run()
        except data.DashboardDataError as error:
            shell.show_broken_export(error)
        shell.show_run(manifest)  # below the filters in the sidebar
