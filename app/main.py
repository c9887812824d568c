"""HITL Control Tower dashboard: `streamlit run app/main.py` (store: $HITL_TOWER_DB_URL or the config)."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from app import common

_PAGES = Path(__file__).parent / "views"

st.set_page_config(page_title="HITL Control Tower", page_icon=":material/cell_tower:", layout="wide")

common.require_login()  # login is on when .streamlit/secrets.toml has an [auth] section
if common.login_configured():
    who = st.user.get("email") or st.user.get("name") or st.user.get("sub") or "unknown user"
    st.sidebar.caption(f"Signed in as {who}")
    st.sidebar.button("Log out", on_click=st.logout, icon=":material/logout:")

navigation = st.navigation({
    "Monitor": [
        st.Page(str(_PAGES / "overview.py"), title="Overview", icon=":material/dashboard:", default=True),
        st.Page(str(_PAGES / "calibration.py"), title="Calibration", icon=":material/tune:"),
        st.Page(str(_PAGES / "operations.py"), title="Operations", icon=":material/schedule:"),
        st.Page(str(_PAGES / "overrides_cost.py"), title="Overrides & cost", icon=":material/payments:"),
        st.Page(str(_PAGES / "agreement.py"), title="Agreement", icon=":material/groups:"),
        st.Page(str(_PAGES / "fairness.py"), title="Fairness", icon=":material/balance:"),
        st.Page(str(_PAGES / "alerts.py"), title="Alerts", icon=":material/notifications:"),
    ],
    "Steer": [
        st.Page(str(_PAGES / "cost_curves.py"), title="Cost curves", icon=":material/show_chart:"),
        st.Page(str(_PAGES / "autonomy.py"), title="Autonomy ladder", icon=":material/stairs:"),
        st.Page(str(_PAGES / "changes.py"), title="Changes", icon=":material/history:"),
        st.Page(str(_PAGES / "quality.py"), title="Quality", icon=":material/verified:"),
        st.Page(str(_PAGES / "triage.py"), title="Triage", icon=":material/priority_high:"),
    ],
})
navigation.run()
