"""The SQL rules on SQLite pipelines: one query per item, and a query that scans a whole table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from aitax.analysis.rules.full_scan import scanned_tables
from aitax.capture.sql import StatementStats, database_path, normalize
from conftest import profile_source

QUERY_PER_ITEM = """
import os
import sqlite3
import aitax

if os.path.exists("items.db"):
    os.remove("items.db")
db = sqlite3.connect("items.db")
db.execute("create table items (id integer primary key, price real)")
db.executemany("insert into items values (?, ?)", [(i, i * 0.25) for i in range(5000)])
db.commit()

def fetch_prices(ids):
    return [db.execute("select price from items where id = ?", (i,)).fetchone()[0] for i in ids]

for request in range(60):
    ids = list(range(request * 50, request * 50 + 100))
    with aitax.request():
        with aitax.stage("feature_fetch"):
            prices = fetch_prices(ids)
"""
ONE_QUERY_PER_REQUEST = QUERY_PER_ITEM.replace(
    """    return [db.execute("select price from items where id = ?", (i,)).fetchone()[0] for i in ids]""",
    """    marks = ", ".join("?" * len(ids))
    rows = dict(db.execute(f"select id, price from items where id in ({marks})", ids).fetchall())
    return [rows[i] for i in ids]""",
)

FULL_SCAN = """
import os
import sqlite3
import aitax

if os.path.exists("events.db"):
    os.remove("events.db")
db = sqlite3.connect("events.db")
db.execute("create table events (user_id integer, amount real)")
db.executemany("insert into events values (?, ?)", [(i % 2000, i * 0.5) for i in range(40000)])
db.commit()

def fetch_total(user):
    return db.execute("select sum(amount) from events where user_id = ?", (user,)).fetchone()[0]

for user in range(60):
    with aitax.request():
        with aitax.stage("feature_fetch"):
            total = fetch_total(user)
"""
INDEXED = FULL_SCAN.replace(
    "db.commit()", 'db.execute("create index events_user_id on events(user_id)")\ndb.commit()'
)

SOURCES = {
    "query-per-item": (QUERY_PER_ITEM, ONE_QUERY_PER_REQUEST),
    "full-table-scan": (FULL_SCAN, INDEXED),
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], dict[str, Any]]:
    results = {}
    for rule, (planted, fixed) in SOURCES.items():
        results[(rule, "planted")] = profile_source(tmp_path_factory.mktemp("planted"), planted)
        results[(rule, "fixed")] = profile_source(tmp_path_factory.mktemp("fixed"), fixed)
    return results


def finding_of(run: dict[str, Any], rule: str) -> dict[str, Any]:
    return next(finding for finding in run["findings"] if finding["rule"] == rule)


def fetch_s(run: dict[str, Any]) -> float:
    """Return the marked feature_fetch stage's clean-pass time."""
    return sum(
        stage["total_s"]
        for stage in run["stages"]
        if stage["name"] == "feature_fetch" and stage["source"] == "marked"
    )


@pytest.mark.parametrize("rule", sorted(SOURCES))
def test_planted_query_fires_in_top_three(
    runs: dict[tuple[str, str], dict[str, Any]], rule: str
) -> None:
    findings = runs[(rule, "planted")]["findings"]
    assert rule in [finding["rule"] for finding in findings[:3]]
    assert finding_of(runs[(rule, "planted")], rule)["stage"] == "feature_fetch"


@pytest.mark.parametrize("rule", sorted(SOURCES))
def test_fixed_query_does_not_fire(runs: dict[tuple[str, str], dict[str, Any]], rule: str) -> None:
    assert rule not in [finding["rule"] for finding in runs[(rule, "fixed")]["findings"]]


def test_query_per_item_evidence_names_statement(
    runs: dict[tuple[str, str], dict[str, Any]],
) -> None:
    finding = finding_of(runs[("query-per-item", "planted")], "query-per-item")
    assert "select price from items where id = ?" in finding["evidence"]
    assert "100 per request" in finding["evidence"]
    # The statements run in the list comprehension, a function of its own in Python 3.11.
    lines = QUERY_PER_ITEM.splitlines()
    comprehension = next(i for i, line in enumerate(lines, 1) if "return [db.execute" in line)
    assert finding["locations"][0].endswith(f"pipeline.py:{comprehension}")


