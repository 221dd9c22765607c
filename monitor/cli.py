"""The ``driftd`` command line.

Each package owns its own sub-commands (``alerts.cli``, ``dashboards.cli``, ...);
this module only assembles them. Heavy imports happen inside the commands, so
``driftd --help`` is fast and the core daemon starts without optional extras.
"""

from __future__ import annotations

import sys

import typer

from alerts.cli import app as rules_app
from alerts.grafana_cli import grafana_generate, grafana_push
from dashboards.cli import app as dashboards_app
from dashboards.app_cli import run_app
from explainers.cli import explain_worker
from monitor.baseline_cli import app as baseline_app
from monitor.commands import broker, compare, demo, methods, run
from monitor.deploy_cli import app as deploy_app
from monitor.init_cli import init
from monitor.retrain.cli import app as retrain_app
from monitor.sidecar.cli import sidecar
from monitor.store.cli import app as store_app

app = typer.Typer(
    name="driftd",
    help="Streaming drift monitoring for ML models in production.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("run")(run)
app.command("demo")(demo)
app.command("init")(init)
app.command("broker")(broker)
app.command("methods")(methods)
app.command("compare")(compare)
app.command("app")(run_app)
app.command("sidecar")(sidecar)
app.command("explain-worker")(explain_worker)
app.add_typer(baseline_app, name="baseline", help="Build and inspect reference profiles.")
rules_app.command("grafana")(grafana_generate)
rules_app.command("grafana-push")(grafana_push)
app.add_typer(rules_app, name="rules", help="Generate, test and push Prometheus alert rules.")
app.add_typer(dashboards_app, name="dashboards", help="Generate and push Grafana dashboards.")
app.add_typer(deploy_app, name="deploy", help="Kubernetes manifests and a docker-compose stack.")
app.add_typer(store_app, name="store", help="Migrate the store and apply retention.")
app.add_typer(retrain_app, name="retrain", help="List, acknowledge and reject retrain requests.")


def main() -> None:
    """Console-script entry point."""
    sys.exit(app())


if __name__ == "__main__":
    main()
