"""``driftd explain-worker``: one SHAP worker process of ``explain.mode: kafka``."""

from __future__ import annotations

import logging
import signal
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

__all__ = ["explain_worker"]

log = logging.getLogger(__name__)


def explain_worker(
    config: Annotated[Path, typer.Option("--config", "-c", help="driftd.yaml (the daemon's)")],
    threads: Annotated[int, typer.Option(min=1, help="Native threads SHAP may use (one core by default).")] = 1,
    niceness: Annotated[int, typer.Option(min=0, max=19, help="Nice value to add (19: only idle CPU, beside a daemon).")] = 0,
    metrics_port: Annotated[Optional[int], typer.Option(min=0, max=65_535, help="Serve this worker's /metrics on http.host:PORT.")] = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning, error")] = "info",
) -> None:
    """Explain tasks from kafka.explain_topic (consumer group kafka.explain_group_id) into the store.

    Start as many as you want SHAP capacity, on any machine that reaches Kafka and
    the store; each is one core. Delivery is at-least-once with idempotent writes:
    a task is committed only after its rows are stored. SIGTERM finishes the task in
    hand, commits it and leaves the group.
    """
    from monitor.commands import setup_logging
    from monitor.config import ConfigError, load_settings

    setup_logging(log_level)
    try:
        settings = load_settings(config)
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    raise typer.Exit(run_worker(settings, threads=threads, niceness=niceness, metrics_port=metrics_port))


def run_worker(settings: Any, *, threads: int = 1, niceness: int = 0, metrics_port: int | None = None) -> int:
    """Load the models, serve metrics, consume until SIGTERM/SIGINT; returns the exit code."""
    from prometheus_client import CollectorRegistry, start_http_server

    from explainers import worker
    from explainers.kafka_worker import TaskWorker
    from monitor.metrics import PipelineMetrics
    from monitor.store import StoreError, open_store

    worker.run_in_background(niceness)
    store = open_store(settings.store.url, create=False)
    try:
        store.migrate()  # concurrent starts are serialised (advisory lock / SQLite write lock)
    except StoreError as exc:
        log.warning("store not ready (tasks are retried until it is): %s", exc)
    registry = CollectorRegistry()
    metrics = PipelineMetrics(registry)
    task_worker = TaskWorker(settings, store, metrics, threads=threads)
    models = task_worker.load()
    if not models:
        log.error("explain-worker: no model can be explained (models need a model_file): %s", task_worker.load_errors)
        store.close()
        return 1
    if metrics_port is not None:
        server, _ = start_http_server(metrics_port, addr=settings.http.host, registry=registry)
        log.info("explain-worker metrics on http://%s:%d/metrics", settings.http.host, server.server_port)

    def on_signal(signum: int, _frame: Any) -> None:
        log.info("signal %d: finishing the task in hand", signum)
        task_worker.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    log.info("explain-worker ready: models %s", ", ".join(models))
    try:
        return task_worker.run()
    finally:
        store.close()
