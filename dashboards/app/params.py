"""Deep-link query parameters: what an alert or a Grafana panel puts in the URL.

Two deep links open the incident page::

    ?incident=42
    ?model=churn&version=v3&from=1732350000000&to=1732353600000&feature=age

``from``/``to`` accept what Grafana sends (epoch milliseconds), epoch seconds,
ISO 8601 (``2026-11-23T09:00:00Z``; a time without offset is UTC) and Grafana's
relative times (``now``, ``now-6h``). ``?model=churn`` alone opens the model page,
``?page=overview|incident|model`` picks a page explicitly.

Parsing is pure so that it is tested without Streamlit; every problem becomes a
:class:`ParamError` whose message names the parameter, the value and what is allowed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

__all__ = ["PAGES", "AppError", "ParamError", "Route", "parse_route", "parse_time"]

PAGES = ("overview", "incident", "model")
# Anything longer is not a model, version, segment or feature name driftd wrote.
_MAX_LEN = 600
# ASCII digits only (str.isdigit and \d accept "²" and "٣"), and bounded: int() of a
# long digit string overflows timedelta and SQLite's 64-bit integers.
_RELATIVE = re.compile(r"^now(?:-([0-9]{1,9})([smhdw]))?$")
_NUMBER = re.compile(r"^[0-9]{1,16}(?:\.[0-9]{1,9})?$")
_INCIDENT = re.compile(r"^[0-9]{1,18}$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
# Epoch values above this are milliseconds (1e11 s is the year 5138).
_MS_CUTOFF = 1e11


class AppError(Exception):
    """Root of the investigation app's errors."""


class ParamError(AppError):
    """A query parameter that cannot be used; the message is shown to the user."""


@dataclass(frozen=True, slots=True)
class Route:
    """Which page to show and for what, decoded from the URL."""

    page: str = "overview"
    incident_id: int | None = None
    model: str | None = None
    version: str | None = None
    segment: str | None = None
    feature: str | None = None
    start: datetime | None = None
    end: datetime | None = None


def parse_time(name: str, value: str, now: datetime | None = None) -> datetime:
    """Read one time parameter as an aware UTC datetime.

    Examples
    --------
    >>> parse_time("from", "1732350000000").isoformat()
    '2024-11-23T08:20:00+00:00'
    >>> parse_time("to", "2024-11-23T08:20:00Z").isoformat()
    '2024-11-23T08:20:00+00:00'
    >>> now = datetime(2026, 1, 1, tzinfo=UTC)
    >>> parse_time("from", "now-6h", now).isoformat()
    '2025-12-31T18:00:00+00:00'
    """
    text = value.strip()
    relative = _RELATIVE.match(text)
    if relative:
        now = now or datetime.now(UTC)
        amount, unit = relative.groups()
        try:
            return now - timedelta(seconds=int(amount or 0) * _UNIT_SECONDS.get(unit or "s", 1))
        except OverflowError:
            raise ParamError(f"`{name}`: {value!r} reaches before the year 1") from None
    number = float(text) if _NUMBER.match(text) else None
    if number is not None:
        if not math.isfinite(number) or number < 0:
            raise ParamError(f"`{name}`: {value!r} is not a valid time")
        seconds = number / 1000.0 if number > _MS_CUTOFF else number
        try:
            return datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError):
            raise ParamError(f"`{name}`: {value!r} is out of range for a time") from None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ParamError(
            f"`{name}`: cannot read {value!r} as a time; use ISO 8601 "
            "(2026-11-23T09:00:00Z), epoch milliseconds (as Grafana sends) or now-6h"
        ) from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # 9999-12-31T23:59:59-01:00 is after the year 9999 in UTC
        raise ParamError(f"`{name}`: {value!r} is out of range for a time") from None


def _text(params: Mapping[str, str], name: str) -> str | None:
    value = params.get(name)
    if isinstance(value, list):  # AppTest and some clients hand repeated keys as lists
        value = value[-1] if value else None
    if value is None:
        return None
    value = str(value).strip()
    if not value:
        return None
    if len(value) > _MAX_LEN:
        raise ParamError(f"`{name}` is longer than {_MAX_LEN} characters")
    return value


def parse_route(params: Mapping[str, str], now: datetime | None = None) -> Route:
    """Decode the URL's query parameters into a :class:`Route`.

    Raises
    ------
    ParamError
        When a parameter has a value the app cannot use.

    Examples
    --------
    >>> parse_route({"incident": "7"})
    Route(page='incident', incident_id=7, model=None, version=None, segment=None, feature=None, start=None, end=None)
    >>> parse_route({"model": "churn"}).page
    'model'
    >>> parse_route({"incident": "seven"})
    Traceback (most recent call last):
    ...
    dashboards.app.params.ParamError: `incident` must be a positive whole number (an incident id), got 'seven'
    """
    page = _text(params, "page")
    if page is not None and page not in PAGES:
        raise ParamError(f"`page`: unknown page {page!r}; allowed: {', '.join(PAGES)}")

    incident_id = None
    raw_incident = _text(params, "incident")
    if raw_incident is not None:
        if not _INCIDENT.match(raw_incident) or int(raw_incident) <= 0:
            raise ParamError(
                f"`incident` must be a positive whole number (an incident id), got {raw_incident!r}"
            )
        incident_id = int(raw_incident)

    model = _text(params, "model")
    version = _text(params, "version")
    segment = params.get("segment")  # "" is a real segment (the whole model)
    segment = None if segment is None else str(segment)[:_MAX_LEN]
    feature = _text(params, "feature")
    raw_from, raw_to = _text(params, "from"), _text(params, "to")
    now = now or datetime.now(UTC)
    start = parse_time("from", raw_from, now) if raw_from else None
    end = parse_time("to", raw_to, now) if raw_to else None
    if start is not None and end is not None and start >= end:
        raise ParamError(
            f"`from` ({start:%Y-%m-%d %H:%M:%S} UTC) must be before `to` "
            f"({end:%Y-%m-%d %H:%M:%S} UTC)"
        )
    if model is None and (version or feature):
        raise ParamError("`version` and `feature` need `model` too, e.g. ?model=churn&feature=age")

    if page is None:
        if incident_id is not None:
            page = "incident"
        elif model is not None:
            page = "incident" if (start or end or feature) else "model"
        else:
            page = "overview"
    if page == "incident" and incident_id is None and model is None:
        raise ParamError("the incident page needs `incident=ID` or `model=NAME` (with from/to)")
    return Route(page, incident_id, model, version, segment, feature, start, end)
