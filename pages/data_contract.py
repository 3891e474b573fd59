"""The data contract, for state staff mapping their extracts to it."""

import streamlit as st

from analytics.contract_doc import render

st.markdown(render())
