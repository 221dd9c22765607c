"""Sequential alarms section (performance views of the model and incident pages).

Reads the ``concept_alarms`` table the daemon fills (one row per ADWIN,
Page–Hinkley or DDM alarm on a (model, version, segment) error stream) and lists
the alarms of the page's range, newest first, so that an engineer sees when the
error stream changed next to the windowed metrics.
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import streamlit as st

from dashboards.app import queries
from dashboards.app.views.common import fmt_time

__all__ = ["ALARM_COLUMNS", "MAX_ALARMS", "concept_alarms", "render"]

MAX_ALARMS = 200
ALARM_COLUMNS = ["event_time", "detector", "stream_index", "statistic"]


@st.cache_data(ttl=queries.TTL_SECONDS, show_spinner=False)
def concept_alarms(url: str, model: str, version: str, segment: str,
                   start: datetime | None, end: datetime | None) -> pd.DataFrame:
    """The newest :data:`MAX_ALARMS` alarms of one key with start <= event time < end, newest first."""
    records = queries._read(url, "alarms", model, version, segment, start, end, MAX_ALARMS)  # noqa: SLF001
    rows = [{c: getattr(r, c) for c in ALARM_COLUMNS} for r in reversed(records)]
    return queries._frame(rows, ALARM_COLUMNS)  # noqa: SLF001


def render(url: str, model: str, version: str, segment: str,
           start: datetime | None, end: datetime | None) -> None:
    """A caption and table of the range's alarms (or a line saying there are none)."""
    st.subheader("Sequential alarms on the error stream")
    try:
        alarms = concept_alarms(url, model, version, segment, start, end)
    except queries.StoreUnavailable as exc:  # a store from before revision 0006
        st.caption(f"Alarms unavailable: {exc}")
        return
    if alarms.empty:
        st.caption("No ADWIN, Page–Hinkley or DDM alarm on this error stream in this range.")
        return
    st.caption(f"{len(alarms)} alarm(s); the newest at {fmt_time(alarms['event_time'].iloc[0])} "
               f"({alarms['detector'].iloc[0]}). Position = labels joined on this stream.")
    st.dataframe(alarms.rename(columns={"event_time": "event time (UTC)",
                                        "stream_index": "position"}),
                 hide_index=True, key="concept_alarms")
