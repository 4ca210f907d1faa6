"""One SQL statement run many times per request (the N+1 pattern), where one query would do."""

from __future__ import annotations

from aitax.analysis.rules.base import Estimate, RuleContext, make_finding
from aitax.capture.passes import watcher_record
from aitax.capture.sql import SqlRecord, StatementStats, sql_record_of
from aitax.model.run import Finding

# Only the profiling passes trace SQL, because the trace runs Python code on every statement.
SQL_PASSES = ("cpu", "line")
# A statement must run at least this many times per request, in at least this
# many requests, and the estimate must reach this share of the serving time.
MIN_PER_REQUEST = 10.0
MIN_REQUESTS = 5
MIN_SAVING_SHARE = 0.01


def sql_record(context: RuleContext) -> SqlRecord | None:
    return sql_record_of(watcher_record(context.pass_extras, SQL_PASSES))


def format_us(seconds: float) -> str:
    return f"{seconds * 1e6:,.1f} µs"


class QueryPerItemRule:
    name = "query-per-item"
    category = "query"

    def evaluate(self, context: RuleContext) -> list[Finding]:
        record = sql_record(context)
        if record is None or context.serving_s <= 0:
            return []
        findings = []
        for statement in record.statements:
            fixed_s = record.fixed_cost_s(statement)
            if fixed_s is None or statement.requests < MIN_REQUESTS:
                continue
            if statement.in_requests / statement.requests < MIN_PER_REQUEST:
                continue
            saving = (statement.in_requests - statement.requests) * fixed_s
            if saving / context.serving_s < MIN_SAVING_SHARE:
                continue
            findings.append(self._finding(context, statement, fixed_s, saving))
        return findings

    def _finding(
        self, context: RuleContext, statement: StatementStats, fixed_s: float, saving: float
    ) -> Finding:
        per_request = statement.in_requests / statement.requests
        stage = max(statement.stages, key=statement.stages.__getitem__) or "other"
        return make_finding(
            self,
            context,
            stage=stage,
            title="One query per item instead of one query per request",
            evidence=(
                f"`{statement.sql}` ran {statement.in_requests:,} times in "
                f"{statement.requests:,} requests of the CPU pass ({per_request:.0f} per request), "
                f"called from {statement.caller_function} ({statement.caller_file}:"
                f"{statement.caller_line})."
            ),
            estimate=Estimate(
                saving,
                f"{statement.in_requests - statement.requests:,} statements fewer (one per "
                f"request remains) x {format_us(fixed_s)}, the time of a trivial read of the "
                "same database measured at the end of the pass; the rows are still read, so "
                "their cost stays",
            ),
            fix=(
                "Fetch all the items of a request in one statement (WHERE id IN (...), or a "
                "join), or load the table into memory once if it is small and read-mostly."
            ),
            code_sketch=(
                "# before\n"
                "rows = [db.execute('select v from f where id = ?', (i,)).fetchone() for i in ids]\n"
                "# after\n"
                "marks = ', '.join('?' * len(ids))\n"
                "rows = db.execute(f'select id, v from f where id in ({marks})', ids).fetchall()"
            ),
            locations=[f"{statement.caller_file}:{statement.caller_line}"],
        )
