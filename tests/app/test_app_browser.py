"""The app in a real browser: over the store of a real ``driftd demo`` run, and over a
store where one model drifts and another loses accuracy (``problem_store``).

A short ``driftd demo`` (embedded broker, simulated service whose ``credit`` model
drifts in ``num_0`` and ``num_1``, the daemon, SQLite) fills the store. The alert
that the generated ``DriftdFeatureDrift`` rule raises for the drifted window is
rendered with the rule's own annotation templates and delivered to the
Alertmanager webhook receiver, which records the incident. ``driftd app
--config`` then serves the app with ``streamlit run``, and Playwright drives
Debian's Chromium: it follows the alert's investigation link and the incident
link, waits for the page, checks the drifted feature is named, and screenshots
each page. ``DRIFTD_UPDATE_SCREENSHOTS=1`` refreshes the committed screenshots in
``docs/screenshots/`` (the README shows them).

On the problem store, at 1400 px: the overview's "what is wrong" table shows the
drifting and the failing model, each row highlighted, and no table is cut off;
an incident on a drifted feature with little importance opens with that feature
first.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from tests.conftest import require_binary

pytest.importorskip("streamlit")
sync_api = pytest.importorskip("playwright.sync_api")

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "docs" / "screenshots"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]
DRIFTD = Path(sys.executable).with_name("driftd")
# 10 wall seconds at 270x are 45 minutes of event time: nine 5-minute windows, the
# credit model's inputs shifting after the first third.
DEMO_ARGS = ["--duration", "10", "--speed", "270", "--no-explain", "--port", "0"]
DEMO_TIMEOUT_S = 240
START_TIMEOUT_S = 90
ELEMENT_TIMEOUT_MS = 45_000


def _drifted_window(url: str) -> tuple[str, str, datetime, str, float]:
    """(segment, feature, window end, method, score / threshold) of the newest window
    where credit's num_0 drifted."""
    from sqlalchemy import select

    from monitor.store import open_store
    from monitor.store.schema import FeatureResultRow, WindowResultRow

    store = open_store(url, create=False)
    with store.session() as session:
        row = session.execute(
            select(WindowResultRow.segment, FeatureResultRow.feature, WindowResultRow.window_end,
                   FeatureResultRow.method, FeatureResultRow.score, FeatureResultRow.threshold)
            .join(WindowResultRow, FeatureResultRow.window_id == WindowResultRow.id)
            .where(FeatureResultRow.model == "credit", FeatureResultRow.feature == "num_0",
                   FeatureResultRow.drifted.is_(True))
            .order_by(WindowResultRow.window_end.desc())
            .limit(1)
        ).first()
    store.engine.dispose()
    assert row is not None, "the demo flagged no drift in credit num_0"
    return row.segment, row.feature, row.window_end, row.method, row.score / row.threshold


def _alert(base: str, labels: dict[str, str], window_end: datetime, ratio: float) -> dict[str, str]:
    """Annotations of the DriftdFeatureDrift alert as Prometheus expands them."""
    from alerts.catalogue import RuleOptions, build_alerts
    from alerts.rules import alert_annotations
    from alerts.templating import Expected
    from monitor.config import load_settings

    settings = load_settings(app={"url": base})
    spec = next(a for a in build_alerts(settings, RuleOptions()) if a.name == "DriftdFeatureDrift")
    return alert_annotations(spec, Expected(labels=labels, value=ratio, window_end=window_end.timestamp()),
                             settings)


def _record_incident(url: str, labels: dict[str, str], annotations: dict[str, str],
                     starts_at: datetime) -> int:
    """Deliver the alert to the webhook receiver, as Alertmanager would."""
    from alerts.receiver import record_notification
    from monitor.store import open_store

    payload = {
        "version": "4", "status": "firing", "receiver": "driftd", "groupKey": "{}:{}",
        "alerts": [{
            "status": "firing", "fingerprint": "0f1e2d3c4b5a6978",
            "labels": {"alertname": "DriftdFeatureDrift", "severity": "warning", **labels},
            "annotations": annotations,
            "startsAt": starts_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "endsAt": "0001-01-01T00:00:00Z",
        }],
    }
    store = open_store(url, create=False)
    (incident_id,) = record_notification(store.session, payload)
    store.engine.dispose()
    return incident_id


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_healthy(base: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"driftd app exited with {process.returncode}")
        try:
            with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as response:
                if response.read().strip() == b"ok":
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"the app did not answer on {base} within {START_TIMEOUT_S} s")


