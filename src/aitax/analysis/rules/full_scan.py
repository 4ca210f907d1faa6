"""Hot SQLite queries whose query plan scans a whole table where an index would serve."""

from __future__ import annotations

import re
from collections import defaultdict

from aitax.analysis.rules.base import Estimate, RuleContext, format_ms, make_finding
from aitax.analysis.rules.n_plus_one import format_us, sql_record
from aitax.analysis.rules.stage_time import sampled_by_stage, stage_share_seconds
from aitax.capture.sql import StatementStats
from aitax.model.run import Finding

# The estimated saving must reach this share of the serving time.
MIN_SAVING_SHARE = 0.02

# sqlite3 methods that step statements, as pyinstrument names the builtins.
SQLITE_CALLS = frozenset({
    "Connection.execute", "Connection.executemany", "Connection.executescript",
    "Cursor.execute", "Cursor.executemany", "Cursor.executescript",
    "Cursor.fetchone", "Cursor.fetchall", "Cursor.fetchmany",
})  # fmt: skip

# A plan step "SCAN t" reads every row of t. "SCAN t USING INDEX i" and
# "SEARCH t USING ..." use an index, and "SCAN CONSTANT ROW" reads no table.
_FULL_SCAN = re.compile(r"^SCAN (?!CONSTANT ROW)(\S+)$")
_FILTER_COLUMN = re.compile(
    r"\b(?:where|and)\s+(?:\w+\.)?(\w+)\s*(?:=|<=?|>=?|\bin\b|\bbetween\b)", re.IGNORECASE
)


class FullScanRule:
    name = "full-table-scan"
    category = "index"

    def evaluate(self, context: RuleContext) -> list[Finding]:
        record = sql_record(context)
        if record is None or context.serving_s <= 0:
            return []
        hook_s = record.hook_s or 0.0
        times = _statement_times(context, record.statements)
        findings = []
        for statement in record.statements:
            tables = scanned_tables(statement)
            fixed_s = record.fixed_cost_s(statement)
            if not tables or fixed_s is None or " where " not in f" {statement.sql.lower()} ":
                continue
            time_s = max(0.0, times.get(statement.sql, 0.0) - statement.count * hook_s)
            saving = max(0.0, time_s - statement.count * fixed_s)
            if saving / context.serving_s < MIN_SAVING_SHARE:
                continue
            findings.append(self._finding(context, statement, tables, time_s, saving, fixed_s))
        return findings

    def _finding(
        self,
        context: RuleContext,
        statement: StatementStats,
        tables: list[str],
        time_s: float,
        saving: float,
        fixed_s: float,
    ) -> Finding:
        columns = _FILTER_COLUMN.findall(statement.sql)
        stage = max(statement.stages, key=statement.stages.__getitem__) or "other"
        return make_finding(
            self,
            context,
            stage=stage,
            title=f"Query scans the whole {tables[0]} table",
            evidence=(
                f"`{statement.sql}` ran {statement.count:,} times and took about "
                f"{format_ms(time_s)}; EXPLAIN QUERY PLAN shows "
                f"{'; '.join(statement.plan or [])} (a full table scan)."
            ),
            estimate=Estimate(
                saving,
                f"the statement's time ({format_ms(time_s)}: its calling function's share of "
                "the stage's CPU-pass samples, applied to the stage's clean-pass time and split "
                "by statement counts) minus "
                f"{statement.count:,} x {format_us(fixed_s)}: an indexed lookup is assumed to "
                "cost about as much as a trivial read of the same database, measured at the "
                "end of the pass",
            ),
            fix=(
                f"Create an index on the filtered column{'s' if len(columns) > 1 else ''} of "
                f"{tables[0]}, then check that EXPLAIN QUERY PLAN shows SEARCH ... USING INDEX."
            ),
            code_sketch=_index_sketch(tables[0], columns),
            locations=[f"{statement.caller_file}:{statement.caller_line}"],
        )


def scanned_tables(statement: StatementStats) -> list[str]:
    """Return the tables that the statement's plan reads in full, without an index."""
    tables = []
    for step in statement.plan or []:
        match = _FULL_SCAN.match(step.strip())
        if match:
            tables.append(match.group(1))
    return tables


def _statement_times(context: RuleContext, statements: list[StatementStats]) -> dict[str, float]:
    """Estimate each statement's clean-pass time from where the CPU pass sampled SQLite.

    Samples know the calling function and the stage but not the statement, so the
    time of one function's SQLite calls in one stage is split among its
    statements by how often each ran there.
    """
    site_s, stage_s = _sampled_sqlite_time(context)
    counts: dict[tuple[str, int, str], int] = defaultdict(int)
    for statement in statements:
        for stage, count in statement.stages.items():
            counts[(statement.caller_file, statement.caller_line, stage)] += count

    times: dict[str, float] = defaultdict(float)
    for statement in statements:
        for stage, count in statement.stages.items():
            key = (statement.caller_file, statement.caller_line, stage)
            times[statement.sql] += stage_share_seconds(context, stage, site_s[key], stage_s) * (
                count / counts[key]
            )
    return times


def _sampled_sqlite_time(
    context: RuleContext,
) -> tuple[defaultdict[tuple[str, int, str], float], dict[str, float]]:
    """Sum CPU-pass seconds in SQLite calls by (calling file, its first line, marked stage)."""
    site_s: defaultdict[tuple[str, int, str], float] = defaultdict(float)
    for sample in context.samples:
        for index, frame in enumerate(sample.frames):
            if index and frame.builtin and frame.function in SQLITE_CALLS:
                caller = sample.frames[index - 1]
                site_s[(caller.file, caller.line, sample.marked_stage or "")] += sample.seconds
                break
    return site_s, sampled_by_stage(context.samples)


def _index_sketch(table: str, columns: list[str]) -> str:
    unique = list(dict.fromkeys(columns))
    if not unique:
        return f"create index {table}_lookup on {table}(<filtered column>);"
    return f"create index {table}_{'_'.join(unique)} on {table}({', '.join(unique)});"
