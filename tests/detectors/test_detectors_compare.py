"""``driftd compare`` end to end on real Parquet and CSV files.

KS equals ``scipy.stats.ks_2samp`` on the full columns to 1e-9 (statistic and
p-value); PSI equals a direct formula on reference-decile bins to 1e-12.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import typer
from scipy import stats
from typer.testing import CliRunner

from monitor.compare import compare

JSON_KEYS = {"reference", "current", "correction", "alpha", "drift_share", "drift_share_threshold",
             "dataset_drift", "drifted_features", "features", "multivariate"}
ROW_KEYS = {"feature", "kind", "method", "score", "score_infinite", "p_value", "p_value_corrected",
            "threshold", "drifted", "missing_reference", "missing_current", "nonfinite_reference",
            "nonfinite_current", "novelty", "novelty_p_value"}


def _frame(seed: int, rows: int, shift: float = 0.0, new_city: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    city = rng.choice(["paris", "oslo", "rome", "lima"], size=rows, p=[0.4, 0.3, 0.2, 0.1]).astype(object)
    city[rng.random(rows) < new_city] = "atlantis"
    income = rng.lognormal(0.0, 0.5, rows)
    income[rng.random(rows) < 0.03] = np.nan
    frame = pd.DataFrame({
        "age": rng.normal(40 + 10 * shift, 10, rows),
        "income": income,
        "city": city,
        "flag": rng.random(rows) < 0.3,
    })
    frame["score"] = 1 / (1 + np.exp(-(frame["age"] - 40) / 10))
    frame["label"] = (rng.random(rows) < frame["score"]).astype(int)
    return frame


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path, Path]:
    reference, drifted, same = tmp_path / "ref.parquet", tmp_path / "cur.csv", tmp_path / "same.csv"
    _frame(0, 4000).to_parquet(reference)
    _frame(1, 3000, shift=0.5, new_city=0.08).to_csv(drifted, index=False)
    _frame(2, 3000).to_csv(same, index=False)
    return reference, drifted, same


def _run(*args: str):
    app = typer.Typer()
    app.command()(compare)
    return CliRunner().invoke(app, list(args))


def test_json_report_equals_scipy_ks_and_direct_psi(files) -> None:
    reference, current, _ = files
    result = _run("--reference", str(reference), "--current", str(current), "--format", "json",
                  "--method", "ks", "--method", "psi")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert set(document) == JSON_KEYS and all(set(row) == ROW_KEYS for row in document["features"])
    rows = {(r["feature"], r["method"]): r for r in document["features"]}
    ref, cur = pd.read_parquet(reference), pd.read_csv(current)
    for column in ("age", "income"):
        expected = stats.ks_2samp(ref[column].dropna(), cur[column].dropna())
        assert rows[(column, "ks")]["score"] == pytest.approx(expected.statistic, rel=1e-9)
        assert rows[(column, "ks")]["p_value"] == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-300)
        values = ref[column].dropna().to_numpy()
        edges = np.unique(np.quantile(values, np.linspace(0, 1, 11)[1:-1]))
        p = np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1) / len(values)
        current_values = cur[column].dropna().to_numpy()
        q = np.bincount(np.searchsorted(edges, current_values, side="right"), minlength=len(edges) + 1) / len(current_values)
        p, q = np.maximum(p, 1e-4), np.maximum(q, 1e-4)
        assert rows[(column, "psi")]["score"] == pytest.approx(np.sum((q - p) * np.log(q / p)), rel=1e-12)
    assert rows[("age", "ks")]["drifted"] and not rows[("income", "ks")]["drifted"]
    assert rows[("income", "ks")]["missing_reference"] == pytest.approx(ref["income"].isna().mean())
    assert ("city", "psi") in rows and ("city", "ks") not in rows  # KS does not apply to categories


def test_default_methods_flag_the_shifted_features_only(files) -> None:
    reference, current, _ = files
    result = _run("-r", str(reference), "-c", str(current), "-f", "json", "--target", "label", "--prediction", "score")
    document = json.loads(result.stdout)
    methods = {(r["feature"], r["method"]) for r in document["features"]}
    assert ("age", "wasserstein") in methods and ("city", "chisquare") in methods and ("flag", "chisquare") in methods
    assert set(document["drifted_features"]) == {"age", "city"}
    assert {r["feature"] for r in document["features"]} >= {"__prediction__", "__label__"}
    assert next(r for r in document["features"] if r["feature"] == "__prediction__")["drifted"]


def test_no_drift_exits_zero_and_fail_on_drift_exits_one(files) -> None:
    reference, drifted, same = files
    quiet = _run("-r", str(reference), "-c", str(same), "-f", "json", "--fail-on-drift")
    assert quiet.exit_code == 0, quiet.output
    assert json.loads(quiet.stdout)["drifted_features"] == []
    assert _run("-r", str(reference), "-c", str(drifted), "-f", "json").exit_code == 0
    assert _run("-r", str(reference), "-c", str(drifted), "-f", "json", "--fail-on-drift").exit_code == 1


def test_bad_input_is_a_clear_error_with_status_two(files, tmp_path: Path) -> None:
    reference, current, _ = files
    unknown = _run("-r", str(reference), "-c", str(current), "-m", "kl")
    assert unknown.exit_code == 2 and "allowed: auto, chisquare" in unknown.output
    missing = _run("-r", str(reference), "-c", str(tmp_path / "nope.csv"))
    assert missing.exit_code == 2 and "does not exist" in missing.output
    bad_format = _run("-r", str(reference), "-c", str(current), "-f", "xml")
    assert bad_format.exit_code == 2 and "table, json, html" in bad_format.output
    narrow = tmp_path / "narrow.csv"
    pd.read_csv(current)[["age"]].to_csv(narrow, index=False)
    columns = _run("-r", str(reference), "-c", str(narrow))
    assert columns.exit_code == 2 and "income" in columns.output
    empty = tmp_path / "empty.csv"
    pd.read_csv(current).head(0).to_csv(empty, index=False)
    no_rows = _run("-r", str(reference), "-c", str(empty))
    assert no_rows.exit_code == 2 and "no rows" in no_rows.output


def test_unparseable_numbers_count_as_missing(files, tmp_path: Path) -> None:
    reference, current, _ = files
    garbled = tmp_path / "garbled.csv"
    frame = pd.read_csv(current)
    frame["age"] = frame["age"].astype(object)
    frame.loc[: len(frame) // 2 - 1, "age"] = "n/a"
    frame.to_csv(garbled, index=False)
    document = json.loads(_run("-r", str(reference), "-c", str(garbled), "-f", "json", "-m", "ks").stdout)
    age = next(r for r in document["features"] if r["feature"] == "age")
    assert age["missing_current"] == pytest.approx(0.5, abs=1e-3)
    assert age["score"] is not None  # the parseable half is still compared


def test_html_report_is_self_contained_with_a_histogram_per_feature(files, tmp_path: Path) -> None:
    reference, current, _ = files
    out = tmp_path / "report.html"
    result = _run("-r", str(reference), "-c", str(current), "-f", "html", "-o", str(out),
                  "-m", "auto", "-m", "jensenshannon", "-m", "domain_classifier")
    assert result.exit_code == 0, result.output
    page = out.read_text()
    assert page.count("<svg") == 6  # one histogram per column
    assert "<script" not in page and "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in page
    assert "atlantis" not in page and "(unseen)" in page  # unseen categories are binned, not listed
    assert "domain_classifier" in page and "DRIFT" in page


def test_table_output_lists_every_feature(files, tmp_path: Path) -> None:
    reference, current, _ = files
    out = tmp_path / "table.txt"
    result = _run("-r", str(reference), "-c", str(current), "-o", str(out))
    assert result.exit_code == 0, result.output
    text = out.read_text()
    for name in ("age", "income", "city", "flag", "score", "label", "wasserstein", "chisquare", "DRIFT"):
        assert name in text
