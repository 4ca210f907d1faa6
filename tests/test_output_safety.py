"""`aitax run -o DIR --force` replaces only aitax report folders and deletes nothing else."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from conftest import CommandResult, run_aitax


def assert_one_line_error(result: CommandResult, status: int) -> None:
    assert result.returncode == status, result.stderr
    assert result.stderr.startswith("aitax: error:"), result.stderr
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert "Traceback" not in result.stderr


def write_project(folder: Path) -> None:
    """Write a tiny target and a file that no aitax run may delete."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ok.py").write_text("x = 1\n", encoding="utf-8")
    (folder / "precious.txt").write_text("keep me", encoding="utf-8")


def run_forced(output: str, *target: str, cwd: Path) -> CommandResult:
    return run_aitax("run", "-q", "--force", "--passes", "clean", "-o", output, *target, cwd=cwd)


def test_force_rejects_working_directory(tmp_path: Path) -> None:
    write_project(tmp_path)

    for output in (".", str(tmp_path), "./"):
        result = run_forced(output, "ok.py", cwd=tmp_path)
        assert_one_line_error(result, 4)
        assert "is the working directory" in result.stderr
        assert "choose another -o DIR" in result.stderr

    assert (tmp_path / "ok.py").read_text(encoding="utf-8") == "x = 1\n"
    assert (tmp_path / "precious.txt").read_text(encoding="utf-8") == "keep me"
    assert not (tmp_path / "captures").exists()


def test_force_rejects_ancestor_of_working_directory(tmp_path: Path) -> None:
    project = tmp_path / "project"
    write_project(project)
    (tmp_path / "other.txt").write_text("keep me too", encoding="utf-8")

    result = run_forced("..", "ok.py", cwd=project)

    assert_one_line_error(result, 4)
    assert "contains the working directory" in result.stderr
    assert (project / "ok.py").exists()
    assert (project / "precious.txt").exists()
    assert (tmp_path / "other.txt").read_text(encoding="utf-8") == "keep me too"


def test_force_rejects_filesystem_root(tmp_path: Path) -> None:
    write_project(tmp_path)

    result = run_forced("/", "ok.py", cwd=tmp_path)

    assert_one_line_error(result, 4)
    assert "is the filesystem root" in result.stderr
    assert (tmp_path / "ok.py").exists()


def test_force_rejects_home_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / ".bashrc").write_text("# settings", encoding="utf-8")
    project = tmp_path / "project"
    write_project(project)
    monkeypatch.setenv("HOME", str(home))

    result = run_forced(str(home), "ok.py", cwd=project)

    assert_one_line_error(result, 4)
    assert "is the home directory" in result.stderr
    assert (home / ".bashrc").read_text(encoding="utf-8") == "# settings"


def test_force_rejects_folder_with_earlier_reports(tmp_path: Path) -> None:
    write_project(tmp_path)
    earlier = tmp_path / "reports" / "ok-20250101T000000Z"
    earlier.mkdir(parents=True)
    (earlier / "run.json").write_text("{}", encoding="utf-8")

    result = run_forced("reports", "ok.py", cwd=tmp_path)

    assert_one_line_error(result, 4)
    assert "folder reports is not an aitax report folder" in result.stderr
    assert "'ok-20250101T000000Z'" in result.stderr
    assert (earlier / "run.json").read_text(encoding="utf-8") == "{}"


def test_force_rejects_folder_with_other_files(tmp_path: Path) -> None:
    write_project(tmp_path)
    data = tmp_path / "data"
    data.mkdir()
    (data / "run.json").write_text("{}", encoding="utf-8")
    (data / "train.csv").write_text("a,b\n", encoding="utf-8")

    result = run_forced("data", "ok.py", cwd=tmp_path)

    assert_one_line_error(result, 4)
    assert "'train.csv'" in result.stderr
    assert (data / "train.csv").read_text(encoding="utf-8") == "a,b\n"
    assert (data / "run.json").read_text(encoding="utf-8") == "{}"


def test_force_rejects_folder_containing_script(tmp_path: Path) -> None:
    write_project(tmp_path)
    tools = tmp_path / "tools"
    tools.mkdir()
    (tools / "job.py").write_text("x = 1\n", encoding="utf-8")

    result = run_forced("tools", "tools/job.py", cwd=tmp_path)

    assert_one_line_error(result, 4)
    assert "contains the target" in result.stderr
    assert (tools / "job.py").read_text(encoding="utf-8") == "x = 1\n"


