"""``driftd compare``: the drift detectors on two files, offline.

The reference file is profiled exactly as ``driftd baseline build`` profiles
training data (quantile bins, top-k categories), the current file is counted on
the same bins, and every method from :data:`detectors.registry.REGISTRY` can be
run. Unlike streaming windows, sample-based methods see the *full* columns, not
bounded samples, so KS equals ``scipy.stats.ks_2samp`` on the two columns.

Decisions follow the daemon's rule: the effect size must pass the method's
threshold and, for methods with a p-value, the p-value corrected across the
features tested by that method must be below ``alpha``. The multivariate method
defaults to the daemon's (``drift.multivariate_method``, pca_reconstruction).

A baseline JSON file as ``--reference`` (what ``driftd baseline build`` writes and
the daemon uses) is compared by :mod:`monitor.compare_baseline`: the stored profile
with exactly the daemon's decisions for one window of the current rows.

Exit status: 0 when the comparison ran (drift or not), 1 with ``--fail-on-drift``
when any feature or multivariate test drifted, 2 on bad input.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import orjson
import pandas as pd
import typer

from detectors.base import DetectorError, DriftResult, FeatureData
from detectors.decision import adjust_p_values, decide
from detectors.multivariate import MULTIVARIATE_METHODS
from detectors.multivariate import evaluate as evaluate_multivariate
from detectors.registry import REGISTRY, choose_method
from monitor.baseline import (
    BaselineError,
    FeatureProfile,
    build_baseline,
    category_strings,
    profile_column,
)
from monitor.tables import read_table

__all__ = ["Comparison", "FeatureRow", "compare", "run_comparison", "to_json"]

FORMATS = ("table", "json", "html")
CORRECTIONS = ("bh", "bonferroni", "none")
# Rows per side fed to multivariate methods (they fit models; full files would be slow).
MULTIVARIATE_ROWS = 5000
PREDICTION, PREDICTION_SCORE, LABEL = "__prediction__", "__prediction_score__", "__label__"
_OUTPUTS = (PREDICTION, PREDICTION_SCORE, LABEL)


@dataclass(frozen=True, slots=True)
class FeatureRow:
    """One method's verdict on one column, with what the report shows beside it."""

    result: DriftResult
    kind: str
    corrected_p_value: float | None
    missing_reference: float
    missing_current: float
    # ±inf values of a numeric column: excluded from bins and samples (as missing
    # values are) and counted here so that they stay visible (a data-quality signal).
    nonfinite_reference: int = 0
    nonfinite_current: int = 0


@dataclass(slots=True)
class Comparison:
    """Everything ``driftd compare`` reports; renderers only format it."""

    reference: str
    current: str
    reference_rows: int
    current_rows: int
    correction: str
    alpha: float
    drift_share_threshold: float
    rows: list[FeatureRow] = field(default_factory=list)
    multivariate: list[DriftResult] = field(default_factory=list)
    profiles: dict[str, FeatureProfile] = field(default_factory=dict)
    current_counts: dict[str, np.ndarray] = field(default_factory=dict)
    # "file": both sides are files (exact samples); "baseline": a stored baseline, daemon decisions.
    basis: str = "file"

    @property
    def drifted_features(self) -> list[str]:
        """Input features (not prediction or label) flagged by at least one method."""
        names = {r.result.feature for r in self.rows if r.result.drifted}
        return [n for n in self.profiles if n in names and n not in _OUTPUTS]

    @property
    def drift_share(self) -> float:
        features = [n for n in self.profiles if n not in _OUTPUTS]
        return len(self.drifted_features) / len(features) if features else 0.0

    @property
    def dataset_drift(self) -> bool:
        return self.drift_share >= self.drift_share_threshold or any(r.drifted for r in self.multivariate)

    @property
    def any_drift(self) -> bool:
        return any(r.result.drifted for r in self.rows) or any(r.drifted for r in self.multivariate)


