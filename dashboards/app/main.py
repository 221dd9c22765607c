"""Streamlit entry script of the investigation app (``streamlit run`` target).

Routing is by query parameters so that every view is a shareable URL and alerts
and Grafana panels can deep-link into it (see :mod:`dashboards.app.params`).
"""

from __future__ import annotations

import os

import streamlit as st
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from dashboards.app import STORE_URL_ENV, queries
from dashboards.app.params import AppError, ParamError, parse_route
from dashboards.app.views import common, incident, model, overview

PAGES = {"overview": overview.render, "incident": incident.render, "model": model.render}


def _store_url() -> str:
    url = os.environ.get(STORE_URL_ENV)
    if url:
        return url
    # Started by plain `streamlit run`: the same settings sources as the daemon.
    from monitor.config import load_settings

    return load_settings().store.url.get_secret_value()


def _shown_url(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(unreadable URL)"


def _sidebar(url: str, page: str) -> None:
    with st.sidebar:
        st.header("driftd")
        if st.button("Overview", key="nav_overview", disabled=page == "overview"):
            common.navigate()
        if st.button("Models", key="nav_model", disabled=page == "model"):
            common.navigate(page="model")
        if st.button("Refresh data", key="nav_refresh"):
            queries.clear_cache()
            st.rerun()
        st.caption(f"Store: `{_shown_url(url)}` · data cached for {queries.TTL_SECONDS} s")


def main() -> None:
    st.set_page_config(page_title="driftd investigation", layout="wide")
    try:
        url = _store_url()
    except Exception as exc:  # noqa: BLE001 - a config error is shown, not raised
        st.error(f"Cannot find the store URL: {exc}")
        return
    try:
        route = parse_route(st.query_params.to_dict())
    except ParamError as exc:
        _sidebar(url, "")
        st.error(f"This link cannot be opened: {exc}")
        return
    _sidebar(url, route.page)
    try:
        PAGES[route.page](url, route)
    except queries.StoreUnavailable as exc:
        st.error(f"Store `{_shown_url(url)}`: {exc}")
    except AppError as exc:
        st.error(str(exc))


main()
