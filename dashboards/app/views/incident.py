"""Incident page: what drifted, since when, how much it matters, which predictions show it.

Opened by ``?incident=ID`` (an alert's investigation link) or by
``?model=M&version=V&from=T&to=T&feature=F`` (a Grafana panel link); the second
form investigates a time range without an incident record.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
import streamlit as st

from dashboards.app import queries
from dashboards.app.params import AppError, Route
from dashboards.app.safety import check_note, note_author, plain, safe_link
from dashboards.app.views import incident_sections as sections
from dashboards.app.views.common import fmt_time, navigate

# Context drawn around the incident so that "before" is visible.
MIN_PAD = timedelta(minutes=30)
MAX_PAD = timedelta(hours=6)
# Longer incidents show their last MAX_SPAN; the model page covers the rest.
MAX_SPAN = timedelta(days=2)
DEFAULT_RANGE = timedelta(hours=1)
# An alert starts firing after its rule's `for` (5 min by default) plus scrape and
# evaluation delays, so the windows that caused it closed up to this long before.
ALERT_LOOKBACK = timedelta(minutes=15)


@dataclass(frozen=True, slots=True)
class Scope:
    """The model, version, segment and times an incident page looks at."""

    model: str
    version: str | None
    segment: str | None
    feature: str | None
    start: datetime  # incident (or requested range) start
    end: datetime
    involved_from: datetime  # windows ending after this are "involved"
    context_start: datetime
    context_end: datetime


def _scope(url: str, route: Route, found: dict[str, Any] | None) -> Scope | None:
    lookback = ALERT_LOOKBACK if found is not None else timedelta(0)
    if found is not None:
        model, version = found["model"], found["version"] or route.version
        segment = found["segment"] if found["segment"] else route.segment
        feature = route.feature or found["feature"] or None
        start, end = found["starts_at"], found["ends_at"]
    else:
        model, version, segment, feature = route.model, route.version, route.segment, route.feature
        start, end = route.start, route.end
    if not model:
        return None
    if model not in queries.models(url):
        known = ", ".join(queries.models(url)) or "none yet"
        raise AppError(f"model {model!r} has no results in the store (models: {known})")
    _, last = queries.time_bounds(url, model)
    if start is None and end is None:  # ?model=M&feature=F: the newest hour
        end = last
    if end is None:
        # An open incident runs up to the newest data; a range link without `to`, an hour.
        end = (max(last, start) if last else start) if found else start + DEFAULT_RANGE
    if end is None:
        raise AppError(f"model {model!r} has no closed window yet; give `from` and `to`")
    if start is None:
        start = end - DEFAULT_RANGE
    if last is not None and start < last < end:
        end = last  # "to=now" from Grafana: no window can start after the newest one
    if end - start > MAX_SPAN:
        start = end - MAX_SPAN
    pad = min(max(end - start, MIN_PAD), MAX_PAD)
    return Scope(model, version, segment, feature, start, end, start - lookback, start - pad,
                 end + pad)


def _header(found: dict[str, Any]) -> None:
    st.title(f"Incident #{found['id']}: {plain(found['alertname'])}")
    subject = " ".join(p for p in (found["model"], found["version"]) if p) or "pipeline"
    if found["feature"]:
        subject += f" · feature {found['feature']}"
    st.markdown(f"**{plain(subject)}** · status **{plain(found['status'])}** · severity "
                f"**{plain(found['severity'] or 'none')}**")
    # Annotations come from whoever posted the alert: plain text, links only http(s).
    annotations = found.get("annotations") or {}
    if annotations.get("summary"):
        st.markdown(plain(annotations["summary"]))
    if annotations.get("description"):
        st.caption(plain(annotations["description"]))
    runbook = safe_link(annotations.get("runbook_url"))
    if runbook:
        st.link_button("Runbook", runbook)
    elif annotations.get("runbook_url"):
        st.caption(f"runbook link not shown (not an http(s) URL): {plain(annotations['runbook_url'][:200])}")
    if found["ends_at"]:
        lasted = pd.Timestamp(found["ends_at"]) - pd.Timestamp(found["starts_at"])
        timing = f"ended **{fmt_time(found['ends_at'])}** · lasted **{_minutes(lasted)}**"
    else:
        elapsed = pd.Timestamp.now(tz="UTC") - pd.Timestamp(found["starts_at"])
        # A start in the future means clocks disagree (or a simulation runs ahead).
        timing = "**still open**" + (f" for **{_minutes(elapsed)}**" if elapsed.value >= 0 else "")
    st.markdown(f"Started **{fmt_time(found['starts_at'])}** · {timing}")


def _minutes(delta: pd.Timedelta) -> str:
    minutes = delta.total_seconds() / 60
    return f"{minutes:.0f} min" if minutes < 120 else f"{minutes / 60:.1f} h"


def _timeline(found: dict[str, Any]) -> None:
    events = [{"time (UTC)": found["starts_at"], "event": "alert started firing", "by": "",
               "text": ""}]
    for note in found["notes"]:
        events.append({"time (UTC)": note["created_at"], "event": note["action"],
                       "by": note["author"], "text": note["text"]})
    if found["ends_at"]:
        events.append({"time (UTC)": found["ends_at"], "event": "ended", "by": "", "text": ""})
    st.dataframe(pd.DataFrame(events).sort_values("time (UTC)"), hide_index=True,
                 key="incident_timeline")


def _note_form(url: str, found: dict[str, Any]) -> None:
    st.subheader("Acknowledge, resolve or add a note")
    app_settings = queries.settings().app
    header = app_settings.author_header
    with st.form("incident_note", clear_on_submit=True):
        typed = "" if header else st.text_input("Your name", key="note_author", max_chars=128)
        action = st.radio("Action", queries.NOTE_ACTIONS, horizontal=True, key="note_action")
        text = st.text_area("Note", key="note_text", max_chars=app_settings.max_note_chars)
        submitted = st.form_submit_button("Save")
    if submitted:
        try:
            author = note_author(dict(st.context.headers), header, typed)
            text = check_note(text, app_settings.max_note_chars)
            status = queries.add_note(url, int(found["id"]), author, action, text)
        except AppError as exc:
            st.error(str(exc))
        else:
            # Re-run so that the header and timeline show the new status and note.
            st.session_state["incident_flash"] = f"Saved; the incident is now {status}."
            st.rerun()


def render(url: str, route: Route) -> None:
    flash = st.session_state.pop("incident_flash", None)
    if flash:
        st.success(flash)
    found = None
    if route.incident_id is not None:
        found = queries.incident(url, route.incident_id)
        if found is None:
            st.error(f"Incident {route.incident_id} is not in the store. It may have been "
                     "removed by retention; the overview lists the incidents that exist.")
            if st.button("Go to overview", key="to_overview"):
                navigate()
            return
        _header(found)
    try:
        scope = _scope(url, route, found)
    except AppError as exc:
        if found is None:
            raise
        # The incident itself is still worth showing (and acknowledging).
        st.warning(str(exc))
        scope = None
    if scope is not None:
        if found is None:
            st.title(f"Investigation: {scope.model}")
            st.markdown(f"{fmt_time(scope.start)} → {fmt_time(scope.end)}")
        sections.render(url, scope, open_incident=found is not None)
    elif found is not None and not found["model"]:
        st.info("This alert is not about one model (a pipeline alert); see its notes below.")
    if found is not None:
        st.subheader("Timeline")
        _timeline(found)
        _note_form(url, found)
