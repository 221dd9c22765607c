"""Real Prometheus, Alertmanager and driftd processes for integration tests.

A helper module, not a test file: each context manager starts one real process on a
free loopback port with a private temporary directory, waits (bounded) until it is
ready, yields a small handle with its URL, and always stops the process on exit::

    from tests.realstack import driftd_process, prometheus, wait_until

    with driftd_process(config_path, port=port) as daemon, \\
         prometheus(targets={"driftd": [daemon.address]}) as prom:
        wait_until(lambda: prom.query('up{job="driftd"}'), timeout=20, what="first scrape")

Binaries are the Debian packages (``apt-get install prometheus
prometheus-alertmanager``): ``prometheus``, ``promtool``, ``prometheus-alertmanager``
and ``amtool``. Tests call :func:`tests.conftest.require_binary` first so that a
missing binary skips locally and fails under ``CI=true``.

Nothing here talks to anything but 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import yaml

__all__ = [
    "ALERTMANAGER_BIN",
    "PROMETHEUS_BIN",
    "Alertmanager",
    "DriftdProcess",
    "ManagedProcess",
    "MonitoringStack",
    "Prometheus",
    "StackError",
    "WebhookReceiver",
    "alertmanager",
    "driftd_process",
    "free_port",
    "http_get_json",
    "monitoring_stack",
    "prometheus",
    "wait_until",
    "webhook_receiver",
]

PROMETHEUS_BIN = "prometheus"
ALERTMANAGER_BIN = "prometheus-alertmanager"
HOST = "127.0.0.1"

T = TypeVar("T")


class StackError(RuntimeError):
    """A real process did not start, did not become ready, or a wait ran out."""


def free_port(host: str = HOST) -> int:
    """A TCP port on ``host`` that is free right now (another process may still take it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_until(
    predicate: Callable[[], T],
    timeout: float,
    *,
    interval: float = 0.2,
    what: str = "condition",
) -> T:
    """Poll ``predicate`` until it returns something truthy; return that value.

    Exceptions raised by ``predicate`` count as "not yet" (the last one is reported).

    Raises
    ------
    StackError
        When ``timeout`` seconds pass first.
    """
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            value = predicate()
        except Exception as exc:  # noqa: BLE001 - retried until the deadline
            last_error = exc
        else:
            if value:
                return value
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_error!r})" if last_error is not None else ""
            raise StackError(f"timed out after {timeout:.0f} s waiting for {what}{detail}")
        time.sleep(interval)


def http_get_json(url: str, timeout: float = 5.0) -> Any:
    """GET ``url`` and decode the JSON body."""
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read())


def _http_status(url: str, method: str = "GET", timeout: float = 2.0) -> int:
    request = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


# --------------------------------------------------------------------------- processes


@dataclass
class ManagedProcess:
    """One child process with its output in ``log_path`` and a readiness URL."""

    name: str
    command: list[str]
    log_path: Path
    ready_url: str
    env: Mapping[str, str] | None = None
    _process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self, timeout: float) -> None:
        """Start the process and wait until ``ready_url`` answers 200."""
        with open(self.log_path, "ab") as log:
            self._process = subprocess.Popen(
                self.command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=dict(self.env) if self.env is not None else None,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running:
                raise StackError(
                    f"{self.name} exited with code {self._process.returncode} before it was "
                    f"ready; last output:\n{self.log_tail()}"
                )
            try:
                if _http_status(self.ready_url, timeout=1.0) == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise StackError(
            f"{self.name} not ready at {self.ready_url} within {timeout:.0f} s; last output:\n"
            f"{self.log_tail()}"
        )

    def stop(self, timeout: float = 10.0, sig: int = signal.SIGTERM) -> int | None:
        """Send ``sig`` (SIGTERM), wait up to ``timeout`` s, then SIGKILL; the exit code."""
        process = self._process
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(sig)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=timeout)
        return process.returncode

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no output)"
        return "\n".join(text.splitlines()[-lines:])


def _start_with_port_retry(
    make: Callable[[int], ManagedProcess], timeout: float, attempts: int = 3
) -> tuple[ManagedProcess, int]:
    """Start a process on a fresh free port; retry when another process took the port."""
    last: StackError | None = None
    for _ in range(attempts):
        port = free_port()
        process = make(port)
        try:
            process.start(timeout)
            return process, port
        except StackError as exc:
            process.stop()
            last = exc
            if "address already in use" not in process.log_tail().lower():
                raise
    assert last is not None
    raise last