def test_full_scan_evidence_shows_plan_and_index(
    runs: dict[tuple[str, str], dict[str, Any]],
) -> None:
    finding = finding_of(runs[("full-table-scan", "planted")], "full-table-scan")
    assert "SCAN events" in finding["evidence"]
    assert "on events(user_id)" in finding["code_sketch"]


def test_query_per_item_estimate_near_measured(
    runs: dict[tuple[str, str], dict[str, Any]],
) -> None:
    """The estimate counts only each statement's fixed cost, but the measured saving also
    drops per-call Python work. So the estimate may fall short, and must be within 0.5x-1.5x."""
    planted, fixed = runs[("query-per-item", "planted")], runs[("query-per-item", "fixed")]
    measured_ms = 1000 * (fetch_s(planted) - fetch_s(fixed))
    estimate_ms = finding_of(planted, "query-per-item")["estimated_saving_ms"]
    assert 0.5 * measured_ms <= estimate_ms <= 1.5 * measured_ms


def test_full_scan_estimate_near_measured(runs: dict[tuple[str, str], dict[str, Any]]) -> None:
    """The estimate must fall within 30 % of the fetch time that the index saved."""
    planted, fixed = runs[("full-table-scan", "planted")], runs[("full-table-scan", "fixed")]
    measured_ms = 1000 * (fetch_s(planted) - fetch_s(fixed))
    estimate_ms = finding_of(planted, "full-table-scan")["estimated_saving_ms"]
    assert estimate_ms == pytest.approx(measured_ms, rel=0.3)


@pytest.mark.parametrize(
    ("statement", "key", "example", "parameters"),
    [
        (
            "select v from f where id = 42",
            "select v from f where id = ?",
            "select v from f where id = ?",
            1,
        ),
        (
            "select * from t2 where name = 'it''s' and  score > 0.5",
            "select * from t2 where name = ? and score > ?",
            "select * from t2 where name = ? and score > ?",
            2,
        ),
        (
            "select v from f where id in (1, 2, 3)",
            "select v from f where id in (?, ...)",
            "select v from f where id in (?, ?, ?)",
            3,
        ),
        (
            "insert into f values (1, x'0aff'), (2, x'00')",
            "insert into f values (?, ...), ...",
            "insert into f values (?, ?), (?, ?)",
            4,
        ),
        ("select :name, @value, $other", "select ?, ?, ?", "select ?, ?, ?", 3),
    ],
)
def test_normalize_replaces_literals(
    statement: str, key: str, example: str, parameters: int
) -> None:
    assert normalize(statement) == (key, example, parameters)


@pytest.mark.parametrize(
    ("database", "uri", "expected"),
    [
        (":memory:", False, None),
        ("", False, None),
        ("file::memory:?cache=shared", True, None),
        ("file:shared?mode=memory&cache=shared", True, None),
        ("file:data/app.db?mode=ro", True, "data/app.db"),
        ("data/app.db", False, "data/app.db"),
    ],
)
def test_database_path_skips_memory(
    database: str, uri: bool, expected: str | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    path = database_path(database, uri)
    assert path == (None if expected is None else str((tmp_path / expected).resolve()))


@pytest.mark.parametrize(
    ("plan", "tables"),
    [
        (["SCAN events"], ["events"]),
        (["SEARCH events USING INDEX events_user_id (user_id=?)"], []),
        (["SCAN events USING COVERING INDEX events_user_id"], []),
        (["SCAN CONSTANT ROW"], []),
        (["SCAN a", "SEARCH b USING INTEGER PRIMARY KEY (rowid=?)"], ["a"]),
    ],
)
def test_scanned_tables_reads_plan(plan: list[str], tables: list[str]) -> None:
    statement = StatementStats("select 1", "select 1", 0, None, "app.py", 1, "f", plan=plan)
    assert scanned_tables(statement) == tables