def _current_counts(profile: FeatureProfile, column: pd.Series) -> tuple[np.ndarray, np.ndarray | None]:
    """Counts of ``column`` on the profile's bins and, for numbers, its finite values."""
    if profile.kind == "numeric":
        values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64)
        values = values[np.isfinite(values)]
        bins = np.searchsorted(profile.edges, values, side="right")
        return np.bincount(bins, minlength=profile.n_bins).astype(np.float64), values
    strings = category_strings(column).dropna()
    codes = profile.category_codes()
    unseen = profile.unseen_bin
    bins = np.fromiter((codes.get(str(v), unseen) for v in strings), dtype=np.int64, count=len(strings))
    return np.bincount(bins, minlength=profile.n_bins).astype(np.float64), None


def _methods_for(profile: FeatureProfile, requested: Sequence[str], column: pd.Series) -> list[str]:
    chosen = []
    for name in requested:
        if name == "auto":
            n_distinct = int(column.nunique(dropna=True)) if profile.kind == "numeric" else None
            name = choose_method(profile.kind, n_distinct)
        if profile.kind in REGISTRY[name].kinds and name not in chosen:
            chosen.append(name)
    return chosen


def _check_options(methods: Sequence[str], correction: str, alpha: float) -> None:
    allowed = ["auto", *REGISTRY]
    unknown = [m for m in methods if m not in allowed]
    if unknown:
        raise ValueError(f"--method: unknown {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")
    if correction not in CORRECTIONS:
        raise ValueError(f"--correction: {correction!r} not allowed; allowed: {', '.join(CORRECTIONS)}")
    if not 0 < alpha < 1:
        raise ValueError(f"--alpha: {alpha} not allowed; must be between 0 and 1")


def run_comparison(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    methods: Sequence[str] | None = None,
    target: str | None = None,
    prediction: str | None = None,
    score: str | None = None,
    multivariate: str = "pca_reconstruction",
    correction: str = "bh",
    alpha: float = 0.05,
    drift_share_threshold: float = 0.3,
    n_bins: int = 10,
    top_k: int = 20,
    reference_name: str = "reference",
    current_name: str = "current",
) -> Comparison:
    """Compare two frames column by column (and jointly, for multivariate methods).

    Raises
    ------
    ValueError
        An option or the data is unusable; the message names what and why.
    """
    requested = list(methods or ["auto"])
    _check_options(requested, correction, alpha)
    if multivariate != "none" and multivariate not in MULTIVARIATE_METHODS:
        raise ValueError(f"--multivariate: {multivariate!r} not allowed; allowed: none, {', '.join(MULTIVARIATE_METHODS)}")
    if current.empty:
        raise ValueError(f"{current_name}: the current data has no rows")
    special = [c for c in (target, prediction, score) if c]
    missing = [c for c in reference.columns if c not in current.columns]
    missing += [c for c in special if c not in current.columns and c not in missing]
    if missing:
        raise ValueError(f"columns of the reference missing from the current file: {', '.join(map(str, missing))}")
    features = [str(c) for c in reference.columns if c not in special]
    baseline = build_baseline(
        reference, "compare", "offline", features=features, n_bins=n_bins, top_k=top_k,
        sample_size=max(len(reference), 1), reference_rows=0,
    )
    profiles = dict(baseline.features)
    columns = {name: name for name in profiles}
    for pseudo, column, kind in ((PREDICTION, prediction, None), (PREDICTION_SCORE, score, "numeric"), (LABEL, target, None)):
        if column:
            profiles[pseudo] = profile_column(pseudo, reference[column], kind, n_bins=n_bins, top_k=top_k, sample_size=len(reference))
            columns[pseudo] = column
    comparison = Comparison(
        reference_name, current_name, len(reference), len(current), correction, alpha, drift_share_threshold,
        profiles=profiles,
    )
    by_method: dict[str, list[tuple[str, DriftResult, float, float]]] = {}
    for name, profile in profiles.items():
        cur_column = current[columns[name]]
        counts, values = _current_counts(profile, cur_column)
        comparison.current_counts[name] = counts
        data = FeatureData(
            profile.kind, profile.counts, counts,
            ref_sample=profile.sample if profile.kind == "numeric" else None,
            cur_sample=values, ref_std=profile.std if profile.kind == "numeric" else None,
            unseen_bin=profile.unseen_bin, exact=True, expected_unseen=profile.unseen_estimate,
        )
        # Numbers that do not parse count as missing, so a column of strings is not "complete".
        present = len(values) if values is not None else int(cur_column.notna().sum())
        infinite = (_infinite(reference[columns[name]]), _infinite(cur_column)) if profile.kind == "numeric" else (0, 0)
        missing_current = 1.0 - (present + infinite[1]) / len(cur_column)
        for method in _methods_for(profile, requested, reference[columns[name]]):
            spec = REGISTRY[method]
            score = spec.score(data)
            result = score.result(method, name, spec.default_threshold)
            entry = (profile.kind, result, profile.missing_ratio, missing_current, *infinite)
            by_method.setdefault(method, []).append(entry)
    for method, entries in by_method.items():
        decided = decide([e[1] for e in entries], correction=correction, alpha=alpha)
        with_p = [i for i, r in enumerate(decided) if r.p_value is not None and math.isfinite(r.p_value)]
        adjusted = dict(zip(with_p, adjust_p_values([decided[i].p_value for i in with_p], correction)))
        for i, ((kind, _, missing_ref, missing_cur, inf_ref, inf_cur), result) in enumerate(zip(entries, decided)):
            corrected = float(adjusted[i]) if i in adjusted else None
            comparison.rows.append(FeatureRow(result, kind, corrected, missing_ref, missing_cur, inf_ref, inf_cur))
    order = {name: i for i, name in enumerate(profiles)}
    comparison.rows.sort(key=lambda r: (order[r.result.feature], r.result.method))
    joint = [m for m in requested if m in MULTIVARIATE_METHODS]
    if multivariate != "none" and multivariate not in joint:
        joint.insert(0, multivariate)
    for method in joint:
        comparison.multivariate.append(_multivariate(method, reference, current, baseline.numeric_names, alpha))
    return comparison