@contextmanager
def _workdir(workdir: Path | None, prefix: str) -> Iterator[Path]:
    if workdir is not None:
        workdir.mkdir(parents=True, exist_ok=True)
        yield workdir
        return
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


# --------------------------------------------------------------------------- Prometheus


@dataclass
class Prometheus:
    """A running Prometheus: its URL, its config file and the directory its rules load from."""

    url: str
    config_path: Path
    rules_dir: Path
    process: ManagedProcess

    def api(self, path: str, **params: str) -> Any:
        """GET ``/api/v1/<path>`` and return ``data``; raises StackError on an API error."""
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        body = http_get_json(f"{self.url}/api/v1/{path}{query}")
        if body.get("status") != "success":
            raise StackError(f"Prometheus API {path}: {body}")
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """Instant query; the result vector (each item has ``metric`` and ``value``)."""
        return self.api("query", query=expr)["result"]

    def alerts(self, name: str | None = None) -> list[dict[str, Any]]:
        """Active alerts (pending and firing), optionally only those named ``name``."""
        alerts = self.api("alerts")["alerts"]
        return [a for a in alerts if name is None or a["labels"].get("alertname") == name]

    def rule_groups(self) -> list[dict[str, Any]]:
        return self.api("rules")["groups"]

    def reload(self) -> None:
        status = _http_status(f"{self.url}/-/reload", method="POST", timeout=10.0)
        if status != 200:
            raise StackError(f"Prometheus reload answered {status}:\n{self.process.log_tail()}")

    def wait_target_up(self, job: str, timeout: float = 30.0) -> None:
        """Wait until every target of ``job`` has been scraped successfully."""

        def up() -> bool:
            result = self.query(f'up{{job="{job}"}}')
            return bool(result) and all(item["value"][1] == "1" for item in result)

        wait_until(up, timeout, what=f"targets of job {job!r} up in Prometheus")


def prometheus_config(
    *,
    targets: Mapping[str, Sequence[str]],
    rules_dir: Path,
    alertmanager_urls: Sequence[str] = (),
    scrape_interval: str = "1s",
    evaluation_interval: str = "1s",
) -> dict[str, Any]:
    """A Prometheus config: one scrape job per ``targets`` key, rules from ``rules_dir/*.yml``."""
    config: dict[str, Any] = {
        "global": {
            "scrape_interval": scrape_interval,
            # The timeout may not exceed the interval (default 10 s would be rejected).
            "scrape_timeout": scrape_interval,
            "evaluation_interval": evaluation_interval,
        },
        "rule_files": [str(rules_dir / "*.yml")],
        "scrape_configs": [
            {"job_name": job, "static_configs": [{"targets": list(addresses)}]}
            for job, addresses in targets.items()
        ],
    }
    if alertmanager_urls:
        config["alerting"] = {
            "alertmanagers": [
                {
                    "static_configs": [
                        {"targets": [urllib.parse.urlsplit(u).netloc for u in alertmanager_urls]}
                    ]
                }
            ]
        }
    return config


