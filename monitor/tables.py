"""Reading reference and current data files (Parquet or CSV) with errors that say what is wrong."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from monitor.baseline import BaselineError

__all__ = ["read_table"]


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a Parquet or CSV file into a DataFrame, with a clear error for other formats."""
    path = Path(path)
    suffix = path.suffix.lower()
    if not path.exists():
        raise BaselineError(f"data file {path} does not exist")
    if suffix in (".parquet", ".pq"):
        return pd.read_parquet(path)
    if suffix in (".csv", ".gz") or path.name.endswith(".csv.gz"):
        return pd.read_csv(path)
    raise BaselineError(f"{path}: unsupported format {suffix!r}; use .parquet or .csv")
