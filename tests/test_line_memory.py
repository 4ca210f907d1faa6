"""The line and memory passes on real targets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import run_aitax

ARRAY_BYTES = 50 * 2**20

MEMORY_TARGET = f"""
import aitax
import numpy as np

kept = []
for _ in range(12):
    with aitax.request():
        with aitax.stage("feature_compute"):
            features = np.ones({ARRAY_BYTES} // 8)
        with aitax.stage("logging"):
            kept.append(bytearray(200_000))
        del features
"""

SLOW_LINE_TARGET = """
import functools
import aitax


def timed(func):
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        return func(*args, **kwargs)
    return wrapper


@timed
def score(n):
    base = n + 1
    total = sum(i * i for i in range(n))
    return base + total


class Model:
    def predict(self, rows):
        out = []
        for row in rows:
            out.append(row * 2)
        return out


for _ in range(40):
    with aitax.request():
        with aitax.stage("inference"):
            score(40_000)
            Model().predict(range(2_000))
"""


def run_json(folder: Path) -> dict:  # type: ignore[type-arg]
    return json.loads((folder / "run.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def memory_report(tmp_path_factory: pytest.TempPathFactory) -> dict:  # type: ignore[type-arg]
    folder = tmp_path_factory.mktemp("memory")
    (folder / "alloc.py").write_text(MEMORY_TARGET, encoding="utf-8")
    result = run_aitax("run", "--passes", "clean,memory", "-o", "rep", "alloc.py", cwd=folder)
    assert result.returncode == 0, result.stderr
    assert (folder / "rep" / "memory-flamegraph.html").is_file()
    return run_json(folder / "rep")


def test_known_allocation_is_attributed_to_its_stage(memory_report: dict) -> None:  # type: ignore[type-arg]
    stages = {s["name"]: s for s in memory_report["memory"]["by_stage"]}
    per_request = stages["feature_compute"]["allocated_bytes"] / 12
    assert per_request == pytest.approx(ARRAY_BYTES, rel=0.05)
    assert stages["logging"]["allocated_bytes"] / 12 == pytest.approx(200_000, rel=0.05)


def test_peak_covers_the_array(memory_report: dict) -> None:  # type: ignore[type-arg]
    memory = memory_report["memory"]
    assert memory["peak_bytes"] >= ARRAY_BYTES
    assert memory["peak_locations"][0]["allocated_bytes"] >= ARRAY_BYTES


def test_kept_buffers_are_a_leak_suspect(memory_report: dict) -> None:  # type: ignore[type-arg]
    memory = memory_report["memory"]
    [suspect] = memory["leak_suspects"]
    assert suspect["line"] == 11
    assert suspect["growth_per_request_bytes"] == pytest.approx(200_000, rel=0.05)


def test_leak_is_a_finding(memory_report: dict) -> None:  # type: ignore[type-arg]
    [leak] = [f for f in memory_report["findings"] if f["rule"] == "memory-growth"]
    assert leak["category"] == "memory"
    assert leak["locations"][0].endswith(":11")
    assert "195.3 KiB more per request" in leak["evidence"]


def test_top_allocation_names_the_line(memory_report: dict) -> None:  # type: ignore[type-arg]
    top = memory_report["memory"]["top_allocations"][0]
    assert top["line"] == 9
    assert top["stage"] == "feature_compute"
    assert top["per_request_bytes"] == pytest.approx(ARRAY_BYTES, rel=0.05)


@pytest.fixture(scope="module")
def line_report(tmp_path_factory: pytest.TempPathFactory) -> dict:  # type: ignore[type-arg]
    folder = tmp_path_factory.mktemp("lines")
    (folder / "slow.py").write_text(SLOW_LINE_TARGET, encoding="utf-8")
    result = run_aitax("run", "--passes", "clean,cpu,line", "-o", "rep", "slow.py", cwd=folder)
    assert result.returncode == 0, result.stderr
    return run_json(folder / "rep")


def line_profile_of(report: dict, function: str) -> dict:  # type: ignore[type-arg]
    return next(entry for entry in report["lines"] if entry["function"] == function)


def test_slow_line_is_hottest(line_report: dict) -> None:  # type: ignore[type-arg]
    score = line_profile_of(line_report, "score")
    assert score["profiled"]
    hottest = max(score["lines"], key=lambda line: line["time_s"])
    assert hottest["lineno"] == 16
    assert "sum(i * i" in hottest["source"]
    assert hottest["hits"] == 40


def test_decorated_function_is_profiled_not_its_wrapper(line_report: dict) -> None:  # type: ignore[type-arg]
    score = line_profile_of(line_report, "score")
    assert {line["lineno"] for line in score["lines"]} >= {15, 16, 17}
    assert score["stage"] == "inference"


def test_method_is_found_by_line(line_report: dict) -> None:  # type: ignore[type-arg]
    predict = line_profile_of(line_report, "Model.predict")
    assert predict["profiled"]
    loop_body = next(line for line in predict["lines"] if line["lineno"] == 24)
    assert loop_body["hits"] == 40 * 2_000


def test_named_function_in_imported_module(write_script, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    write_script("helpers.py", "def add(a, b):\n    c = a + b\n    return c\n")
    write_script("main.py", "import helpers\nfor i in range(100):\n    helpers.add(i, 1)\n")
    result = run_aitax(
        "run",
        "--passes",
        "clean,line",
        "--line-profile",
        "helpers:add",
        "--line-profile",
        "json:dumps",
        "--line-profile",
        "helpers:missing",
        "-o",
        "rep",
        "main.py",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    report = run_json(tmp_path / "rep")
    add = line_profile_of(report, "add")
    assert [line["hits"] for line in add["lines"]] == [100, 100]
    dumps = line_profile_of(report, "dumps")
    assert not dumps["profiled"]
    assert "no hits" in dumps["reason"]
    missing = line_profile_of(report, "missing")
    assert not missing["profiled"]
    assert missing["reason"]


def test_failing_memory_pass_keeps_other_passes(write_script, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    write_script(
        "fragile.py",
        """
        import os, sys
        import aitax
        def score():
            return sum(i * i for i in range(50_000))
        for _ in range(20):
            with aitax.request():
                with aitax.stage("inference"):
                    score()
        if "memray" in sys.modules:
            os._exit(9)
        """,
    )
    result = run_aitax("run", "-o", "rep", "fragile.py", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    report = run_json(tmp_path / "rep")
    passes = {p["name"]: p for p in report["passes"]}
    assert passes["memory"]["status"] == "failed"
    assert "status 9" in passes["memory"]["error"]
    assert passes["clean"]["status"] == passes["cpu"]["status"] == passes["line"]["status"] == "ok"
    assert report["requests"]["count"] == 20
    assert report["hotspots"]
    assert report["memory"] is None
    assert (tmp_path / "rep" / "report.html").is_file()


OWN_PROFILER = """
import sys
import aitax

sys.setprofile(lambda frame, event, arg: None)
for _ in range(20):
    with aitax.request():
        with aitax.stage("feature_compute"):
            data = [bytearray(4000) for _ in range(20)]
"""


def test_displaced_memray_hook_is_noted(tmp_path: Path) -> None:
    (tmp_path / "own.py").write_text(OWN_PROFILER, encoding="utf-8")
    result = run_aitax("run", "--passes", "clean,memory", "-o", "rep", "own.py", cwd=tmp_path)
    assert result.returncode == 0, result.stderr

    notes = " ".join(run_json(tmp_path / "rep")["memory"]["notes"])
    assert "stage and request boundaries" in notes
    assert "sys.setprofile" in notes
