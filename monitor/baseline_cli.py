"""``driftd baseline build`` and ``driftd baseline show``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from monitor.baseline import BaselineError, build_baseline, load_baseline
from monitor.baseline_checks import training_fit_warnings
from monitor.tables import read_table

app = typer.Typer(no_args_is_help=True)


@app.command("build")
def build(
    model: Annotated[str, typer.Option(help="Model name, as in the events' `model` field.")],
    version: Annotated[str, typer.Option(help="Model version, as in `model_version`.")],
    data: Annotated[Path, typer.Option(help="Training or validation data, .parquet or .csv.")],
    out: Annotated[Optional[Path], typer.Option(help="Output file (default baselines/<model>/<version>.json).")] = None,
    target: Annotated[Optional[str], typer.Option(help="Column with the true label.")] = None,
    prediction: Annotated[Optional[str], typer.Option(help="Column with the model's prediction.")] = None,
    score: Annotated[Optional[str], typer.Option(help="Column with the positive-class probability.")] = None,
    task: Annotated[str, typer.Option(help="binary, multiclass or regression.")] = "binary",
    bins: Annotated[int, typer.Option(help="Quantile bins per numeric feature.")] = 10,
    top_k: Annotated[int, typer.Option(help="Categories kept per categorical feature (rest = other).")] = 20,
    sample_size: Annotated[int, typer.Option(help="Bounded reference sample per numeric feature.")] = 2000,
    model_file: Annotated[Optional[Path], typer.Option(help="Model file: adds global SHAP importances.")] = None,
    store_url: Annotated[Optional[str], typer.Option(help="Also save the baseline in this store.")] = None,
) -> None:
    """Profile training data into a versioned reference profile."""
    if task not in ("binary", "multiclass", "regression"):
        raise typer.BadParameter(f"task must be binary, multiclass or regression, got {task!r}")
    try:
        frame = read_table(data)
        importances = None
        if model_file is not None:
            from explainers import global_importances  # optional: needs shap

            importances = global_importances(model_file, frame.drop(columns=[c for c in (target, prediction, score) if c]))
        baseline = build_baseline(
            frame, model, version, target=target, prediction=prediction, score=score, task=task,
            importances=importances, n_bins=bins, top_k=top_k, sample_size=sample_size, source=str(data),
        )
        path = baseline.save(out or Path("baselines") / model / f"{version}.json")
    except BaselineError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if store_url:
        from monitor.store import open_store

        store = open_store(store_url)
        store.migrate()
        store.save_baseline(model, version, baseline.to_dict())
    typer.echo(f"baseline {model} {version}: {len(baseline.features)} features, {len(frame)} rows -> {path} (sha256 {baseline.sha256[:12]})")
    for warning in training_fit_warnings(baseline):
        typer.echo(f"warning: {warning}", err=True)


@app.command("show")
def show(
    path: Annotated[Path, typer.Argument(help="A baseline JSON file.")],
    wide: Annotated[bool, typer.Option("--wide", help="Every row and column in full (tables fit 80 columns without).")] = False,
    section: Annotated[Optional[list[str]], typer.Option("--section", help="Only this section (repeatable): summary, features, outputs, performance, calibration, importances, budget.")] = None,
    config: Annotated[Optional[Path], typer.Option("--config", help="driftd.yaml whose drift and windows settings the budget section uses (default settings without).")] = None,
) -> None:
    """Print what a baseline holds: summary, features, outputs, performance, calibration, SHAP importances, budget."""
    from monitor.baseline_budget import budget_tables
    from monitor.baseline_show import sections
    from monitor.cli_tables import print_table
    from monitor.config import ConfigError, Settings, load_settings

    try:
        baseline = load_baseline(path)
        shown = sections(baseline, wide, section)
        settings = load_settings(config) if config is not None else Settings()
        if not section or "budget" in section:
            shown += [("budget", table) for table in budget_tables(baseline, settings.drift, settings.windows)]
    except (BaselineError, ValueError, ConfigError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    for index, (_, table) in enumerate(shown):
        if index:
            typer.echo("")
        print_table(table, wide)
