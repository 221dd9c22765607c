"""``driftd init``: a first configuration and baseline for your own model, in one step.

::

    driftd init --model churn --data train.parquet --target churned \\
        --prediction predicted --score p_churn --bootstrap-servers kafka:9092

reads the training (or validation) data, builds the baseline of version
``--version`` into ``baselines/<model>/<version>.json`` next to the configuration,
writes a commented ``driftd.yaml`` that names it, checks that the file loads, and
prints the next commands. An existing configuration is never overwritten without
``--force``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

__all__ = ["init", "render_config"]

_TEMPLATE = """\
# driftd configuration written by `driftd init` for model {model!r}.
# Every key is documented in examples/driftd.yaml; DRIFTD_<SECTION>__<KEY>
# environment variables override this file (e.g. DRIFTD_KAFKA__BOOTSTRAP_SERVERS).

kafka:
  # comma-separated host:port
  bootstrap_servers: {bootstrap}
  predictions_topic: {predictions}
  labels_topic: {labels}
  # invalid messages go here, with the reason
  dead_letter_topic: {dead_letter}
  # daemons in one group split the partitions
  group_id: {group_id}

windows:
  # event-time tumbling windows; events later than the lateness are counted as late
  size_seconds: {window}
  allowed_lateness_seconds: {lateness}
  # smaller windows are closed but not tested for drift
  min_events: {min_events}

models:
  # name as in the events' `model` field; baseline built by `driftd init` from {data}
  - name: {model}
    baseline: {baseline}
    # binary, multiclass or regression
    task: {task}
{positive}
store:
  # SQLite here; postgresql+psycopg://user@host/db in production
  url: {store}

http:
  # /metrics, /healthz, /readyz and the alert receiver
  host: {host}
  port: {port}

alerts:
  # dashboard links in alert annotations
  grafana_url: {grafana}
app:
  # investigation links in alert annotations
  url: {app}
"""


def _quote(text: str) -> str:
    import json

    return json.dumps(str(text))


def render_config(*, model: str, baseline: str, data: str, task: str,
                  positive_class: str | None, bootstrap: str, topic_prefix: str, store: str,
                  window: int, host: str, port: int, grafana: str, app: str) -> str:
    """The text of the configuration ``driftd init`` writes."""
    positive = (f"    # the class the scores refer to\n    positive_class: {_quote(positive_class)}\n"
                if positive_class is not None else "")
    return _TEMPLATE.format(
        model=model, baseline=_quote(baseline), data=data, task=task, positive=positive,
        bootstrap=_quote(bootstrap), predictions=_quote(f"{topic_prefix}.predictions"),
        labels=_quote(f"{topic_prefix}.labels"), dead_letter=_quote(f"{topic_prefix}.dead-letter"),
        group_id=_quote(f"{topic_prefix}-{model}"), window=window,
        lateness=max(0, window // 5), min_events=100, store=_quote(store), host=_quote(host),
        port=port, grafana=_quote(grafana), app=_quote(app))


def _infer_task(labels) -> str:
    import pandas as pd

    values = labels.dropna()
    if pd.api.types.is_float_dtype(values) and values.nunique() > 20:
        return "regression"
    return "binary" if values.nunique() <= 2 else "multiclass"


def _positive_class(labels) -> str | None:
    from monitor.baseline import category_strings

    classes = sorted(set(category_strings(labels.dropna())))
    if "1" in classes or len(classes) != 2:
        return None  # the default, "1"
    return classes[-1]


def init(
    model: Annotated[str, typer.Option(help="Model name, as in the events' `model` field.")],
    data: Annotated[Path, typer.Option(help="Training or validation data, .parquet or .csv.",
                                       exists=True, dir_okay=False)],
    target: Annotated[Optional[str], typer.Option(help="Column with the true label.")] = None,
    prediction: Annotated[Optional[str], typer.Option(help="Column with the model's prediction.")] = None,
    score: Annotated[Optional[str], typer.Option(help="Column with the positive-class probability.")] = None,
    version: Annotated[str, typer.Option(help="Model version, as in `model_version`.")] = "v1",
    task: Annotated[str, typer.Option(help="auto, binary, multiclass or regression.")] = "auto",
    drop: Annotated[Optional[list[str]], typer.Option(help="Column that is not a feature (repeatable), e.g. an id.")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Configuration file to write.")] = Path("driftd.yaml"),
    bootstrap_servers: Annotated[str, typer.Option(help="Kafka bootstrap servers.")] = "127.0.0.1:9092",
    topic_prefix: Annotated[str, typer.Option(help="Topics <prefix>.predictions, .labels, .dead-letter.")] = "driftd",
    store_url: Annotated[Optional[str], typer.Option(help="Store URL (default: SQLite next to the configuration).")] = None,
    window_seconds: Annotated[int, typer.Option(help="Window size in seconds.")] = 300,
    host: Annotated[str, typer.Option(help="Address of /metrics (0.0.0.0 in a container).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port of /metrics and the health endpoints.")] = 9108,
    force: Annotated[bool, typer.Option(help="Overwrite an existing configuration and baseline.")] = False,
) -> None:
    """Write driftd.yaml for your model and build its baseline from training data."""
    from monitor.baseline import BaselineError, build_baseline
    from monitor.config import ConfigError, load_settings
    from monitor.tables import read_table

    if out.exists() and not force:
        typer.echo(f"error: {out} exists; pass --force to overwrite it", err=True)
        raise typer.Exit(2)
    if task not in ("auto", "binary", "multiclass", "regression"):
        typer.echo(f"error: --task: {task!r}; allowed: auto, binary, multiclass, regression", err=True)
        raise typer.Exit(2)
    root = out.resolve().parent
    relative = Path("baselines") / model / f"{version}.json"
    try:
        frame = read_table(data)
        for column in drop or []:
            if column not in frame.columns:
                raise BaselineError(f"--drop {column!r}: no such column; columns: {', '.join(map(str, frame.columns))}")
        frame = frame.drop(columns=list(drop or []))
        if target is not None and target not in frame.columns:
            raise BaselineError(f"--target {target!r}: no such column; columns: {', '.join(map(str, frame.columns))}")
        chosen = task if task != "auto" else (_infer_task(frame[target]) if target else "binary")
        positive = _positive_class(frame[target]) if target and chosen == "binary" else None
        baseline = build_baseline(frame, model, version, target=target, prediction=prediction,
                                  score=score, task=chosen, positive_class=positive or "1",
                                  source=str(data))
        if (root / relative).exists():
            if not force:
                raise BaselineError(f"{root / relative} exists; pass --force to rebuild it, or "
                                    f"use another --version")
            (root / relative).unlink()
        baseline.save(root / relative)
    except BaselineError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    text = render_config(
        model=model, baseline=str(relative), data=data.name, task=chosen, positive_class=positive,
        bootstrap=bootstrap_servers, topic_prefix=topic_prefix,
        store=store_url or f"sqlite:///{root / 'driftd.db'}", window=window_seconds, host=host,
        port=port, grafana="http://127.0.0.1:3000", app="http://127.0.0.1:8501")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    try:
        load_settings(out)
    except ConfigError as exc:  # an option produced a value the configuration refuses
        out.unlink()
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"baseline {model} {version}: {len(baseline.features)} features, {len(frame)} rows, "
               f"task {chosen} -> {root / relative}")
    typer.echo(f"wrote {out}\n\nnext:\n"
               f"  driftd run --config {out}\n"
               f"  driftd rules generate --config {out} --out rules/\n"
               f"  driftd dashboards generate --config {out} --out grafana/\n"
               f"  driftd app --config {out}")
