"""Golden values from alibi-detect 0.13 TabularDrift and KSDrift, for tests/detectors.

alibi-detect 0.13 pins numpy < 2, so it cannot share the project's environment.
Run this script in a separate one and commit the JSON it writes:

    uv venv --python 3.11 /tmp/alibi-venv
    uv pip install --python /tmp/alibi-venv/bin/python "alibi-detect==0.13.*" "numpy<2" pandas
    /tmp/alibi-venv/bin/python tests/detectors/golden/make_alibi_golden.py

The JSON holds the input data themselves (not only seeds), so the test does not
depend on random streams being equal across numpy versions. alibi_detect is
imported inside the functions so that pytest can collect this file (doctests) in
the project's environment.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

OUT = Path(__file__).with_name("alibi_golden.json")


def case(seed: int, n_ref: int, n_cur: int, shift: float, new_category: float) -> dict:
    from alibi_detect.cd import KSDrift, TabularDrift  # only in alibi's own environment

    rng = np.random.default_rng(seed)
    ref_num = rng.normal(size=(n_ref, 3))
    cur_num = rng.normal(size=(n_cur, 3))
    cur_num[:, 0] += shift
    cur_num[:, 1] *= 1.0 + shift
    ref_cat = rng.choice(4, size=(n_ref, 2), p=[0.4, 0.3, 0.2, 0.1])
    cur_cat = rng.choice(4, size=(n_cur, 2), p=[0.4, 0.3, 0.2, 0.1])
    cur_cat[rng.random(n_cur) < new_category, 0] = 4  # a category the reference never saw
    ref = np.round(np.hstack([ref_num, ref_cat]), 5)
    cur = np.round(np.hstack([cur_num, cur_cat]), 5)
    categories = {3: None, 4: None}
    out = {"seed": seed, "reference": ref.tolist(), "current": cur.tolist(), "categorical_columns": [3, 4]}
    for correction in ("bonferroni", "fdr"):
        detector = TabularDrift(ref, p_val=0.05, categories_per_feature=categories, correction=correction)
        prediction = detector.predict(cur, drift_type="feature" if correction == "bonferroni" else "batch")
        data = prediction["data"]
        if correction == "bonferroni":
            out["tabular_feature_p_values"] = np.asarray(data["p_val"], dtype=float).tolist()
            out["tabular_feature_distances"] = np.asarray(data["distance"], dtype=float).tolist()
            out["tabular_feature_is_drift"] = np.asarray(data["is_drift"]).astype(int).tolist()
        batch = TabularDrift(ref, p_val=0.05, categories_per_feature=categories, correction=correction)
        out[f"tabular_batch_is_drift_{correction}"] = int(batch.predict(cur, drift_type="batch")["data"]["is_drift"])
    ks_detector = KSDrift(ref[:, :3], p_val=0.05)
    ks_prediction = ks_detector.predict(cur[:, :3], drift_type="feature")["data"]
    out["ks_p_values"] = np.asarray(ks_prediction["p_val"], dtype=float).tolist()
    out["ks_distances"] = np.asarray(ks_prediction["distance"], dtype=float).tolist()
    return out


def main() -> None:
    import alibi_detect

    cases = [
        case(0, 400, 300, 0.0, 0.0),
        case(1, 400, 300, 0.3, 0.0),
        case(2, 500, 250, 0.1, 0.08),
        case(3, 300, 300, 0.05, 0.02),
    ]
    document = {
        "generator": "tests/detectors/golden/make_alibi_golden.py",
        "alibi_detect": alibi_detect.__version__,
        "numpy": np.__version__,
        "notes": "TabularDrift: KS (mode='asymp') on numeric columns, chi2_contingency on categorical; "
        "p-values and distances stored by alibi as float32",
        "cases": cases,
    }
    OUT.write_text(json.dumps(document, indent=1))
    print(f"wrote {OUT} ({len(cases)} cases)")


if __name__ == "__main__":
    main()
