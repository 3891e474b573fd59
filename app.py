"""The dashboard frame: page config, shared sidebar, and navigation over pages/."""

import streamlit as st

from analytics import config
from pages.common import current_release, ensure_release, escape_markdown, release_picker

st.set_page_config(
    page_title="Maine SLDS outcomes, privacy-protected",
    page_icon=str(config.REPO_ROOT / ".streamlit" / "favicon.png"),
    layout="wide",
)

families = st.Page("pages/families.py", title="For families", icon=":material/family_restroom:", url_path="families")
suppression = st.Page(
    "pages/suppression.py", title="Noise instead of suppression", icon=":material/compare:", url_path="suppression"
)
navigation = st.navigation(
    {
        "Outcomes": [
            st.Page("pages/overview.py", title="Overview", icon=":material/home:", default=True),
            st.Page(
                "pages/district_profile.py",
                title="District profile",
                icon=":material/location_city:",
                url_path="district",
            ),
            st.Page("pages/schools.py", title="School effectiveness", icon=":material/school:", url_path="schools"),
            st.Page("pages/workforce.py", title="Workforce outcomes", icon=":material/work:", url_path="workforce"),
            st.Page(
                "pages/ssn_collection.py",
                title="SSN collection",
                icon=":material/fact_check:",
                url_path="ssn-collection",
            ),
        ],
        "Reports": [
            st.Page(
                "pages/grant_report.py",
                title="Grant report package",
                icon=":material/description:",
                url_path="grant-report",
            ),
        ],
        "Sign-in: research, budgets": [
            st.Page("pages/table_builder.py", title="Table builder", icon=":material/table_view:", url_path="builder"),
            st.Page(
                "pages/steward.py",
                title="Budgets and ledger",
                icon=":material/admin_panel_settings:",
                url_path="steward",
            ),
        ],
        "About the data": [
            families,
            suppression,
            st.Page(
                "pages/privacy_methods.py", title="Privacy and methods", icon=":material/shield:", url_path="privacy"
            ),
            st.Page(
                "pages/data_contract.py", title="Data contract", icon=":material/table_chart:", url_path="data-contract"
            ),
        ],
    }
)
ensure_release()
st.sidebar.page_link(families, label="Families: your child's data", icon=":material/family_restroom:")
release_picker()
description = str(current_release().manifest["dataset_description"]).rstrip(". ")
st.sidebar.caption(f"Data: {escape_markdown(description)}. Every figure is protected with differential privacy.")
navigation.run()