def test_force_rejects_folder_containing_module(tmp_path: Path) -> None:
    write_project(tmp_path)
    package = tmp_path / "app" / "job"
    package.mkdir(parents=True)
    (tmp_path / "app" / "__init__.py").write_text("", encoding="utf-8")
    (package / "__init__.py").write_text("", encoding="utf-8")
    (package / "__main__.py").write_text("x = 1\n", encoding="utf-8")

    for output in ("app/job", "app"):
        result = run_forced(output, "-m", "app.job", cwd=tmp_path)
        assert_one_line_error(result, 4)
        assert "the target" in result.stderr

    assert (package / "__main__.py").read_text(encoding="utf-8") == "x = 1\n"


def test_force_rejects_symlinked_folder(tmp_path: Path) -> None:
    write_project(tmp_path)
    data = tmp_path / "data"
    data.mkdir()
    (data / "run.json").write_text("{}", encoding="utf-8")
    (tmp_path / "link").symlink_to(data, target_is_directory=True)

    result = run_forced("link", "ok.py", cwd=tmp_path)

    assert_one_line_error(result, 4)
    assert "is a symbolic link" in result.stderr
    assert (data / "run.json").read_text(encoding="utf-8") == "{}"
    assert (tmp_path / "link").is_symlink()


@pytest.mark.parametrize("entry", ["captures", "report.html"])
def test_force_rejects_symlinked_entry(tmp_path: Path, entry: str) -> None:
    write_project(tmp_path)
    data = tmp_path / "data"
    data.mkdir()
    (data / "model.bin").write_text("weights", encoding="utf-8")
    report = tmp_path / "rep"
    report.mkdir()
    (report / "run.json").write_text("{}", encoding="utf-8")
    link_target = data if entry == "captures" else data / "model.bin"
    (report / entry).symlink_to(link_target)

    result = run_forced("rep", "ok.py", cwd=tmp_path)

    assert_one_line_error(result, 4)
    assert f"the symbolic link '{entry}'" in result.stderr
    assert (data / "model.bin").read_text(encoding="utf-8") == "weights"
    assert (report / entry).is_symlink()
    assert (report / "run.json").read_text(encoding="utf-8") == "{}"


def test_force_rejects_existing_file(tmp_path: Path) -> None:
    write_project(tmp_path)

    result = run_forced("precious.txt", "ok.py", cwd=tmp_path)

    assert_one_line_error(result, 4)
    assert "is not a folder" in result.stderr
    assert (tmp_path / "precious.txt").read_text(encoding="utf-8") == "keep me"


def test_empty_output_is_usage_error(tmp_path: Path) -> None:
    write_project(tmp_path)

    for force in ([], ["--force"]):
        result = run_aitax(
            "run", "-q", *force, "--passes", "clean", "-o", "", "ok.py", cwd=tmp_path
        )
        assert_one_line_error(result, 2)
        assert "-o '' is empty" in result.stderr

    assert sorted(path.name for path in tmp_path.iterdir()) == ["ok.py", "precious.txt"]


def test_force_replaces_report_entries_in_place(tmp_path: Path) -> None:
    write_project(tmp_path)
    first = run_forced("rep", "ok.py", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    report = tmp_path / "rep"
    (report / "report.html").write_text("old page", encoding="utf-8")
    (report / "captures" / "cpu.log").write_text("old log", encoding="utf-8")
    # The temporary file that an interrupted atomic write of report.html leaves behind.
    (report / ".report.html.abc123.tmp").write_text("partial", encoding="utf-8")
    inode = os.stat(report).st_ino

    second = run_forced("rep", "ok.py", cwd=tmp_path)

    assert second.returncode == 0, second.stderr
    assert os.stat(report).st_ino == inode
    assert (report / "report.html").read_text(encoding="utf-8") != "old page"
    assert not (report / "captures" / "cpu.log").exists()
    assert not (report / ".report.html.abc123.tmp").exists()
    assert json.loads((report / "run.json").read_text(encoding="utf-8"))["exit_code"] == 0
    assert (tmp_path / "precious.txt").exists()


def test_force_uses_empty_folder(tmp_path: Path) -> None:
    write_project(tmp_path)
    (tmp_path / "rep").mkdir()

    result = run_forced("rep", "ok.py", cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert (tmp_path / "rep" / "run.json").is_file()
    assert (tmp_path / "rep" / "report.html").is_file()
