"""Diagnosis rules on small pipelines: each planted problem fires, and its fixed twin does not."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import run_aitax

ROW_LOOP = """
import aitax, numpy as np, pandas as pd
frame = pd.DataFrame({"a": np.arange(1, 401.0), "b": np.arange(401.0, 1, -1)})
for _ in range(40):
    with aitax.request():
        with aitax.stage("feature_compute"):
            ratios = [row["a"] / row["b"] for _, row in frame.iterrows()]
"""
ROW_LOOP_FIXED = ROW_LOOP.replace(
    'ratios = [row["a"] / row["b"] for _, row in frame.iterrows()]',
    'ratios = frame["a"] / frame["b"]',
)

SINGLE_ROW = """
import aitax, numpy as np
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
x, y = load_iris(return_X_y=True)
model = LogisticRegression(max_iter=500).fit(x, y)
# 450 calls, so that the CPU pass, whose samples can be 10 ms or more apart,
# samples the model call.
for row in np.concatenate([x, x, x]):
    with aitax.request():
        with aitax.stage("inference"):
            model.predict_proba(row.reshape(1, -1))
"""
SINGLE_ROW_FIXED = """
import aitax, numpy as np
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
x, y = load_iris(return_X_y=True)
model = LogisticRegression(max_iter=500).fit(x, y)
for batch in np.array_split(x[:150], 3):
    with aitax.request(size=len(batch)):
        with aitax.stage("inference"):
            model.predict_proba(batch)
"""

REPEATED_FETCH = """
import aitax, sqlite3
db = sqlite3.connect(":memory:")
db.execute("create table f (id integer, v real)")
db.executemany("insert into f values (?, ?)", [(i, i * 0.5) for i in range(20000)])
for i in range(200):
    key = i % 10
    with aitax.request():
        with aitax.stage("feature_fetch", key=key):
            db.execute("select v from f where id = ?", (key,)).fetchall()
"""
REPEATED_FETCH_FIXED = """
import aitax, sqlite3
db = sqlite3.connect(":memory:")
db.execute("create table f (id integer, v real)")
db.executemany("insert into f values (?, ?)", [(i, i * 0.5) for i in range(20000)])
cache = {}
for i in range(200):
    key = i % 10
    with aitax.request():
        if key not in cache:
            with aitax.stage("feature_fetch", key=key):
                cache[key] = db.execute("select v from f where id = ?", (key,)).fetchall()
"""

VERBOSE_LOGS = """
import aitax, json, logging
logging.basicConfig(filename="service.log", level=logging.INFO)
log = logging.getLogger("service")
features = {f"feature_{i}": i * 0.1 for i in range(3000)}
for i in range(150):
    with aitax.request():
        with aitax.stage("feature_compute"):
            sum(x * x for x in range(30000))
        with aitax.stage("logging"):
            log.info(json.dumps({"id": i, "features": features}))
"""
VERBOSE_LOGS_FIXED = VERBOSE_LOGS.replace(
    'log.info(json.dumps({"id": i, "features": features}))', 'log.info("scored id=%s", i)'
)

CASES = {
    "vectorize": (ROW_LOOP, ROW_LOOP_FIXED),
    "batch": (SINGLE_ROW, SINGLE_ROW_FIXED),
    "cache": (REPEATED_FETCH, REPEATED_FETCH_FIXED),
    "logging": (VERBOSE_LOGS, VERBOSE_LOGS_FIXED),
}


def findings_of(tmp_path: Path, source: str) -> list[dict]:  # type: ignore[type-arg]
    (tmp_path / "pipeline.py").write_text(source, encoding="utf-8")
    result = run_aitax("run", "-q", "--force", "-o", "rep", "pipeline.py", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    return json.loads((tmp_path / "rep" / "run.json").read_text())["findings"]  # type: ignore[no-any-return]


@pytest.mark.parametrize("category", sorted(CASES))
def test_planted_problem_fires_in_top_three(tmp_path: Path, category: str) -> None:
    planted, _ = CASES[category]
    findings = findings_of(tmp_path, planted)
    categories = [finding["category"] for finding in findings[:3]]
    assert category in categories
    finding = next(f for f in findings if f["category"] == category)
    assert finding["estimated_saving_ms"] > 0
    assert finding["evidence"]
    assert finding["fix"]
    assert finding["severity"] in {"high", "medium", "low"}


@pytest.mark.parametrize("category", sorted(CASES))
def test_fixed_twin_does_not_fire(tmp_path: Path, category: str) -> None:
    _, fixed = CASES[category]
    findings = findings_of(tmp_path, fixed)
    assert category not in [finding["category"] for finding in findings]