@pytest.fixture
def demo_app(tmp_path: Path) -> Iterator[dict]:
    require_binary("chromium")
    workdir = tmp_path / "demo"
    demo = subprocess.run(
        [str(DRIFTD), "demo", "--workdir", str(workdir), *DEMO_ARGS],
        capture_output=True, text=True, timeout=DEMO_TIMEOUT_S, check=False,
    )
    assert demo.returncode == 0, demo.stdout[-2000:] + demo.stderr[-2000:]
    url = f"sqlite:///{workdir / 'driftd.db'}"
    segment, feature, window_end, method, ratio = _drifted_window(url)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    labels = {"model": "credit", "version": "v1", "segment": segment, "feature": feature, "method": method}
    annotations = _alert(base, labels, window_end, ratio)
    assert "nan" not in annotations["description"], annotations["description"]
    incident_id = _record_incident(url, labels, annotations, window_end)
    process = subprocess.Popen(
        [str(DRIFTD), "app", "--config", str(workdir / "driftd.yaml"), "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        _wait_healthy(base, process)
        yield {"base": base, "incident": incident_id, "feature": feature,
               "investigation_url": annotations["investigation_url"]}
    finally:
        # driftd app forwards SIGTERM to Streamlit; the group kill is the backstop.
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)


def _settle(page) -> None:
    """Wait until Streamlit has finished the run (its status widget disappears)."""
    page.wait_for_selector('[data-testid="stApp"]', timeout=ELEMENT_TIMEOUT_MS)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')",
        timeout=ELEMENT_TIMEOUT_MS,
    )


@contextlib.contextmanager
def chromium_page() -> Iterator:
    """A page of Debian's Chromium (headless) at 1400 x 1500 px; closed afterwards."""
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=require_binary("chromium"), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser.new_page(viewport={"width": 1400, "height": 1500})
        finally:
            browser.close()


