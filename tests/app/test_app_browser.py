"""The app in a real browser: Debian's Chromium driven by Playwright.

``driftd app --config driftd.yaml`` serves the app with ``streamlit run`` over a
filled store; the browser follows the link an alert carries (``?incident=ID``),
waits for the page, checks the drifted feature is named, and saves a screenshot
of each page. Set ``DRIFTD_UPDATE_SCREENSHOTS=1`` to refresh the committed
screenshots in ``docs/screenshots/`` (the README shows them).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import require_binary

pytest.importorskip("streamlit")
sync_api = pytest.importorskip("playwright.sync_api")

from app_store_fill import DRIFT_WINDOWS, STEP, T0, fill_store

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "docs" / "screenshots"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]
START_TIMEOUT_S = 90
ELEMENT_TIMEOUT_MS = 45_000


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
def served_app(tmp_path: Path) -> Iterator[tuple[str, dict[str, int]]]:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    ids = fill_store(url)
    port = _free_port()
    config = tmp_path / "driftd.yaml"
    config.write_text(f"store:\n  url: {url}\napp:\n  port: {port}\n", encoding="utf-8")
    driftd = Path(sys.executable).with_name("driftd")
    process = subprocess.Popen(
        [str(driftd), "app", "--config", str(config)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(base, process)
        yield base, ids
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


def _shoot(page, tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000, f"{name} screenshot looks empty"
    if os.environ.get("DRIFTD_UPDATE_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, SCREENSHOTS / path.name)
    return path


def _alert_link(base: str) -> str:
    """The investigation link the generated DriftdFeatureDrift rule puts on its alert."""
    from alerts.catalogue import RuleOptions, build_alerts
    from alerts.rules import alert_annotations
    from alerts.templating import Expected
    from monitor.config import load_settings

    settings = load_settings(app={"url": base})
    spec = next(a for a in build_alerts(settings, RuleOptions()) if a.name == "DriftdFeatureDrift")
    last_drifted_window_end = (T0 + (DRIFT_WINDOWS[-1] + 1) * STEP).timestamp()
    labels = {"model": "churn", "version": "v2", "segment": "", "feature": "income"}
    rendered = Expected(labels=labels, window_end=last_drifted_window_end)
    return alert_annotations(spec, rendered, settings)["investigation_url"]


def test_alert_link_opens_incident_in_chromium(served_app, tmp_path: Path) -> None:
    chromium = require_binary("chromium")
    base, ids = served_app
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium, headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1600})
            # The link on the alert itself: model, version, segment, feature, window range.
            page.goto(_alert_link(base), wait_until="domcontentloaded")
            page.get_by_role("heading", name="Investigation: churn").wait_for(
                timeout=ELEMENT_TIMEOUT_MS
            )
            page.get_by_role("heading", name="income", exact=True).wait_for(
                timeout=ELEMENT_TIMEOUT_MS
            )
            _settle(page)
            body = page.inner_text("body")
            assert "Windows drifted" in body and "Traceback" not in body
            assert "1 / 1" in body  # the one window the alert points at drifted
            # The incident recorded for the alert (link from Alertmanager or the overview).
            # The link an alert's investigation annotation carries.
            page.goto(f"{base}/?incident={ids['churn']}", wait_until="domcontentloaded")
            heading = page.get_by_role("heading", name=f"Incident #{ids['churn']}")
            heading.wait_for(timeout=ELEMENT_TIMEOUT_MS)
            page.locator(".js-plotly-plot").first.wait_for(timeout=ELEMENT_TIMEOUT_MS)
            _settle(page)
            body = page.inner_text("body")
            assert "feature income" in body  # the drifted feature, named in the header
            assert "Features ranked by drift" in body
            assert "Traceback" not in body
            _shoot(page, tmp_path, "incident")

            page.goto(f"{base}/", wait_until="domcontentloaded")
            page.get_by_role("heading", name="driftd — overview").wait_for(
                timeout=ELEMENT_TIMEOUT_MS
            )
            _settle(page)
            assert "Open incidents" in page.inner_text("body")
            _shoot(page, tmp_path, "overview")

            page.goto(f"{base}/?page=model&model=churn", wait_until="domcontentloaded")
            page.get_by_role("heading", name="Model churn").wait_for(timeout=ELEMENT_TIMEOUT_MS)
            page.locator(".js-plotly-plot").first.wait_for(timeout=ELEMENT_TIMEOUT_MS)
            _settle(page)
            _shoot(page, tmp_path, "model")

            page.goto(f"{base}/?incident=banana", wait_until="domcontentloaded")
            page.get_by_text("This link cannot be opened").wait_for(timeout=ELEMENT_TIMEOUT_MS)
        finally:
            browser.close()
