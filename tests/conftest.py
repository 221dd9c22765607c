"""Shared fixtures: the real broker, PostgreSQL, and the rule for missing real parts.

Under ``CI=true`` a missing real part (broker, PostgreSQL, Prometheus, Chromium) is a
test failure, never a silent skip. Elsewhere the test is skipped with the reason.

Environment:
    DRIFTD_TEST_KAFKA       bootstrap servers of an existing Kafka to use instead of
                            the embedded broker
    DRIFTD_TEST_POSTGRES    SQLAlchemy URL of the PostgreSQL test database
                            (default postgresql+psycopg://postgres@127.0.0.1:5432/test)
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
POSTGRES_URL = os.environ.get(
    "DRIFTD_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def require(condition: bool, what: str) -> None:
    """Skip the test when a real part is missing, but fail under CI=true."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"required real part missing under CI: {what}", pytrace=False)
    pytest.skip(f"real part missing: {what}")


def require_binary(name: str) -> str:
    path = shutil.which(name)
    require(path is not None, f"{name} not on PATH (the test command installs it)")
    assert path is not None
    return path


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """Bootstrap servers of a running Kafka-compatible broker for the whole session."""
    external = os.environ.get("DRIFTD_TEST_KAFKA")
    if external:
        yield external
        return
    from monitor.broker import BrokerError, EmbeddedBroker

    try:
        broker = EmbeddedBroker().start()
    except BrokerError as exc:
        require(False, f"embedded broker: {exc}")
        return
    try:
        yield broker.bootstrap_servers
    finally:
        broker.stop()


@pytest.fixture
def topic_prefix() -> str:
    """A unique prefix so that tests sharing the session broker never share topics."""
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """URL of the PostgreSQL test database; a fresh schema per session is left to callers."""
    sqlalchemy = pytest.importorskip("sqlalchemy")
    try:
        engine = sqlalchemy.create_engine(POSTGRES_URL)
        with engine.connect() as conn:
            conn.execute(sqlalchemy.text("select 1"))
        engine.dispose()
    except Exception as exc:  # noqa: BLE001 - any failure means "not available"
        require(False, f"PostgreSQL at {POSTGRES_URL}: {exc}")
    yield POSTGRES_URL


@pytest.fixture
def pg_schema_url(postgres_url: str) -> Iterator[str]:
    """A PostgreSQL URL whose connections use a fresh, private schema (dropped afterwards)."""
    import sqlalchemy

    schema = f"t_{uuid.uuid4().hex[:12]}"
    engine = sqlalchemy.create_engine(postgres_url)
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text(f'create schema "{schema}"'))
    sep = "&" if "?" in postgres_url else "?"
    try:
        yield f"{postgres_url}{sep}options=-csearch_path%3D{schema}"
    finally:
        with engine.begin() as conn:
            conn.execute(sqlalchemy.text(f'drop schema "{schema}" cascade'))
        engine.dispose()
