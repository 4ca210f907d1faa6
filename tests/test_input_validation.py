"""`aitax run` rejects invalid options, settings and targets with one line and no traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import CommandResult, run_aitax


def assert_one_line_error(result: CommandResult, status: int) -> None:
    assert result.returncode == status, result.stderr
    assert result.stderr.startswith("aitax: error:"), result.stderr
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert "Traceback" not in result.stderr


def write_target(folder: Path) -> None:
    (folder / "ok.py").write_text("x = 1\n", encoding="utf-8")


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--interval", "nan"),
        ("--interval", "inf"),
        ("--interval", "0"),
        ("--interval", "-1"),
        ("--timeout", "nan"),
        ("--timeout", "inf"),
        ("--timeout", "-1"),
        ("--instance-cost-per-hour", "nan"),
        ("--instance-cost-per-hour", "inf"),
        ("--instance-cost-per-hour", "-1"),
    ],
)
def test_invalid_number_is_usage_error(tmp_path: Path, option: str, value: str) -> None:
    write_target(tmp_path)

    result = run_aitax("run", "--passes", "clean", option, value, "ok.py", cwd=tmp_path)

    assert_one_line_error(result, 2)
    assert f"{option} " in result.stderr
    assert "is invalid" in result.stderr
    assert not (tmp_path / "reports").exists()


def test_line_pass_alone_is_usage_error(tmp_path: Path) -> None:
    write_target(tmp_path)

    result = run_aitax("run", "--passes", "line", "ok.py", cwd=tmp_path)

    assert_one_line_error(result, 2)
    assert "leaves the line pass nothing to profile" in result.stderr
    assert "--line-profile" in result.stderr
    assert not (tmp_path / "reports").exists()


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ("[tool.aitax]\nrules = 5\n", "rules = 5"),
        ("[tool.aitax]\ninstance_cost_per_hur = 1\n", "unknown key 'instance_cost_per_hur'"),
        ("[tool.aitax]\ninstance_cost_per_hour = nan\n", "instance_cost_per_hour = nan"),
        ("[tool.aitax]\ninstance_cost_per_hour = inf\n", "instance_cost_per_hour = inf"),
        ("[tool.aitax]\ninstance_cost_per_hour = -1\n", "instance_cost_per_hour = -1"),
        (
            '[[tool.aitax.rules]]\nstage = "io"\nmodules = "time"\n',
            "has modules = 'time'; write a list of module names",
        ),
        ('[[tool.aitax.rules]]\nstage = "io"\n', "is missing the modules key"),
    ],
)
def test_invalid_config_is_one_line_error(tmp_path: Path, table: str, expected: str) -> None:
    write_target(tmp_path)
    (tmp_path / "pyproject.toml").write_text(table, encoding="utf-8")

    result = run_aitax("run", "-q", "--passes", "clean", "-o", "rep", "ok.py", cwd=tmp_path)

    assert_one_line_error(result, 7)
    assert expected in result.stderr
    assert str(tmp_path / "pyproject.toml") in result.stderr


def test_config_not_utf8_is_one_line_error(tmp_path: Path) -> None:
    write_target(tmp_path)
    (tmp_path / "pyproject.toml").write_bytes(b'[tool.aitax]\nx = "caf\xe9"\n')

    result = run_aitax("run", "-q", "--passes", "clean", "-o", "rep", "ok.py", cwd=tmp_path)

    assert_one_line_error(result, 7)
    assert f"{tmp_path / 'pyproject.toml'} is not valid UTF-8" in result.stderr
    assert "0xe9" in result.stderr


def test_folder_without_main_is_invalid_module(tmp_path: Path) -> None:
    (tmp_path / "emptydir").mkdir()

    result = run_aitax("run", "--passes", "clean", "-m", "emptydir", cwd=tmp_path)

    assert_one_line_error(result, 3)
    assert "'emptydir' has no __main__ module" in result.stderr
    assert not (tmp_path / "reports").exists()


def test_missing_module_is_invalid_target(tmp_path: Path) -> None:
    result = run_aitax("run", "--passes", "clean", "-m", "nosuchmodule", cwd=tmp_path)

    assert_one_line_error(result, 3)
    assert "module 'nosuchmodule' not found" in result.stderr
    assert not (tmp_path / "reports").exists()


def test_target_closing_stdout_runs_cleanly(tmp_path: Path) -> None:
    (tmp_path / "closer.py").write_text(
        "import sys\nprint('before close')\nsys.stdout.close()\n", encoding="utf-8"
    )

    result = run_aitax("run", "--passes", "clean", "-o", "rep", "closer.py", cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert result.stdout == "before close\n"
    assert "I/O operation on closed file" not in result.stderr
    assert "Traceback" not in result.stderr


def test_target_closing_stderr_keeps_exit_status(tmp_path: Path) -> None:
    (tmp_path / "closer.py").write_text(
        "import sys\nsys.stderr.close()\nraise ValueError('after close')\n", encoding="utf-8"
    )

    result = run_aitax("run", "--passes", "clean", "-o", "rep", "closer.py", cwd=tmp_path)

    assert result.returncode == 1, result.stderr
    assert "I/O operation on closed file" not in result.stderr


def test_json_tool_module_reads_stdin(tmp_path: Path) -> None:
    result = run_aitax(
        "run", "-q", "--passes", "clean", "-o", "rep", "-m", "json.tool",
        cwd=tmp_path, stdin='{"a": 1}\n',
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"a": 1}
    assert "Traceback" not in result.stderr
    assert "I/O operation on closed file" not in result.stderr
