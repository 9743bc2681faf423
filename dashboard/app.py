"""Streamlit entry point: `streamlit run dashboard/app.py`.

Resolves the published run once per script run, shows it in the sidebar, and hands over to the
page chosen in the navigation. When there is nothing to show (no export yet, store down, a
broken export) it shows what to do instead of a traceback.
"""

import streamlit as st

from dashboard import data
from dashboard.formatting import format_timestamp

st.set_page_config(
    page_title="Retail lakehouse", page_icon=":material/storefront:", layout="wide"
)

# Always declared, even on the error screens: without st.navigation Streamlit would fall back
# to listing dashboard/pages/ itself and run a page without this entry point.
page = st.navigation(
    [
        st.Page(
            "pages/overview.py",
            title="Overview",
            icon=":material/dashboard:",
            default=True,
        )
    ]
)


def show_run(manifest: data.Manifest) -> None:
    with st.sidebar:
        st.subheader("Run displayed")
        st.markdown(
            f"**Run id**  \n`{manifest.run_id}`  \n"
            f"**As-of date**  \n{manifest.as_of_date}  \n"
            f"**Published at**  \n{format_timestamp(manifest.published_at)}"
        )
        st.caption(f"Read from `{manifest.location}`")


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


try:
    manifest = data.load_manifest()
except data.LakeUnreachableError as error:
    show_unreachable(error)
except data.DashboardDataError as error:
    show_broken_export(error)
else:
    if manifest is None:
        show_no_data()
    else:
        st.session_state[data.MANIFEST_STATE_KEY] = manifest
        show_run(manifest)
        try:
            page.run()
        except data.DashboardDataError as error:
            show_broken_export(error)