@contextmanager
def prometheus(
    *,
    targets: Mapping[str, Sequence[str]] | None = None,
    rule_files: Mapping[str, str] | None = None,
    alertmanager_urls: Sequence[str] = (),
    scrape_interval: str = "1s",
    evaluation_interval: str = "1s",
    workdir: Path | None = None,
    startup_timeout: float = 30.0,
) -> Iterator[Prometheus]:
    """A real Prometheus on a free loopback port, stopped on exit.

    Parameters
    ----------
    targets
        Scrape jobs: job name -> ``host:port`` addresses.
    rule_files
        Initial files of the rules directory: file name (``*.yml``) -> text.
    alertmanager_urls
        Alertmanagers to send alerts to (``http://host:port``).
    workdir
        Directory for config, rules, TSDB and log; a temporary one (removed) when None.

    Notes
    -----
    Started with ``--web.enable-lifecycle`` (so ``POST /-/reload`` works) and a resend
    delay of 1 s, so firing alerts reach Alertmanager quickly in tests.
    """
    with _workdir(workdir, "prometheus-") as root:
        rules_dir = root / "rules"
        rules_dir.mkdir(exist_ok=True)
        for name, text in (rule_files or {}).items():
            (rules_dir / name).write_text(text)
        config_path = root / "prometheus.yml"
        config = prometheus_config(
            targets=targets or {},
            rules_dir=rules_dir,
            alertmanager_urls=alertmanager_urls,
            scrape_interval=scrape_interval,
            evaluation_interval=evaluation_interval,
        )
        config_path.write_text(yaml.safe_dump(config, sort_keys=False))

        def make(port: int) -> ManagedProcess:
            data = root / f"data-{port}"
            return ManagedProcess(
                name="prometheus",
                command=[
                    PROMETHEUS_BIN,
                    f"--config.file={config_path}",
                    f"--storage.tsdb.path={data}",
                    f"--web.listen-address={HOST}:{port}",
                    "--web.enable-lifecycle",
                    "--rules.alert.resend-delay=1s",
                    "--log.level=info",
                ],
                log_path=root / "prometheus.log",
                ready_url=f"http://{HOST}:{port}/-/ready",
            )

        process, port = _start_with_port_retry(make, startup_timeout)
        try:
            yield Prometheus(f"http://{HOST}:{port}", config_path, rules_dir, process)
        finally:
            process.stop()


# --------------------------------------------------------------------------- Alertmanager


@dataclass
class Alertmanager:
    """A running Alertmanager."""

    url: str
    config_path: Path
    process: ManagedProcess

    def alerts(self) -> list[dict[str, Any]]:
        """Alerts Alertmanager holds (API v2)."""
        return http_get_json(f"{self.url}/api/v2/alerts")


@contextmanager
def alertmanager(
    config: Mapping[str, Any] | str,
    *,
    workdir: Path | None = None,
    startup_timeout: float = 30.0,
) -> Iterator[Alertmanager]:
    """A real Alertmanager (clustering off) on a free loopback port, stopped on exit.

    ``config`` is the Alertmanager configuration as a mapping or YAML text.
    """
    with _workdir(workdir, "alertmanager-") as root:
        config_path = root / "alertmanager.yml"
        text = config if isinstance(config, str) else yaml.safe_dump(dict(config), sort_keys=False)
        config_path.write_text(text)

        def make(port: int) -> ManagedProcess:
            return ManagedProcess(
                name="alertmanager",
                command=[
                    ALERTMANAGER_BIN,
                    f"--config.file={config_path}",
                    f"--storage.path={root / f'data-{port}'}",
                    f"--web.listen-address={HOST}:{port}",
                    # An empty address turns clustering off (it would bind 0.0.0.0:9094).
                    "--cluster.listen-address=",
                    "--log.level=info",
                ],
                log_path=root / "alertmanager.log",
                ready_url=f"http://{HOST}:{port}/-/ready",
            )

        process, port = _start_with_port_retry(make, startup_timeout)
        try:
            yield Alertmanager(f"http://{HOST}:{port}", config_path, process)
        finally:
            process.stop()


# --------------------------------------------------------------------------- webhook


@dataclass
class WebhookReceiver:
    """A tiny HTTP server that records every JSON body POSTed to it (the paging endpoint)."""

    url: str
    payloads: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def received(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.payloads)

    def alerts(
        self, alertname: str | None = None, status: str | None = None
    ) -> list[dict[str, Any]]:
        """Every alert of every payload received so far, optionally filtered."""
        return [
            alert
            for payload in self.received()
            for alert in payload.get("alerts", [])
            if (alertname is None or alert["labels"].get("alertname") == alertname)
            and (status is None or alert.get("status") == status)
        ]

    def wait_for_alert(
        self, alertname: str, status: str = "firing", timeout: float = 30.0
    ) -> dict[str, Any]:
        """Wait until an alert ``alertname`` with ``status`` arrived; return the first one."""
        found = wait_until(
            lambda: self.alerts(alertname, status),
            timeout,
            what=f"{status} notification of {alertname} at {self.url}",
        )
        return found[0]


