"""The `[tool.aitax]` table of the target project's pyproject.toml.

Example::

    [tool.aitax]
    replace_default_rules = false      # true drops the built-in module rules
    instance_cost_per_hour = 0.17

    [[tool.aitax.rules]]
    stage = "feature_fetch"
    modules = ["acme.featurestore"]
    functions = ["get_features"]       # optional: only these functions

    [tool.aitax.slo]                   # limits that aitax check enforces
    p99_ms = 120
    throughput_rps = 50
    "stage.inference.p95_ms" = 30
"""

from __future__ import annotations

import logging
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aitax.analysis.classify import DEFAULT_RULES, ModuleRule
from aitax.analysis.slo import Objective, objectives_from_table
from aitax.errors import ConfigError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Config:
    """Settings read from `[tool.aitax]`, with the file they came from."""

    source: Path | None = None
    user_rules: tuple[ModuleRule, ...] = ()
    default_rules: tuple[ModuleRule, ...] = DEFAULT_RULES
    instance_cost_per_hour: float | None = None
    slo: tuple[Objective, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)


def find_pyproject(start: Path) -> Path | None:
    """Return the nearest pyproject.toml in `start` or a folder above it."""
    folder = start if start.is_dir() else start.parent
    for candidate in (folder, *folder.parents):
        path = candidate / "pyproject.toml"
        if path.is_file():
            return path
    return None


def load_config(start: Path) -> Config:
    """Read `[tool.aitax]` from the pyproject.toml nearest to `start`; defaults if there is none."""
    path = find_pyproject(start.resolve())
    if path is None:
        return Config()
    try:
        with path.open("rb") as handle:
            document = tomllib.load(handle)
    except UnicodeDecodeError as error:
        raise ConfigError(
            f"{path} is not valid UTF-8 (byte {error.object[error.start]:#04x} at offset "
            f"{error.start}); save it as UTF-8, as TOML requires"
        ) from None
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise ConfigError(
            f"cannot read {path}: {error}; fix the file or remove [tool.aitax]"
        ) from None

    table = document.get("tool", {}).get("aitax")
    if table is None:
        return Config()
    if not isinstance(table, dict):
        raise ConfigError(f"[tool.aitax] in {path} is not a table; write it as a TOML table")
    logger.info("read settings from %s", path)
    return _parse_table(table, path)


KNOWN_KEYS = frozenset({"rules", "replace_default_rules", "instance_cost_per_hour", "slo"})


def _parse_table(table: dict[str, Any], path: Path) -> Config:
    unknown = sorted(set(table) - KNOWN_KEYS)
    if unknown:
        raise ConfigError(
            f"[tool.aitax] in {path} has unknown key {unknown[0]!r}; the keys are "
            f"{', '.join(sorted(KNOWN_KEYS))}"
        )
    entries = table.get("rules", [])
    if not isinstance(entries, list):
        raise ConfigError(
            f"rules = {entries!r} in {path} is invalid; write [[tool.aitax.rules]] tables"
        )
    rules = tuple(_parse_rule(entry, index, path) for index, entry in enumerate(entries))
    replace = table.get("replace_default_rules", False)
    if not isinstance(replace, bool):
        raise ConfigError(
            f"replace_default_rules = {replace!r} in {path} is invalid; write true or false"
        )

    cost = table.get("instance_cost_per_hour")
    if cost is not None and (
        not isinstance(cost, int | float)
        or isinstance(cost, bool)
        or not math.isfinite(cost)
        or cost < 0
    ):
        raise ConfigError(
            f"instance_cost_per_hour = {cost!r} in {path} is invalid; write a price in dollars"
        )

    return Config(
        source=path,
        user_rules=rules,
        default_rules=() if replace else DEFAULT_RULES,
        instance_cost_per_hour=None if cost is None else float(cost),
        slo=_parse_slo(table.get("slo"), path),
    )


def _parse_slo(table: Any, path: Path) -> tuple[Objective, ...]:
    if table is None:
        return ()
    if not isinstance(table, dict):
        raise ConfigError(
            f"slo = {table!r} in {path} is invalid; write a [tool.aitax.slo] table such as "
            "p99_ms = 120"
        )
    try:
        return tuple(objectives_from_table(table, str(path)))
    except ValueError as error:
        raise ConfigError(f"[tool.aitax.slo] in {path} is invalid: {error}") from None


def _parse_rule(entry: Any, index: int, path: Path) -> ModuleRule:
    where = f"[[tool.aitax.rules]] entry {index + 1} in {path}"
    if not isinstance(entry, dict):
        raise ConfigError(f"{where} is not a table; write stage = ... and modules = [...]")

    stage = entry.get("stage")
    if not isinstance(stage, str) or not stage:
        raise ConfigError(f"{where} has stage = {stage!r}; write a stage name such as 'inference'")

    if "modules" not in entry:
        raise ConfigError(f'{where} is missing the modules key; write modules = ["package.module"]')
    modules = entry["modules"]
    if (
        not isinstance(modules, list)
        or not modules
        or not all(isinstance(m, str) and m for m in modules)
    ):
        raise ConfigError(
            f"{where} has modules = {modules!r}; write a list of module names, "
            'such as modules = ["acme.featurestore"]'
        )

    functions = entry.get("functions", [])
    if not isinstance(functions, list) or not all(isinstance(f, str) for f in functions):
        raise ConfigError(f"{where} has functions = {functions!r}; write a list of function names")

    return ModuleRule(stage, tuple(modules), frozenset(functions))
