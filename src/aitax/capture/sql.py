"""SQLite statements that the target runs, counted per normalized statement, with query plans.

`SqlWatch.install` wraps `sqlite3.connect`, at once when sqlite3 is already
imported and otherwise when the target imports it, so that every connection the
target opens reports its statements through `Connection.set_trace_callback`.
Statements are aggregated by their text with literals replaced by `?`, so the
record stays bounded however many statements run. When the pass ends, the
hottest statements get `EXPLAIN QUERY PLAN` on a fresh read-only connection to
the same database file. Three costs are measured there for the rules: a trivial
read of that file, a trivial statement in memory, and this hook's own work per
statement.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import logging
import re
import sys
import threading
import time
import types
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aitax.markers import current_request_id, current_stage

if TYPE_CHECKING:
    import sqlite3

logger = logging.getLogger(__name__)

# Distinct normalized statements kept; later ones are only counted in `untracked`.
MAX_STATEMENTS = 500
# Raw statement shapes whose normalized text is cached, to skip the regular expression.
MAX_CACHED_SHAPES = 4096
# Statements that get EXPLAIN QUERY PLAN at the end of the pass, most executed first.
PLANNED_STATEMENTS = 10
# Runs of the trivial statements and of the hook when their costs are measured.
PROBE_RUNS = 200
# A read that takes the database file's shared lock and reads one cached page, as
# every query does. Its time is the fixed cost of one statement on that file.
TRIVIAL_READ = "select 1 from sqlite_master limit 1"
MAX_SQL_CHARS = 2000

# String and blob literals, and numbers that are not part of a name (t1, col_2).
_LITERAL = re.compile(
    r"[xX]?'(?:[^']|'')*'"
    r"|(?<![\w$])(?:0[xX][0-9a-fA-F]+|\d+(?:\.\d*)?(?:[eE][+-]?\d+)?)"
)
_PLACEHOLDER = re.compile(r"\?\d*|[:@$][A-Za-z_]\w*")
_QUESTION_MARKS = re.compile(r"\(\s*\?(?:\s*,\s*\?)+\s*\)")
_VALUE_ROWS = re.compile(r"(\([?, ]+\))(?:\s*,\s*\([?, ]+\))+")
_SPACE = re.compile(r"\s+")
# Maps every digit to "0", so that statements differing only in numbers share a cache entry.
_DIGITS_TO_ZERO = str.maketrans("123456789", "000000000")
_PLANNABLE = ("select", "with", "update", "delete", "insert")


@dataclass
class StatementStats:
    """One normalized statement and how often it ran.

    `sql` has literals replaced by `?` and lists of `?` collapsed, so it is the
    aggregation key. `example` is the first statement seen, with its literals
    replaced by `?`, so it is valid SQL with `parameters` placeholders. `requests`
    counts the runs of consecutive executions inside one request, which equals the
    number of distinct requests when requests do not interleave.
    """

    sql: str
    example: str
    parameters: int
    database: str | None
    caller_file: str
    caller_line: int
    caller_function: str
    count: int = 0
    in_requests: int = 0
    requests: int = 0
    stages: dict[str, int] = field(default_factory=dict)
    plan: list[str] | None = None
    plan_error: str | None = None
    last_request: int | None = field(default=None, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "sql": self.sql,
            "example": self.example,
            "parameters": self.parameters,
            "database": self.database,
            "caller": [self.caller_file, self.caller_line, self.caller_function],
            "count": self.count,
            "in_requests": self.in_requests,
            "requests": self.requests,
            "stages": self.stages,
            "plan": self.plan,
            "plan_error": self.plan_error,
        }


@dataclass
class SqlRecord:
    """The target's SQLite statements in one pass, and costs measured at the pass's end.

    Each cost is None when no statement ran:
    `statement_s` is `select 1` on an in-memory database,
    `database_statement_s` a trivial read of each planned database file, and
    `hook_s` this watch's own work per traced statement.
    """

    statements: list[StatementStats]
    untracked: int = 0
    statement_s: float | None = None
    database_statement_s: dict[str, float] = field(default_factory=dict)
    hook_s: float | None = None

    def fixed_cost_s(self, statement: StatementStats) -> float | None:
        """Return the measured cost of a trivial statement on `statement`'s database."""
        if statement.database is not None and statement.database in self.database_statement_s:
            return self.database_statement_s[statement.database]
        return self.statement_s


def normalize(statement: str) -> tuple[str, str, int]:
    """Return the aggregation key, the plannable example and its parameter count."""
    text = _SPACE.sub(" ", statement).strip()[:MAX_SQL_CHARS]
    text = _PLACEHOLDER.sub("?", text)
    example = _LITERAL.sub("?", text)
    parameters = example.count("?")
    key = _VALUE_ROWS.sub(r"\1, ...", example)
    key = _QUESTION_MARKS.sub("(?, ...)", key)
    return key, example, parameters


