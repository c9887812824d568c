"""HITL Control Tower dashboard: `streamlit run app/main.py` (store: $HITL_TOWER_DB_URL or the config)."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

_PAGES = Path(__file__).parent / "pages"

st.set_page_config(page_title="HITL Control Tower", page_icon=":material/cell_tower:", layout="wide")

navigation = st.navigation([
    st.Page(str(_PAGES / "overview.py"), title="Overview", icon=":material/dashboard:", default=True),
    st.Page(str(_PAGES / "calibration.py"), title="Calibration", icon=":material/tune:"),
    st.Page(str(_PAGES / "operations.py"), title="Operations", icon=":material/schedule:"),
    st.Page(str(_PAGES / "overrides_cost.py"), title="Overrides & cost", icon=":material/payments:"),
    st.Page(str(_PAGES / "agreement.py"), title="Agreement", icon=":material/groups:"),
    st.Page(str(_PAGES / "fairness.py"), title="Fairness", icon=":material/balance:"),
    st.Page(str(_PAGES / "alerts.py"), title="Alerts", icon=":material/notifications:"),
])
navigation.run()
