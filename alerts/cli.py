"""``driftd rules ...``: generate, test and push Prometheus rules; write the Alertmanager config.

::

    driftd rules generate --config driftd.yaml --out rules/
    driftd rules test --out rules/
    driftd rules push --config driftd.yaml --rules-dir /etc/prometheus/rules \\
        --prometheus-url http://127.0.0.1:9090
    driftd rules alertmanager --config driftd.yaml --out alertmanager.yml \\
        --pager-url https://pager.example/hook --ticket-url https://tickets.example/hook
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, NoReturn, Optional

import typer

app = typer.Typer(no_args_is_help=True)

ConfigOption = Annotated[
    Optional[Path],
    typer.Option("--config", "-c", help="driftd.yaml (default: built-in defaults and DRIFTD_* "
                 "variables; see examples/driftd.yaml)", exists=True, dir_okay=False),
]
JobOption = Annotated[
    Optional[str], typer.Option("--job", help="Prometheus job name that scrapes driftd (default: alerts.job in the configuration, driftd).")
]
RateOption = Annotated[
    Optional[str], typer.Option("--rate-window", help="Range of rate() in the rules (default: alerts.rate_window, 5m).")
]
PromtoolOption = Annotated[
    str | None, typer.Option("--promtool", help="Path of promtool (default: PATH).")
]


def _fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _settings(config: Path | None):
    from monitor.config import ConfigError, load_settings

    if config is None:
        typer.echo(
            "note: no --config given: using the default settings (job driftd, 5m windows, "
            "links to 127.0.0.1); pass --config driftd.yaml to follow your configuration and "
            "to check that each configured model sends events (DriftdNoEvents)",
            err=True,
        )
    try:
        return load_settings(config)
    except ConfigError as error:
        _fail(str(error), code=2)


def _rule_files(config: Path | None, job: str | None, rate_window: str | None) -> dict[str, str]:
    from alerts.catalogue import RuleOptions
    from alerts.errors import AlertsError
    from alerts.rules import generate_rule_files

    settings = _settings(config)
    try:
        options = RuleOptions.from_settings(settings, job=job, rate_window=rate_window)
    except AlertsError as error:
        _fail(str(error), code=2)
    return generate_rule_files(settings, options)


@app.command()
def generate(
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Directory to write the rule files into.")
    ],
    config: ConfigOption = None,
    job: JobOption = None,
    rate_window: RateOption = None,
) -> None:
    """Write the rule file and its promtool unit tests into OUT."""
    files = _rule_files(config, job, rate_window)
    out.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (out / name).write_text(text, encoding="utf-8")
        typer.echo(f"wrote {out / name}")


@app.command("test")
def test_rules(
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Directory written by `rules generate`.")
    ],
    promtool: PromtoolOption = None,
) -> None:
    """Run `promtool check rules` and `promtool test rules` on the files in OUT."""
    from alerts.errors import AlertsError, ToolMissing
    from alerts.rules import RULES_FILE, TESTS_FILE
    from alerts.tools import promtool_check_rules, promtool_test_rules

    rules, tests = out / RULES_FILE, out / TESTS_FILE
    for path in (rules, tests):
        if not path.exists():
            _fail(f"{path} not found; run `driftd rules generate --out {out}` first", code=2)
    try:
        typer.echo(promtool_check_rules([rules], promtool))
        typer.echo(promtool_test_rules([tests], promtool))
    except ToolMissing as error:
        _fail(str(error), code=2)
    except AlertsError as error:
        _fail(str(error))


@app.command()
def push(
    rules_dir: Annotated[
        Path, typer.Option("--rules-dir", help="Directory Prometheus loads rules from.")
    ],
    config: ConfigOption = None,
    prometheus_url: Annotated[
        str | None,
        typer.Option(
            "--prometheus-url", help="Prometheus to reload (needs --web.enable-lifecycle)."
        ),
    ] = None,
    job: JobOption = None,
    rate_window: RateOption = None,
    promtool: PromtoolOption = None,
    require_check: Annotated[
        bool, typer.Option("--require-check", help="Fail when promtool is not installed.")
    ] = False,
) -> None:
    """Install the generated rules into RULES_DIR atomically, check them, reload Prometheus."""
    from alerts.errors import AlertsError
    from alerts.push import push_rule_files
    from alerts.rules import RULES_FILE

    files = _rule_files(config, job, rate_window)
    try:
        result = push_rule_files(
            {RULES_FILE: files[RULES_FILE]},
            rules_dir,
            prometheus_url,
            promtool=promtool,
            require_check=require_check,
        )
    except AlertsError as error:
        _fail(str(error))
    if not result.checked:
        typer.echo(
            "warning: promtool not found; rules were not checked before installing", err=True
        )
    for path in result.written:
        typer.echo(f"installed {path}")
    if result.reloaded:
        typer.echo(f"reloaded {prometheus_url}; groups loaded: {', '.join(result.groups)}")


@app.command()
def alertmanager(
    out: Annotated[Path, typer.Option("--out", "-o", help="File to write (alertmanager.yml).")],
    pager_url: Annotated[str, typer.Option("--pager-url", help="Webhook that pages (critical).")],
    ticket_url: Annotated[
        str, typer.Option("--ticket-url", help="Webhook that opens tickets (warning).")
    ],
    incidents_url: Annotated[
        str | None,
        typer.Option(
            "--incidents-url", help="driftd's receiver; default from http.host/http.port."
        ),
    ] = None,
    credentials_file: Annotated[
        str | None,
        typer.Option(
            "--credentials-file",
            help="The token file of driftd's http.auth as Alertmanager mounts it; "
            "default: http.auth.token_file of the configuration.",
        ),
    ] = None,
    record_incidents: Annotated[
        bool,
        typer.Option("--record-incidents/--no-record-incidents", help="Send alerts to driftd too."),
    ] = True,
    amtool: Annotated[
        str | None, typer.Option("--amtool", help="Path of amtool (default: PATH).")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Write the Alertmanager config (critical pages, warning tickets, info nobody)."""
    from alerts.alertmanager import alertmanager_config
    from alerts.alertmanager import incidents_url as default_incidents_url
    from alerts.errors import AlertsError
    from alerts.rules import dump_yaml
    from alerts.tools import amtool_check_config, find_tool

    settings = _settings(config)
    receiver = (incidents_url or default_incidents_url(settings)) if record_incidents else None
    if credentials_file is None and settings.http.auth.token_file is not None:
        credentials_file = str(settings.http.auth.token_file)
    if receiver and credentials_file is None and settings.http.auth.token is not None:
        typer.echo("warning: http.auth.token is set but Alertmanager needs it in a file; "
                   "pass --credentials-file", err=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        dump_yaml(alertmanager_config(pager_url, ticket_url, receiver,
                                      incidents_credentials_file=credentials_file)),
        encoding="utf-8",
    )
    typer.echo(f"wrote {out}")
    if find_tool("amtool", amtool) is None:
        typer.echo("warning: amtool not found; the config was not checked", err=True)
        return
    try:
        amtool_check_config(out, amtool)
    except AlertsError as error:
        _fail(str(error))
    typer.echo("amtool check-config: SUCCESS")