def _infinite(column: pd.Series) -> int:
    """How many values of a column are ±inf (NaN and unparsable values are missing, not counted)."""
    return int(np.isinf(pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64)).sum())


def _multivariate(method: str, reference: pd.DataFrame, current: pd.DataFrame, names: list[str], alpha: float) -> DriftResult:
    def matrix(frame: pd.DataFrame) -> np.ndarray:
        rows = frame[names].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
        if len(rows) > MULTIVARIATE_ROWS:
            rows = rows[np.random.default_rng(0).choice(len(rows), MULTIVARIATE_ROWS, replace=False)]
        return rows

    if len(names) < 2:
        spec = REGISTRY[method]
        return DriftResult(method, "__multivariate__", float("nan"), None, spec.default_threshold, False)
    return evaluate_multivariate(method, matrix(reference), matrix(current), alpha=alpha)


def _number(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def to_json(comparison: Comparison) -> bytes:
    """The JSON document of a comparison (keys documented in docs/detectors.md)."""
    document: dict[str, Any] = {
        "reference": {"path": comparison.reference, "rows": comparison.reference_rows},
        "current": {"path": comparison.current, "rows": comparison.current_rows},
        "correction": comparison.correction,
        "alpha": comparison.alpha,
        "drift_share": comparison.drift_share,
        "drift_share_threshold": comparison.drift_share_threshold,
        "dataset_drift": comparison.dataset_drift,
        "drifted_features": comparison.drifted_features,
        "features": [
            {
                "feature": row.result.feature,
                "kind": row.kind,
                "method": row.result.method,
                "score": _number(row.result.score),
                "score_infinite": bool(row.result.score is not None and math.isinf(row.result.score)),
                "p_value": _number(row.result.p_value),
                "p_value_corrected": _number(row.corrected_p_value),
                "threshold": row.result.threshold,
                "drifted": row.result.drifted,
                "missing_reference": row.missing_reference,
                "missing_current": row.missing_current,
                "nonfinite_reference": row.nonfinite_reference,
                "nonfinite_current": row.nonfinite_current,
                "novelty": _number(row.result.novelty),
                "novelty_p_value": _number(row.result.novelty_p_value),
            }
            for row in comparison.rows
        ],
        "multivariate": [
            {
                "method": r.method,
                "score": _number(r.score),
                "p_value": _number(r.p_value),
                "threshold": r.threshold,
                "drifted": r.drifted,
            }
            for r in comparison.multivariate
        ],
    }
    return orjson.dumps(document, option=orjson.OPT_INDENT_2)


_METHODS_HELP = (
    f"Method(s) to run (repeatable): auto or any registered method ({', '.join(sorted(REGISTRY))}); "
    "`driftd methods` lists them with their thresholds and sources."
)


def compare(
    reference: Annotated[Path, typer.Option("--reference", "-r", help="Reference: data (Parquet, CSV) or a baseline JSON from `driftd baseline build`.")],
    current: Annotated[Path, typer.Option("--current", "-c", help="Current data (Parquet or CSV).")],
    format: Annotated[str, typer.Option("--format", "-f", help="table, json or html.")] = "table",
    method: Annotated[list[str] | None, typer.Option("--method", "-m", help=_METHODS_HELP)] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write the report here instead of stdout.")] = None,
    target: Annotated[str | None, typer.Option(help="Label column: label (prior) drift.")] = None,
    prediction: Annotated[str | None, typer.Option(help="Prediction column: prediction drift.")] = None,
    score: Annotated[str | None, typer.Option(help="Positive-class probability column: score drift.")] = None,
    multivariate: Annotated[str, typer.Option(help=f"Joint drift of the numeric features: none or {', '.join(MULTIVARIATE_METHODS)} (the daemon's default).")] = "pca_reconstruction",
    config: Annotated[Path | None, typer.Option("--config", help="driftd.yaml: with a baseline reference, its drift settings (else the defaults).")] = None,
    correction: Annotated[str, typer.Option(help="P-value correction: bh, bonferroni or none.")] = "bh",
    alpha: Annotated[float, typer.Option(help="Significance level after correction.")] = 0.05,
    drift_share: Annotated[float, typer.Option(help="Dataset drift when this share of features drifted.")] = 0.3,
    fail_on_drift: Annotated[bool, typer.Option(help="Exit with status 1 when anything drifted.")] = False,
    wide: Annotated[bool, typer.Option("--wide", help="Every table column in full (the table fits 80 columns without).")] = False,
) -> None:
    """Compare data with a reference: per feature method, score, p-value, threshold and decision.

    The reference is a data file (both files profiled and compared in full) or a
    baseline JSON (the stored profile, decided exactly as `driftd run` decides one
    window; --config gives its drift settings).
    """
    if format not in FORMATS:
        raise typer.BadParameter(f"{format!r} not allowed; allowed: {', '.join(FORMATS)}", param_hint="--format")
    try:
        if reference.suffix.lower() == ".json":
            comparison = _against_baseline(reference, current, config, target, prediction, score)
        else:
            comparison = run_comparison(
                read_table(reference), read_table(current), methods=method, target=target, prediction=prediction,
                score=score, multivariate=multivariate, correction=correction, alpha=alpha,
                drift_share_threshold=drift_share, reference_name=str(reference), current_name=str(current),
            )
    except (BaselineError, DetectorError, ValueError) as exc:
        typer.echo(f"driftd compare: {exc}", err=True)
        raise typer.Exit(2) from None
    if format == "json":
        text = to_json(comparison).decode()
    elif format == "html":
        from monitor.compare_html import render_html

        text = render_html(comparison)
    else:
        from monitor.cli_tables import compare_table, print_table, render_text

        text = "" if out is None else render_text(compare_table(comparison, wide), wide)
        if out is None:
            print_table(compare_table(comparison, wide), wide)
    if out is not None:
        out.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {out}", err=True)
    elif text:
        typer.echo(text)
    if fail_on_drift and comparison.any_drift:
        raise typer.Exit(1)


def _against_baseline(reference: Path, current: Path, config: Path | None, target: str | None,
                      prediction: str | None, score: str | None) -> Comparison:
    from monitor.baseline import load_baseline
    from monitor.compare_baseline import compare_to_baseline
    from monitor.config import ConfigError, load_settings

    try:
        settings = load_settings(config)
    except ConfigError as exc:
        raise ValueError(str(exc)) from None
    return compare_to_baseline(load_baseline(reference), read_table(current), settings, prediction=prediction,
                               score=score, target=target, reference_name=str(reference), current_name=str(current))