def database_path(database: object, uri: bool) -> str | None:
    """Return the absolute path of a database file, or None for in-memory and temporary ones."""
    if isinstance(database, bytes):
        database = database.decode("utf-8", "surrogateescape")
    if not isinstance(database, str | Path):
        return None
    name = str(database)
    if uri and name.startswith("file:"):
        parsed = urllib.parse.urlsplit(name)
        if "mode=memory" in parsed.query:
            return None
        name = urllib.parse.unquote(parsed.path)
    if name in ("", ":memory:") or name.startswith("file::memory:"):
        return None
    return str(Path(name).resolve())


class SqlWatch:
    """Trace the statements of every SQLite connection that the target opens."""

    def __init__(self) -> None:
        self.statements: dict[str, StatementStats] = {}
        self.untracked = 0
        self._shapes: dict[tuple[str | None, str], StatementStats | None] = {}
        self._lock = threading.Lock()
        # The sqlite3 module, typed Any because its `connect` is replaced.
        self._module: Any = None
        self._original: Callable[..., sqlite3.Connection] | None = None
        self._finder: _PatchOnImport | None = None

    def install(self) -> None:
        if "sqlite3" in sys.modules:
            self._patch(sys.modules["sqlite3"])
            return
        self._finder = _PatchOnImport(self._patch)
        sys.meta_path.insert(0, self._finder)

    def stop(self) -> dict[str, Any]:
        """Restore `sqlite3.connect`, then return the record of what ran."""
        self._uninstall()
        return self._record()

    def _uninstall(self) -> None:
        if self._finder is not None and self._finder in sys.meta_path:
            sys.meta_path.remove(self._finder)
        if self._module is not None and self._original is not None:
            self._module.connect = self._original
            self._module.dbapi2.connect = self._original
        self._module = None
        self._original = None

    def _record(self) -> dict[str, Any]:
        """Plan the hottest statements, measure the probe costs, and return the JSON record."""
        with self._lock:
            statements = sorted(self.statements.values(), key=lambda s: -s.count)
        if not statements:
            return {"statements": [], "untracked": self.untracked}

        hottest = statements[:PLANNED_STATEMENTS]
        database_statement_s = {}
        for database in dict.fromkeys(s.database for s in hottest if s.database is not None):
            planned = [s for s in hottest if s.database == database]
            database_statement_s[database] = _probe_database(database, planned)
        return {
            "statements": [statement.to_json() for statement in statements],
            "untracked": self.untracked,
            "statement_s": _time_statement(":memory:", "select 1"),
            "database_statement_s": {
                database: seconds
                for database, seconds in database_statement_s.items()
                if seconds is not None
            },
            "hook_s": self._time_hook(),
        }

    def _patch(self, module: types.ModuleType) -> None:
        original: Callable[..., sqlite3.Connection] = module.connect
        self._module = module
        self._original = original

        def connect(database: Any, *args: Any, **kwargs: Any) -> sqlite3.Connection:
            connection = original(database, *args, **kwargs)
            path = database_path(database, bool(kwargs.get("uri", False)))
            connection.set_trace_callback(self._tracer(path))
            return connection

        self._module.connect = connect
        self._module.dbapi2.connect = connect

    def _tracer(self, database: str | None) -> Callable[[str], None]:
        def trace(statement: str) -> None:
            self._count(database, statement)

        return trace

    def _count(self, database: str | None, statement: str) -> None:
        """Count one statement. This runs inside every traced statement, so it stays small."""
        shape = (database, statement.translate(_DIGITS_TO_ZERO))
        stats = self._shapes.get(shape)
        if stats is None:
            stats = self._stats_for(database, statement, shape)
            if stats is None:
                return
        request = current_request_id()
        stage = current_stage() or ""
        with self._lock:
            stats.count += 1
            stats.stages[stage] = stats.stages.get(stage, 0) + 1
            if request is not None:
                stats.in_requests += 1
                if request != stats.last_request:
                    stats.requests += 1
                    stats.last_request = request

    def _stats_for(
        self, database: str | None, statement: str, shape: tuple[str | None, str]
    ) -> StatementStats | None:
        key, example, parameters = normalize(statement)
        with self._lock:
            stats = self.statements.get(key)
            if stats is None and len(self.statements) >= MAX_STATEMENTS:
                self.untracked += 1
                return None
            if stats is None:
                # Frames: 0 this method, 1 _count, 2 trace, 3 the code that ran the statement.
                caller = sys._getframe(3)
                stats = StatementStats(
                    key,
                    example,
                    parameters,
                    database,
                    caller.f_code.co_filename,
                    caller.f_code.co_firstlineno,
                    caller.f_code.co_qualname,
                )
                self.statements[key] = stats
            if len(self._shapes) < MAX_CACHED_SHAPES:
                self._shapes[shape] = stats
        return stats

    def _time_hook(self) -> float:
        """Time `_count` on a scratch watch, so the rules can subtract it from sampled time."""
        scratch = SqlWatch()
        statement = "select v from probe where id = 1"
        scratch._count(None, statement)
        started = time.perf_counter()
        for _ in range(PROBE_RUNS):
            scratch._count(None, statement)
        return (time.perf_counter() - started) / PROBE_RUNS


