"""The app's frame around the pages: the run in the sidebar, and the screens shown instead of
a page when there is nothing to show."""

import streamlit as st

from dashboard import data
from dashboard.formatting import format_timestamp

# Where app.py leaves the manifest of the run being displayed, for the pages to read.
MANIFEST_STATE_KEY = "app_manifest"


def remember_manifest(manifest: data.Manifest) -> None:
    st.session_state[MANIFEST_STATE_KEY] = manifest


def current_manifest() -> data.Manifest:
    """The run app.py resolved for this script run; every page starts with this."""
    manifest = st.session_state.get(MANIFEST_STATE_KEY)
    if manifest is None:
        raise RuntimeError("pages run through the entry point: streamlit run dashboard/app.py")
    return manifest


def show_run(manifest: data.Manifest) -> None:
    with st.sidebar:
        st.subheader("Run displayed")
        st.markdown(
            f"**Run id**  \n`{manifest.run_id}`  \n"
            f"**As-of date**  \n{manifest.as_of_date}  \n"
            f"**Published at**  \n{format_timestamp(manifest.published_at)}"
        )
        st.caption(f"Read from `{data.lake_location()}`")


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
