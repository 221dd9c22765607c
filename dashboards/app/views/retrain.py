"""Retrain requests section (overview page).

Lists the requests the daemon stored in ``retrain_requests`` (newest first): model,
version, reason, the windows that triggered them, whether the event reached the
topic, and what an engineer decided (``driftd retrain ack|reject ID --note``).
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboards.app import queries

__all__ = ["MAX_REQUESTS", "RETRAIN_COLUMNS", "render", "retrain_requests"]

MAX_REQUESTS = 50
RETRAIN_COLUMNS = ["id", "created_at", "model", "version", "segment", "reason", "windows",
                   "drifted_features", "status", "note", "published", "app_link"]


@st.cache_data(ttl=queries.TTL_SECONDS, show_spinner=False)
def retrain_requests(url: str, model: str | None = None) -> pd.DataFrame:
    """The newest :data:`MAX_REQUESTS` requests (of ``model`` when given), newest first."""
    records = queries._read(url, "retrain_requests", model=model, limit=MAX_REQUESTS)
    rows = []
    for r in records:
        windows = r.payload.get("windows") or [{}]
        rows.append({
            "id": r.id, "created_at": r.created_at, "model": r.model, "version": r.version,
            "segment": r.segment, "reason": r.reason,
            "windows": f"{windows[0].get('start', '?')} – {windows[-1].get('end', '?')} ({len(windows)})",
            "drifted_features": ", ".join(f["feature"] for f in r.payload.get("drifted_features", [])),
            "status": r.status, "note": r.note, "published": r.published_at is not None,
            "app_link": r.payload.get("app_link", ""),
        })
    return queries._frame(rows, RETRAIN_COLUMNS)


def render(url: str, model: str | None = None) -> None:
    """A caption and table of the newest requests (or a line saying there are none)."""
    st.subheader("Retrain requests")
    try:
        requests = retrain_requests(url, model)
    except queries.StoreUnavailable as exc:  # a store from before revision 0007
        st.caption(f"Retrain requests unavailable: {exc}")
        return
    if requests.empty:
        st.caption("No retrain request (retrain.enabled, docs/retraining.md).")
        return
    waiting = int((requests["status"] == "requested").sum())
    st.caption(f"{len(requests)} request(s), {waiting} waiting for a decision "
               "(`driftd retrain ack|reject ID --note`). Times UTC.")
    st.dataframe(requests.rename(columns={"created_at": "created (UTC)"}), hide_index=True, key="retrain_requests",
                 column_config={"app_link": st.column_config.LinkColumn("investigate")})