@contextmanager
def webhook_receiver(
    handler: Callable[[bytes], tuple[int, bytes]] | None = None, path: str = "/"
) -> Iterator[WebhookReceiver]:
    """Serve a webhook on a free loopback port in a thread; stopped on exit.

    Parameters
    ----------
    handler
        Called with each request body; returns (status, response body). When None
        the receiver answers 200 with ``{}``. Bodies are recorded either way
        (when they are JSON objects).
    path
        Path part of the returned URL.
    """
    receiver = WebhookReceiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            try:
                decoded = json.loads(body)
            except ValueError:
                decoded = None
            if isinstance(decoded, dict):
                with receiver.lock:
                    receiver.payloads.append(decoded)
            status, reply = handler(body) if handler is not None else (200, b"{}")
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer((HOST, 0), Handler)
    receiver.url = f"http://{HOST}:{server.server_address[1]}{path}"
    thread = threading.Thread(target=server.serve_forever, name="webhook", daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# --------------------------------------------------------------------------- driftd


@dataclass
class DriftdProcess:
    """A running ``driftd run`` process."""

    url: str
    address: str
    process: ManagedProcess

    def metrics_text(self) -> str:
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=5) as response:
            return response.read().decode()

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM (driftd flushes and checkpoints), then SIGKILL after ``timeout``."""
        return self.process.stop(timeout=timeout)


def driftd_command() -> list[str]:
    """How to run the ``driftd`` console script of the current interpreter's environment."""
    script = Path(sys.executable).parent / "driftd"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from monitor.cli import main; main()"]


@contextmanager
def driftd_process(
    config_path: Path,
    *,
    port: int,
    ready_path: str = "/metrics",
    startup_timeout: float = 60.0,
    log_path: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> Iterator[DriftdProcess]:
    """``driftd run --config config_path`` whose HTTP server listens on ``port``; stopped on exit.

    The config file must set ``http.port`` to ``port`` (pick it with :func:`free_port`);
    readiness is ``GET ready_path`` answering 200.
    """
    with _workdir(None, "driftd-") as root:
        process = ManagedProcess(
            name="driftd",
            command=[*driftd_command(), "run", "--config", str(config_path)],
            log_path=log_path or root / "driftd.log",
            ready_url=f"http://{HOST}:{port}{ready_path}",
            env={**os.environ, **(env or {})},
        )
        process.start(startup_timeout)
        try:
            yield DriftdProcess(f"http://{HOST}:{port}", f"{HOST}:{port}", process)
        finally:
            process.stop(timeout=20.0)


# --------------------------------------------------------------------------- the whole chain


@dataclass
class MonitoringStack:
    """driftd scraped by Prometheus, optionally alerting through Alertmanager to two webhooks."""

    daemon: DriftdProcess
    prometheus: Prometheus
    alertmanager: Alertmanager | None = None
    pager: WebhookReceiver | None = None
    ticket: WebhookReceiver | None = None


@contextmanager
def monitoring_stack(
    config_path: Path,
    *,
    port: int,
    rule_files: Mapping[str, str] | None = None,
    alertmanager_config: Callable[[str, str], Mapping[str, Any]] | None = None,
    job: str = "driftd",
    startup_timeout: float = 120.0,
) -> Iterator[MonitoringStack]:
    """``driftd run`` + Prometheus (+ Alertmanager with a pager and a ticket webhook).

    The broker is the caller's (the ``kafka_bootstrap`` fixture, named in the config
    file). Everything started here is stopped on exit, in reverse order.

    Parameters
    ----------
    config_path
        driftd.yaml with ``http.port`` = ``port``.
    rule_files
        Rule files for Prometheus (file name -> text).
    alertmanager_config
        Builds the Alertmanager config from (pager URL, ticket URL); no Alertmanager
        when None. ``alerts.alertmanager.alertmanager_config`` fits, with short timings.
    job
        Scrape job name of driftd (the rules' ``--job``).
    """
    with contextlib.ExitStack() as stack:
        pager = ticket = am = None
        if alertmanager_config is not None:
            pager = stack.enter_context(webhook_receiver(path="/pager"))
            ticket = stack.enter_context(webhook_receiver(path="/ticket"))
            am = stack.enter_context(alertmanager(alertmanager_config(pager.url, ticket.url)))
        daemon = stack.enter_context(
            driftd_process(config_path, port=port, startup_timeout=startup_timeout)
        )
        prom = stack.enter_context(
            prometheus(
                targets={job: [daemon.address]},
                rule_files=rule_files,
                alertmanager_urls=[am.url] if am is not None else (),
            )
        )
        prom.wait_target_up(job)
        yield MonitoringStack(daemon, prom, am, pager, ticket)