def _shoot(page, tmp_path: Path, name: str) -> None:
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path))
    assert path.stat().st_size > 10_000, f"{name} screenshot looks empty"
    if os.environ.get("DRIFTD_UPDATE_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, SCREENSHOTS / path.name)


def _open(page, url: str, heading: str, content: str) -> str:
    """Go to ``url``; wait for its heading and for ``content`` further down the page."""
    page.goto(url, wait_until="domcontentloaded")
    page.get_by_role("heading", name=heading).first.wait_for(timeout=ELEMENT_TIMEOUT_MS)
    page.get_by_text(content).first.wait_for(timeout=ELEMENT_TIMEOUT_MS)
    _settle(page)
    body = page.inner_text("body")
    assert "Traceback" not in body
    return body


def test_alert_links_open_the_drifted_feature_in_chromium(demo_app, tmp_path: Path) -> None:
    base, feature = demo_app["base"], demo_app["feature"]
    with chromium_page() as page:
        # The investigation link on the alert itself (model, version, segment,
        # feature and the drifted window's range).
        assert demo_app["investigation_url"].startswith(base)
        _open(page, demo_app["investigation_url"], "Investigation: credit",
              "Features ranked")
        page.get_by_role("heading", name=feature, exact=True).wait_for(
            timeout=ELEMENT_TIMEOUT_MS
        )

        # The incident the webhook receiver recorded for that alert.
        body = _open(page, f"{base}/?incident={demo_app['incident']}",
                     f"Incident #{demo_app['incident']}", "Features ranked")
        assert f"feature {feature}" in body  # named in the header
        assert f"The alerted feature ({feature}) comes first" in body
        page.locator(".js-plotly-plot").first.wait_for(timeout=ELEMENT_TIMEOUT_MS)
        _shoot(page, tmp_path, "incident")
        # The selected feature: statistic, threshold, timeline, window vs baseline.
        detail = page.get_by_role("heading", name=feature, exact=True)
        detail.wait_for(timeout=ELEMENT_TIMEOUT_MS)
        detail.evaluate("element => element.scrollIntoView({block: 'start'})")
        page.get_by_text(f"{feature}: window vs baseline").wait_for(
            timeout=ELEMENT_TIMEOUT_MS
        )
        _shoot(page, tmp_path, "incident-feature")

        body = _open(page, f"{base}/", "driftd — overview", "What is wrong right now")
        assert "Model health" in body and "Open incidents" in body
        assert page.locator("tr.driftd-finding").count() >= 1
        _shoot(page, tmp_path, "overview")

        _open(page, f"{base}/?page=model&model=credit", "Model credit", "Drift by feature")
        page.locator(".js-plotly-plot").first.wait_for(timeout=ELEMENT_TIMEOUT_MS)
        _shoot(page, tmp_path, "model")

        page.goto(f"{base}/?incident=banana", wait_until="domcontentloaded")
        page.get_by_text("This link cannot be opened").wait_for(timeout=ELEMENT_TIMEOUT_MS)


@pytest.fixture
def problem_app(tmp_path: Path) -> Iterator[dict]:
    """The app on a store where credit drifts and churn loses accuracy, plus one incident."""
    require_binary("chromium")
    from tests.app.problem_store import DRIFT_FROM, WINDOW, fill_problem_store
    from tests.app.test_app_overview import IMPORTANCES, _record_incident

    url = f"sqlite:///{tmp_path / 'problems.db'}"
    times = fill_problem_store(url, importances=IMPORTANCES)
    incident = _record_incident(url, "num_1", times["start"] + (DRIFT_FROM + 2) * WINDOW)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [str(DRIFTD), "app", "--store-url", url, "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        _wait_healthy(base, process)
        yield {"base": base, "incident": incident}
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)


def _finding(page, what: str, model: str, segment: str):
    rows = page.locator("tr.driftd-finding").filter(has_text=what).filter(has_text=model).filter(has_text=segment)
    rows.first.wait_for(timeout=ELEMENT_TIMEOUT_MS)
    return rows.first


def _not_cut_off(page) -> None:
    """No table wider than its container: the HTML findings table and every dataframe grid."""
    widths = page.evaluate("""() => [
        ...[...document.querySelectorAll('table.driftd-findings')].map(t => [t.scrollWidth, t.parentElement.clientWidth]),
        ...[...document.querySelectorAll('[data-testid="stDataFrame"] .dvn-scroller')].map(s => [s.scrollWidth, s.clientWidth]),
    ]""")
    assert widths, "no table on the page"
    assert all(inner <= outer + 1 for inner, outer in widths), widths


def test_overview_shows_and_highlights_the_drifting_and_the_failing_model(problem_app, tmp_path: Path) -> None:
    base = problem_app["base"]
    with chromium_page() as page:
        _open(page, f"{base}/", "driftd — overview", "What is wrong right now")
        churn = _finding(page, "performance drop", "churn v3", "region=eu")
        credit = _finding(page, "drift", "credit v1", "region=eu")
        page.locator('[data-testid="stDataFrame"] .dvn-scroller').first.wait_for(timeout=ELEMENT_TIMEOUT_MS)
        # Each row is highlighted by severity, and its out-of-threshold value is marked.
        assert churn.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(253, 226, 225)"
        assert credit.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(255, 243, 205)"
        for row in (churn, credit):
            mark = row.locator("span.driftd-out")
            assert mark.evaluate("e => getComputedStyle(e).color") == "rgb(176, 0, 32)"
            assert mark.inner_text().strip()
        assert "num_0, num_1" in credit.inner_text()
        _not_cut_off(page)
        _shoot(page, tmp_path, "overview-problems")
        # The row's link opens the investigation of the failing segment.
        churn.get_by_role("link", name="open").click()
        page.get_by_role("heading", name="Investigation: churn").wait_for(timeout=ELEMENT_TIMEOUT_MS)
        segment = page.locator('[data-testid="stSelectbox"]').filter(has_text="Segment")
        segment.wait_for(timeout=ELEMENT_TIMEOUT_MS)
        shown = segment.evaluate("e => [e.innerText, ...[...e.querySelectorAll('input')].map(i => i.value)].join(' ')")
        assert "region=eu" in shown and "segment=region%3Deu" in page.url, shown


def test_incident_page_puts_the_alerted_feature_first_in_chromium(problem_app, tmp_path: Path) -> None:
    base, incident = problem_app["base"], problem_app["incident"]
    with chromium_page() as page:
        body = _open(page, f"{base}/?incident={incident}", f"Incident #{incident}",
                     "The alerted feature (num_1) comes first")
        if "num_1 drifted" not in body:  # a loaded machine: the summary's metrics may still be rendering
            page.get_by_text("num_1 drifted").first.wait_for(timeout=ELEMENT_TIMEOUT_MS)
            body = page.inner_text("body")
        assert "num_1 drifted" in body and "Dataset drifted" in body
        # The feature selected for the detail is the alerted one, not the most important.
        page.get_by_role("heading", name="num_1", exact=True).wait_for(timeout=ELEMENT_TIMEOUT_MS)
        page.locator(".js-plotly-plot").first.wait_for(timeout=ELEMENT_TIMEOUT_MS)
        _not_cut_off(page)
        _shoot(page, tmp_path, "incident-alerted-first")
