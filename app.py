"""The dashboard frame: page config, shared sidebar, and navigation over pages/."""

import streamlit as st

st.set_page_config(
    page_title="Maine SLDS outcomes, privacy-protected",
    page_icon=":material/insights:",
    layout="wide",
)

navigation = st.navigation(
    {
        "Reference": [
            st.Page(
                "pages/data_contract.py", title="Data contract", icon=":material/table_chart:", url_path="data-contract"
            ),
        ],
    }
)
navigation.run()
