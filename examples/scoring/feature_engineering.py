"""Model features of the scoring example, derived row by row or vectorized.

`compute_features` is what prepare.py trains on and service_optimized.py serves
with. `compute_features_rowwise` is the naive service's version, which builds the
same features one value at a time through pandas.apply(axis=1). Both take the
training stats as a DataFrame indexed by raw column, with "mean" and "std" columns.
"""

from __future__ import annotations

from typing import Final

import pandas as pd

# The ten nuclear measurements of the Wisconsin diagnostic breast cancer data, in the order
# of sklearn.datasets.load_breast_cancer: each appears as mean, standard error and worst.
MEASUREMENTS: Final = (
    "radius",
    "texture",
    "perimeter",
    "area",
    "smoothness",
    "compactness",
    "concavity",
    "concave_points",
    "symmetry",
    "fractal_dimension",
)
RAW_COLUMNS: Final = (
    tuple(f"mean_{name}" for name in MEASUREMENTS)
    + tuple(f"{name}_error" for name in MEASUREMENTS)
    + tuple(f"worst_{name}" for name in MEASUREMENTS)
)

# Concavity and concave points are 0 for some samples, so they are left out of the ratios.
WORST_TO_MEAN_MEASUREMENTS: Final = (
    "radius",
    "texture",
    "perimeter",
    "area",
    "smoothness",
    "compactness",
    "symmetry",
    "fractal_dimension",
)
ERROR_TO_MEAN_MEASUREMENTS: Final = ("radius", "texture", "perimeter", "area")
FEATURE_COLUMNS: Final = (
    tuple(f"{column}_z" for column in RAW_COLUMNS)
    + tuple(f"{name}_worst_to_mean" for name in WORST_TO_MEAN_MEASUREMENTS)
    + tuple(f"{name}_error_to_mean" for name in ERROR_TO_MEAN_MEASUREMENTS)
    + ("circularity", "area_to_radius_squared")
)


def derive_row(row: pd.Series, stats: pd.DataFrame) -> pd.Series:
    """Derive the model features of one row of raw measurements, one value at a time."""
    features: dict[str, float] = {}
    for column in RAW_COLUMNS:
        features[f"{column}_z"] = (row[column] - stats.at[column, "mean"]) / stats.at[column, "std"]

    for name in WORST_TO_MEAN_MEASUREMENTS:
        features[f"{name}_worst_to_mean"] = row[f"worst_{name}"] / row[f"mean_{name}"]

    for name in ERROR_TO_MEAN_MEASUREMENTS:
        features[f"{name}_error_to_mean"] = row[f"{name}_error"] / row[f"mean_{name}"]

    perimeter, area, radius = row["mean_perimeter"], row["mean_area"], row["mean_radius"]
    features["circularity"] = perimeter * perimeter / area
    features["area_to_radius_squared"] = area / (radius * radius)
    return pd.Series(features)


def compute_features_rowwise(raw: pd.DataFrame, stats: pd.DataFrame) -> pd.DataFrame:
    return raw.apply(derive_row, axis=1, stats=stats)[list(FEATURE_COLUMNS)]


def compute_features(raw: pd.DataFrame, stats: pd.DataFrame) -> pd.DataFrame:
    """Derive the model features of all rows at once.

    Uses the same float64 operations in the same order as `derive_row`, so both
    return bit-identical values.
    """
    columns = list(RAW_COLUMNS)
    z_scores = (raw[columns] - stats["mean"]) / stats["std"]
    parts = [z_scores.add_suffix("_z")]

    for name in WORST_TO_MEAN_MEASUREMENTS:
        parts.append((raw[f"worst_{name}"] / raw[f"mean_{name}"]).rename(f"{name}_worst_to_mean"))

    for name in ERROR_TO_MEAN_MEASUREMENTS:
        parts.append((raw[f"{name}_error"] / raw[f"mean_{name}"]).rename(f"{name}_error_to_mean"))

    perimeter, area, radius = raw["mean_perimeter"], raw["mean_area"], raw["mean_radius"]
    parts.append((perimeter * perimeter / area).rename("circularity"))
    parts.append((area / (radius * radius)).rename("area_to_radius_squared"))
    return pd.concat(parts, axis=1)[list(FEATURE_COLUMNS)]
