"""No password of the store URL in any log line, traceback, repr or HTTP reply:
``driftd run`` with a malformed or unusable URL fails with one line, masked."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

from monitor.config import ConfigError, Settings, load_settings
from monitor.store import StoreError, open_store
from monitor.store.engine import masked_url, redact

PASSWORD = "Hunter2-s3cret"
# Five malformed or unusable URLs, each with the password in it.
BAD_URLS = [
    f"mysql://dbuser:{PASSWORD}@db.internal:3306/driftd",  # driver not installed (MySQLdb)
    f"postgresql+nodriver://dbuser:{PASSWORD}@db.internal/driftd",  # unknown dialect
    f"postgresql+psycopg://dbuser:{PASSWORD}@db.internal:notaport/driftd",  # bad port
    f"oracle://dbuser:{PASSWORD}@db.internal/driftd",  # unsupported database
    f"dbuser:{PASSWORD}@db.internal/driftd",  # no scheme: not a URL at all
]


@pytest.mark.parametrize("url", BAD_URLS)
def test_open_store_masks_the_password(url: str) -> None:
    with pytest.raises(StoreError) as error:
        open_store(url, create=False)
    assert PASSWORD not in str(error.value)
    assert "***" in str(error.value)
    assert error.value.__cause__ is None and error.value.__suppress_context__


@pytest.mark.parametrize("url", BAD_URLS)
def test_driftd_run_prints_one_masked_line(url: str, tmp_path: Path) -> None:
    config = tmp_path / "driftd.yaml"
    config.write_text(
        f"store: {{url: '{url}'}}\nkafka: {{bootstrap_servers: '127.0.0.1:1'}}\nhttp: {{port: 0}}\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "monitor.cli", "run", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert PASSWORD not in output
    assert "Traceback" not in output
    lines = [line for line in result.stderr.splitlines() if line.startswith("driftd run:")]
    assert len(lines) == 1 and "store.url" in lines[0], output


def test_settings_repr_and_config_errors_hide_the_url(caplog) -> None:
    url = f"postgresql+psycopg://dbuser:{PASSWORD}@db.internal/driftd"
    settings = Settings(store={"url": url})
    assert PASSWORD not in repr(settings) and PASSWORD not in str(settings.model_dump())
    assert settings.store.url.get_secret_value() == url
    with pytest.raises(ConfigError) as error:
        load_settings(None, store={"url": url, "retention_days": 0, "nope": 1})
    assert PASSWORD not in str(error.value)
    with pytest.raises(ConfigError) as error:
        load_settings(None, store={"url": [url]})
    assert PASSWORD not in str(error.value) and "store.url" in str(error.value)
    with caplog.at_level(logging.DEBUG):
        store = open_store(settings.store.url, create=False)
        logging.getLogger("test").info("store %r", store)
        store.close()
    assert PASSWORD not in caplog.text


def test_masking_helpers() -> None:
    for url in BAD_URLS:
        assert PASSWORD not in masked_url(url), url
        assert PASSWORD not in redact(f"cannot use {url!r}: password {PASSWORD}", url)
    for url in (f"postgresql://u:{PASSWORD}@h@x/d", f"postgresql://u:p@ss{PASSWORD}@h/d"):
        assert PASSWORD not in masked_url(url), url  # an unencoded "@" in the password
    assert masked_url("sqlite:///driftd.db") == "sqlite:///driftd.db"
    assert masked_url("postgresql://driftd@db/driftd") == "postgresql://driftd@db/driftd"