class _PatchOnImport(importlib.abc.MetaPathFinder):
    """Patch sqlite3 right after the target imports it, so that targets without it pay nothing."""

    def __init__(self, patch: Callable[[types.ModuleType], None]) -> None:
        self.patch = patch

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: types.ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != "sqlite3":
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return None
        spec.loader = _PatchingLoader(spec.loader, self.patch)
        return spec


class _PatchingLoader(importlib.abc.Loader):
    def __init__(
        self, loader: importlib.abc.Loader, patch: Callable[[types.ModuleType], None]
    ) -> None:
        self.loader = loader
        self.patch = patch

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType | None:
        return self.loader.create_module(spec)

    def exec_module(self, module: types.ModuleType) -> None:
        self.loader.exec_module(module)
        self.patch(module)


def _probe_database(database: str, statements: list[StatementStats]) -> float | None:
    """Plan `statements` on a fresh read-only connection, and time a trivial read there.

    Return the trivial read's time, or None when the file cannot be opened.
    """
    import sqlite3

    uri = f"file:{urllib.parse.quote(database)}?mode=ro"
    try:
        connection = sqlite3.connect(uri, uri=True, timeout=0.1)
    except sqlite3.Error as error:
        for statement in statements:
            statement.plan_error = f"cannot open {database} read-only: {error}"
        logger.debug("query plans skipped: cannot open %s read-only: %s", database, error)
        return None
    try:
        for statement in statements:
            _explain(connection, statement)
        return _time_statement(connection, TRIVIAL_READ)
    except sqlite3.Error as error:
        logger.debug("timing a trivial read of %s failed: %s", database, error)
        return None
    finally:
        connection.close()


def _explain(connection: sqlite3.Connection, statement: StatementStats) -> None:
    """Store the query plan of `statement`, or why there is none."""
    import sqlite3

    if not statement.example.lower().startswith(_PLANNABLE):
        return
    try:
        rows = connection.execute(
            f"EXPLAIN QUERY PLAN {statement.example}", [None] * statement.parameters
        ).fetchall()
        statement.plan = [str(row[-1]) for row in rows]
    except sqlite3.Error as error:
        statement.plan_error = f"EXPLAIN QUERY PLAN failed: {error}"
        logger.debug("query plan failed for %r: %s", statement.example, error)


def _time_statement(target: str | sqlite3.Connection, sql: str) -> float:
    """Time one statement and the fetch of its rows, on `target` or on a new in-memory database."""
    import sqlite3

    connection = sqlite3.connect(target) if isinstance(target, str) else target
    try:
        connection.execute(sql).fetchall()
        started = time.perf_counter()
        for _ in range(PROBE_RUNS):
            connection.execute(sql).fetchall()
        return (time.perf_counter() - started) / PROBE_RUNS
    finally:
        if isinstance(target, str):
            connection.close()


def read_sql_record(data: object) -> SqlRecord | None:
    """Rebuild a pass's SQL record from its JSON form; None when the pass has none."""
    if not isinstance(data, dict):
        return None
    statements = [_statement_from_json(item) for item in data.get("statements", [])]
    return SqlRecord(
        statements=statements,
        untracked=int(data.get("untracked", 0)),
        statement_s=_optional_float(data.get("statement_s")),
        database_statement_s={
            str(database): float(seconds)
            for database, seconds in data.get("database_statement_s", {}).items()
        },
        hook_s=_optional_float(data.get("hook_s")),
    )


def _statement_from_json(item: dict[str, Any]) -> StatementStats:
    caller_file, caller_line, caller_function = item["caller"]
    return StatementStats(
        sql=str(item["sql"]),
        example=str(item["example"]),
        parameters=int(item["parameters"]),
        database=item.get("database"),
        caller_file=str(caller_file),
        caller_line=int(caller_line),
        caller_function=str(caller_function),
        count=int(item["count"]),
        in_requests=int(item["in_requests"]),
        requests=int(item["requests"]),
        stages={str(name): int(count) for name, count in item.get("stages", {}).items()},
        plan=item.get("plan"),
        plan_error=item.get("plan_error"),
    )


def _optional_float(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def sql_record_of(watchers: object) -> SqlRecord | None:
    """Return the SQL record inside a pass's watcher record, or None when it has none."""
    if not isinstance(watchers, dict):
        return None
    return read_sql_record(watchers.get("sql"))
